"""Gaussian-mixture energies with an analytic log Z.

The cost leaves out each component's normalizing constant, so log Z is not trivially 0:

.. math:: c(x) = -\\log \\sum_k w_k \\exp(-\\tfrac12 \\|L_k^{-1}(x - m_k)\\|^2), \\quad
          \\log Z = \\log \\sum_k w_k (2\\pi)^{d/2} |L_k|

Parameters are a dict ``{"logits": (K,), "locs": (K, d), "scale_trils": (K, d, d)}``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import logsumexp
from maxent_gan.models._jit import compiled_when_eager
from maxent_gan.models.unnormalized import Unnormalized

__all__ = ["mixture_cost", "mixture_energy", "mixture_log_partition", "mixture_params", "mixture_sample"]


def mixture_params(locs, scales, weights=None) -> dict[str, jax.Array]:
    """Mixture parameters from locations ``(K, d)`` and scales: ``(K,)`` isotropic,
    ``(K, d)`` diagonal or ``(K, d, d)`` lower-triangular factors; equal weights by default."""
    locs = jnp.asarray(locs, dtype=jnp.zeros(()).dtype)
    num, dim = locs.shape
    scales = jnp.asarray(scales, dtype=locs.dtype)
    if scales.shape == (num,):
        scale_trils = scales[:, None, None] * jnp.eye(dim)
    elif scales.shape == (num, dim):
        scale_trils = jax.vmap(jnp.diag)(scales)
    elif scales.shape == (num, dim, dim):
        scale_trils = scales
    else:
        raise ValueError(f"scales: expected shape ({num},), ({num}, {dim}) or ({num}, {dim}, {dim}), got {scales.shape}")
    weights = jnp.ones(num) if weights is None else jnp.asarray(weights, dtype=locs.dtype)
    if weights.shape != (num,) or not bool(jnp.all(weights > 0)):
        raise ValueError(f"weights: expected {num} positive weights, got shape {weights.shape}")
    return {"logits": jnp.log(weights / weights.sum()), "locs": locs, "scale_trils": scale_trils}


def _component_log_kernels(params, x: jax.Array) -> jax.Array:
    """``log w_k - ½‖L_k⁻¹(x - m_k)‖²`` for x ``(..., d)``; returns ``(..., K)``."""
    diff = x[..., None, :] - params["locs"]  # (..., K, d)
    flat = diff.reshape(-1, *params["locs"].shape)  # (n, K, d)
    white = jax.vmap(lambda tril, d: solve_triangular(tril, d.T, lower=True).T, in_axes=(0, 1), out_axes=1)(
        params["scale_trils"], flat
    )
    log_kernel = params["logits"] - 0.5 * jnp.sum(white**2, axis=-1)
    return log_kernel.reshape(*x.shape[:-1], -1)


@compiled_when_eager
def mixture_cost(params, x: jax.Array) -> jax.Array:
    """The mixture's cost at x ``(..., d)``, shape ``(...)``."""
    return -logsumexp(_component_log_kernels(params, x), axis=-1)


@compiled_when_eager
def mixture_log_partition(params) -> jax.Array:
    """Analytic :math:`\\log Z = \\log\\sum_k w_k (2\\pi)^{d/2}|L_k|`."""
    dim = params["locs"].shape[-1]
    log_det = jnp.sum(jnp.log(jnp.abs(jnp.diagonal(params["scale_trils"], axis1=-2, axis2=-1))), axis=-1)
    return logsumexp(params["logits"] + log_det) + 0.5 * dim * math.log(2 * math.pi)


@compiled_when_eager
def mixture_sample(key: jax.Array, params, sample_shape: tuple[int, ...] = ()) -> jax.Array:
    """Exact draws from the normalized mixture, shape ``(*sample_shape, d)``."""
    key_component, key_noise = jax.random.split(key)
    component = jax.random.categorical(key_component, params["logits"], shape=sample_shape)
    eps = jax.random.normal(key_noise, (*sample_shape, params["locs"].shape[-1]), dtype=params["locs"].dtype)
    tril = params["scale_trils"][component]
    return params["locs"][component] + jnp.einsum("...ij,...j->...i", tril, eps)


def mixture_energy(params) -> Unnormalized:
    """The mixture as an ``Unnormalized`` distribution with exact log Z and sampler."""
    return Unnormalized(
        mixture_cost,
        params,
        event_shape=(params["locs"].shape[-1],),
        log_normalizer=mixture_log_partition(params),
        sampler=mixture_sample,
    )
