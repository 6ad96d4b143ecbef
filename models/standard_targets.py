"""The field's standard sampler targets, with exact log Z: ``gmm40``, ``funnel10``, ``manywell32``.

- ``gmm40``: 40 unit-variance Gaussians in 2-D, equal weights, means uniform in [−40, 40]²
  (the layout of FAB, Midgley et al. 2023, and iDEM; drawn here from ``jax.random.key(0)``).
  The mixture's cost drops the Gaussian constant, so log Z = log 2π; exact draws.
- ``funnel10``: Neal's funnel, v ~ N(0, 3²), x_1..9 | v ~ N(0, e^v). The cost drops every
  constant, :math:`c = v^2/18 + \\tfrac12 e^{-v}\\sum x_i^2 + \\tfrac92 v`, so
  :math:`\\log Z = \\tfrac12\\log(18\\pi) + \\tfrac92\\log 2\\pi` in closed form; exact draws.
- ``manywell32``: 16 independent copies of the double well (FAB's Many-Well), per pair
  :math:`c(x, y) = x^4 - 6x^2 - \\tfrac12 x + \\tfrac12 y^2`. log Z is 16 times the 1-D
  :math:`\\log\\int e^{-x^4 + 6x^2 + x/2}dx` (adaptive quadrature to 1e-13, scipy) plus
  :math:`\\tfrac12\\log 2\\pi`. Draws: x by inverting the CDF tabulated on 200 001 points of
  [−5, 5] (the density there is 1e-60 of its peak), y Gaussian.

Written by hand: no package ships these targets for JAX with their normalizers.
"""

from __future__ import annotations

import math
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
from maxent_gan.models.mixture import mixture_energy, mixture_params
from maxent_gan.models.problem import Problem, draws_data
from maxent_gan.models.spaces import Points
from maxent_gan.models.unnormalized import Unnormalized

__all__ = ["STANDARD_TARGETS", "funnel_cost", "funnel_energy", "funnel_log_partition", "funnel_sample", "standard_problem", "gmm40_energy", "manywell_energy", "manywell_log_z_1d"]

FUNNEL_SCALE = 3.0


def gmm40_energy(key: jax.Array | None = None, *, num_modes: int = 40, half_width: float = 40.0) -> Unnormalized:
    """40 unit-variance modes with means uniform in [−half_width, half_width]²; log Z = log 2π."""
    key = jax.random.key(0) if key is None else key
    locs = jax.random.uniform(key, (num_modes, 2), minval=-half_width, maxval=half_width)
    return mixture_energy(mixture_params(locs, jnp.ones(num_modes)))


def _funnel_sd(params) -> jax.Array:
    return jnp.exp(params["log_scale"]) if "log_scale" in params else jnp.asarray(FUNNEL_SCALE)


def funnel_cost(params, x):
    """Neal's funnel, v first: v ~ N(0, σ²), x_i | v ~ N(0, e^v); σ = e^{params["log_scale"]}, else
    :data:`FUNNEL_SCALE` (the standard target's ``params`` are empty)."""
    v, rest = x[..., 0], x[..., 1:]
    return v**2 / (2 * _funnel_sd(params) ** 2) + 0.5 * jnp.exp(-v) * jnp.sum(rest**2, -1) + 0.5 * rest.shape[-1] * v


def funnel_sample(key, params, sample_shape, *, dim):
    """Exact draws of :func:`funnel_cost`'s density."""
    eps = jax.random.normal(key, (*sample_shape, dim))
    v = _funnel_sd(params) * eps[..., :1]
    return jnp.concatenate([v, jnp.exp(0.5 * v) * eps[..., 1:]], -1)


def funnel_log_partition(log_scale, dim: int):
    r"""log Z of :func:`funnel_cost`: integrating out the other ``dim - 1`` coordinates gives
    :math:`(2\pi e^v)^{(d-1)/2}`, which cancels the :math:`(d-1)v/2` term; then :math:`\int e^{-v^2/2\sigma^2}dv`."""
    return log_scale + 0.5 * dim * math.log(2 * math.pi)


def funnel_energy(dim: int = 10) -> Unnormalized:
    """Neal's funnel in ``dim`` dimensions (v first), exact log Z and draws."""
    return Unnormalized(funnel_cost, {}, event_shape=(dim,), log_normalizer=funnel_log_partition(math.log(FUNNEL_SCALE), dim),
                        sampler=partial(funnel_sample, dim=dim))


def _well_cost_1d(x):
    return x**4 - 6 * x**2 - 0.5 * x


@lru_cache(maxsize=1)
def manywell_log_z_1d() -> float:
    """:math:`\\log\\int e^{-(x^4 - 6x^2 - x/2)}dx` by adaptive quadrature (the integrand is shifted by its peak)."""
    from scipy import integrate

    xs = np.linspace(-4, 4, 80_001)
    peak = float(np.max(-_well_cost_1d(xs)))
    value, _ = integrate.quad(lambda x: math.exp(-_well_cost_1d(x) - peak), -8, 8, points=[-1.7, 0.0, 1.7],
                              epsabs=1e-14, epsrel=1e-13, limit=200)
    return math.log(value) + peak


@lru_cache(maxsize=1)
def _well_cdf() -> tuple[np.ndarray, np.ndarray]:
    xs = np.linspace(-5, 5, 200_001)
    log_density = -_well_cost_1d(xs)
    density = np.exp(log_density - log_density.max())
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(xs))])
    return xs, cdf / cdf[-1]


def _manywell_cost(params, x):
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    return jnp.sum(_well_cost_1d(pairs[..., 0]) + 0.5 * pairs[..., 1] ** 2, -1)


def _manywell_sample(key, params, sample_shape, *, dim):
    xs, cdf = (jnp.asarray(a) for a in _well_cdf())
    key_u, key_y = jax.random.split(key)
    shape = (*sample_shape, dim // 2)
    wells = jnp.interp(jax.random.uniform(key_u, shape, dtype=xs.dtype), cdf, xs)
    gauss = jax.random.normal(key_y, shape, dtype=xs.dtype)
    return jnp.stack([wells, gauss], -1).reshape(*sample_shape, dim)


def manywell_energy(dim: int = 32) -> Unnormalized:
    """``dim / 2`` independent double wells (x, y): exact log Z from 1-D quadrature, tabulated-CDF draws."""
    if dim % 2:
        raise ValueError(f"dim: expected an even number of coordinates (pairs of x, y), got {dim}")
    log_z = (dim // 2) * (manywell_log_z_1d() + 0.5 * math.log(2 * math.pi))
    return Unnormalized(_manywell_cost, {}, event_shape=(dim,), log_normalizer=log_z,
                        sampler=partial(_manywell_sample, dim=dim))


# builder, dimension, and the spread of the mass about the origin per coordinate (the broad proposal's
# standard deviation: gmm40's modes are uniform on [-40, 40]^2, sd 23; funnel10's first coordinate has sd 3;
# manywell32's wells sit at about ±1.7)
STANDARD_TARGETS = {
    "gmm40": (gmm40_energy, 2, 25.0),
    "funnel10": (lambda: funnel_energy(10), 10, 3.0),
    "manywell32": (lambda: manywell_energy(32), 32, 2.0),
}


def standard_problem(name: str) -> Problem:
    """A standard target as a problem: exact draws as data, exact log Z, no cost family."""
    build, size, scale = STANDARD_TARGETS[name]
    target = build()
    return Problem(name, Points(size, scale=scale), target, target.params, draws_data(target))
