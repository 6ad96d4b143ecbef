"""MaxEnt IRL problems as NumPyro models: a prior on θ, demonstrations observed through
:class:`Unnormalized` with the dynamics as base measure.

Demonstrations are exact draws from :math:`p_{\\theta^*}(\\tau) \\propto \\nu(\\tau)e^{-c_{\\theta^*}(\\tau)}`.
The gridworld, the LQR and the point mass are built here; a user's own tabular MDP goes through
:func:`tabular_family` too (``maxent_gan.models.builders.tabular_problem``).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from maxent_gan.models import lqr
from maxent_gan.models.gridworld import MDP, gridworld
from maxent_gan.models.pointmass import POINTMASS_THETA, PointMass, pointmass_cost, pointmass_demonstrations
from maxent_gan.models.problem import CostFamily, Problem, draws_data
from maxent_gan.models.spaces import LinearGaussianTrajectories, SimulatorTrajectories, TabularTrajectories
from maxent_gan.models.tabular import (
    as_transitions,
    check_positive_int,
    feature_counts,
    log_partition,
    sample_trajectories,
)

__all__ = ["GRIDWORLD_THETA", "LQR_THETA", "check_mdp", "gridworld_problem", "irl_model", "lqr_family",
           "lqr_problem", "pointmass_problem", "tabular_family"]

# goal, obstacle, distance, move: a reward at the goal, costly obstacles, a pull toward the goal, effort
GRIDWORLD_THETA = (-1.0, 4.0, 3.0, 0.3)
# log of the diagonal of Q (position, velocity) and of R (force)
LQR_THETA = (0.0, -1.0, -0.5)
PRIOR_SCALE = 2.0  # θ ~ N(0, 2² I) for every linear-cost IRL problem


def irl_model(demos: jax.Array | None = None, *, family: CostFamily, space, prior_scale: float = PRIOR_SCALE,
              num_demos: int | None = None):
    """:math:`\\theta \\sim N(0, s^2 I)`; each demonstration :math:`\\tau_i \\sim e^{-c_\\theta(\\tau)}\\nu(\\tau)/Z(\\theta)`."""
    num_theta = len(family.theta_names)
    theta = numpyro.sample("theta", dist.Normal(jnp.zeros(num_theta), prior_scale).to_event(1))
    num_demos = num_demos if demos is None else demos.shape[0]
    with numpyro.plate("demos", num_demos):
        numpyro.sample("tau", family.target(theta, space), obs=demos)


def _with_model(family: CostFamily, space, prior_scale: float) -> CostFamily:
    # the model reads the family's target only, so the family it closes over needs no model itself
    return family._replace(model=partial(irl_model, family=family, space=space, prior_scale=prior_scale))


def tabular_family(mdp: MDP, *, theta_true=None, prior_scale: float = PRIOR_SCALE
                   ) -> tuple[TabularTrajectories, CostFamily]:
    """The sample space and linear-cost family of any tabular MDP; checks the MDP first (the errors say
    which state, action or feature is wrong). Exact log Z(θ) and exact draws of :math:`p_\\theta`."""
    mdp = check_mdp(mdp)
    space = TabularTrajectories(mdp)
    layout = space.layout

    features = jnp.asarray(mdp.features)

    def cost_fn(theta, x):
        # the feature counts of each trajectory times θ: linear in θ, so under NUTS (a loop over θ at fixed
        # proposal draws) XLA computes the draws' counts once, outside the loop, and each step is one
        # matrix-vector product (the gathered form, a cost table indexed at every step, did the gather and
        # its scatter-add gradient at every leapfrog step: 7x slower on the gridworld at 16 000 draws)
        return feature_counts(features, *layout.unpack(x)) @ theta

    def log_partition_fn(theta):
        return log_partition(space.cost_table(theta), mdp.transitions, mdp.initial, mdp.horizon)

    def sampler(key, theta, n):
        states, actions = sample_trajectories(key, space.cost_table(theta), mdp.transitions, mdp.initial,
                                              mdp.horizon, n)
        return layout.pack(states, actions)

    dtype = jnp.zeros(()).dtype
    family = CostFamily(cost_fn, None, jnp.zeros(len(mdp.feature_names), dtype), tuple(mdp.feature_names),
                        theta_true=None if theta_true is None else jnp.asarray(theta_true, dtype),
                        log_partition_fn=log_partition_fn, sampler=sampler,
                        theta_descriptions=mdp.feature_descriptions)
    return space, _with_model(family, space, prior_scale)


def check_mdp(mdp: MDP) -> MDP:
    """Transitions rows sum to 1, ``initial`` is a distribution, features are finite ``(S, A, F)``;
    returns the MDP with its transitions sparse (a dense (S, A, S) array is converted once, here)."""
    transitions = as_transitions(mdp.transitions)
    features = np.asarray(mdp.features)
    expected = (transitions.num_states, transitions.num_actions, len(mdp.feature_names))
    if features.shape != expected:
        raise ValueError(f"features: expected shape (S, A, F) = {expected}, got {features.shape}")
    bad = ~np.isfinite(features)
    if bad.any():
        s, a, f = np.argwhere(bad)[0]
        raise ValueError(f"features: {int(bad.sum())} non-finite value(s); first at state {s}, action {a}, "
                         f"feature {mdp.feature_names[f]!r}")
    initial = np.asarray(mdp.initial)
    if initial.shape != (transitions.num_states,) or np.any(initial < 0) or abs(initial.sum() - 1.0) > 1e-6:
        raise ValueError(f"initial: expected {transitions.num_states} probabilities that sum to 1")
    return mdp._replace(transitions=transitions, horizon=check_positive_int("horizon", mdp.horizon))


def _demonstrated(name: str, space, family: CostFamily) -> Problem:
    # a problem whose demonstrations are exact draws of p_θ*
    target = family.target(family.theta_true, space)
    return Problem(name, space, target, family.theta_true, draws_data(target), family)


def gridworld_problem(size: int = 8, *, horizon: int = 20, slip: float = 0.1) -> Problem:
    """The default gridworld: start top-left, goal bottom-right, a wall across the middle; θ* = GRIDWORLD_THETA."""
    space, family = tabular_family(gridworld(size, horizon=horizon, slip=slip), theta_true=GRIDWORLD_THETA)
    return _demonstrated("gridworld", space, family)


def lqr_family(*, horizon: int = 20, dt: float = 0.1, noise: float = 0.05
               ) -> tuple[LinearGaussianTrajectories, CostFamily]:
    """A double integrator (position, velocity; force), started near position 2 at rest.

    θ = (log Q₁₁, log Q₂₂, log R): :math:`c_\\theta(x, u) = \\tfrac12(x^\\top Q_\\theta x + u^\\top R_\\theta u)`,
    diagonal and positive by construction (so Z(θ) is finite for every θ).
    """
    dtype = jnp.zeros(()).dtype
    A = jnp.array([[1.0, dt], [0.0, 1.0]], dtype)
    B = jnp.array([[0.0], [dt]], dtype)
    W = noise**2 * jnp.eye(2, dtype=dtype)
    m0, S0 = jnp.array([2.0, 0.0], dtype), 0.1 * jnp.eye(2, dtype=dtype)

    def matrices(theta):
        return jnp.diag(jnp.exp(theta[:2])), jnp.diag(jnp.exp(theta[2:]))

    space = LinearGaussianTrajectories(lqr.LQR(A, B, None, None, W, m0, S0, horizon), matrices)
    layout = space.layout

    def cost_fn(theta, x):
        # linear in exp(θ) (the statistics are computed once at fixed draws, as for the tabular family)
        return lqr.quadratic_statistics(*layout.unpack(x)) @ jnp.exp(theta)

    def log_partition_fn(theta):
        Q, R = matrices(theta)
        return lqr.log_partition(A, B, Q, R, W, m0, S0, horizon)

    def sampler(key, theta, n):
        Q, R = matrices(theta)
        return layout.pack(*lqr.sample_trajectories(key, A, B, Q, R, W, m0, S0, horizon, n))

    family = CostFamily(cost_fn, None, jnp.zeros(3, dtype), ("log_q_position", "log_q_velocity", "log_r_force"),
                        theta_true=jnp.asarray(LQR_THETA, dtype), log_partition_fn=log_partition_fn,
                        sampler=sampler,
                        theta_descriptions=("log of the quadratic cost on the position (Q)",
                                            "log of the quadratic cost on the velocity (Q)",
                                            "log of the quadratic cost on the force (R)"))
    return space, _with_model(family, space, PRIOR_SCALE)


def lqr_problem(**system) -> Problem:
    """The LQR problem (:func:`lqr_family`): exact log Z by Riccati recursion, exact draws."""
    return _demonstrated("lqr", *lqr_family(**system))


def pointmass_problem(task: PointMass | None = None) -> Problem:
    """The point-mass navigation task (``maxent_gan.models.pointmass``): no exact log Z and no exact sampler;
    demonstrations come from NUTS (``pointmass_demonstrations``)."""
    task = PointMass() if task is None else task
    space = SimulatorTrajectories(task.dynamics, task.decorate)
    layout = space.layout
    dtype = jnp.zeros(()).dtype

    def cost_fn(theta, x):
        return pointmass_cost(task, theta, *layout.unpack(x))

    theta_true = jnp.asarray(POINTMASS_THETA, dtype)
    family = _with_model(CostFamily(cost_fn, None, jnp.zeros(3, dtype), ("goal", "obstacle", "log_effort"),
                                    theta_true=theta_true,
                                    theta_descriptions=("pull toward the goal", "penalty for passing near an obstacle",
                                                        "log of the cost on the applied force")),
                         space, PRIOR_SCALE)

    def data(key, n_train, n_test):
        # NUTS draws (no exact sampler exists), split into training and held-out demonstrations;
        # NUTS is the cost here, so at most 500 are held out
        n_test = min(n_test, 500)
        demos = pointmass_demonstrations(key, task, theta_true, n_train + n_test)
        return demos[:n_train], demos[n_train:]

    return Problem("pointmass", space, family.target(theta_true, space), theta_true, data, family)
