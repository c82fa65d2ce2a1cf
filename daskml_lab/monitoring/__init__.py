"""What the user sees while the package works: the Dask dashboard, progress bars, history and plots.

- Task names and spans: every task has a ``daskml-...`` key prefix (:func:`task_prefix`) and every fit runs
  in a dashboard span (:func:`fit_span`); work done in actors is added to the task stream
  (:func:`shown_in_task_stream`).
- A live training page in the Dask dashboard (``/daskml-training``), fed by training events through the
  scheduler's event log and a scheduler plugin (:class:`TrainingMonitor`), installed on the scheduler when a
  fit first runs there (or ahead of time with :func:`install_monitor`, or
  ``dask scheduler --preload daskml_lab.monitoring.preload``).
- Progress bars in the terminal and in Jupyter (:func:`progress`, :func:`compute_with_progress`).
- Dask's HTML performance report of a fit (:func:`fit_report`).
- Training events for estimators built on the package: :func:`start_run` opens a run (a :class:`TrainingRun`
  that records iterations and ends with a status) and :func:`publish_shard_event` reports a shard's progress
  from inside its task; both are shown on the training page.
- Plots of the training history, the shard report and a fusion comparison (:func:`plot_history`,
  :func:`plot_shard_report`, :func:`plot_fusion_comparison`; matplotlib, the ``plot`` extra).
"""

from daskml_lab.monitoring._dashboard import TrainingMonitor, install_monitor, page_url
from daskml_lab.monitoring._events import TOPIC, TrainingRun, publish_shard_event, start_run
from daskml_lab.monitoring._names import fit_span, task_prefix
from daskml_lab.monitoring._plot import plot_fusion_comparison, plot_history, plot_shard_report
from daskml_lab.monitoring._progress import compute_with_progress, is_interactive, progress
from daskml_lab.monitoring._report import fit_report
from daskml_lab.monitoring._task_stream import TASK_STREAM_TOPIC, shown_in_task_stream

__all__ = [
    "TASK_STREAM_TOPIC",
    "TOPIC",
    "TrainingMonitor",
    "TrainingRun",
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
    "publish_shard_event",
    "shown_in_task_stream",
    "start_run",
    "task_prefix",
]
