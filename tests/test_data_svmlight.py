"""Tests of daskml_lab.data.read_svmlight against sklearn.datasets.load_svmlight_file on the same files."""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import dump_svmlight_file, load_svmlight_file, load_svmlight_files

from daskml_lab._compat import unique_fused_keys
from daskml_lab.data import read_svmlight
from daskml_lab.exceptions import PerformanceWarning
from daskml_lab.testing import raise_if_computes
from tests.conftest import shared_file

# The two kinds of first pass: "index" scans the feature indices (n_features or zero_based left to the data),
# "count" only counts rows (n_features and a boolean zero_based given). See _options.
MODES = ["index", "count"]


def _random_data(seed: int, n_samples: int = 300, n_features: int = 25, density: float = 0.15):
    rng = np.random.default_rng(seed)
    X = sp.random(n_samples, n_features, density=density, random_state=seed, format="csr")
    X.data = np.round(X.data * 10 - 5, 3)
    y = rng.integers(-1, 3, n_samples).astype(np.float64)
    return X, y


def _write(path: Path, X, y, *, zero_based: bool = True, comment: str | None = None, query_id=None) -> Path:
    dump_svmlight_file(X, y, str(path), zero_based=zero_based, comment=comment, query_id=query_id)
    return path


def _options(mode: str, n_features: int, zero_based: bool | str) -> dict:
    if mode == "count":
        return {"n_features": n_features, "zero_based": zero_based}
    return {"zero_based": zero_based}


def _computed_blocks(array: da.Array) -> list:
    """Every row block, computed on the synchronous scheduler, checked against the declared chunks."""
    with unique_fused_keys():  # many similar collections at once: see daskml_lab._compat.unique_fused_keys
        blocks = dask.compute(*[array.blocks[i] for i in range(array.numblocks[0])], scheduler="sync")
    for block, n_rows in zip(blocks, array.chunks[0], strict=True):
        assert block.shape[0] == n_rows
        assert block.shape[1:] == array.shape[1:]
        assert type(block) is type(array._meta)
        assert block.dtype == array.dtype
    return list(blocks)


def _assert_same(result, expected) -> None:
    """Exact equality of CSR contents (indptr, indices, data), labels and query ids, block by block."""
    X, y = result[0], result[1]
    X_ref, y_ref = expected[0], expected[1]
    assert X.shape == X_ref.shape
    assert X.numblocks[1] == 1
    assert X.chunks[0] == y.chunks[0]
    assert all(c > 0 for c in X.chunks[0])
    X_blocks = _computed_blocks(X)
    got = sp.vstack(X_blocks, format="csr") if sp.issparse(X_blocks[0]) else np.vstack(X_blocks)
    if sp.issparse(got):
        assert isinstance(X._meta, sp.csr_matrix)
        X_ref = sp.csr_matrix(X_ref)
        np.testing.assert_array_equal(got.indptr, X_ref.indptr)
        np.testing.assert_array_equal(got.indices, X_ref.indices)
        np.testing.assert_array_equal(got.data, X_ref.data)
        assert got.data.dtype == X_ref.data.dtype
    else:
        np.testing.assert_array_equal(got, X_ref.toarray())
    y_got = np.concatenate(_computed_blocks(y))
    assert y_got.dtype == np.float64
    np.testing.assert_array_equal(y_got, y_ref)
    if len(expected) == 3:
        assert result[2].chunks == y.chunks
        np.testing.assert_array_equal(np.concatenate(_computed_blocks(result[2])), expected[2])


# ---------------------------------------------------------------------------------------------------------
# agreement with scikit-learn


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("written_zero_based", "zero_based"),
    [(True, True), (False, False), (True, "auto"), (False, "auto"), (False, True)],
)
def test_many_byte_ranges_match_sklearn(tmp_path, mode, written_zero_based, zero_based):
    X, y = _random_data(0)
    comment = "made by\ndump_svmlight_file"
    path = _write(tmp_path / "data.svm", X, y, zero_based=written_zero_based, comment=comment)
    # one-based files read as zero-based need one more column (column 0 stays empty)
    n_features = X.shape[1] + (1 if not written_zero_based and zero_based is True else 0)
    options = _options(mode, n_features, zero_based)  # count mode with "auto" still scans the indices
    expected = load_svmlight_file(path, **options)
    result = read_svmlight(path, blocksize="1KiB", **options)
    assert result[0].numblocks[0] >= 10  # about 10 KiB of text: lines straddle the 1 KiB boundaries
    _assert_same(result, expected)


def test_one_block_per_file_when_blocksize_is_none(tmp_path):
    X, y = _random_data(1)
    path = _write(tmp_path / "data.svm", X, y)
    X_dask, y_dask = read_svmlight(path, blocksize=None)
    assert X_dask.numblocks == (1, 1)
    _assert_same((X_dask, y_dask), load_svmlight_file(path))


@pytest.mark.parametrize("mode", MODES)
def test_comments_blank_lines_crlf_and_explicit_zeros(tmp_path, mode):
    text = (
        "# header comment\n"
        "\n"
        "1 1:0.5 3:2 # trailing comment with 7:7\n"
        "   \t \n"
        "\t-1 2:1.5 4:0\r\n"
        "#1 1:1\n"
        "  2.5 1:1e-3 2:-4 3:7 4:1\n"
        "0 4:3.25"  # last line without a newline
    )
    path = tmp_path / "hand.svm"
    path.write_text(text)
    options = _options(mode, 4, False)
    expected = load_svmlight_file(path, **options)
    assert expected[0].shape == (4, 4)
    result = read_svmlight(path, blocksize=16, **options)
    _assert_same(result, expected)
    assert result[0].numblocks[0] >= 3


@pytest.mark.parametrize("mode", MODES)
def test_query_id(tmp_path, mode):
    X, y = _random_data(2, n_samples=120)
    qid = np.repeat(np.arange(12), 10)
    path = _write(tmp_path / "rank.svm", X, y, query_id=qid)
    options = _options(mode, X.shape[1], True)
    expected = load_svmlight_file(path, query_id=True, **options)
    result = read_svmlight(path, blocksize="512B", query_id=True, **options)
    assert len(result) == 3
    assert result[2].dtype == np.int64
    _assert_same(result, expected)
    # without query_id the qid: tokens are skipped, as scikit-learn does
    _assert_same(read_svmlight(path, blocksize="512B", **options), expected[:2])


def test_float32_and_dense_blocks(tmp_path):
    X, y = _random_data(3)
    path = _write(tmp_path / "data.svm", X, y)
    expected = load_svmlight_file(path, dtype=np.float32)
    result = read_svmlight(path, dtype=np.float32, blocksize="2KiB")
    assert result[0].dtype == np.float32
    _assert_same(result, expected)
    dense = read_svmlight(path, dtype="float32", blocksize="2KiB", dense=True)
    assert isinstance(dense[0]._meta, np.ndarray)
    _assert_same(dense, expected)


def test_row_chunks_option(tmp_path):
    X, y = _random_data(4)
    path = _write(tmp_path / "data.svm", X, y)
    expected = load_svmlight_file(path)
    result = read_svmlight(path, blocksize="1KiB", chunks=100)
    assert result[0].chunks[0] == (100, 100, 100)
    _assert_same(result, expected)
    result = read_svmlight(path, blocksize="1KiB", chunks=(50, 250), query_id=True)
    assert result[0].chunks[0] == result[2].chunks[0] == (50, 250)
    _assert_same(result[:2], expected)


def test_multiple_files_list_and_glob(tmp_path):
    paths = []
    for index in range(3):
        X, y = _random_data(10 + index, n_samples=80 + 30 * index)
        paths.append(_write(tmp_path / f"part-{index}.svm", X, y, zero_based=False))
    # a list keeps its order
    refs = load_svmlight_files([paths[2], paths[0], paths[1]], n_features=25, zero_based=False)
    expected = (sp.vstack(refs[0::2], format="csr"), np.concatenate(refs[1::2]))
    result = read_svmlight([paths[2], paths[0], paths[1]], n_features=25, zero_based=False, blocksize="1KiB")
    _assert_same(result, expected)
    # a glob is sorted
    refs = load_svmlight_files(paths)
    expected = (sp.vstack(refs[0::2], format="csr"), np.concatenate(refs[1::2]))
    _assert_same(read_svmlight(str(tmp_path / "part-*.svm"), blocksize="1KiB"), expected)
    _assert_same(
        read_svmlight([tmp_path / "part-0.svm", str(tmp_path / "part-[12].svm")], blocksize="1KiB"), expected
    )


def test_auto_zero_based_is_decided_over_all_files(tmp_path):
    # One file with the index 0 makes every file zero-based, as in sklearn.datasets.load_svmlight_files.
    (tmp_path / "a.svm").write_text("1 1:1 2:2\n-1 3:3\n")
    (tmp_path / "b.svm").write_text("1 0:1 2:2\n")
    (tmp_path / "c.svm").write_text("")  # an empty file (no byte range at all)
    files = [tmp_path / "a.svm", tmp_path / "b.svm"]
    refs = load_svmlight_files(files)
    expected = (sp.vstack(refs[0::2], format="csr"), np.concatenate(refs[1::2]))
    assert expected[0].shape == (3, 4)
    _assert_same(read_svmlight(files, blocksize=4), expected)
    # alone, a.svm is one-based; an empty file among the inputs makes it zero-based (no indices to judge)
    _assert_same(read_svmlight(files[0]), load_svmlight_file(files[0]))
    assert read_svmlight(files[0])[0].shape == (2, 3)
    with_empty = [files[0], tmp_path / "c.svm"]
    refs = load_svmlight_files(with_empty)
    assert refs[0].shape == (2, 4)
    _assert_same(read_svmlight(with_empty), (refs[0], refs[1]))


@pytest.mark.parametrize(("suffix", "opener"), [(".gz", gzip.open), (".bz2", bz2.open), (".xz", lzma.open)])
def test_compressed_files_are_one_block_each(tmp_path, suffix, opener):
    X, y = _random_data(5)
    plain = _write(tmp_path / "data.svm", X, y)
    paths = []
    for index in range(2):
        path = tmp_path / f"data-{index}.svm{suffix}"
        with opener(path, "wb") as f:
            f.write(plain.read_bytes())
        paths.append(path)
    expected = load_svmlight_file(plain)
    result = read_svmlight(paths[0])
    assert result[0].numblocks[0] == 1
    _assert_same(result, expected)
    with pytest.warns(PerformanceWarning, match=r"-compressed .* byte ranges of 1\.00 kiB"):
        both = read_svmlight(paths, blocksize="1KiB")
    assert both[0].chunks[0] == (300, 300)
    _assert_same(both, (sp.vstack([expected[0]] * 2), np.concatenate([expected[1]] * 2)))


def test_explicit_compression_option(tmp_path):
    X, y = _random_data(6)
    plain = _write(tmp_path / "data.svm", X, y)
    packed = tmp_path / "data.svm.packed"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    _assert_same(read_svmlight(packed, compression="gzip"), load_svmlight_file(plain))


def test_a9a_real_data(shared_data):
    train = shared_file(shared_data, "a9a_libsvm", "a9a.gz")
    test = shared_file(shared_data, "a9a_libsvm", "a9a.t.gz")
    expected_train = load_svmlight_file(train, n_features=123)
    expected_test = load_svmlight_file(test, n_features=123)
    X_train, y_train = read_svmlight(train, n_features=123)
    assert X_train.shape == (32561, 123)
    _assert_same((X_train, y_train), expected_train)
    X_test, y_test = read_svmlight(test, n_features=123)
    assert X_test.shape == (16281, 123)
    _assert_same((X_test, y_test), expected_test)
    assert set(np.unique(y_test.compute(scheduler="sync"))) == {-1.0, 1.0}
    # both files by a glob, sorted: a9a.gz before a9a.t.gz; the count-only first pass gives the same result
    both = read_svmlight(str(train.parent / "a9a*.gz"), n_features=123, zero_based=False)
    assert both[0].chunks[0] == (32561, 16281)
    _assert_same(
        both,
        (
            sp.vstack([expected_train[0], expected_test[0]]),
            np.concatenate([expected_train[1], expected_test[1]]),
        ),
    )


# ---------------------------------------------------------------------------------------------------------
# laziness


class _KeyRecorder:
    """A scheduler that records the keys each computation asks for (and runs them synchronously)."""

    def __init__(self) -> None:
        self.requested: list[list] = []

    def __call__(self, dsk, keys, **kwargs):
        self.requested.append(list(dask.core.flatten(keys)))
        return dask.get(dsk, keys, **kwargs)


@pytest.mark.parametrize("mode", MODES)
def test_building_the_arrays_runs_only_the_small_first_pass(tmp_path, mode):
    X, y = _random_data(7)
    path = _write(tmp_path / "data.svm", X, y)
    options = _options(mode, X.shape[1], True)
    # Bound: exactly one computation (the first pass over all byte ranges), returning one dict per range.
    with raise_if_computes(max_computes=1) as counter:
        X_dask, y_dask = read_svmlight(path, blocksize="1KiB", **options)
    assert counter.n_computes == 1
    recorder = _KeyRecorder()
    with dask.config.set(scheduler=recorder):
        read_svmlight(path, blocksize="1KiB", **options)
    (keys,) = recorder.requested
    assert len(keys) == X_dask.numblocks[0] >= 10
    assert all(str(key).startswith("daskml-svmlight-scan-") for key in keys)
    # the parse tasks are in the lazy graph, under our own prefix, and run once per block when computed
    assert any(str(key).startswith("daskml-svmlight-parse-") for key in dict(X_dask.__dask_graph__()))
    with raise_if_computes(max_computes=1):
        dask.compute(X_dask, y_dask)


def test_first_pass_returns_only_small_integers(tmp_path):
    from daskml_lab.data.formats._svmlight_blocks import _scan_block

    block = b"1 1:0.5 3:2\n# c\n-1 2:1\n"
    expected = {"n_bytes": len(block), "n_lines": 3, "n_rows": 2, "n_indices": 3}
    expected.update({"min_index": 1, "max_index": 3, "error": None})
    assert _scan_block(block, index_scan=True, zero_based=True) == expected
    assert _scan_block(block, index_scan=True, zero_based=False) == expected  # indices as written
    assert _scan_block(block, index_scan=False, zero_based=True) == {
        **expected,
        "n_indices": 0,
        "min_index": None,
        "max_index": None,
    }
    bad = _scan_block(b"1 1:1\n1 2:x\n", index_scan=True, zero_based=True)
    assert bad["error"][:3] == (1, 6, b"1 2:x")


# ---------------------------------------------------------------------------------------------------------
# a real cluster


@pytest.mark.cluster
def test_on_a_local_cluster(client, tmp_path):
    X, y = _random_data(8, n_samples=2000)
    path = _write(tmp_path / "data.svm", X, y, zero_based=False)
    expected = load_svmlight_file(path)
    X_dask, y_dask = read_svmlight(path, blocksize="8KiB")
    assert X_dask.numblocks[0] > 4
    X_dask, y_dask = client.persist([X_dask, y_dask])
    got_X, got_y = client.compute([X_dask, y_dask], sync=True)
    assert (got_X != expected[0]).nnz == 0
    np.testing.assert_array_equal(got_y, expected[1])
    # the parse ran on the workers, under our task prefix
    prefixes = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))
    assert "daskml-svmlight-parse" in prefixes
    assert "daskml-svmlight-scan" in prefixes


@pytest.mark.cluster
def test_malformed_line_error_travels_from_a_worker(client, tmp_path):
    path = tmp_path / "bad.svm"
    path.write_text("1 1:1\n" * 200 + "1 2:x\n" + "1 1:1\n" * 200)
    X_dask, _ = read_svmlight(path, n_features=3, zero_based=False, blocksize=256)
    with pytest.raises(ValueError, match=r"bad\.svm at line 201 \(byte offset 1200\)"):
        X_dask.compute()


# ---------------------------------------------------------------------------------------------------------
# errors


def test_missing_file_glob_and_directory(tmp_path):
    missing = tmp_path / "nope.svm"
    with pytest.raises(FileNotFoundError, match=r"svmlight file '.*nope\.svm' does not exist"):
        read_svmlight(missing)
    with pytest.raises(FileNotFoundError, match=r"No svmlight file matches the pattern '.*\*\.svm'"):
        read_svmlight(str(tmp_path / "*.svm"))
    with pytest.raises(FileNotFoundError, match=r"is a directory, not a file"):
        read_svmlight(tmp_path)
    (tmp_path / "ok.svm").write_text("1 1:1\n")
    with pytest.raises(FileNotFoundError, match=r"nope\.svm"):
        read_svmlight([tmp_path / "ok.svm", missing])


BAD_LINES = [
    ("1 2:x", r"could not convert string to float"),
    ("abc 1:1", r"could not convert string to float"),
    ("1 3:1 2:1", r"should be sorted and unique"),
    ("1 x:1", r"invalid literal for int"),
    ("1 2", r"value to unpack"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("bad", "reason"), BAD_LINES)
def test_malformed_line_names_file_line_and_byte(tmp_path, mode, bad, reason):
    good = "".join(f"{i % 2} 1:{i} 3:0.5\n" for i in range(60)) + "# a comment\n\n"
    text = good + bad + "\n" + good
    byte = text.index(bad + "\n")
    line = text[:byte].count("\n") + 1
    path = tmp_path / "bad.svm"
    path.write_text(text)
    expected = (
        rf"Malformed svmlight line in .*bad\.svm at line {line} \(byte offset {byte}\): .*{reason}.*"
        rf"Expected '<label> \[qid:<int>\] <index>:<value> \.\.\.' .*got '{re.escape(bad)}'"
    )
    with pytest.raises(ValueError, match=reason):
        load_svmlight_file(path)  # scikit-learn rejects the file too, without saying where
    if mode == "index":
        with pytest.raises(ValueError, match=expected):
            read_svmlight(path, blocksize=100)
    else:
        X_dask, _ = read_svmlight(path, blocksize=100, n_features=4, zero_based=True)
        with pytest.raises(ValueError, match=expected):
            X_dask.compute(scheduler="sync")


def test_malformed_line_in_compressed_file(tmp_path):
    path = tmp_path / "bad.svm.gz"
    path.write_bytes(gzip.compress(b"1 1:1\n-1 2:2\n1 1:oops\n"))
    where = r"bad\.svm\.gz at line 3 \(byte offset 13 of the decompressed text\)"
    with pytest.raises(ValueError, match=where):
        read_svmlight(path)


def test_zero_index_with_one_based_option(tmp_path):
    path = tmp_path / "zero.svm"
    path.write_text("1 1:1\n1 0:1 2:1\n")
    hint = r"line 2 .*Invalid index 0.*every index must be >= 1; pass zero_based=True"
    with pytest.raises(ValueError, match=hint):
        read_svmlight(path, zero_based=False)


def test_feature_index_larger_than_n_features(tmp_path):
    path = tmp_path / "wide.svm"
    path.write_text("1 1:1\n" * 100 + "-1 2:1 9:1\n" + "1 1:1\n" * 100)
    with pytest.raises(ValueError, match="n_features was set to 5"):
        load_svmlight_file(path, n_features=5)
    # index first pass: raised at once, naming the file and the needed width
    message = (
        r"n_features=5 is too small: .*wide\.svm has the feature index 9 .*at least 9 features with "
        r"one-based indices\. Pass a larger n_features \(n_features>=9\)"
    )
    with pytest.raises(ValueError, match=message):
        read_svmlight(path, n_features=5, blocksize=128)
    # count-only first pass: raised when the block is computed, with the line
    X_dask, _ = read_svmlight(path, n_features=5, zero_based=False, blocksize=128)
    message = (
        r"n_features=5 is too small: .*wide\.svm has the feature index 9 at line 101 \(byte offset 600\).*"
        r"Pass a larger n_features \(at least 9\)"
    )
    with pytest.raises(ValueError, match=message):
        X_dask.compute(scheduler="sync")


def test_no_data_rows(tmp_path):
    path = tmp_path / "empty.svm"
    path.write_text("# only a comment\n\n")
    with pytest.raises(ValueError, match=r"No data rows found in \[.*empty\.svm'\]: every line is empty"):
        read_svmlight(path)


def test_nan_values_are_caught_by_the_input_gate(tmp_path):
    path = tmp_path / "nan.svm"
    path.write_text("1 1:1\n-1 2:nan\n")
    X_dask, _ = read_svmlight(path)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        X_dask.compute(scheduler="sync")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_features": 0}, ValueError, r"n_features must be a positive int or None, got 0"),
        ({"n_features": 2.5}, TypeError, r"positive int or None, got 2\.5 of type float"),
        ({"n_features": True}, TypeError, r"got True of type bool"),
        ({"dtype": np.int64}, ValueError, r"dtype must be numpy\.float64 or numpy\.float32, got int64"),
        ({"dtype": "no-such-type"}, TypeError, r"must be numpy\.float64 or numpy\.float32, got 'no-such"),
        ({"blocksize": "lots"}, ValueError, r"blocksize must be a number of bytes .* got 'lots'"),
        ({"blocksize": 0}, ValueError, r"blocksize must be a number of bytes .* got 0"),
        ({"zero_based": "yes"}, ValueError, r"zero_based must be True, False or 'auto', got 'yes'"),
        (
            {"compression": "rar"},
            ValueError,
            r"compression must be 'infer', None or one of \[.*'gzip'.*'rar'",
        ),
        ({"chunks": "auto"}, ValueError, r"chunks must be None, a number of rows per block or a tuple"),
        ({"chunks": 0}, ValueError, r"chunks must be a positive number of rows per block, got 0"),
        (
            {"chunks": (1, 1)},
            ValueError,
            r"chunks=\(1, 1\) must be non-negative row counts adding up to the 3",
        ),
    ],
)
def test_option_errors(tmp_path, kwargs, error, match):
    path = tmp_path / "ok.svm"
    path.write_text("1 1:1\n-1 2:2\n1 3:3\n")
    with pytest.raises(error, match=match):
        read_svmlight(path, **kwargs)


def test_path_errors(tmp_path):
    with pytest.raises(ValueError, match=r"path is an empty list"):
        read_svmlight([])
    with pytest.raises(TypeError, match=r"path must be a file name, a glob pattern .* of type int"):
        read_svmlight(3)


# ---------------------------------------------------------------------------------------------------------
# property


@st.composite
def _svmlight_cases(draw):
    n_samples = draw(st.integers(1, 40))
    n_features = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**16))
    density = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    zero_based = draw(st.booleans())
    blocksize = draw(st.integers(1, 400))
    mode = draw(st.sampled_from(MODES))
    return n_samples, n_features, seed, density, zero_based, blocksize, mode


@pytest.mark.property
@settings(max_examples=30, deadline=None)
@given(case=_svmlight_cases())
def test_property_any_blocksize_matches_sklearn(tmp_path_factory, case):
    n_samples, n_features, seed, density, zero_based, blocksize, mode = case
    rng = np.random.default_rng(seed)
    X = sp.random(n_samples, n_features, density=density, random_state=seed, format="csr")
    X.data = np.round(X.data * 100 - 50, 2)
    y = rng.integers(0, 4, n_samples).astype(np.float64)
    path = _write(tmp_path_factory.mktemp("prop") / "data.svm", X, y, zero_based=zero_based)
    options = {"n_features": n_features, "zero_based": zero_based} if mode == "count" else {}
    expected = load_svmlight_file(path, **options)
    _assert_same(read_svmlight(path, blocksize=blocksize, **options), expected)
