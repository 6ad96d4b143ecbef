"""Every proposal honours the protocol: normalized density, matching draws, jit-safe."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from maxent_gan.inference.app.recipes import make_proposal, proposal_names
from maxent_gan.inference.proposals import (
    DefensiveMixture,
    DiagonalGaussian,
    ExactProposal,
    Gaussian,
    GaussianMixture,
    Proposal,
)
from maxent_gan.models import gaussian_target_params, quadratic_energy
from scipy import integrate, stats

from tests.helpers import log_z_stderr


def all_proposals(dim=2):
    target = quadratic_energy(gaussian_target_params(dim))
    gaussian = Gaussian.from_covariance(jnp.array([0.3, -0.2][:dim]), jnp.array([[1.0, 0.4], [0.4, 0.8]])[:dim, :dim])
    mixture = GaussianMixture(
        jnp.array([0.2, 0.5, 0.3]),
        jnp.array([[-1.0, 0.0], [1.0, 1.0], [0.0, -1.5]])[:, :dim],
        jnp.stack([jnp.eye(dim) * s for s in (0.5, 0.8, 0.3)]),
    )
    return {
        "diagonal": DiagonalGaussian(jnp.array([0.5, -1.0][:dim]), jnp.array([0.7, 1.3][:dim])),
        "gaussian": gaussian,
        "mixture": mixture,
        "defensive": DefensiveMixture(mixture, Gaussian.isotropic(dim, 3.0), weight=0.2),
        "exact": ExactProposal(target),
    }


NAMES = list(all_proposals())


@pytest.mark.parametrize("name", NAMES)
def test_protocol(name):
    assert isinstance(all_proposals()[name], Proposal)


@pytest.mark.parametrize("name", NAMES)
def test_density_integrates_to_one(name):
    proposal = all_proposals()[name]
    density = jax.jit(lambda x: jnp.exp(proposal.log_prob(x)))
    grid = jnp.linspace(-25, 25, 1601)  # the broad part (sd 3) needs the room
    xx, yy = jnp.meshgrid(grid, grid, indexing="ij")
    values = density(jnp.stack([xx.ravel(), yy.ravel()], -1)).reshape(xx.shape)
    total = integrate.simpson(integrate.simpson(np.asarray(values), x=np.asarray(grid)), x=np.asarray(grid))
    assert abs(total - 1.0) < 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_sample_and_log_prob_agree_with_log_prob(name):
    proposal = all_proposals()[name]
    x, log_q = proposal.sample_and_log_prob(jax.random.key(0), 64)
    assert x.shape == (64, 2) and log_q.shape == (64,)
    assert jnp.max(jnp.abs(log_q - proposal.log_prob(x))) < 1e-10


@pytest.mark.parametrize("name", NAMES)
def test_draws_follow_the_density(name):
    """Kolmogorov-Smirnov on each coordinate against the density's numerical marginal CDF."""
    proposal = all_proposals()[name]
    x = np.asarray(proposal.sample(jax.random.key(1), 4000))
    grid = jnp.linspace(-12, 12, 1201)
    xx, yy = jnp.meshgrid(grid, grid, indexing="ij")
    density = np.asarray(jnp.exp(proposal.log_prob(jnp.stack([xx.ravel(), yy.ravel()], -1)))).reshape(xx.shape)
    step = float(grid[1] - grid[0])
    for axis in (0, 1):
        marginal = density.sum(axis=1 - axis) * step
        cdf = np.cumsum(marginal) * step
        result = stats.kstest(x[:, axis], lambda v, cdf=cdf: np.interp(v, np.asarray(grid), cdf))
        assert result.pvalue > 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_jit_and_eager_agree(name):
    proposal = all_proposals()[name]
    key = jax.random.key(2)
    eager = proposal.sample_and_log_prob(key, 32)
    jitted = eqx.filter_jit(lambda p, k: p.sample_and_log_prob(k, 32))(proposal, key)
    for a, b in zip(eager, jitted, strict=True):
        assert jnp.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_gaussian_matches_scipy():
    covariance = jnp.array([[1.0, 0.4, 0.1], [0.4, 0.8, 0.0], [0.1, 0.0, 2.0]])
    loc = jnp.array([0.1, 0.2, -0.3])
    proposal = Gaussian.from_covariance(loc, covariance)
    x = proposal.sample(jax.random.key(3), 7)
    expected = stats.multivariate_normal(np.asarray(loc), np.asarray(covariance)).logpdf(np.asarray(x))
    assert np.max(np.abs(np.asarray(proposal.log_prob(x)) - expected)) < 1e-10


def test_defensive_mixture_density_is_the_weighted_sum():
    learned, broad = Gaussian.isotropic(2, 0.5), Gaussian.isotropic(2, 4.0)
    mixture = DefensiveMixture(learned, broad, weight=0.25)
    x = jnp.array([[0.0, 0.0], [3.0, -2.0], [10.0, 10.0]])
    expected = np.log(0.75 * np.exp(learned.log_prob(x)) + 0.25 * np.exp(broad.log_prob(x)))
    assert np.max(np.abs(np.asarray(mixture.log_prob(x)) - expected)) < 1e-12
    draws = mixture.sample(jax.random.key(4), 20_000)
    far = float(jnp.mean(jnp.linalg.norm(draws, axis=1) > 3.0))  # almost only the broad part
    assert abs(far - 0.25 * math.exp(-9 / 32)) < 0.015


def test_defensive_mixture_bounds_the_weights():
    """w = p/q <= p / (alpha q_broad): a too-narrow learned part no longer gives k-hat > 0.7."""
    from maxent_gan.inference.estimators import log_z_importance

    target = quadratic_energy(gaussian_target_params(2))
    mixture = DefensiveMixture(Gaussian.isotropic(2, 0.3), Gaussian.isotropic(2, 3.0), weight=0.2)
    x, log_q = mixture.sample_and_log_prob(jax.random.key(5), 20_000)
    estimate = log_z_importance(target.cost(x), log_q)
    assert estimate.k_hat < 0.7
    assert abs(float(estimate.log_z - target.log_normalizer)) < 5 * log_z_stderr(estimate.log_weights)


@pytest.mark.parametrize("name", proposal_names())
def test_registry_builds_every_proposal(name):
    target = quadratic_energy(gaussian_target_params(3))
    proposal = make_proposal(name, jax.random.key(0), target, steps=1)  # construction only: fits are tested below
    x, log_q = proposal.sample_and_log_prob(jax.random.key(1), 16)
    assert x.shape == (16, 3) and bool(jnp.all(jnp.isfinite(log_q)))


def test_fitted_gaussian_recovers_the_target():
    """Reverse KL from a broad start lands on p when p is in the family (sampler step)."""
    target = quadratic_energy(gaussian_target_params(3))
    proposal = make_proposal("gaussian", jax.random.key(0), target, steps=1500)
    covariance = jnp.linalg.inv(target.params["precision"])
    assert jnp.max(jnp.abs(proposal.loc - target.params["loc"])) < 0.05
    assert jnp.max(jnp.abs(proposal.scale_tril @ proposal.scale_tril.T - covariance)) < 0.1


def test_one_registry_names_every_proposal_once_and_keeps_the_two_exacts_apart():
    from maxent_gan.inference.app.compare import compare_proposal_names
    from maxent_gan.inference.app.recipes import RECIPES, compare_names
    from maxent_gan.models.problems import make_problem

    gridworld, rings, pointmass = make_problem("gridworld"), make_problem("rings"), make_problem("pointmass")
    # exact: the exact normalizer, a row of compare with no proposal; exact-sampler: the oracle proposal of logz
    assert "exact" in compare_names(gridworld) and "exact" not in proposal_names(gridworld)
    assert "exact-sampler" in proposal_names(gridworld) and "exact-sampler" not in compare_names(gridworld)
    assert "exact" not in compare_names(pointmass) and "exact-sampler" not in proposal_names(pointmass)
    # where a name applies is decided by the space and what the target has, in the one table
    assert proposal_names(gridworld) == ("exact-sampler", "broad", "soft-optimal", "policy")
    assert proposal_names(rings) == ("exact-sampler", "broad", "gaussian", "diag-gaussian", "defensive", "flow",
                                     "flow-data")
    assert proposal_names(pointmass) == ("broad", "policy")
    assert compare_proposal_names(gridworld) == compare_names(gridworld)
    assert set(proposal_names(gridworld)) | set(compare_names(gridworld)) <= set(RECIPES)
    assert all(recipe.name == name and recipe.description for name, recipe in RECIPES.items())
    with pytest.raises(ValueError, match="proposal: unknown name 'gaussian' for gridworld; valid: exact-sampler, broad"):
        make_proposal("gaussian", jax.random.key(0), gridworld.target, problem=gridworld)


def test_a_method_called_outside_a_trace_is_one_compiled_program_and_inside_one_runs_as_written():
    from maxent_gan.models._jit import compiled_when_eager

    runs = []

    @compiled_when_eager
    def scaled_log_sum(x, n):
        runs.append(n)  # a Python side effect: it happens each time the body is traced or run eagerly
        return jnp.log(jnp.sum(jnp.exp(x))) * n

    x = jnp.linspace(-1.0, 1.0, 5)
    first = scaled_log_sum(x, 2)
    second = scaled_log_sum(2 * x, 2)  # same shapes, same static n: the compiled program again, no new trace
    assert runs == [2] and math.isclose(float(first), 2 * float(jax.nn.logsumexp(x)), rel_tol=1e-12)
    assert math.isclose(float(second), 2 * float(jax.nn.logsumexp(2 * x)), rel_tol=1e-12)
    scaled_log_sum(x, 3)  # a new static value compiles anew
    assert runs == [2, 3]
    # inside a trace: no program of its own (no nested jit in the caller's program), the same value
    jaxpr = jax.make_jaxpr(lambda v: scaled_log_sum(v, 2))(x)
    assert {eqn.primitive.name for eqn in jaxpr.eqns}.isdisjoint({"pjit", "jit", "closed_call"})
    assert float(jax.jit(lambda v: scaled_log_sum(v, 2))(x)) == float(first)
    # a proposal's methods: the eager (compiled) and the traced call agree, draws included
    gaussian = Gaussian.from_covariance(jnp.array([0.3, -0.2]), jnp.array([[1.0, 0.4], [0.4, 0.8]]))
    points = jax.random.normal(jax.random.key(0), (7, 2))
    np.testing.assert_allclose(gaussian.log_prob(points), jax.jit(lambda q, p: q.log_prob(p))(gaussian, points),
                               rtol=1e-12)
    draws, log_q = gaussian.sample_and_log_prob(jax.random.key(1), 6)
    traced = eqx.filter_jit(lambda q, k: q.sample_and_log_prob(k, 6))(gaussian, jax.random.key(1))
    np.testing.assert_allclose(draws, traced[0], rtol=1e-12)
    np.testing.assert_allclose(log_q, traced[1], rtol=1e-12)
    with pytest.raises(ValueError, match=r"x: expected points of shape \(n, 2\)"):  # shape checks still run
        gaussian.log_prob(jnp.zeros((3, 4)))
