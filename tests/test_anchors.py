"""The θ-following proposal: the anchor mixture (MIS, balance heuristic) and its fit at anchors."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from maxent_gan.inference.estimators import log_z_importance
from maxent_gan.inference.normalizers import Importance, MISControlVariates
from maxent_gan.inference.proposals import AnchorMixture, DiagonalGaussian, Gaussian, TabularPolicy
from maxent_gan.inference.sampler import box_anchors, fit_at_anchors, sigma_anchors
from maxent_gan.models.gridworld import gridworld
from scipy import stats


def _gaussians():
    locs = jnp.array([[-1.0, 0.0], [0.5, 1.0], [2.0, -1.0]])
    scales = jnp.array([[0.7, 1.1], [1.0, 0.6], [0.8, 0.9]])
    return [DiagonalGaussian(m, s) for m, s in zip(locs, scales, strict=True)], locs, scales


def test_density_is_the_equal_weight_mixture():
    qs, locs, scales = _gaussians()
    mix = AnchorMixture.stack(qs)
    x = jax.random.normal(jax.random.key(0), (50, 2)) * 2
    expected = np.log(np.mean([stats.norm(np.asarray(m), np.asarray(s)).pdf(np.asarray(x)).prod(-1)
                               for m, s in zip(locs, scales, strict=True)], axis=0))
    np.testing.assert_allclose(mix.log_prob(x), expected, rtol=1e-10)
    np.testing.assert_allclose(mix.component(1).log_prob(x), qs[1].log_prob(x), rtol=1e-12)


@pytest.mark.parametrize("n", [300, 301, 302])
def test_draws_are_stratified_and_match_the_density(n):
    qs, _, _ = _gaussians()
    mix = AnchorMixture.stack(qs)
    x, log_q = mix.sample_and_log_prob(jax.random.key(1), n)
    assert x.shape == (n, 2)
    np.testing.assert_allclose(log_q, mix.log_prob(x), rtol=1e-12)
    # the first n // K draws of each component come in blocks: their means are the components' means
    per = n // 3
    for k in range(3):
        block = np.asarray(x[k * per:(k + 1) * per])
        assert np.all(np.abs(block.mean(0) - np.asarray(qs[k].loc)) < 5 * np.exp(np.asarray(qs[k].log_scale)) / math.sqrt(per))


def test_mis_estimate_is_unbiased_for_a_known_normalizer():
    """Z of exp(-|x - m|² / 2) is 2π; the balance-heuristic estimate averages to it over replicates."""
    qs, _, _ = _gaussians()
    mix = AnchorMixture.stack(qs)
    m = jnp.array([0.5, 0.2])

    def z_hat(key):
        x, log_q = mix.sample_and_log_prob(key, 31)  # 31 = 3 * 10 + 1: the remainder path too
        return jnp.mean(jnp.exp(-0.5 * jnp.sum((x - m) ** 2, -1) - log_q))

    values = np.asarray(jax.vmap(z_hat)(jax.random.split(jax.random.key(2), 4000)))
    assert abs(values.mean() - 2 * math.pi) < 4 * values.std() / math.sqrt(values.size)


def test_tabular_policies_stack_and_keep_their_density():
    mdp = gridworld(4, horizon=5)
    costs = [jax.random.normal(k, (16, 5)) for k in jax.random.split(jax.random.key(3), 2)]
    policies = [TabularPolicy.soft_optimal(c, mdp.transitions, mdp.initial, mdp.horizon, tilted=True) for c in costs]
    mix = AnchorMixture.stack(policies)
    x, log_q = mix.sample_and_log_prob(jax.random.key(4), 64)
    expected = jnp.logaddexp(policies[0].log_prob(x), policies[1].log_prob(x)) - math.log(2)
    np.testing.assert_allclose(log_q, expected, rtol=1e-10)
    assert not mix.reparameterized


def test_stack_refuses_mixed_families_and_bad_leaves():
    with pytest.raises(ValueError, match="not of the same family"):
        AnchorMixture.stack([Gaussian.isotropic(2, 1.0), DiagonalGaussian(jnp.zeros(2), jnp.ones(2))])
    with pytest.raises(ValueError, match="leading axis of length 3"):
        AnchorMixture(DiagonalGaussian(jnp.zeros(2), jnp.ones(2)), 3)
    with pytest.raises(ValueError, match="at least one"):
        AnchorMixture.stack([])


def test_fit_at_anchors_moves_each_copy_to_its_anchor():
    """Reverse KL from N(0, I) to exp(-|x - θ_k|²/(2·0.5²)): each component ends at N(θ_k, 0.5² I)."""
    anchors = jnp.array([[-2.0, 1.0], [0.0, 0.0], [3.0, -1.0]])

    def cost_fn(theta, x):
        return 0.5 * jnp.sum((x - theta) ** 2, -1) / 0.25

    mix = fit_at_anchors(jax.random.key(5), DiagonalGaussian(jnp.zeros(2), jnp.ones(2)), cost_fn, anchors,
                         steps=400, num_draws=256, optimizer=optax.adam(0.05), chunk=100, progress=False).proposal
    assert mix.num_components == 3
    np.testing.assert_allclose(mix.components.loc, anchors, atol=0.05)
    np.testing.assert_allclose(np.exp(mix.components.log_scale), 0.5, atol=0.05)
    # and the mixture's estimate at each anchor is close to the exact log Z = log(2π · 0.25)
    for k in range(3):
        x, log_q = mix.sample_and_log_prob(jax.random.key(6 + k), 3000)
        estimate = log_z_importance(cost_fn(anchors[k], x), log_q)
        assert abs(float(estimate.log_z) - math.log(2 * math.pi * 0.25)) < 0.02


def test_sigma_anchors_cover_the_covariance():
    mean = np.array([1.0, -2.0, 0.5])
    covariance = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 0.5]])
    points = sigma_anchors(mean, covariance, spread=1.5)
    assert points.shape == (7, 3)
    np.testing.assert_allclose(points[0], mean)
    np.testing.assert_allclose(points[1:].mean(0), mean, atol=1e-12)
    np.testing.assert_allclose(np.cov(points[1:].T, bias=True), 1.5**2 * covariance, atol=1e-12)
    with pytest.raises(ValueError, match="covariance: expected shape"):
        sigma_anchors(mean, np.eye(2))


def test_box_anchors_are_the_mean_and_the_corners_of_the_principal_box():
    mean = np.array([1.0, -2.0, 0.5])
    covariance = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 0.5]])
    points = box_anchors(mean, covariance, half_width=3.0)
    assert points.shape == (9, 3)
    np.testing.assert_allclose(points[0], mean)
    # in the whitened coordinates the corners are every sign pattern of ±3
    values, vectors = np.linalg.eigh(covariance)
    whitened = (points[1:] - mean) @ vectors / np.sqrt(values)
    np.testing.assert_allclose(np.abs(whitened), 3.0, atol=1e-12)
    assert len({tuple(np.sign(row)) for row in whitened}) == 8
    # every θ within 3 sd along each principal axis is a convex combination of the corners
    inside = mean + (np.array([2.9, -1.0, 0.4]) * np.sqrt(values)) @ vectors.T
    from scipy.optimize import linprog

    result = linprog(np.zeros(8), A_eq=np.vstack([points[1:].T, np.ones(8)]), b_eq=np.append(inside, 1.0),
                     bounds=(0, None))
    assert result.status == 0
    with pytest.raises(ValueError, match="covariance: expected shape"):
        box_anchors(mean, np.eye(2))


def test_posterior_under_the_anchor_mixture_is_the_conjugate_posterior():
    """NUTS on the normalized model with an anchor mixture as the proposal: each component refitted at
    one anchor precision, the draws fixed, log Ẑ(θ) smooth in θ. The conjugate posterior is exact."""
    from maxent_gan.inference.handler import normalized
    from numpyro.infer import MCMC, NUTS

    from tests.test_handler import DIM, conjugate, model

    data = jax.random.normal(jax.random.key(0), (200, DIM)) / jnp.sqrt(3.0)
    mean, sd = conjugate(data)
    anchors = sigma_anchors(np.array([mean]), np.array([[sd**2]]), spread=1.5)[:, 0]  # 3 precisions

    def cost_fn(precision, x):
        return 0.5 * precision * jnp.sum(x**2, -1)

    mix = fit_at_anchors(jax.random.key(1), Gaussian.isotropic(DIM, 0.8), cost_fn, jnp.asarray(anchors), steps=300,
                         optimizer=optax.adam(0.02), progress=False).proposal
    handled = normalized(model, mix, 20_000, jax.random.key(2))
    mcmc = MCMC(NUTS(handled), num_warmup=300, num_samples=1000, progress_bar=False)
    mcmc.run(jax.random.key(3), data)
    draws = mcmc.get_samples()["precision"]
    # Monte Carlo error of the mean with ~300 effective draws, plus the IS bias allowance (as for a fixed proposal)
    assert abs(float(draws.mean()) - mean) < 0.3 * sd, (float(draws.mean()), mean)
    assert abs(float(draws.std()) - sd) < 0.3 * sd


def _perturbed_policy(mdp, tilted, seed):
    """A tabular policy with random logits (and tilts): not the soft-optimal one of any cost."""
    q = TabularPolicy.uniform(mdp.transitions, mdp.initial, mdp.horizon, tilted=tilted)
    keys = jax.random.split(jax.random.key(seed), 3)
    q = eqx.tree_at(lambda q: q.logits, q, jax.random.normal(keys[0], q.logits.shape))
    q = eqx.tree_at(lambda q: q.initial_logits, q, jax.random.normal(keys[1], q.initial_logits.shape))
    if tilted:
        q = eqx.tree_at(lambda q: q.successor_logits, q, jax.random.normal(keys[2], q.successor_logits.shape))
    return q


def _check_expected_loss_by_enumeration(q, costs, transitions, initial, horizon):
    """``q.expected_loss(costs)`` and its gradient in every trained field equal the sum over every
    enumerated trajectory (those the dynamics make impossible left out), to 1e-12."""
    from maxent_gan.models.tabular import trajectory_cost, trajectory_log_base
    from maxent_gan.models.trajectory import TrajectoryLayout

    from tests.test_tabular import enumerate_trajectories

    states, actions = enumerate_trajectories(transitions.num_states, transitions.num_actions, horizon)
    x = TrajectoryLayout(horizon).pack(states, actions)
    log_base = trajectory_log_base(transitions, initial, states, actions)
    possible = jnp.isfinite(log_base)

    def enumerated(q):
        log_q = q.log_prob(x)
        probs = jnp.exp(jnp.where(possible, log_q + log_base, -jnp.inf))
        return jnp.sum(jnp.where(possible, probs * (trajectory_cost(costs, states, actions) + log_q), 0.0))

    np.testing.assert_allclose(q.expected_loss(costs), enumerated(q), rtol=1e-12)
    grad, expected = (eqx.filter_grad(f)(q) for f in (lambda q: q.expected_loss(costs), enumerated))
    fields = ("logits", "initial_logits") + (("successor_logits",) if q.successor_logits is not None else ())
    for name in fields:
        assert np.isfinite(getattr(grad, name)).all()
        np.testing.assert_allclose(getattr(grad, name), getattr(expected, name), atol=1e-12)


@pytest.mark.parametrize("tilted", [False, True], ids=["plain", "tilted"])
@pytest.mark.parametrize("seed", [0, 1])
def test_expected_loss_is_the_sampler_loss_summed_over_every_trajectory(tilted, seed):
    """E_q[c + log q] by the forward recursion equals the sum over every trajectory of a stochastic MDP
    (enumerated), and its gradient the enumerated one; plus log Z it is 0 at the tilted soft-optimal
    policy and positive elsewhere."""
    from maxent_gan.models.gridworld import linear_costs, random_mdp
    from maxent_gan.models.tabular import log_partition

    mdp = random_mdp(jax.random.key(seed), num_states=3, num_actions=2, num_features=3, horizon=3)
    costs = linear_costs(jax.random.normal(jax.random.key(10 + seed), (3,)), mdp.features)
    q = _perturbed_policy(mdp, tilted, seed)
    _check_expected_loss_by_enumeration(q, costs, mdp.transitions, mdp.initial, mdp.horizon)
    log_z = log_partition(costs, mdp.transitions, mdp.initial, mdp.horizon)
    assert float(q.expected_loss(costs) + log_z) > 0.05  # KL(q‖p) of a random policy
    exact = TabularPolicy.soft_optimal(costs, mdp.transitions, mdp.initial, mdp.horizon, tilted=tilted)
    kl = float(exact.expected_loss(costs) + log_z)
    # tilted: q is p itself; plain: under stochastic dynamics the untilted policy keeps a positive gap
    assert abs(kl) < 1e-12 if tilted else kl > 1e-3


def test_expected_loss_handles_unused_successor_slots_and_a_start_off_part_of_the_states():
    """Sparse dynamics with an unused slot (log prob -inf), a repeated successor, and a start distribution
    that gives one state no mass: the recursion still equals the enumerated sum, tilted, and stays finite
    in value and gradient."""
    from maxent_gan.models.tabular import Transitions

    successors = jnp.array([[[0, 1], [2, 2]], [[1, 0], [2, 0]], [[2, 0], [0, 1]]])
    log_probs = jnp.log(jnp.array([[[0.7, 0.3], [0.5, 0.5]], [[1.0, 0.0], [0.4, 0.6]], [[0.9, 0.1], [1.0, 0.0]]]))
    transitions = Transitions(successors, log_probs)
    initial = jnp.array([0.6, 0.4, 0.0])
    horizon = 3
    mdp = type("MDP", (), {"transitions": transitions, "initial": initial, "horizon": horizon})
    q = _perturbed_policy(mdp, True, 3)
    costs = jax.random.normal(jax.random.key(4), (3, 2))
    _check_expected_loss_by_enumeration(q, costs, transitions, initial, horizon)


def test_fit_at_anchors_with_the_exact_loss_reaches_the_soft_optimal_policy_at_each_anchor():
    """From the uniform policy, the exact-gradient refit at two anchors of a stochastic gridworld ends
    where KL(q_k‖p_{θ_k}) is below 1e-3 nats (the score-function refit of the same length does not),
    and the mixture's estimate at each anchor is within 0.01 nats of the exact log Z."""
    from maxent_gan.models.gridworld import linear_costs
    from maxent_gan.models.tabular import log_partition

    mdp = gridworld(4, horizon=6, slip=0.2)
    anchors = jax.random.normal(jax.random.key(7), (2, mdp.features.shape[-1]))

    def cost_table(theta):
        return linear_costs(theta, mdp.features)

    def cost_fn(theta, x):
        from maxent_gan.models.tabular import trajectory_cost
        from maxent_gan.models.trajectory import TrajectoryLayout

        return trajectory_cost(cost_table(theta), *TrajectoryLayout(mdp.horizon).unpack(x))

    start = TabularPolicy.uniform(mdp.transitions, mdp.initial, mdp.horizon, tilted=True)
    settings = dict(steps=300, optimizer=optax.adam(0.05), chunk=100, progress=False, dtype=None)
    exact = fit_at_anchors(jax.random.key(8), start, cost_fn, anchors,
                           expected_loss=lambda q, theta: q.expected_loss(cost_table(theta)), **settings).proposal
    sampled = fit_at_anchors(jax.random.key(8), start, cost_fn, anchors, num_draws=64, **settings).proposal
    for k in range(2):
        log_z = float(log_partition(cost_table(anchors[k]), mdp.transitions, mdp.initial, mdp.horizon))
        kl_exact = float(exact.component(k).expected_loss(cost_table(anchors[k]))) + log_z
        kl_sampled = float(sampled.component(k).expected_loss(cost_table(anchors[k]))) + log_z
        assert 0 <= kl_exact < 1e-3 < kl_sampled, (kl_exact, kl_sampled)
        x, log_q = exact.sample_and_log_prob(jax.random.key(9 + k), 4000)
        estimate = log_z_importance(cost_fn(anchors[k], x), log_q)
        assert abs(float(estimate.log_z) - log_z) < 0.01


def test_mis_with_control_variates_is_exact_when_the_target_is_in_the_components_span():
    """p̃ = Z (0.3 q_0 + 0.7 q_2): the regression on the controls absorbs every weight's deviation, so the
    estimate is log Z to rounding, with full ESS (of the controlled weights); plain MIS is not. k-hat is
    the raw weights' in both."""
    from maxent_gan.inference.estimators import log_z_importance, log_z_mis_cv

    qs, _, _ = _gaussians()
    mix = AnchorMixture.stack(qs)
    x, log_q = mix.sample_and_log_prob(jax.random.key(0), 3000)
    log_q_components = mix.component_log_probs(x)
    costs = -(2.0 + jnp.logaddexp(math.log(0.3) + log_q_components[0], math.log(0.7) + log_q_components[2]))
    controlled = log_z_mis_cv(costs, log_q, log_q_components)
    np.testing.assert_allclose(controlled.log_z, 2.0, atol=1e-12)
    assert float(controlled.ess) == pytest.approx(3000, rel=1e-9)
    plain = log_z_importance(costs, log_q)
    jitted = jax.jit(lambda c: log_z_mis_cv(c, log_q, log_q_components).log_z)(costs)  # traceable, like the others
    np.testing.assert_allclose(jitted, controlled.log_z, rtol=1e-12)
    assert abs(float(plain.log_z) - 2.0) > 1e-4 and float(plain.ess) < 2500


def test_mis_with_control_variates_is_consistent_and_cuts_the_variance_between_the_anchors():
    """Components at three anchors of a family, N(θ_k, 0.8² I) with θ_k = (-0.6, 0, 0.6) along one axis, and the
    family's members at θ between them: over 300 replicates of 600 draws the controlled estimate of Z averages
    to Z (within its Monte Carlo error plus the O(K/n) bias of a fitted β). On the anchors' line its spread is
    under a third of plain MIS's (the regression absorbs the weights' change along θ); off it, in a direction
    no anchor spans, it still does no worse."""
    from maxent_gan.inference.estimators import controlled_weights, mixture_controls

    locs = jnp.array([[-0.6, 0.0], [0.0, 0.0], [0.6, 0.0]])
    mix = AnchorMixture.stack([DiagonalGaussian(loc, jnp.full(2, 0.8)) for loc in locs])

    def both(key, theta):
        x, log_q = mix.sample_and_log_prob(key, 600)
        log_w = -0.5 * jnp.sum(((x - theta) / 0.8) ** 2, -1) - log_q  # Z = 2π 0.8²
        shift, summands = controlled_weights(log_w, mixture_controls(log_q, mix.component_log_probs(x)))
        return jnp.exp(shift) * jnp.mean(summands), jnp.mean(jnp.exp(log_w))

    z = 2 * math.pi * 0.64
    for theta, ratio in (([0.3, 0.0], 1 / 3), ([0.3, 0.2], 1.0)):
        keys = jax.random.split(jax.random.key(1), 300)
        controlled, plain = (np.asarray(v) for v in jax.vmap(both, in_axes=(0, None))(keys, jnp.array(theta)))
        assert abs(controlled.mean() / z - 1) < 4 * controlled.std() / z / math.sqrt(300) + 3 / 600
        assert controlled.std() < ratio * plain.std(), (theta, controlled.std(), plain.std())


def test_mis_cv_estimator_is_refused_without_an_anchor_mixture_and_checks_its_shapes():
    from maxent_gan.inference.estimators import log_z_mis_cv
    from maxent_gan.inference.handler import normalized

    from tests.test_handler import model

    with pytest.raises(ValueError, match="MISControlVariates needs a mixture of fixed components"):
        normalized(model, Gaussian.isotropic(2, 1.0), 100, jax.random.key(0), estimator=MISControlVariates())
    with pytest.raises(ValueError, match=r"log_q_components: expected shape \(K >= 2, 5\)"):
        log_z_mis_cv(jnp.zeros(5), jnp.zeros(5), jnp.zeros((2, 4)))
    # controlled weights whose mean is not positive are no estimate of Z: ESS 0, so the rule flags the draw
    from maxent_gan.inference.diagnostics import summand_ess_numpy, unreliable_reasons

    ess = summand_ess_numpy(np.array([[2.0, -3.0, 0.5], [1.0, 1.0, 1.0]]))
    np.testing.assert_allclose(ess, [0.0, 3.0])
    assert unreliable_reasons(0.1, float(ess[0]), 3)
    # a correction that would take Ẑ below CV_FLOOR of plain MIS is floored there (weights 3, 0, 0 on
    # controls 1.5, -0.5, 0.5: β = 1.5, controlled mean 0.25 against plain 1) and said to be floored
    from maxent_gan.inference.estimators import CV_FLOOR, MixtureControls, log_mean_controlled

    controls = MixtureControls(jnp.array([[1.0], [-1.0], [0.0]]), jnp.array([0.5]), jnp.array([[math.sqrt(2.0)]]))
    log_z, floored, _ = log_mean_controlled(jnp.log(jnp.array([3.0, 0.0, 0.0])), controls)
    assert bool(floored)
    np.testing.assert_allclose(log_z, math.log(CV_FLOOR * 1.0), rtol=1e-12)
    with pytest.raises(ValueError, match="shard: MISControlVariates does not shard"):
        mix = AnchorMixture.stack(_gaussians()[0])
        normalized(model, mix, 100, jax.random.key(0), estimator=MISControlVariates(), shard=True)


def test_posterior_under_mis_cv_is_the_conjugate_posterior_with_the_controlled_diagnostics():
    """NUTS with the ``"mis-cv"`` estimator on the anchor mixture of the conjugate test: the posterior is the
    conjugate one, and the per-draw ESS is that of the controlled weights (at least the raw weights')."""
    from maxent_gan.inference.posterior import sample_posterior

    from tests.test_handler import DIM, conjugate, model

    data = jax.random.normal(jax.random.key(0), (200, DIM)) / jnp.sqrt(3.0)
    mean, sd = conjugate(data)
    anchors = sigma_anchors(np.array([mean]), np.array([[sd**2]]), spread=1.5)[:, 0]

    def cost_fn(precision, x):
        return 0.5 * precision * jnp.sum(x**2, -1)

    mix = fit_at_anchors(jax.random.key(1), Gaussian.isotropic(DIM, 0.8), cost_fn, jnp.asarray(anchors), steps=300,
                         optimizer=optax.adam(0.02), progress=False).proposal
    settings = dict(key=jax.random.key(3), proposal=mix, num_draws=4000, num_warmup=300, num_samples=500, num_chains=1)
    controlled = sample_posterior(model, data, estimator=MISControlVariates(), **settings)
    plain = sample_posterior(model, data, estimator=Importance(), **settings)
    draws = controlled.posterior["precision"].values.ravel()
    assert abs(draws.mean() - mean) < 0.3 * sd and abs(draws.std() - sd) < 0.3 * sd
    assert controlled.posterior.attrs["estimator"] == "mis-cv"
    ess_cv, ess = (idata.sample_stats["log_z_ess"].values.ravel() for idata in (controlled, plain))
    assert np.median(ess_cv) > np.median(ess)
    assert np.isfinite(controlled.sample_stats["log_z_k_hat"].values).all()
