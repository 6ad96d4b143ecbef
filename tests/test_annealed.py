"""The annealed estimator: adaptive tempered SMC (blackjax) from a proposal to the target."""

import jax
import numpy as np
import pytest
from maxent_gan.inference.annealed import STEP_JITTER, log_z_annealed
from maxent_gan.inference.proposals import ExactProposal, Gaussian
from maxent_gan.models.problems import make_problem

jax.config.update("jax_enable_x64", True)


def test_a_start_that_is_the_target_is_one_step_and_exact():
    # q = p: every weight is Z, the first temperature is already 1, and log Z is exact
    target = make_problem("gaussian").target
    estimate = log_z_annealed(jax.random.key(0), target, ExactProposal(target), num_particles=256)
    assert estimate.num_temperatures == 1 and estimate.temperatures[-1] == 1.0
    assert float(estimate.log_z) == pytest.approx(float(target.log_normalizer), abs=1e-10)


def test_a_broad_start_is_bridged_to_the_closed_form():
    # N(0, 3² I) to a 2-D Gaussian energy: several temperatures, and log Z within 4 sd of the
    # SMC noise at 4096 particles (about 0.02 nats, measured over seeds 0-2 at 1024: -0.044, 0.031, -0.002)
    problem = make_problem("gaussian")
    target = problem.target
    estimate = log_z_annealed(jax.random.key(0), target, Gaussian.isotropic(2, 3.0), num_particles=4096,
                              data=target.sample(jax.random.key(1), (1000,)))
    assert estimate.num_temperatures >= 2 and np.all(np.diff(estimate.temperatures) > 0)
    assert abs(float(estimate.log_z - target.log_normalizer)) < 0.08
    assert estimate.reliable, estimate.unreliable_reasons()
    assert estimate.start_k_hat == estimate.start_k_hat and estimate.start_ess < 4096  # a real start, not p
    assert "forward check" in estimate.checks_run and not estimate.checks_run.startswith("only")


def test_without_data_the_estimate_says_only_the_bridge_was_checked():
    target = make_problem("gaussian").target
    estimate = log_z_annealed(jax.random.key(0), target, Gaussian.isotropic(2, 3.0), num_particles=256)
    assert estimate.forward is None
    assert estimate.checks_run.startswith("only the bridge's own") and "no data" in estimate.checks_run


def test_jittered_steps_keep_the_bridge_unbiased_over_seeds():
    # each particle's step is the adapted one shrunk by a random factor that does not depend on its
    # state: a mixture of HMC kernels, each keeping the tempered target invariant. Over 8 seeds, with
    # and without the jitter, the errors must centre on 0 (mean within 4 standard errors) and stay small
    target = make_problem("gaussian").target
    for jitter in (0.0, STEP_JITTER):
        errors = np.array([float(log_z_annealed(jax.random.key(seed), target, Gaussian.isotropic(2, 3.0),
                                                num_particles=1024, step_jitter=jitter).log_z - target.log_normalizer)
                           for seed in range(8)])
        assert abs(errors.mean()) < 4 * errors.std(ddof=1) / np.sqrt(len(errors)) + 1e-3, (jitter, errors)
        assert np.max(np.abs(errors)) < 0.15, (jitter, errors)


def test_a_start_that_misses_mass_is_flagged_from_the_data_side():
    # a narrow start far from the data: the forward check sees what local moves cannot fix
    target = make_problem("8gaussians").target
    narrow = Gaussian.isotropic(2, 0.3, loc=np.array([0.0, 2.8]))
    estimate = log_z_annealed(jax.random.key(0), target, narrow, num_particles=512,
                              data=target.sample(jax.random.key(1), (1000,)))
    assert not estimate.reliable and any(reason.startswith("start: forward check") for reason in
                                         estimate.unreliable_reasons())


def test_bad_input_is_refused_before_any_work():
    target = make_problem("gaussian").target
    with pytest.raises(ValueError, match=r"proposal: its draws have event shape \(5,\), the target's is \(2,\)"):
        log_z_annealed(jax.random.key(0), target, Gaussian.isotropic(5, 1.0), num_particles=16)
    with pytest.raises(ValueError, match="num_particles: expected a positive integer >= 2"):
        log_z_annealed(jax.random.key(0), target, Gaussian.isotropic(2, 1.0), num_particles=1)
    with pytest.raises(ValueError, match=r"step_jitter: expected a number >= 0, got -1.0"):
        log_z_annealed(jax.random.key(0), target, Gaussian.isotropic(2, 1.0), step_jitter=-1.0)
    with pytest.raises(ValueError, match="target_ess: expected a fraction"):
        log_z_annealed(jax.random.key(0), target, Gaussian.isotropic(2, 1.0), target_ess=1.5)
    grid = make_problem("gridworld").target
    with pytest.raises(ValueError, match="target: the annealed estimator moves particles by HMC"):
        log_z_annealed(jax.random.key(0), grid, None)
