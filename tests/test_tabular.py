"""Tabular trajectory MaxEnt against brute-force enumeration of every trajectory."""

import itertools

import jax
import jax.numpy as jnp
import maxent_gan.models.tabular as tabular
import numpy as np
import pytest
from maxent_gan.models.gridworld import gridworld, linear_costs, random_mdp
from maxent_gan.models.tabular import (
    Transitions,
    as_transitions,
    backward_messages,
    check_trajectories,
    log_partition,
    occupancy,
    sample_trajectories,
    trajectory_cost,
    trajectory_log_base,
)


def enumerate_trajectories(num_states, num_actions, horizon):
    combos = itertools.product(range(num_states), *([range(num_actions), range(num_states)] * horizon))
    rows = np.array(list(combos))
    return jnp.asarray(rows[:, 0::2]), jnp.asarray(rows[:, 1::2])


def brute_force(costs, mdp):
    states, actions = enumerate_trajectories(mdp.num_states, mdp.num_actions, mdp.horizon)
    log_unnormalized = trajectory_log_base(mdp.transitions, mdp.initial, states, actions) - trajectory_cost(
        costs, states, actions
    )
    return states, actions, log_unnormalized


def enumerated_visits(costs, mdp):
    """Expected state-action visit counts by enumeration, and the exact log Z."""
    states, actions, log_unnormalized = brute_force(costs, mdp)
    exact = jax.nn.logsumexp(log_unnormalized)
    probs = jnp.exp(log_unnormalized - exact)
    visits = jnp.zeros((mdp.num_states, mdp.num_actions))
    for t in range(mdp.horizon):
        visits = visits.at[states[:, t], actions[:, t]].add(probs)
    return visits, exact


@pytest.fixture(params=["unrolled", "wide"])
def layout(request, monkeypatch):
    """Both forms of the recursions' steps: unrolled over the (action, successor) slots, as large
    problems get (forced here by ``UNROLL_MIN_STATES = 0``), and the (S, A, K) form of small tables and of
    tables wider than ``UNROLL_LIMIT`` (forced by a limit of 0; the choice is a static argument of the
    jitted steps, so each form has its own trace)."""
    if request.param == "wide":
        monkeypatch.setattr(tabular, "UNROLL_LIMIT", 0)
    else:
        monkeypatch.setattr(tabular, "UNROLL_MIN_STATES", 0)
    return request.param


@pytest.fixture(params=[0, 1, 2], ids=lambda seed: f"mdp{seed}")
def tiny(request, layout):
    mdp = random_mdp(jax.random.key(request.param), num_states=3, num_actions=2, num_features=3, horizon=3)
    theta = jax.random.normal(jax.random.key(10 + request.param), (3,))
    return mdp, linear_costs(theta, mdp.features)


def test_log_partition_is_the_sum_over_every_trajectory(tiny):
    mdp, costs = tiny
    _, _, log_unnormalized = brute_force(costs, mdp)
    exact = jax.nn.logsumexp(log_unnormalized)
    assert jnp.allclose(log_partition(costs, mdp.transitions, mdp.initial, mdp.horizon), exact, atol=1e-12)
    # the dense (S, A, S) form gives the same
    dense = mdp.transitions.dense()
    assert jnp.allclose(log_partition(costs, dense, mdp.initial, mdp.horizon), exact, atol=1e-12)


def test_occupancy_is_the_expected_visit_count(tiny):
    mdp, costs = tiny
    visits, _ = enumerated_visits(costs, mdp)
    assert jnp.allclose(occupancy(costs, mdp.transitions, mdp.initial, mdp.horizon), visits, atol=1e-12)


def test_hand_written_derivative_is_the_enumerated_one_in_every_argument_and_to_second_order(tiny):
    # log_partition's derivative is written by hand (one forward pass for the occupancy, the start
    # distribution and the edge visits); enumeration's is plain autodiff through a logsumexp over
    # every trajectory. Gradients in costs, the dynamics' log probabilities and the start, and the
    # Hessian in the costs (forward over reverse through the hand-written rule).
    mdp, costs = tiny
    successors = mdp.transitions.successors

    def enumerated(costs, log_probs, initial):
        states, actions = enumerate_trajectories(mdp.num_states, mdp.num_actions, mdp.horizon)
        dense = Transitions(successors, log_probs).dense()
        log_base = jnp.log(initial)[states[:, 0]] + jnp.log(dense[states[:, :-1], actions, states[:, 1:]]).sum(-1)
        return jax.nn.logsumexp(log_base - trajectory_cost(costs, states, actions))

    def recursion(costs, log_probs, initial):
        return log_partition(costs, Transitions(successors, log_probs), initial, mdp.horizon)

    args = (costs, mdp.transitions.log_probs, mdp.initial)
    assert float(jnp.min(mdp.initial)) > 0 and bool(jnp.all(jnp.isfinite(args[1])))  # every entry has a derivative
    for ours, reference in zip(jax.grad(recursion, argnums=(0, 1, 2))(*args),
                               jax.grad(enumerated, argnums=(0, 1, 2))(*args), strict=True):
        assert float(jnp.max(jnp.abs(reference))) > 1e-3  # a derivative that is there to check
        np.testing.assert_allclose(ours, reference, atol=1e-12)
    np.testing.assert_allclose(jax.hessian(recursion)(*args), jax.hessian(enumerated)(*args), atol=1e-11)
    value, grad = jax.jit(jax.value_and_grad(recursion))(*args)
    np.testing.assert_allclose(value, enumerated(*args), atol=1e-12)
    np.testing.assert_allclose(grad, jax.grad(enumerated)(*args), atol=1e-12)
    # an unused slot (log P = -inf) changes nothing and carries no derivative
    padded = Transitions(jnp.concatenate([successors, successors[..., :1]], -1),
                         jnp.concatenate([args[1], jnp.full(successors.shape[:2] + (1,), -jnp.inf)], -1))
    grads = jax.grad(lambda c, lp: log_partition(c, Transitions(padded.successors, lp), mdp.initial, mdp.horizon),
                     argnums=(0, 1))(costs, padded.log_probs)
    reference = jax.grad(recursion, argnums=(0, 1))(*args)
    np.testing.assert_allclose(grads[0], reference[0], atol=1e-12)
    np.testing.assert_allclose(grads[1][..., :-1], reference[1], atol=1e-12)
    assert bool(jnp.all(grads[1][..., -1] == 0))
    # Z is linear in the start: dZ/dp_0(s) = beta_0(s) at every p_0, so the derivative of log Z at a start
    # with zeros (where log p_0 has none) is the checked one above times Z(p_0) / Z(start): finite, and
    # nonzero at the states it never starts from
    start = jnp.zeros_like(mdp.initial).at[0].set(0.5).at[-1].set(0.5)
    at_start = jax.grad(recursion, argnums=2)(costs, args[1], start)
    expected = jax.grad(recursion, argnums=2)(*args) * jnp.exp(recursion(*args) - recursion(costs, args[1], start))
    assert bool(jnp.all(jnp.isfinite(at_start))) and float(jnp.min(jnp.abs(at_start[1:-1]))) > 1e-3
    np.testing.assert_allclose(at_start, expected, atol=1e-12)


def test_exact_samples_have_the_enumerated_distribution(tiny):
    mdp, costs = tiny
    states, actions, log_unnormalized = brute_force(costs, mdp)
    probs = np.asarray(jnp.exp(log_unnormalized - jax.nn.logsumexp(log_unnormalized)))
    n = 200_000
    draws_s, draws_a = sample_trajectories(jax.random.key(7), costs, mdp.transitions, mdp.initial, mdp.horizon, n)
    assert draws_s.shape == (n, mdp.horizon + 1) and draws_a.shape == (n, mdp.horizon)
    # index every trajectory by its mixed-radix code, then compare frequencies
    def code(s, a):
        digits = np.concatenate([np.asarray(s)[:, :1], np.stack([np.asarray(a), np.asarray(s)[:, 1:]], -1).reshape(len(s), -1)], 1)
        radix = [mdp.num_states] + [mdp.num_actions, mdp.num_states] * mdp.horizon
        return np.ravel_multi_index(digits.T, radix)

    counts = np.bincount(code(draws_s, draws_a), minlength=len(probs))
    expected = np.zeros_like(probs)
    expected[code(states, actions)] = probs
    total_variation = 0.5 * np.abs(counts / n - expected).sum()
    # E[TV] ≈ Σ sqrt(p(1-p)/(2πn)); bound at 3x that (about 0.02 here), a wrong sampler gives > 0.1
    bound = 3 * np.sum(np.sqrt(expected * (1 - expected) / (2 * np.pi * n)))
    assert total_variation < bound, (total_variation, bound)


def test_stochastic_gridworld_matches_enumeration(layout):
    mdp = gridworld(2, horizon=3, slip=0.3, obstacles=(), start=None)
    costs = linear_costs(jnp.array([-1.0, 0.0, 2.0, 0.5]), mdp.features)
    _, _, log_unnormalized = brute_force(costs, mdp)
    assert jnp.allclose(log_partition(costs, mdp.transitions, mdp.initial, mdp.horizon),
                        jax.nn.logsumexp(log_unnormalized), atol=1e-12)


@pytest.mark.parametrize("scale", [1.0, 400.0], ids=["moderate", "huge"])
@pytest.mark.parametrize("slip", [0.0, 0.3])
def test_log_partition_and_occupancy_stay_exact_when_messages_spread_by_hundreds_of_nats(scale, slip, layout):
    # scale 400: costs run to ±1600 per step and the messages spread over the states by > 700 nats
    # (beyond what any rescaled linear-space recursion holds in float64). Value, occupancy (the
    # gradient) and a vmapped gradient against enumeration.
    mdp = gridworld(2, horizon=3, slip=slip, obstacles=(), start=None)
    thetas = jnp.array([[-1.0, 0.0, 2.0, 0.5], [3.0, 1.0, -4.0, 2.0]]) * scale
    costs = jax.vmap(linear_costs, in_axes=(0, None))(thetas, mdp.features)
    log_beta = jax.vmap(lambda c: backward_messages(c, mdp.transitions, mdp.horizon))(costs)
    spread = float(jnp.max(jnp.max(log_beta, -1) - jnp.min(log_beta, -1)))
    assert (spread > 700) == (scale > 1)
    visits_by_vmap = jax.vmap(occupancy, in_axes=(0, None, None, None))(costs, mdp.transitions, mdp.initial,
                                                                         mdp.horizon)
    for c, visits_vmapped in zip(costs, visits_by_vmap, strict=True):
        visits, exact = enumerated_visits(c, mdp)
        log_z = log_partition(c, mdp.transitions, mdp.initial, mdp.horizon)
        np.testing.assert_allclose(log_z, exact, rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(occupancy(c, mdp.transitions, mdp.initial, mdp.horizon), visits, atol=1e-12)
        np.testing.assert_allclose(visits_vmapped, visits, atol=1e-12)


def test_log_partition_in_float32_agrees_with_float64():
    mdp = gridworld(4, horizon=8, slip=0.1)
    costs = linear_costs(jnp.array([-2.0, 5.0, 3.0, 0.5]), mdp.features)
    reference = log_partition(costs, mdp.transitions, mdp.initial, mdp.horizon)
    single = Transitions(mdp.transitions.successors, mdp.transitions.log_probs.astype(jnp.float32))
    float32 = log_partition(costs.astype(jnp.float32), single, mdp.initial.astype(jnp.float32), mdp.horizon)
    assert float32.dtype == jnp.float32
    np.testing.assert_allclose(float32, reference, rtol=2e-6)


def test_gridworld_dynamics_are_stochastic_matrices_and_respect_walls():
    mdp = gridworld(5, slip=0.2)
    dense = np.asarray(mdp.transitions.dense())
    assert np.allclose(dense.sum(-1), 1.0)
    # from the top-left corner, "up" and "left" stay put unless slipping elsewhere
    assert dense[0, 1, 0] == pytest.approx(0.8 + 0.2 * 3 / 5)
    assert mdp.features.shape == (25, 5, 4)
    # no feature is constant over (s, a): every weight is identified
    assert np.all(np.asarray(mdp.features).reshape(-1, 4).std(0) > 0)


def test_deterministic_gridworld_log_z_is_the_count_at_zero_cost():
    # with zero cost and deterministic moves, Z counts action sequences: A^T
    mdp = gridworld(4, horizon=6)
    z = log_partition(jnp.zeros((16, 5)), mdp.transitions, mdp.initial, mdp.horizon)
    assert jnp.allclose(z, 6 * jnp.log(5.0), atol=1e-12)


def test_log_partition_is_jittable_and_differentiable_in_theta():
    mdp = gridworld(6, slip=0.1)
    theta = jnp.array([-2.0, 3.0, 1.0, 0.1])

    def log_z(theta):
        return log_partition(linear_costs(theta, mdp.features), mdp.transitions, mdp.initial, mdp.horizon)

    grad = jax.jit(jax.grad(log_z))(theta)
    eps = 1e-6
    numeric = jnp.array([(log_z(theta + eps * e) - log_z(theta - eps * e)) / (2 * eps) for e in jnp.eye(4)])
    assert jnp.allclose(grad, numeric, atol=1e-7)
    assert jnp.allclose(jax.jit(log_z)(theta), log_z(theta), atol=1e-12)


def test_bad_transitions_name_the_row():
    dense = np.full((3, 2, 3), 1 / 3)
    dense[1, 0] = [0.5, 0.2, 0.2]
    with pytest.raises(ValueError, match=r"\(s=1, a=0\) sums to 0.9"):
        as_transitions(dense)
    with pytest.raises(ValueError, match="expected shape"):
        as_transitions(np.ones((3, 2)))
    bad = Transitions(jnp.zeros((2, 1, 1), jnp.int32), jnp.log(jnp.array([[[1.0]], [[0.5]]])))
    with pytest.raises(ValueError, match=r"\(s=1, a=0\)"):
        as_transitions(bad)


@pytest.mark.parametrize(
    ("states", "actions", "message"),
    [
        ([[0, 1, 9]], [[0, 1]], r"trajectory 0 has state 9 at t=2"),
        ([[0, 1, 2], [0, -1, 2]], [[0, 1], [0, 1]], r"trajectory 1 has state -1 at t=1"),
        ([[0, 1, 2], [0, 1, 2]], [[0, 1], [0, 4]], r"trajectory 1 has action 4 at t=1"),
        ([[0, 1, 2, 0]], [[0, 1, 1]], r"horizon 2 needs"),
        ([[0.0, 1, 2]], [[0, 1]], r"states must be integers"),
    ],
    ids=["state-range", "negative-state", "action-range", "horizon", "dtype"],
)
def test_bad_demonstrations_name_the_trajectory(states, actions, message):
    with pytest.raises(ValueError, match=message):
        check_trajectories(np.array(states), np.array(actions), num_states=3, num_actions=2, horizon=2)


def test_bad_problem_inputs():
    mdp = gridworld(3, horizon=4)
    costs = jnp.zeros((9, 5))
    with pytest.raises(ValueError, match=r"costs: expected shape \(S, A\) = \(9, 5\)"):
        log_partition(jnp.zeros((9, 4)), mdp.transitions, mdp.initial, 4)
    with pytest.raises(ValueError, match=r"costs: non-finite value at \(s=2, a=1\)"):
        log_partition(costs.at[2, 1].set(jnp.nan), mdp.transitions, mdp.initial, 4)
    with pytest.raises(ValueError, match="initial: expected probabilities"):
        log_partition(costs, mdp.transitions, jnp.ones(9), 4)
    with pytest.raises(ValueError, match="horizon: expected a positive integer"):
        log_partition(costs, mdp.transitions, mdp.initial, 0)
