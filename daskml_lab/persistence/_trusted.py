"""Which types :func:`~daskml_lab.persistence.load` creates: the allowlist and the registry of trusted types.

A model file lists the types it would create before anything is created (skops' ``get_untrusted_types``).
Beyond what skops trusts, :func:`load` trusts by default:

- classes of daskml_lab and scikit-learn that are estimators (subclasses of
  :class:`sklearn.base.BaseEstimator`);
- the internal scikit-learn types of :data:`TRUSTED_SKLEARN_TYPES`;
- :class:`pathlib.Path` objects, and the dtype classes a column selector may hold (``numpy.number``,
  ``object``, ...);
- the types registered with :func:`register_trusted_type` by the packages that own them (the shard report of
  :mod:`daskml_lab.ensemble`, the pandas stand-in of this package).

A name is resolved before it is trusted, importing modules under ``daskml_lab`` and ``sklearn`` only (which
also runs the registrations of the package that owns the type); a function, a module or a foreign object
re-exported by one of our modules is never trusted by default. :func:`~daskml_lab.persistence.describe` only
reads: it resolves names in the modules already imported and imports nothing.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = [
    "TRUSTED_SKLEARN_TYPES",
    "check_trusted",
    "register_trusted_type",
    "type_name",
    "untrusted_types",
]

#: Internal scikit-learn types (not estimators) that fitted estimators hold and that load() trusts.
TRUSTED_SKLEARN_TYPES: tuple[str, ...] = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.calibration._CalibratedClassifier",
    # column selection by name pattern and dtype (a ColumnTransformer's columns): it holds only its arguments
    "sklearn.compose._column_transformer.make_column_selector",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    *(
        f"sklearn.metrics._dist_metrics.{name}Distance{bits}"
        for name in ("Euclidean", "Manhattan", "Chebyshev")
        for bits in (32, 64)
    ),
)

#: Harmless standard-library types an estimator parameter may hold (``checkpoint=pathlib.Path(...)``).
_TRUSTED_STDLIB_TYPES = ("pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.Path")

#: Types held as *values* by column selectors (``make_column_selector(dtype_include=np.number)``,
#: ``[object, "category"]``, ``np.dtype("float64")``): dtype classes, which hold no state and run no code.
_TRUSTED_DTYPE_TYPES = (
    "builtins.object",
    "numpy.dtype",
    *(
        f"numpy.{name}"
        for name in (
            "generic",
            "number",
            "integer",
            "signedinteger",
            "unsignedinteger",
            "inexact",
            "floating",
            "complexfloating",
            "bool",
            "bool_",
            "object_",
            "datetime64",
            "timedelta64",
            "str_",
            "bytes_",
            "flexible",
            "character",
        )
    ),
)

#: Fully qualified name -> class, of the types registered with :func:`register_trusted_type`. Filled in when
#: the modules that own the types are imported; only ever added to.
_REGISTERED: dict[str, type] = {}

#: Packages whose modules :func:`untrusted_types` may import to resolve a type name.
_RESOLVABLE_ROOTS = ("daskml_lab", "sklearn")


def register_trusted_type(cls: type) -> type:
    """Let :func:`~daskml_lab.persistence.load` create objects of ``cls`` without ``trusted=``.

    The package that owns a type registers it when it is imported, typically as a class decorator next to the
    class. Register only plain data holders whose construction from stored attributes runs no code of their
    own: skops creates them with ``cls.__new__`` and restores their ``__dict__`` (or calls ``__setstate__``).
    Estimators (subclasses of :class:`sklearn.base.BaseEstimator`) of daskml_lab need no registration.

    Parameters
    ----------
    cls : type
        The class to trust; its fully qualified name (``cls.__module__ + "." + cls.__qualname__``) is what
        model files record.

    Returns
    -------
    type
        ``cls`` itself, so that the function can decorate the class.

    Raises
    ------
    TypeError
        If ``cls`` is not a class.

    Examples
    --------
    >>> from daskml_lab.persistence import register_trusted_type
    >>> @register_trusted_type
    ... class Summary:
    ...     def __init__(self, counts):
    ...         self.counts = counts
    >>> Summary.__name__
    'Summary'
    """
    if not isinstance(cls, type):
        msg = f"register_trusted_type() takes a class; got {cls!r} of type {type_name(type(cls))}."
        raise TypeError(msg)
    _REGISTERED[type_name(cls)] = cls
    return cls


def untrusted_types(
    payload: bytes, path: Any, *, apply_policy: bool = True, import_modules: bool = True
) -> list[str]:
    """Types of the payload that skops does not trust (and, with ``apply_policy``, that we do not either).

    Without ``import_modules`` nothing is imported: a name whose module is not imported yet counts as
    untrusted (what :func:`~daskml_lab.persistence.describe` reports).
    """
    import skops.io

    try:
        names = skops.io.get_untrusted_types(data=payload)
    except Exception as err:  # a crafted schema can raise anything while it is parsed (nothing is created)
        msg = (
            f"The model in {os.fspath(path)!r} has an invalid structure ({type(err).__name__}: {err}); the "
            "file is corrupt or was modified."
        )
        raise ValueError(msg) from err
    if not apply_policy:
        return list(names)
    return [name for name in names if not _trusted_by_default(name, import_modules=import_modules)]


def _trusted_by_default(name: str, *, import_modules: bool) -> bool:
    """Our allowlist, applied to a fully qualified type name without importing anything outside it."""
    if name in _TRUSTED_STDLIB_TYPES or name in TRUSTED_SKLEARN_TYPES or name in _TRUSTED_DTYPE_TYPES:
        return True
    registered = _REGISTERED.get(name)
    if registered is not None:
        return _resolve(name, import_modules=import_modules) is registered
    root = name.split(".", 1)[0]
    if root not in _RESOLVABLE_ROOTS:
        return False
    # Importing the owning module runs its registrations of trusted types (load only; describe imports nothing).
    obj = _resolve(name, import_modules=import_modules)
    if not isinstance(obj, type) or type_name(obj) != name:
        return False  # functions, modules and re-exported foreign objects are never trusted by default
    if _REGISTERED.get(name) is obj:
        return True
    from sklearn.base import BaseEstimator

    return issubclass(obj, BaseEstimator)


def _resolve(name: str, *, import_modules: bool) -> Any:
    """The object a dotted ``module.qualname`` names, or None (imports only modules under its root, if any)."""
    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        if not import_modules:
            obj: Any = sys.modules.get(module_name)
            if obj is None:
                continue
        else:
            try:
                obj = importlib.import_module(module_name)
            except ImportError:
                continue
        # A module's __getattr__ may import (scikit-learn loads its submodules so): a static lookup reads only.
        lookup = getattr if import_modules else inspect.getattr_static
        try:
            for attribute in parts[split:]:
                obj = lookup(obj, attribute)
        except AttributeError:
            return None
        return obj
    return None


def check_trusted(trusted: Any) -> set[str]:
    """The type names of ``load(..., trusted=...)``, checked."""
    if trusted is None:
        return set()
    if isinstance(trusted, str | bytes) or not isinstance(trusted, Sequence | set | frozenset):
        msg = (
            "trusted must be a list of fully qualified type names (as listed by the UntrustedTypesError or "
            f"describe(path)['untrusted_types']); got {trusted!r}."
        )
        raise TypeError(msg)
    names = set()
    for item in trusted:
        if isinstance(item, type):
            names.add(type_name(item))
        elif isinstance(item, str):
            names.add(item)
        else:
            msg = f"trusted must hold type names (str) or types; got {item!r}."
            raise TypeError(msg)
    return names


def type_name(cls: type) -> str:
    """The fully qualified name of a class, as skops records it."""
    return f"{cls.__module__}.{cls.__qualname__}"
