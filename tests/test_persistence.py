"""save/load: round trips of every kind of estimator, fresh processes, metadata, trust and tampered files."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile
import zlib
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.linear_model import SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeRegressor

import daskml_lab
from daskml_lab.ensemble import CascadeSVC, ShardEnsembleClassifier, ShardEnsembleRegressor
from daskml_lab.exceptions import ModelVersionWarning, UntrustedTypesError
from daskml_lab.fusion import WeightedAveraging
from daskml_lab.linear_model import ElasticNet, HuberRegressor, Lasso, LinearSVC, LogisticRegression, Ridge
from daskml_lab.persistence import describe, load, save
from daskml_lab.persistence._container import checksum_member

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    y3 = np.digitize(X[:, 0] + X[:, 1], [-0.6, 0.6])
    target = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=400)
    return X, y, y3, target


def _classifiers():
    return {
        "logistic": lambda: LogisticRegression(C=0.5),
        "logistic-multinomial": lambda: LogisticRegression(),
        "linear-svc": lambda: LinearSVC(),
        "soft-voting": lambda: ShardEnsembleClassifier(
            CalibratedClassifierCV(SVC(), ensemble=False), fusion="soft-voting", random_state=0
        ),
        "forest-union": lambda: ShardEnsembleClassifier(
            RandomForestClassifier(n_estimators=5, random_state=0), fusion="forest-union", random_state=0
        ),
        "stacking": lambda: ShardEnsembleClassifier(
            SkLogisticRegression(), fusion="stacking", random_state=0
        ),
        "hist-gradient-boosting": lambda: ShardEnsembleClassifier(
            HistGradientBoostingClassifier(max_iter=5), random_state=0
        ),
        "kneighbors": lambda: ShardEnsembleClassifier(KNeighborsClassifier(), fusion="hard-voting"),
        "parameter-averaging": lambda: ShardEnsembleClassifier(
            SGDClassifier(random_state=0), fusion="parameter-averaging", random_state=0
        ),
        "ensemble-of-ours": lambda: ShardEnsembleClassifier(LogisticRegression(), random_state=0),
        "cascade": lambda: CascadeSVC(random_state=0),
        "pipeline": lambda: make_pipeline(StandardScaler(), LogisticRegression()),
    }


def _regressors():
    return {
        "ridge": lambda: Ridge(alpha=2.0),
        "lasso": lambda: Lasso(alpha=0.01),
        "elastic-net": lambda: ElasticNet(alpha=0.01, l1_ratio=0.3),
        "huber": lambda: HuberRegressor(),
        "weighted-regressor": lambda: ShardEnsembleRegressor(
            DecisionTreeRegressor(max_depth=4), fusion=WeightedAveraging(weights="validation"), random_state=0
        ),
    }


def _fit(name, data):
    X, y, y3, target = data
    factory = {**_classifiers(), **_regressors()}[name]
    labels = y3 if name == "logistic-multinomial" else y
    Xd = X if name == "pipeline" else da.from_array(X, chunks=100)
    with dask.config.set(scheduler="sync"):
        return factory().fit(Xd, target if name in _regressors() else labels)


def _outputs(model, X):
    with dask.config.set(scheduler="sync"):
        outputs = {"predict": np.asarray(model.predict(X))}
        for method in ("predict_proba", "decision_function"):
            if hasattr(model, method):
                outputs[method] = np.asarray(getattr(model, method)(X))
    return outputs


@pytest.mark.parametrize("name", [*_classifiers(), *_regressors()])
def test_round_trip_predicts_exactly_the_same(name, data, tmp_path):
    model = _fit(name, data)
    path = save(model, tmp_path / "model.daskml")
    loaded = load(path)
    assert type(loaded) is type(model)
    assert repr(loaded.get_params()) == repr(model.get_params())
    before, after = _outputs(model, data[0]), _outputs(loaded, data[0])
    assert before.keys() == after.keys()
    for method, expected in before.items():
        np.testing.assert_array_equal(after[method], expected, err_msg=method)
    for attribute in ("history_",):
        if hasattr(model, attribute):
            pd.testing.assert_frame_equal(getattr(loaded, attribute), getattr(model, attribute))
    if hasattr(model, "shard_report_"):
        pd.testing.assert_frame_equal(loaded.shard_report_.to_frame(), model.shard_report_.to_frame())
        assert loaded.shard_report_.title == model.shard_report_.title
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.daskml"]  # no temporary file left


def test_loaded_model_predicts_lazily_on_dask_input(data, tmp_path):
    from daskml_lab.testing import raise_if_computes

    model = load(save(_fit("forest-union", data), tmp_path / "m.daskml"))
    X = da.from_array(data[0], chunks=100)
    with raise_if_computes():
        prediction = model.predict(X)
    np.testing.assert_array_equal(prediction.compute(scheduler="sync"), _outputs(model, data[0])["predict"])


def test_fresh_process_predicts_what_the_saving_process_predicted(data, tmp_path):
    names = ["logistic", "ridge", "soft-voting", "forest-union", "stacking"]
    X = data[0]
    np.save(tmp_path / "X.npy", X)
    for name in names:
        model = _fit(name, data)
        save(model, tmp_path / f"{name}.daskml")
        for method, values in _outputs(model, X).items():
            np.save(tmp_path / f"{name}.{method}.expected.npy", values)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import daskml_lab.persistence as persistence
        folder = {str(tmp_path)!r}
        X = np.load(folder + "/X.npy")
        for name in {names!r}:
            model = persistence.load(folder + "/" + name + ".daskml")
            for method in ("predict", "predict_proba", "decision_function"):
                if hasattr(model, method):
                    np.save(folder + "/" + name + "." + method + ".loaded.npy", np.asarray(getattr(model, method)(X)))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert result.returncode == 0, result.stderr
    expected = sorted(p.name for p in tmp_path.glob("*.expected.npy"))
    assert len(expected) >= 2 * len(names)
    for name in expected:
        loaded = np.load(tmp_path / name.replace(".expected.", ".loaded."))
        np.testing.assert_array_equal(loaded, np.load(tmp_path / name), err_msg=name)


def test_file_records_version_params_and_training_summary(data, tmp_path):
    model = _fit("logistic", data)
    path = save(model, tmp_path / "m.daskml", metadata={"data": {"path": "train.parquet", "n_samples": 400}})
    info = describe(path)
    assert info["format"] == "daskml-lab-model"
    assert info["daskml_lab_version"] == daskml_lab.__version__
    assert info["class"] == "daskml_lab.linear_model._logistic.LogisticRegression"
    assert info["params"]["C"] == 0.5
    assert info["params"]["solver"] == "auto"
    summary = info["summary"]
    assert summary["fitted"] is True
    assert summary["n_features_in"] == 4
    assert summary["classes"] == [0, 1]
    assert summary["n_iter"] == model.n_iter_
    assert summary["history"]["n_records"] == len(model.history_)
    assert summary["history"]["solver_time_s"] == pytest.approx(model.history_["time_s"].max())
    assert info["metadata"] == {"data": {"path": "train.parquet", "n_samples": 400}}
    assert info["untrusted_types"] == []
    assert info["versions"]["scikit-learn"]


def test_shard_ensemble_summary_and_nested_params(data, tmp_path):
    model = _fit("forest-union", data)
    info = describe(save(model, tmp_path / "m.daskml"))
    assert info["params"]["estimator"]["class"] == "sklearn.ensemble._forest.RandomForestClassifier"
    assert info["params"]["estimator"]["params"]["n_estimators"] == 5
    assert info["params"]["fusion"] == "forest-union"
    shards = info["summary"]["shards"]
    assert shards["n_shards"] == 4
    assert shards["n_rows"] == 400
    assert shards["models"] == {"RandomForestClassifier": 4}
    assert info["summary"]["fusion"] == "ForestUnion"
    assert info["summary"]["n_estimators"] == 4


def test_unfitted_estimator_round_trips(tmp_path):
    model = ShardEnsembleClassifier(SVC(C=3.0), fusion="hard-voting", n_shards=3)
    loaded = load(save(model, tmp_path / "m.daskml"))
    assert repr(loaded.get_params()) == repr(model.get_params())
    assert describe(tmp_path / "m.daskml")["summary"]["fitted"] is False


def test_save_replaces_an_existing_file(data, tmp_path):
    path = tmp_path / "m.daskml"
    save(Ridge(), path)
    model = _fit("ridge", data)
    save(model, path)
    assert describe(path)["summary"]["fitted"] is True


def test_members_are_deflated_at_the_fast_level(tmp_path):
    # zlib level 1: a large forest saves in a quarter of the time of the default level 6, for a file about
    # 20 % larger (docs/persistence.rst)
    X, y = np.random.default_rng(0).normal(size=(400, 5)), np.arange(400) % 2
    path = tmp_path / "forest.daskml"
    save(RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y), path)
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo("model.skops")
        payload = archive.read(member)
    assert member.compress_type == zipfile.ZIP_DEFLATED
    fast = zlib.compressobj(1, zlib.DEFLATED, -15)
    assert member.compress_size == len(fast.compress(payload) + fast.flush())


# ---------------------------------------------------------------------------------------------------------
# errors when saving


def test_save_refuses_non_estimators(tmp_path):
    with pytest.raises(TypeError, match=r"save\(\) stores estimators .* got an object of type builtins.dict"):
        save({"a": 1}, tmp_path / "m.daskml")


def test_save_into_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"the folder .*missing' does not exist"):
        save(Ridge(), tmp_path / "missing" / "m.daskml")


def test_save_refuses_metadata_that_is_not_json(tmp_path):
    with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
        save(Ridge(), tmp_path / "m.daskml", metadata={"when": object()})
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------
# untrusted types


def test_untrusted_types_are_listed_and_can_be_trusted_explicitly(tmp_path):
    import math

    model = FunctionTransformer(func=math.fabs)
    path = save(model, tmp_path / "m.daskml")
    assert describe(path)["untrusted_types"] == ["math.fabs"]
    with pytest.raises(UntrustedTypesError, match=r"not trusted by default: \['math.fabs'\]") as info:
        load(path)
    assert info.value.types == ["math.fabs"]
    assert "trusted=['math.fabs']" in str(info.value)
    loaded = load(path, trusted=["math.fabs"])
    assert loaded.func is math.fabs


def test_trusted_must_be_a_list_of_names(tmp_path):
    path = save(Ridge(), tmp_path / "m.daskml")
    with pytest.raises(TypeError, match="trusted must be a list of fully qualified type names"):
        load(path, trusted=True)
    with pytest.raises(TypeError, match="trusted must be a list of fully qualified type names"):
        load(path, trusted="math.fabs")


# ---------------------------------------------------------------------------------------------------------
# tampered and corrupt files


class _RunsCode:
    """Unpickling this runs a shell command (the classic pickle exploit)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _rewrite(path, *, payload=None, metadata=None, checksum=True, key=None):
    """Rewrite a model file with a new payload and/or metadata changes, as a forger would.

    With ``checksum`` the file is resealed with the container's own checksum (or, with ``key``, signature),
    so that only the checks after the checksum can refuse it; without, the old checksum member is kept.
    """
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    info = json.loads(members["daskml_lab.json"])
    payload = members["model.skops"] if payload is None else payload
    info.update(metadata or {})
    members["model.skops"] = payload
    if checksum:
        info["payload"]["sha256"] = hashlib.sha256(payload).hexdigest()
    members["daskml_lab.json"] = json.dumps(info).encode()
    if checksum:
        members["checksum.json"] = checksum_member(members["daskml_lab.json"], payload, key).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def _skops_members(path):
    with zipfile.ZipFile(path) as archive, zipfile.ZipFile(io.BytesIO(archive.read("model.skops"))) as inner:
        return {name: inner.read(name) for name in inner.namelist()}


def _skops_bytes(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as inner:
        for name, content in members.items():
            inner.writestr(name, content)
    return buffer.getvalue()


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such model file"):
        load(tmp_path / "absent.daskml")


def test_plain_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "m.daskml"
    path.write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(ValueError, match=r"is not a daskml-lab model file: it is not a zip archive"):
        load(path)
    assert not marker.exists()


def test_pickle_in_place_of_the_payload_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = save(Ridge(), tmp_path / "m.daskml")
    _rewrite(path, payload=pickle.dumps(_RunsCode(marker)))
    with pytest.raises(ValueError, match=r"has an invalid structure .*BadZipFile"):
        load(path)
    assert not marker.exists()


def test_pickled_object_array_inside_the_payload_is_refused(data, tmp_path):
    marker = tmp_path / "pwned"
    path = save(_fit("logistic", data), tmp_path / "m.daskml")
    members = _skops_members(path)
    arrays = [name for name in members if name.endswith(".npy")]
    assert arrays
    evil = io.BytesIO()
    np.save(evil, np.array([_RunsCode(marker)], dtype=object), allow_pickle=True)
    for name in arrays:
        members[name] = evil.getvalue()
    _rewrite(path, payload=_skops_bytes(members))
    with pytest.raises(ValueError, match=r"declares Python objects \(dtype object\); model files never hold"):
        load(path)
    assert not marker.exists()


def test_payload_naming_a_dangerous_type_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = save(SkLogisticRegression(), tmp_path / "m.daskml")
    members = _skops_members(path)
    schema = json.loads(members["schema.json"])
    schema["__class__"], schema["__module__"] = "Popen", "subprocess"
    schema["content"] = {
        "__class__": "list",
        "__module__": "builtins",
        "__loader__": "ListNode",
        "content": [
            {
                "__class__": "str",
                "__module__": "builtins",
                "__loader__": "JsonNode",
                "content": json.dumps(f"touch {marker}"),
                "is_json": True,
                "__id__": 7,
            }
        ],
        "__id__": 8,
    }
    members["schema.json"] = json.dumps(schema).encode()
    _rewrite(path, payload=_skops_bytes(members))
    assert describe(path)["untrusted_types"] == ["subprocess.Popen"]
    with pytest.raises(UntrustedTypesError, match=r"\['subprocess.Popen'\]. Nothing was loaded"):
        load(path)
    assert not marker.exists()


def test_foreign_function_posing_as_a_package_type_is_refused(tmp_path):
    path = save(SkLogisticRegression(), tmp_path / "m.daskml")
    members = _skops_members(path)
    schema = json.loads(members["schema.json"])
    # os is imported by daskml_lab.persistence; names that resolve to foreign objects are never trusted
    schema["__class__"], schema["__module__"] = "os.system", "daskml_lab.persistence"
    members["schema.json"] = json.dumps(schema).encode()
    _rewrite(path, payload=_skops_bytes(members))
    with pytest.raises(UntrustedTypesError, match=r"daskml_lab.persistence.os.system"):
        load(path)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda b: b[: len(b) // 2], "not a zip archive|could not be read"),
        (lambda b: np.random.default_rng(0).bytes(len(b)), "not a zip archive"),
        (lambda b: b"", "not a zip archive"),
    ],
    ids=["truncated", "random-bytes", "empty"],
)
def test_corrupt_files_give_a_clear_error(damage, match, data, tmp_path):
    path = save(_fit("ridge", data), tmp_path / "m.daskml")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=match):
        load(path)


def test_modified_payload_fails_the_checksum(data, tmp_path):
    path = save(_fit("ridge", data), tmp_path / "m.daskml")
    members = _skops_members(path)
    name = next(n for n in members if n.endswith(".npy"))
    members[name] = members[name][:-1] + bytes([members[name][-1] ^ 1])  # one coefficient changes
    _rewrite(path, payload=_skops_bytes(members), checksum=False)
    with pytest.raises(ValueError, match="does not match the checksum"):
        load(path)


def test_zip_without_our_members_is_refused(tmp_path):
    path = tmp_path / "m.daskml"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.pkl", pickle.dumps(1))
    with pytest.raises(ValueError, match=r"zip archive but not a daskml-lab model file: it lacks"):
        load(path)


def test_metadata_must_describe_the_payload(data, tmp_path):
    path = save(_fit("ridge", data), tmp_path / "m.daskml")
    _rewrite(path, metadata={"class": "daskml_lab.linear_model._regression.Lasso"})
    with pytest.raises(ValueError, match=r"metadata describes a .*Lasso but it holds a .*Ridge"):
        load(path)


def test_newer_file_format_is_refused(tmp_path):
    path = save(Ridge(), tmp_path / "m.daskml")
    _rewrite(path, metadata={"format_version": 99})
    with pytest.raises(ValueError, match="uses model file format 99, newer than the format 3"):
        load(path)


def test_inconsistent_tree_is_refused(data, tmp_path):
    path = save(_fit("forest-union", data), tmp_path / "m.daskml")
    members = _skops_members(path)
    # Point the children of every tree's root back at the root (an infinite loop or out-of-bounds read).
    changed = 0
    for name, content in members.items():
        if not name.endswith(".npy"):
            continue
        array = np.load(io.BytesIO(content), allow_pickle=False)
        if array.dtype.names and "left_child" in array.dtype.names:
            array["left_child"][0] = 0
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            members[name] = buffer.getvalue()
            changed += 1
    assert changed
    _rewrite(path, payload=_skops_bytes(members))
    with pytest.raises(ValueError, match="a decision tree has a child index out of range"):
        load(path)


def test_other_version_warns(data, tmp_path):
    path = save(_fit("ridge", data), tmp_path / "m.daskml")
    _rewrite(path, metadata={"daskml_lab_version": "0.0.1"})
    with pytest.warns(ModelVersionWarning, match=r"saved with daskml_lab 0.0.1 \(this is "):
        model = load(path)
    np.testing.assert_array_equal(model.predict(data[0]), _fit("ridge", data).predict(data[0]))


# ---------------------------------------------------------------------------------------------------------
# arrays handed to compiled code: libsvm and linear models (trees above). Each file is written by save(), so
# its checksum is valid (a forger recomputes it): only the checks of the arrays can refuse it. Nothing here
# ever predicts with a tampered model: some of them crash libsvm.


def _tampered(model, change):
    """A deep copy of ``model`` with ``change(copy)`` applied."""
    import copy

    tampered = copy.deepcopy(model)
    change(tampered)
    return tampered


def _set(path, value):
    """``change`` setting the attribute at the dotted ``path`` to ``value(old)``."""

    def change(model):
        *parents, name = path.split(".")
        owner = model
        for parent in parents:
            owner = owner[int(parent)] if parent.isdigit() else getattr(owner, parent)
        setattr(owner, name, value(getattr(owner, name)))

    return change


_SVC_CASES = {
    "support-out-of-range": (
        "support_",
        lambda a: np.where(np.arange(a.size) == 0, 10**6, a).astype(np.int32),
    ),
    "support-longer": ("support_", lambda a: np.arange(a.size + 50_000, dtype=np.int32) % 10),
    "n-support-sum": ("_n_support", lambda a: (a + np.arange(a.size)).astype(np.int32)),
    "n-support-huge": ("_n_support", lambda a: (a + np.array([50_000, -50_000])).astype(np.int32)),
    "support-vectors-rows": ("support_vectors_", lambda a: a[:3].copy()),
    "support-vectors-features": ("support_vectors_", lambda a: np.zeros((a.shape[0], a.shape[1] + 2))),
    "dual-coef": ("_dual_coef_", lambda a: a[:, :3].copy()),
    "intercept": ("_intercept_", lambda a: np.zeros(a.size + 5)),
}
_SVC_MESSAGES = {
    "support-out-of-range": r"has support indices outside \[0, \d+\)",
    "support-longer": r"_n_support\) summing to \d+, not to its \d+ support vectors",
    "n-support-sum": r"_n_support\) summing to \d+, not to its \d+ support vectors",
    "n-support-huge": r"_n_support\) that are not 2 non-negative counts",
    "support-vectors-rows": r"has support_vectors_ of shape \(3, 4\), not \(\d+, 4\)",
    "support-vectors-features": r"has support_vectors_ of shape \(\d+, 6\), not \(\d+, 4\)",
    "dual-coef": r"has dual coefficients \(_dual_coef_\) of shape \(1, 3\), not \(1, \d+\)",
    "intercept": r"has intercepts \(_intercept_\) of shape \(6,\), not \(1,\)",
}


@pytest.fixture(scope="module")
def cascade(data):
    return _fit("cascade", data)


@pytest.mark.parametrize("case", list(_SVC_CASES))
def test_cascade_svc_with_inconsistent_arrays_is_refused_at_load(case, cascade, tmp_path):
    attribute, value = _SVC_CASES[case]
    path = save(_tampered(cascade, _set(f"final_estimator_.{attribute}", value)), tmp_path / "m.daskml")
    with pytest.raises(ValueError, match=_SVC_MESSAGES[case]) as excinfo:
        load(path)
    message = str(excinfo.value)
    assert "CascadeSVC.final_estimator_ (SVC)" in message
    assert "Predicting with it could crash, so it is refused" in message


def test_svc_inside_a_shard_ensemble_is_checked(data, tmp_path):
    model = _fit("soft-voting", data)
    change = _set(
        "estimators_.1.calibrated_classifiers_.0.estimator._n_support",
        lambda a: (a + np.array([7, 0])).astype(np.int32),
    )
    path = save(_tampered(model, change), tmp_path / "m.daskml")
    with pytest.raises(
        ValueError,
        match=r"ShardEnsembleClassifier\..*estimators_\[1\].calibrated_classifiers_\[0\].estimator \(SVC\) has "
        r"support vector counts per class \(_n_support\) summing to",
    ):
        load(path)


@pytest.mark.parametrize(
    ("make", "attribute", "value", "match"),
    [
        (
            lambda X, y, t: __import__("sklearn.svm").svm.NuSVC().fit(X, np.digitize(X[:, 0], [-0.5, 0.5])),
            "_probA",
            lambda a: np.zeros(2),
            r"NuSVC has probability parameters \(_probA, _probB\) that are not both empty or of shape \(3,\)",
        ),
        (
            lambda X, y, t: (
                __import__("sklearn.svm").svm.SVR().fit(__import__("scipy").sparse.csr_matrix(X), t)
            ),
            "support_vectors_",
            lambda a: __import__("scipy").sparse.csr_matrix(
                (a.data, np.minimum(a.indices + 3, 9), a.indptr), shape=a.shape
            ),
            r"SVR has sparse support_vectors_ whose index arrays point outside their data",
        ),
        (
            lambda X, y, t: SVC(kernel="precomputed").fit(X @ X.T, y),
            "support_",
            lambda a: (a + 1000).astype(np.int32),
            r"SVC has support indices outside \[0, 400\)",
        ),
    ],
    ids=["nusvc-probability", "sparse-svr-indices", "precomputed-support"],
)
def test_other_libsvm_models_are_checked(make, attribute, value, match, data, tmp_path):
    X, y, _, target = data
    model = make(X, y, target)
    trusted = ["scipy.sparse._csr.csr_matrix"]  # sparse matrices need trusted= (skops trusts sparse arrays)
    load(save(model, tmp_path / "good.daskml"), trusted=trusted)  # the untampered model loads
    path = save(_tampered(model, _set(attribute, value)), tmp_path / "m.daskml")
    with pytest.raises(ValueError, match=match):
        load(path, trusted=trusted)


def test_libsvm_model_missing_an_array_is_refused(data, tmp_path):
    """A renamed or deleted attribute fails closed (also what a newer scikit-learn's renaming would do)."""
    X, y, _, _ = data
    model = SVC().fit(X, y)
    del model._n_support
    with pytest.raises(ValueError, match=r"SVC has support vector counts per class \(_n_support\)"):
        load(save(model, tmp_path / "m.daskml"))


@pytest.mark.parametrize(
    ("name", "attribute", "value", "match"),
    [
        (
            "logistic-multinomial",
            "coef_",
            lambda a: a[:1].copy(),
            r"LogisticRegression has 1 row\(s\) of coefficients \(coef_\) for 3 classes \(expected 3\)",
        ),
        (
            "logistic",
            "intercept_",
            lambda a: np.zeros(3),
            r"LogisticRegression has intercepts \(intercept_\) of shape \(3,\), not \(1,\)",
        ),
        (
            "ridge",
            "coef_",
            lambda a: np.zeros(a.size + 1),
            r"Ridge has coefficients \(coef_\) of shape \(5,\) for 4 features \(n_features_in_\)",
        ),
        (
            "linear-svc",
            "coef_",
            lambda a: np.zeros((2, 4)),
            r"LinearSVC has 2 row\(s\) of coefficients \(coef_\) for 2 classes \(expected 1\)",
        ),
        (
            "parameter-averaging",
            "estimators_.0.coef_",
            lambda a: np.zeros((1, 9)),
            r"estimators_\[0\] \(SGDClassifier\) has coefficients \(coef_\) of shape \(1, 9\) for 4 features",
        ),
    ],
    ids=["ours-classes", "ours-intercept", "ours-features", "linear-svc-rows", "sklearn-in-ensemble"],
)
def test_linear_model_with_inconsistent_coefficients_is_refused(
    name, attribute, value, match, data, tmp_path
):
    model = _fit(name, data)
    path = save(_tampered(model, _set(attribute, value)), tmp_path / "m.daskml")
    with pytest.raises(ValueError, match=match):
        load(path)


def test_libsvm_state_finds_the_arrays_of_this_scikit_learn(data):
    """The attribute names _compat reads exist in the installed scikit-learn (else every SVC is refused)."""
    from sklearn.svm import SVR, NuSVC

    from daskml_lab._compat import libsvm_state

    X, y, _, target = data
    for model in (SVC().fit(X, y), NuSVC().fit(X, y), SVR().fit(X, target)):
        state = libsvm_state(model)
        assert state is not None
        assert all(value is not None for key, value in state.items() if key != "class_weight"), state
    assert libsvm_state(SVC()) is None


# ---------------------------------------------------------------------------------------------------------
# the checksum covers the metadata; signing with a key; format 1 files

KEY = b"0123456789abcdef-test-key"


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write_members(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


@pytest.mark.parametrize(
    "edit",
    [
        lambda info: info["metadata"].update(
            data={"features": ["b", "a"], "read_options": {"skiprows": 500}}
        ),
        lambda info: info["summary"].update(n_features_in=3),
        lambda info: info.update(daskml_lab_version="9.9"),
    ],
    ids=["cli-read-options", "summary", "version"],
)
def test_edited_metadata_is_refused(edit, data, tmp_path):
    path = save(_fit("ridge", data), tmp_path / "m.daskml", metadata={"data": {"features": ["a", "b"]}})
    members = _members(path)
    info = json.loads(members["daskml_lab.json"])
    edit(info)
    members["daskml_lab.json"] = json.dumps(info, indent=2).encode()  # the old checksum member is kept
    _write_members(path, members)
    message = r"does not match the checksum recorded when it was saved: its metadata \(daskml_lab.json"
    with pytest.raises(ValueError, match=message):
        load(path)
    with pytest.raises(ValueError, match=message):
        describe(path)


def test_metadata_comes_back_with_the_model(data, tmp_path):
    path = save(_fit("ridge", data), tmp_path / "m.daskml", metadata={"data": {"features": ["a", "b"]}})
    model, info = load(path, return_metadata=True)
    assert isinstance(model, Ridge)
    assert info["metadata"] == {"data": {"features": ["a", "b"]}}
    assert info["format_version"] == 2
    assert info["integrity"] == {
        "algorithm": "sha256",
        "covers": ["daskml_lab.json", "model.skops"],
        "verified": True,
    }
    assert {k: v for k, v in describe(path).items() if k != "untrusted_types"} == {
        k: v for k, v in info.items() if k != "untrusted_types"
    }


def test_signed_file_needs_its_key(data, tmp_path):
    model = _fit("logistic", data)
    path = save(model, tmp_path / "m.daskml", key=KEY)
    assert json.loads(_members(path)["checksum.json"])["algorithm"] == "hmac-sha256"
    loaded, info = load(path, key=KEY, return_metadata=True)
    np.testing.assert_array_equal(loaded.coef_, model.coef_)
    assert info["integrity"]["algorithm"] == "hmac-sha256"
    assert info["integrity"]["verified"] is True
    np.testing.assert_array_equal(load(path, key=KEY.decode()).coef_, model.coef_)  # str keys are UTF-8
    with pytest.raises(ValueError, match=r"is signed with a key \(HMAC-SHA256\); pass the same key"):
        load(path)
    with pytest.raises(ValueError, match=r"The signature of .* does not match the key given"):
        load(path, key=b"another key of sixteen bytes")
    # describe shows the metadata of a signed file without its key, marked as not verified
    assert describe(path)["integrity"] == {
        "algorithm": "hmac-sha256",
        "covers": ["daskml_lab.json", "model.skops"],
        "verified": False,
    }
    assert describe(path, key=KEY)["integrity"]["verified"] is True
    with pytest.raises(ValueError, match="does not match the key given"):
        describe(path, key=b"another key of sixteen bytes")


@pytest.mark.parametrize(
    ("forger_key", "match"),
    [
        (None, r"is not signed, but a key was given: .*signature was stripped"),
        (b"the forger's own key!", r"signature of .* does not match the key given"),
    ],
    ids=["signature-stripped", "signed-with-another-key"],
)
def test_signed_file_modified_and_resealed_is_refused(forger_key, match, data, tmp_path):
    path = save(_fit("ridge", data), tmp_path / "m.daskml", key=KEY)
    _rewrite(path, metadata={"metadata": {"data": {"read_options": {"skiprows": 500}}}}, key=forger_key)
    with pytest.raises(ValueError, match=match):
        load(path, key=KEY)


def test_modified_signed_file_is_refused(data, tmp_path):
    path = save(_fit("ridge", data), tmp_path / "m.daskml", key=KEY)
    _rewrite(path, metadata={"created": "2000-01-01T00:00:00+00:00"}, checksum=False)
    with pytest.raises(ValueError, match="does not match the key given"):
        load(path, key=KEY)


@pytest.mark.parametrize(
    ("key", "error", "match"),
    [
        (b"short", ValueError, "A signing key must have at least 16 bytes; got 5"),
        (1234, TypeError, "key must be bytes or str"),
    ],
)
def test_invalid_keys(key, error, match, tmp_path):
    with pytest.raises(error, match=match):
        save(Ridge(), tmp_path / "m.daskml", key=key)
    assert not (tmp_path / "m.daskml").exists()
    path = save(Ridge(), tmp_path / "m.daskml")
    with pytest.raises(error, match=match):
        load(path, key=key)


def test_read_key(tmp_path):
    from daskml_lab.persistence import read_key

    (tmp_path / "model.key").write_text(KEY.decode() + "\n")
    assert read_key(tmp_path / "model.key") == KEY
    (tmp_path / "short.key").write_text("  abc \n")
    with pytest.raises(ValueError, match=r"holds 3 bytes; a signing key needs at least 16"):
        read_key(tmp_path / "short.key")
    with pytest.raises(FileNotFoundError, match="No such key file"):
        read_key(tmp_path / "absent.key")


def _as_format_1(path):
    """Rewrite a model file as daskml_lab wrote it in format 1: two members, the payload checksummed only."""
    members = _members(path)
    info = json.loads(members.pop("checksum.json") and members["daskml_lab.json"])
    info["format_version"] = 1
    members["daskml_lab.json"] = json.dumps(info).encode()
    _write_members(path, members)


def test_format_1_file_loads_with_a_warning_about_its_metadata(data, tmp_path):
    model = _fit("ridge", data)
    path = save(model, tmp_path / "m.daskml")
    _as_format_1(path)
    with pytest.warns(
        ModelVersionWarning, match=r"is a format 1 model file: its checksum covers the model but not"
    ):
        loaded = load(path)
    np.testing.assert_array_equal(loaded.predict(data[0]), model.predict(data[0]))
    assert describe(path)["integrity"] == {"algorithm": "sha256", "covers": ["model.skops"], "verified": True}
    with pytest.raises(
        ValueError, match="is a format 1 model file, which cannot be signed, but a key was given"
    ):
        load(path, key=KEY)
    # its payload checksum still holds
    _rewrite(path, payload=_skops_bytes(_skops_members(path)) + b"\0", checksum=False)
    with pytest.raises(ValueError, match="does not match the checksum"):
        load(path)


def test_checksum_member_and_format_version_must_agree(data, tmp_path):
    path = save(Ridge(), tmp_path / "m.daskml")
    members = _members(path)
    _write_members(path, {k: v for k, v in members.items() if k != "checksum.json"})
    with pytest.raises(ValueError, match=r"claims model file format 2 but lacks its checksum.json member"):
        load(path)
    info = json.loads(members["daskml_lab.json"])
    info["format_version"] = 1
    metadata = json.dumps(info).encode()
    members.update(
        {
            "daskml_lab.json": metadata,
            "checksum.json": checksum_member(metadata, members["model.skops"], None),
        }
    )
    _write_members(path, members)
    with pytest.raises(
        ValueError, match=r"claims model file format 1, but the file has the checksum.json member"
    ):
        load(path)


def test_member_stored_twice_is_refused(tmp_path):
    path = save(Ridge(), tmp_path / "m.daskml")
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "a") as archive:
        archive.writestr("daskml_lab.json", b"{}")
    with pytest.raises(ValueError, match="holds a member twice"):
        load(path)


def test_describe_imports_nothing(tmp_path):
    """A file naming modules that are not imported yet: describe() lists them as untrusted, imports none."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer
    from sklearn.utils._mocking import CheckingClassifier

    # Estimators of modules a fresh process has not imported (load() would import them and trust them).
    model = FunctionTransformer(kw_args={"a": CheckingClassifier(), "b": IterativeImputer(), "c": Ridge()})
    path = save(model, tmp_path / "m.daskml")
    members = _skops_members(path)
    schema = json.loads(members["schema.json"])
    ridge = schema["content"]["content"]["kw_args"]["content"]["c"]
    assert ridge["__class__"] == "Ridge"
    ridge["__class__"], ridge["__module__"] = "Anything", "daskml_lab.monitoring.preload"
    members["schema.json"] = json.dumps(schema).encode()
    _rewrite(path, payload=_skops_bytes(members))
    names = [
        ("sklearn.utils._mocking", "CheckingClassifier"),
        ("sklearn.impute._iterative", "IterativeImputer"),
        ("daskml_lab.monitoring.preload", "Anything"),
    ]
    script = textwrap.dedent(
        f"""
        import json, sys
        from daskml_lab.persistence import describe
        modules = {[module for module, _ in names]!r}
        before = [m for m in modules if m in sys.modules]
        untrusted = describe({str(path)!r})["untrusted_types"]
        print(json.dumps({{"before": before, "after": [m for m in modules if m in sys.modules],
                           "untrusted": untrusted}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["before"] == []
    assert found["after"] == []
    assert sorted(found["untrusted"]) == sorted(f"{module}.{name}" for module, name in names)
