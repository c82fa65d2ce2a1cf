"""Model names of the command line and the estimators they stand for.

Three families:

- distributed linear models of :mod:`daskml_lab.linear_model`, trained on all rows by a solver (``--solver``);
- :class:`~daskml_lab.ensemble.CascadeSVC` (``cascade-svc``);
- scikit-learn estimators trained once per shard and fused (``--fusion``): they become a
  :class:`~daskml_lab.ensemble.ShardEnsembleClassifier` or :class:`~daskml_lab.ensemble.ShardEnsembleRegressor`
  around the estimator of the task.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MODELS", "ModelSpec", "build_estimator", "get_model", "infer_task"]

CLASSIFICATION = "classification"
REGRESSION = "regression"


@dataclass(frozen=True)
class ModelSpec:
    """One model name of the command line.

    Attributes
    ----------
    name : str
        The name given to ``--model``.
    family : {"linear", "cascade", "shard"}
        Distributed linear model, Cascade SVM, or scikit-learn estimator trained per shard.
    classifier, regressor : str or None
        ``"module:Class"`` of the estimator for each task (``None`` when the task is not supported).
    """

    name: str
    family: str
    classifier: str | None
    regressor: str | None

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks the name supports."""
        return tuple(
            task
            for task, target in ((CLASSIFICATION, self.classifier), (REGRESSION, self.regressor))
            if target is not None
        )

    def estimator_class(self, task: str) -> type:
        """The estimator class for ``task`` (imported on demand)."""
        target = self.classifier if task == CLASSIFICATION else self.regressor
        if target is None:
            other = "regression" if task == CLASSIFICATION else "classification"
            msg = f"--model {self.name} does only {other}, but the task is {task}."
            raise ValueError(msg)
        module, name = target.split(":")
        return getattr(importlib.import_module(module), name)


def _linear(name: str, classifier: str | None, regressor: str | None) -> ModelSpec:
    return ModelSpec(name, "linear", classifier, regressor)


def _shard(name: str, classifier: str | None, regressor: str | None) -> ModelSpec:
    return ModelSpec(name, "shard", classifier, regressor)


_LM = "daskml_lab.linear_model"
#: Every model name, in the order the help lists them.
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _linear("logistic-regression", f"{_LM}:LogisticRegression", None),
        _linear("linear-svc", f"{_LM}:LinearSVC", None),
        _linear("linear-regression", None, f"{_LM}:LinearRegression"),
        _linear("ridge", None, f"{_LM}:Ridge"),
        _linear("lasso", None, f"{_LM}:Lasso"),
        _linear("elastic-net", None, f"{_LM}:ElasticNet"),
        _linear("huber", None, f"{_LM}:HuberRegressor"),
        _linear("poisson", None, f"{_LM}:PoissonRegressor"),
        _linear("gamma", None, f"{_LM}:GammaRegressor"),
        _linear("tweedie", None, f"{_LM}:TweedieRegressor"),
        ModelSpec("cascade-svc", "cascade", "daskml_lab.ensemble:CascadeSVC", None),
        _shard(
            "random-forest",
            "sklearn.ensemble:RandomForestClassifier",
            "sklearn.ensemble:RandomForestRegressor",
        ),
        _shard(
            "extra-trees", "sklearn.ensemble:ExtraTreesClassifier", "sklearn.ensemble:ExtraTreesRegressor"
        ),
        _shard("decision-tree", "sklearn.tree:DecisionTreeClassifier", "sklearn.tree:DecisionTreeRegressor"),
        _shard(
            "hist-gradient-boosting",
            "sklearn.ensemble:HistGradientBoostingClassifier",
            "sklearn.ensemble:HistGradientBoostingRegressor",
        ),
        _shard("svc", "sklearn.svm:SVC", None),
        _shard("svr", None, "sklearn.svm:SVR"),
        _shard(
            "kneighbors", "sklearn.neighbors:KNeighborsClassifier", "sklearn.neighbors:KNeighborsRegressor"
        ),
        _shard("naive-bayes", "sklearn.naive_bayes:GaussianNB", None),
        _shard("sgd", "sklearn.linear_model:SGDClassifier", "sklearn.linear_model:SGDRegressor"),
        _shard("sklearn-logistic-regression", "sklearn.linear_model:LogisticRegression", None),
        _shard("sklearn-ridge", None, "sklearn.linear_model:Ridge"),
    )
}


def get_model(name: str) -> ModelSpec:
    """The spec of a model name, or a ``ValueError`` listing the valid names."""
    if name not in MODELS:
        groups = {
            "linear models": [n for n, s in MODELS.items() if s.family == "linear"],
            "cascade": [n for n, s in MODELS.items() if s.family == "cascade"],
            "scikit-learn models trained per shard (with --fusion)": [
                n for n, s in MODELS.items() if s.family == "shard"
            ],
        }
        listed = "; ".join(f"{group}: {', '.join(names)}" for group, names in groups.items())
        msg = f"Unknown model {name!r}. Valid models are {listed}."
        raise ValueError(msg)
    return MODELS[name]


def infer_task(y_dtype: Any) -> str:
    """``"regression"`` for a float target, ``"classification"`` for labels (integers, text, booleans)."""
    return REGRESSION if getattr(y_dtype, "kind", "O") in "fc" else CLASSIFICATION


def build_estimator(
    spec: ModelSpec,
    task: str,
    *,
    params: Mapping[str, Any],
    fusion: str | None,
    fusion_params: Mapping[str, Any],
    solver: str | None,
    solver_options: Mapping[str, Any],
    ensemble_options: Mapping[str, Any],
    random_state: int | None,
    checkpoint: Any = None,
) -> tuple[Any, list[str]]:
    """The unfitted estimator for the command line's choices, and notes to print about it.

    Parameters
    ----------
    spec : ModelSpec
        The model.
    task : {"classification", "regression"}
        The task.
    params : dict
        Parameters of the model (for shard ensembles: of the scikit-learn estimator trained per shard).
    fusion : str or None
        Fusion name (shard models only; default ``"soft-voting"``).
    fusion_params : dict
        Parameters of the fusion object.
    solver : str or None
        Solver of a linear model.
    solver_options : dict
        ``solver_options`` of a linear model.
    ensemble_options : dict
        ``n_shards``, ``sharding``, ``validation_fraction`` given on the command line.
    random_state : int or None
        Seed of the model (for shard ensembles: of the ensemble, which seeds every shard model).
    checkpoint : path or None, default=None
        Checkpoint directory of a linear model, shard ensemble or cascade SVM (see :doc:`/checkpoints`).

    Returns
    -------
    estimator : estimator instance
    notes : list of str

    Raises
    ------
    ValueError
        For a parameter the estimator does not have (the message lists those it has).
    """
    from daskml_lab.ensemble import ShardEnsembleClassifier, ShardEnsembleRegressor
    from daskml_lab.fusion import resolve_fusion

    notes: list[str] = []
    cls = spec.estimator_class(task)
    model = cls()
    _set_params(model, dict(params), what=f"--model {spec.name} ({cls.__name__})", option="--param")
    if spec.family == "linear":
        extra: dict[str, Any] = {}
        if solver is not None:
            extra["solver"] = solver
        if solver_options:
            extra["solver_options"] = {**(model.get_params().get("solver_options") or {}), **solver_options}
        if random_state is not None:
            extra["random_state"] = random_state
        if checkpoint is not None:
            extra["checkpoint"] = str(checkpoint)
        model.set_params(**extra)
        return model, notes
    if spec.family == "cascade":
        extra = {k: v for k, v in ensemble_options.items() if k in ("n_shards", "sharding")}
        if random_state is not None:
            extra["random_state"] = random_state
        if checkpoint is not None:
            extra["checkpoint"] = str(checkpoint)
        model.set_params(**extra)
        return model, notes
    fusion_object = resolve_fusion(fusion or "soft-voting")
    _set_params(
        fusion_object,
        dict(fusion_params),
        what=f"--fusion {fusion or 'soft-voting'}",
        option="--fusion-param",
    )
    classification = task == CLASSIFICATION
    if spec.name == "svc" and not hasattr(model, "predict_proba"):
        try:
            fusion_object.check_base_estimator(model, classification=classification)
        except ValueError:
            from sklearn.calibration import CalibratedClassifierCV

            model = CalibratedClassifierCV(model, ensemble=False)
            notes.append(
                "svc: probabilities from CalibratedClassifierCV(SVC(...), ensemble=False) (Platt scaling), "
                "as the fusion averages probabilities"
            )
    ensemble_cls = ShardEnsembleClassifier if classification else ShardEnsembleRegressor
    # A name reads better in the saved parameters; an object carries the options.
    chosen = fusion_object if fusion_params else (fusion or "soft-voting")
    ensemble = ensemble_cls(
        model,
        fusion=chosen,
        random_state=random_state,
        checkpoint=None if checkpoint is None else str(checkpoint),
        **ensemble_options,
    )
    return ensemble, notes


def _set_params(obj: Any, params: dict[str, Any], *, what: str, option: str) -> None:
    valid = sorted(obj.get_params(deep=False))
    unknown = sorted(set(params) - set(valid))
    if unknown:
        msg = f"{what} has no parameter(s) {unknown} (given with {option}). Its parameters are: {', '.join(valid)}."
        raise ValueError(msg)
    obj.set_params(**params)
