"""The grouping-independent sums of the solver engines: the same bits for any grouping and order, accurate."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from daskml_lab.solvers._exact_sum import deposit, exact_total, merge, total


def _exact(terms):
    return np.array([float(sum(Fraction(float(v)) for v in column)) for column in terms.T])


@pytest.mark.parametrize("seed", range(20))
def test_any_grouping_and_order_gives_the_same_bits(seed):
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(2, 60)), int(rng.integers(1, 40))
    magnitudes = 10.0 ** rng.uniform(-20, 20, size=(n, 1)) if seed % 2 else 10.0 ** rng.uniform(-3, 3, (n, d))
    terms = rng.normal(size=(n, d)) * magnitudes
    terms[rng.integers(n), rng.integers(d)] = 0.0
    expected = exact_total(terms)
    order = rng.permutation(n)
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(4, n - 1), replace=False))
    grouped = total(merge([merge([deposit(terms[i]) for i in group]) for group in np.split(order, cuts)]))
    np.testing.assert_array_equal(grouped, expected)
    # accurate: the dropped digits (below 2 ** -64 of the largest term) and two roundings to float64
    exact, largest = _exact(terms), np.abs(terms).max(axis=0)
    assert np.all(np.abs(expected - exact) <= n * 2.0**-60 * largest + 2 * np.spacing(np.abs(exact)))


def test_cancellation_and_special_values():
    np.testing.assert_array_equal(
        exact_total([np.array([1e16, 1.0]), np.array([1.0, 1e-16]), np.array([-1e16, 3.0])]), [1.0, 4.0]
    )
    np.testing.assert_array_equal(exact_total([np.array([0.0, -0.0])]), [0.0, 0.0])
    result = exact_total([np.array([np.inf, 1.0, np.inf]), np.array([1.0, np.nan, -np.inf])])
    assert result[0] == np.inf
    assert np.isnan(result[1])
    assert np.isnan(result[2])
    np.testing.assert_array_equal(exact_total([np.array([1e-300, -1e-270]), np.array([0.0, 1e-270])]), [0, 0])
