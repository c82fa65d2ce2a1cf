"""The solver scaffold, the options dataclasses and the registry entries."""

from __future__ import annotations

import dataclasses
import inspect
import re

import dask
import dask.array as da
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from daskml_lab import solvers
from daskml_lab.solvers import (
    LOSSES,
    SOLVERS,
    BlockedProblem,
    SolverCheckpoint,
    get_solver,
    register_solver,
    supported_solvers,
    unregister_solver,
)
from daskml_lab.solvers._common import ScaledObjective
from daskml_lab.solvers._objectives import get_loss
from daskml_lab.solvers._options import SolverOptions, check_positive
from daskml_lab.solvers._scaffold import Outcome, SolverRun, Status, run_solver
from daskml_lab.solvers.admm import ADMMOptions
from daskml_lab.solvers.async_sgd import AsyncSGDOptions
from daskml_lab.solvers.gd import GDOptions
from daskml_lab.solvers.lbfgs import LBFGSOptions
from daskml_lab.solvers.proximal import ProximalOptions
from daskml_lab.solvers.sgd import SGDOptions
from daskml_lab.solvers.smoothed_newton import SmoothedNewtonOptions

OPTIONS = {
    "lbfgs": LBFGSOptions,
    "gd": GDOptions,
    "proximal": ProximalOptions,
    "admm": ADMMOptions,
    "sgd": SGDOptions,
    "async-sgd": AsyncSGDOptions,
    "smoothed-newton": SmoothedNewtonOptions,
}

# ------------------------------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "kwargs", "message"),
    [
        (LBFGSOptions, {"memory": 0}, "lbfgs: memory must be an int >= 1, got 0."),
        (LBFGSOptions, {"max_line_search": 2.5}, "lbfgs: max_line_search must be an int >= 1, got 2.5."),
        (LBFGSOptions, {"ftol": -1.0}, "lbfgs: ftol must be a finite number > 0, got -1.0."),
        (GDOptions, {"c1": 1.5}, "gd: need 0 < shrink < 1, grow >= 1 and 0 < c1 < 1; got shrink=0.5"),
        (GDOptions, {"step_size": float("nan")}, "gd: step_size must be a finite number > 0, got nan."),
        (ProximalOptions, {"grow": 0.5}, "proximal: need 0 < shrink < 1 and grow >= 1; got shrink=0.5"),
        (ProximalOptions, {"restart": "yes"}, "proximal: restart must be True or False, got 'yes'."),
        (ADMMOptions, {"memory": True}, "admm: memory must be an int >= 1, got True."),
        (ADMMOptions, {"local_max_iter": 0}, "admm: local_max_iter must be an int >= 1, got 0."),
        (SGDOptions, {"power_t": -1}, "sgd: power_t must be a finite number >= 0, got -1."),
        (SGDOptions, {"batch_size": "big"}, "sgd: batch_size must be an int >= 1, got 'big'."),
        (SGDOptions, {"n_iter_no_change": 0}, "sgd: n_iter_no_change must be an int >= 1, got 0."),
        (AsyncSGDOptions, {"poll_s": 0}, "async-sgd: poll_s must be a finite number > 0, got 0."),
        (AsyncSGDOptions, {"local_steps": None}, "async-sgd: local_steps must be an int >= 1, got None."),
    ],
)
def test_options_reject_bad_values_with_the_option_and_value(options, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        options(**kwargs)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_options_are_frozen_and_their_defaults_are_the_solver_defaults(name):
    options = OPTIONS[name]()
    assert options.solver == name
    field = dataclasses.fields(options)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(options, field, 1)
    parameters = inspect.signature(SOLVERS[name]).parameters
    for field in dataclasses.fields(options):
        assert parameters[field.name].default == field.default, field.name
    # every tuning keyword of the function is an option, and nothing else is
    common = {"problem", "w0", "tol", "max_iter", "random_state", "callback", "checkpoint"}
    assert set(parameters) - common == {field.name for field in dataclasses.fields(options)}


def test_the_fingerprint_leaves_out_what_cannot_change_the_solution():
    assert "poll_s" not in AsyncSGDOptions().fingerprint()
    assert AsyncSGDOptions().fingerprint()["local_steps"] == 8
    assert set(LBFGSOptions().fingerprint()) == {"memory", "max_line_search", "ftol"}


# ------------------------------------------------------------------------------------------------ registry


def test_registry_entries_carry_the_capabilities_supported_solvers_uses():
    for loss in LOSSES:
        smooth = get_loss(loss).smooth
        for l1 in (0.0, 0.5):
            expected = [
                name
                for name, entry in SOLVERS.items()
                if (smooth or not entry.smooth_only)
                and (l1 == 0 or entry.supports_l1)
                # a solver may be restricted to some losses (smoothed-newton: the hinge only)
                and (entry.only_losses is None or loss in entry.only_losses)
            ]
            assert supported_solvers(loss, l1) == expected
            for name in expected:
                assert loss in SOLVERS[name].losses
    assert {name for name, entry in SOLVERS.items() if entry.stochastic} == {"sgd", "async-sgd"}
    assert [name for name, entry in SOLVERS.items() if entry.supports_l1] == [
        "proximal",
        "admm",
        "sgd",
        "async-sgd",
    ]


def test_registry_entries_look_like_their_functions():
    for name, entry in SOLVERS.items():
        assert get_solver(name) is entry
        assert inspect.signature(entry) == inspect.signature(entry.function)
        assert "checkpoint" in inspect.signature(entry).parameters
        assert entry.__name__ == entry.function.__name__
    assert solvers.lbfgs is not None  # the modules stay importable by name


# ------------------------------------------------------------------------------------------- a toy solver


@dataclasses.dataclass(frozen=True)
class ToyOptions(SolverOptions):
    solver = "toy"
    step_size: float = 2.0

    def __post_init__(self) -> None:
        check_positive(self.solver, "step_size", self.step_size)


def _run_toy(run: SolverRun) -> Outcome:
    """Gradient descent with a fixed step: the smallest algorithm the scaffold can run."""
    options: ToyOptions = run.options  # type: ignore[assignment]
    fun = ScaledObjective(run.problem)
    x = run.initial_params().ravel() if run.saved is None else run.saved.arrays["x"]
    n_iter = run.start_iteration
    while True:
        f, g = fun(x)
        grad_norm = float(np.max(np.abs(g)))
        if grad_norm <= run.tol:
            return Outcome(x, n_iter, Status.CONVERGED, f"gradient {grad_norm:.3g} <= tol")
        if n_iter >= run.max_iter:
            return Outcome(x, n_iter, Status.MAX_ITER, f"reached max_iter={run.max_iter}")
        x = x - options.step_size * g
        n_iter += 1
        if run.record(objective_scaled=f, grad_norm=grad_norm, step_size=options.step_size, n_evals=1, x=x):
            return Outcome(x, n_iter, Status.STOPPED, "stopped by the callback")
        run.save(n_iter, {"x": x})


def toy(
    problem,
    *,
    w0=None,
    tol=1e-4,
    max_iter=100,
    random_state=None,
    callback=None,
    step_size=2.0,
    checkpoint=None,
):
    return run_solver(
        "toy",
        problem,
        ToyOptions(step_size=step_size),
        _run_toy,
        w0=w0,
        tol=tol,
        max_iter=max_iter,
        random_state=random_state,
        callback=callback,
        checkpoint=checkpoint,
        advice="Increase max_iter.",
    )


@pytest.fixture
def registered_toy():
    register_solver("toy", toy, smooth_only=True, supports_l1=False)
    try:
        yield SOLVERS["toy"]
    finally:
        unregister_solver("toy")
    assert "toy" not in SOLVERS


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = (X @ [1.0, -2.0, 0.5] + rng.normal(size=120) > 0).astype(np.int64)
    return da.from_array(X, chunks=40), da.from_array(y, chunks=40)


class _Interrupt(Exception):
    pass


def test_toy_solver_runs_through_the_scaffold(registered_toy):
    assert "toy" in supported_solvers("logistic")
    assert "toy" not in supported_solvers("hinge")
    X, y = _data()
    seen = []
    with dask.config.set(scheduler="sync"), BlockedProblem(X, y, loss="logistic") as problem:
        result = get_solver("toy")(
            problem, tol=1e-5, max_iter=500, callback=lambda r, W: seen.append(W.shape)
        )
    assert result.converged
    assert result.message.startswith("gradient")
    assert [record["iteration"] for record in result.history] == list(range(1, result.n_iter + 1))
    assert seen == [(4, 1)] * result.n_iter
    assert result.W.shape == (4, 1)
    with pytest.raises(ValueError, match="solver='toy' needs a smooth loss"):
        toy(BlockedProblem(X, y, loss="hinge"))
    with pytest.raises(ValueError, match="solver='toy' does not support an l1 penalty"):
        toy(BlockedProblem(X, y, loss="logistic", l1=1.0))
    with pytest.raises(TypeError, match="toy: callback must be callable"):
        toy(BlockedProblem(X, y, loss="logistic"), callback=3)
    with pytest.raises(TypeError, match=r"toy: checkpoint must be a daskml_lab\.solvers\.SolverCheckpoint"):
        toy(BlockedProblem(X, y, loss="logistic"), checkpoint="here")
    with pytest.raises(ValueError, match=re.escape("toy: step_size must be a finite number > 0, got 0.")):
        toy(BlockedProblem(X, y, loss="logistic"), step_size=0)


def test_toy_solver_warns_at_max_iter(registered_toy):
    X, y = _data()
    with (
        dask.config.set(scheduler="sync"),
        BlockedProblem(X, y, loss="logistic") as problem,
        pytest.warns(
            ConvergenceWarning, match=r"toy failed to converge: reached max_iter=3\. Increase max_iter\."
        ),
    ):
        result = toy(problem, max_iter=3)
    assert not result.converged
    assert result.n_iter == 3
    assert len(result.history) == 3


def test_toy_solver_resumes_from_its_checkpoint(registered_toy, tmp_path):
    X, y = _data()
    checkpoint = SolverCheckpoint(tmp_path, every=1, stage="toy")
    counted = []

    def interrupt(record, W):
        counted.append(record["iteration"])
        if record["iteration"] == 4:
            raise _Interrupt

    with dask.config.set(scheduler="sync"):
        with BlockedProblem(X, y, loss="logistic") as problem:
            reference = toy(problem, tol=1e-5, max_iter=500)
        with BlockedProblem(X, y, loss="logistic") as problem, pytest.raises(_Interrupt):
            toy(problem, tol=1e-5, max_iter=500, callback=interrupt, checkpoint=checkpoint)
        counted.clear()
        with BlockedProblem(X, y, loss="logistic") as problem:
            resumed = toy(
                problem,
                tol=1e-5,
                max_iter=500,
                callback=lambda r, W: counted.append(r["iteration"]),
                checkpoint=checkpoint,
            )
        # the run went on from the saved iteration 3, and kept the history of the interrupted one
        assert counted == list(range(4, reference.n_iter + 1))
        assert resumed.n_iter == reference.n_iter
        assert [r["iteration"] for r in resumed.history] == list(range(1, reference.n_iter + 1))
        np.testing.assert_allclose(resumed.W, reference.W, rtol=1e-12)
        counted.clear()
        with BlockedProblem(X, y, loss="logistic") as problem:
            again = toy(
                problem,
                tol=1e-5,
                max_iter=500,
                callback=lambda r, W: counted.append(1),
                checkpoint=checkpoint,
            )
    assert counted == []  # the completed stage returns its result without iterating
    np.testing.assert_array_equal(again.W, resumed.W)
    assert again.converged
    assert again.n_iter == resumed.n_iter


def test_the_completed_checkpoint_warns_again(registered_toy, tmp_path):
    X, y = _data()
    checkpoint = SolverCheckpoint(tmp_path, stage="toy")
    with dask.config.set(scheduler="sync"):
        for _ in range(2):
            with (
                BlockedProblem(X, y, loss="logistic") as problem,
                pytest.warns(ConvergenceWarning, match="toy failed to converge: reached max_iter=2"),
            ):
                result = toy(problem, max_iter=2, checkpoint=checkpoint)
            assert result.n_iter == 2


def test_an_unregistered_solver_is_refused():
    X, y = _data()
    with pytest.raises(ValueError, match=r"The solver 'toy' is not registered"):
        toy(BlockedProblem(X, y, loss="logistic"))
