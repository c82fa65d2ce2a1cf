"""Placeholder: being written (see issue 2)."""

def shard(*args, **kwargs):
    """Not implemented yet."""
    raise NotImplementedError("shard")


def shard_summary(*args, **kwargs):
    """Not implemented yet."""
    raise NotImplementedError("shard_summary")


