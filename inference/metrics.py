"""How close is a learned cost to the true one (tabular problems)?

* :func:`cost_correlation`: Pearson correlation of :math:`c_\\theta(s,a)` and :math:`c^*(s,a)` over
  all pairs (centering removes the additive gauge).
* :func:`epic_distance`: EPIC (Gleave et al. 2021), the Pearson distance
  :math:`\\sqrt{(1-\\rho)/2}` of canonicalized costs, invariant to shaping and positive scale;
  :func:`epic_distance_samples` the same by Monte Carlo for continuous states and actions (any two
  rewards or costs :math:`R(s, a, s')`, a learned network as well as a linear cost).
* :func:`expected_value_difference`: EVD (Levine et al. 2011), the true expected cost of the
  optimal policy for the learned cost minus that of the optimal policy for the true cost.
* :func:`log_z_error`: learned or estimated log Z minus the exact one.

Written by hand (the ``imitation`` package's EPIC needs torch and gym environments).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from maxent_gan.models.tabular import Transitions, as_transitions

__all__ = ["cost_correlation", "epic_distance", "epic_distance_samples", "expected_value_difference", "log_z_error", "optimal_policy"]


def _pearson(x: jax.Array, y: jax.Array, weights: jax.Array) -> jax.Array:
    weights = weights / weights.sum()
    x = x - jnp.sum(weights * x)
    y = y - jnp.sum(weights * y)
    return jnp.sum(weights * x * y) / jnp.sqrt(jnp.sum(weights * x * x) * jnp.sum(weights * y * y))


def cost_correlation(costs: jax.Array, true_costs: jax.Array) -> jax.Array:
    """Pearson correlation of two ``(S, A)`` cost tables, uniform over pairs."""
    return _pearson(costs.ravel(), true_costs.ravel(), jnp.ones(costs.size, costs.dtype))


def _canonical(costs: jax.Array, transitions: Transitions, discount: float) -> jax.Array:
    # C(s,a,s') = R(s,a,s') + γ E[R(s',A,S')] - E[R(s,A,S')] - γ E[R(S,A,S')], S, S' and A uniform,
    # evaluated at the successors of each (s, a); a cost table c(s,a) is R(s,a,s') = c(s,a)
    if costs.ndim == 2:
        per_state, at_successors = costs.mean(axis=1), costs[..., None]
    else:
        per_state = costs.mean(axis=(1, 2))
        at_successors = jnp.take_along_axis(costs, transitions.successors, axis=-1)
    return at_successors + discount * per_state[transitions.successors] - per_state[:, None, None] - discount * costs.mean()


def epic_distance(
    costs: jax.Array, true_costs: jax.Array, transitions: Transitions | jax.Array, *, discount: float = 1.0
) -> jax.Array:
    """EPIC distance in [0, 1] between two costs, ``(S, A)`` tables or ``(S, A, S)`` transition costs;
    0 iff equal up to potential shaping and positive scale.

    Canonicalization with uniform states and actions; the Pearson distance over the coverage
    distribution ``s`` uniform, ``a`` uniform, ``s' ~ P(·|s,a)``.
    """
    transitions = as_transitions(transitions)
    weights = jnp.exp(transitions.log_probs).ravel()
    rho = _pearson(_canonical(costs, transitions, discount).ravel(),
                   _canonical(true_costs, transitions, discount).ravel(), weights)
    return jnp.sqrt(jnp.clip((1.0 - rho) / 2.0, 0.0, 1.0))


def epic_distance_samples(
    cost_a, cost_b, transitions: tuple[jax.Array, jax.Array, jax.Array], states: jax.Array, actions: jax.Array, *,
    discount: float = 1.0,
) -> jax.Array:
    """EPIC distance in [0, 1] between two costs (or rewards) ``cost(s, a, s') -> (n,)`` on continuous spaces, by
    Monte Carlo: canonicalized over the coverage distributions ``states`` ``(m, ds)`` (for S and S') and
    ``actions`` ``(m, da)`` (for A), paired row by row, then the Pearson distance over the coverage
    ``transitions`` ``(s (n, ds), a (n, da), s' (n, ds))``. 0 iff equal up to potential shaping and
    positive scale (up to the Monte Carlo error of the ``m`` pairs).

    :math:`C(R)(s,a,s') = R(s,a,s') + \\gamma E[R(s',A,S')] - E[R(s,A,S')] - \\gamma E[R(S,A,S')]`.
    """
    s, a, s_next = transitions
    m = states.shape[0]
    if actions.shape[0] != m:
        raise ValueError(f"actions: expected as many rows as states ({m}), got {actions.shape[0]}")

    def canonical(cost):
        def mean_from(x):  # E[R(x, A, S')] over the coverage pairs, for each row of x (one batched call:
            # the cost may be any function of arrays, a torch network's wrapper as well)
            n = x.shape[0]
            values = cost(jnp.repeat(x, m, axis=0), jnp.tile(actions, (n, 1)), jnp.tile(states, (n, 1)))
            return jnp.asarray(values).reshape(n, m).mean(1)

        overall = jnp.mean(cost(jnp.roll(states, 1, axis=0), actions, states))  # E[R(S, A, S')], S ⟂ S'
        return cost(s, a, s_next) + discount * mean_from(s_next) - mean_from(s) - discount * overall

    rho = _pearson(canonical(cost_a), canonical(cost_b), jnp.ones(s.shape[0], s.dtype))
    return jnp.sqrt(jnp.clip((1.0 - rho) / 2.0, 0.0, 1.0))


def _expected_next(values: jax.Array, transitions: Transitions) -> jax.Array:
    return jnp.sum(jnp.exp(transitions.log_probs) * values[transitions.successors], axis=-1)


def optimal_policy(costs: jax.Array, transitions: Transitions, horizon: int) -> jax.Array:
    """Greedy finite-horizon policy minimizing expected cost: actions ``(T, S)``, by backward induction."""

    def backward(values_next, _):
        q_values = costs + _expected_next(values_next, transitions)
        return q_values.min(axis=1), jnp.argmin(q_values, axis=1)

    _, actions = jax.lax.scan(backward, jnp.zeros(costs.shape[0], costs.dtype), None, length=horizon)
    return actions[::-1]


def _policy_cost(actions: jax.Array, costs: jax.Array, transitions: Transitions, initial: jax.Array) -> jax.Array:
    # forward state distribution under a deterministic time-varying policy, accumulating E[c]
    states = jnp.arange(costs.shape[0])

    def forward(distribution, actions_t):
        step_cost = jnp.sum(distribution * costs[states, actions_t])
        probs = jnp.exp(transitions.log_probs[states, actions_t])  # (S, K)
        successors = transitions.successors[states, actions_t]
        next_distribution = jnp.zeros_like(distribution).at[successors].add(distribution[:, None] * probs)
        return next_distribution, step_cost

    _, step_costs = jax.lax.scan(forward, initial, actions)
    return step_costs.sum()


def expected_value_difference(
    costs: jax.Array, true_costs: jax.Array, transitions: Transitions | jax.Array, initial: jax.Array, horizon: int
) -> jax.Array:
    """:math:`E_{\\pi_\\theta}[c^*(\\tau)] - E_{\\pi^*}[c^*(\\tau)] \\ge 0`, both policies optimal
    (greedy, finite horizon) for their own cost; computed exactly by the forward recursion."""
    transitions = as_transitions(transitions)
    learned = _policy_cost(optimal_policy(costs, transitions, horizon), true_costs, transitions, initial)
    best = _policy_cost(optimal_policy(true_costs, transitions, horizon), true_costs, transitions, initial)
    return learned - best


def log_z_error(log_z: jax.Array, log_z_exact: jax.Array) -> jax.Array:
    """``log_z - log_z_exact`` (signed: IS estimates are biased low)."""
    return jnp.asarray(log_z) - jnp.asarray(log_z_exact)
