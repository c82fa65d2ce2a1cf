"""Placeholder: being written (see issue 2)."""

def read_svmlight(*args, **kwargs):
    """Not implemented yet."""
    raise NotImplementedError("read_svmlight")


