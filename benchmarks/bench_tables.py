"""Benchmark (command-line part): raw tables through ``daskml-lab fit FILE --target COL`` with no other option,
against the few-lines pandas + scikit-learn baseline on the same split.

For each raw file of ``../shared/data`` (adult, diamonds, nycflights13, kddcup99), the lines of the file are
shuffled (seed 0) and cut 80/20 into a training and a held-out file of the same raw form (same header line or
none, same separator, gzip). Then, timed:

- ``daskml-lab fit train --target COL --output model`` (no other option: the command infers the task, picks
  the model and the preprocessing), and ``daskml-lab evaluate model test --json``; both start their own
  2-worker local cluster, whose start-up is included;
- the baseline: ``pandas.read_csv`` of the same files, rows with a missing target dropped, text columns as
  pandas ``category`` (the training categories for the held-out rows; columns with more than 255 categories as
  their codes, which HistGradientBoosting requires), and ``HistGradientBoosting{Classifier,Regressor}(
  categorical_features="from_dtype", random_state=0)``.

It prints the model and split the command line chose, its score (accuracy, or R² for regression), the
baseline's, the difference in points (x100) and the times. Run from the repository root::

    .venv/bin/python benchmarks/bench_tables.py                    # all four, a few minutes on 2 cores
    .venv/bin/python benchmarks/bench_tables.py --datasets adult diamonds

Timings on a shared 2-core machine are noisy; the scores are deterministic (seeded).
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@dataclass(frozen=True)
class Table:
    """A raw file, its target and how pandas reads it (for the baseline only)."""

    name: str
    path: str
    target: str
    header: bool
    pandas_options: dict[str, Any] = field(default_factory=dict)


TABLES = {
    "adult": Table(
        "adult",
        "adult/adult.data.gz",
        "14",
        header=False,
        pandas_options={"header": None, "skipinitialspace": True},
    ),
    "diamonds": Table("diamonds", "diamonds/diamonds.csv.gz", "price", header=True),
    "nycflights13": Table("nycflights13", "nycflights13_flights/flights.csv.gz", "arr_delay", header=True),
    "kddcup99": Table(
        "kddcup99", "kddcup99_10pct/kddcup.tsv.gz", "target", header=True, pandas_options={"sep": "\t"}
    ),
}


def split_raw(table: Table, folder: Path, test_share: float = 0.2, seed: int = 0) -> tuple[Path, Path]:
    """Shuffle the lines of the raw file and write training and held-out files of the same form."""
    source = DATA / table.path
    with gzip.open(source, "rt", encoding="utf-8") as stream:
        lines = [line for line in stream.read().splitlines() if line.strip()]
    header, rows = (lines[:1], lines[1:]) if table.header else ([], lines)
    order = np.random.default_rng(seed).permutation(len(rows))
    n_test = round(test_share * len(rows))
    suffix = "".join(Path(table.path).suffixes)
    paths = []
    for part, index in (("train", order[n_test:]), ("test", order[:n_test])):
        path = folder / f"{table.name}-{part}{suffix}"
        with gzip.open(path, "wt", encoding="utf-8") as out:
            out.write("\n".join([*header, *(rows[i] for i in index)]) + "\n")
        paths.append(path)
    return paths[0], paths[1]


def run_cli(*args: str) -> tuple[str, float]:
    """Run ``daskml-lab ARGS``; return its output and the wall time."""
    script = Path(sys.executable).with_name("daskml-lab")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "daskml_lab.cli._main"]
    start = time.perf_counter()
    result = subprocess.run([*command, *args], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        msg = f"daskml-lab {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        raise RuntimeError(msg)
    return result.stdout, elapsed


def baseline(table: Table, train: Path, test: Path) -> tuple[float, str, float]:
    """The pandas + scikit-learn HistGradientBoosting score on the same split: score, task, seconds."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    start = time.perf_counter()
    target: Any = int(table.target) if not table.header else table.target
    frames = [pd.read_csv(p, **table.pandas_options).dropna(subset=[target]) for p in (train, test)]
    X_train, X_test = (f.drop(columns=target) for f in frames)
    y_train, y_test = (f[target] for f in frames)
    for column in X_train.columns:
        if X_train[column].dtype.kind in "biuf":
            continue
        categories = pd.Categorical(X_train[column]).categories
        X_train[column] = pd.Categorical(X_train[column], categories=categories)
        known = X_test[column].where(X_test[column].isin(categories))  # unseen values: missing
        X_test[column] = pd.Categorical(known, categories=categories)
        if len(categories) > 255:  # HistGradientBoosting takes at most max_bins categories
            X_train[column] = X_train[column].cat.codes
            X_test[column] = X_test[column].cat.codes
    # The task as a user would pick it: text labels or few whole numbers are classes.
    classification = y_train.dtype.kind not in "f" and y_train.nunique() <= 100
    cls = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
    model = cls(categorical_features="from_dtype", random_state=0)
    counts = y_train.value_counts()
    if classification and counts.min() < 2:
        # scikit-learn's stratified validation split for early stopping needs 2 rows per class
        model.set_params(validation_fraction=None)
    model.fit(X_train, y_train)
    score = float(model.score(X_test, y_test))
    return score, "classification" if classification else "regression", time.perf_counter() - start


def _row(out: str, name: str) -> str:
    for line in out.splitlines():
        if line.strip().startswith(name):
            return line.strip()[len(name) :].strip()
    return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(TABLES), choices=list(TABLES))
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-tables-") as tmp:
        folder = Path(tmp)
        for name in args.datasets:
            table = TABLES[name]
            if not (DATA / table.path).exists():
                print(f"{name}: {DATA / table.path} missing, skipped")
                continue
            train, test = split_raw(table, folder)
            model = folder / f"{name}.daskml"
            fit_out, fit_s = run_cli("fit", str(train), "--target", table.target, "--output", str(model))
            eval_out, eval_s = run_cli("evaluate", str(model), str(test), "--json")
            metrics = json.loads(eval_out)["metrics"]
            task = _row(fit_out, "task").split(" ")[0]
            score = metrics["accuracy"] if task == "classification" else metrics["r2"]
            base, base_task, base_s = baseline(table, train, test)
            results.append(
                {
                    "dataset": name,
                    "model": _row(fit_out, "model"),
                    "task": task,
                    "baseline task": base_task,
                    "split": f"{_row(fit_out, 'data').split(' rows')[0]} train / {json.loads(eval_out)['n_samples']:,}"
                    " held out",
                    "metric": "accuracy" if task == "classification" else "R2",
                    "cli": round(score, 4),
                    "baseline": round(base, 4),
                    "points": round(100 * (score - base), 2),
                    "cli fit s": round(fit_s, 1),
                    "cli evaluate s": round(eval_s, 1),
                    "baseline s": round(base_s, 1),
                }
            )
            print(json.dumps(results[-1]), flush=True)
    frame = pd.DataFrame(results)
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(frame.drop(columns=["model"]).to_string(index=False))
        for row in results:
            print(f"{row['dataset']}: {row['model']}")


if __name__ == "__main__":
    main()
