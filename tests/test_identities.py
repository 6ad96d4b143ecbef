"""The paper's three claims (DESIGN.md §1), in float64, to ~1e-10."""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest
from maxent_gan.inference.estimators import log_mean_exp, log_z_mixture, mixture_log_weights
from maxent_gan.inference.objectives import cost_loss, discriminator_loss, generator_loss, sampler_loss
from maxent_gan.inference.proposals import Gaussian

from tests.helpers import gaussian_setup, tilted_cost, tilted_theta

SIZES = [(400, 700), (1000, 50), (37, 37)]


def newton_argmin(loss, start=0.0, iterations=200):
    """Independent minimizer of a convex scalar function: damped Newton on autodiff."""
    grad, hess, loss = jax.jit(jax.grad(loss)), jax.jit(jax.hessian(loss)), jax.jit(loss)
    value = jnp.asarray(start)
    for _ in range(iterations):
        step = grad(value) / hess(value)
        # line search only far from the optimum: near it, loss values cannot resolve the step
        while jnp.abs(step) > 1e-3 and loss(value - step) > loss(value):
            step = step / 2
        if jnp.abs(step) < 1e-15 * (1 + jnp.abs(value)):
            break
        value = value - step
    return value


def _costs(theta, setup):
    return tilted_cost(theta, setup.data), tilted_cost(theta, setup.samples)


@pytest.mark.parametrize(("num_data", "num_samples"), SIZES, ids=lambda v: str(v))
def test_discriminator_optimum_is_mixture_estimate(num_data, num_samples):
    setup = gaussian_setup(jax.random.key(0), num_data=num_data, num_samples=num_samples)
    cost_data, cost_samples = _costs(tilted_theta(3), setup)

    def loss(log_z):
        return discriminator_loss(cost_data, cost_samples, setup.log_q_data, setup.log_q_samples, log_z)

    estimate = log_z_mixture(cost_data, cost_samples, setup.log_q_data, setup.log_q_samples)
    argmin = newton_argmin(loss, start=-3.0)
    assert jnp.abs(estimate.log_z - argmin) < 1e-10
    assert jnp.abs(jax.grad(loss)(estimate.log_z)) < 1e-12
    assert jax.hessian(loss)(estimate.log_z) > 0


def test_mixture_estimate_is_the_fixed_point():
    """:math:`Z^* = E_\\mu[e^{-c}/\\tilde\\mu(Z^*)]`, μ the ½-½ mixture of the two empirical sets."""
    setup = gaussian_setup(jax.random.key(1), num_data=120, num_samples=900)
    cost_data, cost_samples = _costs(tilted_theta(3), setup)
    log_z = log_z_mixture(cost_data, cost_samples, setup.log_q_data, setup.log_q_samples).log_z
    fixed_point = jnp.logaddexp(
        log_mean_exp(mixture_log_weights(cost_data, setup.log_q_data, log_z)),
        log_mean_exp(mixture_log_weights(cost_samples, setup.log_q_samples, log_z)),
    ) - jnp.log(2.0)
    assert jnp.abs(fixed_point - log_z) < 1e-12
    # a different log Z is not a fixed point: the test can fail
    moved = jnp.logaddexp(
        log_mean_exp(mixture_log_weights(cost_data, setup.log_q_data, log_z + 0.5)),
        log_mean_exp(mixture_log_weights(cost_samples, setup.log_q_samples, log_z + 0.5)),
    ) - jnp.log(2.0)
    assert jnp.abs(moved - (log_z + 0.5)) > 1e-3


@pytest.mark.parametrize(("num_data", "num_samples"), SIZES, ids=lambda v: str(v))
def test_discriminator_gradient_is_cost_gradient_at_optimum(num_data, num_samples):
    setup = gaussian_setup(jax.random.key(2), num_data=num_data, num_samples=num_samples)
    theta = tilted_theta(3)

    def loss_of(objective, log_z):
        def loss(theta):
            cost_data, cost_samples = _costs(theta, setup)
            return objective(cost_data, cost_samples, setup.log_q_data, setup.log_q_samples, log_z)

        return loss

    log_z = log_z_mixture(*_costs(theta, setup), setup.log_q_data, setup.log_q_samples).log_z
    grad_disc = jax.grad(loss_of(discriminator_loss, log_z))(theta)
    grad_cost = jax.grad(loss_of(cost_loss, log_z))(theta)
    for name in theta:
        assert jnp.max(jnp.abs(grad_disc[name])) > 1e-3  # non-trivial gradients
        assert jnp.max(jnp.abs(grad_disc[name] - grad_cost[name])) < 1e-10
    # away from the optimum they differ (the identity is specific to Z*)
    grad_disc_off = jax.grad(loss_of(discriminator_loss, log_z + 0.7))(theta)
    grad_cost_off = jax.grad(loss_of(cost_loss, log_z + 0.7))(theta)
    assert max(float(jnp.max(jnp.abs(grad_disc_off[n] - grad_cost_off[n]))) for n in theta) > 1e-3


def test_cost_loss_value_at_optimum_is_mean_cost_plus_log_z():
    setup = gaussian_setup(jax.random.key(3))
    cost_data, cost_samples = _costs(tilted_theta(3), setup)
    log_z = log_z_mixture(cost_data, cost_samples, setup.log_q_data, setup.log_q_samples).log_z
    value = cost_loss(cost_data, cost_samples, setup.log_q_data, setup.log_q_samples, log_z)
    assert jnp.abs(value - (cost_data.mean() + log_z)) < 1e-12


@pytest.mark.parametrize("log_z", [-40.0, -1.3, 0.0, 2.5, 60.0])
def test_generator_loss_is_sampler_loss_plus_log_z(log_z):
    setup = gaussian_setup(jax.random.key(4))
    cost_samples = tilted_cost(tilted_theta(3), setup.samples)
    gen = generator_loss(cost_samples, setup.log_q_samples, log_z)
    sam = sampler_loss(cost_samples, setup.log_q_samples)
    assert jnp.abs(gen - sam - log_z) < 1e-10


def test_generator_and_sampler_have_the_same_gradient_in_q():
    """Claim 3 for training: the generator minimizes the same KL as the MaxEnt sampler."""
    theta, key = tilted_theta(3), jax.random.key(5)
    proposal = Gaussian.from_covariance(jnp.array([0.1, -0.2, 0.3]), jnp.eye(3) * 0.8 + 0.1)

    def loss_of(objective):
        @eqx.filter_grad
        def grad(q):
            x, log_q = q.sample_and_log_prob(key, 500)
            return objective(tilted_cost(theta, x), log_q)

        return grad

    g_gen = loss_of(lambda c, lq: generator_loss(c, lq, 1.7))(proposal)
    g_sam = loss_of(sampler_loss)(proposal)
    assert jnp.max(jnp.abs(g_sam.loc)) > 1e-3  # non-trivial gradient
    for a, b in zip(jax.tree.leaves(g_gen), jax.tree.leaves(g_sam), strict=True):
        assert jnp.max(jnp.abs(a - b)) < 1e-10


def test_mixture_log_z_gradient_matches_finite_differences():
    setup = gaussian_setup(jax.random.key(6), num_data=50, num_samples=80)
    theta = tilted_theta(3)

    def log_z_of(w):
        t = {**theta, "w": w}
        return log_z_mixture(*_costs(t, setup), setup.log_q_data, setup.log_q_samples).log_z

    grad = jax.grad(log_z_of)(theta["w"])
    eps = 1e-6
    for j in range(3):
        e = jnp.zeros(3).at[j].set(eps)
        fd = (log_z_of(theta["w"] + e) - log_z_of(theta["w"] - e)) / (2 * eps)
        assert jnp.abs(fd - grad[j]) < 1e-7
