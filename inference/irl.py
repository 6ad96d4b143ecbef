"""MaxEnt IRL on the shared training machinery: the IRL pieces ``inference.ebm`` plugs in.

The cost is linear, :math:`c_\\theta(\\tau) = \\sum_t \\theta\\cdot\\phi(s_t, a_t)`, started at
θ = 0; the sampler is a policy warm-started by behaviour cloning on the demonstrations (the
IRL analogue of fitting the flow to the data); the rest (the three algorithms, the driver,
checkpoints) is the EBM code, unchanged.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from inference.metrics import cost_correlation, epic_distance, expected_value_difference
from inference.proposals.policy import TabularPolicy
from models.problems import Problem

__all__ = ["behaviour_cloning", "irl_metrics", "irl_setup"]

IRL_LEARNING_RATE = 0.05  # θ has a handful of entries: a larger step than a network's


def behaviour_cloning(policy: TabularPolicy, demos: jax.Array, *, pseudo_count: float = 1.0) -> TabularPolicy:
    """The maximum-likelihood time-varying policy of the demonstrations, smoothed by
    ``pseudo_count`` per action (closed form: log of the counts)."""
    states, actions = policy.layout.unpack(demos)
    horizon = policy.logits.shape[0]
    times = jnp.broadcast_to(jnp.arange(horizon), actions.shape)
    counts = jnp.zeros(policy.logits.shape, policy.logits.dtype).at[times, states[:, :-1], actions].add(1.0)
    return TabularPolicy(jnp.log(counts + pseudo_count), policy.transitions, policy.initial)


def irl_setup(problem: Problem, train: jax.Array) -> tuple[Any, Any]:
    """Initial θ (zeros) and the proposal: a tabular policy cloned from the demonstrations."""
    spec = problem.irl
    theta = jnp.zeros(len(spec.theta_names), jnp.zeros(()).dtype)
    mdp = spec.system
    uniform = TabularPolicy.uniform(mdp.transitions, mdp.initial, mdp.horizon)
    return theta, behaviour_cloning(uniform, train)


def irl_metrics(problem: Problem, theta: jax.Array) -> dict[str, float]:
    """EPIC, centered-cost correlation and EVD of θ against θ*, and the exact log Z at θ."""
    spec = problem.irl
    mdp = spec.system
    costs, true_costs = spec.cost_table(theta), spec.cost_table(problem.true_params)
    return {
        "epic": float(epic_distance(costs, true_costs, mdp.transitions)),
        "cost_correlation": float(cost_correlation(costs, true_costs)),
        "evd": float(expected_value_difference(costs, true_costs, mdp.transitions, mdp.initial, mdp.horizon)),
        "log_z_exact": float(spec.log_partition_fn(theta)),
    }
