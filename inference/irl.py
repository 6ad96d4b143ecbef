"""MaxEnt IRL on the shared training machinery: the IRL pieces ``inference.ebm`` plugs in.

The cost is linear, :math:`c_\\theta(\\tau) = \\sum_t \\theta\\cdot\\phi(s_t, a_t)`, started at
θ = 0; the sampler is a policy warm-started by behaviour cloning on the demonstrations (the
IRL analogue of fitting the flow to the data); the rest (the three algorithms, the driver,
checkpoints) is the EBM code, unchanged.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from inference.metrics import cost_correlation, epic_distance, expected_value_difference
from inference.proposals.policy import LinearGaussianPolicy, MLPGaussianPolicy, TabularPolicy, _raw_tril
from models.problems import Problem

__all__ = ["base_policy", "behaviour_cloning", "fit_policy_to_demos", "irl_metrics", "irl_setup", "linear_gaussian_cloning",
           "soft_optimal_policy"]

IRL_LEARNING_RATE = 0.05  # θ has a handful of entries: a larger step than a network's


def behaviour_cloning(policy: TabularPolicy, demos: jax.Array, *, pseudo_count: float = 1.0) -> TabularPolicy:
    """The maximum-likelihood time-varying policy of the demonstrations, smoothed by
    ``pseudo_count`` per action (closed form: log of the counts)."""
    states, actions = policy.layout.unpack(demos)
    horizon = policy.logits.shape[0]
    times = jnp.broadcast_to(jnp.arange(horizon), actions.shape)
    counts = jnp.zeros(policy.logits.shape, policy.logits.dtype).at[times, states[:, :-1], actions].add(1.0)
    starts = jnp.zeros(policy.initial.shape, policy.logits.dtype).at[states[:, 0]].add(1.0)
    return TabularPolicy(jnp.log(counts + pseudo_count), policy.transitions, policy.initial,
                         jnp.log(starts + pseudo_count), policy.successor_logits)


def linear_gaussian_cloning(policy: LinearGaussianPolicy, demos: jax.Array, *, ridge: float = 1e-6) -> LinearGaussianPolicy:
    """Per time step, least squares of :math:`u_t` on :math:`(x_t, 1)`; the residual covariance
    (plus ``ridge``) is the action noise."""
    states, actions = policy.layout.unpack(demos)
    features = jnp.concatenate([states[:, :-1], jnp.ones(states[:, :-1].shape[:-1] + (1,), states.dtype)], -1)

    def fit(x, u):
        coef, *_ = jnp.linalg.lstsq(x, u)
        residual = u - x @ coef
        return coef, residual.T @ residual / x.shape[0] + ridge * jnp.eye(u.shape[1], dtype=u.dtype)

    coef, covariance = jax.vmap(fit, in_axes=(1, 1))(features, actions)  # (T, n+1, m), (T, m, m)
    gains = -jnp.swapaxes(coef[:, :-1], -1, -2)
    x0 = states[:, 0]
    initial_cov = jnp.cov(x0.T).reshape(x0.shape[1], x0.shape[1]) + ridge * jnp.eye(x0.shape[1], dtype=x0.dtype)
    return LinearGaussianPolicy(gains, coef[:, -1], _raw_tril(covariance), x0.mean(0), _raw_tril(initial_cov),
                                policy.system)


def fit_policy_to_demos(key: jax.Array, policy, demos: jax.Array, *, steps: int = 300,
                        learning_rate: float = 3e-3, batch_size: int = 256):
    """Behaviour cloning by gradient: maximize the demonstrations' mean ``log_prob`` (any policy)."""
    optimizer = optax.adam(learning_rate)
    opt_state = optimizer.init(eqx.filter(policy, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(policy, opt_state, key):
        rows = jax.random.choice(key, demos.shape[0], (min(batch_size, demos.shape[0]),), replace=False)
        loss, grads = eqx.filter_value_and_grad(lambda q: -jnp.mean(q.log_prob(demos[rows])))(policy)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(policy, eqx.is_inexact_array))
        return eqx.apply_updates(policy, updates), opt_state

    for i in range(steps):
        policy, opt_state = step(policy, opt_state, jax.random.fold_in(key, i))
    return policy


def _linear_dynamics(system) -> tuple:
    # what a linear-Gaussian policy simulates with: (A, B, W, m0, S0)
    return system.A, system.B, system.W, system.m0, system.S0


def base_policy(problem: Problem, key: jax.Array, *, tilted: bool = False):
    """The broad policy of a trajectory problem: uniform actions (tabular), N(0, I) forces (LQR,
    point mass: an MLP policy, initialized from ``key``, that starts there). ``tilted``: a tabular
    sampler that can also learn transition tilts (the family that contains :math:`p_\\theta`)."""
    spec = problem.irl
    if spec.kind == "pointmass":
        return MLPGaussianPolicy(key, spec.system)
    if spec.kind == "lqr":
        return LinearGaussianPolicy.broad(_linear_dynamics(spec.system), spec.system.horizon)
    return TabularPolicy.uniform(spec.system.transitions, spec.system.initial, spec.system.horizon, tilted=tilted)


def soft_optimal_policy(problem: Problem, theta: jax.Array, *, tilted: bool = False):
    """The exact action conditional of :math:`p_\\theta` as a policy (DESIGN.md §1: a proposal that moves with θ);
    tabular and ``tilted``: with the transition tilts too, i.e. :math:`p_\\theta` itself."""
    spec = problem.irl
    system = spec.system
    if spec.kind == "lqr":
        Q, R = spec.matrices(theta)
        return LinearGaussianPolicy.soft_optimal(_linear_dynamics(system), Q, R, system.horizon)
    return TabularPolicy.soft_optimal(spec.cost_table(theta), system.transitions, system.initial, system.horizon,
                                      tilted=tilted)


def irl_setup(problem: Problem, train: jax.Array, key: jax.Array, *, tilted: bool = False) -> tuple[Any, Any]:
    """Initial θ (zeros) and the proposal: the base policy (``tilted``: see :func:`base_policy`) cloned
    from the demonstrations (the tilts start at zero)."""
    spec = problem.irl
    key_init, key_fit = jax.random.split(key)
    theta = jnp.zeros(len(spec.theta_names), jnp.zeros(()).dtype)
    policy = base_policy(problem, key_init, tilted=tilted)
    if spec.kind == "pointmass":
        return theta, fit_policy_to_demos(key_fit, policy, train)
    if spec.kind == "lqr":
        return theta, linear_gaussian_cloning(policy, train)
    return theta, behaviour_cloning(policy, train)


def irl_metrics(problem: Problem, theta: jax.Array, test: jax.Array) -> dict[str, float | None]:
    """Against θ*: EPIC, centered-cost correlation and EVD (tabular: exact, over all (s, a)),
    or the correlation of trajectory costs over the held-out demonstrations (continuous
    problems); the distance |θ - θ*|; the exact log Z at θ where one exists."""
    spec = problem.irl
    row: dict[str, float | None] = {
        "theta_error": float(jnp.linalg.norm(theta - problem.true_params)),
        "log_z_exact": None if spec.log_partition_fn is None else float(spec.log_partition_fn(theta)),
    }
    if spec.kind != "tabular":
        # continuous: the correlation of whole-trajectory costs over the held-out demonstrations
        costs, true_costs = spec.cost_fn(theta, test), spec.cost_fn(problem.true_params, test)
        row.update(epic=None, evd=None, cost_correlation=float(jnp.corrcoef(costs, true_costs)[0, 1]))
        return row
    mdp = spec.system
    costs, true_costs = spec.cost_table(theta), spec.cost_table(problem.true_params)
    row.update(
        epic=float(epic_distance(costs, true_costs, mdp.transitions)),
        cost_correlation=float(cost_correlation(costs, true_costs)),
        evd=float(expected_value_difference(costs, true_costs, mdp.transitions, mdp.initial, mdp.horizon)),
    )
    return row
