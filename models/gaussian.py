"""The quadratic energy: a Gaussian in any dimension, with exact log Z and sampler.

.. math:: c_\\theta(x) = \\tfrac12 (x-m)^\\top P (x-m), \\qquad
          \\log Z(\\theta) = \\tfrac d2 \\log 2\\pi - \\tfrac12 \\log\\det P

Parameters ``{"loc": m (d,), "precision": P (d, d)}``; no additive constant in the cost
(the cost's gauge).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from maxent_gan.models._validation import check_positive_int
from maxent_gan.models.problem import CostFamily, Problem, draws_data
from maxent_gan.models.spaces import Points
from maxent_gan.models.unnormalized import Unnormalized

__all__ = [
    "quadratic_cost",
    "quadratic_log_partition",
    "quadratic_sample",
    "quadratic_energy",
    "diagonal_energy",
    "gaussian_target_params",
    "gaussian_model",
    "gaussian_problem",
]


def quadratic_cost(params: dict, x: jax.Array) -> jax.Array:
    """:math:`\\tfrac12 (x-m)^\\top P (x-m)`; x: (..., d) -> (...)."""
    delta = x - params["loc"]
    return 0.5 * jnp.einsum("...i,ij,...j->...", delta, params["precision"], delta)


def quadratic_log_partition(params: dict) -> jax.Array:
    """:math:`\\log \\int e^{-c(x)} dx = \\tfrac d2 \\log 2\\pi - \\tfrac12\\log\\det P`."""
    precision = params["precision"]
    dim = precision.shape[-1]
    chol = jnp.linalg.cholesky(precision)
    return 0.5 * dim * math.log(2 * math.pi) - jnp.sum(jnp.log(jnp.diagonal(chol)))


def quadratic_sample(key: jax.Array, params: dict, sample_shape: tuple[int, ...]) -> jax.Array:
    """Exact draws :math:`x = m + L^{-\\top} z`, with :math:`P = L L^\\top`, z standard normal."""
    precision = params["precision"]
    chol = jnp.linalg.cholesky(precision)
    z = jax.random.normal(key, (*sample_shape, precision.shape[-1]), dtype=precision.dtype)
    # x - m = L^{-T} z solves L^T (x - m) = z; covariance L^{-T} L^{-1} = P^{-1}
    delta = jax.scipy.linalg.solve_triangular(chol.T, z.reshape(-1, z.shape[-1]).T, lower=False).T
    return params["loc"] + delta.reshape(z.shape)


def quadratic_energy(params: dict) -> Unnormalized:
    """The quadratic energy as an :class:`Unnormalized` with exact log Z and sampler."""
    dim = params["loc"].shape[-1]
    return Unnormalized(
        quadratic_cost,
        params,
        event_shape=(dim,),
        log_normalizer=quadratic_log_partition(params),
        sampler=quadratic_sample,
    )


def gaussian_target_params(dim: int, *, key: jax.Array | None = None) -> dict:
    """A fixed, correlated test target in ``dim`` dimensions (same for every run seed).

    Covariance eigenvalues log-spaced in [0.5, 2] under a random rotation drawn from
    ``key`` (default ``key(0)``); mean ``linspace(-1, 1, dim)``.
    """
    check_positive_int("dim", dim)
    key = jax.random.key(0) if key is None else key
    dtype = jnp.zeros(()).dtype  # float64 when x64 is on
    rotation, _ = jnp.linalg.qr(jax.random.normal(key, (dim, dim), dtype=dtype))
    variances = jnp.logspace(math.log10(0.5), math.log10(2.0), dim, dtype=dtype)
    precision = (rotation / variances) @ rotation.T
    precision = 0.5 * (precision + precision.T)
    return {"loc": jnp.linspace(-1.0, 1.0, dim, dtype=dtype), "precision": precision}


def gaussian_model(data: jax.Array | None = None, *, dim: int | None = None) -> None:
    """NumPyro model: a diagonal quadratic energy with data observed through ``Unnormalized``.

    Prior ``loc ~ N(0, 2^2)``, ``log_precision ~ N(0, 1)`` per coordinate. The observed
    site carries the exact log normalizer, so a normalizing handler can use it; on its
    own the site's log density is *unnormalized* (Bayesian IRL and EBMs).
    """
    if data is None and dim is None:
        raise ValueError("gaussian_model: pass data (N, d) or dim")
    dim = data.shape[-1] if data is not None else dim
    loc = numpyro.sample("loc", dist.Normal(0.0, 2.0).expand([dim]).to_event(1))
    log_precision = numpyro.sample("log_precision", dist.Normal(0.0, 1.0).expand([dim]).to_event(1))
    energy = diagonal_energy({"loc": loc, "log_precision": log_precision})
    num_data = None if data is None else data.shape[0]
    with numpyro.plate("data", num_data if num_data is not None else 1):
        numpyro.sample("x", energy, obs=data)


def _diagonal_cost(theta: dict, x: jax.Array) -> jax.Array:
    return quadratic_cost({"loc": theta["loc"], "precision": jnp.diag(jnp.exp(theta["log_precision"]))}, x)


def _diagonal(theta: dict) -> dict:
    return {"loc": theta["loc"], "precision": jnp.diag(jnp.exp(theta["log_precision"]))}


def diagonal_energy(theta: dict) -> Unnormalized:
    """The diagonal quadratic energy with θ = (loc, log_precision) as its parameters (so a
    θ-conditional proposal reads the family's θ from the site), exact log Z and sampler."""
    return Unnormalized(
        _diagonal_cost,
        theta,
        event_shape=(theta["loc"].shape[-1],),
        log_normalizer=quadratic_log_partition(_diagonal(theta)),
        sampler=lambda key, params, shape: quadratic_sample(key, _diagonal(params), shape),
    )


def gaussian_problem(dim: int = 2) -> Problem:
    """The correlated Gaussian of :func:`gaussian_target_params` as a problem; its cost family is the
    diagonal quadratic of :func:`gaussian_model` (θ = loc, log_precision), whose best member (moment
    matching: the data mean, 1 / the marginal variances) stands in for θ*."""
    params = gaussian_target_params(dim)
    target = quadratic_energy(params)
    covariance = jnp.linalg.inv(params["precision"])
    zeros = jnp.zeros(dim, params["loc"].dtype)
    family = CostFamily(
        _diagonal_cost, gaussian_model, {"loc": zeros, "log_precision": zeros},
        tuple(f"loc[{i}]" for i in range(dim)) + tuple(f"log_precision[{i}]" for i in range(dim)),
        sites=("loc", "log_precision"),
        theta_true={"loc": params["loc"], "log_precision": -jnp.log(jnp.diagonal(covariance))},
        log_partition_fn=lambda theta: quadratic_log_partition(_diagonal(theta)),
        sampler=lambda key, theta, n: quadratic_sample(key, _diagonal(theta), (n,)),
        theta_descriptions=(tuple(f"centre of the quadratic cost along axis {i}" for i in range(dim))
                            + tuple(f"log of its curvature (precision) along axis {i}" for i in range(dim))),
    )
    return Problem("gaussian", Points(dim), target, params, draws_data(target), family)
