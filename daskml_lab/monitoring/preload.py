"""Preload module: install the training page on a ``dask scheduler`` started from the shell.

.. code-block:: console

    $ dask scheduler --preload daskml_lab.monitoring.preload
    $ dask worker tcp://127.0.0.1:8786

The dashboard then serves ``/daskml-training`` (and ``/individual-daskml-training``,
``/json/daskml-training.json``); fits run from any client of that scheduler show up there. Given to a worker
(``dask worker --preload``), the module does nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from distributed import Scheduler

from daskml_lab.monitoring._dashboard import TrainingMonitor

__all__ = ["dask_setup"]

logger = logging.getLogger(__name__)


def dask_setup(server: Any) -> None:
    """Add :class:`~daskml_lab.monitoring.TrainingMonitor` to a scheduler (called by ``dask scheduler``).

    Parameters
    ----------
    server : distributed.Scheduler or distributed.Worker
        The server that loads the module.
    """
    if not isinstance(server, Scheduler):
        logger.info(
            "daskml_lab.monitoring.preload only acts on schedulers; %s ignored.", type(server).__name__
        )
        return
    server.add_plugin(TrainingMonitor(), idempotent=True)
    logger.info("daskml_lab training page installed on the dashboard at /daskml-training")
