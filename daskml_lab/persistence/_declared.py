"""Shapes an estimator's arrays must have, checked from the ``.npy`` headers before any array is allocated.

The skops description of a model (``schema.json``) names, for every estimator in it, its plain attributes
(``n_features_in_`` as JSON) and the member holding each array. With the headers read by
:func:`~daskml_lab.persistence._limits.scan_payload`, the arrays that have one entry per feature or per class
are checked against the estimator's own ``n_features_in_`` and ``classes_``, and the outermost estimator
against the file's readable metadata, all before skops allocates anything. :func:`shape_rule_problem` is the
one statement of these rules; :mod:`daskml_lab.persistence._checks` applies it again to the built model.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping
from typing import Any

from daskml_lab.persistence._limits import ArrayHeader

__all__ = ["PER_CLASS", "PER_FEATURE", "declared_problem", "shape_rule_problem"]

#: Attributes whose last axis has one entry per feature (``n_features_in_``): linear coefficients, naive Bayes
#: statistics, the statistics of scalers.
PER_FEATURE = ("coef_", "theta_", "var_", "feature_log_prob_", "feature_count_", "mean_", "scale_")
#: Attributes whose first axis has one entry per class (``len(classes_)``), in classifiers.
PER_CLASS = ("class_count_", "class_prior_", "class_log_prior_", "theta_", "var_", "feature_count_")


def shape_rule_problem(
    shapes: Mapping[str, tuple[int, ...]], n_features: int | None, n_classes: int | None
) -> str | None:
    """The first attribute of ``shapes`` (name -> shape) that breaks the per-feature or per-class rules, or None.

    ``coef_`` of a classifier has one row for two classes and one per class otherwise; the other
    :data:`PER_CLASS` arrays one row per class.
    """
    for name in PER_FEATURE:
        shape = shapes.get(name)
        if n_features is not None and shape is not None and (not shape or shape[-1] != n_features):
            label = "coefficients (coef_)" if name == "coef_" else name
            return f"has {label} of shape {shape} for {n_features} features (n_features_in_)"
    if n_classes is None:
        return None
    coef = shapes.get("coef_")
    if coef is not None and len(coef) == 2:
        expected = 1 if n_classes == 2 else n_classes
        if coef[0] != expected:
            return (
                f"has {coef[0]} row(s) of coefficients (coef_) for {n_classes} classes (expected {expected})"
            )
    for name in PER_CLASS:
        shape = shapes.get(name)
        if shape is not None and (not shape or shape[0] != n_classes):
            return f"has {name} of shape {shape} for {n_classes} classes (classes_)"
    return None


def declared_problem(
    schema: Any, headers: Mapping[str, ArrayHeader], summary: Mapping[str, Any] | None
) -> str | None:
    """What the declared shapes of a payload's arrays break, or None; nothing is allocated.

    Parameters
    ----------
    schema : dict
        The parsed ``schema.json`` of the skops payload.
    headers : mapping
        The array headers by member name, from :func:`~daskml_lab.persistence._limits.scan_payload`.
    summary : mapping or None
        The ``summary`` of the file's metadata (``n_features_in``, ``classes``), checked against the
        outermost estimator.
    """
    top = _attributes(schema)
    if top is not None and isinstance(summary, Mapping):
        n_features = _json_int(top.get("n_features_in_"))
        recorded = summary.get("n_features_in")
        if n_features is not None and isinstance(recorded, int) and recorded != n_features:
            return f"its metadata records {recorded} features but the model has n_features_in_={n_features}"
        n_classes = _length(top.get("classes_"), headers)
        classes = summary.get("classes")
        if n_classes is not None and isinstance(classes, list) and len(classes) != n_classes:
            return f"its metadata records {len(classes)} classes but the model holds {n_classes} (classes_)"
    return _walk(schema, headers, _class_name(schema), depth=0)


def _walk(node: Any, headers: Mapping[str, ArrayHeader], where: str, depth: int) -> str | None:
    if depth > 200:  # skops nests objects no deeper than the model does; a deeper schema is crafted
        return "its description nests objects more than 200 levels deep"
    if isinstance(node, list):
        children = [(f"{where}[{index}]", child) for index, child in enumerate(node)]
    elif isinstance(node, dict):
        attributes = _attributes(node)
        if attributes is not None:
            problem = _object_problem(attributes, headers)
            if problem is not None:
                named = where if where == _class_name(node) else f"{where} ({_class_name(node)})"
                return f"{named} {problem}"
            children = [(f"{where}.{name}", child) for name, child in attributes.items()]
        else:
            content = node.get("content")
            children = [(where, content)] if isinstance(content, dict | list) else []
    else:
        return None
    for child_where, child in children:
        problem = _walk(child, headers, child_where, depth + 1)
        if problem is not None:
            return problem
    return None


def _object_problem(attributes: Mapping[str, Any], headers: Mapping[str, ArrayHeader]) -> str | None:
    shapes = {}
    for name in {*PER_FEATURE, *PER_CLASS}:
        header = _header(attributes.get(name), headers)
        if header is not None:
            shapes[name] = header.shape
    n_features = _json_int(attributes.get("n_features_in_"))
    return shape_rule_problem(shapes, n_features, _length(attributes.get("classes_"), headers))


def _attributes(node: Any) -> dict[str, Any] | None:
    """The attribute nodes of an object node (skops' ``ObjectNode`` over a ``DictNode``), else None."""
    if not isinstance(node, dict) or node.get("__loader__") != "ObjectNode":
        return None
    content = node.get("content")
    if isinstance(content, dict) and content.get("__loader__") == "DictNode":
        attributes = content.get("content")
        return attributes if isinstance(attributes, dict) else None
    return None


def _class_name(node: Any) -> str:
    return str(node.get("__class__", "object")) if isinstance(node, dict) else "object"


def _header(node: Any, headers: Mapping[str, ArrayHeader]) -> ArrayHeader | None:
    """The header of the array a node stores in its own ``.npy`` member, else None."""
    if isinstance(node, dict) and node.get("__loader__") == "NdArrayNode" and node.get("type") == "numpy":
        return headers.get(str(node.get("file")))
    return None


def _length(node: Any, headers: Mapping[str, ArrayHeader]) -> int | None:
    """The length of a 1-D array node (stored as ``.npy`` or, for labels of Python objects, as JSON)."""
    header = _header(node, headers)
    if header is not None:
        return header.shape[0] if len(header.shape) == 1 else None
    if isinstance(node, dict) and node.get("__loader__") == "NdArrayNode" and node.get("type") == "json":
        items = node.get("content")
        return len(items) if isinstance(items, list) else None
    return None


def _json_int(node: Any) -> int | None:
    """The integer a ``JsonNode`` holds, else None."""
    if not isinstance(node, dict) or node.get("__loader__") != "JsonNode":
        return None
    try:
        value = json.loads(node.get("content", "null"))
    except (TypeError, ValueError):
        return None
    return int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else None
