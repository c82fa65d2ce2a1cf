"""Peak memory of the worker processes of a cluster while a block of code runs."""

from __future__ import annotations

import threading
from typing import Any

import psutil

__all__ = ["PeakMemory", "process_rss"]


def process_rss() -> int:
    """Resident set size of the calling process, in bytes (run it on the workers with ``client.run``)."""
    return int(psutil.Process().memory_info().rss)


class PeakMemory:
    """Largest RSS of each worker process during a ``with`` block, sampled every 0.2 s from a thread.

    Parameters
    ----------
    client : distributed.Client
        Client of the cluster whose workers are watched (through the public ``client.run``).

    Attributes
    ----------
    peak : dict of str to int
        Largest RSS seen per worker address, in bytes.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample_once(self) -> None:
        try:
            for address, rss in self.client.run(process_rss).items():
                self.peak[address] = max(self.peak.get(address, 0), rss)
        except Exception:
            pass

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._sample_once()
            self._stop.wait(0.2)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample_once()  # at least one sample, however short the block

    @property
    def max_mib(self) -> float:
        """The largest RSS of any worker, in MiB."""
        return max(self.peak.values(), default=0) / 2**20
