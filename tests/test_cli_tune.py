"""``daskml-lab tune``: a tiny grid on MAGIC, the best model and the cross-validation results; its errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from daskml_lab.cli import main
from daskml_lab.cli._tune import read_grid
from daskml_lab.persistence import describe, load

from .conftest import shared_file


@pytest.fixture(scope="module")
def magic(shared_data):
    return shared_file(shared_data, "magic_gamma_telescope", "magic.tsv.gz")


@pytest.mark.cluster
def test_tune_magic_saves_the_best_model_and_the_cv_results(magic, local_cluster, tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text("C = [0.001, 1.0]\nmax_iter = [300]\n")
    output = tmp_path / "best.daskml"
    args = ["tune", str(magic), "--target", "target", "--model", "logistic-regression", "--grid", str(grid)]
    args += ["--cv", "3", "--scheduler", local_cluster.scheduler_address, "--output", str(output)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "grid, 2 candidate(s) x 3 folds" in out

    table = pd.read_csv(tmp_path / "best.cv_results.csv")
    assert table["param_C"].tolist() == [0.001, 1.0]
    assert table["param_max_iter"].tolist() == [300, 300]
    folds = table[["split0_test_score", "split1_test_score", "split2_test_score"]].to_numpy()
    np.testing.assert_allclose(table["mean_test_score"], folds.mean(axis=1), rtol=1e-12)
    records = json.loads((tmp_path / "best.cv_results.json").read_text())
    np.testing.assert_allclose([r["mean_test_score"] for r in records], table["mean_test_score"], rtol=1e-12)
    # scikit-learn's search of the same pipeline on the same (unshuffled, stratified) folds
    frame = pd.read_csv(magic, sep="\t")
    reference = GridSearchCV(
        make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=300)),
        {"logisticregression__C": [0.001, 1.0]},
        cv=StratifiedKFold(3),
    ).fit(frame.drop(columns="target").to_numpy(), frame["target"].to_numpy())
    np.testing.assert_allclose(table["mean_test_score"], reference.cv_results_["mean_test_score"], atol=1e-6)
    best = int(np.argmax(table["mean_test_score"]))
    assert table["param_C"][best] == reference.best_params_["logisticregression__C"]
    assert table["rank_test_score"][best] == 1

    info = describe(output)
    tuning = info["metadata"]["tuning"]
    assert tuning["best_params"] == {"C": table["param_C"][best], "max_iter": 300}
    assert tuning["best_score"] == pytest.approx(table["mean_test_score"][best], rel=1e-12)
    model = load(output)
    assert model.steps[-1][1].C == table["param_C"][best]  # refitted on all rows with the best parameters
    assert f"best parameters  C={float(table['param_C'][best])!r}, max_iter=300" in out


def test_read_grid_errors_name_the_fix(tmp_path):
    file = tmp_path / "grid.toml"
    with pytest.raises(FileNotFoundError, match=r"no such file\. Write a TOML file such as: C = \["):
        read_grid(str(file))
    file.write_text("C = 0.1\n")
    with pytest.raises(ValueError, match=r"C = 0\.1 must be a non-empty list .*e\.g\. C = \[0\.1, 1\.0\]"):
        read_grid(str(file))
    file.write_text("C = [0.1,\n")
    with pytest.raises(ValueError, match="is not a TOML file"):
        read_grid(str(file))
    file.write_text("")
    with pytest.raises(ValueError, match="names no parameter"):
        read_grid(str(file))


@pytest.mark.cluster
@pytest.mark.parametrize(
    ("grid", "extra", "message"),
    [
        (
            "alpha = [1.0]\n",
            [],
            r"--grid names alpha, which LogisticRegression does not have\. Its parameters: .*C",
        ),
        (
            "alpha = [1.0]\n",
            ["-m", "ridge", "--task", "regression", "--scoring", "roc_auc"],
            r"scoring='roc_auc' .*regression",
        ),
    ],
)
def test_tune_errors_are_one_line(magic, local_cluster, tmp_path, capsys, grid, extra, message):
    file = tmp_path / "grid.toml"
    file.write_text(grid)
    args = ["tune", str(magic), "-t", "target", "-m", "logistic-regression", "--grid", str(file), *extra]
    args += ["--scheduler", local_cluster.scheduler_address, "-o", str(tmp_path / "m.daskml")]
    assert main(args) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("daskml-lab tune: error: ")
    assert re.search(message, line), line
    assert not (tmp_path / "m.daskml").exists()
