"""Sums of float64 vectors whose result does not depend on how the terms are grouped or ordered.

The engines sum the loss and gradient of every row block, first on each worker and then across workers. With
ordinary floating-point addition the result depends on which blocks each worker holds (the scheduler decides
that, and it varies between runs) and on the order of the partial sums; L-BFGS amplifies such last-bit
differences, so two fits stopped at ``max_iter`` could differ in their leading digits.

Here each term is split, component by component, into ``N_BINS`` integer "digits" at fixed absolute positions
(multiples of ``2 ** BIN_BITS``, starting from the term's own magnitude): :func:`deposit`. Sums keep, per
component, the digits of the ``N_BINS`` highest positions reached by any term and add them as integers, which
floating point does exactly (each digit is below ``2 ** 32`` and fewer than ``2 ** 20`` terms are summed, so
every sum stays below ``2 ** 53``): :func:`merge`. A digit below the window is dropped whether the term meets
the others early or late, so the digits of a sum are those of its terms, whatever the grouping; :func:`total`
turns them into float64, always the same way. The result is a deterministic function of the multiset of terms
and is accurate to about ``n_terms * 2 ** -64`` of the largest term in each component (better than summing in
float64); terms below ``2 ** -928`` (about 4e-280) in magnitude count as zero. Non-finite terms give the
float64 sum of the non-finite terms (``inf``, ``-inf`` or ``nan``).

A packed sum is a float64 array of shape ``(1 + N_BINS, n)``: row 0 the position of the highest digit, then
the digits from the highest down. It is what workers send back: ``1 + N_BINS`` times a plain vector.

Examples
--------
>>> terms = [np.array([1e16, 1.0]), np.array([1.0, 1e-16]), np.array([-1e16, 3.0])]
>>> total(merge([deposit(t) for t in terms]))
array([1., 4.])
>>> left = merge([merge([deposit(terms[0]), deposit(terms[1])]), deposit(terms[2])])
>>> right = merge([deposit(terms[2]), merge([deposit(terms[1]), deposit(terms[0])])])
>>> bool(np.array_equal(total(left), total(right)))
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["BIN_BITS", "N_BINS", "deposit", "exact_total", "merge", "total"]

#: Width of a digit, in bits.
BIN_BITS = 32
#: Digits kept per component.
N_BINS = 3
#: Lowest position of a highest digit: the lowest digit's scale, 2 ** -992, stays a normal float.
_MIN_TOP = -(1022 // BIN_BITS) + N_BINS - 1
#: Terms smaller than this in magnitude (about 4e-280) count as zero.
_SMALLEST = 2.0 ** (BIN_BITS * _MIN_TOP)
#: Position recorded for a non-finite term: above any finite term, so it wins every merge.
_NONFINITE_TOP = 1.0e6


def deposit(values: Any) -> np.ndarray:
    """The packed sum of one term (a float64 vector, flattened).

    Parameters
    ----------
    values : array-like of float
        The term.

    Returns
    -------
    ndarray of float64 of shape (1 + N_BINS, n)
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(x)
    r = np.where(finite & (np.abs(x) >= _SMALLEST), x, 0.0)
    _, exponent = np.frexp(r)  # 2 ** (exponent - 1) <= |r| < 2 ** exponent
    top = np.where(r == 0.0, _MIN_TOP, np.maximum((exponent.astype(np.int64) - 1) // BIN_BITS, _MIN_TOP))
    packed = np.zeros((1 + N_BINS, x.size))
    packed[0] = top
    for k in range(N_BINS):
        scale = np.ldexp(1.0, (BIN_BITS * (top - k)).astype(np.int32))
        digit = np.floor(r / scale)  # the first may be negative; the others are in [0, 2 ** BIN_BITS)
        r = r - digit * scale
        packed[1 + k] = digit
    if not finite.all():
        packed[0, ~finite] = _NONFINITE_TOP
        packed[1, ~finite] = x[~finite]
        packed[2:, ~finite] = 0.0
    return packed


def merge(sums: Sequence[np.ndarray]) -> np.ndarray:
    """The packed sum of packed sums (exact integer additions: the grouping does not matter).

    Parameters
    ----------
    sums : sequence of ndarray of shape (1 + N_BINS, n)
        At least one packed sum.

    Returns
    -------
    ndarray of float64 of shape (1 + N_BINS, n)
    """
    stacked = np.stack([np.asarray(s, dtype=np.float64) for s in sums])  # (n_sums, 1 + N_BINS, n)
    tops = stacked[:, 0, :]
    top = tops.max(axis=0)
    shift = np.minimum(top - tops, N_BINS).astype(np.int64)  # >= N_BINS: every digit falls below the window
    merged = np.zeros(stacked.shape[1:])
    merged[0] = top
    for k in range(N_BINS):
        source = k - shift  # the digit of each sum at the absolute position of the merged digit k
        digits = np.take_along_axis(stacked[:, 1:, :], np.maximum(source, 0)[:, None, :], axis=1)[:, 0, :]
        with np.errstate(invalid="ignore"):  # inf + -inf is nan, as in a float64 sum
            merged[1 + k] = np.where(source >= 0, digits, 0.0).sum(axis=0)
    return merged


def total(packed: np.ndarray) -> np.ndarray:
    """The float64 value of a packed sum (the same digits always give the same value).

    Parameters
    ----------
    packed : ndarray of shape (1 + N_BINS, n)

    Returns
    -------
    ndarray of float64 of shape (n,)
    """
    packed = np.asarray(packed, dtype=np.float64)
    top = packed[0]
    nonfinite = top == _NONFINITE_TOP
    position = np.where(nonfinite, 0, top).astype(np.int64)
    value = np.zeros(packed.shape[1])
    for k in reversed(range(N_BINS)):  # smallest digits first
        value = value + packed[1 + k] * np.ldexp(1.0, (BIN_BITS * (position - k)).astype(np.int32))
    return np.where(nonfinite, packed[1], value)


def exact_total(terms: Iterable[Any]) -> np.ndarray:
    """``total(merge([deposit(t) for t in terms]))``: the grouping-independent sum of float64 vectors."""
    return total(merge([deposit(t) for t in terms]))
