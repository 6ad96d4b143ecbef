"""What a newcomer meets first: a user's energy family is trained as written, the default proposals are
the ones the problem supports, and a sampler whose training stopped is reported as such."""

import math
import warnings

import jax
import jax.numpy as jnp
import maxent_gan.inference.app.compare as compare_module
import maxent_gan.inference.app.plots as plots
import numpy as np
import pytest
from maxent_gan.inference.app.compare import CompareSettings, compare, default_proposals, render_report
from maxent_gan.inference.ebm import train_ebm
from maxent_gan.models.builders import energy_problem


def location_family(**options):
    """c_b(x) = ½|x - b|² on R², data from N((0.5, -0.3), I): the maximum-likelihood b is the data mean."""
    data = jnp.array([0.5, -0.3]) + jax.random.normal(jax.random.key(0), (400, 2))

    def cost_fn(theta, x):
        return 0.5 * jnp.sum((x - theta["b"]) ** 2, -1)

    problem = energy_problem(cost_fn, {"b": jnp.zeros(2)}, data, test_data=data[:50], **options)
    return problem, data


def test_a_users_energy_family_is_trained_as_written():
    problem, data = location_family(log_partition_fn=lambda theta: jnp.log(2 * math.pi))
    # flow_epochs=1: the sampler's warm start plays no part in the exact fit of b
    run = train_ebm(problem, "exact", steps=600, progress=False, evaluate=False, checkpoint_every=10**6, flow_epochs=1)
    assert run.parametric  # not an MLP in its place
    np.testing.assert_allclose(run.result.state.energy["b"], data.mean(0), atol=5e-3)
    gcl = train_ebm(problem, "gcl", steps=20, progress=False, evaluate=False, checkpoint_every=10**6, flow_epochs=1)
    assert gcl.parametric and set(gcl.result.state.energy) == {"b"}


def test_the_default_proposals_are_the_ones_the_problem_supports():
    without, _ = location_family()  # no exact log Z(θ): no exact row
    assert default_proposals(without) == ("gcl", "gan", "gcl-follow", "gan-follow")
    with pytest.raises(ValueError, match="^proposals: 'exact' needs the exact log Z\\(θ\\) of the family, which "
                                         "energy does not have"):
        compare(without, ("exact", "gcl"))
    with_exact, _ = location_family(log_partition_fn=lambda theta: jnp.log(2 * math.pi))
    assert default_proposals(with_exact) == ("exact", "gcl", "gan", "gcl-follow", "gan-follow")


def test_a_sampler_whose_training_stopped_is_reported_and_flagged(monkeypatch):
    real = compare_module.train_ebm

    def stops_at_step_zero(*args, **kwargs):  # as a run whose first update was non-finite
        run = real(*args, **{**kwargs, "steps": 1})
        result = run.result._replace(steps_done=0, stopped="training stopped: the loss became [nan] at step 0")
        return run._replace(result=result)

    monkeypatch.setattr(compare_module, "train_ebm", stops_at_step_zero)
    settings = CompareSettings(demos=50, train_steps=30, num_draws=500, num_warmup=30, num_samples=30, num_chains=1)
    summary = compare("gaussian", ("exact", "gcl"), settings=settings)
    assert summary["training"]["gcl"] == {"steps": 0, "requested": 30,
                                          "stopped": "training stopped: the loss became [nan] at step 0"}
    row = summary["proposals"]["gcl"]
    assert row["training_stopped"].startswith("its gcl sampler's training stopped at step 0 of 30")
    assert "training stopped at step 0 of 30" in row["verdict"]  # whichever grade, the verdict says so
    report = render_report(summary)
    assert "gcl: where training STOPPED (step 0 of 30)" in report and "**Training stopped early** for `gcl`" in report
    assert "trained by guided cost learning" in report and "**Not a trained result:" in report


def _idata(rng, *, theta_mean, k_hat, forward_k_hat):
    import arviz as az

    draws = (2, 50)
    return az.from_dict(
        posterior={"theta": theta_mean + 0.1 * rng.standard_normal((*draws, 2))},
        sample_stats={"log_z_k_hat": k_hat + rng.standard_normal(draws), "log_z_forward_k_hat": forward_k_hat
                      + rng.standard_normal(draws), "log_z_reliable": rng.random(draws) > 0.3})


class _Flat:
    @staticmethod
    def flatten(posterior):
        return posterior["theta"].values


@pytest.mark.parametrize("num_proposals", [1, 2, 3, 4, 5])
def test_the_truth_has_a_forest_row_of_its_own(num_proposals):
    rng = np.random.default_rng(0)
    names = ["broad", "gcl", "gan", "cloned", "gcl-follow"][:num_proposals]
    idatas = {name: _idata(rng, theta_mean=i, k_hat=0.2, forward_k_hat=0.1) for i, name in enumerate(names)}
    summary = {"problem": "toy", "theta_names": ["a", "b"], "theta_true": [0.5, -0.5],
               "proposals": {name: {} for name in names}}
    figure = plots.forest_figure(_Flat, summary, idatas)
    ax = figure.axes[0]
    star_heights = {float(line.get_ydata()[0]) for line in ax.lines if line.get_marker() == "*"}
    proposal_heights = {float(line.get_ydata()[0]) for line in ax.lines if line.get_marker() == "o"}
    assert len(star_heights) == 2 and len(proposal_heights) == 2 * num_proposals  # every row its own height
    assert not star_heights & proposal_heights


def test_the_k_hat_figure_shows_every_draw_and_both_directions_with_plain_ticks():
    rng = np.random.default_rng(1)
    idatas = {"gcl": _idata(rng, theta_mean=0.0, k_hat=-2.0, forward_k_hat=3.0),
              "broad": _idata(rng, theta_mean=0.0, k_hat=40.0, forward_k_hat=0.2)}
    summary = {"problem": "toy", "proposals": {"gcl": {"unreliable_fraction": 0.3, "draw_set_error": 0.02},
                                               "broad": {"unreliable_fraction": 1.0}}}
    figure = plots.k_hat_figure(summary, idatas)
    reverse, forward = figure.axes
    values = np.concatenate([idata.sample_stats[v].values.ravel() for idata in idatas.values()
                             for v in ("log_z_k_hat", "log_z_forward_k_hat")])
    low, high = reverse.get_ylim()
    assert low <= values.min() and high >= values.max()  # nothing cut off (the old axis stopped at -0.5)
    plotted = np.concatenate([c.get_offsets()[:, 1] for ax in (reverse, forward) for c in ax.collections])
    assert plotted.size == values.size  # every draw of both directions is drawn
    figure.canvas.draw()
    ticks = [t.get_text() for t in reverse.get_yticklabels() if t.get_text()]
    assert ticks and not any("times" in t or "×" in t or "10^" in t for t in ticks), ticks
    assert [t.get_text() for t in reverse.get_xticklabels()] == ["gcl\n30% unreliable\ndraw-set 0.02 sd",
                                                                  "broad\n100% unreliable"]


@pytest.mark.parametrize("key", [0, jax.random.PRNGKey(0), jax.random.split(jax.random.key(0), 2)],
                         ids=["int", "raw-key", "two-keys"])
def test_the_library_takes_one_typed_key_and_says_so(key):
    problem, _ = location_family()
    for run in (lambda: train_ebm(problem, "gcl", steps=1, key=key, progress=False),
                lambda: compare(problem, ("gcl",), key=key)):
        with pytest.raises(ValueError, match="^key: expected one typed key \\(jax.random.key\\(seed\\)\\)"):
            run()


def test_without_an_exact_log_z_tempered_smc_cross_checks_the_posteriors_estimates():
    # c_b(x) = ½|x - b|²: log Z(b) = log 2π at every b, which the family does not know; the check's SMC does
    from maxent_gan.inference.app.cross_check import cross_check, cross_check_reading, cross_check_reasons
    from maxent_gan.inference.posterior import sample_posterior
    from maxent_gan.inference.proposals import Gaussian

    problem, data = location_family()
    settings = dict(key=jax.random.key(1), num_draws=2000, num_warmup=60, num_samples=40, num_chains=1)
    checks = {}
    for name, proposal in (("good", Gaussian.isotropic(2, 2.0)), ("narrow", Gaussian(jnp.array([0.5, -0.3]), 0.35 * jnp.eye(2)))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = sample_posterior(problem.model, data, proposal=proposal, **settings)
        checks[name] = cross_check(problem, idata, proposal, data[:200], jax.random.key(2), num_thetas=4,
                                   num_particles=1024)
        used = idata.sample_stats["log_z"].values.ravel()
        checks[name]["error"] = float(np.max(np.abs(used - np.log(2 * math.pi))))  # the truth, for the test
    good, narrow = checks["good"], checks["narrow"]
    assert good["thetas"] == 4 and good["error"] < 0.05 and good["max_difference"] < 0.05
    assert cross_check_reasons(good) == [] and cross_check_reading(good) == "agrees"
    # a second SMC run at each of the 4 draws measures SMC's own run-to-run sd: 16 runs of 1024 particles at the
    # data mean vary with sd 0.028 nats (measured once); from 4 pairs the estimate lies within 0.35-1.7 times the
    # true sd 95% of the time
    assert good["replicates"] == 4 and 0.01 < good["smc_noise"] < 0.05
    assert good["start_misses"] == 0 and good["bridges"] == 8
    # a proposal too narrow for p_θ (sd 0.35 against 1): its log Ẑ(θ) misses the tails by tenths of a nat; the
    # forward check over the data sees it at every draw, where SMC's own rule would reject whatever its bridge
    # found, so no bridge runs (from a far worse start one runs for hours) and the check cannot vouch: flagged
    assert narrow["error"] > 0.3 and narrow["start_misses"] == 4 and narrow["bridges"] == 0
    assert narrow["spread"] is None and cross_check_reading(narrow) == "cannot vouch"
    assert cross_check_reasons(narrow) == [
        "the cross-check's own SMC is unreliable at 4 of 4 posterior draws, so it cannot vouch for log Ẑ(θ) (at 4 of "
        "them the proposal misses mass of p_θ that the data visit, which the bridge's moves cannot find: no bridge was "
        "run)"]
    with pytest.raises(ValueError, match="^replicates: "):
        cross_check(problem, idata, proposal, data[:200], jax.random.key(2), replicates=-1)
    # not points in R^d, or no proposal: nothing to run
    assert cross_check(problem, idata, None, data, jax.random.key(2)) is None


def test_compare_without_an_exact_log_z_cross_checks_each_row_and_reports_it():
    problem, _ = location_family()  # no exact log Z(θ): compare runs the SMC cross-check at posterior draws
    settings = CompareSettings(train_steps=10, num_draws=2000, num_warmup=60, num_samples=40, num_chains=1,
                               check_thetas=4)
    summary = compare(problem, ("broad",), settings=settings)
    row = summary["proposals"]["broad"]
    check = row["cross_check"]
    assert check["thetas"] == 4 and check["max_difference"] < 0.05 and check["spread"] < 0.05
    assert "disagrees with tempered SMC" not in (row["unreliable_reasons"] or "")
    report = render_report(summary)
    assert "## Cross-check where no exact log Z exists" in report and "| broad | " in report.split("Cross-check")[1]


def test_trains_final_log_z_without_an_exact_one_is_checked_by_tempered_smc():
    from maxent_gan.inference.app.train_outputs import smc_check

    problem, _ = location_family()  # log Z = log 2π at every b; the family does not say so
    run = train_ebm(problem, "gcl", steps=20, progress=False, checkpoint_every=10**6)
    check = smc_check(run, key=jax.random.key(3))
    assert abs(check["log_z_smc"] - math.log(2 * math.pi)) < 0.05 and check["log_z_smc_reliable"]
    last = {k: v for row in run.result.trace for k, v in row.items()}
    assert check["log_z_smc_difference"] == pytest.approx(last["log_z_is"] - check["log_z_smc"])
    assert smc_check(run, num_particles=0) == {}  # train --check-particles 0: no cross-check
    with_exact, _ = location_family(log_partition_fn=lambda theta: jnp.log(2 * math.pi))
    exact_run = train_ebm(with_exact, "exact", steps=2, progress=False, checkpoint_every=10**6, flow_epochs=1)
    assert smc_check(exact_run) == {}  # an exact log Z: nothing to cross-check


def test_the_cross_check_flags_only_what_its_own_smc_noise_cannot_explain():
    from maxent_gan.inference.app.cross_check import cross_check_reading, cross_check_reasons

    def check(spread, noise, unreliable=0):
        return {"thetas": 20, "max_difference": spread, "spread": spread, "smc_unreliable": unreliable,
                "particles": 2048, "replicates": 4, "smc_noise": noise}

    assert cross_check_reading(None) is None and cross_check_reasons(None) == []
    assert cross_check_reading(check(0.04, 0.2)) == "agrees" and cross_check_reasons(check(0.04, 0.2)) == []
    # 0.10 nats beyond the offset where one SMC run varies by 0.06 from the next (the point mass at 2048
    # particles): 3 sd of that noise reach 0.23 nats, so the check cannot tell, and does not flag
    assert cross_check_reading(check(0.10, 0.06)) == "inconclusive" and cross_check_reasons(check(0.10, 0.06)) == []
    # beyond the tolerance plus 3 sd of its noise, or with no measure of its noise, it flags as before
    for flagged in (check(0.30, 0.06), check(0.10, 0.01), check(0.10, None), check(0.10, float("inf")),
                    check(float("inf"), 0.01), check(None, 0.01)):
        assert cross_check_reading(flagged) == "disagrees"
        assert cross_check_reasons(flagged)[0].startswith("log Ẑ(θ) disagrees with tempered SMC")
    assert "run-to-run variation (0.010 nats)" in cross_check_reasons(check(0.10, 0.01))[0]
    # an SMC that flags itself at most draws cannot vouch, whatever the difference: neither agrees nor disagrees
    for spread in (0.04, 0.30):
        assert cross_check_reading(check(spread, 0.01, unreliable=11)) == "cannot vouch"
        assert cross_check_reasons(check(spread, 0.01, unreliable=11)) == [
            "the cross-check's own SMC is unreliable at 11 of 20 posterior draws, so it cannot vouch for log Ẑ(θ)"]
    assert cross_check_reading(check(0.04, 0.01, unreliable=10)) == "agrees"  # half is not more than half
