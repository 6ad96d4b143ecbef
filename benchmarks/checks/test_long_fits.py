"""Long end-to-end checks: a fit or a training run long enough to be judged on what it reaches.

Each takes 20-90 s on two cores, which the test suite cannot afford, so they live here and run with
``./dev checks`` (CI runs them after the suite). What they check the suite does not: that a fit at its
real length lands where it should, and that the diagnostics flag it where it does not.
"""

import json
import math
import warnings
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
from maxent_gan.inference.app.compare import compare, render_report
from maxent_gan.inference.app.recipes import make_proposal
from maxent_gan.inference.diagnostics import UnreliableEstimateWarning
from maxent_gan.inference.estimators import log_z_importance
from maxent_gan.inference.normalizers import Exact
from maxent_gan.inference.posterior import sample_posterior
from maxent_gan.inference.proposals.policy import MLPGaussianPolicy
from maxent_gan.models.pointmass import PointMass
from maxent_gan.models.problems import make_problem

from tests.helpers import run_cli as run
from tests.test_compare import SMALL
from tests.test_conditional import fitted  # noqa: F401, F811  (its fixture: a conditional flow fitted over θ)
from tests.test_flows import _two_blobs


def test_train_on_the_point_mass_estimates_what_it_cannot_compute_and_learns(tmp_path):
    out = tmp_path / "pm"
    result = run("train", "--problem", "pointmass", "--method", "gcl", "--out", str(out), "--json", "--steps", "150",
                 "--train-size", "100", "--test-size", "50", "--batch-size", "100", "--eval-every", "150",
                 "--check-particles", "256")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["stopped"] is None and summary["log_z_exact"] is None and summary["epic"] is None
    assert math.isfinite(summary["held_out_nll_is"])
    # from θ = 0, the cost moves toward θ* = (1, 5, -1): the goal and obstacle weights grow
    theta = summary["theta"]
    assert len(theta) == 3 and theta[0] > 0.3 and theta[1] > 0.5, theta
    assert summary["cost_correlation"] > 0.9
    # no exact log Z: the final estimate is cross-checked by tempered SMC over the policy's noise
    assert math.isfinite(summary["log_z_smc"]) and summary["log_z_smc_difference"] is not None
    for name in ("figures/training.png", "figures/paths.png"):
        assert (out / name).is_file(), name


def test_a_flow_fit_on_the_40_mode_mixture_runs_without_its_guard_stopping_it():
    """Costs in the thousands away from the modes: with plain Adam the flow piled its mass at the
    spline's edge and its parameters became non-finite (``optax.adam(1e-2)``: at step 84 for seed
    0, 201 for seed 2; clipping alone, at step 379). With draws through the spline's inverse
    (flowjax's default direction) the default optimizer still met non-finite gradients, skipped
    them (seed 0: 13 of 400 under ``--xla_cpu_use_fusion_emitters=false``) and under other rounding
    stopped at its guard. The draws now go through the forward map (maxent_gan.inference.proposals.flow), and
    no step is skipped: no warning at all, under either flag (seeds 0-3 measured)."""
    from maxent_gan.inference.proposals import Flow
    from maxent_gan.inference.sampler import fit_sampler

    target = make_problem("gmm40").target
    for seed in (0, 2):
        key = jax.random.key(seed)
        flow = Flow.coupling(jax.random.fold_in(key, 1), 2, base_scale=25.0, interval=75.0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fitted, losses, _, _ = fit_sampler(jax.random.fold_in(key, 2), flow, target, steps=400, num_draws=512,
                                         anneal=0.05, progress=False)
        assert [str(w.message) for w in caught] == []
        assert losses.size == 400 and np.all(np.isfinite(losses))
        assert np.isfinite(float(fitted.log_prob(jnp.zeros((1, 2)))[0]))


def test_flow_fitted_by_annealed_reverse_kl_estimates_log_z():
    target = _two_blobs()
    proposal = make_proposal("flow", jax.random.key(0), target, steps=600)
    x, log_q = proposal.sample_and_log_prob(jax.random.key(1), 4000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreliableEstimateWarning)
        estimate = log_z_importance(target.cost(x), log_q)
    assert abs(float(estimate.log_z - target.log_normalizer)) < 0.05
    assert float(estimate.ess) > 1000  # both modes covered: weights are not degenerate


def test_posterior_with_a_theta_following_flow_is_close_to_the_exact_one_or_says_why_not(fitted):  # noqa: F811
    # With 300 fixed base draws the flow's log Ẑ(θ) passes at every posterior draw (k-hat), yet its
    # error's slope across θ, times 100 data points, moves the posterior by about 0.3 sd: 0.28 sd with
    # XLA's fusion emitters at -O0, 0.33 sd with its loop emitters (2026-12-04; the same fit, float rounding
    # apart). So "matches" held by luck; what the library promises is that the draw-set check sees it.
    # (With 2000 draws one chain sticks where the flow extrapolates, 178 sd off, and is flagged at
    # 51 % of the draws: the flow is fitted over θ* ± 0.4 only.)
    problem, proposal, _ = fitted
    family = problem.family
    data, _ = problem.data(jax.random.key(3), 100, 2)
    settings = dict(key=jax.random.key(4), num_warmup=100, num_samples=150, num_chains=2)
    exact = sample_posterior(problem.model, data, estimator=Exact(), **settings)
    following = sample_posterior(problem.model, data, proposal=proposal, num_draws=300, **settings)

    def flat(idata):
        return family.flatten(idata.posterior).reshape(-1, 4)

    shift = float(np.max(np.abs((flat(following).mean(0) - flat(exact).mean(0)) / flat(exact).std(0))))
    attrs = following.posterior.attrs
    assert shift < 1.0, shift  # close: NUTS noise at 300 posterior draws is about 0.06 sd
    assert np.nanmedian(following.sample_stats["log_z_k_hat"].values) < 0.7
    assert attrs["unreliable_fraction"] == 0.0  # every draw's log Ẑ(θ) passes on its own
    # the draw-set check accounts for the shift (up to NUTS noise), and a shift over 0.2 sd is flagged
    assert shift <= 2 * attrs["draw_set_error"] + 0.15, (shift, attrs["draw_set_error"])
    assert shift < 0.2 or attrs["reliable"] == 0, (shift, attrs["unreliable_reasons"])


def test_the_lqr_family_runs_end_to_end_with_a_theta_following_row():
    # no exact run: verdicts from k-hat alone
    lqr = compare("lqr", ("cloned", "gan", "gan-follow"), settings=replace(SMALL, anchor_steps=40))
    for name in ("gan", "gan-follow"):
        row = lqr["proposals"][name]
        assert np.isfinite(row["posterior_mean"]).all() and row["k_hat_median"] is not None, name
    # the θ-following row reuses the gan training (the same θ̂) and says what it is
    assert lqr["learned_theta"].keys() == {"gan"}
    assert "anchors" in render_report(lqr)
    cloned = lqr["proposals"]["cloned"]
    assert len(lqr["theta_true"]) == 3 and cloned["k_hat_median"] is not None and "shift_max_sd" not in cloned
    # no exact run: the verdict is the rule's, in words, and says whether to trust the row
    assert cloned["verdict"].endswith(("flagged, do not trust this posterior", "not flagged, as far as the diagnostics can see"))
    assert (cloned["verdict"].startswith(cloned["unreliable_reasons"]) if cloned["unreliable_reasons"]
            else "its set of proposal draws moves it up to" in cloned["verdict"])


def test_annealed_estimator_over_a_policys_noise_matches_the_lqr_log_z():
    # the point mass without drag or obstacles, goal at the origin, is an LQR: exact log Z by the Riccati
    # recursion. SMC in the broad policy's noise space (start, forces, transition noise: 40 dimensions)
    # must land on it; importance sampling from 4M draws is 0.001 nats off, SMC at 2048 particles spreads
    # about 0.04 over seeds
    from maxent_gan.inference.annealed import log_z_annealed_reparameterized
    from maxent_gan.models.irl_problems import pointmass_problem
    from maxent_gan.models.lqr import log_partition

    task = PointMass(drag=0.0, obstacles=(), goal=(0.0, 0.0), horizon=6, noise=0.05, start_scale=0.5)
    dt, eye = task.dt, jnp.eye(2)
    A = jnp.block([[eye, dt * eye], [jnp.zeros((2, 2)), eye]])
    B = jnp.concatenate([dt**2 * eye, dt * eye])
    Q, R = jnp.diag(jnp.array([2.0, 2.0, 0.0, 0.0])), jnp.exp(-0.5) * eye
    m0, S0 = task.start()
    exact = float(log_partition(A, B, Q, R, task.noise**2 * jnp.eye(4), m0, S0, task.horizon))
    problem = pointmass_problem(task)
    target = problem.family.target(jnp.array([2.0, 0.0, -0.5]), problem.space)
    policy = MLPGaussianPolicy(jax.random.key(0), task.dynamics)
    estimate = log_z_annealed_reparameterized(jax.random.key(0), target, policy, num_particles=2048)
    assert estimate.reliable and abs(float(estimate.log_z) - exact) < 0.2, (float(estimate.log_z), exact)
