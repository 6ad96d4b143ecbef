"""The exact sampler of a tractable problem as a proposal: the oracle row of every table."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
from maxent_gan.inference.proposals.base import check_count, compiled_when_eager
from maxent_gan.models.unnormalized import Unnormalized

__all__ = ["ExactProposal"]


class ExactProposal(eqx.Module):
    """:math:`q = p_\\theta` itself: exact draws, :math:`\\log q = -c - \\log Z` (weights constant)."""

    reparameterized: ClassVar[bool] = False  # the target's own sampler: no parameters to train

    target: Unnormalized

    def __init__(self, target: Unnormalized):
        if target.log_normalizer is None or not target.has_exact_sampler:
            raise ValueError("target: the exact proposal needs an exact sampler and an exact log_normalizer")
        self.target = target

    @compiled_when_eager
    def sample(self, key: jax.Array, n: int) -> jax.Array:
        check_count(n)
        return self.target.sample(key, (n,))

    @compiled_when_eager
    def log_prob(self, x: jax.Array) -> jax.Array:
        return self.target.normalized_log_prob(x)

    @compiled_when_eager
    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        x = self.sample(key, n)
        return x, self.log_prob(x)
