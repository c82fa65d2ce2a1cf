"""The Tweedie family of generalised linear models: per-row losses, derivatives, deviances and target ranges.

A Tweedie GLM with power ``p`` and link ``g`` predicts ``mu = g^{-1}(z)`` from the linear score
``z = x @ w + b``. Its loss is scikit-learn's *half* unit deviance (``HalfTweedieLoss`` and
``HalfTweedieLossIdentity`` of ``sklearn._loss``), up to terms that depend on ``y`` only::

    half_deviance(y, mu) = c(y) - y * g1(mu) + g2(mu)

    p = 0 (normal):   c = y^2 / 2,            g1 = mu,                g2 = mu^2 / 2
    p = 1 (Poisson):  c = y log y - y,        g1 = log mu,            g2 = mu
    p = 2 (gamma):    c = -log y - 1,         g1 = -1 / mu,           g2 = log mu
    other p:          c = y^(2-p) / ((1-p)(2-p)), g1 = mu^(1-p) / (1-p), g2 = mu^(2-p) / (2-p)

The fitted loss leaves out ``c(y)`` (it does not move the minimiser), as scikit-learn does for the log link.
Written this way, the deviance of a constant prediction needs only ``sum w``, ``sum w y`` and ``sum w c(y)``:
that is how ``score`` (D^2) computes the null deviance in the same single pass as the model's deviance.

The functions here are pure and work on numpy arrays; the fused kernels of
:mod:`daskml_lab.solvers._objectives` weight and sum what they return. Overflow (a huge ``exp`` while a line
search probes a long step) yields ``inf``, which the solvers' line searches reject; numpy's warnings about it
are silenced.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import numpy as np

__all__ = [
    "GLM_LOSSES",
    "TweedieFamily",
    "family_of",
    "glm_curvature",
    "glm_loss_grad",
]

#: The losses of :data:`~daskml_lab.solvers.LOSSES` that are Tweedie GLMs.
GLM_LOSSES = ("poisson", "gamma", "tweedie")
_LINKS = ("log", "identity")


@dataclasses.dataclass(frozen=True)
class TweedieFamily:
    """A Tweedie distribution with a link: the target range, the link and the unit deviance of a GLM.

    Parameters
    ----------
    power : float
        Tweedie power: 0 normal, 1 Poisson, (1, 2) compound Poisson-gamma, 2 gamma, 3 inverse Gaussian.
    link : {"log", "identity"}
        Link function from the mean to the linear score.

    Examples
    --------
    >>> family = TweedieFamily(power=1.0, link="log")
    >>> family.loss, family.loss_options
    ('poisson', None)
    >>> family.target_range
    'y >= 0'
    >>> TweedieFamily(power=1.5, link="log").loss_options
    {'power': 1.5, 'link': 'log'}
    """

    power: float
    link: str = "log"

    def __post_init__(self) -> None:
        if not isinstance(self.power, numbers.Real) or isinstance(self.power, bool):
            msg = f"power must be a real number, got {self.power!r}."
            raise TypeError(msg)
        if not np.isfinite(self.power):
            msg = f"power must be finite, got {self.power!r}."
            raise ValueError(msg)
        if self.link not in _LINKS:
            msg = f"link must be one of {list(_LINKS)}, got {self.link!r}."
            raise ValueError(msg)
        object.__setattr__(self, "power", float(self.power))

    # -- how the solvers name it ----------------------------------------------------------------------
    @property
    def loss(self) -> str:
        """The loss of :data:`~daskml_lab.solvers.LOSSES` for this family."""
        if self.link == "log" and self.power == 1.0:
            return "poisson"
        if self.link == "log" and self.power == 2.0:
            return "gamma"
        return "tweedie"

    @property
    def loss_options(self) -> dict[str, Any] | None:
        """The ``loss_options`` of :class:`~daskml_lab.solvers.BlockedProblem` for this family."""
        if self.loss != "tweedie":
            return None
        return {"power": self.power, "link": self.link}

    # -- target range ---------------------------------------------------------------------------------
    @property
    def target_range(self) -> str:
        """The values ``y`` may take, as text (``"y >= 0"``, ``"y > 0"`` or ``"any real y"``)."""
        if self.power <= 0:
            return "any real y"
        return "y >= 0" if self.power < 2 else "y > 0"

    def in_range(self, y: np.ndarray) -> np.ndarray:
        """Boolean mask of the entries of ``y`` inside :attr:`target_range`."""
        y = np.asarray(y)
        if self.power <= 0:
            return np.ones(y.shape, dtype=bool)
        return y >= 0 if self.power < 2 else y > 0

    def check_target(self, y: np.ndarray, where: str = "") -> None:
        """Raise ``ValueError`` naming the bad values when some ``y`` are outside :attr:`target_range`."""
        bad = ~self.in_range(y)
        if np.any(bad):
            values = np.unique(np.asarray(y)[bad])[:5].tolist()
            raise ValueError(self.range_message(values, where))

    def range_message(self, values: Any, where: str = "") -> str:
        """The error for target values ``values`` outside the range (used wherever the check runs)."""
        return (
            f"The {self.describe()} needs {self.target_range}, but y has values such as {values}{where}. "
            f"Use a family whose range covers the target (e.g. PoissonRegressor for counts >= 0, "
            "GammaRegressor or TweedieRegressor(power=p >= 2) only for y > 0), or transform y."
        )

    def describe(self) -> str:
        """``"Poisson deviance (power=1, log link)"`` and the like."""
        names = {0.0: "normal", 1.0: "Poisson", 2.0: "gamma", 3.0: "inverse Gaussian"}
        name = names.get(self.power, "Tweedie")
        return f"{name} deviance (power={self.power:g}, {self.link} link)"

    # -- link -----------------------------------------------------------------------------------------
    def link_function(self, mu: Any) -> Any:
        """The linear score of the mean ``mu``: ``log(mu)`` or ``mu``."""
        return np.log(mu) if self.link == "log" else mu

    def inverse_link(self, z: np.ndarray) -> np.ndarray:
        """The mean of the linear score ``z``: ``exp(z)`` or ``z``."""
        if self.link == "identity":
            return z
        with np.errstate(over="ignore"):
            return np.exp(z)

    # -- deviance (for D^2) ---------------------------------------------------------------------------
    def deviance_constant(self, y: np.ndarray) -> np.ndarray:
        """``c(y)``: the terms of the half unit deviance that depend on ``y`` only (float64)."""
        y = np.asarray(y, dtype=np.float64)
        p = self.power
        with np.errstate(divide="ignore", invalid="ignore"):
            if p == 0:
                return 0.5 * y * y
            if p == 1:
                return np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0) - y
            if p == 2:
                return -np.log(y) - 1.0
            return np.power(np.maximum(y, 0.0), 2 - p) / ((1 - p) * (2 - p))

    def mean_terms(self, mu: Any) -> tuple[Any, Any]:
        """``(g1(mu), g2(mu))`` of the half unit deviance ``c(y) - y g1(mu) + g2(mu)``."""
        p = self.power
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if p == 0:
                return mu, 0.5 * mu * mu
            if p == 1:
                return np.log(mu), mu
            if p == 2:
                return -1.0 / mu, np.log(mu)
            return np.power(mu, 1 - p) / (1 - p), np.power(mu, 2 - p) / (2 - p)

    def half_deviance(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """Half unit deviance of each row (float64; 0 where ``mu == y``)."""
        y = np.asarray(y, dtype=np.float64)
        mu = np.asarray(mu, dtype=np.float64)
        g1, g2 = self.mean_terms(mu)
        with np.errstate(invalid="ignore"):
            return self.deviance_constant(y) - y * g1 + g2


def family_of(loss: str, loss_options: dict | None = None) -> TweedieFamily:
    """The :class:`TweedieFamily` of a GLM loss of :data:`GLM_LOSSES`.

    Parameters
    ----------
    loss : {"poisson", "gamma", "tweedie"}
        Loss name.
    loss_options : dict or None, default=None
        For ``"tweedie"``: ``{"power": float, "link": "log" or "identity"}`` (power 0 and the log link when
        absent); other keys are refused.

    Returns
    -------
    TweedieFamily

    Examples
    --------
    >>> family_of("gamma")
    TweedieFamily(power=2.0, link='log')
    >>> family_of("tweedie", {"power": 3})
    TweedieFamily(power=3.0, link='log')
    """
    options = dict(loss_options or {})
    if loss not in GLM_LOSSES:
        msg = f"{loss!r} is not a GLM loss; the GLM losses are {list(GLM_LOSSES)}."
        raise ValueError(msg)
    if loss != "tweedie":
        if options:
            msg = f"The {loss!r} loss takes no loss_options, got {sorted(options)}; use loss='tweedie'."
            raise ValueError(msg)
        return TweedieFamily(1.0 if loss == "poisson" else 2.0, "log")
    unknown = sorted(set(options) - {"power", "link"})
    if unknown:
        msg = f"The 'tweedie' loss takes loss_options 'power' and 'link' only, got {unknown}."
        raise ValueError(msg)
    return TweedieFamily(options.get("power", 0.0), options.get("link", "log"))


# ---------------------------------------------------------------------------------------------------------
# per-row kernels: unweighted loss and derivatives with respect to the linear score z


def glm_loss_grad(z: np.ndarray, y: np.ndarray, family: TweedieFamily) -> tuple[np.ndarray, np.ndarray]:
    """Per-row loss (half deviance without ``c(y)``) and its derivative in ``z``, in ``z``'s dtype.

    Parameters
    ----------
    z : ndarray of shape (n_rows,)
        Linear scores (owned scratch: may be overwritten).
    y : ndarray of shape (n_rows,)
        Targets in the family's range.
    family : TweedieFamily

    Returns
    -------
    loss, grad : ndarray of shape (n_rows,)

    Examples
    --------
    >>> import numpy as np
    >>> loss, grad = glm_loss_grad(np.zeros(2), np.array([0.0, 2.0]), TweedieFamily(1.0))
    >>> loss.tolist(), grad.tolist()
    ([1.0, 1.0], [1.0, -1.0])
    """
    p = family.power
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if family.link == "log":
            if p == 0:
                e = np.exp(z)
                return e * (0.5 * e - y), e * (e - y)
            if p == 1:
                e = np.exp(z)
                return e - y * z, e - y
            if p == 2:
                e = np.exp(-z)
                return z + y * e, 1 - y * e
            e1, e2 = np.exp((1 - p) * z), np.exp((2 - p) * z)
            return e2 / (2 - p) - y * e1 / (1 - p), e2 - y * e1
        # identity link: the mean is z itself, which must stay in the distribution's domain
        if p == 0:
            residual = z - y
            return 0.5 * residual * residual, residual
        outside = z <= 0
        if p == 1:
            loss = z - np.where(y > 0, y * np.log(np.where(outside, 1, z)), 0)
            grad = 1 - y / z
        elif p == 2:
            loss = np.log(np.where(outside, 1, z)) + y / z
            grad = (z - y) / (z * z)
        else:
            t = np.power(np.where(outside, 1, z), 1 - p)
            loss = z * t / (2 - p) - y * t / (1 - p)
            grad = np.power(np.where(outside, 1, z), -p) * (z - y)
        if np.any(outside):
            # No mean <= 0 for these powers. NaN (scikit-learn's value there, the log of a negative mean)
            # makes every line search step back; scipy's L-BFGS-B would stop at an infinite value instead.
            loss = np.where(outside, np.nan, loss)
            grad = np.where(outside, 0, grad)
        return loss.astype(z.dtype, copy=False), grad.astype(z.dtype, copy=False)


def glm_curvature(z: np.ndarray, y: np.ndarray, family: TweedieFamily) -> np.ndarray:
    """Per-row second derivative of the loss in ``z``, clipped at 0 (a positive semi-definite curvature).

    Where the loss is not convex in ``z`` (log link with power < 1 or > 2 far from the data, identity link
    with power > 1) the clipped value is a Gauss-Newton-like approximation; Newton's line search still
    guarantees descent, and near the optimum of a good fit the exact curvature is positive.

    Examples
    --------
    >>> import numpy as np
    >>> glm_curvature(np.zeros(2), np.array([0.0, 2.0]), TweedieFamily(2.0)).tolist()
    [0.0, 2.0]
    """
    p = family.power
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if family.link == "log":
            if p == 0:
                e = np.exp(z)
                h = e * (2 * e - y)
            elif p == 1:
                h = np.exp(z)
            elif p == 2:
                h = y * np.exp(-z)
            else:
                h = (2 - p) * np.exp((2 - p) * z) - (1 - p) * y * np.exp((1 - p) * z)
        elif p == 0:
            h = np.ones_like(z)
        else:
            safe = np.where(z > 0, z, 1)
            h = np.power(safe, -p) * ((1 - p) + p * y / safe)
            h = np.where(z > 0, h, 0)
        h = np.where(np.isfinite(h), h, 0)
        return np.maximum(h, 0).astype(z.dtype, copy=False)
