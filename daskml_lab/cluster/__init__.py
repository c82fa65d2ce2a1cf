"""Connecting to a Dask cluster: an explicit address, the configured scheduler, or a local one."""

from daskml_lab.cluster._connect import connect

__all__ = ["connect"]
