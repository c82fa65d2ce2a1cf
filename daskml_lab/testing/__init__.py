"""Public helpers for testing code built on daskml_lab (and daskml_lab itself)."""

from daskml_lab.testing._compute_counter import ComputeCounter, raise_if_computes
from daskml_lab.testing._memory import PeakMemory, process_rss

__all__ = ["ComputeCounter", "PeakMemory", "process_rss", "raise_if_computes"]
