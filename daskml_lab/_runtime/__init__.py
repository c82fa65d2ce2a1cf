"""The runtime floor under every algorithm: what solvers, ensembles and monitoring share about the cluster.

- :mod:`~daskml_lab._runtime.client`: the current client (one rule), where a task runs, pinning tasks to a
  worker, and the cluster timeout;
- :mod:`~daskml_lab._runtime.memory`: the memory plan, the one rule deciding whether a fit persists its blocks
  or streams them from their source, from explicit inputs;
- :mod:`~daskml_lab._runtime.waiting`: waiting for futures with errors that name what was awaited and the fix;
- :mod:`~daskml_lab._runtime.watch`: watching work pinned to workers, which would wait for ever for a dead one;
- :mod:`~daskml_lab._runtime.cluster_health`: whether the scheduler and any worker are still there, and the
  clear errors when they are not;
- :mod:`~daskml_lab._runtime.checkpoint_files`: checkpoint files written atomically and read back verified;
- :mod:`~daskml_lab._runtime.seeding`: the one seeding rule, from ``random_state`` to the root entropy of a
  call, and the streams, shard seeds and seeded clones derived from it.

The floor imports no other part of the package: ``solvers``, ``ensemble`` and ``monitoring`` build on it, and
whatever two of them share belongs here (``data`` uses the seeding rule too) rather than in one of them.
"""
