"""How ``fit`` turns a raw table into a task, row blocks and a preprocessed model.

- :func:`infer_task`: the task from the target's values (a :class:`~daskml_lab.data.TargetSummary`), never from
  its dtype, with the line announcing it and the refusal above ``--max-classes``;
- :func:`split_rows`: a single-block input (a compressed CSV file) cut into row blocks, so that shards and work
  spread over the workers;
- :func:`build_preprocessing`: the one place where the command line adapts a model to the table's columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from daskml_lab.cli._models import CLASSIFICATION, REGRESSION

__all__ = [
    "MIN_BLOCK_ROWS",
    "RARE_CLASS_ROWS",
    "adapt_to_classes",
    "build_preprocessing",
    "infer_task",
    "sorted_target_warning",
    "split_rows",
]

#: A class with fewer rows than this may have a single row in a shard, where HistGradientBoosting's stratified
#: validation split for early stopping fails (kddcup99 has classes of 2 to 8 rows).
RARE_CLASS_ROWS = 20

#: Rows below which a block is not split further (smaller blocks cost more in scheduling than they gain).
MIN_BLOCK_ROWS = 10_000


def infer_task(summary: Any, *, given: str, target: Any, max_classes: int) -> tuple[str, str]:
    """The task of the target, and the line announcing it.

    Parameters
    ----------
    summary : TargetSummary
        Of the target, with distinct values counted up to ``max_classes``.
    given : {"auto", "classification", "regression"}
        The ``--task`` option.
    target : str or int
        The target's name, for messages.
    max_classes : int
        The ``--max-classes`` option.

    Returns
    -------
    task : {"classification", "regression"}
    announcement : str
        What was inferred and why, and the option that changes it.

    Raises
    ------
    ValueError
        For a classification with more than ``max_classes`` classes, or a regression of text labels.
    """
    n = summary.n_distinct
    described = _describe_values(summary, max_classes)
    if given == REGRESSION:
        if not summary.numeric:
            msg = (
                f"--task regression needs numbers, but the target {target!r} holds text ({described}). Use "
                "--task classification, or name a numeric --target."
            )
            raise ValueError(msg)
        return REGRESSION, f"regression (--task regression); the target holds {described}"
    if given == CLASSIFICATION:
        task, why = CLASSIFICATION, "--task classification"
    elif not summary.numeric:
        task, why = CLASSIFICATION, "text labels"
    elif n is None:
        task, why = REGRESSION, f"more than --max-classes {max_classes} distinct numbers"
    elif n <= 2:
        task, why = CLASSIFICATION, "two values" if n == 2 else "a single value"
    elif summary.whole:
        task, why = CLASSIFICATION, f"whole numbers with at most --max-classes {max_classes} distinct values"
    else:
        task, why = REGRESSION, "numbers with fractions"
    if task == CLASSIFICATION and n is None:
        msg = (
            f"The target {target!r} has more than {max_classes} distinct values: too many classes for a "
            f"classification (--max-classes {max_classes}). If it is a quantity, use --task regression; to fit "
            "that many classes anyway, raise --max-classes."
        )
        raise ValueError(msg)
    other = REGRESSION if task == CLASSIFICATION else CLASSIFICATION
    override = "" if given == task else f"; override with --task {other}"
    return task, f"{task}, inferred from the target {target!r}: {described} ({why}){override}"


def _describe_values(summary: Any, max_classes: int) -> str:
    n = summary.n_distinct
    if n is None:
        return f"more than {max_classes} distinct values"
    values = [int(v) if summary.whole else v for v in list(summary.counts)[:5]]  # -1.0 read as a float: -1
    shown = ", ".join(str(v) for v in values) + (", ..." if n > 5 else "")
    return f"{n} distinct value{'s' if n != 1 else ''} ({shown})"


def sorted_target_warning(summary: Any, *, target: Any, sharding: str | None) -> str | None:
    """The warning for a file whose rows follow the target, when shards are contiguous parts of it."""
    if sharding != "contiguous" or not summary.looks_sorted():
        return None
    return (
        f"the rows of the file look sorted (or grouped) by the target {target!r}, and --sharding contiguous "
        "gives each shard a narrow range of it: the shard models will disagree and the fused model will be "
        "poor. Use --sharding shuffle (the default) or stratified."
    )


def split_rows(X: Any, y: Any, *, n_workers: int) -> tuple[Any, Any, str | None]:
    """Cut inputs with fewer row blocks than workers (a compressed CSV file is one block) into row blocks.

    Each of the ``max(2, n_workers)`` blocks keeps at least :data:`MIN_BLOCK_ROWS` rows. Returns ``X``, ``y``
    and a note saying what was done (``None`` when nothing was).
    """
    n_samples, n_blocks = int(X.shape[0]), int(X.numblocks[0])
    wanted = min(max(2, n_workers), n_samples // MIN_BLOCK_ROWS)
    if n_blocks >= wanted:
        return X, y, None
    rows = -(-n_samples // wanted)
    X = X.rechunk({0: rows})
    y = y.rechunk({0: rows}) if y is not None else None
    note = (
        f"the input was {n_blocks} row block(s); cut into {X.numblocks[0]} blocks of up to {rows:,} rows so "
        "that shards and work spread over the workers"
    )
    return X, y, note


def build_preprocessing(
    estimator: Any,
    info: Mapping[str, Any],
    *,
    sparse: bool = False,
    hash_features: int | None = None,
    crosses: Sequence[str] = (),
    hash_columns: Sequence[str] = (),
) -> tuple[Any, list[str]]:
    """Adapt the estimator to the table's columns; return it and lines describing the preprocessing.

    This is the single place where the command line decides how columns are prepared for a model:

    - text (and category) columns arrive as ordinal codes (``--categorical encode``, done by the reader, and
      reused by predict and evaluate); unseen values at predict time get the code -1;
    - rows whose target is missing were dropped by the reader;
    - tree models (shard ensembles of trees, HistGradientBoosting) split the codes and the numeric columns as
      they are;
    - models that compare features on one scale (the distributed linear models and the Cascade SVM) get a
      :class:`~daskml_lab.compose.ColumnTransformer` in front, inside the saved model: the codes one-hot
      encoded (:class:`~daskml_lab.preprocessing.OneHotEncoder`, unseen codes ignored) and the numeric columns
      imputed and standardised (:class:`~daskml_lab.preprocessing.SimpleImputer`,
      :class:`~daskml_lab.preprocessing.StandardScaler`). Its statistics take one pass over the data;
    - with ``--hash-features N`` the text columns (and the ``--cross`` pairs) of a linear model are hashed
      instead (:class:`~daskml_lab.preprocessing.HashingEncoder`, ``N`` sparse features), for wide models:
      the output is CSR, and ``--param model_partitions=...`` keeps such a model in parameter shards.

    Parameters
    ----------
    estimator : estimator
        The unfitted model (a shard ensemble, whose per-shard ``estimator`` is adapted, or a model).
    info : dict
        The ``info`` of :func:`daskml_lab.cli._data.read_training` (features, categories, n_dropped).
    sparse : bool, default=False
        Whether the rows are sparse (svmlight): they are used as they are, since centring would make them dense.
    hash_features : int, default=None
        ``--hash-features``: hash the text columns into this many features (linear models only).
    crosses : list of str, default=()
        ``--cross``: pairs ``"A,B"`` of hashed columns hashed together (with ``hash_features``).
    hash_columns : list of str, default=()
        ``--hash-columns``: columns hashed as categories with the text columns whatever their type (integer
        codes of a category, identifiers), instead of being standardised as numbers.

    Returns
    -------
    estimator : estimator
        The model, or a :class:`sklearn.pipeline.Pipeline` of the preprocessing and the model.
    lines : list of str
        What was built, to print.

    Raises
    ------
    ValueError
        For ``--hash-features`` with a tree model, sparse rows or no column to hash, an unknown
        ``--hash-columns`` name, or a ``--cross`` that does not name two hashed columns.
    """
    if hash_features is not None or crosses or hash_columns:
        return _hashed(estimator, info, hash_features, crosses, hash_columns, sparse=sparse)
    categories = info.get("categories") or {}
    lines = []
    if info.get("n_dropped"):
        lines.append(f"dropped {info['n_dropped']:,} rows whose target is missing")
    scaled = not sparse and _needs_scaling(estimator)
    if categories:
        how = "one-hot encoded below" if scaled else "split as numbers"
        lines.append(
            f"{len(categories)} text column(s) as ordinal codes ({how}; unseen values: -1): "
            + ", ".join(f"{name} ({len(values)})" for name, values in list(categories.items())[:12])
            + (", ..." if len(categories) > 12 else "")
        )
    if scaled:
        estimator, line = _scaled(estimator, info)
        lines.append(line)
    # Trees split ordinal codes as numbers well enough (within a point of scikit-learn's categorical
    # HistGradientBoosting on adult and diamonds, docs/benchmarks.md). HistGradientBoosting's
    # categorical_features would be better, but a fitted model then holds functools.partial(check_array),
    # a function, which the safe model format does not load without --trust.
    if not lines:
        lines.append("none (numeric columns used as they are)")
    return estimator, lines


def _needs_scaling(estimator: Any) -> bool:
    """Whether the model compares features on one scale: the distributed linear models and the Cascade SVM."""
    module = type(estimator).__module__
    return module.startswith("daskml_lab.linear_model") or type(estimator).__name__ == "CascadeSVC"


def _scaled(estimator: Any, info: Mapping[str, Any]) -> tuple[Any, str]:
    """``estimator`` behind one-hot codes and standardised numeric columns, and the line describing it."""
    from sklearn.pipeline import Pipeline, make_pipeline

    from daskml_lab.compose import ColumnTransformer
    from daskml_lab.preprocessing import OneHotEncoder, SimpleImputer, StandardScaler

    features = list(info.get("features") or range(int(info["n_features"])))
    coded = set(info.get("categories") or {})
    text = [i for i, name in enumerate(features) if str(name) in coded]
    numeric = [i for i in range(len(features)) if i not in set(text)]
    parts = []
    if numeric:
        parts.append(("numeric", make_pipeline(SimpleImputer(), StandardScaler()), numeric))
    if text:
        parts.append(("text", OneHotEncoder(handle_unknown="ignore"), text))
    prepare = ColumnTransformer(parts, remainder="drop")
    described = ", ".join(
        piece
        for piece in (
            f"{len(numeric)} numeric column(s) mean-imputed and standardised" if numeric else "",
            f"{len(text)} text column(s) one-hot encoded (unseen values ignored)" if text else "",
        )
        if piece
    )
    return Pipeline([("prepare", prepare), ("model", estimator)]), f"{described} (saved inside the model)"


def _hashed(
    estimator: Any,
    info: Mapping[str, Any],
    n_features: int | None,
    crosses: Sequence[str],
    hash_columns: Sequence[str],
    *,
    sparse: bool,
) -> tuple[Any, list[str]]:
    """``estimator`` behind hashed columns (text, ``hash_columns``, crosses) and standardised numeric ones,
    and the lines."""
    from sklearn.pipeline import Pipeline, make_pipeline

    from daskml_lab.compose import ColumnTransformer
    from daskml_lab.preprocessing import HashingEncoder, SimpleImputer, StandardScaler

    if n_features is None:
        msg = "--cross and --hash-columns need --hash-features N: the hashed columns and crosses go into N features."
        raise ValueError(msg)
    if sparse or not _needs_scaling(estimator):
        what = "sparse rows (svmlight)" if sparse else f"the model {type(estimator).__name__}"
        msg = (
            f"--hash-features applies to text columns of a table fitted by a linear model "
            f"(logistic-regression, ridge, linear-svc, ...), not to {what}. Drop --hash-features (trees split "
            "the ordinal codes), or choose a linear --model."
        )
        raise ValueError(msg)
    features = [str(name) for name in (info.get("features") or range(int(info["n_features"])))]
    unknown = [name for name in hash_columns if name not in features]
    if unknown:
        msg = (
            f"--hash-columns names {unknown}, which are not feature columns of the table: {features[:12]}"
            + (", ..." if len(features) > 12 else "")
        )
        raise ValueError(msg)
    extra = sorted(set(hash_columns) - set(info.get("categories") or {}))  # hashed although numbers
    coded = set(info.get("categories") or {}) | set(hash_columns)
    text = [i for i, name in enumerate(features) if name in coded]
    if not text:
        msg = (
            f"--hash-features hashes text columns, but the table has none (columns: {features[:12]}). Name the "
            "columns of whole-number category codes or identifiers to hash with --hash-columns A,B, or drop "
            "--hash-features for a numeric table."
        )
        raise ValueError(msg)
    numeric = [i for i in range(len(features)) if i not in set(text)]
    pairs = []
    for cross in crosses:
        names = [name.strip() for name in str(cross).split(",")]
        if len(names) != 2 or any(name not in coded for name in names):
            msg = (
                f"--cross {cross!r} must name two hashed columns as A,B; the text columns and --hash-columns "
                f"are {sorted(coded)[:12]}."
            )
            raise ValueError(msg)
        # the encoder sees the text columns only: its columns are numbered 0 .. len(text) - 1
        pairs.append(tuple(text.index(features.index(name)) for name in names))
    parts = [("hashed", HashingEncoder(n_features=int(n_features), crosses=pairs), text)]
    if numeric:
        parts.insert(0, ("numeric", make_pipeline(SimpleImputer(), StandardScaler()), numeric))
    prepare = ColumnTransformer(parts, remainder="drop", sparse_threshold=1.0)
    lines = []
    if info.get("n_dropped"):
        lines.append(f"dropped {info['n_dropped']:,} rows whose target is missing")
    lines.append(
        f"{len(text) - len(extra)} text column(s)"
        + (f", {len(extra)} of --hash-columns" if extra else "")
        + f" and {len(pairs)} cross(es) hashed into {int(n_features):,} sparse features"
        + (f", {len(numeric)} numeric column(s) mean-imputed and standardised" if numeric else "")
        + " (saved inside the model)"
    )
    return Pipeline([("prepare", prepare), ("model", estimator)]), lines


def adapt_to_classes(estimator: Any, summary: Any) -> str | None:
    """Let HistGradientBoosting stop early on its training loss when a class is rare; return a note, or None.

    Its default early stopping holds out a stratified 10% of each shard, which fails for a class with a single
    row in the shard; ``validation_fraction=None`` makes it watch the training loss instead.
    """
    model = getattr(estimator, "estimator", estimator)
    counts = summary.counts or {}
    params = model.get_params(deep=False)
    if not counts or "validation_fraction" not in params or "early_stopping" not in params:
        return None
    rarest = min(counts, key=counts.get)
    if counts[rarest] >= RARE_CLASS_ROWS or params["validation_fraction"] is None:
        return None
    model.set_params(validation_fraction=None)
    return (
        f"class {rarest!r} has {counts[rarest]} row(s): {type(model).__name__} stops early on its training loss "
        "(validation_fraction=None), as a stratified validation split of a shard needs 2 rows per class"
    )
