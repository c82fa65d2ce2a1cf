"""The command line on tables as users have them: task from the target's values, raw CSV files (no header line,
``, `` separators, ``.data.gz``), sorted files, single-block inputs, held-out scores, CSV predictions with
identifiers, ``info MODEL``, one spelling of the format options, and errors in command-line spelling."""

from __future__ import annotations

import gzip
import json
import re

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.metrics import r2_score

from daskml_lab.cli import main
from daskml_lab.cli._data import by_position, csv_options, data_format
from daskml_lab.cli._main import build_parser, cli_spelling
from daskml_lab.cli._tables import build_preprocessing, infer_task, sorted_target_warning, split_rows
from daskml_lab.data import describe_target, from_dataframe
from daskml_lab.data.formats import format_of
from daskml_lab.persistence import describe, load

from .conftest import shared_file

# ---------------------------------------------------------------------------------------------------------
# the target's values decide the task


def _summary(values, chunks=3, max_distinct=100):
    return describe_target(da.from_array(np.asarray(values), chunks=chunks), max_distinct=max_distinct)


def test_describe_target_counts_whole_numbers_and_caps_distinct_values():
    summary = _summary([-1.0, 1.0, 1.0, -1.0, np.nan, 1.0])
    assert summary.counts == {-1.0: 2, 1.0: 3}
    assert summary.whole
    assert summary.numeric
    assert summary.n_missing == 1
    assert summary.n_samples == 6
    many = _summary(np.arange(500), chunks=100, max_distinct=100)
    assert many.counts is None
    assert many.n_distinct is None
    fractions = _summary([0.5, 1.25, 2.0])
    assert not fractions.whole
    text = _summary(np.array(["a", "b", None, "a"], dtype=object))
    assert text.counts == {"a": 2, "b": 1}
    assert not text.numeric
    assert text.n_missing == 1


def test_describe_target_sees_sorted_and_grouped_files_across_blocks():
    rng = np.random.default_rng(0)
    prices = np.sort(rng.integers(300, 20_000, size=2_000))
    assert _summary(prices, chunks=500).looks_sorted()  # sorted in file order (diamonds by price)
    assert not _summary(rng.permutation(prices), chunks=500).looks_sorted()
    grouped = np.repeat(np.array(["normal", "smurf", "neptune"], dtype=object), [600, 1000, 400])
    assert _summary(grouped, chunks=500).looks_sorted()  # classes in long runs (kddcup)
    assert not _summary(rng.permutation(grouped), chunks=500).looks_sorted()
    # the pairs that straddle blocks count: two blocks each sorted, descending overall, is not "ascending"
    summary = _summary(np.r_[np.arange(100, 200), np.arange(0, 100)], chunks=100)
    assert summary.ascending_share == pytest.approx(198 / 199)


@pytest.mark.parametrize(
    ("values", "given", "task", "why"),
    [
        (np.arange(1_000) * 3 + 326, "auto", "regression", "more than --max-classes 100 distinct numbers"),
        (np.array([-1.0, 1.0] * 50), "auto", "classification", "two values"),
        (np.array([0.5, 1.5, 2.25] * 10), "auto", "regression", "numbers with fractions"),
        (np.arange(23).repeat(3), "auto", "classification", "whole numbers with at most --max-classes 100"),
        (np.array(["<=50K", ">50K"] * 5, dtype=object), "auto", "classification", "text labels"),
        (np.arange(7).repeat(2), "regression", "regression", "--task regression"),
    ],
)
def test_task_is_inferred_from_values_and_announced(values, given, task, why):
    inferred, line = infer_task(_summary(values, chunks=40), given=given, target="price", max_classes=100)
    assert inferred == task
    assert why in line
    if given == "auto":
        other = "regression" if task == "classification" else "classification"
        assert line.startswith(f"{task}, inferred from the target 'price'")
        assert line.endswith(f"override with --task {other}")


def test_too_many_classes_are_refused_unless_allowed():
    labels = np.array([f"c{i}" for i in range(150)], dtype=object)
    with pytest.raises(
        ValueError, match=r"more than 100 distinct values: too many classes .* raise --max-classes"
    ):
        infer_task(_summary(labels, chunks=50), given="auto", target="y", max_classes=100)
    whole = np.arange(150)
    with pytest.raises(ValueError, match=r"If it is a quantity, use --task regression"):
        infer_task(_summary(whole, chunks=50), given="classification", target="y", max_classes=100)
    task, _ = infer_task(
        _summary(labels, chunks=50, max_distinct=200), given="auto", target="y", max_classes=200
    )
    assert task == "classification"
    with pytest.raises(ValueError, match=r"--task regression needs numbers, but the target 'y' holds text"):
        infer_task(_summary(labels[:5], chunks=5), given="regression", target="y", max_classes=100)


def test_sorted_target_warns_only_for_contiguous_shards():
    summary = _summary(np.sort(np.random.default_rng(1).normal(size=1_000)), chunks=250)
    assert sorted_target_warning(summary, target="price", sharding="shuffle") is None
    message = sorted_target_warning(summary, target="price", sharding="contiguous")
    assert "look sorted (or grouped) by the target 'price'" in message
    assert "Use --sharding shuffle" in message


# ---------------------------------------------------------------------------------------------------------
# raw files


def test_raw_adult_file_is_read_without_header_and_by_position(shared_data):
    path = shared_file(shared_data, "adult", "adult.data.gz")
    assert format_of(str(path)).name == "csv"  # .data.gz: the UCI convention
    options, notes = csv_options(str(path), {})
    assert options == {"assume_missing": True, "skipinitialspace": True, "header": None}
    assert "columns are numbered 0 to 14" in notes[0]
    assert by_position("14", options["header"]) == 14
    assert by_position("14", 0) == "14"  # a file with a header line names its columns


def test_files_with_a_header_keep_it(shared_data):
    options, notes = csv_options(str(shared_file(shared_data, "diamonds", "diamonds.csv.gz")), {})
    assert options == {"assume_missing": True}
    assert notes == []
    tsv, _ = csv_options(str(shared_file(shared_data, "kddcup99_10pct", "kddcup.tsv.gz")), {})
    assert tsv == {"assume_missing": True, "sep": "\t"}
    given, _ = csv_options(str(shared_file(shared_data, "adult", "adult.data.gz")), {"header": 0, "sep": ","})
    assert given == {"assume_missing": True, "header": 0, "sep": ","}  # --read-option decides


def test_evaluate_takes_the_format_the_model_was_trained_on(shared_data):
    path = str(shared_file(shared_data, "a9a_libsvm", "a9a.t.gz"))
    assert data_format(path, None, trained_on="svmlight") == "svmlight"
    with pytest.raises(
        ValueError, match=r"name it with --input-format \(zarr, netcdf, parquet, csv, svmlight\)"
    ):
        data_format(path, None)


def test_missing_targets_are_dropped_and_unseen_categories_coded():
    import dask.dataframe as dd

    frame = pd.DataFrame(
        {"a": np.arange(8.0), "town": list("xyxyzxyx"), "y": [1.0, np.nan, 3.0, 4.0, np.nan, 6.0, 7.0, 8.0]}
    )
    for table in (frame, dd.from_pandas(frame, npartitions=3)):
        X, y, origin = from_dataframe(
            table, "y", categorical="encode", drop_missing_target=True, return_origin=True
        )
        assert origin.n_dropped == 2
        np.testing.assert_array_equal(y.compute(), [1.0, 3.0, 4.0, 6.0, 7.0, 8.0])
        np.testing.assert_array_equal(X.compute()[:, 0], [0.0, 2.0, 3.0, 5.0, 6.0, 7.0])
    test = pd.DataFrame({"a": [1.0, 2.0], "town": ["y", "w"]})
    X = from_dataframe(test, categorical={"town": ["x", "y"]}, unknown_code=-1)
    np.testing.assert_array_equal(X.compute(), [[1.0, 1.0], [2.0, -1.0]])
    with pytest.raises(ValueError, match=r"Column 'town' has value\(s\) \['w'\]"):
        from_dataframe(test, categorical={"town": ["x", "y"]}).compute()


def test_single_block_inputs_are_cut_into_row_blocks():
    X, y = da.ones((25_000, 3), chunks=(25_000, 3)), da.zeros(25_000, chunks=25_000)
    X2, y2, note = split_rows(X, y, n_workers=2)
    assert X2.chunks[0] == (12_500, 12_500)
    assert y2.chunks == X2.chunks[:1]
    assert "cut into 2 blocks of up to 12,500 rows" in note
    small = da.ones((15_000, 3), chunks=(15_000, 3))
    assert split_rows(small, None, n_workers=4)[0].numblocks[0] == 1  # blocks keep at least 10,000 rows
    many = da.ones((40_000, 3), chunks=(10_000, 3))
    assert split_rows(many, None, n_workers=2)[2] is None


def test_preprocessing_is_described_and_the_model_loads_without_trust(tmp_path):
    from sklearn.ensemble import HistGradientBoostingClassifier

    from daskml_lab.ensemble import ShardEnsembleClassifier
    from daskml_lab.persistence import save

    info = {
        "features": ["carat", "cut", "tailnum"],
        "categories": {"cut": list("abcde"), "tailnum": [f"N{i}" for i in range(300)]},
        "n_dropped": 9,
    }
    ensemble, lines = build_preprocessing(ShardEnsembleClassifier(HistGradientBoostingClassifier()), info)
    assert lines == [
        "dropped 9 rows whose target is missing",
        "2 text column(s) as ordinal codes (split as numbers; unseen values: -1): cut (5), tailnum (300)",
    ]
    # the default model must load without --trust (categorical_features would store a function)
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 5, size=(300, 3)).astype(float), rng.integers(0, 2, 300)
    path = save(
        ensemble.fit(da.from_array(X, chunks=150), da.from_array(y, chunks=150)), tmp_path / "m.daskml"
    )
    np.testing.assert_array_equal(load(path).predict(X), ensemble.predict(X))
    assert build_preprocessing(ensemble, {"features": ["a"]})[1] == [
        "none (numeric columns used as they are)"
    ]


# ---------------------------------------------------------------------------------------------------------
# options and messages


def test_old_format_spellings_still_work_with_a_warning(capsys):
    parser = build_parser()
    args = parser.parse_args(["fit", "d.gz", "-t", "y", "-o", "m", "--data-format", "svmlight"])
    assert args.input_format == "svmlight"
    assert (
        "--data-format is deprecated and will be removed in 0.3; use --input-format"
        in capsys.readouterr().err
    )
    args = parser.parse_args(["predict", "m", "d.csv", "-o", "p", "--format", "csv"])
    assert args.output_format == "csv"
    assert "--format is deprecated and will be removed in 0.3; use --output-format" in capsys.readouterr().err
    args = parser.parse_args(["evaluate", "m", "d.gz", "--input-format", "svmlight"])
    assert args.input_format == "svmlight"
    assert capsys.readouterr().err == ""


def test_library_messages_are_spelled_as_options():
    text = (
        "X must be numeric, but ... Pass categorical='encode' to ordinal-encode them, or leave them out with "
        "features=[...]. Or name its format: read(path, format=...) with one of csv."
    )
    assert cli_spelling(text) == (
        "X must be numeric, but ... Pass --categorical encode to ordinal-encode them, or leave them out with "
        "--features. Or name its format: --input-format with one of csv."
    )


def test_categorical_error_is_spelled_as_an_option(tmp_path, capsys):
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"], "y": [0, 1]}).to_csv(path, index=False)
    code = main(["fit", str(path), "-t", "y", "--categorical", "error", "-o", str(tmp_path / "m.daskml")])
    err = capsys.readouterr().err
    assert code == 2
    assert "Pass --categorical encode to ordinal-encode them" in err
    assert "categorical='encode'" not in err


# ---------------------------------------------------------------------------------------------------------
# end to end, on an external cluster


def _write_gz(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


@pytest.mark.cluster
def test_raw_adult_fit_with_no_option_but_the_target(shared_data, external_scheduler, tmp_path, capsys):
    with gzip.open(shared_file(shared_data, "adult", "adult.data.gz"), "rt") as stream:
        lines = stream.read().splitlines()[:4_000]
    data = tmp_path / "adult.data.gz"
    _write_gz(data, lines)
    model = tmp_path / "adult.daskml"
    args = ["fit", str(data), "--target", "14", "--test-size", "0.25", "--scheduler", external_scheduler]
    assert main([*args, "-o", str(model)]) == 0
    out = capsys.readouterr().out
    assert "Reading: no header line (the first line holds numbers): columns are numbered 0 to 14" in out
    assert "Task: classification, inferred from the target 14: 2 distinct values (<=50K, >50K)" in out
    assert "Model: hist-gradient-boosting (HistGradientBoostingClassifier per shard" in out
    assert (
        "Preprocessing: 8 text column(s) as ordinal codes (split as numbers; unseen values: -1): 1 (" in out
    )
    assert "3,000 rows for training, 1,000 held out (stratified random split, seed 0)" in out
    accuracy = float(out.split("held-out accuracy")[1].split()[0])
    assert 0.8 < accuracy < 0.95  # HistGradientBoosting on adult reaches about 0.87
    fitted = load(model)
    assert fitted.sharding == "shuffle"  # the default of the command line for shard ensembles

    assert main(["info", str(model)]) == 0
    info = capsys.readouterr().out
    assert "task                        classification" in info
    assert f"held-out accuracy           {accuracy:.6g}" in info
    assert '"header": null' in info


@pytest.mark.cluster
@pytest.mark.parametrize(
    ("model", "least_accuracy"), [("hist-gradient-boosting", 0.95), ("logistic-regression", 0.8)]
)
def test_missing_feature_values_reach_the_model(external_scheduler, tmp_path, capsys, model, least_accuracy):
    # Tables have holes: the default trees take NaN as it is, the linear models' pipeline imputes it. The
    # reader used to refuse every NaN before either could see it.
    rng = np.random.default_rng(0)
    n = 3_000
    a = rng.normal(size=n)
    kind = rng.choice(["x", "y"], size=n)
    missing = rng.random(n) < 0.2
    target = np.where(missing, kind == "x", a > 0)
    frame = pd.DataFrame({"a": np.where(missing, np.nan, a), "kind": kind, "label": target.astype(int)})
    data = tmp_path / "holes.csv"
    frame.to_csv(data, index=False)
    common = ["--scheduler", external_scheduler]
    path = tmp_path / "holes.daskml"
    args = [
        "fit",
        str(data),
        "-t",
        "label",
        "--model",
        model,
        "--test-size",
        "0.25",
        *common,
        "-o",
        str(path),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert float(out.split("held-out accuracy")[1].split()[0]) > least_accuracy
    predictions = tmp_path / "p.csv"
    assert main(["predict", str(path), str(data), "-o", str(predictions), *common]) == 0
    written = pd.read_csv(predictions)["prediction"].to_numpy()
    assert len(written) == n
    assert (written == frame["label"].to_numpy()).mean() > least_accuracy


@pytest.mark.cluster
def test_codes_turning_to_text_below_the_sample_are_typed_once_for_predict(
    external_scheduler, tmp_path, capsys
):
    # dask types the columns from the first 256 kB: 'code' is numeric there and text in the last rows
    n = 20_000
    rng = np.random.default_rng(0)
    code = [str(i % 50) for i in range(n - 10)] + ["V57"] * 10
    frame = pd.DataFrame({"code": code, "x": rng.normal(size=n), "label": rng.integers(0, 2, size=n)})
    data = tmp_path / "codes.csv"
    frame.to_csv(data, index=False)
    common = ["--scheduler", external_scheduler]
    model = tmp_path / "codes.daskml"
    assert main(["fit", str(data), "-t", "label", *common, "-o", str(model)]) == 0
    err = capsys.readouterr().err
    assert "Columns ['code'] of" in err
    assert "reading the file again with dtype={'code': 'str'}" in err
    assert "V57" in _categories(model)["code"]
    predictions = tmp_path / "p.csv"
    assert main(["predict", str(model), str(data), "-o", str(predictions), *common]) == 0
    assert "hold values of other types" not in capsys.readouterr().err  # the recorded types: one pass
    assert len(pd.read_csv(predictions)) == n


@pytest.mark.cluster
def test_adult_text_columns_hashed_into_a_partitioned_model(
    shared_data, external_scheduler, tmp_path, capsys
):
    with gzip.open(shared_file(shared_data, "adult", "adult.data.gz"), "rt") as stream:
        lines = stream.read().splitlines()[:6_000]
    data = tmp_path / "adult.data.gz"
    _write_gz(data, lines)
    model = tmp_path / "adult.daskml"
    args = ["fit", str(data), "--target", "14", "--test-size", "0.25", "--scheduler", external_scheduler]
    hashing = [
        "--hash-features",
        "4096",
        "--cross",
        "3,6",
        "--param",
        "model_partitions=2",
        "--solver",
        "lbfgs",
    ]
    # a gather limit below the model's 4,103 x 8 bytes: the fitted model stays in its shards and is saved
    # from them slice by slice
    small = {"daskml_lab.solvers.store.max_gather_bytes": 2**12}
    with dask.config.set(small):
        assert main([*args, *hashing, "-o", str(model)]) == 0
    out = capsys.readouterr().out
    assert "Model: logistic-regression (LogisticRegression" in out  # the default for hashed (sparse) rows
    assert describe(model)["streamed"][0]["shape"] == [1, 6 + 4096]
    assert (
        "Preprocessing: 8 text column(s) and 1 cross(es) hashed into 4,096 sparse features, 6 numeric column(s) "
        "mean-imputed and standardised (saved inside the model)" in out
    )
    accuracy = float(out.split("held-out accuracy")[1].split()[0])
    assert 0.8 < accuracy < 0.9  # one-hot codes give about 0.85 on these rows
    fitted = load(model)
    assert fitted[-1].model_partitions == 2
    table = pd.read_csv(data, header=None, skipinitialspace=True).iloc[:200].rename(columns=str)
    X = from_dataframe(table.drop(columns=["14"]), categorical=_categories(model))
    rows = fitted[0].transform(X).compute()
    assert sp.issparse(rows)
    assert rows.shape == (200, 6 + 4096)
    # each row: its 6 numeric columns, 8 text tokens and 1 cross (two tokens may share a column: at most 15)
    assert rows[:, 6:].getnnz(axis=1).max() <= 9
    # predict loads the model into parameter shards on the cluster (above the limit) or into this process
    # (below it): the same predictions
    common = ["--scheduler", external_scheduler]
    with dask.config.set(small):
        assert main(["predict", str(model), str(data), "-o", str(tmp_path / "shards.csv"), *common]) == 0
    assert main(["predict", str(model), str(data), "-o", str(tmp_path / "numpy.csv"), *common]) == 0
    from_shards, from_numpy = (pd.read_csv(tmp_path / f"{name}.csv") for name in ("shards", "numpy"))
    assert len(from_shards) == len(lines)
    pd.testing.assert_frame_equal(from_shards, from_numpy)


@pytest.mark.cluster
def test_whole_number_category_codes_hashed_with_hash_columns(external_scheduler, tmp_path, capsys):
    # a category stored as whole-number codes (kddcup99's protocol and service columns are): standardised as a
    # number, a linear model cannot learn "code in {2, 5, 7}"; hashed as categories (--hash-columns) it can,
    # as well as scikit-learn's logistic regression on the same codes one-hot encoded
    rng = np.random.default_rng(0)
    code = rng.integers(0, 10, size=2_000)
    table = pd.DataFrame(
        {"code": code, "noise": rng.normal(size=2_000), "y": np.isin(code, [2, 5, 7]).astype(int)}
    )
    path = tmp_path / "codes.csv"
    table.to_csv(path, index=False)
    args = ["fit", str(path), "-t", "y", "--model", "logistic-regression", "--test-size", "0.25"]
    args += ["--scheduler", external_scheduler]

    def accuracy(*options: str) -> float:
        assert main([*args, *options, "-o", str(tmp_path / "m.daskml"), "--overwrite"]) == 0
        out = capsys.readouterr().out
        return float(out.split("held-out accuracy")[1].split()[0]), out

    as_number, _ = accuracy()
    hashed, out = accuracy("--hash-features", "256", "--hash-columns", "code")
    assert "0 text column(s), 1 of --hash-columns and 0 cross(es) hashed into 256 sparse features" in out
    one_hot = SkLogisticRegression().fit(pd.get_dummies(table["code"].astype(str)), table["y"])
    reference = one_hot.score(pd.get_dummies(table["code"].astype(str)), table["y"])
    assert as_number < 0.8 < reference == 1.0
    assert hashed == reference
    predictions = tmp_path / "p.csv"
    assert (
        main(
            [
                "predict",
                str(tmp_path / "m.daskml"),
                str(path),
                "-o",
                str(predictions),
                "--scheduler",
                external_scheduler,
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(pd.read_csv(predictions).iloc[:, -1].to_numpy(), table["y"].to_numpy())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--hash-features", "1024", "--model", "random-forest"], r"--model random-forest is not one"),
        (["--hash-features", "0"], r"--hash-features must be a number of features in \[1, 2\*\*31 - 1\]"),
        (["--cross", "b,c"], r"--cross needs --hash-features N"),
        (["--hash-features", "64", "--cross", "b,a"], r"--cross 'b,a' must name two hashed columns as A,B"),
        (["--hash-columns", "a"], r"--hash-columns needs --hash-features N"),
        (
            ["--hash-features", "64", "--hash-columns", "zz"],
            r"--hash-columns names \['zz'\], which are not feature",
        ),
    ],
)
def test_hashing_options_are_checked(tmp_path, capsys, options, message):
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": [1.0, 2.0] * 20, "b": ["x", "y"] * 20, "c": ["u", "v"] * 20, "y": [0, 1] * 20}).to_csv(
        path, index=False
    )
    code = main(["fit", str(path), "-t", "y", *options, "-o", str(tmp_path / "m.daskml")])
    assert code == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.cluster
def test_sorted_diamonds_regression_csv_predictions_with_ids(
    shared_data, external_scheduler, tmp_path, capsys
):
    table = pd.read_csv(shared_file(shared_data, "diamonds", "diamonds.csv.gz")).iloc[::4]
    table.insert(0, "id", [f"d{i}" for i in range(len(table))])
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    table.iloc[:12_000].to_csv(train, index=False)  # sorted by price, as the file is
    table.iloc[12_000:].sample(frac=1.0, random_state=0).to_csv(test, index=False)
    features = "carat,cut,color,clarity,depth,table,x,y,z"
    model = tmp_path / "d.daskml"
    common = ["--scheduler", external_scheduler]
    args = ["fit", str(train), "-t", "price", "--features", features, "--sharding", "contiguous", *common]
    assert main([*args, "-o", str(model)]) == 0
    captured = capsys.readouterr()
    assert "Task: regression, inferred from the target 'price': more than 100 distinct values" in captured.out
    assert "override with --task classification" in captured.out
    assert "warning: UserWarning: the rows of the file look sorted (or grouped) by the target 'price'" in (
        captured.err
    )

    predictions = tmp_path / "p.csv"
    assert main(["predict", str(model), str(test), "-o", str(predictions), "--id-column", "id", *common]) == 0
    capsys.readouterr()
    written = pd.read_csv(predictions)
    assert list(written.columns) == ["id", "row", "prediction"]
    test_table = pd.read_csv(test)
    assert written["id"].tolist() == test_table["id"].tolist()
    fitted = load(model)
    X_test = from_dataframe(test_table[features.split(",")], categorical=_categories(model))
    expected = fitted.predict(X_test).compute()
    np.testing.assert_allclose(written["prediction"].to_numpy(), expected, rtol=1e-10)

    assert main(["evaluate", str(model), str(test), "--json", *common]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["r2"] == pytest.approx(r2_score(test_table["price"], expected), rel=1e-9)


def _categories(model_path):
    return describe(model_path)["metadata"]["data"]["categories"]


@pytest.mark.cluster
def test_svmlight_needs_no_target_and_defaults_to_a_linear_model(
    shared_data, external_scheduler, tmp_path, capsys
):
    data = shared_file(shared_data, "a9a_libsvm", "a9a.t.gz")
    model = tmp_path / "a9a.daskml"
    args = ["fit", str(data), "--input-format", "svmlight", "--scheduler", external_scheduler]
    assert main([*args, "-o", str(model)]) == 0
    out = capsys.readouterr().out
    assert (
        "Task: classification, inferred from the target 'labels': 2 distinct values (-1, 1) (two values)"
        in out
    )
    assert "Model: logistic-regression (LogisticRegression)" in out
    # evaluate reads the file as the model was trained on it: no --input-format needed again
    assert main(["evaluate", str(model), str(data), "--json", "--scheduler", external_scheduler]) == 0
    accuracy = json.loads(capsys.readouterr().out)["metrics"]["accuracy"]
    assert 0.8 < accuracy < 0.9  # a linear model on a9a reaches about 0.85


def test_old_config_key_is_read_under_its_new_name(tmp_path):
    from daskml_lab.cli._config import resolve_options
    from daskml_lab.exceptions import DaskMLLabDeprecationWarning

    config = tmp_path / "fit.toml"
    config.write_text('data_format = "svmlight"\n[fit]\ntarget = "y"\n')
    with pytest.warns(
        DaskMLLabDeprecationWarning, match=r"'data_format' .* is deprecated .*; use 'input_format'"
    ):
        settings = resolve_options("fit", {"data": "d.gz", "output": "m.daskml", "config": str(config)})
    assert settings["input_format"] == "svmlight"
    assert settings["test_size"] is None
    assert settings["max_classes"] == 100


def test_rare_classes_let_hist_gradient_boosting_stop_on_its_training_loss():
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    from daskml_lab.cli._tables import adapt_to_classes
    from daskml_lab.ensemble import ShardEnsembleClassifier

    rare = _summary(np.r_[np.zeros(100, int), np.ones(100, int), [2, 2, 2]], chunks=50)
    ensemble = ShardEnsembleClassifier(HistGradientBoostingClassifier())
    note = adapt_to_classes(ensemble, rare)
    assert ensemble.estimator.validation_fraction is None
    assert note.startswith("class 2 has 3 row(s): HistGradientBoostingClassifier stops early on its training")
    common = _summary(np.r_[np.zeros(100, int), np.ones(100, int)], chunks=50)
    assert adapt_to_classes(ShardEnsembleClassifier(HistGradientBoostingClassifier()), common) is None
    assert adapt_to_classes(ShardEnsembleClassifier(RandomForestClassifier()), rare) is None


def test_default_model_follows_the_data():
    from daskml_lab.cli._fit import _default_model

    settings = {"fusion": None, "fusion_params": {}, "solver": None, "solver_options": {}}
    dense = da.ones((10, 2), chunks=5)
    common = _summary(np.repeat([0, 1, 2], 30), chunks=30)
    rare = _summary(np.r_[np.repeat([0, 1], 30), [2, 2]], chunks=31)  # kddcup99 has classes of 2 rows
    assert _default_model(settings, {}, dense, "classification", common) == "hist-gradient-boosting"
    assert (
        _default_model(settings, {}, dense, "regression", _summary(np.arange(200.0)))
        == "hist-gradient-boosting"
    )
    assert _default_model(settings, {}, dense, "classification", rare) == "random-forest"
    assert _default_model(settings, {"n_shards": 4}, dense, "classification", common) == "random-forest"
    assert _default_model({**settings, "solver": "lbfgs"}, {}, dense, "regression", common) == "ridge"
    import scipy.sparse

    sparse = dense.map_blocks(scipy.sparse.csr_matrix)
    assert _default_model(settings, {}, sparse, "classification", common) == "logistic-regression"


def test_linear_models_get_one_hot_codes_and_scaled_columns_inside_the_saved_model(tmp_path):
    from sklearn.compose import ColumnTransformer as SkColumnTransformer
    from sklearn.linear_model import LogisticRegression as SkLogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder as SkOneHotEncoder
    from sklearn.preprocessing import StandardScaler as SkStandardScaler

    from daskml_lab.linear_model import LogisticRegression
    from daskml_lab.persistence import save

    info = {"features": ["carat", "cut", "depth"], "categories": {"cut": list("abcde")}, "n_features": 3}
    model, lines = build_preprocessing(LogisticRegression(C=1.0, tol=1e-10, max_iter=1000), info)
    assert lines == [
        "1 text column(s) as ordinal codes (one-hot encoded below; unseen values: -1): cut (5)",
        "2 numeric column(s) mean-imputed and standardised, 1 text column(s) one-hot encoded (unseen values "
        "ignored) (saved inside the model)",
    ]
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(3, 2, 400), rng.integers(0, 5, 400), rng.normal(60, 5, 400)])
    y = (X[:, 0] + (X[:, 1] == 2) + rng.normal(0, 1, 400) > 3.5).astype(int)
    model.fit(da.from_array(X, chunks=100), da.from_array(y, chunks=100))
    reference = make_pipeline(
        SkColumnTransformer(
            [("numeric", SkStandardScaler(), [0, 2]), ("text", SkOneHotEncoder(handle_unknown="ignore"), [1])]
        ),
        SkLogisticRegression(C=1.0, tol=1e-10, max_iter=1000),
    ).fit(X, y)
    np.testing.assert_allclose(model[-1].coef_, reference[-1].coef_, rtol=1e-4, atol=1e-6)
    unseen = X.copy()
    unseen[:5, 1] = -1  # a category unseen in training (the reader's code -1) is ignored, not refused
    path = save(model, tmp_path / "m.daskml")
    np.testing.assert_array_equal(load(path).predict(unseen), model.predict(unseen))
    # sparse rows (svmlight) are used as they are: centring would make them dense
    assert build_preprocessing(LogisticRegression(), {"n_features": 3}, sparse=True)[1] == [
        "none (numeric columns used as they are)"
    ]
