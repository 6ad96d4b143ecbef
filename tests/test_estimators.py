"""Estimators against closed forms (Gaussian log Z, Gaussian ELBO), in float64."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from maxent_gan.inference.estimators import elbo, iwae, log_z_importance, log_z_mixture
from maxent_gan.inference.proposals import ExactProposal, Gaussian
from maxent_gan.models import gaussian_target_params, quadratic_energy

from tests.helpers import log_z_stderr


@pytest.mark.parametrize("dim", [1, 2, 5, 10, 25, 50])
def test_importance_estimate_matches_gaussian_closed_form(dim):
    target = quadratic_energy(gaussian_target_params(dim))
    covariance = jnp.linalg.inv(target.params["precision"])
    # slightly broad proposal: bounded weights, so the delta-method error bar is valid
    proposal = Gaussian.from_covariance(target.params["loc"], 1.1**2 * covariance)
    x, log_q = proposal.sample_and_log_prob(jax.random.key(dim), 20_000)
    estimate = log_z_importance(target.cost(x), log_q)
    error = float(estimate.log_z - target.log_normalizer)
    assert abs(error) < 5 * log_z_stderr(estimate.log_weights) + 1e-12
    assert estimate.k_hat < 0.5
    assert 1.0 <= estimate.ess <= 20_000


@pytest.mark.parametrize("dim", [1, 3, 20])
def test_exact_proposal_gives_exact_log_z_and_constant_weights(dim):
    target = quadratic_energy(gaussian_target_params(dim))
    x, log_q = ExactProposal(target).sample_and_log_prob(jax.random.key(0), 500)
    estimate = log_z_importance(target.cost(x), log_q)
    assert jnp.abs(estimate.log_z - target.log_normalizer) < 1e-10
    assert jnp.abs(estimate.ess - 500) < 1e-6
    assert estimate.k_hat == -jnp.inf  # constant weights: the tail is empty


def test_importance_estimate_is_consistent():
    """The error shrinks like 1/sqrt(n): mean |error| over seeds drops ~10x from n to 100 n."""
    target = quadratic_energy(gaussian_target_params(4))
    proposal = Gaussian.isotropic(4, 1.8)

    def mean_abs_error(n):
        errors = []
        for seed in range(20):
            x, log_q = proposal.sample_and_log_prob(jax.random.key(seed), n)
            errors.append(abs(float(log_z_importance(target.cost(x), log_q).log_z - target.log_normalizer)))
        return np.mean(errors)

    small, large = mean_abs_error(200), mean_abs_error(20_000)
    assert large < small / 5
    assert large < 0.02


def test_mixture_estimate_is_consistent_when_data_come_from_the_model():
    target = quadratic_energy(gaussian_target_params(3))
    proposal = Gaussian.isotropic(3, 2.5)
    key_data, key_q = jax.random.split(jax.random.key(7))
    for n, tolerance in [(300, 0.15), (30_000, 0.015)]:
        data = target.sample(key_data, (n,))
        x, log_q = proposal.sample_and_log_prob(key_q, n)
        estimate = log_z_mixture(target.cost(data), target.cost(x), proposal.log_prob(data), log_q)
        assert abs(float(estimate.log_z - target.log_normalizer)) < tolerance


def test_mixture_estimate_is_biased_when_data_do_not_come_from_the_model():
    """Documented behaviour: the GCL estimate targets Z only at p_theta = p_data."""
    target = quadratic_energy(gaussian_target_params(2))
    shifted = quadratic_energy({**target.params, "loc": target.params["loc"] + 2.0})
    proposal = Gaussian.isotropic(2, 2.5)
    data = shifted.sample(jax.random.key(1), (20_000,))
    x, log_q = proposal.sample_and_log_prob(jax.random.key(2), 20_000)
    estimate = log_z_mixture(target.cost(data), target.cost(x), proposal.log_prob(data), log_q)
    assert abs(float(estimate.log_z - target.log_normalizer)) > 0.1


def gaussian_kl(q: Gaussian, target) -> float:
    """KL(q || p) for Gaussians, closed form."""
    precision, loc = target.params["precision"], target.params["loc"]
    cov_q = q.scale_tril @ q.scale_tril.T
    dim = loc.shape[0]
    delta = loc - q.loc
    return float(
        0.5 * (jnp.trace(precision @ cov_q) + delta @ precision @ delta - dim
               - jnp.linalg.slogdet(cov_q)[1] - jnp.linalg.slogdet(precision)[1])
    )


def test_elbo_matches_closed_form():
    target = quadratic_energy(gaussian_target_params(5))
    proposal = Gaussian.from_covariance(jnp.zeros(5), 0.7 * jnp.eye(5))
    x, log_q = proposal.sample_and_log_prob(jax.random.key(3), 50_000)
    estimate = elbo(target.cost(x), log_q)
    exact = float(target.log_normalizer) - gaussian_kl(proposal, target)
    assert abs(float(estimate.bound) - exact) < 5 * float(estimate.stderr)
    assert estimate.stderr < 0.02


def test_bounds_are_ordered_in_expectation():
    """E[ELBO] < E[IWAE_10] < E[IWAE_100] < log Z, each gap many standard errors wide."""
    target = quadratic_energy(gaussian_target_params(3))
    proposal = Gaussian.isotropic(3, 0.6)  # too narrow: clear gaps
    x, log_q = proposal.sample_and_log_prob(jax.random.key(4), 200_000)
    costs = target.cost(x)
    bounds = [elbo(costs, log_q), iwae(costs, log_q, 10), iwae(costs, log_q, 100)]
    values = [float(b.bound) for b in bounds] + [float(target.log_normalizer)]
    errors = [float(b.stderr) for b in bounds] + [0.0]
    for (lo, e_lo), (hi, e_hi) in itertools.pairwise(zip(values, errors, strict=True)):
        assert hi - lo > 4 * math.hypot(e_lo, e_hi)


@pytest.mark.filterwarnings("ignore::maxent_gan.inference.diagnostics.UnreliableEstimateWarning")
def test_bounds_are_ordered_on_the_same_draws():
    """Deterministic Jensen: mean(lw) <= mean_groups logmeanexp <= logmeanexp(lw)."""
    rng = np.random.default_rng(0)
    costs, log_q = rng.normal(size=600) * 3, rng.normal(size=600)
    a, b = elbo(costs, log_q).bound, iwae(costs, log_q, 20).bound
    c = log_z_importance(costs, log_q).log_z
    assert a <= b <= c


def test_iwae_with_k_one_is_elbo():
    rng = np.random.default_rng(1)
    costs, log_q = rng.normal(size=100), rng.normal(size=100)
    assert jnp.abs(iwae(costs, log_q, 1).bound - elbo(costs, log_q).bound) < 1e-14


def test_estimators_agree_under_jit():
    rng = np.random.default_rng(2)
    costs, log_q = jnp.asarray(rng.normal(size=300)), jnp.asarray(rng.normal(size=300))
    eager = log_z_importance(costs, log_q)
    jitted = jax.jit(log_z_importance)(costs, log_q)
    assert eager.forward is None and jitted.forward is None  # no data given: no forward check
    assert eager.checks_run.startswith("only the reverse check")
    for a, b in zip(eager[:4], jitted[:4], strict=True):
        assert jnp.allclose(a, b, rtol=1e-12, atol=1e-12)
    eager = log_z_mixture(costs[:100], costs[100:], log_q[:100], log_q[100:])
    jitted = jax.jit(log_z_mixture)(costs[:100], costs[100:], log_q[:100], log_q[100:])
    for a, b in zip(eager[:4], jitted[:4], strict=True):
        assert jnp.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_k_hat_flags_a_heavy_tailed_proposal():
    """A proposal much narrower than the target gives heavy-tailed weights, and the result says so; the
    estimator itself does not warn, so eager and jitted calls give one verdict."""
    import warnings

    target = quadratic_energy(gaussian_target_params(2))
    proposal = Gaussian.isotropic(2, 0.3)
    x, log_q = proposal.sample_and_log_prob(jax.random.key(5), 5000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        estimate = log_z_importance(target.cost(x), log_q)
    assert estimate.k_hat > 0.7 and not estimate.reliable
    assert any("k-hat" in reason for reason in estimate.unreliable_reasons())
    jitted = jax.jit(log_z_importance)(target.cost(x), log_q)
    assert jitted.unreliable_reasons() == estimate.unreliable_reasons()
