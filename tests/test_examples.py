"""The runnable examples, end to end on the real datasets (skipped when ../shared/data is absent)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, shared_file

EXAMPLES = REPO_ROOT / "examples"

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def _run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=600, check=False, cwd=REPO_ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_data_layer_example_on_letter(shared_data):
    path = shared_file(shared_data, "letter", "letter.tsv.gz")
    out = _run(str(EXAMPLES / "data_layer.py"), str(path), "--target", "target", "--n-shards", "4")
    assert "loaded:  X (20000, 16) float64" in out
    assert "split:   train 15,000 rows, test 5,000 rows (stratified)" in out
    assert "sharded: 4 shards of (3750, 3750, 3750, 3750) rows (stratified)" in out
    # 26 letters, each shard within one row of its class quota.
    rows = [line.split() for line in out.splitlines() if re.match(r"^\d+\s+3750\s", line)]
    assert len(rows) == 4
    counts = [[int(v) for v in row[2:]] for row in rows]
    for column in zip(*counts, strict=True):
        assert max(column) - min(column) <= 2


def test_data_layer_example_on_libsvm(shared_data):
    path = shared_file(shared_data, "a9a_libsvm", "a9a.gz")
    out = _run(
        str(EXAMPLES / "data_layer.py"),
        str(path),
        "--format",
        "svmlight",
        "--n-features",
        "123",
        "--strategy",
        "shuffle",
    )
    assert "loaded:  X (32561, 123) float64" in out
    assert "split:   train 24,420 rows, test 8,141 rows (stratified)" in out
    assert "sharded: 4 shards of (6105, 6105, 6105, 6105) rows (shuffle)" in out


def test_checkpoint_resume_example_on_magic(shared_data, tmp_path):
    path = shared_file(shared_data, "magic_gamma_telescope", "magic.tsv.gz")
    out = _run(
        str(EXAMPLES / "checkpoint_resume.py"), str(path), "--target", "target", "--workdir", str(tmp_path)
    )
    killed = int(re.search(r"linear:  child killed after iteration (\d+);", out).group(1))
    assert killed >= 15
    # the resumed fit starts from the checkpoint the killed child left (gradient descent resumes exactly)
    assert f"gd: resuming stage 'solver' from the checkpoint of iteration {killed}" in out
    assert "largest coefficient difference with the uninterrupted fit: 0.00e+00" in out
    saved = int(re.search(r"shards:  child killed with (\d+) of 8 shard models saved", out).group(1))
    assert saved >= 3
    assert f"{saved} of 8 shard(s) already trained, training {8 - saved}" in out
    assert "predictions identical to the uninterrupted fit: True" in out
    saved = int(re.search(r"cascade: child killed with (\d+) of 8 shard SVCs saved", out).group(1))
    assert 2 <= saved < 8
    assert f"{saved} of 8 shard SVC(s) already trained, training {8 - saved}" in out
    assert "same support vectors as the uninterrupted fit: True; same predictions: True" in out


def test_tables_example_on_adult_matches_scikit_learn(shared_data):
    train = shared_file(shared_data, "adult", "adult.data.gz")
    test = shared_file(shared_data, "adult", "adult.test.gz")
    out = _run(str(EXAMPLES / "tables.py"), str(train), str(test))
    ours, reference = re.search(
        r"logistic regression accuracy (\d\.\d+) \(scikit-learn on the same pipeline: (\d\.\d+)\)", out
    ).groups()
    assert abs(float(ours) - float(reference)) <= 0.001
    assert float(re.search(r"NaN kept: accuracy (\d\.\d+)", out).group(1)) > 0.86
    assert "same predictions on the raw test table: True" in out
    assert "a table without the 'age' column is refused: columns are missing: ['age']" in out


def test_model_selection_example_on_magic_matches_scikit_learn(shared_data):
    path = shared_file(shared_data, "magic_gamma_telescope", "magic.tsv.gz")
    out = _run(str(EXAMPLES / "model_selection.py"), str(path))
    assert "same test rows as scikit-learn's folds: True" in out
    assert "fold 0: [2467, 1337] | [2467, 1337]" in out
    accuracy = float(re.search(r"cross_validate: accuracy (\d\.\d+)", out).group(1))
    assert 0.75 < accuracy < 0.85
    assert "same best parameters: True; largest difference of the mean scores: 0.0e+00" in out


def test_hashed_features_example_on_adult_matches_scikit_learn(shared_data):
    train = shared_file(shared_data, "adult", "adult.data.gz")
    test = shared_file(shared_data, "adult", "adult.test.gz")
    out = _run(str(EXAMPLES / "hashed_features.py"), str(train), str(test))
    assert "hashed:  X (32561, 16384) in 4 CSR blocks of (8140, 8140, 8140, 8141) rows" in out
    ours, reference = re.search(
        r"accuracy (\d\.\d+) \(scikit-learn on the same CSR matrix: (\d\.\d+)\)", out
    ).groups()
    assert abs(float(ours) - float(reference)) <= 0.002
    assert float(ours) > 0.8
    assert "same matrix as FeatureHasher on the same tokens: True" in out
    assert float(re.search(r"recovered model: correlation (\d\.\d+)", out).group(1)) > 0.9


def test_model_partitioning_example_on_adult_reaches_scikit_learn(shared_data):
    train = shared_file(shared_data, "adult", "adult.data.gz")
    test = shared_file(shared_data, "adult", "adult.test.gz")
    out = _run(str(EXAMPLES / "model_partitioning.py"), str(train), str(test))
    assert "coef_ is PartitionedCoefficients(shape=(1, 262144), dtype=float64, n_partitions=2" in out
    keys = int(re.search(r"per iteration: (\d+) keys pulled of the model's 262145", out).group(1))
    assert keys < 262145 // 100  # each iteration moves the keys the rows use, not the model's width
    gap = float(re.search(r"relative gap (\S+)\)", out).group(1))
    assert abs(gap) < 1e-6
    ours, theirs = re.search(r"test accuracy (\S+), scikit-learn's (\S+)", out).groups()
    assert abs(float(ours) - float(theirs)) <= 0.002
    # the FTRL-proximal SGD with an L1 penalty: few non-zeros, the L-BFGS model's accuracy within a point
    non_zeros, sparse_accuracy = re.search(
        r"FTRL-proximal, L1, 5 epochs: (\d+) non-zero coefficients of 262144, test accuracy (\S+)", out
    ).groups()
    assert 0 < int(non_zeros) < keys
    assert abs(float(sparse_accuracy) - float(theirs)) <= 0.01
    # the SGD with local steps: one push per shard and 32 steps, and the L-BFGS model's accuracy within a point
    pushes, steps, local_accuracy = re.search(
        r"SGD with local steps, 3 epochs: (\d+) pushes for (\d+) steps, test accuracy (\S+)", out
    ).groups()
    assert int(pushes) <= 2 * (int(steps) // 32 + 2 * 3)
    assert abs(float(local_accuracy) - float(theirs)) <= 0.01
