"""What inference does with a problem, chosen by the type of its sample space (``maxent_gan.models.spaces``),
never by its name: the broad proposal, the sampler's warm start, the soft-optimal policy, the
samplers' learning rates and the metrics of a learned cost.

Each recipe is a :func:`functools.singledispatch` function of the space; a new sample space
registers its own (``@broad_proposal.register``) without touching the rest of the library.
"""

from __future__ import annotations

from functools import singledispatch
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from maxent_gan.inference.irl import behaviour_cloning, linear_gaussian_cloning
from maxent_gan.inference.metrics import (
    cost_correlation,
    epic_distance,
    epic_distance_samples,
    expected_value_difference,
)
from maxent_gan.inference.proposals.base import Proposal
from maxent_gan.inference.proposals.conditional import DEFENSIVE_WEIGHT, ConditionalFlow, DefensiveConditional
from maxent_gan.inference.proposals.flow import Flow
from maxent_gan.inference.proposals.gaussian import Gaussian
from maxent_gan.inference.proposals.policy import LinearGaussianPolicy, MLPGaussianPolicy, TabularPolicy
from maxent_gan.inference.sampler import (
    box_anchors,
    fit_at_anchors,
    fit_conditional,
    fit_to_data,
    proposal_optimizer,
    sigma_anchors,
)
from maxent_gan.models.problem import Problem
from maxent_gan.models.spaces import LinearGaussianTrajectories, Points, SimulatorTrajectories, TabularTrajectories
from maxent_gan.models.tabular import check_trajectories

__all__ = ["DEFENSIVE_WEIGHT", "FOLLOW_SPREAD", "POINT_RATES", "FlowArchitecture", "SamplerRates", "broad_proposal",
           "check_in_space", "cost_metrics", "data_flow", "flow_architecture", "follow_theta", "has_soft_optimal",
           "sampler_rates", "simulator_epic", "soft_optimal", "warm_start"]


class SamplerRates(NamedTuple):
    """Adam's rate for a space's sampler: ``fit`` from the broad start by reverse KL (the ``policy`` /
    ``gaussian`` proposals), ``train`` alongside the cost (``None``: the cost's own rate), ``refit``
    at the anchors of a θ-following sampler."""

    fit: float
    train: float | None
    refit: float


@singledispatch
def sampler_rates(space) -> SamplerRates:
    raise TypeError(f"space: no sampler recipe for {type(space).__name__}")


POINT_RATES = SamplerRates(fit=2e-3, train=1e-3, refit=1e-3)  # flows: small steps


@sampler_rates.register
def _(space: Points) -> SamplerRates:
    return POINT_RATES


@sampler_rates.register
def _(space: TabularTrajectories) -> SamplerRates:
    return SamplerRates(fit=0.1, train=None, refit=0.02)  # logits: large steps


@sampler_rates.register
def _(space: LinearGaussianTrajectories) -> SamplerRates:
    return SamplerRates(fit=1e-2, train=None, refit=0.02)


@sampler_rates.register
def _(space: SimulatorTrajectories) -> SamplerRates:
    return SamplerRates(fit=3e-3, train=None, refit=0.02)  # a network policy


CONDITIONAL_RATE = 3e-3  # Adam's rate for a conditional flow fitted from scratch
FOLLOW_SPREAD = 1.5  # the θ pool (or the anchors' sigma points) spread this much about the pilot's mean
BOX_HALF_WIDTH = 3.0  # anchors at the corners of the box ±3 pilot sd along its principal axes ...
BOX_MAX_DIM = 5  # ... up to 2^5 + 1 = 33 anchors; more cost weights than this: sigma points
# the tabular refit along the exact gradient (follow_theta): 0.05 reached KL 1e-4 nats in 500 steps on the
# gridworld, 0.02 left 9e-4; the score-function refit keeps the space's own refit rate
EXACT_REFIT_RATE = 0.05


@singledispatch
def follow_theta(space, key: jax.Array, proposal, cost_fn, draws, *, unflatten, steps: int, rate: float,
                 cost_table=None):
    """A proposal that follows θ, built from a pilot posterior's draws ``draws`` (``(n, k)``, θ flattened;
    ``unflatten`` maps rows back to the model's sites, ``cost_fn(sites, x)`` the family's cost;
    ``cost_table(sites)`` the ``(S, A)`` costs where the space has them, tabular spaces).

    On trajectory spaces (the default): anchors over the pilot, the trained sampler ``proposal``
    refitted at each by reverse KL (:func:`~maxent_gan.inference.sampler.fit_at_anchors`), mixed with the balance
    heuristic (estimate it with ``"mis-cv"``: the components are then control variates too). The
    anchors are the mean and the corners of the box ±:data:`BOX_HALF_WIDTH` pilot sd along its
    principal axes (:func:`~maxent_gan.inference.sampler.box_anchors`: every θ inside their hull has bounded
    weights) for up to :data:`BOX_MAX_DIM` cost weights, else the ``2k + 1`` sigma points spread
    :data:`FOLLOW_SPREAD`. On the default gridworld (seed 0, the exact posterior's draws as the pilot,
    16 000 draws, k-hat at 200 posterior draws) the sigma points left k-hat above 0.7 at 12 % of them
    (26 % beyond 2.5 sd), the box at ±2 sd at 12.5 %, at ±3 sd at 4.5 %.
    """
    return _fit_at_anchors(key, proposal, cost_fn, draws, unflatten=unflatten, steps=steps, rate=rate)


def _fit_at_anchors(key, proposal, cost_fn, draws, *, unflatten, steps, rate, expected_loss=None):
    mean, covariance = draws.mean(0), jnp.atleast_2d(jnp.cov(draws.T))
    anchors = (box_anchors(mean, covariance, half_width=BOX_HALF_WIDTH) if draws.shape[1] <= BOX_MAX_DIM
               else sigma_anchors(mean, covariance, spread=FOLLOW_SPREAD))
    return fit_at_anchors(key, proposal, cost_fn, unflatten(anchors), steps=steps,
                          optimizer=proposal_optimizer(rate, steps), progress=False,
                          expected_loss=expected_loss).proposal


@follow_theta.register
def _(space: TabularTrajectories, key, proposal, cost_fn, draws, *, unflatten, steps, rate, cost_table=None):
    """On a tabular space, as on other trajectory spaces, but where ``cost_table`` is given and the
    sampler is a :class:`~maxent_gan.inference.proposals.TabularPolicy` each anchor's refit follows the exact
    gradient of the reverse KL (:meth:`~maxent_gan.inference.proposals.TabularPolicy.expected_loss`, possible on
    the known dynamics of a tabular problem), not a score-function estimate from draws. On the default
    gridworld (seed 0, the GCL sampler refitted at its own θ̂ for 500 steps) the estimate from draws left
    KL(q‖p_θ) at 0.078 nats and k̂ 0.64 (forward k̂ 0.64); the exact gradient reached 1e-4 nats."""
    expected_loss = None
    if cost_table is not None and isinstance(proposal, TabularPolicy):
        def expected_loss(q, sites):
            return q.expected_loss(cost_table(sites))
        rate = EXACT_REFIT_RATE
    return _fit_at_anchors(key, proposal, cost_fn, draws, unflatten=unflatten, steps=steps, rate=rate,
                                 expected_loss=expected_loss)


@follow_theta.register
def _(space: Points, key, proposal, cost_fn, draws, *, unflatten, steps, rate, cost_table=None):
    """On points: a :class:`~maxent_gan.inference.proposals.conditional.ConditionalFlow` q(x|θ) fitted by reverse KL
    over the pilot's draws spread :data:`FOLLOW_SPREAD` about their mean (the trained sampler is not
    reused: its flow has no condition), reading θ standardized by that pool and bounded
    (:meth:`~maxent_gan.inference.proposals.conditional.ConditionalFlow.bounded_to`: it saturates outside the pool
    instead of extrapolating), then mixed with the space's broad proposal at weight
    :data:`DEFENSIVE_WEIGHT` (:class:`~maxent_gan.inference.proposals.conditional.DefensiveConditional`: where the
    flow misses mass of :math:`p_\\theta`, the broad part bounds every weight).
    NUTS then moves the flow's draws with θ (common random numbers); the broad draws stay fixed."""
    mean = draws.mean(0)
    key_init, key_fit = jax.random.split(key)
    pool = unflatten(mean + FOLLOW_SPREAD * (draws - mean))
    architecture = flow_architecture(space.dim, fit="conditional")
    flow = ConditionalFlow.coupling(key_init, space.dim, draws.shape[1], **architecture._asdict()).bounded_to(pool)
    flow = fit_conditional(key_fit, flow, cost_fn, pool,
                           steps=steps, num_draws=128, optimizer=proposal_optimizer(CONDITIONAL_RATE, steps),
                           progress=False).proposal
    return DefensiveConditional(flow, broad_proposal(space, jax.random.fold_in(key, 2)), DEFENSIVE_WEIGHT)


@singledispatch
def broad_proposal(space, key: jax.Array, *, tilted: bool = False) -> Proposal:
    """The broad proposal of a space, fixed before seeing any data: a wide Gaussian on points (standard
    deviation :attr:`~maxent_gan.models.spaces.Points.broad_scale`: the problem's own scale, else a quarter
    of the quadrature box, else 2), uniform actions on a tabular MDP (``tilted``: with transition
    tilts to learn, the family that contains :math:`p_\\theta`), N(0, I) forces on a linear system
    (``tilted``: with its transitions' mean, map and noise to learn, at the dynamics' own),
    an MLP Gaussian policy initialized from ``key`` that starts there on a simulator."""
    raise TypeError(f"space: no broad proposal for {type(space).__name__}")


@broad_proposal.register
def _(space: Points, key, *, tilted=False):
    return Gaussian.isotropic(space.dim, space.broad_scale)


@broad_proposal.register
def _(space: TabularTrajectories, key, *, tilted=False):
    mdp = space.mdp
    return TabularPolicy.uniform(mdp.transitions, mdp.initial, mdp.horizon, tilted=tilted)


@broad_proposal.register
def _(space: LinearGaussianTrajectories, key, *, tilted=False):
    return LinearGaussianPolicy.broad(space.dynamics, space.horizon, tilted=tilted)


@broad_proposal.register
def _(space: SimulatorTrajectories, key, *, tilted=False):
    return MLPGaussianPolicy(key, space.dynamics)


class FlowArchitecture(NamedTuple):
    """The sizes of a spline coupling flow (the keywords of :meth:`Flow.coupling`)."""

    layers: int = 8
    knots: int = 8
    width: int = 64
    interval: float = 5.0
    base_scale: float = 1.0


def flow_architecture(dim: int, *, fit: str, scale: float = 1.0, data: jax.Array | None = None) -> FlowArchitecture:
    """The one place the library sizes a flow, by what it is fitted to:

    - ``fit="energy"``, reverse KL to an energy alone (the ``flow`` proposal): base N(0, scale² I), splines
      on ±3 scale; in 2-D 4 layers of width 32 and 6 knots (``benchmarks/flow_settings.py``: as accurate on
      the toys as 8 layers of width 64, and twice as many steps per second), above 8 layers of width 64,
      8 knots (the settings ``benchmarks/standard_targets.py`` runs).
    - ``fit="data"``, maximum likelihood of ``data`` (the sampler's warm start, ``flow-data``): base N(0, I),
      splines on ±(max |x| + 1) so every data point is inside them, 8 layers in 2-D and 6 above.
    - ``fit="conditional"``, a θ-conditional flow fitted over a pool of θ's (the θ-following sampler on
      points): 4 layers of width 32, 6 knots (it is refitted for every posterior; the 2-D families of
      ``benchmarks/conditional.py``).
    """
    if fit == "energy":
        small = dict(layers=4, width=32, knots=6) if dim <= 2 else {}
        return FlowArchitecture(interval=3 * scale, base_scale=scale, **small)
    if fit == "data":
        if data is None:
            raise ValueError("data: a flow fitted to data is sized by the data; pass it")
        return FlowArchitecture(layers=8 if dim == 2 else 6, interval=float(jnp.max(jnp.abs(data))) + 1.0)
    if fit == "conditional":
        return FlowArchitecture(layers=4, knots=6, width=32)
    raise ValueError(f"fit: expected 'energy', 'data' or 'conditional', got {fit!r}")


def data_flow(key_init: jax.Array, key_fit: jax.Array, data: jax.Array, *, max_epochs: int = 100,
              learning_rate: float = 1e-3, progress: bool = False) -> Flow:
    """A spline coupling flow fitted to ``data`` by maximum likelihood: the sampler's warm start on points."""
    dim = data.shape[-1]
    flow = Flow.coupling(key_init, dim, **flow_architecture(dim, fit="data", data=data)._asdict())
    return fit_to_data(key_fit, flow, data, max_epochs=max_epochs, learning_rate=learning_rate,
                       progress=progress).proposal


@singledispatch
def warm_start(space, key: jax.Array, data: jax.Array, *, tilted: bool = False, epochs: int = 100,
               progress: bool = False) -> Proposal:
    """The sampler's start, fitted to the data: a spline flow by maximum likelihood (points, ``epochs``),
    behaviour cloning in closed form (tabular: counts; linear systems: least squares), or by gradient
    (a simulator's network policy). ``tilted``: see :func:`broad_proposal` (a grid's tilts start at
    zero; a linear system's are fitted by least squares of each next state on the dynamics' mean)."""
    raise TypeError(f"space: no warm start for {type(space).__name__}")


@warm_start.register
def _(space: Points, key, data, *, tilted=False, epochs=100, progress=False):
    key_init, key_fit = jax.random.split(key)
    return data_flow(key_init, key_fit, data, max_epochs=epochs, progress=progress)


@warm_start.register
def _(space: TabularTrajectories, key, data, *, tilted=False, epochs=100, progress=False):
    return behaviour_cloning(broad_proposal(space, key, tilted=tilted), data)


@warm_start.register
def _(space: LinearGaussianTrajectories, key, data, *, tilted=False, epochs=100, progress=False):
    return linear_gaussian_cloning(broad_proposal(space, key, tilted=tilted), data)


@warm_start.register
def _(space: SimulatorTrajectories, key, data, *, tilted=False, epochs=100, progress=False):
    key_init, key_fit = jax.random.split(key)
    # behaviour cloning by gradient: every demonstration in each step, every step kept
    return fit_to_data(key_fit, broad_proposal(space, key_init), data, max_epochs=300, learning_rate=3e-3,
                       validation=0.0).proposal


@singledispatch
def soft_optimal(space, problem: Problem, theta, *, tilted: bool = False) -> Proposal:
    """The exact action conditional of :math:`p_\\theta` as a policy (a proposal that moves
    with θ); ``tilted`` (tabular or linear systems): with the transition tilts too, i.e. :math:`p_\\theta` itself."""
    raise ValueError(f"problem: {problem.name} has no soft-optimal policy (its sample space is "
                     f"{type(space).__name__})")


@soft_optimal.register
def _(space: TabularTrajectories, problem, theta, *, tilted=False):
    mdp = space.mdp
    return TabularPolicy.soft_optimal(space.cost_table(theta), mdp.transitions, mdp.initial, mdp.horizon,
                                      tilted=tilted)


@soft_optimal.register
def _(space: LinearGaussianTrajectories, problem, theta, *, tilted=False):
    Q, R = space.matrices(theta)
    return LinearGaussianPolicy.soft_optimal(space.dynamics, Q, R, space.horizon, tilted=tilted)


def has_soft_optimal(space) -> bool:
    """Whether :func:`soft_optimal` has a recipe for this space."""
    return soft_optimal.dispatch(type(space)) is not soft_optimal.dispatch(object)


@singledispatch
def check_in_space(space, name: str, x: jax.Array) -> None:
    """Points that cannot lie in ``space`` are refused, the error naming ``name`` (tabular: state and
    action indices in range, the dynamics respected); other spaces take any finite row of the right length."""


@check_in_space.register
def _(space: TabularTrajectories, name, x):
    mdp = space.mdp
    try:
        check_trajectories(*space.layout.unpack(x), mdp.num_states, mdp.num_actions, mdp.horizon)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


@singledispatch
def cost_metrics(space, problem: Problem, theta, test: jax.Array) -> dict[str, Any]:
    """How close θ's cost is to θ*'s: the correlation of whole-trajectory (or point) costs over the held-out
    data; tabular spaces also EPIC and EVD, exactly over all (s, a). Empty without θ*."""
    family = problem.family
    if family is None or family.theta_true is None:
        return {}
    costs, true_costs = family.cost_fn(theta, test), family.cost_fn(family.theta_true, test)
    return {"epic": None, "evd": None, "cost_correlation": float(jnp.corrcoef(costs, true_costs)[0, 1])}


EPIC_TRANSITIONS = 2000  # held-out (s, a, s') the continuous EPIC is scored over ...
EPIC_COVERAGE = 256  # ... and the (state, action) pairs it canonicalizes with


def simulator_epic(space: SimulatorTrajectories, cost_a, cost_b, test: jax.Array) -> float:
    """EPIC distance between two per-step costs ``cost(states, actions, next_states) -> (n,)`` on a simulator,
    by Monte Carlo (:func:`~maxent_gan.inference.metrics.epic_distance_samples`) over up to
    :data:`EPIC_TRANSITIONS` transitions of the held-out trajectories ``test``, canonicalized with
    :data:`EPIC_COVERAGE` of their states and uniform actions on the box (their own actions where actions are
    unbounded). Fixed coverage draws (key 0): two costs compared on one test set always meet the same pairs."""
    states, actions = space.layout.unpack(test)
    s, a, s_next = (states[:, :-1].reshape(-1, states.shape[-1]), actions.reshape(-1, actions.shape[-1]),
                    states[:, 1:].reshape(-1, states.shape[-1]))
    key_pick, key_states, key_actions = jax.random.split(jax.random.key(0), 3)
    pick = jax.random.permutation(key_pick, s.shape[0])[:EPIC_TRANSITIONS]
    coverage = s[jax.random.choice(key_states, s.shape[0], (EPIC_COVERAGE,))]
    dynamics = space.dynamics
    if dynamics.bounded:
        centre, half = dynamics.action_box(s.dtype)
        coverage_actions = centre + half * jax.random.uniform(key_actions, (EPIC_COVERAGE, dynamics.action_dim),
                                                              s.dtype, -1.0, 1.0)
    else:
        coverage_actions = a[jax.random.choice(key_actions, a.shape[0], (EPIC_COVERAGE,))]
    return float(epic_distance_samples(cost_a, cost_b, (s[pick], a[pick], s_next[pick]), coverage, coverage_actions))


@cost_metrics.register
def _(space: SimulatorTrajectories, problem, theta, test):
    """On a simulator whose cost is linear in per-step features: EPIC (:func:`simulator_epic`) and the
    correlation of whole-trajectory costs over the held-out data."""
    metrics = cost_metrics.dispatch(object)(space, problem, theta, test)
    if not metrics or space.features is None:
        return metrics

    def step_cost(weights):
        return lambda states, actions, _: space.features(states, actions) @ weights

    metrics["epic"] = simulator_epic(space, step_cost(jnp.asarray(theta)), step_cost(problem.family.theta_true), test)
    return metrics


@cost_metrics.register
def _(space: TabularTrajectories, problem, theta, test):
    theta_true = problem.family.theta_true
    if theta_true is None:
        return {}
    mdp = space.mdp
    costs, true_costs = space.cost_table(theta), space.cost_table(theta_true)
    return {
        "epic": float(epic_distance(costs, true_costs, mdp.transitions)),
        "cost_correlation": float(cost_correlation(costs, true_costs)),
        "evd": float(expected_value_difference(costs, true_costs, mdp.transitions, mdp.initial, mdp.horizon)),
    }
