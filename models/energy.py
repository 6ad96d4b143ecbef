"""A neural energy: an equinox MLP with no free additive bias (the cost's gauge).

.. math:: c_\\theta(x) = \\mathrm{MLP}_\\theta(x) + \\frac{\\|x\\|^2}{2 s^2}

The last layer has no bias (a constant added to c is unidentified: it moves into log Z),
and the fixed quadratic term with scale ``s`` keeps :math:`e^{-c}` integrable whatever the
network does. Data are expected standardized (the problems standardize them).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from maxent_gan.models._validation import check_positive_int
from maxent_gan.models.unnormalized import Unnormalized
from numpyro.contrib.module import random_eqx_module

__all__ = ["MLPEnergy", "ebm_model", "energy_cost", "energy_distribution"]


class MLPEnergy(eqx.Module):
    """``energy(x)`` for one point ``x`` of shape ``(d,)``; vmap over a batch (or use
    :func:`energy_cost`)."""

    mlp: eqx.nn.MLP
    confinement: float = eqx.field(static=True)

    def __init__(self, key: jax.Array, dim: int, *, width: int = 64, depth: int = 2, confinement: float = 3.0):
        check_positive_int("dim", dim)
        if not confinement > 0:
            raise ValueError(f"confinement: expected a positive scale, got {confinement!r}")
        self.mlp = eqx.nn.MLP(dim, "scalar", width, depth, activation=jax.nn.silu, use_final_bias=False, key=key)
        self.confinement = float(confinement)

    @property
    def dim(self) -> int:
        return self.mlp.in_size

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.mlp(x) + 0.5 * jnp.sum(x**2) / self.confinement**2


def energy_cost(energy, x: jax.Array) -> jax.Array:
    """Costs of x ``(..., d)`` under a per-point ``energy``, shape ``(...)``.

    The ``cost_fn(params, x)`` of :class:`Unnormalized` with the module as its params.
    """
    flat = x.reshape(-1, x.shape[-1])
    return jax.vmap(energy)(flat).reshape(x.shape[:-1])


def energy_distribution(energy) -> Unnormalized:
    """The module as an :class:`Unnormalized` distribution (normalizer unknown)."""
    return Unnormalized(energy_cost, energy, event_shape=(energy.dim,))


def ebm_model(data: jax.Array | None = None, *, energy: MLPEnergy, prior_scale: float = 1.0, num_data: int | None = None):
    """NumPyro model: a Normal(0, prior_scale) prior on every network weight, the data
    observed through the unnormalized density (the normalizing handler adds -N log Z)."""
    num_data = data.shape[0] if data is not None else num_data
    if num_data is None:
        raise ValueError("num_data: pass data or the number of data points")
    energy = random_eqx_module("energy", energy, prior=dist.Normal(0.0, prior_scale))
    with numpyro.plate("data", num_data):
        numpyro.sample("x", energy_distribution(energy), obs=data)
