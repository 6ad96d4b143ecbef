"""MaxEnt IRL problems as NumPyro models: a prior on θ, demonstrations observed through
:class:`Unnormalized` with the dynamics as base measure (DESIGN.md §1, §2).

Demonstrations are exact draws from :math:`p_{\\theta^*}(\\tau) \\propto \\nu(\\tau)e^{-c_{\\theta^*}(\\tau)}`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

from models import lqr
from models.gridworld import MDP, gridworld, linear_costs
from models.pointmass import PointMass, pointmass_cost
from models.tabular import as_transitions, check_positive_int, log_partition, sample_trajectories, trajectory_cost
from models.trajectory import TrajectoryLayout
from models.unnormalized import Unnormalized

__all__ = ["GRIDWORLD_THETA", "LQR_THETA", "IRLSpec", "check_mdp", "gridworld_spec", "irl_model", "lqr_spec",
           "pointmass_spec", "tabular_spec"]

# goal, obstacle, distance, move: a reward at the goal, costly obstacles, a pull toward the goal, effort
GRIDWORLD_THETA = (-1.0, 4.0, 3.0, 0.3)
# log of the diagonal of Q (position, velocity) and of R (force)
LQR_THETA = (0.0, -1.0, -0.5)


class IRLSpec(NamedTuple):
    """What an IRL problem adds to a :class:`~models.problems.Problem`.

    ``cost_fn(θ, x) -> (n,)`` on packed trajectories; ``log_partition_fn(θ)`` the exact log Z
    (``None`` when intractable); ``cost_table(θ) -> (S, A)`` for tabular problems (metrics,
    heat maps), else ``None``; ``system`` the MDP or linear system.
    """

    layout: TrajectoryLayout
    cost_fn: Callable[[Any, jax.Array], jax.Array]
    log_partition_fn: Callable[[Any], jax.Array] | None
    sampler: Callable[[jax.Array, Any, int], jax.Array] | None
    cost_table: Callable[[Any], jax.Array] | None
    system: Any
    theta_names: tuple[str, ...]
    kind: str = "tabular"  # or "lqr", "pointmass"
    matrices: Callable[[Any], tuple[jax.Array, jax.Array]] | None = None  # LQR: θ -> (Q, R)
    theta_descriptions: tuple[str, ...] | None = None  # one phrase per weight, for reports

    def target(self, theta) -> Unnormalized:
        """:math:`p_\\theta` as an :class:`Unnormalized` over packed trajectories, relative to the dynamics."""
        tabular = self.layout.state_dim == 0
        return Unnormalized(
            self.cost_fn, theta, event_shape=(self.layout.size,),
            log_normalizer=None if self.log_partition_fn is None else self.log_partition_fn(theta),
            sampler=None if self.sampler is None else (lambda key, params, shape: self.sampler(key, params, shape[0])),
            base_measure="dynamics",
            support=constraints.independent(constraints.nonnegative_integer, 1) if tabular else constraints.real_vector,
        )


def tabular_spec(mdp: MDP) -> IRLSpec:
    """The IRL pieces of any tabular MDP with linear costs; checks the MDP first (the errors say
    which state, action or feature is wrong)."""
    mdp = check_mdp(mdp)
    layout = TrajectoryLayout(mdp.horizon)

    def cost_table(theta):
        return linear_costs(theta, mdp.features)

    def cost_fn(theta, x):
        states, actions = layout.unpack(x)
        return trajectory_cost(cost_table(theta), states, actions)

    def log_partition_fn(theta):
        return log_partition(cost_table(theta), mdp.transitions, mdp.initial, mdp.horizon)

    def sampler(key, theta, n):
        states, actions = sample_trajectories(key, cost_table(theta), mdp.transitions, mdp.initial, mdp.horizon, n)
        return layout.pack(states, actions)

    return IRLSpec(layout, cost_fn, log_partition_fn, sampler, cost_table, mdp, mdp.feature_names,
                   theta_descriptions=mdp.feature_descriptions)


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


def gridworld_spec(size: int = 8, *, horizon: int = 20, slip: float = 0.1) -> IRLSpec:
    """The default gridworld: start top-left, goal bottom-right, a wall across the middle."""
    return tabular_spec(gridworld(size, horizon=horizon, slip=slip))


def lqr_spec(*, horizon: int = 20, dt: float = 0.1, noise: float = 0.05) -> IRLSpec:
    """A double integrator (position, velocity; force), started near position 2 at rest.

    θ = (log Q₁₁, log Q₂₂, log R): :math:`c_\\theta(x, u) = \\tfrac12(x^\\top Q_\\theta x + u^\\top R_\\theta u)`,
    diagonal and positive by construction (so Z(θ) is finite for every θ).
    """
    dtype = jnp.zeros(()).dtype
    A = jnp.array([[1.0, dt], [0.0, 1.0]], dtype)
    B = jnp.array([[0.0], [dt]], dtype)
    W = noise**2 * jnp.eye(2, dtype=dtype)
    m0, S0 = jnp.array([2.0, 0.0], dtype), 0.1 * jnp.eye(2, dtype=dtype)
    layout = TrajectoryLayout(horizon, 2, 1)

    def matrices(theta):
        return jnp.diag(jnp.exp(theta[:2])), jnp.diag(jnp.exp(theta[2:]))

    def cost_fn(theta, x):
        Q, R = matrices(theta)
        return lqr.lqr_cost(Q, R, *layout.unpack(x))

    def log_partition_fn(theta):
        Q, R = matrices(theta)
        return lqr.log_partition(A, B, Q, R, W, m0, S0, horizon)

    def sampler(key, theta, n):
        Q, R = matrices(theta)
        return layout.pack(*lqr.sample_trajectories(key, A, B, Q, R, W, m0, S0, horizon, n))

    system = lqr.LQR(A, B, None, None, W, m0, S0, horizon)
    return IRLSpec(layout, cost_fn, log_partition_fn, sampler, None, system,
                   ("log_q_position", "log_q_velocity", "log_r_force"), kind="lqr", matrices=matrices,
                   theta_descriptions=("log of the quadratic cost on the position (Q)",
                                       "log of the quadratic cost on the velocity (Q)",
                                       "log of the quadratic cost on the force (R)"))


def pointmass_spec(task: PointMass | None = None) -> IRLSpec:
    """The point-mass navigation task (``models.pointmass``): no exact log Z and no exact sampler;
    demonstrations come from NUTS (``pointmass_demonstrations``)."""
    task = PointMass() if task is None else task
    layout = task.layout

    def cost_fn(theta, x):
        return pointmass_cost(task, theta, *layout.unpack(x))

    return IRLSpec(layout, cost_fn, None, None, None, task, ("goal", "obstacle", "log_effort"), kind="pointmass",
                   theta_descriptions=("pull toward the goal", "penalty for passing near an obstacle",
                                       "log of the cost on the applied force"))


def irl_model(demos: jax.Array | None = None, *, spec: IRLSpec, prior_scale: float = 2.0, num_demos: int | None = None):
    """:math:`\\theta \\sim N(0, s^2 I)`; each demonstration :math:`\\tau_i \\sim e^{-c_\\theta(\\tau)}\\nu(\\tau)/Z(\\theta)`."""
    num_theta = len(spec.theta_names)
    theta = numpyro.sample("theta", dist.Normal(jnp.zeros(num_theta), prior_scale).to_event(1))
    num_demos = num_demos if demos is None else demos.shape[0]
    with numpyro.plate("demos", num_demos):
        numpyro.sample("tau", spec.target(theta), obs=demos)

