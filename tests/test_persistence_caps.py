"""Crafted model files: zip bombs, lying headers, huge array headers and inconsistent arrays per model family.

The bombs are loaded in a subprocess whose address space is capped (``resource.setrlimit(RLIMIT_AS)``) below
what decompressing them would take, so that a regression fails with a MemoryError instead of eating the
machine; nothing here depends on timing.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KDTree, KNeighborsClassifier
from sklearn.neural_network import MLPClassifier

from daskml_lab.ensemble import ShardEnsembleClassifier
from daskml_lab.linear_model import LogisticRegression
from daskml_lab.persistence import describe, load, save
from daskml_lab.persistence._container import checksum_member
from daskml_lab.persistence._limits import MAX_MEMBER_BYTES_KEY

REPO_ROOT = Path(__file__).resolve().parents[1]
GIB = 2**30
MIB = 2**20
#: The address-space cap of the subprocess: room for Python, numpy, scikit-learn and dask (about 1.7 GiB of
#: virtual memory once imported), well below the 3 GiB the bombs decompress to.
RLIMIT_BYTES = int(2.75 * GIB)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    y3 = np.digitize(X[:, 0] + X[:, 1], [-0.6, 0.6])
    return X, y, y3


@pytest.fixture(scope="module")
def small_model(data, tmp_path_factory):
    X, y, _ = data
    return save(LogisticRegression().fit(X, y), tmp_path_factory.mktemp("caps") / "small.daskml")


# ---------------------------------------------------------------------------------------------------------
# crafting zip archives by hand (zipfile cannot write a header that lies)


def _raw_zip(members):
    """A zip archive of ``(name, raw, method, crc, file_size)`` members, written as given (sizes may lie)."""
    out, central = bytearray(), bytearray()
    for name, raw, method, crc, file_size in members:
        offset, encoded = len(out), name.encode()
        out += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(raw), file_size, len(encoded), 0
        )
        out += encoded + raw
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50, 20, 20, 0, method, 0, 0, crc, len(raw), file_size, len(encoded), 0, 0, 0, 0, 0, offset,
        )  # fmt: skip
        central += encoded
    count = len(members)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), len(out), 0)
    return bytes(out + central + end)


def _stored(name, content):
    return (name, content, zipfile.ZIP_STORED, zlib.crc32(content), len(content))


def _zeros_deflated(n_mib):
    """A raw deflate stream of ``n_mib`` MiB of zero bytes, built without compressing them all.

    After a full flush the compressor forgets its history, so every further MiB of zeros compresses to the
    same bytes: the stream is that chunk repeated (about 1 KiB per MiB, a ratio of about 1000).
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    compressor.compress(b"\0" * MIB)
    compressor.flush(zlib.Z_FULL_FLUSH)  # the first chunk: same bytes as every later one, checked below
    chunk = compressor.compress(b"\0" * MIB) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.flush()
    stream = chunk * n_mib + tail
    check = zlib.decompressobj(-15).decompress(chunk * 2 + tail, 4 * MIB)
    assert check == b"\0" * (2 * MIB)
    return stream


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _sealed(metadata, payload):
    """Metadata and checksum members for ``payload``, resealed as a forger would (the SHA-256 is not secret)."""
    info = json.loads(metadata)
    info["payload"]["sha256"] = hashlib.sha256(payload).hexdigest()
    info["payload"]["n_bytes"] = len(payload)
    text = json.dumps(info).encode()
    return text, checksum_member(text, payload, None).encode()


def _with_raw_payload(source, target, raw, file_size, *, method=zipfile.ZIP_DEFLATED, crc=0):
    """A copy of the model file ``source`` whose ``model.skops`` member is ``raw`` bytes declaring ``file_size``."""
    members = _members(source)
    target.write_bytes(
        _raw_zip(
            [
                _stored("daskml_lab.json", members["daskml_lab.json"]),
                ("model.skops", raw, method, crc, file_size),
                _stored("checksum.json", members["checksum.json"]),
            ]
        )
    )
    return target


def _with_payload_members(source, target, replace):
    """A copy of ``source`` whose skops payload has members replaced (``name -> raw member tuple``), resealed."""
    members = _members(source)
    with zipfile.ZipFile(io.BytesIO(members["model.skops"])) as inner:
        entries = {name: _stored(name, inner.read(name)) for name in inner.namelist()}
    entries.update(replace(entries))
    payload = _raw_zip(list(entries.values()))
    metadata, checksum = _sealed(members["daskml_lab.json"], payload)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("daskml_lab.json", metadata)
        archive.writestr("model.skops", payload)
        archive.writestr("checksum.json", checksum)
    return target


def _array_names(source):
    members = _members(source)
    with zipfile.ZipFile(io.BytesIO(members["model.skops"])) as inner:
        return sorted(name for name in inner.namelist() if name.endswith(".npy"))


def _load_capped(path, *, env=None, **kwargs):
    """Load ``path`` in a subprocess with its address space capped; the outcome as a dict."""
    script = textwrap.dedent(
        f"""
        import json, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({RLIMIT_BYTES}, {RLIMIT_BYTES}))
        from daskml_lab.persistence import load
        try:
            load({os.fspath(path)!r}, **{kwargs!r})
            outcome = {{"error": None}}
        except BaseException as err:
            outcome = {{"error": type(err).__name__, "message": str(err)}}
        print(json.dumps(outcome))
        """
    )
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        **(env or {}),
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------------
# zip bombs and lying headers


def test_zip_bomb_is_refused_from_its_header_without_decompressing(small_model, tmp_path):
    """3 GiB of zeros in a 3 MiB file: refused by the declared size, under an address-space cap of 2.75 GiB."""
    bomb = _with_raw_payload(small_model, tmp_path / "bomb.daskml", _zeros_deflated(3 * 1024), 3 * GIB)
    assert bomb.stat().st_size < 4 * MIB
    outcome = _load_capped(bomb)
    assert outcome["error"] == "ValueError", outcome
    assert "Member 'model.skops'" in outcome["message"]
    assert (
        "declares 3.00 GiB (3221225472 bytes) decompressed, more than the cap of 2.00 GiB"
        in outcome["message"]
    )
    assert "nothing was decompressed" in outcome["message"]
    assert "load(path, max_member_bytes=...)" in outcome["message"]


def test_zip_bomb_with_a_lying_header_is_never_read_past_its_header(small_model, tmp_path):
    """The header declares 1 MiB, the data hold 3 GiB: the read stops at the declared size and refuses."""
    bomb = _with_raw_payload(small_model, tmp_path / "liar.daskml", _zeros_deflated(3 * 1024), MIB)
    outcome = _load_capped(bomb)
    assert outcome["error"] == "ValueError", outcome
    assert "corrupt" in outcome["message"]


def test_bomb_inside_the_payload_is_refused_before_skops_reads_it(small_model, tmp_path):
    """A deflated .npy member inside the (stored) skops payload, declaring 3 GiB: the nested bomb."""
    name = _array_names(small_model)[0]

    def replace(entries):
        return {name: (name, _zeros_deflated(3 * 1024), zipfile.ZIP_DEFLATED, 0, 3 * GIB)}

    bomb = _with_payload_members(small_model, tmp_path / "nested.daskml", replace)
    outcome = _load_capped(bomb)
    assert outcome["error"] == "ValueError", outcome
    assert "The members of the model payload" in outcome["message"]
    assert "more than the cap of 2.00 GiB" in outcome["message"]
    with pytest.raises(ValueError, match="The members of the model payload"):
        describe(bomb)  # describe lists the payload's types, which reads its members: capped too


def test_compression_ratio_cap(small_model, tmp_path):
    """64 MiB of zeros (under the size cap) compressed 1000 to 1 looks like a bomb; the ratio cap can be raised."""
    raw = zlib.compress(b"\0" * 64 * MIB, 9)[2:-4]  # raw deflate: strip zlib's header and checksum
    path = _with_raw_payload(
        small_model, tmp_path / "ratio.daskml", raw, 64 * MIB, crc=zlib.crc32(b"\0" * 64 * MIB)
    )
    with pytest.raises(
        ValueError, match=r"a compression ratio of 10\d\d, above the cap of 1000 \(max_compression_ratio"
    ):
        load(path)
    # With the ratio cap raised the member is read (64 MiB) and refused next, as not matching its checksum.
    with pytest.raises(ValueError, match="does not match the checksum"):
        load(path, max_compression_ratio=5000)


def test_foreign_compression_method_is_refused(small_model, tmp_path):
    name = _array_names(small_model)[0]

    def replace(entries):
        content = entries[name][1]
        return {
            name: (
                name,
                __import__("bz2").compress(content),
                zipfile.ZIP_BZIP2,
                zlib.crc32(content),
                len(content),
            )
        }

    path = _with_payload_members(small_model, tmp_path / "bzip2.daskml", replace)
    with pytest.raises(
        ValueError, match=r"compressed by a method \(zip method 12\) that daskml_lab.save\(\) never uses"
    ):
        load(path)


# ---------------------------------------------------------------------------------------------------------
# the cap and how to raise it


def test_member_cap_names_the_member_and_how_to_raise_it(small_model):
    size = zipfile.ZipFile(small_model).getinfo("model.skops").file_size
    message = (
        rf"Member 'model.skops' of .* declares .* \({size} bytes\) decompressed, more than the cap of 0.98 kiB "
        r"\(1000 bytes, max_member_bytes\)"
    )
    with pytest.raises(ValueError, match=message) as excinfo:
        load(small_model, max_member_bytes=1000)
    assert f"dask.config.set({{'{MAX_MEMBER_BYTES_KEY}': '8GiB'}})" in str(excinfo.value)
    assert "DASK_DASKML_LAB__PERSISTENCE__MAX_MEMBER_BYTES" in str(excinfo.value)
    with (
        dask.config.set({MAX_MEMBER_BYTES_KEY: "1 kB"}),
        pytest.raises(ValueError, match=r"more than the cap of 0\.98 kiB \(1000 bytes"),
    ):
        load(small_model)
    # Raised (or at its default) the same file loads.
    assert load(small_model, max_member_bytes="64MiB").n_features_in_ == 4
    with dask.config.set({MAX_MEMBER_BYTES_KEY: 10**9}):
        assert load(small_model).n_features_in_ == 4


def test_member_cap_from_the_environment(small_model):
    outcome = _load_capped(small_model, env={"DASK_DASKML_LAB__PERSISTENCE__MAX_MEMBER_BYTES": "1000"})
    assert outcome["error"] == "ValueError", outcome
    assert "more than the cap of 0.98 kiB (1000 bytes, max_member_bytes)" in outcome["message"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_member_bytes": 0}, ValueError, "max_member_bytes must be positive"),
        ({"max_member_bytes": "lots"}, ValueError, "max_member_bytes must be a byte count"),
        ({"max_member_bytes": 1.5}, TypeError, "max_member_bytes must be an int"),
        ({"max_compression_ratio": 1}, ValueError, "max_compression_ratio must be above 1"),
        ({"max_compression_ratio": "10"}, TypeError, "max_compression_ratio must be a number"),
    ],
)
def test_invalid_caps(kwargs, error, match, small_model):
    with pytest.raises(error, match=match):
        load(small_model, **kwargs)


# ---------------------------------------------------------------------------------------------------------
# .npy headers: checked before anything is allocated


def _npy(shape, dtype, data):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    )
    return header.getvalue() + data


def test_npy_header_declaring_a_huge_shape_is_refused_before_allocation(small_model, tmp_path):
    """8 TiB declared over 32 bytes of data: numpy would allocate the array before reading into it."""
    names = _array_names(small_model)

    def replace(entries):
        return {name: _stored(name, _npy((2**40,), np.float64, b"\0" * 32)) for name in names}

    path = _with_payload_members(small_model, tmp_path / "huge.daskml", replace)
    with pytest.raises(
        ValueError,
        match=r"declares shape \(1099511627776,\) of dtype float64 \(8796093022208 bytes\) but holds 32 bytes of "
        r"data; it was refused before anything was allocated",
    ):
        load(path)


def test_npy_header_must_be_valid(small_model, tmp_path):
    name = _array_names(small_model)[0]
    path = _with_payload_members(
        small_model, tmp_path / "bad.daskml", lambda e: {name: _stored(name, b"\x93NUMPY junk")}
    )
    with pytest.raises(ValueError, match=rf"Array '{name}' of .* has an invalid .npy header"):
        load(path)


def test_arrays_declared_against_the_estimator_are_checked_before_allocation(data, tmp_path):
    """theta_ of a naive Bayes model with a row per class too few: refused from the .npy header."""
    X, y, _ = data
    model = GaussianNB().fit(X, y)
    model.theta_ = model.theta_[:1].copy()
    with pytest.raises(
        ValueError,
        match=r"GaussianNB has theta_ of shape \(1, 4\) for 2 classes \(classes_\). It was refused before any "
        "array was allocated",
    ):
        load(save(model, tmp_path / "nb.daskml"))


def test_metadata_and_model_must_agree_on_the_features(small_model, tmp_path):
    members = _members(small_model)
    info = json.loads(members["daskml_lab.json"])
    info["summary"]["n_features_in"] = 7
    metadata, checksum = _sealed(json.dumps(info).encode(), members["model.skops"])
    path = tmp_path / "meta.daskml"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("daskml_lab.json", metadata)
        archive.writestr("model.skops", members["model.skops"])
        archive.writestr("checksum.json", checksum)
    with pytest.raises(
        ValueError, match=r"its metadata records 7 features but the model has n_features_in_=4"
    ):
        load(path)


# ---------------------------------------------------------------------------------------------------------
# inconsistent arrays, family by family (saved by save(), so only the checks on load can refuse them)


def _refused(model, change, tmp_path, match):
    tampered = copy.deepcopy(model)
    change(tampered)
    path = save(tampered, tmp_path / "tampered.daskml")
    # HistGradientBoosting with categorical features holds a partial of check_array (not trusted by default).
    trusted = describe(path)["untrusted_types"]
    with pytest.raises(ValueError, match=match):
        load(path, trusted=trusted)
    load(save(model, tmp_path / "intact.daskml"), trusted=trusted)  # the untampered model loads


def _categorical_data():
    rng = np.random.default_rng(1)
    category = rng.integers(0, 5, size=400)
    X = np.c_[category, rng.normal(size=(400, 2))]
    return X, (np.isin(category, [1, 3]) ^ (X[:, 1] > 1.5)).astype(np.int64)


def _fused_forest(data):
    X, y, _ = data
    with dask.config.set(scheduler="sync"):
        return ShardEnsembleClassifier(
            RandomForestClassifier(n_estimators=3, random_state=0), fusion="forest-union", random_state=0
        ).fit(da.from_array(X, chunks=100), y)


def _soft_voting(data):
    X, y, _ = data
    with dask.config.set(scheduler="sync"):
        return ShardEnsembleClassifier(GaussianNB(), fusion="soft-voting", random_state=0).fit(
            da.from_array(X, chunks=100), y
        )


def _setattr(path, value):
    def change(model):
        *parents, name = path.split(".")
        owner = model
        for parent in parents:
            owner = owner[int(parent)] if parent.isdigit() else getattr(owner, parent)
        setattr(owner, name, value(getattr(owner, name)))

    return change


_FAMILIES = {
    "forest-member-features": (
        lambda d: RandomForestClassifier(n_estimators=3, random_state=0).fit(d[0], d[1]),
        _setattr("estimators_.1.n_features_in_", lambda n: 9),
        r"RandomForestClassifier has a member \(estimators_, number 1\) fitted on 9 features, more than the "
        r"ensemble's 4",
    ),
    "fused-forest-tree-features": (
        _fused_forest,
        _setattr("fusion_.fused_estimator_.estimators_.0.n_features_in_", lambda n: 12),
        r"fitted on 12 features, more than the ensemble's 4",
    ),
    "gradient-boosting-columns": (
        lambda d: GradientBoostingClassifier(n_estimators=3, random_state=0).fit(d[0], d[2]),
        _setattr("estimators_", lambda a: a[:, :1].copy()),
        r"GradientBoostingClassifier has estimators_ of shape \(3, 1\), not \(n_estimators, 3\)",
    ),
    "gradient-boosting-tree-features": (
        lambda d: GradientBoostingClassifier(n_estimators=3, random_state=0).fit(d[0], d[1]),
        lambda m: setattr(m.estimators_[2, 0], "n_features_in_", 40),
        r"fitted on 40 features, more than the ensemble's 4",
    ),
    "gradient-boosting-init": (
        lambda d: GradientBoostingClassifier(n_estimators=3, random_state=0).fit(d[0], d[2]),
        lambda m: setattr(m, "init_", DummyClassifier(strategy="prior").fit(np.zeros((4, 4)), [0, 1, 0, 1])),
        r"has an init_ estimator with 2 classes for its 3",
    ),
    "hist-gradient-boosting-categories": (
        lambda d: HistGradientBoostingClassifier(max_iter=5, categorical_features=[0]).fit(
            *_categorical_data()
        ),
        _setattr("_bin_mapper.is_categorical_", np.zeros_like),
        r"HistGradientBoostingClassifier has a categorical split on a feature its binning does not mark",
    ),
    "hist-gradient-boosting-baseline": (
        lambda d: HistGradientBoostingClassifier(max_iter=3).fit(d[0], d[2]),
        _setattr("_baseline_prediction", lambda a: a[:, :2].copy()),
        r"has a baseline prediction of shape \(1, 2\), not \(1, 3\)",
    ),
    "hist-gradient-boosting-predictors": (
        lambda d: HistGradientBoostingClassifier(max_iter=3).fit(d[0], d[2]),
        _setattr("_predictors", lambda rows: [row[:2] for row in rows]),
        r"has predictors that are not one list of 3 trees",
    ),
    "kneighbors-labels": (
        lambda d: KNeighborsClassifier().fit(d[0], d[1]),
        _setattr("_y", lambda a: a + 5),
        r"KNeighborsClassifier has training labels \(_y\) that are not class codes in \[0, 2\)",
    ),
    "kneighbors-rows": (
        lambda d: KNeighborsClassifier(algorithm="brute").fit(d[0], d[1]),
        _setattr("_fit_X", lambda a: a[:, :3].copy()),
        r"has training rows \(_fit_X\) of shape \(300, 3\), not \(300, 4\)",
    ),
    "kneighbors-search-tree": (
        lambda d: KNeighborsClassifier(algorithm="kd_tree").fit(d[0], d[1]),
        lambda m: setattr(m, "_tree", KDTree(m._fit_X[:, :3].copy())),
        r"a neighbours search tree holds rows of shape \(3,\), not \(4,\) features",
    ),
    "mlp-layers": (
        lambda d: MLPClassifier(hidden_layer_sizes=(5, 3), solver="lbfgs", max_iter=20, random_state=0).fit(
            d[0], d[1]
        ),
        _setattr("coefs_", lambda layers: [layers[0], np.zeros((4, 3)), layers[2]]),
        r"MLPClassifier has layer 1 weights \(coefs_\[1\]\) of shape \(4, 3\) for 5 inputs",
    ),
    "naive-bayes-prior": (
        lambda d: GaussianNB().fit(d[0], d[2]),
        _setattr("class_prior_", lambda a: np.r_[a, 0.0]),
        r"GaussianNB has class_prior_ of shape \(4,\) for 3 classes",
    ),
    "fusion-weights": (
        _soft_voting,
        _setattr("fusion_.weights_", lambda a: np.r_[a, 1.0]),
        r"has 4 weights \(weights_\) for its 3 members \(n_members_\)",
    ),
    "fusion-class-index": (
        _soft_voting,
        _setattr("fusion_.class_index_", lambda index: [index[0] + 7, *index[1:]]),
        r"has class indices of member 0 \(class_index_\) outside \[0, 2\)",
    ),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("case", list(_FAMILIES))
def test_inconsistent_arrays_are_refused_for_each_family(case, data, tmp_path):
    make, change, match = _FAMILIES[case]
    _refused(make(data), change, tmp_path, match)


def test_zip_directory_of_millions_of_members_is_refused_before_it_is_parsed(small_model, tmp_path):
    """zipfile builds an object per directory entry on opening: the directory's size is capped first."""
    empty = [_stored(f"{index:015d}.npy", b"") for index in range(4000)]  # 4000 entries of 65 bytes
    path = _with_payload_members(small_model, tmp_path / "members.daskml", lambda e: {m[0]: m for m in empty})
    cap = 8 * MIB  # the directory may then take 128 kiB
    with pytest.raises(
        ValueError,
        match=r"The zip directory of the model payload of .* takes 25\d\.\d\d kiB .*, more than the cap of "
        r"128\.00 kiB \(max_member_bytes / 64\)",
    ):
        load(path, max_member_bytes=cap)
    # The directory of the file itself is capped the same way.
    members = _members(small_model)
    outer = tmp_path / "outer.daskml"
    outer.write_bytes(_raw_zip([_stored(name, content) for name, content in members.items()] + empty))
    with pytest.raises(
        ValueError, match=r"The zip directory of the file of .* more than the cap of 128\.00 kiB"
    ):
        load(outer, max_member_bytes=cap)


def test_description_is_capped_below_the_members(data, tmp_path):
    """schema.json is parsed as JSON, which takes several times its size: it gets a quarter of the cap."""
    X, y, _ = data
    path = save(
        RandomForestClassifier(n_estimators=40, max_depth=2, random_state=0).fit(X, y), tmp_path / "f.daskml"
    )
    with pytest.raises(ValueError, match=r"Member 'schema.json' of .* more than the cap of 256\.00 kiB"):
        load(path, max_member_bytes=2**20)
    assert len(load(path, max_member_bytes=2**22).estimators_) == 40


def test_array_with_a_lying_zip_header_inside_the_payload(small_model, tmp_path):
    """An .npy member declaring 1 MiB in its zip header, whose own header and data say 3 GiB.

    skops would read the 1 MiB zipfile lets through, then numpy would allocate the 3 GiB its header declares:
    the .npy header is checked against the declared size first.
    """
    header = _npy((3 * GIB // 8,), np.float64, b"")
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    raw = start + _zeros_deflated(3 * 1024)  # byte-aligned after the full flush: the streams concatenate
    name = _array_names(small_model)[0]
    crc = zlib.crc32(header + bytes(MIB - len(header)))  # of the 1 MiB zipfile returns: a careful forger's
    path = _with_payload_members(
        small_model, tmp_path / "array.daskml", lambda e: {name: (name, raw, zipfile.ZIP_DEFLATED, crc, MIB)}
    )
    outcome = _load_capped(path)
    assert outcome["error"] == "ValueError", outcome
    assert "declares shape (402653184,) of dtype float64 (3221225472 bytes) but holds" in outcome["message"]


def _intact_models():
    from sklearn import discriminant_analysis, ensemble, linear_model, naive_bayes, neighbors, pipeline
    from sklearn import preprocessing as pre

    return {
        "gradient-boosting-regressor": lambda: ensemble.GradientBoostingRegressor(n_estimators=5),
        "gradient-boosting-3-classes-zero-init": lambda: GradientBoostingClassifier(
            n_estimators=5, init="zero"
        ),
        "hist-gradient-boosting-regressor": lambda: ensemble.HistGradientBoostingRegressor(max_iter=5),
        "extra-trees": lambda: ensemble.ExtraTreesClassifier(n_estimators=3),
        "bagging-half-the-features": lambda: ensemble.BaggingClassifier(max_features=0.5, n_estimators=3),
        "adaboost": lambda: ensemble.AdaBoostClassifier(n_estimators=3),
        "stacking": lambda: ensemble.StackingClassifier(
            [("a", linear_model.LogisticRegression()), ("b", GaussianNB())]
        ),
        "kneighbors-regressor": lambda: neighbors.KNeighborsRegressor(),
        "kneighbors-ball-tree": lambda: KNeighborsClassifier(algorithm="ball_tree"),
        "radius-neighbors": lambda: neighbors.RadiusNeighborsClassifier(radius=5.0),
        "mlp-3-classes": lambda: MLPClassifier(solver="lbfgs", max_iter=20, random_state=0),
        "bernoulli-nb": lambda: naive_bayes.BernoulliNB(),
        "lda": lambda: discriminant_analysis.LinearDiscriminantAnalysis(),
        "scalers": lambda: pipeline.make_pipeline(
            pre.StandardScaler(), pre.MinMaxScaler(), pre.RobustScaler(), linear_model.LogisticRegression()
        ),
    }


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", list(_intact_models()))
def test_intact_models_of_every_family_load(name, data, tmp_path):
    """No false alarm: the checks accept what scikit-learn fits (three classes, where it matters)."""
    X, _, y3 = data
    model = _intact_models()[name]().fit(X, y3)
    path = save(model, tmp_path / "m.daskml")
    loaded = load(path, trusted=describe(path)["untrusted_types"])  # stacking holds a Bunch
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
