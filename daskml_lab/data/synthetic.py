"""Placeholder: being written (see issue 2)."""

def make_classification(*args, **kwargs):
    """Not implemented yet."""
    raise NotImplementedError("make_classification")


def make_regression(*args, **kwargs):
    """Not implemented yet."""
    raise NotImplementedError("make_regression")


