"""The Unnormalized distribution and the quadratic energy against independent references."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from maxent_gan.models import Unnormalized, gaussian_model, gaussian_target_params, quadratic_cost, quadratic_energy
from maxent_gan.models.unnormalized import MissingNormalizerWarning
from numpyro.infer import MCMC, NUTS
from scipy import integrate


def test_log_partition_matches_quadrature_in_1d_and_2d():
    for dim in (1, 2):
        target = quadratic_energy(gaussian_target_params(dim))
        cost = jax.jit(target.cost)  # one compiled program for the quadrature's many points
        if dim == 1:
            value, _ = integrate.quad(lambda x, cost=cost: math.exp(-float(cost(np.array([x])))), -30, 30,
                                      epsabs=1e-13, epsrel=1e-13)
        else:
            value, _ = integrate.dblquad(lambda y, x, cost=cost: math.exp(-float(cost(np.array([x, y])))),
                                         -15, 15, -15, 15, epsabs=1e-12, epsrel=1e-12)
        assert abs(math.log(value) - float(target.log_normalizer)) < 1e-9


@pytest.mark.parametrize("dim", [1, 2, 7, 50])
def test_log_partition_matches_eigen_decomposition(dim):
    """log Z = sum_i ½ log(2π / λ_i): an independent route (eigenvalues, not Cholesky)."""
    target = quadratic_energy(gaussian_target_params(dim))
    eigenvalues = np.linalg.eigvalsh(np.asarray(target.params["precision"]))
    expected = float(np.sum(0.5 * np.log(2 * np.pi / eigenvalues)))
    assert abs(float(target.log_normalizer) - expected) < 1e-10


def test_exact_sampler_has_the_right_moments():
    target = quadratic_energy(gaussian_target_params(4))
    x = target.sample(jax.random.key(0), (200_000,))
    covariance = np.linalg.inv(np.asarray(target.params["precision"]))
    assert np.max(np.abs(np.mean(x, 0) - target.params["loc"])) < 0.015
    assert np.max(np.abs(np.cov(np.asarray(x).T) - covariance)) < 0.03


def test_normalized_log_prob_is_numpyros_gaussian():
    params = gaussian_target_params(3)
    target = quadratic_energy(params)
    x = target.sample(jax.random.key(1), (10,))
    reference = numpyro.distributions.MultivariateNormal(params["loc"], precision_matrix=params["precision"])
    assert jnp.max(jnp.abs(target.normalized_log_prob(x) - reference.log_prob(x))) < 1e-10
    assert jnp.max(jnp.abs(target.unnormalized_log_prob(x) + quadratic_cost(params, x))) < 1e-12


def test_unnormalized_without_sampler_raises_a_clear_error():
    energy = Unnormalized(quadratic_cost, gaussian_target_params(2), event_shape=(2,))
    with pytest.raises(NotImplementedError, match="no exact sampler"):
        energy.sample(jax.random.key(0), (3,))
    with pytest.raises(ValueError, match="log_normalizer"):
        energy.normalized_log_prob(jnp.zeros((1, 2)))


def test_unnormalized_with_base_density_adds_its_log():
    base = numpyro.distributions.Normal(0.0, 2.0).expand([2]).to_event(1)
    energy = Unnormalized(lambda p, x: p * jnp.sum(x, -1), 0.3, event_shape=(2,), base_log_prob=base.log_prob)
    x = jnp.array([[0.5, -1.0], [2.0, 3.0]])
    assert jnp.allclose(energy.unnormalized_log_prob(x), base.log_prob(x) - 0.3 * jnp.sum(x, -1))


def test_unnormalized_is_a_pytree_that_survives_jit_and_expand():
    energy = quadratic_energy(gaussian_target_params(2))
    x = jnp.ones((5, 2))
    assert jnp.allclose(jax.jit(lambda d: d.unnormalized_log_prob(x))(energy), energy.unnormalized_log_prob(x))
    expanded = energy.expand((5,))
    # NumPyro's API: the same values, with the warning that no normalizing handler is in place
    with pytest.warns(MissingNormalizerWarning):
        assert expanded.batch_shape == (5,) and jnp.allclose(expanded.log_prob(x), energy.unnormalized_log_prob(x))


def test_gaussian_model_runs_in_numpyro():
    """The model is a plain NumPyro function; NUTS runs on it, and without the normalizing
    handler the run says that its posterior ignores Z(θ)."""
    data = quadratic_energy(gaussian_target_params(2)).sample(jax.random.key(2), (50,))
    mcmc = MCMC(NUTS(gaussian_model), num_warmup=20, num_samples=20, progress_bar=False)
    with pytest.warns(MissingNormalizerWarning):
        mcmc.run(jax.random.key(3), data)
    assert mcmc.get_samples()["loc"].shape == (20, 2)
