"""Policy proposals, the score-function sampler step, IRL metrics, and IRL training."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from maxent_gan.inference.ebm import ebm_summary, train_ebm
from maxent_gan.inference.metrics import cost_correlation, epic_distance, expected_value_difference, optimal_policy
from maxent_gan.inference.objectives import sampler_loss
from maxent_gan.inference.proposals.policy import TabularExact, TabularPolicy
from maxent_gan.inference.training import proposal_update
from maxent_gan.models.gridworld import gridworld, linear_costs, random_mdp
from maxent_gan.models.problems import make_problem
from maxent_gan.models.tabular import log_partition, trajectory_cost, trajectory_log_base
from maxent_gan.models.trajectory import TrajectoryLayout

from tests.test_tabular import enumerate_trajectories


@pytest.fixture
def tiny():
    mdp = random_mdp(jax.random.key(3), num_states=3, num_actions=2, num_features=3, horizon=3)
    costs = linear_costs(jnp.array([0.5, -1.0, 0.3]), mdp.features)
    states, actions = enumerate_trajectories(3, 2, 3)
    x = TrajectoryLayout(3).pack(states, actions)
    return mdp, costs, x, trajectory_log_base(mdp.transitions, mdp.initial, states, actions)


def test_policy_density_is_relative_to_the_dynamics(tiny):
    # q(τ)ν(τ) summed over every trajectory is 1: log q is Σ log π, the dynamics are the base measure
    mdp, _, x, log_base = tiny
    policy = TabularPolicy(jax.random.normal(jax.random.key(0), (3, 3, 2)), mdp.transitions, mdp.initial)
    assert jnp.allclose(jax.nn.logsumexp(policy.log_prob(x) + log_base), 0.0, atol=1e-12)


def test_policy_samples_follow_its_density(tiny):
    mdp, _, x, log_base = tiny
    policy = TabularPolicy(jax.random.normal(jax.random.key(1), (3, 3, 2)), mdp.transitions, mdp.initial)
    draws = policy.sample(jax.random.key(2), 100_000)
    codes = {tuple(row): i for i, row in enumerate(np.asarray(x))}
    counts = np.bincount([codes[tuple(row)] for row in np.asarray(draws)], minlength=len(codes))
    probs = np.exp(np.asarray(policy.log_prob(x) + log_base))
    assert 0.5 * np.abs(counts / 100_000 - probs).sum() < 3 * np.sum(np.sqrt(probs * (1 - probs) / (2 * np.pi * 1e5)))


def test_soft_optimal_policy_is_exact_under_deterministic_dynamics():
    mdp = gridworld(3, horizon=4, slip=0.0, obstacles=((1, 1),), start=None)  # a random start: tilted too
    costs = linear_costs(jnp.array([-1.0, 2.0, 1.5, 0.2]), mdp.features)
    policy = TabularPolicy.soft_optimal(costs, mdp.transitions, mdp.initial, mdp.horizon)
    x = policy.sample(jax.random.key(0), 500)
    states, actions = TrajectoryLayout(4).unpack(x)
    log_z = log_partition(costs, mdp.transitions, mdp.initial, mdp.horizon)
    # the weights -c - log q are all log Z: a zero-variance proposal
    assert jnp.allclose(-trajectory_cost(costs, states, actions) - policy.log_prob(x), log_z, atol=1e-10)


def test_exact_proposal_has_constant_weights(tiny):
    mdp, costs, _, _ = tiny
    oracle = TabularExact(costs, mdp.transitions, mdp.initial, mdp.horizon)
    x, log_q = oracle.sample_and_log_prob(jax.random.key(0), 64)
    states, actions = TrajectoryLayout(3).unpack(x)
    log_weights = -trajectory_cost(costs, states, actions) - log_q
    assert jnp.allclose(log_weights, log_partition(costs, mdp.transitions, mdp.initial, mdp.horizon), atol=1e-12)


def test_score_function_step_is_the_exact_sampler_gradient(tiny):
    """The mean of many one-draw-batch gradients equals ∇_ℓ E_q[c + log q] by enumeration."""
    mdp, costs, x, log_base = tiny
    layout = TrajectoryLayout(3)
    policy = TabularPolicy(0.5 * jax.random.normal(jax.random.key(4), (3, 3, 2)), mdp.transitions, mdp.initial)

    def cost_of(points):
        return trajectory_cost(costs, *layout.unpack(points))

    def exact_loss(logits):
        q = TabularPolicy(logits, mdp.transitions, mdp.initial)
        log_q = q.log_prob(x)
        return jnp.sum(jnp.exp(log_q + log_base) * (cost_of(x) + log_q))

    exact = jax.grad(exact_loss)(policy.logits)
    sgd = optax.sgd(1.0)  # the update is minus the gradient

    def estimated(key):
        new, _, _, _ = proposal_update(key, policy, sgd.init(policy), sampler_loss, cost_of, sgd, 64)
        return policy.logits - new.logits

    grads = jax.vmap(estimated)(jax.random.split(jax.random.key(5), 2000))
    stderr = grads.std(0) / np.sqrt(2000)
    assert jnp.all(jnp.abs(grads.mean(0) - exact) < 5 * stderr + 1e-10)
    # and without the score-function term the step would be wrong (the test can fail)
    assert jnp.max(jnp.abs(exact)) > 10 * jnp.max(stderr)


def test_metrics_are_invariant_to_scale_and_shaping():
    mdp = gridworld(5, slip=0.2)
    true_costs = linear_costs(jnp.array([-1.0, 3.0, 2.0, 0.3]), mdp.features)
    potential = jax.random.normal(jax.random.key(0), (25,))
    # shaping R'(s,a,s') = 2.5 c(s,a) + Φ(s') - Φ(s) (γ = 1): a transition cost (S, A, S)
    shaped = 2.5 * true_costs[..., None] + potential[None, None, :] - potential[:, None, None]
    assert epic_distance(2.5 * true_costs + 7.0, true_costs, mdp.transitions) < 1e-6
    assert cost_correlation(2.5 * true_costs + 7.0, true_costs) == pytest.approx(1.0)
    assert epic_distance(shaped, true_costs, mdp.transitions) < 1e-6
    assert epic_distance(-true_costs, true_costs, mdp.transitions) == pytest.approx(1.0)
    # a state-action table is not shaping-invariant by itself: its expectation over s' is not a shaping
    probs = jnp.exp(mdp.transitions.log_probs)
    averaged = 2.5 * true_costs + jnp.sum(probs * potential[mdp.transitions.successors], -1) - potential[:, None]
    assert epic_distance(averaged, true_costs, mdp.transitions) > 0.01
    other = linear_costs(jnp.array([1.0, -1.0, 0.5, 2.0]), mdp.features)
    assert 0.1 < epic_distance(other, true_costs, mdp.transitions) < 1.0


def test_expected_value_difference_is_zero_at_the_truth_and_positive_elsewhere():
    mdp = gridworld(5, horizon=10, slip=0.1)
    true_costs = linear_costs(jnp.array([-1.0, 3.0, 2.0, 0.3]), mdp.features)
    assert expected_value_difference(true_costs, true_costs, mdp.transitions, mdp.initial, 10) == pytest.approx(0.0)
    # a cost that prefers to stay put is far worse under the true cost
    lazy = linear_costs(jnp.array([0.0, 0.0, 0.0, 5.0]), mdp.features)
    assert expected_value_difference(lazy, true_costs, mdp.transitions, mdp.initial, 10) > 1.0
    actions = optimal_policy(lazy, mdp.transitions, 10)
    assert jnp.all(actions == 0)


def test_gridworld_problem_is_a_numpyro_model_with_the_exact_normalizer():
    from numpyro import handlers

    problem = make_problem("gridworld")
    demos, _ = problem.data(jax.random.key(0), 8, 2)
    trace = handlers.trace(handlers.seed(problem.model, 0)).get_trace(demos)
    site = trace["tau"]
    target = site["fn"].base_dist if hasattr(site["fn"], "base_dist") else site["fn"]
    assert target.base_measure == "dynamics"
    theta = trace["theta"]["value"]
    assert jnp.allclose(target.log_normalizer, problem.family.log_partition_fn(theta))
    assert site["value"].shape == (8, problem.dim)


@pytest.mark.parametrize("method", ["exact", "gcl", "gan"])
def test_irl_recovers_the_true_cost_on_a_small_gridworld(method):
    from maxent_gan.models.builders import tabular_problem

    mdp = gridworld(4, horizon=8, slip=0.1, obstacles=((2, 1), (2, 2)))
    problem = tabular_problem(mdp.features, mdp.transitions, mdp.initial, mdp.horizon,
                              theta_true=[-1.0, 3.0, 2.0, 0.3], theta_names=mdp.feature_names, name="small-grid")
    run = train_ebm(problem, method, steps=400, num_train=500, num_test=500, batch_size=250, eval_every=400,
                    learning_rate=0.05, progress=False)
    summary = ebm_summary(run)
    assert summary["stopped"] is None
    # the dynamics inside the policy are the problem's, untouched by the optimizer
    policy = run.result.state.proposal
    assert jnp.array_equal(policy.initial, problem.space.mdp.initial)
    assert jnp.array_equal(policy.transitions.log_probs, problem.space.mdp.transitions.log_probs)
    assert summary["epic"] < 0.1, summary
    assert summary["cost_correlation"] > 0.98, summary
    # the exact method's NLL is the gold standard; the others within a few hundredths of it
    assert summary["held_out_nll"] - summary["true_nll"] < 0.1, summary
    if method == "gan":
        assert abs(summary["log_z_learned"] - summary["log_z_exact"]) < 0.1, summary


def test_bad_demonstrations_are_refused_before_training():
    problem = make_problem("gridworld")
    demos, test = problem.data(jax.random.key(0), 10, 10)
    bad = demos.at[3, 5].set(99)
    with pytest.raises(ValueError, match=r"data: demonstrations: trajectory 3 has state 99 at t=5"):
        train_ebm(problem, "gcl", steps=1, data=(bad, test), progress=False)
    with pytest.raises(ValueError, match=r"expected points of shape \(n, 41\)"):
        train_ebm(problem, "gcl", steps=1, data=(demos[:, :-1], test), progress=False)


def _lqr_policy(noise):
    from maxent_gan.inference.proposals.policy import LinearGaussianPolicy
    from maxent_gan.models.irl_problems import LQR_THETA, lqr_family

    space, family = lqr_family(noise=noise)
    theta = jnp.asarray(LQR_THETA)
    Q, R = space.matrices(theta)
    policy = LinearGaussianPolicy.soft_optimal(space.dynamics, Q, R, space.horizon)
    return family, theta, policy


def test_lqr_soft_optimal_policy_is_exact_without_noise_and_consistent_with_it():
    # W -> 0: the exact model is this policy (start tilted, transitions deterministic); the
    # untilted transitions leave a log-weight spread linear in the noise scale (about 100 x noise here)
    for noise in (1e-4, 1e-7):
        family, theta, policy = _lqr_policy(noise)
        x, log_q = policy.sample_and_log_prob(jax.random.key(0), 2000)
        assert jnp.allclose(policy.log_prob(x), log_q, atol=1e-10)
        log_weights = -family.cost_fn(theta, x) - log_q
        assert jnp.max(jnp.abs(log_weights - family.log_partition_fn(theta))) < 200 * noise
    # with noise, the untilted transitions cost weight variance, but IS stays unbiased in Z
    family, theta, policy = _lqr_policy(0.05)
    x, log_q = policy.sample_and_log_prob(jax.random.key(1), 100_000)
    from tests.helpers import log_z_stderr

    log_weights = -family.cost_fn(theta, x) - log_q
    estimate = jax.nn.logsumexp(log_weights) - jnp.log(100_000.0)
    assert abs(estimate - family.log_partition_fn(theta)) < 5 * log_z_stderr(log_weights) + 1e-3


def _tilted_lqr_policy(noise):
    from maxent_gan.inference.proposals.policy import LinearGaussianPolicy
    from maxent_gan.models.irl_problems import LQR_THETA, lqr_family

    space, family = lqr_family(noise=noise)
    theta = jnp.asarray(LQR_THETA)
    Q, R = space.matrices(theta)
    return family, theta, LinearGaussianPolicy.soft_optimal(space.dynamics, Q, R, space.horizon, tilted=True)


def test_tilted_lqr_soft_optimal_policy_is_p_theta_itself():
    # with the transitions tilted by β_{t+1}, the proposal is the exact model: every log weight is log Z
    # (closed form, Riccati), at a noise where the untilted policy's weights spread by more than a nat
    for noise in (0.05, 0.5):
        family, theta, policy = _tilted_lqr_policy(noise)
        x, log_q = policy.sample_and_log_prob(jax.random.key(0), 2000)
        assert jnp.allclose(policy.log_prob(x), log_q, atol=1e-10)
        log_weights = -family.cost_fn(theta, x) - log_q
        assert jnp.max(jnp.abs(log_weights - family.log_partition_fn(theta))) < 1e-9
    _, _, untilted = _lqr_policy(0.05)
    x, log_q = untilted.sample_and_log_prob(jax.random.key(0), 2000)
    assert jnp.std(-family.cost_fn(theta, x) - log_q) > 0.1  # the tilts are what made it exact


def test_tilted_lqr_policy_off_the_optimum_is_a_normalized_density():
    # perturbed tilts: log_prob agrees with the draws' own density, and importance sampling with it
    # estimates the closed-form log Z (a density that did not integrate to one would be off by its mass)
    from tests.helpers import log_z_stderr

    family, theta, policy = _tilted_lqr_policy(0.05)
    keys = jax.random.split(jax.random.key(5), 3)
    policy = eqx.tree_at(lambda p: (p.transition_gain, p.transition_shift, p.transition_tril), policy,
                         (policy.transition_gain * (1 + 0.05 * jax.random.normal(keys[0], policy.transition_gain.shape)),
                          policy.transition_shift + 0.01 * jax.random.normal(keys[1], policy.transition_shift.shape),
                          policy.transition_tril + 0.05 * jax.random.normal(keys[2], policy.transition_tril.shape)))
    x, log_q = policy.sample_and_log_prob(jax.random.key(1), 50_000)
    assert jnp.allclose(policy.log_prob(x), log_q, atol=1e-10)
    log_weights = -family.cost_fn(theta, x) - log_q
    assert jnp.std(log_weights) > 0.05  # off the optimum, so the check has something to see
    estimate = jax.nn.logsumexp(log_weights) - jnp.log(50_000.0)
    assert abs(estimate - family.log_partition_fn(theta)) < 5 * log_z_stderr(log_weights) + 1e-3


def test_tilted_lqr_policy_needs_a_noise_to_tilt_and_cloning_fits_the_tilts():
    from maxent_gan.inference.irl import linear_gaussian_cloning
    from maxent_gan.inference.proposals.policy import LinearGaussianPolicy

    family, theta, exact = _tilted_lqr_policy(0.05)
    A, B, W, m0, S0 = exact.system
    with pytest.raises(ValueError, match="transitions: a tilted linear-Gaussian policy needs a positive definite"):
        LinearGaussianPolicy.broad((A, B, 0 * W, m0, S0), exact.layout.horizon, tilted=True)
    broad = LinearGaussianPolicy.broad(exact.system, exact.layout.horizon, tilted=True)
    x, log_q = broad.sample_and_log_prob(jax.random.key(0), 100)  # zero tilts: the dynamics' own transitions
    untilted = LinearGaussianPolicy.broad(exact.system, exact.layout.horizon)
    assert jnp.allclose(log_q, untilted.log_prob(x), atol=1e-10)
    demos = family.sampler(jax.random.key(2), theta, 20_000)
    cloned = linear_gaussian_cloning(broad, demos)
    held_out = family.sampler(jax.random.key(3), theta, 20_000)
    excess = jnp.mean(exact.log_prob(held_out)) - jnp.mean(cloned.log_prob(held_out))
    assert -0.03 < excess < 0.03, excess  # about 200 parameters on 2·10⁴ demos: ~0.005 nats
    assert jnp.allclose(cloned.transition_gain, exact.transition_gain, atol=0.1)


def test_linear_gaussian_cloning_recovers_the_exact_policy():
    from maxent_gan.inference.irl import linear_gaussian_cloning

    family, theta, exact = _lqr_policy(1e-7)
    demos = family.sampler(jax.random.key(2), theta, 20_000)
    cloned = linear_gaussian_cloning(exact, demos)
    # late states have collapsed near 0, so single gains are poorly determined; the fit as a whole is
    # judged by held-out likelihood: about 90 parameters on 2·10⁴ demos cost ~P/(2n) = 0.002 nats
    held_out = family.sampler(jax.random.key(3), theta, 20_000)
    excess = jnp.mean(exact.log_prob(held_out)) - jnp.mean(cloned.log_prob(held_out))
    assert -0.02 < excess < 0.02, excess
    assert jnp.allclose(cloned.initial_mean, exact.initial_mean, atol=0.02)
    assert jnp.allclose(cloned.K[0], exact.K[0], atol=0.15)  # x0 has spread: about 5 standard errors


@pytest.mark.parametrize("method", ["exact", "gcl", "gan"])
def test_irl_recovers_the_lqr_cost(method):
    run = train_ebm("lqr", method, steps=300, num_train=1000, num_test=500, batch_size=500, eval_every=300,
                    progress=False)
    summary = ebm_summary(run)
    assert summary["stopped"] is None
    assert summary["theta_error"] < 0.3, summary
    assert summary["held_out_nll"] - summary["true_nll"] < 0.05, summary
    if method == "gan":
        assert abs(summary["log_z_learned"] - summary["log_z_exact"]) < 0.1, summary


def test_bad_mdps_are_refused_with_the_place():
    from maxent_gan.models.irl_problems import tabular_family

    mdp = gridworld(3, horizon=4)
    with pytest.raises(ValueError, match=r"features: 1 non-finite value\(s\); first at state 4, action 2, feature 'distance'"):
        tabular_family(mdp._replace(features=mdp.features.at[4, 2, 2].set(jnp.nan)))
    with pytest.raises(ValueError, match="initial: expected 9 probabilities"):
        tabular_family(mdp._replace(initial=jnp.ones(9)))
    dense = np.asarray(mdp.transitions.dense()).copy()
    dense[5, 1, :] *= 0.5
    with pytest.raises(ValueError, match=r"transitions: 1 row\(s\) do not sum to 1; first \(s=5, a=1\)"):
        tabular_family(mdp._replace(transitions=dense))


def test_pointmass_demonstrations_are_the_trajectory_model_where_it_is_an_lqr():
    """Without drag or obstacles and with the goal at the origin, the point mass is an LQR:
    NUTS demonstrations must have the exact model's moments (the base measure is handled)."""
    from maxent_gan.models.lqr import sample_trajectories as lqr_samples
    from maxent_gan.models.pointmass import PointMass, pointmass_cost, pointmass_demonstrations

    task = PointMass(drag=0.0, obstacles=(), goal=(0.0, 0.0), horizon=6, noise=0.05, start_scale=0.5)
    theta = jnp.array([2.0, 0.0, -0.5])
    dt, eye = task.dt, jnp.eye(2)
    A = jnp.block([[eye, dt * eye], [jnp.zeros((2, 2)), eye]])
    B = jnp.concatenate([dt**2 * eye, dt * eye])
    Q = jnp.diag(jnp.array([2.0, 2.0, 0.0, 0.0]))
    R = jnp.exp(-0.5) * eye
    m0, S0 = task.start()
    exact_states, exact_actions = lqr_samples(jax.random.key(0), A, B, Q, R, task.noise**2 * jnp.eye(4), m0, S0,
                                              task.horizon, 50_000)
    demos = pointmass_demonstrations(jax.random.key(1), task, theta, 2000)
    states, actions = task.layout.unpack(demos)
    for name, sample, reference in [
        ("cost", pointmass_cost(task, theta, states, actions), pointmass_cost(task, theta, exact_states, exact_actions)),
        ("final position²", jnp.sum(states[:, -1, :2] ** 2, -1), jnp.sum(exact_states[:, -1, :2] ** 2, -1)),
        ("first force", actions[:, 0, 0], exact_actions[:, 0, 0]),
    ]:
        # NUTS draws are correlated: allow 5 standard errors at an effective size of n / 4
        stderr = reference.std() / jnp.sqrt(2000 / 4)
        assert abs(sample.mean() - reference.mean()) < 5 * stderr, (name, sample.mean(), reference.mean())


def test_mlp_policy_density_matches_its_draws_and_starts_broad():
    from maxent_gan.inference.proposals.policy import MLPGaussianPolicy
    from maxent_gan.models.pointmass import PointMass

    task = PointMass(horizon=5)
    policy = MLPGaussianPolicy(jax.random.key(0), task.dynamics)
    x, log_q = policy.sample_and_log_prob(jax.random.key(1), 300)
    assert x.shape == (300, task.layout.size)
    assert jnp.allclose(policy.log_prob(x), log_q, atol=1e-8)
    _, actions = task.layout.unpack(x)
    # the untrained policy is N(0, I) on the forces (the broad proposal)
    assert abs(float(actions.std()) - 1.0) < 0.1 and abs(float(actions.mean())) < 0.1


def test_pointmass_refuses_exact():
    # training by gcl, and what it learns, is tested through the CLI (tests/test_cli.py)
    problem = make_problem("pointmass")
    with pytest.raises(ValueError, match="pointmass has none, use gcl or gan"):
        train_ebm(problem, "exact", steps=1, progress=False)


def test_the_dynamics_are_frozen_leaves_no_optimizer_sees():
    # P, p_0 (tabular) and A, B, W, m0, S0 (linear) are paramax.NonTrainable: the optimizer holds no
    # state for them, and a step leaves them as they were
    from maxent_gan.inference.proposals.policy import LinearGaussianPolicy
    from maxent_gan.inference.training import trainable
    mdp = random_mdp(jax.random.key(3), num_states=3, num_actions=2, num_features=3, horizon=3)
    eye = jnp.eye(2)
    system = (0.9 * eye, eye, 0.1 * eye, jnp.zeros(2), eye)  # A, B, W, m0, S0
    costs = linear_costs(jnp.array([0.5, -1.0, 0.3]), mdp.features)
    optimizer = optax.adam(1e-1)
    for policy, cost_of in [
        (TabularPolicy.uniform(mdp.transitions, mdp.initial, 3, tilted=True),
         lambda x: trajectory_cost(costs, *TrajectoryLayout(3).unpack(x))),
        (LinearGaussianPolicy.broad(system, 3), lambda x: jnp.sum(x**2, -1)),
    ]:
        params = jax.tree.leaves(trainable(policy))
        fixed = jax.tree.leaves(policy.dynamics)
        assert fixed and len(params) + len(fixed) == len(jax.tree.leaves(policy))
        opt_state = optimizer.init(trainable(policy))
        assert len(jax.tree.leaves(opt_state)) == 2 * len(params) + 1  # adam: mu, nu per parameter, one count
        new, _, loss, _ = proposal_update(jax.random.key(0), policy, opt_state, sampler_loss, cost_of, optimizer, 64)
        assert np.isfinite(float(loss))
        for before, after in zip(fixed, jax.tree.leaves(new.dynamics), strict=True):
            np.testing.assert_array_equal(before, after)
        assert any(not np.array_equal(b, a) for b, a in zip(params, jax.tree.leaves(trainable(new)), strict=True))
