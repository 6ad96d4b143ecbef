"""The proposal protocol: what every importance proposal provides."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import jax
from maxent_gan.models._jit import compiled_when_eager
from maxent_gan.models._validation import check_positive_int

__all__ = ["Proposal", "check_points", "compiled_when_eager", "is_reparameterized"]


@runtime_checkable
class Proposal(Protocol):
    """A distribution to draw from and to weight with.

    ``log_prob`` is relative to the problem's base measure (Lebesgue for EBMs on R^d),
    the same measure as the target's unnormalized density.

    ``reparameterized`` (a class attribute; default ``False`` when absent): whether the draws of
    ``sample_and_log_prob`` are a differentiable function of the parameters with the randomness fixed
    (Gaussians, flows, policies through known dynamics). Training differentiates through the draws
    only then; otherwise it holds them fixed and uses the score-function gradient (tabular policies,
    and every mixture, whose component is picked discretely).
    """

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """Draw ``n`` points, shape ``(n, *event_shape)``."""
        ...

    def log_prob(self, x: jax.Array) -> jax.Array:
        """Log density at ``x`` of shape ``(n, *event_shape)``; returns ``(n,)``."""
        ...

    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        """Draws and their log densities, where computing both at once is cheaper."""
        ...


def is_reparameterized(proposal) -> bool:
    """The proposal's ``reparameterized`` declaration; ``False`` when it declares none (the safe choice:
    the score-function gradient is unbiased for any proposal, the pathwise one only for reparameterized)."""
    return bool(getattr(proposal, "reparameterized", False))


def check_points(name: str, x: jax.Array, dim: int) -> None:
    """Shape check at the protocol boundary: ``x`` must be ``(n, dim)``."""
    if x.ndim != 2 or x.shape[-1] != dim:
        raise ValueError(f"{name}: expected points of shape (n, {dim}), got {x.shape}")


def check_count(n: int) -> None:
    """``n`` must be a positive Python int (it is a static shape)."""
    check_positive_int("n", n, what="a positive integer number of draws")

