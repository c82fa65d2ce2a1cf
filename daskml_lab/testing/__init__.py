"""Public helpers for testing code built on daskml_lab (and daskml_lab itself)."""

from daskml_lab.testing._compute_counter import ComputeCounter, raise_if_computes

__all__ = ["ComputeCounter", "raise_if_computes"]
