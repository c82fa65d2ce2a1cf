"""Per-block loss+gradient kernels against numpy formulas and finite differences (dense/CSR, float32/64)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from daskml_lab.solvers import LOSSES
from daskml_lab.solvers._objectives import (
    _aligned_block,
    _loss_grad_block,
    _loss_grad_prepared,
    _prepare_block,
    get_loss,
)
from daskml_lab.solvers._regularizers import l1_optimality, l2_value_grad, prox_l1


def _reference_loss(
    loss: str, X: np.ndarray, y: np.ndarray, sw: np.ndarray | None, W: np.ndarray, fit_intercept: bool
):
    """The data term written directly from the contract's formulas, in float64."""
    X = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    d = X.shape[1]
    Z = X @ W[:d] + (W[d] if fit_intercept else 0.0)
    sw = np.ones(X.shape[0]) if sw is None else np.asarray(sw, dtype=np.float64)
    if loss == "multinomial":
        per_row = logsumexp(Z, axis=1) - Z[np.arange(len(y)), y.astype(int)]
    else:
        z = Z[:, 0]
        s = 2 * y - 1
        per_row = {
            "squared": lambda: 0.5 * (y - z) ** 2,
            "logistic": lambda: np.log1p(np.exp(-s * z)),
            "squared_hinge": lambda: np.maximum(0, 1 - s * z) ** 2,
            "hinge": lambda: np.maximum(0, 1 - s * z),
            "huber": lambda: np.where(
                np.abs(y - z) <= 1.35, 0.5 * (y - z) ** 2, 1.35 * np.abs(y - z) - 0.5 * 1.35**2
            ),
            # scikit-learn's HalfPoissonLoss, HalfGammaLoss and HalfTweedieLoss (power 0, log link)
            "poisson": lambda: np.exp(z) - y * z,
            "gamma": lambda: z + y * np.exp(-z),
            "tweedie": lambda: np.exp(z) * (0.5 * np.exp(z) - y),
        }[loss]()
    return float(sw @ per_row)


def _data(
    loss: str,
    *,
    n: int = 60,
    d: int = 4,
    n_classes: int = 3,
    seed: int = 0,
    sparse: bool = False,
    dtype=np.float64,
    weighted: bool = True,
):
    rng = np.random.default_rng(seed)
    if sparse:
        X = sp.random(n, d, density=0.5, random_state=seed, format="csr", dtype=np.float64)
        X.data = rng.standard_normal(X.nnz)
        X = X.astype(dtype)
    else:
        X = rng.standard_normal((n, d)).astype(dtype)
    info = get_loss(loss)
    if info.target == "binary":
        y = rng.integers(0, 2, n).astype(np.float64)
    elif info.target == "codes":
        y = rng.integers(0, n_classes, n)
    elif loss in ("poisson", "gamma", "tweedie"):
        y = rng.gamma(2.0, 1.0, n)  # positive: in the range of every GLM family
    else:
        y = rng.standard_normal(n) * 2
    k = n_classes if info.multi_output else 1
    W = rng.standard_normal((d + 1, k)) * 0.7
    sw = rng.uniform(0.5, 2.0, n) if weighted else None
    return X, y, sw, W


def _finite_difference(loss, X, y, sw, W, fit_intercept, eps=1e-6):
    grad = np.zeros_like(W)
    for index in np.ndindex(W.shape):
        step = np.zeros_like(W)
        step[index] = eps
        plus = _reference_loss(loss, X, y, sw, W + step, fit_intercept)
        minus = _reference_loss(loss, X, y, sw, W - step, fit_intercept)
        grad[index] = (plus - minus) / (2 * eps)
    return grad


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_kernel_matches_formula_and_finite_differences(loss, sparse, weighted):
    X, y, sw, W = _data(loss, sparse=sparse, weighted=weighted)
    for fit_intercept in (True, False):
        params = W if fit_intercept else W[:-1]
        value, grad = _loss_grad_block(X, y, sw, params, loss=loss, fit_intercept=fit_intercept)
        assert grad.dtype == np.float64
        assert grad.shape == params.shape
        np.testing.assert_allclose(value, _reference_loss(loss, X, y, sw, params, fit_intercept), rtol=1e-12)
        expected = _finite_difference(loss, X, y, sw, params, fit_intercept)
        np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss", ["logistic", "multinomial", "squared", "squared_hinge"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_float32_blocks_stay_float32_and_match_float64(loss, sparse):
    X, y, sw, W = _data(loss, sparse=sparse, dtype=np.float32, n=500)
    block = _prepare_block(X, y, sw, loss=loss, n_outputs=W.shape[1])
    assert block.X.dtype == np.float32
    assert block.weight.dtype == np.float32
    if loss != "multinomial":
        assert block.target.dtype == np.float32
    value32, grad32 = _loss_grad_prepared(block, W, loss=loss, fit_intercept=True)
    X64 = X.astype(np.float64)
    value64, grad64 = _loss_grad_block(
        X64, y, sw, W.astype(np.float32).astype(np.float64), loss=loss, fit_intercept=True
    )
    np.testing.assert_allclose(value32, value64, rtol=1e-5)
    np.testing.assert_allclose(grad32, grad64, rtol=1e-4, atol=1e-3 * np.abs(grad64).max())


@pytest.mark.parametrize("loss", ["logistic", "multinomial", "huber"])
def test_subblock_sweep_equals_one_pass(loss):
    X, y, sw, W = _data(loss, n=1000, d=6)
    block = _prepare_block(X, y, sw, loss=loss, n_outputs=W.shape[1])
    whole = _loss_grad_prepared(block, W, loss=loss, fit_intercept=True, subblock_bytes=10**9)
    # 37 rows per sub-block: many sub-blocks and a ragged last one
    swept = _loss_grad_prepared(block, W, loss=loss, fit_intercept=True, subblock_bytes=37 * 6 * 8)
    np.testing.assert_allclose(swept[0], whole[0], rtol=1e-13)
    np.testing.assert_allclose(swept[1], whole[1], rtol=1e-12, atol=1e-12)


def test_gradient_accumulates_into_out():
    X, y, sw, W = _data("logistic")
    block = _prepare_block(X, y, sw, loss="logistic")
    out = np.ones_like(W)
    _, grad = _loss_grad_prepared(block, W, loss="logistic", fit_intercept=True, out=out)
    assert grad is out
    np.testing.assert_allclose(out - 1, _loss_grad_block(X, y, sw, W, loss="logistic", fit_intercept=True)[1])


def test_logistic_is_stable_for_huge_margins():
    X = np.array([[1.0], [1.0]])
    y = np.array([1.0, 0.0])
    value, grad = _loss_grad_block(X, y, None, np.array([[800.0]]), loss="logistic", fit_intercept=False)
    # row 0: margin +800 -> loss ~0; row 1: margin -800 -> loss ~800, gradient +1
    np.testing.assert_allclose(value, 800.0)
    np.testing.assert_allclose(grad.ravel(), [1.0])


def test_unaligned_block_is_realigned_and_gives_the_same_result():
    X, y, sw, W = _data("logistic", n=50, d=3)
    buffer = np.zeros(X.nbytes + 1, dtype=np.uint8)
    unaligned = np.frombuffer(buffer.data, dtype=np.float64, count=X.size, offset=1).reshape(X.shape)
    unaligned[...] = X
    assert not unaligned.flags.aligned
    aligned = _aligned_block(unaligned)
    assert aligned.flags.aligned
    np.testing.assert_array_equal(aligned, X)
    np.testing.assert_allclose(
        _loss_grad_block(unaligned, y, sw, W, loss="logistic", fit_intercept=True)[1],
        _loss_grad_block(X, y, sw, W, loss="logistic", fit_intercept=True)[1],
    )


def test_empty_block():
    value, grad = _loss_grad_block(
        np.empty((0, 3)), np.empty(0), None, np.ones((4, 1)), loss="logistic", fit_intercept=True
    )
    assert value == 0.0
    np.testing.assert_array_equal(grad, 0.0)


def test_kernel_does_not_modify_inputs():
    X, y, sw, W = _data("multinomial")
    copies = [a.copy() for a in (X, y, sw, W)]
    _loss_grad_block(X, y, sw, W, loss="multinomial", fit_intercept=True)
    for original, copy in zip((X, y, sw, W), copies, strict=True):
        np.testing.assert_array_equal(original, copy)


def test_label_errors():
    X = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"needs y encoded as 0/1, found labels \[2\.0\]"):
        _prepare_block(X, np.array([0.0, 1.0, 2.0]), None, loss="logistic")
    with pytest.raises(
        ValueError, match=r"class codes 0 \.\. 2 \(n_outputs=3\), found \[3\] \(row block 4\)"
    ):
        _prepare_block(X, np.array([0, 1, 3]), None, loss="multinomial", n_outputs=3, block_index=4)
    with pytest.raises(ValueError, match="y has 2 rows but X has 3"):
        _prepare_block(X, np.array([0.0, 1.0]), None, loss="squared")
    with pytest.raises(ValueError, match="sample_weight has 1 rows but X has 3"):
        _prepare_block(X, np.zeros(3), np.ones(1), loss="squared")
    with pytest.raises(ValueError, match=r"loss must be one of \["):
        get_loss("absolute")
    with pytest.raises(TypeError, match="must be float32 or float64, got int64"):
        _prepare_block(np.ones((3, 2), dtype=np.int64), np.zeros(3), None, loss="squared")
    with pytest.raises(ValueError, match=r"W must have 3 rows \(n_features=2 \+ 1 intercept\)"):
        _loss_grad_block(X, np.zeros(3), None, np.zeros((2, 1)), loss="squared", fit_intercept=True)


def test_regularizers():
    W = np.array([[1.0, -2.0], [0.5, 0.0], [3.0, 4.0]])  # last row: intercepts
    value, grad = l2_value_grad(W, 2, 2.0)
    assert value == pytest.approx(1.0 * (1 + 4 + 0.25))
    np.testing.assert_allclose(grad, [[2.0, -4.0], [1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(prox_l1(W, 2, 0.75), [[0.25, -1.25], [0.0, 0.0], [3.0, 4.0]])
    g = np.array([[0.1, 0.2], [0.5, -0.3], [0.2, 0.0]])
    # non-zero w: |g + l1 sign(w)|; zero w: max(|g| - l1, 0); intercept: |g|
    np.testing.assert_allclose(l1_optimality(W, g, 2, 0.4), [[0.5, 0.2], [0.9, 0.0], [0.2, 0.0]])


@pytest.mark.property
@settings(max_examples=15, deadline=None)
@given(
    cuts=st.lists(st.integers(1, 119), min_size=0, max_size=6, unique=True),
    loss=st.sampled_from(["logistic", "multinomial", "squared", "huber"]),
    sparse=st.booleans(),
)
def test_sum_over_any_row_split_equals_the_whole(cuts, loss, sparse):
    X, y, sw, W = _data(loss, n=120, sparse=sparse)
    whole = _loss_grad_block(X, y, sw, W, loss=loss, fit_intercept=True)
    bounds = [0, *sorted(cuts), 120]
    total, grad = 0.0, np.zeros_like(W)
    for start, stop in itertools.pairwise(bounds):
        rows = slice(start, stop)
        part = _loss_grad_block(X[rows], y[rows], sw[rows], W, loss=loss, fit_intercept=True)
        total += part[0]
        grad += part[1]
    np.testing.assert_allclose(total, whole[0], rtol=1e-12)
    np.testing.assert_allclose(grad, whole[1], rtol=1e-10, atol=1e-12)


def test_balance_keeps_blocks_in_place_unless_a_worker_is_overloaded():
    from daskml_lab.solvers._distributed_engine import _balance

    # all ten blocks on worker a: half of them move to b
    placement = _balance(["a"] * 10, [100] * 10, ["a", "b"])
    assert sorted(len(v) for v in placement.values()) == [5, 5]
    assert sorted(placement["a"] + placement["b"]) == list(range(10))
    # already balanced: nothing moves
    holders = ["a", "b"] * 5
    placement = _balance(holders, [100] * 10, ["a", "b"])
    assert placement == {"a": [0, 2, 4, 6, 8], "b": [1, 3, 5, 7, 9]}
    # a block whose holder is unknown goes to the least loaded worker
    placement = _balance(["a", "a", None], [100, 100, 100], ["a", "b"])
    assert placement["b"] == [2]
