"""What the user sees while the package works: task names and spans in the Dask dashboard."""

from daskml_lab.monitoring._names import fit_span, task_prefix

__all__ = ["fit_span", "task_prefix"]
