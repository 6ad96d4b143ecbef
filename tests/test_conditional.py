"""θ-conditional proposals: q(x|θ) fitted over θ, common random numbers in the handler, and the posterior."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from maxent_gan.inference.estimators import log_z_importance
from maxent_gan.inference.handler import normalized
from maxent_gan.inference.proposals.conditional import ConditionalFlow, DefensiveConditional
from maxent_gan.inference.proposals.gaussian import Gaussian
from maxent_gan.inference.sampler import fit_conditional
from maxent_gan.models.gaussian import diagonal_energy
from maxent_gan.models.problems import make_problem

jax.config.update("jax_enable_x64", True)


@pytest.fixture(scope="module")
def fitted():
    # the Gaussian problem's diagonal family, θ = (loc, log_precision); the pool: θ* broadened by
    # N(0, 0.4²) per coordinate (what a broadened Laplace approximation would give)
    problem = make_problem("gaussian")
    family = problem.family
    centre = family.flatten(family.to_sites(family.theta_true))
    pool = family.unflatten(centre + 0.4 * np.random.default_rng(0).standard_normal((1024, centre.size)))
    proposal = ConditionalFlow.coupling(jax.random.key(0), problem.dim, centre.size, layers=2, width=16, knots=6)
    proposal = fit_conditional(jax.random.key(1), proposal, family.cost_fn, pool, steps=400, num_draws=128,
                               optimizer=optax.adam(3e-3), progress=False).proposal
    held_out = family.unflatten(centre + 0.4 * np.random.default_rng(1).standard_normal((6, centre.size)))
    return problem, proposal, held_out


def test_draws_move_smoothly_with_theta_and_keep_their_density():
    proposal = ConditionalFlow.coupling(jax.random.key(0), 2, 4, layers=2, width=16)
    theta = {"loc": jnp.array([0.3, -0.2]), "log_precision": jnp.array([0.1, 0.0])}
    eps = proposal.base_draws(jax.random.key(1), 64)
    x, log_q = proposal.transform(eps, theta)
    np.testing.assert_allclose(proposal.log_prob(x, theta), log_q, atol=1e-10)  # the same density both ways

    def total(t):
        return proposal.transform(eps, {"loc": theta["loc"], "log_precision": t})[1].sum()

    grad = jax.grad(total)(theta["log_precision"])
    step = 1e-6 * jnp.array([1.0, 0.0])
    numeric = (total(theta["log_precision"] + step) - total(theta["log_precision"] - step)) / 2e-6
    assert float(grad[0]) == pytest.approx(float(numeric), rel=1e-5)
    with pytest.raises(ValueError, match="theta: the proposal was built for θ of 4 numbers, got 3"):
        proposal.transform(eps, jnp.zeros(3))


def test_a_fitted_conditional_flow_estimates_log_z_at_held_out_theta(fitted):
    problem, proposal, held_out = fitted
    family = problem.family
    for i in range(6):
        theta = jax.tree.map(lambda leaf, i=i: leaf[i], held_out)
        x, log_q = proposal.sample_and_log_prob(jax.random.key(2), 4000, theta)
        estimate = log_z_importance(family.cost_fn(theta, x), log_q)
        assert abs(float(estimate.log_z - family.log_partition_fn(theta))) < 0.03, i
        assert float(estimate.k_hat) < 0.7, i


def test_the_handler_moves_the_draws_with_theta(fitted):
    # common random numbers: one set of base draws, x_j(θ) = T(ε_j; θ); log Ẑ(θ) tracks log Z(θ)
    problem, proposal, held_out = fitted
    handled = normalized(problem.model, proposal, 2000, jax.random.key(3))
    assert handled.draws is None and handled.eps.shape == (2000, problem.dim)
    for i in range(6):
        theta = jax.tree.map(lambda leaf, i=i: leaf[i], held_out)
        site = diagonal_energy(theta)
        error = handled.log_normalizer(site, None) - site.log_normalizer
        assert abs(float(error)) < 0.05, i


def test_defensive_conditional_is_a_stratified_mixture_whose_estimate_is_unbiased():
    # q(x|θ) = 0.9 q_flow(x|θ) + 0.1 N(0, 2² I); the target exp(-c_θ) is the diagonal Gaussian family,
    # Z(θ) exact. The flow is untrained (far from p_θ), so the unbiasedness is the estimator's, not a fit's.
    problem = make_problem("gaussian")
    family = problem.family
    flow = ConditionalFlow.coupling(jax.random.key(0), problem.dim, 4, layers=2, width=16, knots=6)
    broad = Gaussian.isotropic(problem.dim, 2.0)
    proposal = DefensiveConditional(flow, broad, 0.1)
    theta = family.unflatten(family.flatten(family.to_sites(family.theta_true)) + 0.3)
    eps = proposal.base_draws(jax.random.key(1), 50)
    x, log_q = proposal.transform(eps, theta)
    assert proposal.num_broad(50) == 5
    np.testing.assert_array_equal(x[-5:], eps[-5:])  # the broad draws do not move with θ
    np.testing.assert_allclose(proposal.log_prob(x, theta), log_q, atol=1e-10)  # one density both ways
    np.testing.assert_allclose(log_q, jnp.logaddexp(jnp.log(0.9) + flow.log_prob(x, theta),
                                                    jnp.log(0.1) + broad.log_prob(x)), atol=1e-10)
    assert bool(jnp.all(jnp.isfinite(jax.grad(lambda t: proposal.transform(eps, t)[1].sum())(theta)["loc"])))

    def ratio(key):  # Ẑ/Z over one set of 128 stratified draws: 13 broad ones, a share of 0.1016, not 0.1
        x, log_q = proposal.sample_and_log_prob(key, 128, theta)
        return jnp.exp(log_z_importance(family.cost_fn(theta, x), log_q).log_z - family.log_partition_fn(theta))

    ratios = jax.vmap(ratio)(jax.random.split(jax.random.key(2), 400))
    standard_error = float(ratios.std() / np.sqrt(ratios.size))
    assert abs(float(ratios.mean()) - 1.0) < 4 * standard_error, (float(ratios.mean()), standard_error)


def test_defensive_conditional_refuses_what_it_cannot_mix():
    flow = ConditionalFlow.coupling(jax.random.key(0), 2, 4, layers=2, width=16)
    with pytest.raises(ValueError, match="broad: its draws have 3 coordinates, the flow's 2"):
        DefensiveConditional(flow, Gaussian.isotropic(3, 1.0))
    with pytest.raises(ValueError, match=r"weight: expected the broad component's weight in \(0, 1\), got 1.0"):
        DefensiveConditional(flow, Gaussian.isotropic(2, 1.0), 1.0)
    with pytest.raises(TypeError, match="proposal: expected a θ-conditional proposal, got Gaussian"):
        DefensiveConditional(Gaussian.isotropic(2, 1.0), Gaussian.isotropic(2, 1.0))


def test_a_bounded_flow_reads_theta_standardized_by_its_pool_and_saturates_outside_it():
    flow = ConditionalFlow.coupling(jax.random.key(0), 2, 4, layers=2, width=16)
    pool = {"loc": jnp.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]), "log_precision": jnp.zeros((3, 2))}
    bounded = flow.bounded_to(pool, bound=3.0)
    # the condition is θ standardized by the pool (mean 2 and 3, sd √(8/3); a constant coordinate keeps
    # scale 1) and squashed into ±3; near the pool's mean it is the standardized θ itself
    theta = {"loc": jnp.array([2.0 + 1e-4, 3.0]), "log_precision": jnp.array([0.0, 2.0])}
    z = bounded._condition(theta)
    # ravel order: loc, then log_precision (whose pool is constant: scale 1, so 2 -> 3 tanh(2/3))
    np.testing.assert_allclose(z, [1e-4 / np.sqrt(8 / 3), 0.0, 0.0, 3 * np.tanh(2 / 3)], atol=1e-9)
    assert float(jnp.max(jnp.abs(bounded._condition({"loc": jnp.array([1e6, -1e6]),
                                                      "log_precision": jnp.array([0.0, 0.0])})))) <= 3.0
    # far outside the pool q(·|θ) stops changing; inside, draws and density still agree both ways
    eps = bounded.base_draws(jax.random.key(1), 64)
    far, farther = ({"loc": jnp.array([1e3 * s, 0.0]), "log_precision": jnp.zeros(2)} for s in (1, 2))
    np.testing.assert_allclose(bounded.transform(eps, far)[1], bounded.transform(eps, farther)[1], atol=1e-8)
    x, log_q = bounded.transform(eps, theta)
    np.testing.assert_allclose(bounded.log_prob(x, theta), log_q, atol=1e-10)
    grad = jax.grad(lambda t: bounded.transform(eps, {"loc": t, "log_precision": jnp.zeros(2)})[1].sum())(
        jnp.array([2.5, 3.5]))
    assert bool(jnp.all(jnp.isfinite(grad))) and float(jnp.abs(grad).max()) > 0
    # the pool's statistics are fixed: a fit moves the flow's parameters only
    from maxent_gan.inference.training import trainable
    assert all(leaf is None for leaf in jax.tree.leaves(trainable((bounded.center, bounded.scale)),
                                                        is_leaf=lambda leaf: leaf is None))
    for bad, message in ((0.0, "bound: expected a positive finite number, got 0.0"),
                         (float("inf"), "bound: expected a positive finite number, got inf")):
        with pytest.raises(ValueError, match=message):
            flow.bounded_to(pool, bound=bad)
    with pytest.raises(ValueError, match=r"thetas: expected at least 2 θ's of 4 numbers along a leading axis"):
        flow.bounded_to(jax.tree.map(lambda leaf: leaf[:1], pool))
