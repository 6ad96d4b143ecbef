"""The one registry of proposal recipes: every name a job accepts (``logz``, ``identities``, ``compare``,
the CLI), where it applies and how it is built, one entry per name.

A recipe builds one or both of:

- a **proposal for one target** (``proposal``: ``logz`` and ``identities`` estimate log Z of the
  problem's reference energy with it);
- a **row of the posterior comparison** (``row``: ``compare`` runs NUTS under the normalizing handler
  with that proposal and estimator; the row's proposal is built from the data and the trained samplers).

Where a name applies is decided by the problem's sample space and what its target or family has
(an exact sampler, an exact log Z(θ)), never by the problem's name. ``exact`` is the exact normalizer
(no proposal: the gold-standard row of ``compare``); ``exact-sampler`` is importance sampling from the
target's exact sampler (the oracle proposal of ``logz``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from maxent_gan.inference.normalizers import Estimator, Exact, Importance, MISControlVariates
from maxent_gan.inference.proposals.base import Proposal
from maxent_gan.inference.proposals.exact import ExactProposal
from maxent_gan.inference.proposals.flow import Flow
from maxent_gan.inference.proposals.gaussian import DiagonalGaussian, Gaussian
from maxent_gan.inference.proposals.mixture import AnchorMixture, DefensiveMixture
from maxent_gan.inference.sampler import fit_sampler, fit_to_data, proposal_optimizer
from maxent_gan.inference.spaces import (
    POINT_RATES,
    broad_proposal,
    flow_architecture,
    has_soft_optimal,
    sampler_rates,
    soft_optimal,
    warm_start,
)
from maxent_gan.models.spaces import Points
from maxent_gan.models.unnormalized import Unnormalized

__all__ = ["RECIPES", "Recipe", "compare_names", "make_proposal", "proposal_names"]


@dataclass(frozen=True)
class Recipe:
    """One proposal name: ``applies(problem)`` (``problem`` is ``None`` for a bare target of points),
    ``proposal(key, target, problem, *, scale, steps, progress)`` for one target (or ``None``), and
    ``row(context)`` for ``compare`` (or ``None``), returning ``(proposal, estimator)``; ``context``
    offers ``problem``, ``data``, ``key(name)``, ``trained(method)`` (the trained sampler) and
    ``pilot(method, proposal)`` (a pilot posterior under it)."""

    name: str
    description: str
    applies: Callable[[Any], bool]
    proposal: Callable[..., Proposal] | None = None
    row: Callable[[Any], tuple[Proposal | None, Estimator]] | None = None


def _on_points(problem) -> bool:
    return problem is None or isinstance(problem.space, Points)


def _has_exact_sampler(problem) -> bool:
    return problem is None or (problem.target is not None and problem.target.has_exact_sampler)


def _dim(target: Unnormalized) -> int:
    (dim,) = target.event_shape
    return dim


def _broad(key, target, problem, *, scale, steps, progress):
    if _on_points(problem):
        return Gaussian.isotropic(_dim(target), scale)
    return broad_proposal(problem.space, key)


def _fitted(initial):
    def build(key, target, problem, *, scale, steps, progress):
        return fit_sampler(key, initial(_dim(target), scale), target, steps=steps or 1000, progress=progress).proposal

    return build


def _defensive(key, target, problem, *, scale, steps, progress):
    learned = _fitted(Gaussian.isotropic)(key, target, problem, scale=scale, steps=steps, progress=progress)
    return DefensiveMixture(learned, Gaussian.isotropic(_dim(target), scale), weight=0.1)


def _flow(key, target, problem, *, scale, steps, progress):
    dim = _dim(target)
    steps = steps or (FLOW_STEPS_2D if dim <= 2 else FLOW_STEPS)
    key_init, key_fit = jax.random.split(key)
    flow = Flow.coupling(key_init, dim, **flow_architecture(dim, fit="energy", scale=scale)._asdict())
    optimizer = proposal_optimizer(POINT_RATES.fit, steps, alpha=0.0)
    return fit_sampler(key_fit, flow, target, steps=steps, num_draws=512, optimizer=optimizer, anneal=0.05,
                       progress=progress).proposal


# the flow proposal's fit steps (benchmarks/flow_settings.py: in 2-D its estimates were within 0.05 nats and
# reliable after 500 steps at seed 0; 1000 keeps a margin; above 2-D no setting reached 0.05 on funnel10, and
# manywell32's flow, the standard targets' best, was fitted for 4000)
FLOW_STEPS_2D = 1000
FLOW_STEPS = 4000


def _flow_data(key, target, problem, *, scale, steps, progress):
    if not target.has_exact_sampler:
        raise ValueError("proposal: 'flow-data' fits a flow to exact draws of the target, and this problem has none")
    key_init, key_data, key_fit = jax.random.split(key, 3)
    data = target.sample(key_data, (20_000,))
    dim = _dim(target)
    flow = Flow.coupling(key_init, dim, **flow_architecture(dim, fit="data", data=data)._asdict())
    return fit_to_data(key_fit, flow, data, max_epochs=steps or 100, learning_rate=2e-3, progress=progress).proposal


def _policy(key, target, problem, *, scale, steps, progress):
    steps = steps or 1000
    optimizer = proposal_optimizer(sampler_rates(problem.space).fit, steps)
    key_init, key_fit = jax.random.split(key)
    return fit_sampler(key_fit, broad_proposal(problem.space, key_init), target, steps=steps, num_draws=512,
                       optimizer=optimizer, progress=progress).proposal


def _follow_row(method: str):
    def row(context):
        proposal = context.follow(method)
        # an anchor mixture: its components are control variates of the estimate
        return proposal, MISControlVariates() if isinstance(proposal, AnchorMixture) else Importance()

    return row


def _everywhere(problem) -> bool:
    return True


_RECIPES = (
    Recipe("exact", "the exact normalizer log Z(θ) (no proposal): the gold standard every other row is scored "
           "against",
           lambda problem: problem is not None and problem.family is not None
           and problem.family.log_partition_fn is not None,
           row=lambda context: (None, Exact())),
    Recipe("exact-sampler", "importance sampling from the target's exact sampler: the oracle proposal",
           _has_exact_sampler, proposal=lambda key, target, problem, **_: ExactProposal(target)),
    Recipe("broad", "a broad proposal (tabular: every action equally likely; continuous: a wide Gaussian policy or "
           "density, N(0, scale² I) on points), fixed before seeing the data", _everywhere, proposal=_broad,
           row=lambda context: (broad_proposal(context.problem.space, context.key("broad")), Importance())),
    Recipe("gaussian", "N(μ, σ² I) fitted by reverse KL from the broad start", _on_points,
           proposal=_fitted(Gaussian.isotropic)),
    Recipe("diag-gaussian", "a diagonal Gaussian fitted by reverse KL from the broad start", _on_points,
           proposal=_fitted(lambda dim, scale: DiagonalGaussian(jnp.zeros(dim), scale))),
    Recipe("defensive", "the fitted Gaussian mixed with the broad one at weight 0.1", _on_points,
           proposal=_defensive),
    Recipe("flow", "a spline coupling flow fitted by annealed reverse KL to the energy alone", _on_points,
           proposal=_flow),
    Recipe("flow-data", "the flow fitted by maximum likelihood to 20 000 exact draws: mass-covering by construction",
           lambda problem: _on_points(problem) and _has_exact_sampler(problem), proposal=_flow_data),
    Recipe("soft-optimal", "the exact action conditional of the target's costs as a policy",
           lambda problem: problem is not None and not _on_points(problem) and has_soft_optimal(problem.space),
           proposal=lambda key, target, problem, **_: soft_optimal(problem.space, problem, target.params)),
    Recipe("policy", "the broad policy fitted by reverse KL (score-function gradient on a grid, pathwise through "
           "the dynamics on a linear system)", lambda problem: problem is not None and not _on_points(problem),
           proposal=_policy),
    Recipe("cloned", "a sampler fitted to the demonstrations and then fixed (behaviour cloning for a policy, maximum "
           "likelihood for a flow on points)", _everywhere,
           row=lambda context: (warm_start(context.problem.space, context.key("cloned"), context.data, epochs=50),
                                Importance())),
    Recipe("gcl", "the sampler trained by guided cost learning alongside the cost (the paper's sampler step), then "
           "fixed", _everywhere,
           row=lambda context: (context.trained("gcl"), Importance())),
    Recipe("gan", "the sampler trained as the GAN form's generator alongside the cost, then fixed", _everywhere,
           row=lambda context: (context.trained("gan"), Importance())),
    Recipe("gcl-follow", "a proposal that follows θ, built from the gcl row's posterior (the pilot): on trajectories "
           "the gcl sampler refitted by reverse KL at anchors spread over it (on a tabular problem by the exact "
           "gradient), mixed with the balance heuristic, its components the control variates of the estimate (MIS "
           "with control variates, Owen & Zhou 2000; ESS is then that of the controlled weights); on points a "
           "θ-conditional flow q(x|θ) fitted over it, its draws moving with θ, mixed with the broad proposal (weight "
           "0.1, its draws fixed) so that no weight is unbounded where the flow extrapolates", _everywhere,
           row=_follow_row("gcl")),
    Recipe("gan-follow", "a proposal that follows θ, built the same way from the gan row's posterior (the gan "
           "sampler refitted at anchors on trajectories, a θ-conditional flow on points)", _everywhere,
           row=_follow_row("gan")),
)
RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in _RECIPES}
"""Every proposal name, in the order help and reports list them."""


def proposal_names(problem=None) -> tuple[str, ...]:
    """The names that build a proposal for ``problem``'s target (``logz``, ``identities``); ``None``: a bare
    target of points with an exact sampler."""
    return tuple(name for name, recipe in RECIPES.items() if recipe.proposal is not None and recipe.applies(problem))


def compare_names(problem) -> tuple[str, ...]:
    """The names that make a row of ``compare`` on ``problem``."""
    return tuple(name for name, recipe in RECIPES.items() if recipe.row is not None and recipe.applies(problem))


def make_proposal(
    name: str,
    key: jax.Array,
    target: Unnormalized,
    *,
    problem=None,
    scale: float | None = None,
    steps: int | None = None,
    progress: bool = False,
) -> Proposal:
    """Build the named proposal for ``target`` (``problem``: the problem it comes from, which decides the
    names that apply; ``None``: points in R^d); the error lists the valid names. ``scale``: the broad
    Gaussian's standard deviation on points (``None``: the space's own,
    :attr:`~maxent_gan.models.spaces.Points.broad_scale`, or 2 without a problem), which the fitted Gaussians
    start from; ``steps``: the fit's steps (epochs for ``flow-data``), ``None`` each recipe's own."""
    names = proposal_names(problem)
    if name not in names:
        kind = f" for {problem.name}" if problem is not None else ""
        raise ValueError(f"proposal: unknown name {name!r}{kind}; valid: {', '.join(names)}")
    if scale is None:
        scale = problem.space.broad_scale if problem is not None and isinstance(problem.space, Points) else 2.0
    if not scale > 0:
        raise ValueError(f"scale: expected a positive broad-proposal scale, got {scale!r}")
    return RECIPES[name].proposal(key, target, problem, scale=scale, steps=steps, progress=progress)
