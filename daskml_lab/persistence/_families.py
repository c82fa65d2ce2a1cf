"""Consistency checks of a loaded model's arrays for the families beyond trees, libsvm and linear models.

Each check takes one object of a loaded model and the number of features its nearest owner was fitted on,
and names what does not fit together, or returns None. Where scikit-learn's compiled code reads the arrays
without bounds checks, the check is what stands between a crafted file and a read or write outside them:

- ensembles of scikit-learn (forests, extra trees, bagging, classic gradient boosting): the ensemble
  validates ``X`` once and its trees read it unchecked, so no member may use more features than the ensemble;
  classic gradient boosting writes tree ``k``'s output into column ``k`` of an array sized from
  ``n_trees_per_iteration_`` and ``init_``, so ``estimators_`` must have exactly that many columns of
  single-output regression trees;
- histogram gradient boosting: one list of ``n_trees_per_iteration_`` predictors per iteration, the baseline
  of shape ``(1, n_trees_per_iteration_)``, and categorical splits only on features the binning marks as
  categorical (the predictor indexes the known categories by feature, unchecked);
- neighbours models: training rows, labels and search tree of matching sizes, class labels inside
  ``[0, n_classes)`` (the class-mode kernel counts into one slot per class, unchecked);
- multilayer perceptrons: a chain of weight matrices from ``n_features_in_`` to ``n_outputs_``;
- fusion strategies of daskml_lab (objects with ``n_members_``): one weight and one class index per member,
  class indices inside ``[0, n_classes)``;
- every estimator: the per-feature and per-class arrays of
  :func:`~daskml_lab.persistence._declared.shape_rule_problem` (naive Bayes, scalers, ...).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import is_classifier
from sklearn.ensemble import BaseEnsemble, GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.tree import DecisionTreeRegressor

from daskml_lab._compat import hist_gradient_boosting_state, neighbors_state, sklearn_tree_types
from daskml_lab.persistence._declared import PER_CLASS, PER_FEATURE, shape_rule_problem

__all__ = ["family_problem"]


def family_problem(obj: Any, n_features: int | None) -> str | None:
    """The first inconsistency of ``obj``'s arrays found by the family checks, or None."""
    for check in (
        _ensemble_problem,
        _gradient_boosting_problem,
        _hist_gradient_boosting_problem,
        _neighbors_problem,
        _mlp_problem,
        _fusion_problem,
        _shape_rules,
    ):
        problem = check(obj, n_features)
        if problem is not None:
            return problem
    return None


def _own_int(obj: Any, name: str) -> int | None:
    value = vars(obj).get(name)
    return int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else None


def _n_classes(obj: Any) -> int | None:
    classes = vars(obj).get("classes_")
    return len(classes) if isinstance(classes, np.ndarray) and classes.ndim == 1 else None


def _members(obj: Any) -> list[Any]:
    members = vars(obj).get("estimators_")
    if isinstance(members, np.ndarray) and members.dtype == object:
        return list(members.ravel())
    return list(members) if isinstance(members, list | tuple) else []


def _ensemble_problem(obj: Any, n_features: int | None) -> str | None:
    if not isinstance(obj, BaseEnsemble) or n_features is None:
        return None
    for index, member in enumerate(_members(obj)):
        used = _own_int(member, "n_features_in_") if hasattr(member, "__dict__") else None
        if used is not None and used > n_features:
            return (
                f"has a member (estimators_, number {index}) fitted on {used} features, more than the "
                f"ensemble's {n_features} (n_features_in_), which its trees would read outside the input"
            )
    return None


def _gradient_boosting_problem(obj: Any, n_features: int | None) -> str | None:
    if not isinstance(
        obj, GradientBoostingClassifier | GradientBoostingRegressor
    ) or "estimators_" not in vars(obj):
        return None
    members = vars(obj)["estimators_"]
    n_trees = _own_int(obj, "n_trees_per_iteration_")
    n_classes = _n_classes(obj)
    if is_classifier(obj):
        expected = None if n_classes is None else (1 if n_classes <= 2 else n_classes)
    else:
        expected = 1
    if expected is None or n_trees != expected:
        return f"has n_trees_per_iteration_={n_trees}, not {expected} for its classes_"
    if not isinstance(members, np.ndarray) or members.ndim != 2 or members.shape[0] < 1:
        return "has no valid estimators_ (a 2-D array of regression trees)"
    if members.shape[1] != n_trees:
        return f"has estimators_ of shape {members.shape}, not (n_estimators, {n_trees}) (n_trees_per_iteration_)"
    tree_type, _ = sklearn_tree_types()
    for member in members.ravel():
        tree = vars(member).get("tree_") if isinstance(member, DecisionTreeRegressor) else None
        if tree_type is None or not isinstance(tree, tree_type):
            return "has estimators_ that are not fitted regression trees"
        if int(tree.n_outputs) != 1 or int(tree.max_n_classes) != 1:
            return "has a tree in estimators_ with more than one output (gradient boosting adds one per tree)"
    init = vars(obj).get("init_")
    init_classes = vars(init).get("classes_") if hasattr(init, "__dict__") else None
    if is_classifier(obj) and isinstance(init_classes, np.ndarray) and len(init_classes) != n_classes:
        return f"has an init_ estimator with {len(init_classes)} classes for its {n_classes}"
    return None


def _hist_gradient_boosting_problem(obj: Any, n_features: int | None) -> str | None:
    state = hist_gradient_boosting_state(obj)
    if state is None:
        return None
    n_trees, predictors = state["n_trees_per_iteration"], state["predictors"]
    if not isinstance(n_trees, numbers.Integral) or n_trees < 1:
        return "has no valid n_trees_per_iteration_"
    if not isinstance(predictors, list) or any(
        not isinstance(row, list) or len(row) != n_trees for row in predictors
    ):
        return (
            f"has predictors that are not one list of {n_trees} trees (n_trees_per_iteration_) per iteration"
        )
    baseline = state["baseline"]
    if not isinstance(baseline, np.ndarray) or baseline.shape != (1, n_trees) or baseline.dtype.kind != "f":
        return f"has a baseline prediction of shape {getattr(baseline, 'shape', None)}, not (1, {n_trees})"
    is_categorical = state["is_categorical"]
    if (
        not isinstance(is_categorical, np.ndarray)
        or is_categorical.ndim != 1
        or (n_features is not None and is_categorical.shape != (n_features,))
    ):
        return f"has binning that does not mark each of its {n_features} features categorical or not"
    categorical = set(np.flatnonzero(is_categorical).tolist())
    for row in predictors:
        for predictor in row:
            nodes = np.asarray(getattr(predictor, "nodes", np.empty(0)))
            if "is_categorical" not in (nodes.dtype.names or ()):
                return "has a predictor without node fields"
            split = (nodes["is_leaf"] == 0) & (nodes["is_categorical"] != 0)
            if not set(nodes["feature_idx"][split].tolist()) <= categorical:
                return "has a categorical split on a feature its binning does not mark as categorical"
    return None


def _neighbors_problem(obj: Any, n_features: int | None) -> str | None:
    state = neighbors_state(obj)
    if state is None:
        return None
    fit_X, y, n_samples = state["fit_X"], state["y"], state["n_samples_fit"]
    if not (isinstance(fit_X, np.ndarray) or sp.issparse(fit_X)) or fit_X.ndim != 2:
        return "has training rows (_fit_X) that are not a 2-D array"
    if fit_X.shape[0] != n_samples or (n_features is not None and fit_X.shape[1] != n_features):
        return (
            f"has training rows (_fit_X) of shape {fit_X.shape}, not ({n_samples}, {n_features}) "
            "(n_samples_fit_, n_features_in_)"
        )
    if y is None:
        return None
    if not isinstance(y, np.ndarray) or y.ndim not in (1, 2) or y.shape[0] != n_samples:
        return f"has training labels (_y) of shape {getattr(y, 'shape', None)} for {n_samples} rows"
    classes = vars(obj).get("classes_")
    if not is_classifier(obj):
        return None
    per_output = [classes] if y.ndim == 1 else list(classes) if isinstance(classes, list) else []
    codes = y.reshape(len(y), -1)
    if len(per_output) != codes.shape[1]:
        return "has training labels (_y) and classes_ for different numbers of outputs"
    for column, labels in enumerate(per_output):
        if (
            not isinstance(labels, np.ndarray)
            or codes.dtype.kind not in "iu"
            or (codes.size and (codes[:, column].min() < 0 or codes[:, column].max() >= len(labels)))
        ):
            return f"has training labels (_y) that are not class codes in [0, {len(labels)})"
    return None


def _mlp_problem(obj: Any, n_features: int | None) -> str | None:
    if not isinstance(obj, MLPClassifier | MLPRegressor) or "coefs_" not in vars(obj):
        return None
    coefs, intercepts = vars(obj)["coefs_"], vars(obj).get("intercepts_")
    if (
        not isinstance(coefs, list)
        or not isinstance(intercepts, list)
        or not coefs
        or len(coefs) != len(intercepts)
        or any(not isinstance(a, np.ndarray) or a.ndim != 2 for a in coefs)
    ):
        return "has weights (coefs_, intercepts_) that are not two lists of one array per layer"
    width = n_features
    for layer, (coef, intercept) in enumerate(zip(coefs, intercepts, strict=True)):
        if width is not None and coef.shape[0] != width:
            return f"has layer {layer} weights (coefs_[{layer}]) of shape {coef.shape} for {width} inputs"
        if not isinstance(intercept, np.ndarray) or intercept.shape != (coef.shape[1],):
            return f"has intercepts_[{layer}] of shape {getattr(intercept, 'shape', None)}, not ({coef.shape[1]},)"
        width = coef.shape[1]
    if _own_int(obj, "n_outputs_") != width or _own_int(obj, "n_layers_") != len(coefs) + 1:
        return f"has n_outputs_ or n_layers_ that do not match its {len(coefs)} weight matrices"
    return None


def _fusion_problem(obj: Any, n_features: int | None) -> str | None:
    n_members = _own_int(obj, "n_members_")
    if n_members is None:
        return None
    members = vars(obj).get("estimators_")
    if isinstance(members, list) and len(members) != n_members:
        return f"has {len(members)} estimators_ for n_members_={n_members}"
    weights = vars(obj).get("weights_")
    if isinstance(weights, np.ndarray | list) and len(weights) != n_members:
        return f"has {len(weights)} weights (weights_) for its {n_members} members (n_members_)"
    class_index = vars(obj).get("class_index_")
    n_classes = _n_classes(obj)
    if class_index is None or n_classes is None:
        return None
    if not isinstance(class_index, list) or len(class_index) != n_members:
        return f"has class indices (class_index_) that are not one array per member ({n_members})"
    for position, index in enumerate(class_index):
        if not isinstance(index, np.ndarray) or index.dtype.kind not in "iu" or index.ndim != 1:
            return f"has class indices of member {position} (class_index_) that are not a 1-D integer array"
        if index.size and (index.min() < 0 or index.max() >= n_classes):
            return f"has class indices of member {position} (class_index_) outside [0, {n_classes})"
        member_classes = vars(members[position]).get("classes_") if isinstance(members, list) else None
        if isinstance(member_classes, np.ndarray) and len(member_classes) != len(index):
            return f"has {len(index)} class indices for member {position}, which has {len(member_classes)} classes"
    return None


def _shape_rules(obj: Any, _n_features: int | None) -> str | None:
    """The per-feature and per-class rules, against the object's own ``n_features_in_`` and ``classes_``."""
    shapes = {
        name: tuple(int(n) for n in value.shape)
        for name in {*PER_FEATURE, *PER_CLASS}
        if isinstance(value := vars(obj).get(name), np.ndarray)
    }
    return shape_rule_problem(shapes, _own_int(obj, "n_features_in_"), _n_classes(obj)) if shapes else None
