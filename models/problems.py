"""Registry of problems: each knows its energy at the true parameters and its truth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from models.gaussian import gaussian_model, gaussian_target_params, quadratic_energy
from models.unnormalized import Unnormalized

__all__ = ["Problem", "PROBLEMS", "make_problem"]


class Problem(NamedTuple):
    """A problem: the target energy at the true parameters, and its NumPyro model.

    ``target.log_normalizer`` is the exact log Z where known (else ``None``) and
    ``target.sample`` the exact sampler where one exists.
    """

    name: str
    target: Unnormalized
    true_params: Any
    model: Callable[..., None]


def _gaussian(dim: int) -> Problem:
    params = gaussian_target_params(dim)
    return Problem("gaussian", quadratic_energy(params), params, gaussian_model)


PROBLEMS: dict[str, Callable[[int], Problem]] = {"gaussian": _gaussian}


def make_problem(name: str, *, dim: int = 2) -> Problem:
    """Build a registered problem by name; the error lists the valid names."""
    if name not in PROBLEMS:
        raise ValueError(f"problem: unknown name {name!r}; valid: {', '.join(sorted(PROBLEMS))}")
    return PROBLEMS[name](dim)
