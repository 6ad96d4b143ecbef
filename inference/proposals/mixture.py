"""Mixture proposals: a Gaussian mixture, and the defensive mixture with a broad proposal."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.typing import ArrayLike

from inference._validation import require
from inference.proposals.base import Proposal, check_count, check_points

__all__ = ["DefensiveMixture", "GaussianMixture"]


class GaussianMixture(eqx.Module):
    """:math:`q = \\sum_k \\pi_k N(m_k, L_k L_k^\\top)`, ``pi = softmax(logits)``.

    Density and draws from NumPyro's ``MixtureSameFamily`` (log-sum-exp over components).
    """

    logits: jax.Array
    locs: jax.Array
    lower: jax.Array
    log_diag: jax.Array

    def __init__(self, weights: ArrayLike, locs: ArrayLike, scale_trils: ArrayLike):
        weights, locs, scale_trils = jnp.asarray(weights), jnp.asarray(locs), jnp.asarray(scale_trils)
        if locs.ndim != 2:
            raise ValueError(f"locs: expected shape (K, d), got {locs.shape}")
        num, dim = locs.shape
        if weights.shape != (num,):
            raise ValueError(f"weights: expected {num} mixture weights, got shape {weights.shape}")
        require(weights > 0, "weights: expected positive mixture weights")
        if scale_trils.shape != (num, dim, dim):
            raise ValueError(f"scale_trils: expected shape {(num, dim, dim)}, got {scale_trils.shape}")
        diag = jnp.diagonal(scale_trils, axis1=-2, axis2=-1)
        require(diag > 0, "scale_trils: expected lower-triangular factors with positive diagonals")
        dtype = jnp.result_type(locs.dtype, jnp.zeros(()).dtype)
        self.logits = jnp.log(weights / weights.sum()).astype(dtype)
        self.locs = locs.astype(dtype)
        self.lower = jnp.tril(scale_trils, -1).astype(dtype)
        self.log_diag = jnp.log(diag).astype(dtype)

    @property
    def dim(self) -> int:
        return self.locs.shape[-1]

    @property
    def scale_trils(self) -> jax.Array:
        eye = jnp.eye(self.dim, dtype=self.locs.dtype)
        return jnp.tril(self.lower, -1) + eye * jnp.exp(self.log_diag)[..., None, :]

    def distribution(self) -> dist.Distribution:
        return dist.MixtureSameFamily(
            dist.Categorical(logits=self.logits), dist.MultivariateNormal(self.locs, scale_tril=self.scale_trils)
        )

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        check_count(n)
        return self.distribution().sample(key, (n,))

    def log_prob(self, x: jax.Array) -> jax.Array:
        check_points("x", x, self.dim)
        return self.distribution().log_prob(x)

    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        x = self.sample(key, n)
        return x, self.log_prob(x)


class DefensiveMixture(eqx.Module):
    """:math:`q = (1-\\alpha)\\, q_{learned} + \\alpha\\, q_{broad}` (Hesterberg 1995).

    The broad component bounds the weights where the learned one misses mass of p:
    :math:`w \\le p / (\\alpha q_{broad})`. Draws are i.i.d. from the mixture.
    """

    proposal: Proposal
    broad: Proposal
    weight: float = eqx.field(static=True)

    def __init__(self, proposal: Proposal, broad: Proposal, weight: float = 0.1):
        for name, value in (("proposal", proposal), ("broad", broad)):
            if not isinstance(value, Proposal):
                raise TypeError(f"{name}: expected a proposal with sample/log_prob/sample_and_log_prob")
        if not 0.0 < float(weight) < 1.0:
            raise ValueError(f"weight: expected the broad component's weight in (0, 1), got {weight!r}")
        self.proposal, self.broad, self.weight = proposal, broad, float(weight)

    def log_prob(self, x: jax.Array) -> jax.Array:
        return jnp.logaddexp(
            math.log1p(-self.weight) + self.proposal.log_prob(x), math.log(self.weight) + self.broad.log_prob(x)
        )

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        check_count(n)
        key_pick, key_learned, key_broad = jax.random.split(key, 3)
        use_broad = jax.random.bernoulli(key_pick, self.weight, (n,))
        learned, broad = self.proposal.sample(key_learned, n), self.broad.sample(key_broad, n)
        return jnp.where(use_broad.reshape((n,) + (1,) * (learned.ndim - 1)), broad, learned)

    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        x = self.sample(key, n)
        return x, self.log_prob(x)
