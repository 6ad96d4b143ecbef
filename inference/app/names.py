"""The one registry of proposal names, for the CLI, ``logz`` and the identities job: one line per proposal.

Which names a problem takes is decided by its sample space (``maxent_gan.inference.spaces``), never by its name."""

from __future__ import annotations

from collections.abc import Callable

import jax
from maxent_gan.inference.proposals.base import Proposal
from maxent_gan.inference.proposals.exact import ExactProposal
from maxent_gan.inference.proposals.flow import Flow, fit_flow_to_data
from maxent_gan.inference.proposals.gaussian import DiagonalGaussian, Gaussian
from maxent_gan.inference.proposals.mixture import DefensiveMixture
from maxent_gan.inference.sampler import fit_sampler, proposal_optimizer
from maxent_gan.inference.spaces import POINT_RATES, broad_proposal, has_soft_optimal, sampler_rates, soft_optimal
from maxent_gan.models.spaces import Points
from maxent_gan.models.unnormalized import Unnormalized

__all__ = ["PROPOSALS", "TRAJECTORY_PROPOSALS", "make_proposal", "proposal_names"]


def _dim(target: Unnormalized) -> int:
    (dim,) = target.event_shape
    return dim


def _broad(key, target, *, scale, steps, progress):
    return Gaussian.isotropic(_dim(target), scale)


def _fitted(initial):
    def build(key, target, *, scale, steps, progress):
        proposal, _ = fit_sampler(key, initial(_dim(target), scale), target, steps=steps or 1000, progress=progress)
        return proposal

    return build


def _flow(key, target, *, scale, steps, progress):
    steps = steps or 4000
    key_init, key_fit = jax.random.split(key)
    flow = Flow.coupling(key_init, _dim(target), base_scale=scale, interval=3 * scale)
    optimizer = proposal_optimizer(POINT_RATES.fit, steps, alpha=0.0)
    proposal, _ = fit_sampler(key_fit, flow, target, steps=steps, num_draws=512, optimizer=optimizer,
                              anneal=0.05, progress=progress)
    return proposal


def _flow_data(key, target, *, scale, steps, progress):
    if not target.has_exact_sampler:
        raise ValueError("proposal: 'flow-data' fits a flow to exact draws of the target, and this problem has none")
    key_init, key_data, key_fit = jax.random.split(key, 3)
    data = target.sample(key_data, (20_000,))
    flow = Flow.coupling(key_init, _dim(target), base_scale=scale, interval=3 * scale)
    proposal, _ = fit_flow_to_data(key_fit, flow, data, max_epochs=steps or 100, learning_rate=2e-3, progress=progress)
    return proposal


def _defensive(key, target, *, scale, steps, progress):
    learned = PROPOSALS["gaussian"](key, target, scale=scale, steps=steps, progress=progress)
    return DefensiveMixture(learned, Gaussian.isotropic(_dim(target), scale), weight=0.1)


PROPOSALS: dict[str, Callable[..., Proposal]] = {
    "exact": lambda key, target, **_: ExactProposal(target),
    "broad": _broad,
    "gaussian": _fitted(Gaussian.isotropic),
    "diag-gaussian": _fitted(lambda dim, scale: DiagonalGaussian(jax.numpy.zeros(dim), scale)),
    "defensive": _defensive,
    "flow": _flow,
    "flow-data": _flow_data,
}
"""``exact``: the oracle; ``broad``: N(0, scale² I); ``gaussian`` / ``diag-gaussian``: fitted
by reverse KL from the broad start; ``defensive``: the fitted Gaussian mixed with the broad
one (weight 0.1); ``flow``: a spline coupling flow fitted by annealed reverse KL to the
energy alone; ``flow-data``: the same flow fitted by maximum likelihood to 20 000 exact
draws (data), mass-covering by construction. ``steps`` is the fit's steps (epochs for
``flow-data``); ``None`` takes each proposal's default."""


def _policy(key, target, problem, *, steps, progress):
    steps = steps or 1000
    optimizer = proposal_optimizer(sampler_rates(problem.space).fit, steps)
    key_init, key_fit = jax.random.split(key)
    proposal, _ = fit_sampler(key_fit, broad_proposal(problem.space, key_init), target, steps=steps, num_draws=512,
                              optimizer=optimizer, progress=progress)
    return proposal


def _base(key, target, problem, **_):
    return broad_proposal(problem.space, key)


def _soft_optimal(key, target, problem, **_):
    return soft_optimal(problem.space, problem, target.params)


TRAJECTORY_PROPOSALS: dict[str, Callable[..., Proposal]] = {
    "exact": lambda key, target, problem, **_: ExactProposal(target),
    "broad": _base,
    "soft-optimal": _soft_optimal,
    "policy": _policy,
}
"""Trajectory problems: ``exact``: the oracle; ``broad``: the broad policy (every action equally
likely on a grid; N(0, I) forces on a linear system); ``soft-optimal``: the exact action
conditional of the target's costs (exact for deterministic dynamics; the transitions stay
untilted otherwise: ``maxent_gan.inference.spaces.soft_optimal(..., tilted=True)`` is the exact model itself); ``policy``: the broad policy fitted by reverse KL (score-function gradient
on a grid, pathwise through the dynamics on a linear system)."""


def proposal_names(problem=None) -> tuple[str, ...]:
    """The proposals that apply to ``problem``: by its sample space (points in R^d take ``PROPOSALS``,
    trajectories ``TRAJECTORY_PROPOSALS``), less ``exact`` without an exact sampler and ``soft-optimal``
    where the space has no soft-optimal policy (the point mass has neither)."""
    exact = problem is None or (problem.target is not None and problem.target.has_exact_sampler)
    if problem is None or isinstance(problem.space, Points):  # the oracle and flow-data need exact draws
        return tuple(name for name in PROPOSALS if exact or name not in ("exact", "flow-data"))
    return tuple(name for name in TRAJECTORY_PROPOSALS
                 if (name != "exact" or exact) and (name != "soft-optimal" or has_soft_optimal(problem.space)))


def make_proposal(
    name: str,
    key: jax.Array,
    target: Unnormalized,
    *,
    problem=None,
    scale: float = 2.0,
    steps: int | None = None,
    progress: bool = False,
) -> Proposal:
    """Build the named proposal for ``target``; the error lists the valid names.

    Trajectory problems take the policy proposals of ``TRAJECTORY_PROPOSALS``; points in R^d take
    ``PROPOSALS``.
    """
    names = proposal_names(problem)
    if name not in names:
        kind = f" for {problem.name}" if problem is not None else ""
        raise ValueError(f"proposal: unknown name {name!r}{kind}; valid: {', '.join(names)}")
    if problem is not None and not isinstance(problem.space, Points):
        return TRAJECTORY_PROPOSALS[name](key, target, problem, steps=steps, progress=progress)
    if not scale > 0:
        raise ValueError(f"scale: expected a positive broad-proposal scale, got {scale!r}")
    return PROPOSALS[name](key, target, scale=scale, steps=steps, progress=progress)
