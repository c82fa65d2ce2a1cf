"""``daskml-lab fit / predict / evaluate`` end to end: subprocesses on real and synthetic files, and errors."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    r2_score,
    root_mean_squared_error,
)

from daskml_lab.cli import main
from daskml_lab.cli._config import parse_value, resolve_options
from daskml_lab.cli._info import final_params
from daskml_lab.persistence import describe, load, save

from .conftest import shared_file


def _run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("daskml-lab")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "daskml_lab.cli._main"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout, check=False)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def _error_line(result: subprocess.CompletedProcess[str], command: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"daskml-lab {command}: error: ")
    return lines[0]


# In process: the same code path as the command (``main`` is the entry point), without the seconds a process
# start spends importing the package. Every end-to-end test runs its first command (fit) as a subprocess; each of
# fit, predict and evaluate still runs as a subprocess against the cluster in at least one test.


def _main_ok(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()  # what earlier steps printed
    code = main(list(args))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err
    return captured.out


def _main_error_line(capsys: pytest.CaptureFixture[str], command: str, *args: str) -> str:
    capsys.readouterr()
    code = main([command, *args])
    captured = capsys.readouterr()
    assert code == 2, (captured.out, captured.err)
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"daskml-lab {command}: error: ")
    return lines[0]


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A labelled table (parquet, 4 row groups) and a gridded dataset with masked pixels (netCDF, zarr)."""
    folder = tmp_path_factory.mktemp("cli-data")
    rng = np.random.default_rng(0)
    n = 2000
    X = rng.normal(size=(n, 3))
    table = pd.DataFrame(
        {
            "a": X[:, 0],
            "b": X[:, 1],
            "c": X[:, 2],
            "label": np.where(X[:, 0] + X[:, 1] + 0.3 * rng.normal(size=n) > 0, "yes", "no"),
            "price": X @ np.array([1.5, -2.0, 0.5]) + 3.0 + 0.2 * rng.normal(size=n),
        }
    )
    table.to_parquet(folder / "table.parquet", row_group_size=500)
    grid = rng.normal(size=(3, 40, 50))
    a = grid[0].copy()
    a[0, :3] = np.nan  # masked pixels (clouds)
    crop = (grid[0] - grid[1] + 0.3 * rng.normal(size=(40, 50)) > 0).astype(np.int64)
    ds = xr.Dataset(
        {
            "a": (("y", "x"), a),
            "b": (("y", "x"), grid[1]),
            "c": (("y", "x"), grid[2]),
            "crop": (("y", "x"), crop),
        },
        coords={"y": np.arange(40) * 10.0, "x": 100.0 + np.arange(50) * 5.0},
    )
    ds.to_netcdf(folder / "grid.nc")
    ds.chunk({"y": 10}).to_zarr(folder / "grid.zarr", zarr_format=2)
    return {"table": folder / "table.parquet", "grid": folder / "grid.nc", "zarr": folder / "grid.zarr"}


def _classification_metrics(model, X, y):
    proba = model.predict_proba(X)
    prediction = model.predict(X)
    return {
        "accuracy": accuracy_score(y, prediction),
        "balanced_accuracy": balanced_accuracy_score(y, prediction),
        "f1_macro": f1_score(y, prediction, average="macro"),
        "log_loss": log_loss(y, y_proba=proba, labels=model.classes_),
    }


# ---------------------------------------------------------------------------------------------------------
# end to end


@pytest.mark.cluster
def test_magic_fit_predict_evaluate(shared_data, external_scheduler, tmp_path):
    data = shared_file(shared_data, "magic_gamma_telescope", "magic.tsv.gz")
    model_path, predictions = tmp_path / "magic.daskml", tmp_path / "magic.parquet"
    out = _ok(
        _run(
            "fit",
            str(data),
            "--target",
            "target",
            "--model",
            "logistic-regression",
            "--param",
            "max_iter=300",
            "--scheduler",
            external_scheduler,
            "--output",
            str(model_path),
        )
    )
    assert "logistic-regression (LogisticRegression)" in out
    assert "19,020 rows x 10 features" in out
    assert "Training page: http://127.0.0.1:" in out
    assert "/daskml-training" in out
    info = describe(model_path)
    assert info["metadata"]["data"]["target"] == "target"
    assert info["metadata"]["training"]["task"] == "classification"
    assert final_params(info["params"])["max_iter"] == 300  # the model behind the CLI's scaler

    _ok(
        _run(
            "predict",
            str(model_path),
            str(data),
            "--output",
            str(predictions),
            "--proba",
            "--scheduler",
            external_scheduler,
        )
    )
    frame = pd.read_parquet(predictions)
    table = pd.read_csv(data, sep="\t")
    X, y = table.drop(columns="target").to_numpy(), table["target"].to_numpy()
    model = load(model_path)
    np.testing.assert_array_equal(frame["prediction"].to_numpy(), model.predict(X))
    np.testing.assert_allclose(frame[["proba_0", "proba_1"]].to_numpy(), model.predict_proba(X), rtol=1e-12)
    assert frame["row"].tolist() == list(range(len(table)))

    result = json.loads(
        _ok(_run("evaluate", str(model_path), str(data), "--json", "--scheduler", external_scheduler))
    )
    assert result["n_samples"] == len(table)
    expected = _classification_metrics(model, X, y)
    assert result["metrics"].keys() == expected.keys()
    for name, value in expected.items():
        assert result["metrics"][name] == pytest.approx(value, rel=1e-10), name
    assert 0.7 < result["metrics"]["accuracy"] < 0.9  # a linear model on MAGIC reaches about 0.79


@pytest.mark.cluster
def test_gamma_regression_of_diamond_prices(shared_data, external_scheduler, tmp_path, capsys):
    """A GLM family from the command line: an integer target, a regression-only model, scikit-learn's optimum."""
    data = shared_file(shared_data, "diamonds", "diamonds.csv.gz")
    features = ["carat", "depth", "table", "x", "y", "z"]
    model_path = tmp_path / "gamma.daskml"
    params = ("--param", "alpha=0.001", "--param", "tol=1e-8", "--param", "max_iter=1000")
    out = _ok(
        _run(
            "fit",
            str(data),
            "-t",
            "price",
            "-m",
            "gamma",
            "--features",
            ",".join(features),
            *params,
            "--solver",
            "newton-cholesky",
            "--scheduler",
            external_scheduler,
            "-o",
            str(model_path),
        )
    )
    assert "gamma (GammaRegressor)" in out
    table = pd.read_csv(data)
    X, y = table[features].to_numpy(np.float64), table["price"].to_numpy(np.float64)
    from sklearn.linear_model import GammaRegressor as SkGammaRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # the command line standardises the columns of linear models (inside the saved model)
    reference = make_pipeline(
        StandardScaler(), SkGammaRegressor(alpha=0.001, tol=1e-8, max_iter=1000, solver="newton-cholesky")
    ).fit(X, y)
    model = load(model_path)
    np.testing.assert_allclose(model[-1].coef_, reference[-1].coef_, rtol=1e-5, atol=1e-8)
    result = json.loads(
        _main_ok(capsys, "evaluate", str(model_path), str(data), "--json", "--scheduler", external_scheduler)
    )
    assert result["metrics"]["r2"] == pytest.approx(r2_score(y, reference.predict(X)), rel=1e-6)


@pytest.mark.cluster
def test_forest_union_on_parquet_with_text_labels_to_zarr(files, external_scheduler, tmp_path, capsys):
    model_path, predictions = tmp_path / "forest.daskml", tmp_path / "out.zarr"
    out = _ok(
        _run(
            "fit",
            str(files["table"]),
            "-t",
            "label",
            "--features",
            "a,b,c",
            "-m",
            "random-forest",
            "--fusion",
            "forest-union",
            "-p",
            "n_estimators=10",
            "-p",
            "max_depth=6",
            "--random-state",
            "0",
            "--n-shards",
            "4",
            "--scheduler",
            external_scheduler,
            "-o",
            str(model_path),
        )
    )
    assert "RandomForestClassifier per shard, fusion forest-union" in out
    assert "4 (4 model(s))" in out
    _ok(
        _run(
            "predict",
            str(model_path),
            str(files["table"]),
            "-o",
            str(predictions),
            "--proba",
            "--scheduler",
            external_scheduler,
        )
    )
    written = xr.open_zarr(predictions)
    table = pd.read_parquet(files["table"])
    X, y = table[["a", "b", "c"]].to_numpy(), table["label"].to_numpy()
    model = load(model_path)
    np.testing.assert_array_equal(written["prediction"].values, model.predict(X).astype(str))
    np.testing.assert_array_equal(written["probability"].values, model.predict_proba(X))
    assert written["class"].values.tolist() == ["no", "yes"]

    result = json.loads(
        _main_ok(
            capsys,
            "evaluate",
            str(model_path),
            str(files["table"]),
            "--json",
            "--scheduler",
            external_scheduler,
        )
    )
    for name, value in _classification_metrics(model, X, y).items():
        assert result["metrics"][name] == pytest.approx(value, rel=1e-10), name


@pytest.mark.cluster
def test_netcdf_predictions_keep_the_grid_coordinates(files, external_scheduler, tmp_path, capsys):
    model_path, predictions = tmp_path / "grid.daskml", tmp_path / "crop.nc"
    _ok(
        _run(
            "fit", str(files["grid"]), "-t", "crop", "--scheduler", external_scheduler, "-o", str(model_path)
        )
    )
    assert describe(model_path)["metadata"]["data"]["n_samples"] == 40 * 50 - 3  # masked pixels left out
    # The model trained on netCDF predicts the same grid stored as zarr.
    _main_ok(
        capsys,
        "predict",
        str(model_path),
        str(files["zarr"]),
        "-o",
        str(predictions),
        "--proba",
        "--scheduler",
        external_scheduler,
    )
    written = xr.open_dataset(predictions)
    source = xr.open_dataset(files["grid"])
    assert written["prediction"].dims == ("y", "x")
    np.testing.assert_array_equal(written["x"].values, source["x"].values)
    np.testing.assert_array_equal(written["y"].values, source["y"].values)
    features = np.stack([source[v].values.ravel() for v in ("a", "b", "c")], axis=1)
    valid = ~np.isnan(features).any(axis=1)
    model = load(model_path)
    flat = written["prediction"].values.ravel()
    assert (~valid).sum() == 3
    assert np.isnan(flat[~valid]).all()
    np.testing.assert_array_equal(flat[valid], model.predict(features[valid]))
    np.testing.assert_allclose(
        written["probability"].values.reshape(-1, 2)[valid], model.predict_proba(features[valid]), rtol=1e-12
    )


@pytest.mark.cluster
def test_regression_from_a_config_file(files, external_scheduler, tmp_path, capsys):
    config = tmp_path / "fit.toml"
    config.write_text(
        f"""
scheduler = "{external_scheduler}"
target = "price"

[fit]
model = "ridge"
features = ["a", "b", "c"]
output = "ridge.daskml"
solver = "lbfgs"

[fit.params]
alpha = 5.0
tol = 1e-8
"""
    )
    out = _ok(_run("fit", str(files["table"]), "--config", str(config), "--param", "alpha=2.0"))
    model_path = tmp_path / "ridge.daskml"  # relative to the config file
    assert str(model_path) in out
    params = final_params(describe(model_path)["params"])  # the model behind the CLI's scaler
    assert params["alpha"] == 2.0  # the command line overrides the file
    assert params["tol"] == 1e-8
    assert params["solver"] == "lbfgs"

    result = json.loads(
        _main_ok(capsys, "evaluate", str(model_path), str(files["table"]), "--json", "--config", str(config))
    )
    table = pd.read_parquet(files["table"])
    X, y = table[["a", "b", "c"]].to_numpy(), table["price"].to_numpy()
    prediction = load(model_path).predict(X)
    expected = {
        "r2": r2_score(y, prediction),
        "mae": mean_absolute_error(y, prediction),
        "rmse": root_mean_squared_error(y, prediction),
    }
    assert result["metrics"] == pytest.approx(expected, rel=1e-9)
    assert result["metrics"]["r2"] > 0.95


@pytest.mark.cluster
@pytest.mark.slow
def test_fit_predict_on_a_local_cluster(files, tmp_path):
    model_path, predictions = tmp_path / "sgd.daskml", tmp_path / "out.parquet"
    out = _ok(
        _run(
            "fit",
            str(files["table"]),
            "-t",
            "label",
            "--features",
            "a,b,c",
            "-m",
            "sgd",
            "--fusion",
            "parameter-averaging",
            "--random-state",
            "1",
            "--workers",
            "1",
            "-o",
            str(model_path),
        )
    )
    assert "on 1 worker(s)" in out
    _ok(_run("predict", str(model_path), str(files["table"]), "-o", str(predictions), "--workers", "1"))
    table = pd.read_parquet(files["table"])
    expected = load(model_path).predict(table[["a", "b", "c"]].to_numpy())
    np.testing.assert_array_equal(pd.read_parquet(predictions)["prediction"].to_numpy(), expected)


@pytest.mark.cluster
@pytest.mark.parametrize(
    ("model", "resumed"),
    [
        ("random-forest", "3 of 3 shard(s) already trained"),
        ("cascade-svc", "3 of 3 shard SVC(s) already trained"),
    ],
)
def test_checkpoint_option_resumes_the_fit(model, resumed, files, external_scheduler, tmp_path, caplog):
    checkpoint = tmp_path / "ckpt"
    args = ["fit", str(files["table"]), "-t", "label", "--features", "a,b,c", "-m", model]
    args += [
        "--n-shards",
        "3",
        "--seed",
        "0",
        "--checkpoint",
        str(checkpoint),
        "--scheduler",
        external_scheduler,
    ]
    assert main([*args, "-o", str(tmp_path / "first.daskml")]) == 0
    assert (checkpoint / "checkpoint.json").is_file()
    assert len(list(checkpoint.glob("shard-*.json"))) == 3
    # the same command again finds every shard trained (as after an interruption it would find some)
    with caplog.at_level(logging.INFO, logger="daskml_lab.ensemble"):
        assert main([*args, "-o", str(tmp_path / "again.daskml")]) == 0
    assert f"{resumed}, training 0" in caplog.text
    rows = pd.read_parquet(files["table"])[["a", "b", "c"]].to_numpy()
    first, again = load(tmp_path / "first.daskml"), load(tmp_path / "again.daskml")
    np.testing.assert_array_equal(again.predict(rows), first.predict(rows))
    if hasattr(first, "predict_proba"):
        np.testing.assert_array_equal(again.predict_proba(rows), first.predict_proba(rows))


# ---------------------------------------------------------------------------------------------------------
# errors, as the shell sees them


def test_bad_path_is_one_line(tmp_path):
    missing = tmp_path / "absent.parquet"
    line = _error_line(_run("fit", str(missing), "-t", "y", "-o", str(tmp_path / "m.daskml")), "fit")
    assert line.endswith(f"No such file or directory: '{missing}'.")


def test_unreachable_scheduler_is_one_line(files, tmp_path):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    result = _run(
        "fit",
        str(files["table"]),
        "-t",
        "label",
        "--scheduler",
        address,
        "--timeout",
        "2",
        "-o",
        str(tmp_path / "m.daskml"),
    )
    assert f"Could not reach the Dask scheduler at '{address}' within 2 s" in _error_line(result, "fit")


@pytest.mark.cluster
def test_unknown_column_is_one_line(files, external_scheduler, tmp_path):
    result = _run(
        "fit",
        str(files["table"]),
        "-t",
        "colour",
        "--scheduler",
        external_scheduler,
        "-o",
        str(tmp_path / "m.daskml"),
    )
    line = _error_line(result, "fit")
    assert (
        "Target column 'colour' not found in the DataFrame. Available columns: ['a', 'b', 'c', 'label'"
        in line
    )
    assert not (tmp_path / "m.daskml").exists()


def test_incompatible_options_are_one_line(files, tmp_path):
    result = _run(
        "fit",
        str(files["table"]),
        "-t",
        "label",
        "-m",
        "logistic-regression",
        "--fusion",
        "soft-voting",
        "-o",
        str(tmp_path / "m.daskml"),
    )
    line = _error_line(result, "fit")
    assert (
        "--fusion applies to shard ensembles, but --model logistic-regression is a distributed linear model"
        in line
    )


def test_corrupt_model_file_is_one_line(files, tmp_path):
    model_path = tmp_path / "m.daskml"
    model_path.write_bytes(b"\x80\x04not a model")
    result = _run("predict", str(model_path), str(files["table"]), "-o", str(tmp_path / "p.parquet"))
    assert "is not a daskml-lab model file: it is not a zip archive" in _error_line(result, "predict")
    assert not (tmp_path / "p.parquet").exists()


# ---------------------------------------------------------------------------------------------------------
# errors and options, in process (the same code path, without a process start per case)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-m", "gradient-descent"],
            "Unknown model 'gradient-descent'. Valid models are linear models: "
            "logistic-regression, linear-svc",
        ),
        (
            ["-m", "random-forest", "--fusion", "majority"],
            "Unknown fusion 'majority'. Valid fusions are hard-voting",
        ),
        (
            ["-m", "random-forest", "--solver", "lbfgs"],
            "--solver and --solver-option apply to the distributed "
            "linear models, not to --model random-forest",
        ),
        (["-m", "ridge", "--n-shards", "4"], "--n-shards applies to shard ensembles, but --model ridge"),
        (["-m", "ridge", "--solver", "newton"], "Unknown solver 'newton'. Valid solvers are auto, admm"),
        (
            ["-m", "logistic-regression", "--task", "regression"],
            "--model logistic-regression does classification, but --task regression was given",
        ),
        (["-m", "cascade-svc", "--fusion", "stacking"], "--model cascade-svc merges support vectors"),
    ],
    ids=[
        "unknown-model",
        "unknown-fusion",
        "solver-with-ensemble",
        "shards-with-linear",
        "unknown-solver",
        "task-mismatch",
        "fusion-with-cascade",
    ],
)
def test_option_errors(args, message, files, tmp_path, capsys):
    code = main(["fit", str(files["table"]), "-t", "label", *args, "-o", str(tmp_path / "m.daskml")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith("daskml-lab fit: error: ")
    assert message in err


def test_missing_target_and_output(files, tmp_path, capsys):
    assert main(["fit", str(files["table"]), "-o", str(tmp_path / "m.daskml")]) == 2
    assert capsys.readouterr().err == (
        "daskml-lab fit: error: missing --target: name the target column, variable or array (or set target in "
        "the config file).\n"
    )
    assert main(["fit", str(files["table"])]) == 2
    assert capsys.readouterr().err == (
        "daskml-lab fit: error: missing --output: give it on the command line (or in a --config file).\n"
    )


def test_existing_output_needs_overwrite(files, tmp_path, capsys):
    existing = tmp_path / "m.daskml"
    existing.write_text("keep me")
    assert main(["fit", str(files["table"]), "-t", "label", "-o", str(existing)]) == 2
    assert (
        f"The model file '{existing}' already exists; pass --overwrite to replace it."
        in capsys.readouterr().err
    )
    assert existing.read_text() == "keep me"


def test_unknown_parameter_lists_the_valid_ones(files, tmp_path, capsys):
    model_path = tmp_path / "m.daskml"
    # The parameter is checked when the estimator is built, after reading: use a tiny local run of the CLI
    # code without a cluster by building the estimator directly.
    from daskml_lab.cli._models import build_estimator, get_model

    with pytest.raises(
        ValueError,
        match=r"--model svc \(SVC\) has no parameter\(s\) \['depth'\] \(given with "
        r"--param\). Its parameters are: C, break_ties",
    ):
        build_estimator(
            get_model("svc"),
            "classification",
            params={"depth": 3},
            fusion=None,
            fusion_params={},
            solver=None,
            solver_options={},
            ensemble_options={},
            random_state=None,
        )
    assert not model_path.exists()


def test_predict_needs_a_known_output_format(files, tmp_path, capsys):
    model_path = save(load_free_model(), tmp_path / "m.daskml")
    assert main(["predict", str(model_path), str(files["table"]), "-o", str(tmp_path / "p.txt")]) == 2
    assert (
        "Cannot tell the output format from 'p.txt': use an extension among .parquet, .pq, .csv"
        in capsys.readouterr().err
    )


def test_proba_needs_a_probabilistic_model(files, tmp_path, capsys):
    model_path = save(load_free_model(), tmp_path / "m.daskml")
    assert (
        main(["predict", str(model_path), str(files["table"]), "-o", str(tmp_path / "p.parquet"), "--proba"])
        == 2
    )
    assert "--proba needs a classifier with predict_proba; the Ridge" in capsys.readouterr().err


def test_untrusted_model_names_the_trust_option(files, tmp_path, capsys):
    import math

    from sklearn.preprocessing import FunctionTransformer

    model_path = save(FunctionTransformer(func=math.fabs), tmp_path / "m.daskml")
    assert main(["evaluate", str(model_path), str(files["table"]), "-t", "price"]) == 2
    err = capsys.readouterr().err
    assert "holds types that are not trusted by default: ['math.fabs']" in err
    assert "--trust TYPE" in err


def load_free_model():
    """A fitted Ridge on 3 features, fitted in process (no cluster needed)."""
    from daskml_lab.linear_model import Ridge

    X = np.arange(12.0).reshape(4, 3)
    with dask.config.set(scheduler="sync"):
        return Ridge().fit(X, X.sum(axis=1))


# ---------------------------------------------------------------------------------------------------------
# config files


def test_config_precedence_and_types(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(
        'target = "y"\nn_shards = "3"\n[fit]\nmodel = "svc"\nn_shards = 4\n[fit.params]\nC = 2\n'
    )
    settings = resolve_options(
        "fit", {"data": "d.parquet", "output": "m.daskml", "config": str(config), "params": [("gamma", 0.5)]}
    )
    assert settings["target"] == "y"
    assert settings["model"] == "svc"
    assert settings["n_shards"] == 4  # the [fit] table overrides the top level
    assert settings["params"] == {"C": 2, "gamma": 0.5}
    assert settings["workers"] == 2  # built-in default
    assert settings["data"] == "d.parquet"


def test_yaml_config(tmp_path):
    pytest.importorskip("yaml")
    config = tmp_path / "c.yaml"
    config.write_text("target: y\nfit:\n  model: ridge\n  data: train.parquet\n  output: m.daskml\n")
    settings = resolve_options("fit", {"config": str(config)})
    assert settings["model"] == "ridge"
    assert settings["data"] == str(tmp_path / "train.parquet")  # relative to the config file


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("modle = 'ridge'\n", r"Unknown option 'modle' in the config file .*Valid options: categorical"),
        ("[fit]\nn_shards = 'many'\n", r"'n_shards' must be an integer; got 'many'"),
        ("[fit]\njson = true\n", r"Unknown option 'fit.json'"),
        ("target = \n", r"Could not parse the config file .* as TOML"),
    ],
)
def test_config_errors(content, message, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(content)
    with pytest.raises(ValueError, match=message):
        resolve_options("fit", {"data": "d", "target": "t", "output": "o", "config": str(config)})


def test_yaml_without_pyyaml_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)
    config = tmp_path / "c.yml"
    config.write_text("target: y\n")
    with pytest.raises(ImportError, match="needs PyYAML: pip install pyyaml"):
        resolve_options("fit", {"config": str(config)})


def test_param_values_are_parsed_like_json():
    assert parse_value("10") == 10
    assert parse_value("0.5") == 0.5
    assert parse_value("false") is False
    assert parse_value("null") is None
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value('{"0": 2}') == {"0": 2}
    assert parse_value("balanced") == "balanced"


# ---------------------------------------------------------------------------------------------------------
# the building blocks of predict and evaluate, in process: one computation each, results as sklearn's


@pytest.fixture(scope="module")
def blocks():
    import dask.array as da

    from daskml_lab.ensemble import ShardEnsembleClassifier
    from daskml_lab.linear_model import Ridge

    rng = np.random.default_rng(1)
    X = rng.normal(size=(900, 3))
    labels = np.array(["cat", "dog", "emu"])[np.digitize(X[:, 0] + X[:, 1], [-0.5, 0.5])]
    target = X @ np.array([1.0, 2.0, -1.0]) + rng.normal(size=900)
    Xd = da.from_array(X, chunks=(250, 3))  # uneven blocks: 250, 250, 250, 150
    from sklearn.naive_bayes import GaussianNB

    with dask.config.set(scheduler="sync"):
        classifier = ShardEnsembleClassifier(GaussianNB(), random_state=0).fit(Xd, labels)
        regressor = Ridge(alpha=3.0).fit(Xd, target)
    return X, Xd, labels, target, classifier, regressor


def test_classification_metrics_match_sklearn_in_one_computation(blocks):
    import dask.array as da

    from daskml_lab.cli._evaluate import classification_metrics
    from daskml_lab.testing import raise_if_computes

    X, Xd, labels, _, classifier, _ = blocks
    with raise_if_computes(max_computes=1):
        metrics = classification_metrics(classifier, Xd, da.from_array(labels, chunks=250))
    assert metrics == pytest.approx(_classification_metrics(classifier, X, labels), rel=1e-12)


def test_regression_metrics_match_sklearn_in_one_computation(blocks):
    import dask.array as da

    from daskml_lab.cli._evaluate import regression_metrics
    from daskml_lab.testing import raise_if_computes

    X, Xd, _, target, _, regressor = blocks
    with raise_if_computes(max_computes=1):
        metrics = regression_metrics(regressor, Xd, da.from_array(target, chunks=250))
    prediction = regressor.predict(X)
    assert metrics == pytest.approx(
        {
            "r2": r2_score(target, prediction),
            "mae": mean_absolute_error(target, prediction),
            "rmse": root_mean_squared_error(target, prediction),
        },
        rel=1e-12,
    )


@pytest.mark.parametrize("fmt", ["parquet", "zarr", "netcdf"])
def test_predictions_are_written_in_one_computation(fmt, blocks, tmp_path):
    from daskml_lab.cli._predict import _prediction_dataset
    from daskml_lab.data.formats import get_format
    from daskml_lab.testing import raise_if_computes

    X, Xd, _, _, classifier, _ = blocks
    with raise_if_computes(max_computes=0):
        dataset = _prediction_dataset(classifier, Xd, None, proba=True)
    with raise_if_computes(max_computes=1):
        get_format(fmt).writer(dataset, str(tmp_path / "out"), tabular=True, label_width=3)
    if fmt == "parquet":
        written = pd.read_parquet(tmp_path / "out")
        labels, proba = written["prediction"].to_numpy(), written[["proba_cat", "proba_dog", "proba_emu"]]
    else:
        written = xr.open_zarr(tmp_path / "out") if fmt == "zarr" else xr.open_dataset(tmp_path / "out")
        labels, proba = written["prediction"].values, written["probability"].values
    np.testing.assert_array_equal(labels, classifier.predict(X))
    np.testing.assert_array_equal(np.asarray(proba), classifier.predict_proba(X))


def test_failed_write_leaves_no_partial_output(tmp_path):
    from daskml_lab.cli._data import atomic_output

    output = tmp_path / "out.zarr"
    output.mkdir()
    (output / "old").write_text("previous result")

    def fail(temporary: str) -> None:
        Path(temporary).mkdir()
        (Path(temporary) / "part.0").write_text("half")
        msg = "worker died"
        raise OSError(msg)

    with pytest.raises(OSError, match="worker died"):
        atomic_output(output, fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]
    assert (output / "old").read_text() == "previous result"

    atomic_output(output, lambda temporary: Path(temporary).mkdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]
    assert not (output / "old").exists()


# ---------------------------------------------------------------------------------------------------------
# model files: the checksum covers the metadata predict reads; signed models; outputs that are inputs


def _cli_model(files, folder, **save_options):
    """A model file as ``fit`` writes it: a Ridge on a, b, c and how the table was read, in the metadata."""
    path = folder / "m.daskml"
    metadata = {
        "data": {
            "path": str(files["table"]),
            "format": "parquet",
            "target": "price",
            "features": ["a", "b", "c"],
            "categories": None,
            "read_options": {},
        }
    }
    return save(load_free_model(), path, metadata=metadata, **save_options)


def _edit_metadata(path, edit):
    """Edit daskml_lab.json in place, keeping the file's checksum member (a hand edit)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    info = json.loads(members["daskml_lab.json"])
    edit(info["metadata"]["data"])
    members["daskml_lab.json"] = json.dumps(info, indent=2).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


@pytest.mark.parametrize(
    "edit",
    [
        lambda data: data.update(features=["b", "a", "c"]),
        lambda data: data.update(read_options={"skiprows": list(range(1, 501))}),
    ],
    ids=["feature-order", "read-options"],
)
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_edited_metadata_of_a_model_is_refused(command, edit, files, tmp_path, capsys):
    model_path = _cli_model(files, tmp_path)
    _edit_metadata(model_path, edit)
    args = [command, str(model_path), str(files["table"])]
    args += ["-o", str(tmp_path / "p.parquet")] if command == "predict" else ["-t", "price"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "does not match the checksum recorded when it was saved: its metadata (daskml_lab.json" in err
    assert not (tmp_path / "p.parquet").exists()


def test_signed_model_needs_its_key_file(files, tmp_path, capsys, monkeypatch):
    key = tmp_path / "model.key"
    key.write_text("a-team-secret-of-more-than-16-bytes\n")
    model_path = _cli_model(files, tmp_path, key=b"a-team-secret-of-more-than-16-bytes")
    args = ["evaluate", str(model_path), str(files["table"]), "-t", "price", "--json"]
    monkeypatch.delenv("DASKML_LAB_KEY_FILE", raising=False)
    assert main(args) == 2
    assert "is signed with a key (HMAC-SHA256); pass the same key to check it" in capsys.readouterr().err
    other = tmp_path / "other.key"
    other.write_text("another-secret-of-more-than-16-bytes")
    assert main([*args, "--key-file", str(other)]) == 2
    assert "does not match the key given" in capsys.readouterr().err
    (tmp_path / "short.key").write_text("short")
    assert main([*args, "--key-file", str(tmp_path / "short.key")]) == 2
    assert "holds 5 bytes; a signing key needs at least 16" in capsys.readouterr().err
    # an unsigned model is refused when a key is expected (its signature may have been stripped)
    unsigned = tmp_path / "unsigned"
    unsigned.mkdir()
    monkeypatch.setenv("DASKML_LAB_KEY_FILE", str(key))
    assert main(["evaluate", str(_cli_model(files, unsigned)), str(files["table"]), "-t", "price"]) == 2
    assert "is not signed, but a key was given" in capsys.readouterr().err


@pytest.mark.cluster
def test_fit_signs_and_predict_checks_end_to_end(files, external_scheduler, tmp_path, capsys):
    """The issue's reproduction: a CLI model whose feature order was edited used to predict silently."""
    key = tmp_path / "model.key"
    key.write_text("a-team-secret-of-more-than-16-bytes\n")
    model_path, predictions = tmp_path / "m.daskml", tmp_path / "p.parquet"
    common = ["--scheduler", external_scheduler]
    fit = ["fit", str(files["table"]), "-t", "label", "--features", "a,b,c", "-o", str(model_path), *common]
    assert "saved to" in _ok(_run(*fit, "--key-file", str(key)))
    predict = ["predict", str(model_path), str(files["table"]), "-o", str(predictions), *common]
    assert "is signed with a key" in _main_error_line(capsys, *predict)
    _ok(_run(*predict, "--key-file", str(key)))
    table = pd.read_parquet(files["table"])
    expected = load(model_path, key=key.read_text().strip()).predict(table[["a", "b", "c"]].to_numpy())
    np.testing.assert_array_equal(pd.read_parquet(predictions)["prediction"].to_numpy(), expected)
    _edit_metadata(model_path, lambda data: data.update(features=["b", "a", "c"]))
    shutil.rmtree(predictions)
    refused = _main_error_line(capsys, *predict, "--key-file", str(key))
    assert "does not match the key given: its metadata (daskml_lab.json: feature order" in refused
    assert not predictions.exists()


def _spellings(folder: Path, target: Path) -> dict[str, str]:
    """Other ways to name ``target``: relative with a detour, a symlink, a hard link."""
    (folder / "sub").mkdir(exist_ok=True)
    link = folder / "link.parquet"
    link.symlink_to(target)
    hard = folder / "hard.parquet"
    os.link(target, hard)
    return {
        "same": str(target),
        "relative": os.path.relpath(folder / "sub" / ".." / target.name),
        "symlink": str(link),
        "hard-link": str(hard),
    }


@pytest.mark.parametrize("spelling", ["same", "relative", "symlink", "hard-link"])
@pytest.mark.parametrize("overwrite", [False, True], ids=["", "overwrite"])
def test_output_that_is_the_input_is_refused(spelling, overwrite, files, tmp_path, capsys, monkeypatch):
    data = tmp_path / "table.parquet"
    data.write_bytes(files["table"].read_bytes())
    model_path = _cli_model(files, tmp_path)
    monkeypatch.chdir(tmp_path)
    output = _spellings(tmp_path, data)[spelling]
    before = data.read_bytes(), model_path.read_bytes()
    flag = ["--overwrite"] if overwrite else []
    assert main(["predict", str(model_path), str(data), "-o", output, *flag]) == 2
    assert "is the data ('" in capsys.readouterr().err
    assert main(["fit", str(data), "-t", "price", "-o", output, *flag]) == 2
    assert "is the training data ('" in capsys.readouterr().err
    assert (data.read_bytes(), model_path.read_bytes()) == before
    # the model file is an input of predict too
    assert main(["predict", str(model_path), str(data), "-o", "m.daskml", "--format", "parquet", *flag]) == 2
    assert "writing it would destroy the model file, even with --overwrite" in capsys.readouterr().err
    assert (data.read_bytes(), model_path.read_bytes()) == before


def test_output_folder_holding_the_input_is_refused(files, tmp_path, capsys):
    folder = tmp_path / "inputs.zarr"
    folder.mkdir()
    data = folder / "table.parquet"
    data.write_bytes(files["table"].read_bytes())
    model_path = _cli_model(files, tmp_path)
    args = ["predict", str(model_path), str(data), "--overwrite", "-o"]
    assert main([*args, str(folder)]) == 2
    assert "is a folder holding the data" in capsys.readouterr().err
    assert data.is_file()
    assert main(["predict", str(model_path), str(files["zarr"]), "-o", str(files["zarr"] / "p.zarr")]) == 2
    assert "is inside the data" in capsys.readouterr().err
