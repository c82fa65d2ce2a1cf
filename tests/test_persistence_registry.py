"""Trusted types registered by the packages that own them (daskml_lab.persistence.register_trusted_type)."""

import ast
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator

from daskml_lab.exceptions import UntrustedTypesError
from daskml_lab.persistence import load, register_trusted_type, save
from daskml_lab.persistence._trusted import _REGISTERED

PACKAGE = Path(__file__).resolve().parents[1] / "daskml_lab"


class Holder(BaseEstimator):
    """An estimator whose fitted state is an object of a (test) package's own class."""

    def fit(self, X, y=None):
        self.note_ = Note(np.asarray(X).shape[0])
        return self


class Note:
    def __init__(self, n_rows):
        self.n_rows = n_rows


def test_a_registered_type_loads_without_trusted(tmp_path):
    path = save(Holder().fit(np.zeros((3, 2))), tmp_path / "m.daskml")
    name, holder = f"{Note.__module__}.Note", f"{Holder.__module__}.Holder"
    with pytest.raises(UntrustedTypesError, match=rf"not trusted by default: \['{name}'\]"):
        load(path, trusted=[holder])  # an estimator of another package is trusted by the caller
    try:
        assert register_trusted_type(Note) is Note
        assert load(path, trusted=[holder]).note_.n_rows == 3
    finally:
        _REGISTERED.pop(name, None)


def test_only_classes_are_registered():
    with pytest.raises(TypeError, match=r"register_trusted_type\(\) takes a class; got <function"):
        register_trusted_type(lambda: None)


def test_the_ensemble_registers_its_report():
    from daskml_lab.ensemble import ShardReport

    assert _REGISTERED["daskml_lab.ensemble._report.ShardReport"] is ShardReport


def test_persistence_imports_no_package_that_registers_with_it():
    for path in (PACKAGE / "persistence").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("daskml_lab.ensemble", "daskml_lab.fusion")), (path.name, name)
