"""Solver options: the base of every solver's frozen options dataclass, and the checks they validate with.

Each solver module declares its tuning constants once, as a frozen dataclass deriving from
:class:`SolverOptions`, validated in ``__post_init__`` with the helpers below. The messages name the solver,
the option and the value, as ``"gd: step_size must be a finite number > 0, got 0"``. The scaffold puts the
options' fields into the checkpoint fingerprint (:meth:`SolverOptions.fingerprint`), so an option that changes
the solution is never left out of it.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "SolverOptions",
    "check_in_range",
    "check_int",
    "check_non_negative",
    "check_positive",
    "option_error",
]


def option_error(solver: str, text: str) -> ValueError:
    """``ValueError("<solver>: <text>")``, the form of every option error."""
    return ValueError(f"{solver}: {text}")


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and bool(np.isfinite(value))


def check_positive(solver: str, name: str, value: Any, *, allow_none: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number > 0 (or None when ``allow_none``).

    Examples
    --------
    >>> check_positive("gd", "step_size", 0)
    Traceback (most recent call last):
    ...
    ValueError: gd: step_size must be a finite number > 0, got 0.
    """
    if value is None and allow_none:
        return
    if not _is_real(value) or value <= 0:
        raise option_error(solver, f"{name} must be a finite number > 0, got {value!r}.")


def check_non_negative(solver: str, name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number >= 0."""
    if not _is_real(value) or value < 0:
        raise option_error(solver, f"{name} must be a finite number >= 0, got {value!r}.")


def check_int(solver: str, name: str, value: Any, *, minimum: int = 1, allow_none: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is an int >= ``minimum`` (or None when ``allow_none``).

    Examples
    --------
    >>> check_int("sgd", "local_steps", 0, allow_none=True)
    Traceback (most recent call last):
    ...
    ValueError: sgd: local_steps must be an int >= 1 or None, got 0.
    """
    if value is None and allow_none:
        return
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        alternative = " or None" if allow_none else ""
        raise option_error(solver, f"{name} must be an int >= {minimum}{alternative}, got {value!r}.")


def check_in_range(solver: str, name: str, value: Any, low: float, high: float) -> None:
    """Raise ``ValueError`` unless ``low < value < high`` (call after a type check)."""
    if not low < value < high:
        raise option_error(solver, f"{name} must be in ({low:g}, {high:g}), got {value!r}.")


@dataclasses.dataclass(frozen=True)
class SolverOptions:
    """Base of the solvers' options: a frozen dataclass of tuning constants, validated when created.

    Subclasses set the class variable ``solver`` (the registry name used in error messages), declare their
    fields with defaults equal to the solver function's, and check them in ``__post_init__``.

    Examples
    --------
    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class ToyOptions(SolverOptions):
    ...     solver = "toy"
    ...     step_size: float = 1.0
    ...
    ...     def __post_init__(self) -> None:
    ...         check_positive(self.solver, "step_size", self.step_size)
    >>> ToyOptions(step_size=0.5).fingerprint()
    {'step_size': 0.5}
    >>> ToyOptions(step_size=-1)
    Traceback (most recent call last):
    ...
    ValueError: toy: step_size must be a finite number > 0, got -1.
    """

    solver: ClassVar[str] = "solver"

    def fingerprint(self) -> dict[str, Any]:
        """The options as a dict (field name to value), for the checkpoint fingerprint.

        Fields declared with ``metadata={"fingerprint": False}`` (those that cannot change the solution, such
        as a polling interval) are left out.
        """
        return {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.metadata.get("fingerprint", True)
        }

    def check_problem(self, problem: Any) -> None:
        """Refuse option values that do not suit ``problem`` (before it starts); none by default."""
