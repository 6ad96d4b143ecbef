"""`maxent-gan compare`, the main job: outputs, summary fields, verdicts, and bad input."""

import json

import numpy as np
import pytest
from maxent_gan.inference.app.compare import CompareSettings, compare
from maxent_gan.inference.posterior import load_posterior

from tests.helpers import run_cli as run

TINY = ["--demos", "40", "--samples", "60", "--chains", "2", "--draws", "1000", "--train-steps", "20"]


def test_compare_writes_report_figures_netcdf_and_summary(tmp_path):
    out = tmp_path / "report"
    result = run("compare", "--proposals", "exact,broad", "--out", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    assert "# Posterior cost estimates on gridworld" in result.stdout
    # for a newcomer: what each proposal and each weight is, and the rules behind the verdicts
    assert "- `broad`: a broad proposal" in result.stdout and "- `goal`: cost of standing on the goal" in result.stdout
    assert "How to read it:" in result.stdout and "Above 5% the posterior is flagged" in result.stdout
    for name in ("report.md", "summary.json", "figures/forest.png", "figures/k_hat.png", "figures/costs.png",
                 "posterior_exact.nc", "posterior_broad.nc"):
        assert (out / name).is_file(), name
    assert not list(out.rglob("*.tmp"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["theta_true"] == [-1.0, 4.0, 3.0, 0.3]
    assert list(summary["proposals"]) == ["exact", "broad"]
    for row in summary["proposals"].values():
        assert {"posterior_mean", "posterior_sd", "rhat_max", "k_hat_median", "ess_median", "seconds"} <= set(row)
        assert len(row["posterior_mean"]) == len(row["posterior_sd"]) == 4
    exact, broad = summary["proposals"]["exact"], summary["proposals"]["broad"]
    assert exact["k_hat_median"] is None and exact["shift_max_sd"] == 0.0
    # the broad proposal cannot stand in for Z(θ) on 20-step trajectories: k-hat says so
    assert broad["k_hat_median"] > 0.7 and broad["unreliable_fraction"] > 0.5
    assert broad["verdict"].startswith("far off (") and "and flagged: " in broad["verdict"]
    assert "its set of proposal draws alone moves" in broad["unreliable_reasons"]  # what moves it, said
    assert exact["unreliable_fraction"] is None  # the exact normalizer has no draws to judge
    assert broad["k_hat_p95"] >= broad["k_hat_median"] and broad["forward_k_hat_median"] is not None
    # the exact-normalizer posterior sits near θ* (40 demonstrations, a short run: within 4 sd)
    z = np.abs(np.subtract(exact["posterior_mean"], summary["theta_true"])) / np.asarray(exact["posterior_sd"])
    assert np.all(z < 4), z
    idata = load_posterior(out / "posterior_broad.nc")
    assert idata.log_likelihood["tau"].shape == (2, 60, 40)  # one value per demonstration
    assert {"log_z", "log_z_ess", "log_z_k_hat", "log_z_error"} <= set(idata.sample_stats.data_vars)


SMALL = CompareSettings(demos=50, train_steps=30, num_draws=1000, num_warmup=60, num_samples=60, num_chains=2)


def test_the_gaussian_family_runs_end_to_end():
    gaussian = compare("gaussian", ("exact", "gan"), settings=SMALL)
    assert gaussian["theta_names"] == ["loc[0]", "loc[1]", "log_precision[0]", "log_precision[1]"]
    row = gaussian["proposals"]["gan"]
    assert np.isfinite(row["posterior_mean"]).all() and row["k_hat_median"] is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--problem", "nope"], "problem: unknown name 'nope'; valid: gaussian, rings"),
        (["--proposals", "exact,flow"],
         "proposals: unknown name 'flow' for gridworld; valid: exact, broad, cloned, gcl, gan, gcl-follow, gan-follow"),
        (["--proposals", "exact,exact"], "proposals: a name is repeated"),
        (["--demos", "0"], "argument --demos: expected a positive integer, got 0"),
    ],
)
def test_bad_names_fail_before_any_work(tmp_path, args, message):
    out = tmp_path / "never"
    result = run("compare", "--out", str(out), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not out.exists()  # nothing created before the names were checked


def test_existing_output_is_not_overwritten_without_force(tmp_path):
    (tmp_path / "old.txt").write_text("keep")
    result = run("compare", "--out", str(tmp_path), *TINY)
    assert result.returncode == 2 and "pass --force" in result.stderr
    assert (tmp_path / "old.txt").read_text() == "keep"


def test_toy_family_is_the_toy_at_zero_and_keeps_an_exact_log_z():
    import jax
    import jax.numpy as jnp
    from maxent_gan.models.mixture import mixture_cost, mixture_log_partition
    from maxent_gan.models.toys import toy_family_cost, toy_family_log_partition, toy_params

    base = toy_params("rings")
    x = 2.0 * jax.random.normal(jax.random.key(0), (64, 2))
    zero = {"log_spread": jnp.array(0.0), "log_scale": jnp.array(0.0)}
    np.testing.assert_allclose(toy_family_cost(base, zero, x), mixture_cost(base, x), rtol=1e-12)
    # widening every blob by e^s multiplies Z by e^{2s} in 2D; stretching the shape leaves Z alone
    moved = {"log_spread": jnp.array(0.4), "log_scale": jnp.array(-0.3)}
    assert abs(float(toy_family_log_partition(base, moved) - mixture_log_partition(base)) - 2 * -0.3) < 1e-12
    summary = compare("rings", ("exact",), settings=CompareSettings(demos=100, num_warmup=50, num_samples=50,
                                                                    num_chains=2))
    assert summary["theta_names"] == ["log_spread", "log_scale"]
    mean, sd = np.asarray(summary["proposals"]["exact"]["posterior_mean"]), summary["proposals"]["exact"]["posterior_sd"]
    assert np.all(np.abs(mean) < 4 * np.asarray(sd) + 0.05), (mean, sd)
