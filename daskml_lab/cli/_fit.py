"""``daskml-lab fit``: read data, fit a model on the cluster, print a summary, save the model."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Mapping
from typing import Any

import scipy.sparse as sp

from daskml_lab.cli._data import (
    check_output,
    cluster,
    data_format,
    is_sparse,
    json_safe,
    key_file,
    local_path,
    print_dashboard,
    read_training,
    signing_key,
)
from daskml_lab.cli._evaluate import classification_metrics, regression_metrics
from daskml_lab.cli._models import CLASSIFICATION, build_estimator, get_model
from daskml_lab.cli._tables import (
    RARE_CLASS_ROWS,
    adapt_to_classes,
    build_preprocessing,
    infer_task,
    sorted_target_warning,
    split_rows,
)
from daskml_lab.data.formats import get_format

__all__ = ["read_task_data", "run_fit"]

_ENSEMBLE_OPTIONS = ("n_shards", "sharding", "validation_fraction")


def run_fit(settings: Mapping[str, Any], *, verbose: bool) -> None:
    """Fit the model the settings describe and save it (see ``daskml-lab fit --help``).

    Parameters
    ----------
    settings : dict
        The merged options of ``fit`` (see :data:`daskml_lab.cli._config.COMMAND_OPTIONS`).
    verbose : bool
        Show the cluster's logs.

    Raises
    ------
    ValueError
        For incompatible options, an unknown model, fusion or solver, or invalid data.
    FileNotFoundError
        If the data or the output folder do not exist.
    ConnectionError
        If the scheduler cannot be reached.
    """
    from daskml_lab.persistence import save

    spec = _check_choices(settings)
    path = local_path(settings["data"])
    fmt = data_format(path, settings["input_format"])
    if not get_format(fmt).labels_in_file and not settings["target"]:
        msg = (
            "missing --target: name the target column, variable or array (or set target in the config file)."
        )
        raise ValueError(msg)
    output = check_output(
        settings["output"],
        overwrite=settings["overwrite"],
        what="model file",
        inputs=[("training data", settings["data"]), ("key file", key_file(settings))],
    )
    key = signing_key(settings)  # read before the fit: a missing key file must not cost a fit
    ensemble_options = {k: settings[k] for k in _ENSEMBLE_OPTIONS if settings[k] is not None}
    seed = 0 if settings["random_state"] is None else settings["random_state"]

    with cluster(settings, verbose=verbose) as client:
        print_dashboard(client, settings)
        X, y, info, task, summary, block_note = read_task_data(
            settings, path, fmt=fmt, spec=spec, n_workers=len(client.scheduler_info().get("workers", {}))
        )
        target = info["target"] if info["target"] is not None else "labels"
        if spec is None:
            spec = get_model(_default_model(settings, ensemble_options, X, task, summary))
        if spec.family == "shard" and "sharding" not in ensemble_options:
            # Files are often sorted (diamonds by price, kddcup by attack): contiguous shards would each see a
            # narrow slice of the target, so the command line shuffles rows into shards by default.
            ensemble_options["sharding"] = "shuffle"
        warning = sorted_target_warning(summary, target=target, sharding=ensemble_options.get("sharding"))
        if warning is not None:
            warnings.warn(warning, UserWarning, stacklevel=2)
        estimator, notes = build_estimator(
            spec,
            task,
            params=settings["params"],
            fusion=settings["fusion"],
            fusion_params=settings["fusion_params"],
            solver=settings["solver"],
            solver_options=settings["solver_options"],
            ensemble_options=ensemble_options,
            random_state=seed,
            checkpoint=settings["checkpoint"],
        )
        estimator, preprocessing = build_preprocessing(
            estimator,
            info,
            sparse=sp.issparse(getattr(X, "_meta", None)),
            hash_features=settings["hash_features"],
            crosses=settings["crosses"],
            hash_columns=_names(settings["hash_columns"]),
        )
        if task == CLASSIFICATION:
            rare_note = adapt_to_classes(estimator, summary)
            if rare_note is not None:
                notes.append(rare_note)
        if block_note is not None:
            notes.append(block_note)
        # Stratify by class, unless a class has a single row (it cannot be in both parts).
        stratify = task == CLASSIFICATION and min((summary.counts or {0: 0}).values()) >= 2
        X_train, y_train, X_test, y_test, split_line = _holdout(
            X, y, settings["test_size"], stratify=stratify, seed=seed
        )
        print(f"Model: {spec.name} ({_describe(estimator)})")
        for line in preprocessing:
            print(f"Preprocessing: {line}")
        start = time.perf_counter()
        estimator.fit(X_train, y_train)
        fit_s = time.perf_counter() - start
        scores = None
        if X_test is not None:
            scores = (
                classification_metrics(estimator, X_test, y_test)
                if task == CLASSIFICATION
                else regression_metrics(estimator, X_test, y_test)
            )
        n_workers = len(client.scheduler_info().get("workers", {}))
        # saved while the cluster runs: a model kept in its parameter shards is streamed from them
        metadata = {
            "data": info,
            "training": {
                "fit_time_s": round(fit_s, 6),
                "task": task,
                "n_workers": n_workers,
                "random_state": seed,
                "split": split_line,
                "holdout_scores": scores,
            },
            "cli": {
                "model": spec.name,
                "fusion": settings["fusion"],
                "preprocessing": preprocessing,
                "argv": sys.argv[1:],
            },
        }
        save(estimator, output, metadata=json_safe(metadata), key=key)
    rows = [
        ("model", f"{spec.name} ({_describe(estimator)})"),
        ("task", _task_line(task, estimator)),
        (
            "data",
            f"{info['n_samples']:,} rows x {info['n_features']} features in {info['n_blocks']} block(s) "
            f"({fmt})",
        ),
        ("split", split_line),
        ("fit time", f"{fit_s:.2f} s on {n_workers} worker(s)"),
        *_progress_rows(estimator),
        *((f"held-out {name}", f"{value:.6g}") for name, value in (scores or {}).items()),
        *(("note", note) for note in notes),
        ("saved to", str(output) + (" (signed)" if key is not None else "")),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"Fitted {type(estimator).__name__}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def read_task_data(
    settings: Mapping[str, Any], path: Any, *, fmt: str, spec: Any, n_workers: int
) -> tuple[Any, Any, dict[str, Any], str, Any, str | None]:
    """Read the training data of ``fit`` and ``tune``, print the reading notes and the task, split the rows.

    Returns
    -------
    X, y : dask arrays
        Rows in blocks (enough for the workers, see :func:`~daskml_lab.cli._tables.split_rows`).
    info : dict
        From :func:`~daskml_lab.cli._data.read_training`, with ``n_blocks``.
    task : str
        ``"classification"`` or ``"regression"``.
    summary : TargetSummary
        Of ``y``.
    block_note : str or None
        A note about the re-blocking, to print.
    """
    from daskml_lab.data import describe_target

    X, y, info = read_training(
        path,
        settings["target"],
        fmt=fmt,
        read_options=settings["read_options"],
        categorical=settings["categorical"],
        features=_names(settings["features"]),
    )
    for note in info.pop("notes"):
        print(f"Reading: {note}")
    target = info["target"] if info["target"] is not None else "labels"
    summary = describe_target(y, max_distinct=settings["max_classes"])
    given = settings["task"]
    if given == "auto" and spec is not None and len(spec.tasks) == 1:
        given = spec.tasks[0]  # the model decides
    task, announcement = infer_task(summary, given=given, target=target, max_classes=settings["max_classes"])
    print(f"Task: {announcement}")
    if task == CLASSIFICATION and summary.numeric and summary.whole and y.dtype.kind == "f":
        y = y.astype("int64")  # whole-number labels read as floats (assume_missing): print them as integers
    X, y, block_note = split_rows(X, y, n_workers=n_workers)
    info["n_blocks"] = int(X.numblocks[0])
    return X, y, info, task, summary, block_note


def _default_model(
    settings: Mapping[str, Any], ensemble_options: Mapping[str, Any], X: Any, task: str, summary: Any
) -> str:
    """The model when --model is not given (see docs/cli.rst).

    HistGradientBoosting per shard is within a point of scikit-learn's on raw tables (text columns as codes,
    no scaling needed); a random forest when a class has fewer than RARE_CLASS_ROWS rows, where
    HistGradientBoosting's multiclass boosting is unstable (kddcup99: 0.95 accuracy against the forest's
    0.9997); the distributed linear model for sparse inputs (svmlight, or text columns hashed by
    --hash-features), which trees do not take, and with --solver options; a random forest with --fusion or
    shard options.
    """
    if settings["fusion"] or settings["fusion_params"] or ensemble_options:
        return "random-forest"
    hashed = settings.get("hash_features") is not None
    if is_sparse(X) or hashed or settings["solver"] is not None or settings["solver_options"]:
        return "logistic-regression" if task == CLASSIFICATION else "ridge"
    if task == CLASSIFICATION and min((summary.counts or {0: RARE_CLASS_ROWS}).values()) < RARE_CLASS_ROWS:
        return "random-forest"
    return "hist-gradient-boosting"


def _holdout(
    X: Any, y: Any, test_size: float | None, *, stratify: bool, seed: int
) -> tuple[Any, Any, Any, Any, str]:
    """Training and held-out rows for --test-size (stratified by ``y`` or not), and a line saying so."""
    if test_size is None:
        return X, y, None, None, f"all {int(X.shape[0]):,} rows for training (--test-size to hold some out)"
    from daskml_lab.data import train_test_split

    size: float | int = test_size
    if test_size >= 1:
        if test_size != int(test_size):
            msg = f"--test-size must be a share between 0 and 1, or a whole number of rows; got {test_size}."
            raise ValueError(msg)
        size = int(test_size)
    elif test_size <= 0:
        msg = f"--test-size must be a share between 0 and 1, or a whole number of rows; got {test_size}."
        raise ValueError(msg)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=size, random_state=seed, stratify=y if stratify else None
    )
    line = (
        f"{int(X_train.shape[0]):,} rows for training, {int(X_test.shape[0]):,} held out "
        f"({'stratified ' if stratify else ''}random split, seed {seed})"
    )
    return X_train, y_train, X_test, y_test, line


def _check_choices(settings: Mapping[str, Any]) -> Any:
    """The model spec (or None for the default), after checking that the options fit together."""
    from daskml_lab.fusion import FUSION_NAMES
    from daskml_lab.solvers import SOLVERS

    spec = get_model(settings["model"]) if settings["model"] else None
    fusion, solver = settings["fusion"], settings["solver"]
    if fusion is not None and fusion not in FUSION_NAMES:
        msg = f"Unknown fusion {fusion!r}. Valid fusions are {', '.join(FUSION_NAMES)}."
        raise ValueError(msg)
    if solver is not None and solver != "auto" and solver not in SOLVERS:
        msg = f"Unknown solver {solver!r}. Valid solvers are auto, {', '.join(sorted(SOLVERS))}."
        raise ValueError(msg)
    hash_features = settings.get("hash_features")
    if hash_features is not None and not 1 <= hash_features < 2**31:
        msg = f"--hash-features must be a number of features in [1, 2**31 - 1], got {hash_features}."
        raise ValueError(msg)
    for given, option in (
        (settings.get("crosses"), "--cross"),
        (settings.get("hash_columns"), "--hash-columns"),
    ):
        if given and hash_features is None:
            # before the cluster starts (the preprocessing says the same for callers of the library)
            msg = f"{option} needs --hash-features N: the hashed columns and crosses go into N features."
            raise ValueError(msg)
    if hash_features is not None and spec is not None and spec.family != "linear":
        msg = (
            f"--hash-features makes wide sparse rows for a linear model, but --model {spec.name} is not one. "
            "Choose a linear --model (logistic-regression, ridge, linear-svc, ...), or drop --hash-features."
        )
        raise ValueError(msg)
    family = spec.family if spec is not None else None
    shard_given = [f"--{k.replace('_', '-')}" for k in _ENSEMBLE_OPTIONS if settings[k] is not None]
    if family == "linear" and (fusion or settings["fusion_params"] or shard_given):
        given = [*(["--fusion"] if fusion or settings["fusion_params"] else []), *shard_given]
        msg = (
            f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to shard ensembles, but "
            f"--model {spec.name} is a distributed linear model fitted on all rows. Drop "
            f"{'it' if len(given) == 1 else 'them'}, or choose a scikit-learn model trained per shard (e.g. "
            "--model sgd, random-forest, svc)."
        )
        raise ValueError(msg)
    if family == "cascade" and (
        fusion or settings["fusion_params"] or settings["validation_fraction"] is not None
    ):
        msg = "--model cascade-svc merges support vectors instead of fusing models: drop --fusion, --fusion-param "
        msg += "and --validation-fraction."
        raise ValueError(msg)
    if (solver is not None or settings["solver_options"]) and family != "linear":
        what = f"--model {spec.name}" if spec is not None else "--fusion or shard options"
        if spec is None and not (fusion or shard_given):
            return spec  # the default model is linear
        msg = (
            f"--solver and --solver-option apply to the distributed linear models, not to {what}. Drop them, "
            "or choose a linear model (logistic-regression, linear-svc, linear-regression, ridge, lasso, "
            "elastic-net, huber)."
        )
        raise ValueError(msg)
    task = settings["task"]
    if spec is not None and task != "auto" and task not in spec.tasks:
        msg = f"--model {spec.name} does {' and '.join(spec.tasks)}, but --task {task} was given."
        raise ValueError(msg)
    return spec


def _final(estimator: Any) -> Any:
    """The model itself: the last step of the preprocessing pipeline the command line may put in front."""
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


def _describe(estimator: Any) -> str:
    estimator = _final(estimator)
    inner = getattr(estimator, "estimator", None)
    if inner is None:
        return type(estimator).__name__
    fusion = estimator.fusion if isinstance(estimator.fusion, str) else type(estimator.fusion).__name__
    return f"{type(inner).__name__} per shard, fusion {fusion}"


def _task_line(task: str, estimator: Any) -> str:
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return task
    shown = ", ".join(str(c) for c in classes[:10]) + (", ..." if len(classes) > 10 else "")
    return f"{task} ({len(classes)} classes: {shown})"


def _progress_rows(estimator: Any) -> list[tuple[str, str]]:
    estimator = _final(estimator)
    rows = []
    n_iter = getattr(estimator, "n_iter_", None)
    if n_iter is not None:
        rows.append(("iterations", str(n_iter)))
    history = getattr(estimator, "history_", None)
    if history is not None and len(history) and "objective" in history:
        rows.append(("final objective", f"{float(history['objective'].iloc[-1]):.6g}"))
    n_shards = getattr(estimator, "n_shards_", None)
    if n_shards is not None:
        models = getattr(estimator, "estimators_", [])
        rows.append(("shards", f"{n_shards} ({len(models)} model(s))"))
        report = getattr(estimator, "shard_report_", None)
        if report is not None:
            scores = report.to_frame().get("validation_score")
            if scores is not None and scores.notna().any():
                rows.append(("validation score", f"{float(scores.mean()):.4f} (mean over shards)"))
    return rows


def _names(items: list[str]) -> list[str]:
    """Column names from repeatable, comma-separated options (``--features a,b --features c``)."""
    return [name.strip() for item in items for name in str(item).split(",") if name.strip()]
