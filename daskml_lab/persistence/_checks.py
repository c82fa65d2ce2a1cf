"""Checks of the trees inside a loaded model, before anything predicts with it.

scikit-learn's compiled tree code follows the child and feature indices stored in a tree without bounds
checks, so a crafted file could make prediction read outside its arrays. Trees of decision-tree models,
histogram gradient boosting predictors and the search trees of neighbours models are checked here: every
child index points forward inside the tree and every feature index is below ``n_features_in_`` of the
estimator holding the tree. The private tree classes come from :func:`daskml_lab._compat.sklearn_tree_types`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.neighbors import BallTree, KDTree

from daskml_lab._compat import sklearn_tree_types
from daskml_lab.persistence._pandas import has_state

__all__ = ["structure_problem"]


def structure_problem(model: Any) -> str | None:
    """What is wrong with the index arrays of the trees in a loaded model, or None.

    Parameters
    ----------
    model : object
        The loaded model; every object reachable through containers and instance attributes is visited.

    Returns
    -------
    str or None
        A description of the first problem found.
    """
    tree, predictor = sklearn_tree_types()
    checks = [
        (tree, _tree_problem),
        (predictor, _predictor_problem),
        (KDTree | BallTree, _binary_tree_problem),
    ]
    return _walk(model, None, set(), tuple((cls, check) for cls, check in checks if cls is not None))


def _walk(
    obj: Any, n_features: int | None, seen: set[int], checks: tuple[tuple[Any, Any], ...]
) -> str | None:
    if obj is None or id(obj) in seen or isinstance(obj, str | bytes | numbers.Number | np.ndarray | type):
        return None
    seen.add(id(obj))
    for cls, check in checks:
        if isinstance(obj, cls):
            return check(obj, n_features)
    children: Any = ()
    if isinstance(obj, dict):
        children = obj.values()
    elif isinstance(obj, list | tuple | set | frozenset):
        children = obj
    elif has_state(obj):
        owned = getattr(obj, "n_features_in_", None)
        if isinstance(owned, numbers.Integral):
            n_features = int(owned)
        children = vars(obj).values()
    for child in children:
        problem = _walk(child, n_features, seen, checks)
        if problem is not None:
            return problem
    return None


def _tree_problem(tree: Any, n_features: int | None) -> str | None:
    n_nodes = int(tree.node_count)
    left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
    feature = np.asarray(tree.feature)
    if n_nodes < 1 or left.shape != (n_nodes,) or right.shape != (n_nodes,) or feature.shape != (n_nodes,):
        return "a decision tree has arrays of inconsistent lengths"
    if np.asarray(tree.value).shape != (n_nodes, int(tree.n_outputs), int(tree.max_n_classes)):
        return "a decision tree has a value array of the wrong shape"
    leaf = left == -1
    if np.any(leaf != (right == -1)):
        return "a decision tree has a node with a single child"
    index = np.arange(n_nodes)
    inner = ~leaf
    limit = int(tree.n_features) if n_features is None else min(int(tree.n_features), n_features)
    if np.any((left[inner] <= index[inner]) | (left[inner] >= n_nodes)) or np.any(
        (right[inner] <= index[inner]) | (right[inner] >= n_nodes)
    ):
        return "a decision tree has a child index out of range"
    if np.any((feature[inner] < 0) | (feature[inner] >= limit)):
        return f"a decision tree splits on a feature index outside [0, {limit})"
    return None


def _predictor_problem(predictor: Any, n_features: int | None) -> str | None:
    nodes = np.asarray(predictor.nodes)
    names = nodes.dtype.names or ()
    if not {"left", "right", "feature_idx", "is_leaf", "is_categorical", "bitset_idx"} <= set(names):
        return "a gradient boosting tree lacks node fields"
    n_nodes = len(nodes)
    index = np.arange(n_nodes)
    inner = nodes["is_leaf"] == 0
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    if (
        n_nodes < 1
        or np.any((left[inner] <= index[inner]) | (left[inner] >= n_nodes))
        or np.any((right[inner] <= index[inner]) | (right[inner] >= n_nodes))
    ):
        return "a gradient boosting tree has a child index out of range"
    feature = nodes["feature_idx"].astype(np.int64)[inner]
    if np.any(feature < 0) or (n_features is not None and np.any(feature >= n_features)):
        return "a gradient boosting tree splits on a feature index out of range"
    categorical = inner & (nodes["is_categorical"] != 0)
    n_bitsets = np.asarray(predictor.raw_left_cat_bitsets).shape[0]
    if np.any(nodes["bitset_idx"].astype(np.int64)[categorical] >= n_bitsets):
        return "a gradient boosting tree has a category bitset index out of range"
    return None


def _binary_tree_problem(tree: Any, _n_features: int | None) -> str | None:
    data, idx_array, node_data, node_bounds = (np.asarray(a) for a in tree.get_arrays())
    n_samples = data.shape[0] if data.ndim == 2 else -1
    if idx_array.shape != (n_samples,) or not np.array_equal(np.sort(idx_array), np.arange(n_samples)):
        return "a neighbours search tree has an index array that is not a permutation of its rows"
    n_nodes = len(node_data)
    if n_nodes < 1 or node_bounds.ndim != 3 or node_bounds.shape[1:] != (n_nodes, data.shape[1]):
        return "a neighbours search tree has node arrays of inconsistent shapes"
    start, end = node_data["idx_start"], node_data["idx_end"]
    if np.any((start < 0) | (start > end) | (end > n_samples)):
        return "a neighbours search tree has a node range out of bounds"
    inner = np.flatnonzero(node_data["is_leaf"] == 0)
    if np.any(2 * inner + 2 >= n_nodes):
        return "a neighbours search tree has a child index out of range"
    return None
