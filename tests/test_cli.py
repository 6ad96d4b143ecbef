"""The console script: JSON keys, readable output, exit code 2 with one line on errors."""

import json
import math
import subprocess
import sys

import pytest
from maxent_gan.inference.app.cli import main

from tests.helpers import run_cli as run


def run_process(*args):
    return subprocess.run([sys.executable, "-m", "maxent_gan.inference.app.cli", *args], capture_output=True, text=True, timeout=300)


def test_logz_json_has_the_documented_keys_and_is_close_to_exact():
    result = run("logz", "--problem", "gaussian", "--dim", "10", "--proposal", "gaussian",
                 "--samples", "10000", "--seed", "0", "--fit-steps", "600", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert {"log_z", "log_z_exact", "ess", "k_hat", "seconds"} <= set(payload)
    assert abs(payload["log_z"] - payload["log_z_exact"]) < 0.02
    assert payload["k_hat"] < 0.5 and payload["ess"] > 5000


def test_logz_table_and_unreliable_warning(capsys):
    assert main(["logz", "--dim", "10", "--proposal", "broad", "--estimator", "importance", "--samples", "2000"]) == 0
    captured = capsys.readouterr()
    assert "Pareto k-hat" in captured.out and "unreliable" in captured.out
    assert "forward check" in captured.out and "over 2000 exact draws" in captured.out
    assert "reliable                     NO: Pareto k-hat" in captured.out
    assert captured.err.startswith("maxent-gan: warning: logz: the estimate is unreliable: Pareto k-hat")


def test_logz_with_the_annealed_estimator_bridges_a_broad_start(capsys, monkeypatch):
    assert main(["logz", "--proposal", "broad", "--estimator", "annealed", "--samples", "1024", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["estimator"] == "annealed" and payload["num_temperatures"] >= 2
    assert "forward check" in payload["checks_run"]  # the gaussian has exact draws
    assert abs(payload["log_z"] - payload["log_z_exact"]) < 0.1 and payload["acceptance"] > 0.1
    # a discrete target is refused before the policy is fitted (that fit took 20 s)
    def no_fit(*args, **kwargs):
        raise AssertionError("the proposal was built before the estimator was checked")

    monkeypatch.setattr("maxent_gan.inference.app.logz.make_proposal", no_fit)
    assert main(["logz", "--problem", "gridworld", "--proposal", "policy", "--estimator", "annealed"]) == 2
    assert "target: the annealed estimator moves particles by HMC" in capsys.readouterr().err


def test_logz_defaults_bridge_from_the_broad_start_only_where_importance_sampling_is_unreliable(capsys):
    # 2-D: the broad start's weights pass their rule, and that estimate is the answer
    assert main(["logz", "--samples", "2000", "--json"]) == 0
    easy = json.loads(capsys.readouterr().out)
    assert easy["proposal"] == "broad" and easy["estimator"] == "importance" and easy["escalated_from"] is None
    assert easy["reliable"] and abs(easy["log_z"] - easy["log_z_exact"]) < 0.05
    # 10-D: they do not (the table test's case), so tempered SMC bridges from the same start
    assert main(["logz", "--dim", "10", "--samples", "2000", "--json"]) == 0
    hard = json.loads(capsys.readouterr().out)
    assert hard["estimator"] == "annealed" and hard["num_temperatures"] >= 2
    assert any("Pareto k-hat" in reason for reason in hard["escalated_from"]["unreliable_reasons"])
    assert abs(hard["log_z"] - hard["log_z_exact"]) < abs(hard["escalated_from"]["log_z"] - hard["log_z_exact"])
    assert abs(hard["log_z"] - hard["log_z_exact"]) < 0.1
    assert main(["logz", "--dim", "10", "--samples", "2000"]) == 0
    assert "importance sampling first" in capsys.readouterr().out


def test_exact_proposal_reports_null_k_hat_in_json(capsys):
    assert main(["logz", "--proposal", "exact-sampler", "--samples", "500", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["k_hat"] is None and math.isclose(payload["log_z"], payload["log_z_exact"], abs_tol=1e-10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["logz", "--proposal", "nope"], "proposal: unknown name 'nope' for gaussian; valid: exact-sampler, broad"),
        (["logz", "--problem", "nope"], "problem: unknown name 'nope'; valid: gaussian"),
        (["logz", "--samples", "0"], "argument --samples: expected a positive integer"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["identities", "--samples", "50"], "samples: expected at least 100 draws"),
    ],
)
def test_errors_exit_2_with_one_line(args, message, capsys, tmp_path):
    assert main([*args, *(["--out", str(tmp_path / "r")] if args[0] == "identities" else [])]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and message in captured.err and "Traceback" not in captured.err


def test_identities_writes_its_report_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "report"
    quick = ["identities", "--samples", "500", "--fit-steps", "200", "--dim", "3"]
    assert main([*quick, "--out", str(out)]) == 0
    assert "the paper's identities" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert all(claim["holds"] for claim in summary["claims"].values())
    assert (out / "report.md").read_text().startswith("# maxent-gan")
    assert (out / "figures" / "identities.png").stat().st_size > 10_000
    assert not list(out.rglob("*.tmp"))  # nothing half-written
    assert main(["identities", "--out", str(out)]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert main([*quick, "--out", str(out), "--force"]) == 0


def test_bad_problem_name_creates_no_output_folder(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["--problem", "nope", "--out", str(out)]) == 2
    assert "problem: unknown name 'nope'" in capsys.readouterr().err
    assert not out.exists()


TRAIN_QUICK = ["--steps", "6", "--eval-every", "6", "--checkpoint-every", "3", "--train-size", "300",
               "--flow-epochs", "1", "--batch-size", "64", "--samples", "64"]


def test_train_writes_summary_figures_checkpoints_and_resumes(tmp_path):
    out = tmp_path / "run"
    result = run("train", "--problem", "8gaussians", "--method", "gan", "--out", str(out), "--json", *TRAIN_QUICK)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert {"held_out_nll", "true_nll", "log_z_learned", "log_z_exact", "seconds"} <= set(summary)
    assert summary["steps"] == 6 and summary["stopped"] is None
    assert all(math.isfinite(summary[k]) for k in ("held_out_nll", "true_nll", "log_z_learned", "log_z_exact"))
    for name in ("summary.json", "trace.json", "figures/density.png", "figures/training.png",
                 "checkpoints/checkpoint.json", "checkpoints/state-00000006.eqx"):
        assert (out / name).is_file(), name
    assert not list(out.rglob("*.tmp"))
    # more steps than the checkpoint's run: its learning-rate schedule spans 6, so it is refused, saying why
    args = [a if a != "6" else "9" for a in TRAIN_QUICK]
    longer = run("train", "--problem", "8gaussians", "--method", "gan", "--out", str(out), "--resume", "--json", *args)
    assert longer.returncode == 2 and "steps=6, this run has steps=9 (the learning rate's schedule" in longer.stderr
    resumed = run("train", "--problem", "8gaussians", "--method", "gan", "--out", str(out), "--resume", "--json",
                  *TRAIN_QUICK)
    assert resumed.returncode == 0, resumed.stderr
    again = json.loads(resumed.stdout)
    assert again["steps"] == 6 and again["log_z_learned"] == summary["log_z_learned"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--method", "nope"], "method: unknown name 'nope'; valid: exact, gcl, gan"),
        (["train", "--problem", "nope"], "problem: unknown name 'nope'; valid: gaussian, rings, 8gaussians"),
        (["train", "--problem", "digits", "--method", "exact"], "'exact' needs an exact log Z"),
        (["train", "--resume"], "resume: no checkpoint in"),
        (["train", "--check-particles", "-1"], "expected a non-negative integer, got -1"),
        (["logz", "--problem", "digits"], "digits has no reference energy"),
        (["logz", "--problem", "gridworld", "--proposal", "flow"],
         "proposal: unknown name 'flow' for gridworld; valid: exact-sampler, broad, soft-optimal, policy"),
    ],
    ids=["method", "problem", "exact-on-digits", "resume-nothing", "check-particles", "logz-digits", "logz-gridworld-flow"],
)
def test_train_errors_exit_2_before_any_work(args, message, tmp_path):
    result = run(*args, "--out", str(tmp_path / "out")) if args[0] == "train" else run(*args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("maxent-gan: error:"), result.stderr
    assert message in result.stderr
    assert not (tmp_path / "out").exists()  # nothing written before the checks


def test_train_refuses_a_non_empty_out_without_force(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = run("train", "--out", str(tmp_path), *TRAIN_QUICK)
    assert result.returncode == 2 and "exists and is not empty" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_logz_with_a_flow_fitted_to_data_on_a_toy():
    result = run("logz", "--problem", "rings", "--proposal", "flow-data", "--fit-steps", "3", "--samples", "2000",
                 "--estimator", "importance", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["dim"] == 2 and abs(payload["log_z_exact"] - -2.402650005990836) < 1e-9
    assert abs(payload["log_z"] - payload["log_z_exact"]) < 0.5  # 3 epochs: a rough flow, but finite weights


@pytest.mark.parametrize(("problem", "method"), [("gridworld", "exact"), ("gridworld", "gan"), ("lqr", "gcl")])
def test_train_on_irl_problems_reports_irl_metrics(problem, method, tmp_path):
    out = tmp_path / "grid"
    result = run("train", "--problem", problem, "--method", method, "--out", str(out), "--json", "--steps", "20",
                 "--train-size", "50", "--eval-every", "20")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert {"epic", "cost_correlation", "evd", "log_z_learned", "log_z_exact", "seconds", "theta"} <= set(summary)
    assert math.isfinite(summary["log_z_exact"]) and math.isfinite(summary["log_z_learned"])
    if problem == "gridworld":
        assert 0.0 <= summary["epic"] <= 1.0 and summary["evd"] >= -1e-4
        assert summary["theta_true"] == pytest.approx([-1.0, 4.0, 3.0, 0.3])
        assert (out / "figures" / "costs.png").is_file()
    else:
        assert summary["epic"] is None and summary["theta_true"] == pytest.approx([0.0, -1.0, -0.5])
    for name in ("figures/training.png", "checkpoints/checkpoint.json"):
        assert (out / name).is_file(), name


def test_logz_on_the_gridworld_with_the_exact_proposal_is_exact():
    # the one run in a process of its own: the module entry point, as a user starts it
    result = run_process("logz", "--problem", "gridworld", "--proposal", "exact-sampler", "--samples", "500", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert abs(payload["log_z"] - payload["log_z_exact"]) < 1e-9 and payload["dim"] == 41
