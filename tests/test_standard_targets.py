"""The standard sampler targets: exact log Z by an independent route, and exact draws with the right law."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from maxent_gan.models.problems import make_problem
from maxent_gan.models.quadrature import log_partition_grid
from maxent_gan.models.standard_targets import funnel_energy, gmm40_energy, manywell_energy, manywell_log_z_1d
from scipy import integrate, stats


def test_gmm40_is_normalized_and_spread_over_the_box():
    target = gmm40_energy()
    locs = np.asarray(target.params["locs"])
    assert locs.shape == (40, 2) and np.all(np.abs(locs) <= 40) and np.ptp(locs, 0).min() > 60
    # midpoint rule, 0.1-wide cells on unit-variance modes: spectrally accurate
    log_z = log_partition_grid(jax.jit(target.cost), ((-50.0, 50.0), (-50.0, 50.0)), 1000)
    assert abs(float(log_z) - float(target.log_normalizer)) < 1e-8
    # the mixture's cost drops the Gaussian constant: log Z = log 2π
    assert abs(float(target.log_normalizer) - math.log(2 * math.pi)) < 1e-12


def test_funnel_log_z_matches_quadrature_in_two_dimensions_and_its_draws_are_the_funnel():
    target = funnel_energy(2)
    cost = jax.jit(target.cost)
    # the inner integral over x at each v, the outer over v: the cost's constants, independently
    def inner(v):  # over x = e^{v/2} z, so that the quadrature sees a unit-width integrand at every v
        scale = math.exp(0.5 * v)
        return scale * integrate.quad(lambda z: math.exp(-float(cost(np.array([v, scale * z])))), -40, 40)[0]

    value, _ = integrate.quad(inner, -30, 30, epsrel=1e-10, limit=200)
    assert abs(math.log(value) - float(target.log_normalizer)) < 1e-7
    x = make_problem("funnel10").target.sample(jax.random.key(0), (100_000,))
    v = np.asarray(x[:, 0])
    standardized = np.asarray(x[:, 1:]) / np.exp(0.5 * v)[:, None]
    assert stats.kstest(v / 3.0, "norm").pvalue > 1e-3
    assert stats.kstest(standardized.ravel()[:100_000], "norm").pvalue > 1e-3


def test_a_funnel_with_another_neck_scale_keeps_a_closed_form_log_z_and_exact_draws():
    # σ = e^θ for the neck: log Z(θ) = θ + (d/2) log 2π, by the same independent quadrature at d = 2
    from maxent_gan.models.standard_targets import funnel_cost, funnel_log_partition, funnel_sample

    params = {"log_scale": jnp.asarray(0.3)}
    cost = jax.jit(lambda x: funnel_cost(params, x))

    def inner(v):
        scale = math.exp(0.5 * v)
        return scale * integrate.quad(lambda z: math.exp(-float(cost(np.array([v, scale * z])))), -40, 40)[0]

    value, _ = integrate.quad(inner, -15, 15, epsrel=1e-10, limit=200)
    assert abs(math.log(value) - float(funnel_log_partition(0.3, 2))) < 1e-7
    v = np.asarray(funnel_sample(jax.random.key(1), params, (50_000,), dim=3)[:, 0])
    assert stats.kstest(v / math.exp(0.3), "norm").pvalue > 1e-3


def test_manywell_log_z_by_two_routes_and_its_draws_have_the_quadrature_moments():
    xs = np.linspace(-6, 6, 1_200_001)
    log_density = -(xs**4 - 6 * xs**2 - 0.5 * xs)
    peak = log_density.max()
    trapezoid = math.log(np.trapezoid(np.exp(log_density - peak), xs)) + peak
    assert abs(manywell_log_z_1d() - trapezoid) < 1e-9
    target = manywell_energy(32)
    assert math.isclose(float(target.log_normalizer), 16 * (trapezoid + 0.5 * math.log(2 * math.pi)), rel_tol=1e-10)
    density = np.exp(log_density - peak)
    mean, right = (np.trapezoid(f * density, xs) / np.trapezoid(density, xs) for f in (xs, xs > 0))
    draws = np.asarray(target.sample(jax.random.key(1), (50_000,))).reshape(50_000, 16, 2)
    wells, gauss = draws[..., 0].ravel(), draws[..., 1].ravel()
    assert abs(wells.mean() - mean) < 5 * wells.std() / math.sqrt(wells.size)
    assert abs((wells > 0).mean() - right) < 5 * math.sqrt(right * (1 - right) / wells.size)
    assert stats.kstest(gauss[:100_000], "norm").pvalue > 1e-3
    with pytest.raises(ValueError, match="dim: expected an even number"):
        manywell_energy(5)


@pytest.mark.parametrize(("name", "dim"), [("gmm40", 2), ("funnel10", 10), ("manywell32", 32)])
def test_standard_targets_are_problems(name, dim):
    problem = make_problem(name)
    train, test = problem.data(jax.random.key(0), 30, 10)
    assert problem.dim == dim and train.shape == (30, dim) and test.shape == (10, dim)
    assert problem.target.has_exact_sampler and jnp.isfinite(problem.target.log_normalizer)
