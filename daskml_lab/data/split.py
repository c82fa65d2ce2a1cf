"""Placeholder: being written (see issue 2)."""

def train_test_split(*args, **kwargs):
    """Not implemented yet."""
    raise NotImplementedError("train_test_split")


