"""Proposals by name, for the CLI and comparisons: one line per proposal."""

from __future__ import annotations

from collections.abc import Callable

import jax

from inference.proposals.base import Proposal
from inference.proposals.exact import ExactProposal
from inference.proposals.gaussian import DiagonalGaussian, Gaussian
from inference.proposals.mixture import DefensiveMixture
from models.unnormalized import Unnormalized

__all__ = ["PROPOSALS", "make_proposal"]


def _dim(target: Unnormalized) -> int:
    (dim,) = target.event_shape
    return dim


def _broad(key, target, *, scale, steps, progress):
    return Gaussian.isotropic(_dim(target), scale)


def _fitted(initial):
    def build(key, target, *, scale, steps, progress):
        from inference.sampler import fit_sampler  # the sampler imports proposals

        proposal, _ = fit_sampler(key, initial(_dim(target), scale), target, steps=steps, progress=progress)
        return proposal

    return build


def _defensive(key, target, *, scale, steps, progress):
    learned = PROPOSALS["gaussian"](key, target, scale=scale, steps=steps, progress=progress)
    return DefensiveMixture(learned, Gaussian.isotropic(_dim(target), scale), weight=0.1)


PROPOSALS: dict[str, Callable[..., Proposal]] = {
    "exact": lambda key, target, **_: ExactProposal(target),
    "broad": _broad,
    "gaussian": _fitted(Gaussian.isotropic),
    "diag-gaussian": _fitted(lambda dim, scale: DiagonalGaussian(jax.numpy.zeros(dim), scale)),
    "defensive": _defensive,
}
"""``exact``: the oracle; ``broad``: N(0, scale² I); ``gaussian`` / ``diag-gaussian``: fitted
by reverse KL from the broad start; ``defensive``: the fitted Gaussian mixed with the broad
one (weight 0.1)."""


def make_proposal(
    name: str,
    key: jax.Array,
    target: Unnormalized,
    *,
    scale: float = 2.0,
    steps: int = 1000,
    progress: bool = False,
) -> Proposal:
    """Build the named proposal for ``target``; the error lists the valid names."""
    if name not in PROPOSALS:
        raise ValueError(f"proposal: unknown name {name!r}; valid: {', '.join(PROPOSALS)}")
    if not scale > 0:
        raise ValueError(f"scale: expected a positive broad-proposal scale, got {scale!r}")
    return PROPOSALS[name](key, target, scale=scale, steps=steps, progress=progress)
