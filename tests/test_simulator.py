"""Trajectories of a user's differentiable dynamics: the pendulum against the real environments (gymnasium's
Pendulum-v1, gymnax's through the adapter), imitation's rollout files, the squashed policy's density and the
NUTS demonstrations against quadrature."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from maxent_gan.inference.proposals.policy import MLPGaussianPolicy
from maxent_gan.models.demonstrations import load_demonstrations
from maxent_gan.models.dynamics import BoxStart, Dynamics, GaussianStart, dynamics_demonstrations, linear_feature_cost
from maxent_gan.models.pendulum import (
    PENDULUM_THETA,
    Pendulum,
    pendulum_features,
    pendulum_problem,
    reflect,
    states_from_observations,
)
from maxent_gan.models.pointmass import PointMass

jax.config.update("jax_enable_x64", True)

ROLLOUTS = Path(__file__).parent / "data" / "imitation_pendulum_rollouts.npz"  # imitation 1.0.1's, 4 trajectories
SIDE = Path(sys.prefix) / "gymnax-side"  # gymnax and its gymnasium, apart from imitation's (./dev test)


def test_pendulum_steps_as_gymnasium_pendulum_v1_and_its_reward_is_the_cost_at_theta_star():
    gym = pytest.importorskip("gymnasium")
    env = gym.make("Pendulum-v1")
    pendulum = Pendulum()
    rng = np.random.default_rng(0)
    for seed in range(3):
        env.reset(seed=seed)
        x = jnp.asarray(env.unwrapped.state)[None]
        for _ in range(200):
            u = rng.uniform(-2.0, 2.0, size=(1,))
            cost = pendulum_features(x, jnp.asarray(u)[None]) @ jnp.asarray(PENDULUM_THETA)
            _, reward, *_ = env.step(u)
            assert abs(float(cost[0]) + reward) < 1e-9
            x = pendulum.step(x, jnp.asarray(u)[None])
            np.testing.assert_allclose(np.asarray(x[0]), env.unwrapped.state, atol=1e-9)
        # torques beyond the box are clipped by both
        u = np.array([5.0])
        env.step(u)
        x = pendulum.step(x, jnp.asarray(u)[None])
        np.testing.assert_allclose(float(x[0, 1]), env.unwrapped.state[1], atol=1e-9)


@pytest.mark.skipif(not (SIDE / "gymnax").is_dir(), reason="gymnax is installed beside the venv by ./dev test")
def test_gymnax_adapter_steps_the_real_environment_with_its_gradients():
    script = textwrap.dedent("""
        import jax; jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp, gymnax
        from maxent_gan.models.gymnax_env import from_gymnax
        from maxent_gan.models.pendulum import Pendulum
        env, params = gymnax.make("Pendulum-v1")
        dynamics, mine = from_gymnax(env, params, horizon=50), Pendulum(horizon=50).dynamics
        assert (dynamics.action_low, dynamics.action_high, dynamics.horizon) == ((-2.0,), (2.0,), 50)
        x0 = dynamics.start_sample(jax.random.key(0), 64)
        u = jax.random.uniform(jax.random.key(1), (64, 50, 1), minval=-2.5, maxval=2.5)
        gap = jnp.max(jnp.abs(dynamics.observation(dynamics.rollout(x0, u)) - mine.observation(mine.rollout(x0, u))))
        assert gap < 1e-10, gap
        # pathwise gradients through gymnax's own step_env (its transition gradients on) are the pendulum's
        def final(d):
            return jax.grad(lambda u: jnp.sum(jnp.cos(d.rollout(x0, u)[:, -1, 0])))(u)
        theirs, ours = final(dynamics), final(mine)
        assert float(jnp.max(jnp.abs(ours))) > 0.1 and float(jnp.max(jnp.abs(theirs - ours))) < 1e-8
        car = from_gymnax(*gymnax.make("MountainCarContinuous-v0"), horizon=30)
        states = car.rollout(car.start_sample(jax.random.key(2), 4), jnp.ones((4, 30, 1)))
        assert bool(jnp.all(jnp.isfinite(car.start_log_prob(states[:, 0])))) and states.shape == (4, 31, 2)
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SIDE), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]


def _perturbed(policy, key, scale):
    # a policy whose actions depend on the state and the time (the untrained one is state-independent)
    leaves, tree = jax.tree.flatten(policy)
    keys = jax.random.split(key, len(leaves))
    leaves = [leaf + scale * jax.random.normal(k, leaf.shape, leaf.dtype) if eqx_array(leaf) else leaf
              for leaf, k in zip(leaves, keys, strict=True)]
    return jax.tree.unflatten(tree, leaves)


def eqx_array(leaf) -> bool:
    return isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jnp.floating)


def test_policy_density_is_its_draws_and_relative_to_the_base_measure():
    # (the perturbation keeps the pre-squash draws below |z| ~ 7: beyond, tanh rounds toward the edge and
    # a recorded action no longer tells z, which log_prob then reads just inside the box)
    for dynamics in [Pendulum(horizon=3).dynamics, PointMass(horizon=3).dynamics]:
        policy = _perturbed(MLPGaussianPolicy(jax.random.key(0), dynamics), jax.random.key(1), scale=0.1)
        x, log_q = policy.sample_and_log_prob(jax.random.key(2), 200_000 if dynamics.bounded else 2000)
        np.testing.assert_allclose(policy.log_prob(x), log_q, atol=1e-8)
    # E_q[ν/q] = 1 where ν is a probability (the torque box, a box start): the squash's Jacobian and the
    # uniform base measure are right (on unbounded actions ν is Lebesgue and has no total of 1)
    dynamics = Pendulum(horizon=3).dynamics
    policy = _perturbed(MLPGaussianPolicy(jax.random.key(0), dynamics), jax.random.key(1), scale=0.1)
    x, log_q = policy.sample_and_log_prob(jax.random.key(2), 200_000)
    assert float(jnp.max(jnp.abs(dynamics.layout.unpack(x)[1]))) <= 2.0
    log_mean = jax.scipy.special.logsumexp(-log_q) - math.log(log_q.size)
    ratio = jnp.exp(-log_q - log_mean)  # normalized by its mean: bounded, no raw exponential
    stderr = float(ratio.std()) / math.sqrt(log_q.size)
    assert abs(float(log_mean)) < 5 * stderr, (float(log_mean), stderr)


def test_imitation_rollouts_load_as_pendulum_trajectories_whatever_their_container():
    dynamics = Pendulum(horizon=200).dynamics
    rows = load_demonstrations(ROLLOUTS, dynamics, to_states=states_from_observations)
    assert rows.shape == (4, dynamics.layout.size)
    states, actions = dynamics.layout.unpack(rows)
    assert float(dynamics.transition_error(states, actions).max()) < 1e-5  # float32 observations
    # the environment's reward is -θ*·φ: the returns recorded in the file are the cost at θ*
    cost = linear_feature_cost(pendulum_features, dynamics.layout)(jnp.asarray(PENDULUM_THETA), rows)
    recorded = np.load(ROLLOUTS)["rews"].reshape(4, 200).sum(1)
    np.testing.assert_allclose(-np.asarray(cost), recorded, atol=1e-3)
    # imitation's own objects and plain arrays give the same rows; a shorter horizon takes prefixes
    serialize = pytest.importorskip("imitation.data.serialize")
    trajectories = serialize.load(ROLLOUTS)
    np.testing.assert_allclose(load_demonstrations(trajectories, dynamics, to_states=states_from_observations), rows)
    obs = np.stack([t.obs for t in trajectories])
    acts = np.stack([t.acts for t in trajectories])
    np.testing.assert_allclose(load_demonstrations((obs, acts), dynamics, to_states=states_from_observations), rows)
    short = Pendulum(horizon=50).dynamics
    prefix = load_demonstrations((obs, acts), short, to_states=states_from_observations)
    np.testing.assert_allclose(short.layout.unpack(prefix)[1], actions[:, :50])
    problem = pendulum_problem(horizon=200, demonstrations=ROLLOUTS)
    train, test = problem.data(jax.random.key(0), 0, 0)
    assert train.shape[0] + test.shape[0] == 4 and problem.data_fixed


def test_demonstrations_of_another_environment_are_refused_saying_where():
    obs = np.load(ROLLOUTS)["obs"][:201][None]
    acts = np.load(ROLLOUTS)["acts"][:200][None]
    pendulum = Pendulum(horizon=200)
    with pytest.raises(ValueError, match="trajectory 0 departs from the dynamics by"):
        load_demonstrations((obs, acts), pendulum._replace(g=9.81).dynamics, to_states=states_from_observations)
    with pytest.raises(ValueError, match="trajectory 0 has 200 steps, fewer than the dynamics' horizon 201"):
        load_demonstrations((obs, acts), pendulum._replace(horizon=201).dynamics, to_states=states_from_observations)
    with pytest.raises(ValueError, match="outside the box"):
        load_demonstrations((obs, 2 * acts + 0.5), pendulum.dynamics, to_states=states_from_observations)
    with pytest.raises(ValueError, match="pass to_states"):
        load_demonstrations((obs, acts), pendulum.dynamics)
    with pytest.raises(ValueError, match="expected Pendulum-v1's"):
        states_from_observations(obs[..., :2])
    with pytest.raises(ValueError, match="no such file"):
        load_demonstrations("missing.npz", pendulum.dynamics)


def test_dynamics_refuses_bad_arguments_by_name():
    start = BoxStart((-1.0,), (1.0,))

    def step(x, u):
        return x + u

    with pytest.raises(ValueError, match="horizon: expected a positive int"):
        Dynamics(step, 0, 1, 1, start)
    with pytest.raises(ValueError, match="start.low: expected 2 values"):
        Dynamics(step, 3, 2, 1, start)
    with pytest.raises(ValueError, match="action_high: expected above action_low"):
        Dynamics(step, 3, 1, 1, start, (1.0,), (0.0,))
    with pytest.raises(ValueError, match="give both"):
        Dynamics(step, 3, 1, 1, start, (1.0,))
    with pytest.raises(ValueError, match="start.cov: expected a positive definite"):
        Dynamics(step, 3, 1, 1, GaussianStart((0.0,), ((-1.0,),)))
    with pytest.raises(ValueError, match="noise: expected a finite scale"):
        Dynamics(step, 3, 1, 1, start, noise=-0.1)
    with pytest.raises(TypeError, match="step: expected a function"):
        Dynamics(None, 3, 1, 1, start)


def test_nuts_demonstrations_of_a_box_system_match_quadrature():
    # one step of s1 = s0 + u with s0, u uniform on [-1, 1] and the cost θ·((s0 + u)², u): the trajectory
    # density over (s0, u) is exp(-c) on the square, whose moments quadrature gives
    theta = jnp.array([1.5, -1.0])
    dynamics = Dynamics(lambda x, u: x + u, 1, 1, 1, BoxStart((-1.0,), (1.0,)), (-1.0,), (1.0,))

    def features(states, actions):
        return jnp.concatenate([(states + actions) ** 2, actions], -1)

    draws = dynamics_demonstrations(jax.random.key(0), dynamics, linear_feature_cost(features, dynamics.layout),
                                    theta, 4000)
    states, actions = dynamics.layout.unpack(draws)
    s0, u = states[:, 0, 0], actions[:, 0, 0]
    np.testing.assert_allclose(states[:, 1, 0], s0 + u, atol=1e-12)
    grid = (np.arange(2000) + 0.5) / 1000 - 1  # midpoints on [-1, 1]
    S, U = np.meshgrid(grid, grid, indexing="ij")
    log_w = -(1.5 * (S + U) ** 2 - U)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    for name, sample, exact in [("s0", s0, (w * S).sum()), ("u", u, (w * U).sum()),
                                ("s0 u", s0 * u, (w * S * U).sum())]:
        stderr = float(sample.std()) / math.sqrt(4000 / 4)  # NUTS draws are correlated: n / 4 effective
        assert abs(float(sample.mean()) - exact) < 5 * stderr, (name, float(sample.mean()), exact)


def test_the_swing_up_is_symmetric_under_its_reflection():
    # p_θ of the built-in swing-up is invariant under reflect(): the dynamics map reflected trajectories to
    # reflected trajectories and the cost is unchanged, so reflecting half the NUTS draws is exact
    problem = pendulum_problem(horizon=12)
    dynamics, layout = problem.space.dynamics, problem.space.layout
    actions = jax.random.uniform(jax.random.key(0), (50, 12, 1), minval=-2.0, maxval=2.0)
    rows = layout.pack(dynamics.rollout(dynamics.start_sample(jax.random.key(1), 50), actions), actions)
    mirrored = reflect(rows, layout)
    states, mirrored_actions = layout.unpack(mirrored)
    np.testing.assert_allclose(dynamics.rollout(states[:, 0], mirrored_actions), states, atol=1e-9)
    theta = jnp.asarray([0.7, -0.2, 0.3])
    np.testing.assert_allclose(problem.family.cost_fn(theta, mirrored), problem.family.cost_fn(theta, rows), atol=1e-9)
    assert float(jnp.max(jnp.abs(mirrored - rows))) > 1.0  # the reflection is not the identity


def test_a_policy_on_mirrored_dynamics_gives_mirror_images_one_density():
    # the swing-up's policy is odd in its mean and even in its scale under the mirror, so q covers both
    # mirror-image modes of p_θ (left and right swings): log q(reflect(τ)) = log q(τ) for any weights
    dynamics = Pendulum(horizon=8).swing_up
    policy = _perturbed(MLPGaussianPolicy(jax.random.key(0), dynamics), jax.random.key(1), scale=0.1)
    x, log_q = policy.sample_and_log_prob(jax.random.key(2), 500)
    np.testing.assert_allclose(policy.log_prob(reflect(x, dynamics.layout)), log_q, atol=1e-8)
    first = dynamics.layout.unpack(x)[1][:, 0, 0]
    assert abs(float(first.mean())) < 4 * float(first.std()) / math.sqrt(500)  # from the symmetric start: mean 0
    # act() is the same policy from any states: at the start its torques are q's first torques in law
    acted = policy.act(jax.random.key(3), dynamics.layout.unpack(x)[0][:, 0], 0)[:, 0]
    assert float(jnp.max(jnp.abs(acted))) <= 2.0
    assert abs(float(acted.std()) - float(first.std())) < 4 * float(first.std()) / math.sqrt(500)
    with pytest.raises(ValueError, match="mirror: negating the action needs a box symmetric about 0"):
        Dynamics(dynamics.step, 8, 2, 1, dynamics.start, (-1.0,), (2.0,), mirror=dynamics.mirror)


def test_continuous_epic_ignores_shaping_and_scale_and_sees_a_different_cost():
    from maxent_gan.inference.metrics import epic_distance_samples

    key = jax.random.split(jax.random.key(0), 4)
    s, s_next = jax.random.normal(key[0], (500, 2)), jax.random.normal(key[1], (500, 2))
    a = jax.random.uniform(key[2], (500, 1), minval=-2.0, maxval=2.0)
    coverage, coverage_actions = s[:128], a[128:256]

    def cost(states, actions, _):
        return pendulum_features(states, actions) @ jnp.asarray(PENDULUM_THETA)

    def potential(states):
        return jnp.sin(states[:, 0]) + states[:, 1] ** 3

    def shaped(states, actions, following):  # 3 c + Φ(s') - Φ(s): the same cost to EPIC, exactly
        return 3 * cost(states, actions, following) + potential(following) - potential(states)

    def other(states, actions, _):
        return pendulum_features(states, actions) @ jnp.asarray([0.0, 1.0, 0.0])

    transitions = (s, a, s_next)
    assert float(epic_distance_samples(cost, shaped, transitions, coverage, coverage_actions)) < 1e-6
    assert float(epic_distance_samples(cost, other, transitions, coverage, coverage_actions)) > 0.3
    assert float(epic_distance_samples(cost, lambda *x: -cost(*x), transitions, coverage, coverage_actions)) > 0.99


def test_the_annealed_estimator_over_a_policys_noise_refuses_a_proposal_without_draws_through_noise():
    # its accuracy against the Riccati log Z, at 2048 particles, is a long check (benchmarks/checks)
    from maxent_gan.inference.annealed import log_z_annealed_reparameterized
    from maxent_gan.models.irl_problems import pointmass_problem

    problem = pointmass_problem(PointMass(horizon=3))
    target = problem.family.target(jnp.array([2.0, 0.0, -0.5]), problem.space)
    with pytest.raises(TypeError, match="proposal: expected a reparameterized proposal"):
        log_z_annealed_reparameterized(jax.random.key(0), target, object())


def test_simulator_problem_refuses_bad_input_before_any_work():
    from maxent_gan.models.builders import simulator_problem

    dynamics = Pendulum(horizon=5).swing_up
    with pytest.raises(ValueError, match=r"features: expected \(\.\.\., 2\) values"):
        simulator_problem(dynamics, pendulum_features, ("angle", "velocity"), theta_true=[1.0, 0.1])
    with pytest.raises(ValueError, match="theta_true: expected 3 weights"):
        simulator_problem(dynamics, pendulum_features, ("a", "v", "u"), theta_true=[1.0, 0.1])
    with pytest.raises(ValueError, match="demonstrations: give demonstrations, or theta_true"):
        simulator_problem(dynamics, pendulum_features, ("a", "v", "u"))
    with pytest.raises(TypeError, match="dynamics: expected a maxent_gan.models.dynamics.Dynamics"):
        simulator_problem(Pendulum(), pendulum_features, ("a", "v", "u"), theta_true=PENDULUM_THETA)
