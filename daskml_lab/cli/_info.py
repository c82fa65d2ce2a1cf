"""``daskml-lab info``: versions, cluster and dashboard link."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import daskml_lab

_PACKAGES = ("dask", "distributed", "numpy", "scipy", "scikit-learn", "xarray", "pandas", "zarr", "bokeh")


def _version_of(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def run_info(*, scheduler: str | None, security: Any = None) -> None:
    """Print package versions and a description of the cluster (starting a local one if no address).

    Parameters
    ----------
    scheduler : str or None
        Address of a running scheduler; ``None`` starts a local cluster of one worker on 127.0.0.1.
    security : distributed.Security, default=None
        TLS settings of a ``tls://`` scheduler (Dask's configuration when ``None``).
    """
    print(f"daskml-lab   {daskml_lab.__version__}")
    print(f"python       {platform.python_version()} ({platform.platform()})")
    for name in _PACKAGES:
        print(f"{name:<12} {_version_of(name)}")
    with (
        daskml_lab.connect(scheduler, security=security) if scheduler else daskml_lab.connect(n_workers=1)
    ) as client:
        workers = client.scheduler_info()["workers"]
        print(f"scheduler    {client.scheduler.address}")
        print(f"workers      {len(workers)} ({sum(w['nthreads'] for w in workers.values())} threads)")
        print(f"dashboard    {client.dashboard_link}")
