"""The θ-following proposal: the anchor mixture (MIS, balance heuristic) and its fit at anchors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

from inference.estimators import log_z_importance
from inference.proposals import AnchorMixture, DiagonalGaussian, Gaussian, TabularPolicy
from inference.sampler import fit_at_anchors, sigma_anchors
from models.gridworld import gridworld


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
                         steps=400, num_draws=256, optimizer=optax.adam(0.05), chunk=100, progress=False)
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


def test_posterior_under_the_anchor_mixture_is_the_conjugate_posterior():
    """NUTS on the normalized model with an anchor mixture as the proposal: each component refitted at
    one anchor precision, the draws fixed, log Ẑ(θ) smooth in θ. The conjugate posterior is exact."""
    from numpyro.infer import MCMC, NUTS

    from inference.handler import normalized
    from tests.test_handler import DIM, conjugate, model

    data = jax.random.normal(jax.random.key(0), (200, DIM)) / jnp.sqrt(3.0)
    mean, sd = conjugate(data)
    anchors = sigma_anchors(np.array([mean]), np.array([[sd**2]]), spread=1.5)[:, 0]  # 3 precisions

    def cost_fn(precision, x):
        return 0.5 * precision * jnp.sum(x**2, -1)

    mix = fit_at_anchors(jax.random.key(1), Gaussian.isotropic(DIM, 0.8), cost_fn, jnp.asarray(anchors), steps=300,
                         optimizer=optax.adam(0.02), progress=False)
    handled = normalized(model, mix, 20_000, jax.random.key(2))
    mcmc = MCMC(NUTS(handled), num_warmup=300, num_samples=1000, progress_bar=False)
    mcmc.run(jax.random.key(3), data)
    draws = mcmc.get_samples()["precision"]
    # Monte Carlo error of the mean with ~300 effective draws, plus the IS bias allowance (as for a fixed proposal)
    assert abs(float(draws.mean()) - mean) < 0.3 * sd, (float(draws.mean()), mean)
    assert abs(float(draws.std()) - sd) < 0.3 * sd
