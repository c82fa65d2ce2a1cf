"""Work that runs outside Dask tasks, shown in Dask's own task stream.

The solvers' per-iteration work runs in actors (a call goes from the client straight to a worker), so the
scheduler never sees a task and the dashboard's task stream, the one view every Dask user knows, stays empty
during a linear-model fit. :func:`shown_in_task_stream` times such a call on the worker and logs it to the
scheduler under :data:`TASK_STREAM_TOPIC`; the training monitor plugin (:class:`~daskml_lab.monitoring.
TrainingMonitor`, installed when a fit starts) turns each record into a task-stream entry, so the call appears
as a bar named after its action (``daskml-loss-grad``, ``daskml-admm-step``) on its worker's row, in the
dashboard and in :func:`distributed.get_task_stream`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator

import dask
from distributed import get_worker

from daskml_lab.monitoring._names import task_prefix

__all__ = ["TASK_STREAM_TOPIC", "shown_in_task_stream"]

logger = logging.getLogger(__name__)

#: Topic of the worker-side call records the training monitor adds to the scheduler's task stream.
TASK_STREAM_TOPIC = "daskml-task-stream"


@contextlib.contextmanager
def shown_in_task_stream(action: str) -> Iterator[None]:
    """Time the block on this worker and show it in the scheduler's task stream as ``daskml-<action>``.

    Outside a worker, or with ``daskml_lab.monitoring.publish`` off, the block just runs. A failure to log is
    never the caller's problem.

    Parameters
    ----------
    action : str
        What the block does, in words (``"loss grad"``).
    """
    start = time.time()
    status = "OK"
    try:
        yield
    except BaseException:
        status = "error"
        raise
    finally:
        _log_call(action, start, time.time(), status)


def _log_call(action: str, start: float, stop: float, status: str) -> None:
    if not dask.config.get("daskml_lab.monitoring.publish", True):
        return
    try:
        worker = get_worker()
    except ValueError:  # not on a worker: nothing to show
        return
    record = {
        "key": f"{task_prefix(action)}-{uuid.uuid4().hex[:12]}",
        "start": start,
        "stop": stop,
        "thread": threading.get_ident(),
        "status": status,
    }
    try:
        worker.log_event(TASK_STREAM_TOPIC, record)
    except Exception:  # a closing worker: the record is only for display
        logger.debug("Could not log a task-stream record.", exc_info=True)
