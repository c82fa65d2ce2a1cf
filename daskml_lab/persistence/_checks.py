"""Checks of the arrays inside a loaded model that compiled code reads, before anything predicts with it.

scikit-learn's compiled code trusts the arrays of a fitted model: tree code follows the stored child and
feature indices, and libsvm sizes its loops from the support-vector counts, without bounds checks. A crafted
file (whose checksum the forger recomputed) could make prediction read outside its arrays, crash, run for
minutes or silently answer with the wrong classes. Every object of a loaded model is visited, and:

- trees of decision-tree models, histogram gradient boosting predictors and the search trees of neighbours
  models: every child index points forward inside the tree and every feature index is below
  ``n_features_in_`` of the estimator holding the tree;
- libsvm models (SVC, NuSVC, SVR, NuSVR, OneClassSVM, also inside CascadeSVC, calibrated classifiers and
  shard ensembles): support indices in range, class counts summing to the number of support vectors, dual
  coefficients, intercepts, probability parameters and support vectors of the shapes libsvm reads;
- linear models (ours and scikit-learn's: anything with ``coef_``): coefficients of shape
  ``(n_features_in_,)`` or ``(n_outputs, n_features_in_)``, one row per class (one for two classes) for a
  classifier, and an intercept per row.

The other families (ensembles, gradient boosting, neighbours, perceptrons, naive Bayes, fusion strategies) are
checked by :mod:`daskml_lab.persistence._families`. The private tree classes and libsvm attributes come from
:mod:`daskml_lab._compat`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import BallTree, KDTree

from daskml_lab._compat import libsvm_state, sklearn_tree_types
from daskml_lab.persistence._families import family_problem
from daskml_lab.persistence._pandas import has_state
from daskml_lab.persistence._streamed import _StoredColumns

__all__ = ["structure_problem"]


def structure_problem(model: Any) -> str | None:
    """What is wrong with the arrays of the trees, libsvm and linear models in a loaded model, or None.

    Parameters
    ----------
    model : object
        The loaded model; every object reachable through containers and instance attributes is visited.

    Returns
    -------
    str or None
        A description of the first problem found, naming where it is (``CascadeSVC.final_estimator_``).
    """
    tree, predictor = sklearn_tree_types()
    checks = [
        (tree, _tree_problem),
        (predictor, _predictor_problem),
        (KDTree | BallTree, _binary_tree_problem),
    ]
    checked = tuple((cls, check) for cls, check in checks if cls is not None)
    return _walk(model, None, set(), checked, type(model).__name__)


def _walk(
    obj: Any, n_features: int | None, seen: set[int], checks: tuple[tuple[Any, Any], ...], where: str
) -> str | None:
    if obj is None or id(obj) in seen or isinstance(obj, str | bytes | numbers.Number | type):
        return None
    if isinstance(obj, np.ndarray) and obj.dtype != object:
        return None
    seen.add(id(obj))
    for cls, check in checks:
        if isinstance(obj, cls):
            problem = check(obj, n_features)
            return None if problem is None else f"{problem} (at {where})"
    children: Any = ()
    if isinstance(obj, dict):
        children = ((f"{where}[{key!r}]", value) for key, value in obj.items())
    elif isinstance(obj, list | tuple):
        children = ((f"{where}[{index}]", value) for index, value in enumerate(obj))
    elif isinstance(obj, np.ndarray):  # objects in an array: the trees of classic gradient boosting
        children = ((f"{where}[{index}]", value) for index, value in enumerate(obj.ravel()))
    elif isinstance(obj, set | frozenset):
        children = ((where, value) for value in obj)
    elif has_state(obj):
        owned = getattr(obj, "n_features_in_", None)
        if isinstance(owned, numbers.Integral):
            n_features = int(owned)
        problem = _estimator_problem(obj, n_features)
        if problem is not None:
            named = where if where == type(obj).__name__ else f"{where} ({type(obj).__name__})"
            return f"{named} {problem}"
        children = ((f"{where}.{name}", value) for name, value in vars(obj).items())
    for child_where, child in children:
        problem = _walk(child, n_features, seen, checks, child_where)
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
    bitsets = np.asarray(predictor.raw_left_cat_bitsets)
    if bitsets.ndim != 2 or bitsets.shape[1] != 8 or bitsets.dtype != np.uint32:
        return "a gradient boosting tree has category bitsets that are not rows of 8 32-bit words"
    if np.any(nodes["bitset_idx"].astype(np.int64)[categorical] >= bitsets.shape[0]):
        return "a gradient boosting tree has a category bitset index out of range"
    return None


def _binary_tree_problem(tree: Any, n_features: int | None) -> str | None:
    data, idx_array, node_data, node_bounds = (np.asarray(a) for a in tree.get_arrays())
    n_samples = data.shape[0] if data.ndim == 2 else -1
    if n_features is not None and (data.ndim != 2 or data.shape[1] != n_features):
        return f"a neighbours search tree holds rows of shape {data.shape[1:]}, not ({n_features},) features"
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


def _estimator_problem(obj: Any, n_features: int | None) -> str | None:
    """The arrays of a libsvm model or a linear model that do not fit together (other objects: None)."""
    state = libsvm_state(obj)
    if state is not None:
        problem = _libsvm_problem({**state, "classes": vars(obj).get("classes_")}, n_features)
    elif "coef_" in vars(obj):
        problem = _linear_problem(obj, n_features)
    else:
        problem = None
    return problem if problem is not None else family_problem(obj, n_features)


def _shape(array: Any) -> tuple[int, ...] | None:
    """The shape of a numpy array, a scipy sparse matrix or streamed coefficients (checked as they are read),
    else None."""
    if isinstance(array, np.ndarray | _StoredColumns) or sp.issparse(array):
        return tuple(int(n) for n in array.shape)
    return None


def _is_array(array: Any, shape: tuple[int, ...], kind: str) -> bool:
    """Whether ``array`` is a numpy array of exactly ``shape`` and dtype kind ``kind`` (``"i"`` or ``"f"``)."""
    return isinstance(array, np.ndarray) and array.shape == shape and array.dtype.kind == kind


def _libsvm_problem(state: dict[str, Any], n_features: int | None) -> str | None:
    """The shapes libsvm's ``set_model`` reads, checked against each other (see ``_compat.libsvm_state``)."""
    support, n_support = state["support"], state["n_support"]
    if not isinstance(support, np.ndarray) or support.ndim != 1 or support.dtype != np.int32:
        return "has no valid support_ (a 1-D array of int32 row indices)"
    n_sv = support.shape[0]
    shape_fit = state["shape_fit"]
    if (
        not isinstance(shape_fit, tuple)
        or not shape_fit
        or not all(isinstance(n, numbers.Integral) and n >= 0 for n in shape_fit)
    ):
        return "has no valid shape_fit_ (the shape of its training data)"
    if n_sv and (support.min() < 0 or support.max() >= shape_fit[0]):
        return f"has support indices outside [0, {shape_fit[0]}) (the rows it was trained on)"
    classifier = state["impl"] in ("c_svc", "nu_svc")
    if classifier:
        n_classes = _n_classes(state)
        if n_classes is None:
            return "has no valid classes_ (at least two classes)"
        rows, n_pairs = n_classes - 1, n_classes * (n_classes - 1) // 2
        if (
            not _is_array(n_support, (n_classes,), "i")
            or n_support.dtype != np.int32
            or np.any(n_support < 0)
        ):
            return f"has support vector counts per class (_n_support) that are not {n_classes} non-negative counts"
        if int(n_support.sum()) != n_sv:
            return (
                f"has support vector counts per class (_n_support) summing to {int(n_support.sum())}, not to "
                f"its {n_sv} support vectors"
            )
        class_weight = state["class_weight"]
        if not _is_array(class_weight, (n_classes,), "f"):
            return f"has class weights (class_weight_) that are not {n_classes} numbers"
    else:
        rows, n_pairs = 1, 1
        if not _is_array(n_support, (2,), "i") or n_support.dtype != np.int32 or int(n_support[0]) != n_sv:
            return f"has a support vector count (_n_support) that does not match its {n_sv} support vectors"
    for key, label in (("dual_coef", "_dual_coef_"), ("public_dual_coef", "dual_coef_")):
        array = state[key]
        if _shape(array) != (rows, n_sv) or array.dtype != np.float64:
            return f"has dual coefficients ({label}) of shape {_shape(array)}, not ({rows}, {n_sv})"
        if sp.issparse(array) and array.data.shape != (rows * n_sv,):
            return f"has sparse dual coefficients ({label}) without {rows * n_sv} stored values"
    for key, label in (("intercept", "_intercept_"), ("public_intercept", "intercept_")):
        if not _is_array(state[key], (n_pairs,), "f") or state[key].dtype != np.float64:
            return f"has intercepts ({label}) of shape {_shape(state[key])}, not ({n_pairs},)"
    prob_a, prob_b = state["prob_a"], state["prob_b"]
    if not any(_is_array(prob_a, (n,), "f") and _is_array(prob_b, (n,), "f") for n in (0, n_pairs)):
        return f"has probability parameters (_probA, _probB) that are not both empty or of shape ({n_pairs},)"
    return _support_vectors_problem(state, n_sv, n_features)


def _n_classes(state: dict[str, Any]) -> int | None:
    classes = state.get("classes")
    if not isinstance(classes, np.ndarray) or classes.ndim != 1 or len(classes) < 2:
        return None
    return len(classes)


def _support_vectors_problem(state: dict[str, Any], n_sv: int, n_features: int | None) -> str | None:
    vectors = state["support_vectors"]
    shape = _shape(vectors)
    if state["kernel"] == "precomputed":
        # libsvm reads the kernel matrix at the support indices instead (checked above).
        return (
            None if shape is not None and shape[0] in (0, n_sv) else "has support_vectors_ of a wrong shape"
        )
    if n_features is None or shape != (n_sv, n_features):
        return (
            f"has support_vectors_ of shape {shape}, not ({n_sv}, {n_features}) (support vectors, features)"
        )
    if state["sparse"] is not sp.issparse(vectors) or (sp.issparse(vectors) and vectors.format != "csr"):
        return "has support_vectors_ whose storage (dense or sparse) does not match its _sparse flag"
    if vectors.dtype != np.float64:
        return f"has support_vectors_ of dtype {vectors.dtype}, not float64"
    if sp.issparse(vectors):
        indptr, indices = np.asarray(vectors.indptr), np.asarray(vectors.indices)
        if (
            indptr.shape != (n_sv + 1,)
            or indptr[0] != 0
            or np.any(np.diff(indptr) < 0)
            or indptr[-1] > min(len(indices), len(vectors.data))
            or np.any((indices < 0) | (indices >= n_features))
        ):
            return "has sparse support_vectors_ whose index arrays point outside their data"
    return None


def _linear_problem(model: Any, n_features: int | None) -> str | None:
    """``coef_`` and ``intercept_`` against ``n_features_in_`` and ``classes_`` (as numpy's dot will use them)."""
    coef = vars(model)["coef_"]
    shape = _shape(coef)
    if shape is None or len(shape) not in (1, 2) or coef.dtype.kind != "f":
        return (
            f"has coefficients (coef_) that are not a 1-D or 2-D array of numbers (got {type(coef).__name__})"
        )
    if n_features is not None and shape[-1] != n_features:
        return f"has coefficients (coef_) of shape {shape} for {n_features} features (n_features_in_)"
    classes = vars(model).get("classes_")
    if isinstance(classes, np.ndarray) and classes.ndim == 1 and len(coef.shape) == 2:
        expected = 1 if len(classes) == 2 else len(classes)
        if shape[0] != expected:
            return f"has {shape[0]} row(s) of coefficients (coef_) for {len(classes)} classes (expected {expected})"
    if "intercept_" not in vars(model):
        return None
    intercept = vars(model)["intercept_"]
    if isinstance(intercept, numbers.Real) and not isinstance(intercept, bool):
        return None  # fit_intercept=False, or one output
    rows = shape[0] if len(shape) == 2 else 1
    if (
        not isinstance(intercept, np.ndarray)
        or intercept.dtype.kind != "f"
        or intercept.shape not in ((), (rows,))
    ):
        return f"has intercepts (intercept_) of shape {_shape(intercept)}, not ({rows},)"
    return None
