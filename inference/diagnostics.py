"""Diagnostics of importance weights: effective sample size and Pareto k-hat (PSIS).

Vehtari et al., *Pareto smoothed importance sampling*: k-hat < 0.5 good, 0.5-0.7 usable,
> 0.7 unreliable. ArviZ (``az.psislw``) fits the tail; this module only adapts it to JAX.
"""

from __future__ import annotations

import warnings

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

__all__ = [
    "K_HAT_UNRELIABLE",
    "UnreliableEstimateWarning",
    "effective_sample_size",
    "pareto_k_hat",
    "warn_if_unreliable",
]

K_HAT_UNRELIABLE = 0.7
CONSTANT_WEIGHTS_NATS = 1e-9  # log weights spread less than this count as constant


class UnreliableEstimateWarning(UserWarning):
    """An importance-sampling estimate whose weights have a heavy tail (k-hat > 0.7)."""


def effective_sample_size(log_weights: jax.Array) -> jax.Array:
    """Kish's ESS, :math:`(\\sum w)^2 / \\sum w^2`, computed in log space; in [1, n]."""
    return jnp.exp(2.0 * logsumexp(log_weights) - logsumexp(2.0 * log_weights))


def _k_hat_numpy(log_weights: np.ndarray) -> np.ndarray:
    log_weights = np.asarray(log_weights)
    # rounding of the weights' own dtype also counts as constant (float32 costs of size 1e3)
    rounding = 64 * np.finfo(log_weights.dtype).eps * max(1.0, float(np.max(np.abs(log_weights))))
    log_weights = log_weights.astype(np.float64)
    if log_weights.shape[-1] < 2:
        return np.asarray(np.inf)
    if np.ptp(log_weights) <= max(CONSTANT_WEIGHTS_NATS, rounding):
        # weights equal up to rounding: the proposal is exact; ArviZ would report inf
        # (ties leave no tail to fit)
        return np.asarray(-np.inf)
    with np.errstate(over="ignore"):  # ArviZ's GPD profile likelihood overflows to weight 0: harmless
        _, k_hat = az.psislw(log_weights)
    return np.asarray(k_hat, dtype=np.float64)


def pareto_k_hat(log_weights: jax.Array) -> jax.Array:
    """Pareto k-hat of the weights' right tail, via ArviZ's ``psislw``.

    Works under ``jit``/``vmap``/``grad`` (a host callback on ``stop_gradient`` of the
    weights: a diagnostic, not a differentiable quantity). Returns ``+inf`` when there
    are too few draws to fit the tail (ArviZ needs more than 4 tail draws, about
    n >= 25) and ``-inf`` when all weights are equal to within 1e-9 nats (the proposal
    is exact up to rounding).
    """
    log_weights = jax.lax.stop_gradient(log_weights)

    def callback(lw):
        return _k_hat_numpy(lw).astype(lw.dtype)

    return jax.pure_callback(
        callback, jax.ShapeDtypeStruct((), log_weights.dtype), log_weights, vmap_method="sequential"
    )


def warn_if_unreliable(name: str, k_hat: jax.Array, ess: jax.Array, num: int) -> None:
    """Warn when k-hat says the estimate is unreliable (only for concrete values)."""
    if isinstance(k_hat, jax.core.Tracer):
        return
    k_hat = float(k_hat)
    if k_hat == np.inf:
        warnings.warn(
            f"{name}: Pareto k-hat could not be estimated from {num} draws (too few to fit "
            f"the weights' tail); treat the estimate as unreliable",
            UnreliableEstimateWarning,
            stacklevel=3,
        )
    elif k_hat > K_HAT_UNRELIABLE:
        warnings.warn(
            f"{name}: Pareto k-hat = {k_hat:.2f} > {K_HAT_UNRELIABLE}: the estimate is "
            f"unreliable (ESS {float(ess):.1f} of {num}); use a proposal closer to the target",
            UnreliableEstimateWarning,
            stacklevel=3,
        )
