"""Registry of problems: each knows its data, its energy at the truth, and its references."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from models.digits import load_digits_data
from models.energy import MLPEnergy, ebm_model
from models.gaussian import gaussian_model, gaussian_target_params, quadratic_energy
from models.irl_problems import GRIDWORLD_THETA, LQR_THETA, IRLSpec, gridworld_spec, irl_model, lqr_spec, pointmass_spec
from models.mixture import mixture_energy
from models.pointmass import POINTMASS_THETA, pointmass_demonstrations
from models.standard_targets import STANDARD_TARGETS
from models.toys import TOYS, toy_bounds, toy_params
from models.unnormalized import Unnormalized

__all__ = ["PROBLEMS", "Problem", "make_problem"]

DataFn = Callable[[jax.Array, int, int], tuple[jax.Array, jax.Array]]


class Problem(NamedTuple):
    """A problem: its data, the reference energy, and its NumPyro model.

    ``target`` is the data density as an :class:`Unnormalized` energy (exact
    ``log_normalizer`` and sampler), or ``None`` when no reference exists (digits).
    ``data(key, n_train, n_test)`` gives training and held-out points (a fixed data set
    ignores the counts). ``bounds`` is the quadrature box of a 2D problem, else ``None``.
    For IRL problems, points are packed trajectories (``irl.layout``) and ``true_params`` is θ*.
    """

    name: str
    target: Unnormalized | None
    true_params: Any
    model: Callable[..., None]
    dim: int = 2
    data: DataFn | None = None
    bounds: tuple[tuple[float, float], tuple[float, float]] | None = None
    irl: IRLSpec | None = None  # trajectory problems: layout, cost family, exact references


def _draws(target: Unnormalized) -> DataFn:
    def data(key, n_train, n_test):
        key_train, key_test = jax.random.split(key)
        return target.sample(key_train, (n_train,)), target.sample(key_test, (n_test,))

    return data


def _gaussian(dim: int) -> Problem:
    params = gaussian_target_params(dim)
    target = quadratic_energy(params)
    return Problem("gaussian", target, params, gaussian_model, dim, _draws(target))


def _toy(name: str, dim: int) -> Problem:
    params = toy_params(name)
    target = mixture_energy(params)
    model = partial(ebm_model, energy=MLPEnergy(jax.random.key(0), 2))
    return Problem(name, target, params, model, 2, _draws(target), toy_bounds(name))


def _standard(name: str, dim: int) -> Problem:
    build, size = STANDARD_TARGETS[name]
    target = build()
    model = partial(ebm_model, energy=MLPEnergy(jax.random.key(0), size))
    return Problem(name, target, target.params, model, size, _draws(target))


def _digits(dim: int) -> Problem:
    def data(key, n_train, n_test):
        digits = load_digits_data(key)
        return digits.train, digits.test

    model = partial(ebm_model, energy=MLPEnergy(jax.random.key(0), 64))
    return Problem("digits", None, None, model, 64, data)


def _gridworld(dim: int) -> Problem:
    spec = gridworld_spec()
    theta = jnp.asarray(GRIDWORLD_THETA, jnp.zeros(()).dtype)
    target = spec.target(theta)
    return Problem("gridworld", target, theta, partial(irl_model, spec=spec), spec.layout.size, _draws(target),
                   irl=spec)


def _lqr(dim: int) -> Problem:
    spec = lqr_spec()
    theta = jnp.asarray(LQR_THETA, jnp.zeros(()).dtype)
    target = spec.target(theta)
    return Problem("lqr", target, theta, partial(irl_model, spec=spec), spec.layout.size, _draws(target), irl=spec)


def _pointmass(dim: int) -> Problem:
    spec = pointmass_spec()
    theta = jnp.asarray(POINTMASS_THETA, jnp.zeros(()).dtype)

    def data(key, n_train, n_test):
        # NUTS draws (no exact sampler exists), split into training and held-out demonstrations;
        # NUTS is the cost here, so at most 500 are held out
        n_test = min(n_test, 500)
        demos = pointmass_demonstrations(key, spec.system, theta, n_train + n_test)
        return demos[:n_train], demos[n_train:]

    return Problem("pointmass", spec.target(theta), theta, partial(irl_model, spec=spec), spec.layout.size, data,
                   irl=spec)


PROBLEMS: dict[str, Callable[[int], Problem]] = {
    "gaussian": _gaussian,
    **{name: partial(_toy, name) for name in TOYS},
    "digits": _digits,
    "gridworld": _gridworld,
    "lqr": _lqr,
    "pointmass": _pointmass,
    **{name: partial(_standard, name) for name in STANDARD_TARGETS},  # gmm40, funnel10, manywell32
}


def make_problem(name: str, *, dim: int = 2) -> Problem:
    """Build a registered problem by name; the error lists the valid names.

    ``dim`` applies to the Gaussian only; the toys are 2D and digits 64-D.
    """
    if name not in PROBLEMS:
        raise ValueError(f"problem: unknown name {name!r}; valid: {', '.join(PROBLEMS)}")
    return PROBLEMS[name](dim)
