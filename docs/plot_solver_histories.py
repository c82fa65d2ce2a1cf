"""Draw docs/_static/solver_histories.png: the training history of every solver on one problem.

Run from the repository root with ``python docs/plot_solver_histories.py`` (needs the ``plot`` extra). It fits
L2 logistic regression with each solver on the MAGIC gamma telescope data when ``../shared/data`` is present,
otherwise on synthetic data, and plots the objective gap to the best objective reached, per iteration and per
second, from each model's ``history_``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

import daskml_lab
from daskml_lab.exceptions import ConvergenceWarning
from daskml_lab.linear_model import LogisticRegression

HERE = Path(__file__).resolve().parent
MAGIC = HERE.parents[1] / "shared" / "data" / "magic_gamma_telescope" / "magic.tsv.gz"
SOLVERS = {
    "lbfgs": {},
    "gd": {},
    "sgd": {},
    "async-sgd": {},
    "admm": {},
}


def load() -> tuple[np.ndarray, np.ndarray, str]:
    """Scaled features and labels, and the dataset's name."""
    if MAGIC.exists():
        frame = pd.read_csv(MAGIC, sep="\t")
        X = frame.drop(columns="target").to_numpy(dtype=float)
        return StandardScaler().fit_transform(X), frame["target"].to_numpy(), "MAGIC gamma telescope (19,020 x 10)"
    X, y = daskml_lab.data.make_classification(20_000, 10, n_informative=6, random_state=0, chunks=5_000)
    X, y = np.asarray(X.compute()), np.asarray(y.compute())
    return StandardScaler().fit_transform(X), y, "synthetic (20,000 x 10)"


def main() -> None:
    """Fit, plot and save the figure."""
    X, y, name = load()
    histories = {}
    with daskml_lab.connect(n_workers=2, threads_per_worker=1, dashboard_address=":0"):
        Xd = daskml_lab.data.check_array(X, chunks=len(X) // 4)[0]
        for solver, options in SOLVERS.items():
            model = LogisticRegression(C=1.0, solver=solver, tol=1e-8, max_iter=60, random_state=0, **options)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(Xd, y)
            histories[solver] = model.history_
    best = min(h["objective"].min() for h in histories.values())
    figure, (by_iteration, by_time) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for solver, history in histories.items():
        gap = np.maximum(history["objective"].to_numpy() / best - 1, 1e-12)
        by_iteration.semilogy(history["iteration"], gap, marker=".", label=solver)
        by_time.semilogy(history["time_s"], gap, marker=".")  # time_s is time since the fit started
    by_iteration.set(xlabel="iteration (round for sgd / async-sgd / admm)", ylabel="relative objective gap")
    by_time.set(xlabel="wall time (s)", ylabel="relative objective gap")
    by_iteration.legend()
    figure.suptitle(f"L2 logistic regression on {name}, 4 row blocks, 2 workers")
    out = HERE / "_static" / "solver_histories.png"
    figure.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
