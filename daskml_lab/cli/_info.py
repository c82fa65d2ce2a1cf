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


def run_model_info(path: str, *, key_file: str | None = None, as_json: bool = False) -> None:
    """Describe a model file without creating the model: class, parameters, features, task, data, metrics.

    Parameters
    ----------
    path : str
        A file written by ``daskml-lab fit`` or :func:`daskml_lab.save`.
    key_file : str, default=None
        Key file of a signed model (the signature is then checked; without it, it is reported unchecked).
    as_json : bool, default=False
        Print everything :func:`daskml_lab.persistence.describe` returns, as JSON.
    """
    import json

    from daskml_lab.cli._data import local_path
    from daskml_lab.persistence import describe, read_key

    path = local_path(path)
    info = describe(path, key=read_key(local_path(key_file)) if key_file else None)
    if as_json:
        print(json.dumps(info, indent=2, default=str))
        return
    metadata = info.get("metadata") or {}
    data = metadata.get("data") or {}
    training = metadata.get("training") or {}
    cli = metadata.get("cli") or {}
    summary = info.get("summary") or {}
    features = data.get("features")
    if features is None and summary.get("n_features_in") is not None:
        features = f"{summary['n_features_in']} numbered features"
    elif features is not None:
        shown = ", ".join(str(f) for f in features[:20]) + (", ..." if len(features) > 20 else "")
        features = f"{len(features)}: {shown}"
    integrity = info.get("integrity") or {}
    rows = [
        ("class", str(info.get("class"))),
        ("model", cli.get("model")),
        ("task", training.get("task")),
        ("classes", _classes(summary)),
        ("features", features),
        (
            "categories",
            ", ".join(f"{k} ({len(v)})" for k, v in (data.get("categories") or {}).items()) or None,
        ),
        (
            "trained on",
            f"{data['path']} ({data.get('format')}, {data.get('n_samples', 0):,} rows, target "
            f"{data.get('target')!r})"
            if data.get("path")
            else None,
        ),
        ("read options", json.dumps(data["read_options"]) if data.get("read_options") else None),
        ("split", training.get("split")),
        *(
            (f"held-out {name}", f"{value:.6g}")
            for name, value in (training.get("holdout_scores") or {}).items()
            if isinstance(value, int | float)
        ),
        (
            "fit time",
            f"{training['fit_time_s']:.2f} s on {training.get('n_workers')} worker(s)"
            if training.get("fit_time_s") is not None
            else None,
        ),
        *(("preprocessing", line) for line in cli.get("preprocessing") or []),
        ("params", _params(final_params(info.get("params") or {}))),
        ("created", f"{info.get('created')} with daskml-lab {info.get('daskml_lab_version')}"),
        (
            "integrity",
            f"{integrity.get('algorithm')}, {'verified' if integrity.get('verified') else 'not verified'}",
        ),
        ("command", " ".join(["daskml-lab", *cli["argv"]]) if cli.get("argv") else None),
    ]
    rows = [(name, value) for name, value in rows if value not in (None, "")]
    width = max(len(name) for name, _ in rows)
    print(f"Model file {path}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def _classes(summary: dict[str, Any]) -> str | None:
    classes = summary.get("classes")
    if not classes:
        return None
    shown = ", ".join(str(c) for c in classes[:10]) + (", ..." if len(classes) > 10 else "")
    return f"{len(classes)}: {shown}"


def final_params(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters of the model itself: of a pipeline's last step (the preprocessing the command line puts
    in front of linear models is described on its own lines)."""
    steps = params.get("steps")
    if isinstance(steps, list) and steps and isinstance(steps[-1], list | tuple) and len(steps[-1]) == 2:
        last = steps[-1][1]
        if isinstance(last, dict) and isinstance(last.get("params"), dict):
            return last["params"]
    return params


def _params(params: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in params.items() if not isinstance(v, dict))
    return text if len(text) <= 300 else text[:297] + "..."
