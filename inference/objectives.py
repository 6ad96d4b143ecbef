"""The losses of the paper, as pure functions of cost arrays.

Gradients in θ flow through the costs the caller computed, and gradients in q through
``log_q`` (and reparameterized draws). With the discriminator

.. math:: D(x) = \\frac{\\tilde p(x)}{\\tilde p(x) + q(x)} = \\sigma(s(x)),\\quad
          s = -c - \\log Z - \\log q,

the paper's three claims hold (tests/test_identities.py):

1. the log Z minimizing :func:`discriminator_loss` is ``log_z_mixture``;
2. at that log Z, :math:`\\nabla_\\theta L_{disc} = \\nabla_\\theta L_{cost}`;
3. :math:`L_{gen} = \\log Z + L_{sampler}`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.nn import log_sigmoid
from jax.typing import ArrayLike
from maxent_gan.inference._validation import check_same_length, check_vector
from maxent_gan.inference.estimators import log_mean_exp, mixture_log_weights

__all__ = ["cost_loss", "discriminator_loss", "discriminator_logit", "generator_loss", "sampler_loss"]


def _check(names_values: list[tuple[str, ArrayLike]], pairs: list[tuple[int, int]]) -> list[jax.Array]:
    arrays = [check_vector(name, value) for name, value in names_values]
    for i, j in pairs:
        check_same_length(names_values[j][0], arrays[j], names_values[i][0], arrays[i])
    return arrays


def _check_scalar(name: str, value: ArrayLike) -> jax.Array:
    value = jnp.asarray(value)
    if value.shape != ():
        raise ValueError(f"{name}: expected a scalar, got shape {value.shape}")
    if not isinstance(value, jax.core.Tracer) and not bool(jnp.isfinite(value)):
        raise ValueError(f"{name}: expected a finite scalar, got {float(value)}")
    return value


def _check_data_and_samples(cost_data, cost_samples, log_q_data, log_q_samples, log_z):
    arrays = _check(
        [("cost_data", cost_data), ("cost_samples", cost_samples),
         ("log_q_data", log_q_data), ("log_q_samples", log_q_samples)],
        [(0, 2), (1, 3)],
    )
    return (*arrays, _check_scalar("log_z", log_z))


def discriminator_logit(costs: jax.Array, log_q: jax.Array, log_z: jax.Array) -> jax.Array:
    """:math:`s = -c - \\log Z - \\log q`, so that :math:`D = \\sigma(s)`."""
    return -costs - log_z - log_q


def cost_loss(
    cost_data: ArrayLike,
    cost_samples: ArrayLike,
    log_q_data: ArrayLike,
    log_q_samples: ArrayLike,
    log_z: ArrayLike,
) -> jax.Array:
    """Guided cost learning, :math:`E_p[c] + \\log E_\\mu[e^{-c}/\\tilde\\mu]`.

    :math:`\\tilde\\mu = \\tfrac12 e^{-c}/Z + \\tfrac12 q` is held constant (``stop_gradient``),
    the GCL convention under which claim 2 holds; ``E_mu`` is half the mean over data plus
    half the mean over proposal draws.
    """
    cost_data, cost_samples, log_q_data, log_q_samples, log_z = _check_data_and_samples(
        cost_data, cost_samples, log_q_data, log_q_samples, log_z
    )

    def log_weights(costs, log_q):
        # -c - log mu~ with mu~ frozen: the weights' gradient is -grad c only
        frozen = jax.lax.stop_gradient(mixture_log_weights(costs, log_q, log_z) + costs)
        return -costs + frozen

    log_normalizer = jnp.logaddexp(
        log_mean_exp(log_weights(cost_data, log_q_data)),
        log_mean_exp(log_weights(cost_samples, log_q_samples)),
    ) - math.log(2.0)
    return jnp.mean(cost_data) + log_normalizer


def discriminator_loss(
    cost_data: ArrayLike,
    cost_samples: ArrayLike,
    log_q_data: ArrayLike,
    log_q_samples: ArrayLike,
    log_z: ArrayLike,
) -> jax.Array:
    """:math:`L_{disc} = E_p[-\\log D] + E_q[-\\log(1 - D)]`, with :math:`D = \\sigma(s)`.

    Uses ``log_sigmoid(±s)`` so costs of any size stay finite.
    """
    cost_data, cost_samples, log_q_data, log_q_samples, log_z = _check_data_and_samples(
        cost_data, cost_samples, log_q_data, log_q_samples, log_z
    )
    logit_data = discriminator_logit(cost_data, log_q_data, log_z)
    logit_samples = discriminator_logit(cost_samples, log_q_samples, log_z)
    # -log D = -log_sigmoid(s); -log(1 - D) = -log_sigmoid(-s)
    return -jnp.mean(log_sigmoid(logit_data)) - jnp.mean(log_sigmoid(-logit_samples))


def generator_loss(cost_samples: ArrayLike, log_q_samples: ArrayLike, log_z: ArrayLike) -> jax.Array:
    """:math:`L_{gen} = E_q[\\log(1 - D) - \\log D]` (equal to :math:`E_q[c + \\log Z + \\log q]`).

    Computed in the GAN form, from the discriminator's log-sigmoids.
    """
    cost_samples, log_q_samples = _check(
        [("cost_samples", cost_samples), ("log_q_samples", log_q_samples)], [(0, 1)]
    )
    log_z = _check_scalar("log_z", log_z)
    logit = discriminator_logit(cost_samples, log_q_samples, log_z)
    return jnp.mean(log_sigmoid(-logit) - log_sigmoid(logit))


def sampler_loss(cost_samples: ArrayLike, log_q_samples: ArrayLike) -> jax.Array:
    """:math:`L_{sampler} = E_q[c + \\log q] = KL(q\\|p_\\theta) - \\log Z(\\theta) = -\\mathrm{ELBO}`."""
    cost_samples, log_q_samples = _check(
        [("cost_samples", cost_samples), ("log_q_samples", log_q_samples)], [(0, 1)]
    )
    return jnp.mean(cost_samples + log_q_samples)
