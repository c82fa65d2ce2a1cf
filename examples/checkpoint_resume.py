"""Interrupt a fit by killing its process, then resume it from the checkpoint and compare with a fit never interrupted.

Run it on a real classification table, e.g. ``python examples/checkpoint_resume.py
../shared/data/magic_gamma_telescope/magic04.csv --target class``. It uses every third row (``--every 1`` takes
them all): resuming works the same at any size, and the work of the Cascade SVM's top SVC and of its predictions
grows with the square of the rows. The script starts one local cluster (two worker processes on 127.0.0.1, or the
``dask scheduler`` given by ``--scheduler``) that outlives the fits, as a real cluster outlives a client whose
notebook or job dies. Then, for a linear model, a shard ensemble and a Cascade SVM:

1. fits once without a checkpoint (the reference);
2. starts the same fit with ``checkpoint=DIR`` in a child process and kills it (``SIGKILL``) once the
   checkpoint shows progress: a few solver iterations, or a few trained shards (shard SVCs for the cascade);
3. fits again in this process with the same ``checkpoint=DIR``: the fit resumes where the killed one stopped;
4. prints where it resumed and how the resumed model compares with the reference.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.naive_bayes import GaussianNB

import daskml_lab
from daskml_lab.data import read, shard
from daskml_lab.ensemble import CascadeSVC, ShardEnsembleClassifier
from daskml_lab.linear_model import LogisticRegression

#: Checkpoint progress at which the child process is killed.
KILL_AFTER_ITERATIONS = 15
KILL_AFTER_SHARDS = 3
#: The cascade's shard SVCs are quick on a third of the rows: killed early, so that it is mid-fit even when this
#: process is slow to see the checkpoint (a loaded machine).
KILL_AFTER_SVCS = 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="data file (any format daskml_lab.data.read knows)")
    parser.add_argument("--target", default=None, help="target column")
    parser.add_argument("--scheduler", default=None, help="address of a running dask scheduler")
    parser.add_argument("--workdir", default=None, help="where the checkpoints go (default: a temporary dir)")
    parser.add_argument("--n-shards", type=int, default=8, help="shards of the ensemble (default: 8)")
    parser.add_argument("--every", type=int, default=3, help="use every k-th row (default: 3; 1 for all)")
    # internal: the child process that gets killed
    parser.add_argument("--child", choices=("linear", "ensemble", "cascade"), help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def make_model(kind: str, checkpoint: str | None, n_shards: int):
    """The same estimator in the reference, the killed child and the resumed fit."""
    if kind == "linear":
        # gradient descent takes many cheap iterations (about a hundred): easy to interrupt in the middle
        return LogisticRegression(C=1.0, solver="gd", tol=3e-4, max_iter=400, checkpoint=checkpoint)
    if kind == "cascade":
        # one pass up the merge tree (no feedback pass): what the checkpoint holds is the shard SVCs
        return CascadeSVC(C=1.0, n_shards=n_shards, n_feedback=0, random_state=0, checkpoint=checkpoint)
    return ShardEnsembleClassifier(
        GaussianNB(), fusion="soft-voting", n_shards=n_shards, random_state=0, checkpoint=checkpoint
    )


def load(args: argparse.Namespace):
    X, y = read(args.path, args.target)
    X, y = X[:: args.every], y[:: args.every]  # lazy, and the same rows in every process
    # standardised features (lazy): gradient descent converges in about a hundred steps
    mean, std = X.mean(axis=0), X.std(axis=0)
    X = (X - mean) / std
    return X, y


def progress(kind: str, checkpoint: Path) -> int:
    """Solver iterations (linear) or trained shards (ensemble, cascade) recorded in the checkpoint so far."""
    if kind in ("ensemble", "cascade"):
        return len(list(checkpoint.glob("shard-*.json")))
    stage = checkpoint / "solver.json"
    try:
        return int(json.loads(stage.read_text())["iteration"])
    except (OSError, ValueError, KeyError):
        return 0  # not written yet, or being replaced


def run_child(args: argparse.Namespace) -> int:
    with daskml_lab.connect(args.scheduler):
        X, y = load(args)
        make_model(args.child, args.checkpoint, args.n_shards).fit(X, y)
    return 0


def fit_and_kill(args: argparse.Namespace, kind: str, checkpoint: Path, scheduler: str) -> int:
    """Start the checkpointed fit in a child process and kill it once the checkpoint shows progress."""
    command = [sys.executable, __file__, args.path, "--child", kind, "--checkpoint", str(checkpoint)]
    command += ["--scheduler", scheduler, "--n-shards", str(args.n_shards), "--every", str(args.every)]
    if args.target is not None:
        command += ["--target", args.target]
    wanted = {"linear": KILL_AFTER_ITERATIONS, "ensemble": KILL_AFTER_SHARDS, "cascade": KILL_AFTER_SVCS}[
        kind
    ]
    child = subprocess.Popen(command)
    deadline = time.monotonic() + 300
    try:
        while progress(kind, checkpoint) < wanted:
            if child.poll() is not None:
                msg = f"the {kind} fit ended (exit code {child.returncode}) before it could be killed"
                raise SystemExit(msg)
            if time.monotonic() > deadline:
                msg = f"the {kind} fit made no progress in 300 s"
                raise SystemExit(msg)
            time.sleep(0.02)
        child.kill()  # SIGKILL: no clean-up, no chance to finish writing
    finally:
        child.wait(timeout=60)
    return progress(kind, checkpoint)


def show_resume_messages() -> None:
    """Print what the resumed fits say they take from the checkpoint (their INFO messages)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("         log: %(message)s"))
    handler.addFilter(
        lambda record: "resuming" in record.getMessage() or "already trained" in record.getMessage()
    )
    for name in ("daskml_lab.solvers._checkpoint", "daskml_lab.ensemble"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return run_child(args)
    show_resume_messages()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="daskml-checkpoints-"))
    with daskml_lab.connect(args.scheduler) as client:
        X, y = load(args)
        print(
            f"data:    X {X.shape}, one row in {args.every} of {args.path}; cluster {client.scheduler.address}"
        )

        # linear model: iterations
        reference = make_model("linear", None, args.n_shards).fit(X, y)
        checkpoint = workdir / "logistic"
        done = fit_and_kill(args, "linear", checkpoint, client.scheduler.address)
        resumed = make_model("linear", str(checkpoint), args.n_shards).fit(X, y)
        difference = np.max(np.abs(resumed.coef_ - reference.coef_))
        print(
            f"linear:  child killed after iteration {done}; resumed fit ended at iteration {resumed.n_iter_} "
            f"(uninterrupted: {reference.n_iter_})"
        )
        print(f"         largest coefficient difference with the uninterrupted fit: {difference:.2e}")

        # shard ensemble: shards
        reference = make_model("ensemble", None, args.n_shards).fit(X, y)
        checkpoint = workdir / "ensemble"
        done = fit_and_kill(args, "ensemble", checkpoint, client.scheduler.address)
        resumed = make_model("ensemble", str(checkpoint), args.n_shards).fit(X, y)
        X_check = shard(X, n_shards=1)  # every row, one block
        same = bool((resumed.predict(X_check) == reference.predict(X_check)).all().compute())
        print(
            f"shards:  child killed with {done} of {args.n_shards} shard models saved; the resumed fit "
            f"trained the other {args.n_shards - done}"
        )
        print(f"         predictions identical to the uninterrupted fit: {same}")

        # cascade SVM: shard SVCs (their support vectors are saved)
        reference = make_model("cascade", None, args.n_shards).fit(X, y)
        checkpoint = workdir / "cascade"
        done = fit_and_kill(args, "cascade", checkpoint, client.scheduler.address)
        resumed = make_model("cascade", str(checkpoint), args.n_shards).fit(X, y)
        same = bool((resumed.predict(X_check) == reference.predict(X_check)).all().compute())
        print(
            f"cascade: child killed with {done} of {args.n_shards} shard SVCs saved; the resumed fit trained "
            f"the other {args.n_shards - done}, then merged all up to {resumed.support_.size} support vectors"
        )
        print(
            f"         same support vectors as the uninterrupted fit: "
            f"{np.array_equal(resumed.support_, reference.support_)}; same predictions: {same}"
        )
    print(f"checkpoints kept in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
