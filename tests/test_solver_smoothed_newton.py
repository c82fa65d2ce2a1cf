"""The ``smoothed-newton`` solver of the hinge loss: objective against liblinear, its certificate, its engines.

The hinge objective compared everywhere is ``F(w, b) = 1/2 ||w||^2 + C sum_i max(0, 1 - y_i (x_i . w + b))``.
liblinear (scikit-learn's ``LinearSVC``) fits its intercept as the weight of a constant feature and so also
penalises ``b^2 / 2``; ours does not. The two objectives are made equal either with ``fit_intercept=False`` on
both sides, or by appending the constant column ourselves (then ``fit_intercept=False`` on ours minimises
liblinear's objective with ``intercept_scaling=1`` exactly).
"""

from __future__ import annotations

import re
import warnings

import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import svm
from sklearn.datasets import load_svmlight_file, make_classification

from daskml_lab import solvers
from daskml_lab.linear_model import LinearSVC

from .conftest import shared_file


def hinge_objective(X, y, coef, intercept, C, *, penalise_intercept=False):
    """``F`` above (plus ``b^2 / 2`` when ``penalise_intercept``), for labels in {-1, 1}."""
    coef = np.ravel(coef)
    intercept = float(np.ravel(intercept)[0]) if np.size(intercept) else 0.0
    margins = y * (X @ coef + intercept)
    value = 0.5 * coef @ coef + C * np.maximum(0.0, 1.0 - margins).sum()
    return value + (0.5 * intercept**2 if penalise_intercept else 0.0)


def liblinear_hinge(X, y, C, *, fit_intercept):
    """scikit-learn's dual coordinate descent to a tight tolerance (its own objective)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tight tol may end at max_iter on purpose
        return svm.LinearSVC(
            loss="hinge",
            C=C,
            dual=True,
            fit_intercept=fit_intercept,
            tol=1e-8,
            max_iter=200_000,
            random_state=0,
        ).fit(X, y)


@pytest.fixture(scope="module")
def a9a(shared_data):
    path = shared_file(shared_data, "a9a_libsvm", "a9a.gz")
    X, y = load_svmlight_file(str(path), n_features=123)
    X = sp.csr_matrix(X)
    X.indices, X.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int32)  # liblinear wants int32
    return X, y


def test_a9a_objective_matches_liblinear_with_its_intercept(a9a):
    """Same objective as liblinear (penalised intercept): the ones column appended, within 1e-4 relative."""
    X, y = a9a
    theirs = liblinear_hinge(X, y, 1.0, fit_intercept=True)
    expected = hinge_objective(X, y, theirs.coef_, theirs.intercept_, 1.0, penalise_intercept=True)
    X_ones = sp.hstack([X, np.ones((X.shape[0], 1))], format="csr")
    ours = LinearSVC(loss="hinge", C=1.0, fit_intercept=False).fit(X_ones, y)
    assert ours.history_["smoothing"].notna().all()  # solver="auto" chose smoothed-newton
    reached = hinge_objective(X_ones, y, ours.coef_, 0.0, 1.0)
    assert reached <= expected * (1 + 1e-4)
    assert reached >= expected * (1 - 1e-4)  # liblinear at tol=1e-8 is itself close to the optimum


def test_a9a_unpenalised_intercept_is_at_least_as_good_as_liblinear(a9a):
    """With our (unpenalised) intercept, evaluated on our objective: at most 1e-4 above liblinear's point."""
    X, y = a9a
    theirs = liblinear_hinge(X, y, 1.0, fit_intercept=True)
    ours = LinearSVC(loss="hinge", C=1.0).fit(X, y)
    ours_value = hinge_objective(X, y, ours.coef_, ours.intercept_, 1.0)
    theirs_value = hinge_objective(X, y, theirs.coef_, theirs.intercept_, 1.0)
    assert ours_value <= theirs_value * (1 + 1e-4)
    # the certificate: the reported relative duality gap bounds the distance to the optimum
    last = ours.history_.iloc[-1]
    assert last["grad_norm"] <= 1e-4
    # the solver minimises F / (C * n_samples): its dual bounds stay below both points' objectives
    lowest = min(ours_value, theirs_value) / X.shape[0]
    assert ours.history_["dual_bound"].max() <= lowest * (1 + 1e-9)


@pytest.fixture(scope="module")
def binary():
    X, y = make_classification(n_samples=3000, n_features=12, n_informative=6, flip_y=0.1, random_state=3)
    return X, 2 * y - 1


def test_duality_gap_is_a_lower_bound_and_tol_is_met(binary):
    X, y = binary
    theirs = liblinear_hinge(X, y, 0.3, fit_intercept=False)
    best = hinge_objective(X, y, theirs.coef_, 0.0, 0.3)
    for tol in (1e-3, 1e-6):
        ours = LinearSVC(loss="hinge", C=0.3, fit_intercept=False, tol=tol).fit(X, y)
        history = ours.history_
        # the solver's objective is F / (C * n): the dual bounds never exceed the optimum
        scale = 1.0 / (0.3 * len(y))
        assert (history["dual_bound"] <= best * scale * (1 + 1e-9)).all()
        reached = hinge_objective(X, y, ours.coef_, 0.0, 0.3)
        assert reached <= best * (1 + tol)
        assert history["grad_norm"].iloc[-1] <= tol


def test_conjugate_gradient_path_gives_the_dense_result(binary):
    """Above max_dense_params the Newton system is solved by conjugate gradients: same optimum."""
    X, y = binary
    dense = LinearSVC(loss="hinge", C=0.3, tol=1e-7, solver="smoothed-newton").fit(X, y)
    cg = LinearSVC(
        loss="hinge", C=0.3, tol=1e-7, solver="smoothed-newton", solver_options={"max_dense_params": 1}
    ).fit(X, y)
    value = hinge_objective(X, y, dense.coef_, dense.intercept_, 0.3)
    assert hinge_objective(X, y, cg.coef_, cg.intercept_, 0.3) == pytest.approx(value, rel=1e-6)


def test_on_a_multi_process_cluster(client, binary):
    """Blocks on two worker processes: the same certified optimum as liblinear (fit_intercept=False)."""
    X, y = binary
    Xd, yd = da.from_array(X, chunks=(500, -1)), da.from_array(y, chunks=500)
    ours = LinearSVC(loss="hinge", C=0.3, fit_intercept=False, tol=1e-7).fit(Xd, yd)
    theirs = liblinear_hinge(X, y, 0.3, fit_intercept=False)
    best = hinge_objective(X, y, theirs.coef_, 0.0, 0.3)
    assert hinge_objective(X, y, ours.coef_, 0.0, 0.3) <= best * (1 + 1e-7)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-2, atol=1e-3)


def test_registry_and_refusals(binary):
    assert "smoothed-newton" in solvers.supported_solvers("hinge")
    assert "smoothed-newton" not in solvers.supported_solvers("squared_hinge")
    assert solvers.SOLVERS["smoothed-newton"].losses == ("hinge",)
    X, y = binary
    with pytest.raises(
        ValueError, match=re.escape("solver='smoothed-newton' does not support loss='squared_hinge'")
    ):
        LinearSVC(solver="smoothed-newton").fit(X, y)
    problem = solvers.BlockedProblem(
        da.from_array(X, chunks=1000), da.from_array((y > 0).astype(int), chunks=1000), loss="logistic"
    )
    with pytest.raises(
        ValueError, match=re.escape("smoothed-newton: this solver minimises the 'hinge' loss only")
    ):
        solvers.get_solver("smoothed-newton")(problem)
    with pytest.raises(ValueError, match=re.escape("smoothed-newton: shrink must be in (0, 1), got 2")):
        LinearSVC(loss="hinge", solver="smoothed-newton", solver_options={"shrink": 2}).fit(X, y)
