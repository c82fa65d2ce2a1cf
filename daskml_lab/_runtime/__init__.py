"""The runtime floor under every algorithm: what solvers, ensembles and monitoring share about the cluster.

- :mod:`~daskml_lab._runtime.client`: the current client (one rule), where a task runs, pinning tasks to a
  worker, and the cluster timeout;
- :mod:`~daskml_lab._runtime.memory`: the memory plan, the one rule deciding whether a fit persists its blocks
  or streams them from their source, from explicit inputs;
- :mod:`~daskml_lab._runtime.waiting`: waiting for futures with errors that name what was awaited and the fix;
- :mod:`~daskml_lab._runtime.watch`: watching work pinned to workers, which would wait for ever for a dead one;
- :mod:`~daskml_lab._runtime.checkpoint_files`: checkpoint files written atomically and read back verified.

The floor imports no other part of the package: ``solvers``, ``ensemble`` and ``monitoring`` build on it, and
whatever two of them share belongs here rather than in one of them.
"""
