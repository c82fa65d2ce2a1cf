"""What the user sees while the package works: the Dask dashboard, progress bars, history and plots.

- Task names and spans: every task has a ``daskml-...`` key prefix (:func:`task_prefix`) and every fit runs
  in a dashboard span (:func:`fit_span`).
- A live training page in the Dask dashboard (``/daskml-training``), fed by training events through the
  scheduler's event log and a scheduler plugin (:class:`TrainingMonitor`, :func:`install_monitor`,
  ``dask scheduler --preload daskml_lab.monitoring.preload``).
- Progress bars in the terminal and in Jupyter (:func:`progress`, :func:`compute_with_progress`).
- Dask's HTML performance report of a fit (:func:`fit_report`).
- Plots of the training history, the shard report and a fusion comparison (:func:`plot_history`,
  :func:`plot_shard_report`, :func:`plot_fusion_comparison`; matplotlib, the ``plot`` extra).
"""

from daskml_lab.monitoring._dashboard import TrainingMonitor, install_monitor, page_url
from daskml_lab.monitoring._events import TOPIC
from daskml_lab.monitoring._names import fit_span, task_prefix
from daskml_lab.monitoring._plot import plot_fusion_comparison, plot_history, plot_shard_report
from daskml_lab.monitoring._progress import compute_with_progress, is_interactive, progress
from daskml_lab.monitoring._report import fit_report

__all__ = [
    "TOPIC",
    "TrainingMonitor",
    "compute_with_progress",
    "fit_report",
    "fit_span",
    "install_monitor",
    "is_interactive",
    "page_url",
    "plot_fusion_comparison",
    "plot_history",
    "plot_shard_report",
    "progress",
    "task_prefix",
]
