"""The one reliability rule (maxent_gan.inference.diagnostics), the forward check, and posteriors that warn."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest
from maxent_gan.inference.diagnostics import UnreliableEstimateWarning, forward_check, min_ess, unreliable_reasons
from maxent_gan.inference.estimators import log_z_importance
from maxent_gan.inference.handler import normalized
from maxent_gan.inference.normalizers import Mixture
from maxent_gan.inference.posterior import sample_posterior
from maxent_gan.inference.proposals import Gaussian
from maxent_gan.models.unnormalized import Unnormalized

from tests.test_handler import DIM, conjugate, model


def two_modes():
    """½ N(-10, 1) + ½ N(10, 1) in 1-D as a cost: exact log Z = ½ log 2π."""
    cost = lambda _, x: -jnp.logaddexp(-0.5 * (x[..., 0] + 10) ** 2, -0.5 * (x[..., 0] - 10) ** 2) + jnp.log(2.0)  # noqa: E731
    return Unnormalized(cost, None, event_shape=(1,), log_normalizer=0.5 * jnp.log(2 * jnp.pi))


def test_forward_check_sees_the_mode_that_q_misses():
    """q = N(10, 1) is exactly one of two modes: its own weights are constant (k-hat -inf, "exact"), the data's not."""
    target = two_modes()
    key_q, key_data = jax.random.split(jax.random.key(0))
    q = Gaussian.from_covariance(jnp.array([10.0]), jnp.eye(1))
    x, log_q = q.sample_and_log_prob(key_q, 10_000)
    signs = jnp.where(jax.random.bernoulli(key_data, 0.5, (2000, 1)), 1.0, -1.0)
    data = 10 * signs + jax.random.normal(jax.random.fold_in(key_data, 1), (2000, 1))
    reverse = log_z_importance(target.cost(x), log_q)  # the reverse check alone sees nothing
    assert abs(float(reverse.log_z - target.log_normalizer) + np.log(2)) < 0.02  # half the mass is missing
    assert reverse.k_hat == -np.inf and reverse.ess > 9999 and reverse.reliable
    both = log_z_importance(target.cost(x), log_q, cost_data=target.cost(data), log_q_data=q.log_prob(data))
    assert not both.reliable and any(reason.startswith("forward check") for reason in both.unreliable_reasons())
    assert both.forward.ess < 100
    assert float(both.log_z) == float(reverse.log_z)  # the check does not change the estimate


def test_forward_estimate_is_exact_for_an_exact_proposal_and_consistent_for_a_broad_one():
    """E_p[q/p̃] = 1/Z: with q = p the forward ratios are constant; with a broad q the estimate converges."""
    target = Unnormalized(lambda _, x: 0.5 * jnp.sum(x**2, -1) / 0.7**2, None, event_shape=(2,),
                          log_normalizer=jnp.log(2 * jnp.pi * 0.7**2))
    exact = float(target.log_normalizer)
    points = 0.7 * jax.random.normal(jax.random.key(0), (20_000, 2))
    same = Gaussian.isotropic(2, 0.7)
    check = forward_check(target.cost(points), same.log_prob(points))
    assert abs(float(check.log_z_upper) - exact) < 1e-10 and check.k_hat == -np.inf
    broad = Gaussian.isotropic(2, 1.0)
    check = forward_check(target.cost(points), broad.log_prob(points))
    ratios = np.exp(-np.asarray(check.log_ratios) + exact)  # q/p, mean 1
    stderr = ratios.std() / np.sqrt(ratios.size)
    assert abs(float(check.log_z_upper) - exact) < 5 * stderr


def test_a_tiny_ess_is_unreliable_even_with_a_light_k_hat():
    # ESS 7 of 10 000 with k-hat 0.53 was a 0.26-nat error that passed silently
    assert unreliable_reasons(0.53, 7.0, 10_000) == ["ESS 7.0 of 10000 < 100"]
    assert unreliable_reasons(0.53, 150.0, 10_000) == []
    assert min_ess(300) == 30.0 and min_ess(10**6) == 100.0
    assert unreliable_reasons(np.inf, 5000.0, 10_000)[0].startswith("Pareto k-hat could not be estimated")
    check = forward_check(jnp.zeros(50), jnp.zeros(50))
    assert unreliable_reasons(0.1, 5000.0, 10_000, forward=check) == []  # constant forward ratios: exact


def test_mismatched_forward_arguments_are_refused():
    with pytest.raises(ValueError, match="cost_data, log_q_data: give both"):
        log_z_importance(jnp.zeros(10), jnp.zeros(10), cost_data=jnp.zeros(3))


@pytest.fixture(scope="module")
def data():
    return jax.random.normal(jax.random.key(0), (60, DIM)) / jnp.sqrt(3.0)


def test_a_too_narrow_proposal_makes_the_posterior_warn_with_the_fraction_of_draws(data):
    # data sd 0.58, proposal sd 0.25: log Ẑ(θ) misses the target's tails at every posterior draw
    with pytest.warns(UnreliableEstimateWarning, match=r"misses mass of p_θ that the data visit at \d+% of the draws"):
        idata = sample_posterior(model, data, key=jax.random.key(1), proposal=Gaussian.isotropic(DIM, 0.25),
                                 num_draws=2000, num_warmup=150, num_samples=150, num_chains=2)
    assert idata.posterior.attrs["unreliable_fraction"] > 0.5
    assert idata.posterior.attrs["forward_unreliable_fraction"] > 0.5
    assert np.all(idata.sample_stats["log_z_forward_k_hat"].values > 0.7)  # the data see the missing tails


def test_a_good_proposal_passes_with_nuts_statistics_kept(data):
    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreliableEstimateWarning)
        # 30 000 draws: with 3000 the draws' own error on the posterior mean is 0.1-0.2 sd (flagged)
        idata = sample_posterior(model, data, key=jax.random.key(1), proposal=Gaussian.isotropic(DIM, 0.8),
                                 num_draws=np.int64(30_000), num_warmup=np.int64(150), num_samples=150, num_chains=2)
    stats = idata.sample_stats
    assert {"energy", "lp", "step_size", "tree_depth", "acceptance_rate", "diverging"} <= set(stats.data_vars)
    assert np.all(stats["log_z_reliable"].values == 1.0) and idata.posterior.attrs["unreliable_fraction"] == 0.0
    assert np.all(stats["log_z_forward_ess"].values > 30)
    assert idata.posterior.attrs["reliable"] == 1 and idata.posterior.attrs["draw_set_error"] < 0.1
    assert stats["draw_set_log_ratio"].shape == (2, 150, 3)
    az.plot_energy(idata)
    mean, sd = conjugate(data)
    assert abs(float(idata.posterior["precision"].mean()) - mean) < 0.5 * sd


def test_a_posterior_moved_by_its_own_draws_is_flagged_though_every_draw_passes():
    """200 points, 300 broad draws: each draw's Ẑ(θ) passes k-hat, ESS and the forward check, but
    the fixed draws' error, times 200 observations, moves the posterior 0.4-0.5 sd (seeds 1, 2)."""
    data = jax.random.normal(jax.random.key(0), (200, DIM)) / jnp.sqrt(3.0)
    mean, sd = conjugate(data)
    with pytest.warns(UnreliableEstimateWarning, match=r"its set of proposal draws alone moves precision by up to"):
        idata = sample_posterior(model, data, key=jax.random.key(1), proposal=Gaussian.isotropic(DIM, 1.0),
                                 num_draws=300, num_warmup=200, num_samples=500, num_chains=2)
    attrs = idata.posterior.attrs
    assert attrs["unreliable_fraction"] == 0.0  # the per-draw rule sees nothing
    shift = abs(float(idata.posterior["precision"].mean()) - mean) / sd
    assert shift > 0.2, shift  # and the posterior is off: the flag is not a false alarm
    assert attrs["reliable"] == 0 and attrs["draw_set_error"] > shift / 2 and attrs["draw_set_site"] == "precision"


def test_draw_set_error_of_known_moves():
    from maxent_gan.inference.diagnostics import DRAW_SET_ERROR, draw_set_error, posterior_reasons

    theta = np.random.default_rng(0).normal(size=(4000, 2))
    flat = draw_set_error({"t": theta}, np.zeros((4000, 3)))
    assert flat.error < 1e-12 and abs(flat.ess - 4000) < 1e-6 and posterior_reasons(flat, 0.0) == []
    # tilting by a·θ₀ moves θ₀'s mean by a (unit sd): the same tilt in all 3 sets gives 2 √(a²/2) = √2 a
    tilted = draw_set_error({"t": theta}, np.repeat(0.2 * theta[:, :1], 3, 1))
    assert abs(tilted.error - np.sqrt(2) * 0.2) < 0.03 and tilted.site == "t[0]"
    assert posterior_reasons(tilted, 0.0)[0].startswith("its set of proposal draws alone moves t[0] by up to")
    # the rule's threshold is where a reason appears: just under it none, just over it one
    assert posterior_reasons(tilted._replace(error=0.99 * DRAW_SET_ERROR), 0.0) == []
    assert posterior_reasons(tilted._replace(error=1.01 * DRAW_SET_ERROR), 0.0)
    bad = draw_set_error({"t": theta}, np.full((4000, 3), np.nan))
    assert bad.error == np.inf and posterior_reasons(bad)


def test_the_mixture_estimator_is_refused_for_posteriors(data):
    with pytest.raises(ValueError, match=r"estimator: Mixture\(\) does not serve inside a posterior: it is biased there"):
        sample_posterior(model, data, key=jax.random.key(0), proposal=Gaussian.isotropic(DIM, 0.8),
                         estimator=Mixture())


def plain_model(x):
    loc = numpyro.sample("loc", dist.Normal(0.0, 1.0))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("x", dist.Normal(loc, 1.0).expand([DIM]).to_event(1), obs=x)


def test_a_model_without_an_unnormalized_site_is_refused_or_warned(data):
    with pytest.raises(ValueError, match="model: no observed site has an Unnormalized distribution"):
        sample_posterior(plain_model, data, key=jax.random.key(0), proposal=Gaussian.isotropic(DIM, 0.8))
    from numpyro.infer.util import log_density

    with pytest.warns(UserWarning, match="normalized: the model has no observed Unnormalized site"):
        log_density(normalized(plain_model, Gaussian.isotropic(DIM, 0.8), 100, jax.random.key(0)), (data,), {},
                    {"loc": 0.0})


def test_nan_in_the_data_is_named_before_nuts(data):
    bad = data.at[7, 1].set(jnp.nan)
    with pytest.raises(ValueError, match="data: the observed site 'x' has a NaN or infinite value \\(first at row 7\\)"):
        sample_posterior(model, bad, key=jax.random.key(0), proposal=Gaussian.isotropic(DIM, 0.8))


def test_the_sampler_fit_guard_names_non_finite_parameters_not_the_finite_loss():
    from maxent_gan.inference.sampler import fit_sampler

    # a finite cost whose gradient is NaN (sqrt at 0 in an unselected branch): the loss stays finite
    target = Unnormalized(lambda _, x: jnp.sum(x**2 + jnp.where(True, 0.0, jnp.sqrt(x - x)), -1), None,
                          event_shape=(2,))
    with pytest.warns(UserWarning, match=r"parameters became non-finite \(the loss, [-0-9.e]+, was finite"):
        fitted, losses, _, _ = fit_sampler(jax.random.key(0), Gaussian.isotropic(2, 1.0), target, steps=5, progress=False,
                                     optimizer=optax.adam(1e-2))  # plain Adam applies the NaN gradient
    assert losses.size == 0 and np.all(np.isfinite(np.asarray(fitted.log_prob(jnp.zeros((1, 2))))))
    # the default optimizer skips steps with a non-finite gradient (5 in a row at most) and says so
    with pytest.warns(UserWarning, match=r"fit_sampler: 5 of 5 steps had a non-finite gradient"):
        fitted, losses, _, _ = fit_sampler(jax.random.key(0), Gaussian.isotropic(2, 1.0), target, steps=5, progress=False)
    assert losses.size == 5 and np.all(np.isfinite(np.asarray(fitted.log_prob(jnp.zeros((1, 2))))))


def test_a_proposal_of_the_wrong_dimension_is_refused_naming_both_shapes(data):
    # a 5-D proposal for a 2-D energy read as "exact" (k-hat -inf), and moved a posterior by 7 sd
    wrong = Gaussian.isotropic(5, 1.0)
    x = wrong.sample(jax.random.key(0), 100)
    with pytest.raises(ValueError, match=r"x: expected trailing shape \(2,\).*got shape \(100, 5\)"):
        two_dims = Unnormalized(lambda _, x: 0.5 * jnp.sum(x**2, -1), None, event_shape=(2,))
        two_dims.cost(x)
    with pytest.raises(ValueError, match=r"x: expected trailing shape \(2,\)"):
        sample_posterior(model, data, key=jax.random.key(0), proposal=wrong, num_draws=100)


def test_k_hat_sees_through_tied_weights_but_not_past_a_heavy_tail():
    """Weights that depend on a draw through a count (tabular trajectories) come in ties; the tail
    fit must neither invent a heavy tail there nor lose a real one that is rounded."""
    from maxent_gan.inference.diagnostics import _k_hat_numpy, _spread_ties

    rng = np.random.default_rng(0)
    staircase = -0.05 * rng.poisson(3, 16_000)  # bounded weights on a few levels
    assert _k_hat_numpy(staircase) < 0.0  # ArviZ alone: inf
    heavy = np.log(rng.pareto(1.0, 16_000) + 1.0)  # k = 1
    assert abs(_k_hat_numpy(np.round(heavy, 1)) - _k_hat_numpy(heavy)) < 0.05
    assert _k_hat_numpy(np.round(heavy, 1)) > 0.7
    untied = rng.normal(size=500)
    np.testing.assert_array_equal(_spread_ties(untied), untied)
    tied = np.array([0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(np.sort(_spread_ties(tied)), [-2 / 3, -1 / 3, 0.0, 1.0])


@pytest.mark.parametrize("n", [40, 500, 16_000])
def test_k_hat_from_the_tail_alone_is_psislw_on_the_whole_row(n):
    """k-hat reads the largest weights only (a short row with ArviZ's tail length kept through ``reff``); it
    must equal ``psislw`` of every spread weight exactly, on smooth, heavy, tied and staircase rows, in a
    batch and alone, in float64 and float32 (n = 40: the short row would be no shorter, the whole row is fitted)."""
    import arviz as az
    from maxent_gan.inference.diagnostics import _k_hat_numpy, _spread_ties

    rng = np.random.default_rng(n)
    rows = [rng.normal(size=n), np.log(rng.pareto(1.0, n) + 1.0), np.round(rng.standard_t(1.5, n), 1),
            np.round(3 * rng.normal(size=n)), np.where(rng.random(n) < 0.9, 0.0, rng.normal(size=n)),
            -np.round(2 * np.abs(rng.normal(size=n)))]
    rows[-1][:3] = 5.0  # three tied maxima far above a staircase
    rows = np.stack(rows)
    with np.errstate(over="ignore"):
        expected = np.array([az.psislw(_spread_ties(row))[1] for row in rows])
    np.testing.assert_array_equal(_k_hat_numpy(rows), expected)
    np.testing.assert_array_equal([_k_hat_numpy(row) for row in rows], expected)
    single = rows.astype(np.float32)
    with np.errstate(over="ignore"):
        expected32 = np.array([az.psislw(_spread_ties(row.astype(np.float64)))[1] for row in single])
    np.testing.assert_array_equal(_k_hat_numpy(single), expected32)


def test_the_posterior_rule_flags_missed_mass_and_what_moves_it_not_the_share_of_heavy_tailed_draws():
    from maxent_gan.inference.diagnostics import UNRELIABLE_FRACTION, DrawSetError, posterior_reasons
    from maxent_gan.inference.posterior import _share_in_tails

    steady = DrawSetError(error=0.02, site="t[0]", ess=1900.0, num=2000, sets=3)
    assert posterior_reasons(steady, UNRELIABLE_FRACTION) == []  # at the allowance: not flagged
    missed = posterior_reasons(steady, UNRELIABLE_FRACTION + 0.01)
    assert len(missed) == 1 and missed[0].startswith("the proposal misses mass of p_θ that the data visit at 6% of")
    assert posterior_reasons(steady._replace(ess=50.0), 0.0)[0].startswith("another set of proposal draws reweights")
    # where the per-draw checks fail: the share of those draws beyond 2 sd along some scalar
    draws = np.concatenate([np.zeros((96, 2)), [[5.0, 0.0], [0.0, -5.0], [0.5, 0.5], [5.0, 5.0]]])
    failing = np.zeros(100, bool)
    failing[-4:] = True
    assert _share_in_tails(draws, failing) == 0.75 and np.isnan(_share_in_tails(draws, np.zeros(100, bool)))
