"""Bad files and bad runs: damaged posteriors and checkpoints, resumes of another run, output folders that
mix two runs, modes, interrupts, and CLI arguments that fail late. Each error names the file or the
argument, in one line, before any expensive work (a stand-in for that work raises if it is reached)."""

import hashlib
import json
import os
import re
import threading
from pathlib import Path

import arviz as az
import jax
import maxent_gan.inference.app.compare
import maxent_gan.inference.app.identities
import maxent_gan.inference.app.logz
import maxent_gan.inference.driver
import maxent_gan.inference.ebm
import numpy as np
import pytest
from maxent_gan.inference.app.cli import main
from maxent_gan.inference.diagnostics import UnreliableEstimateWarning, warn_if_unreliable
from maxent_gan.inference.driver import CHECKPOINT, load_checkpoint
from maxent_gan.inference.io import write_atomic
from maxent_gan.inference.posterior import load_posterior, sample_posterior, save_posterior
from maxent_gan.inference.proposals import Gaussian

from tests.test_handler import DIM, model


class ExpensiveWorkStarted(Exception):
    """Raised by the stand-ins for data, model building and sampling: a check came too late."""


def expensive(*args, **kwargs):
    raise ExpensiveWorkStarted


@pytest.fixture(autouse=True)
def _keep_x64():
    # `maxent-gan train` switches float64 off for its run (DESIGN §5); the suite runs in float64
    yield
    jax.config.update("jax_enable_x64", True)


def umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def run_cli(capsys, *args) -> tuple[int, str]:
    """``main(args)`` and its stderr; a KeyboardInterrupt that escapes is a failure, not the end of pytest."""
    try:
        code = main(list(args))
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped main")
    return code, capsys.readouterr().err


def one_error_line(code: int, err: str) -> str:
    assert code == 2 and err.count("\n") == 1 and err.startswith("maxent-gan: error: "), err
    assert "Traceback" not in err
    return err


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# 1, 4: posteriors --------------------------------------------------------------------------------------------------


class SlowPosterior:
    """Writes its bytes, then waits for the other writer: both are mid-write at once."""

    def __init__(self, content: bytes, barrier: threading.Barrier):
        self.content, self.barrier = content, barrier

    def to_netcdf(self, path: str) -> None:
        Path(path).write_bytes(self.content)
        self.barrier.wait(timeout=10)


def test_two_writers_of_one_posterior_path_do_not_share_a_temp_file(tmp_path):
    path = tmp_path / "posterior_gcl.nc"
    barrier, errors = threading.Barrier(2), []
    contents = [bytes([i]) * 10_000 for i in (1, 2)]

    def write(content):
        try:
            save_posterior(SlowPosterior(content, barrier), path)
        except Exception as err:  # noqa: BLE001 (reported below)
            errors.append(err)

    threads = [threading.Thread(target=write, args=(c,)) for c in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert path.read_bytes() in contents  # one whole file, not a mix
    assert leftovers(tmp_path) == []


def test_outputs_get_the_umask_mode_not_0600(tmp_path):
    expected = 0o666 & ~umask()
    write_atomic(tmp_path / "report.md", "# report\n")
    save_posterior(az.from_dict(posterior={"theta": np.zeros((2, 5))}), tmp_path / "posterior.nc")
    for name in ("report.md", "posterior.nc"):
        assert (tmp_path / name).stat().st_mode & 0o777 == expected, name


def tiny_posterior(path: Path) -> Path:
    return save_posterior(az.from_dict(posterior={"theta": np.arange(10.0).reshape(2, 5)}), path)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "no-posterior-group"])
def test_a_damaged_posterior_file_is_a_value_error_naming_the_path(tmp_path, damage):
    path = tiny_posterior(tmp_path / "posterior.nc")
    if damage == "garbage":
        path.write_bytes(b"this is not netCDF\n" * 50)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        az.from_dict(sample_stats={"diverging": np.zeros((2, 5), bool)}).to_netcdf(str(path))
    with pytest.raises(ValueError, match=f"^path: {path} is not a readable netCDF posterior \\(.+\\)$"):
        load_posterior(path)
    assert load_posterior(tiny_posterior(tmp_path / "good.nc")).posterior["theta"].shape == (2, 5)


# 2, 3: checkpoints --------------------------------------------------------------------------------------------------

#: what ``maxent-gan train`` (defaults, rings, gcl) records as its run
CLI_RUN = {"problem": "rings", "method": "gcl", "steps": 200, "key": [0, 0], "num_train": 5000, "num_test": 5000, "batch_size": 256,
           "num_draws": 256, "learning_rate": maxent_gan.inference.ebm.NETWORK_RATE, "flow_epochs": 100, "tilted": False, "parametric": False, "data": "problem",
           "float64": False}


def write_checkpoint(folder: Path, *, step: int = 200, run: dict | None = None, leaves: bytes = b"leaves" * 100,
                     changes: dict | None = None, edits: dict | None = None) -> Path:
    """A checkpoint as the driver writes it: the state file, and the JSON with its size, SHA-256 and checksum.

    ``changes`` replaces keys of the JSON before its checksum is taken (a consistent checkpoint with odd
    contents), ``edits`` after (a checkpoint edited by hand); a value of ``...`` removes the key.
    """
    folder.mkdir(parents=True, exist_ok=True)
    name = f"state-{step:08d}.eqx"
    (folder / name).write_bytes(leaves)
    meta = {"step": step, "state": name, "state_bytes": len(leaves), "state_sha256": hashlib.sha256(leaves).hexdigest(),
            "run": CLI_RUN if run is None else run, "trace": []}
    meta.update(changes or {})
    meta = {k: v for k, v in meta.items() if v is not ...}
    meta["checksum"] = maxent_gan.inference.driver._checksum(meta)
    meta.update(edits or {})
    (folder / CHECKPOINT).write_text(json.dumps({k: v for k, v in meta.items() if v is not ...}))
    return folder


DAMAGES = {
    "garbage-json": (lambda d: (d / CHECKPOINT).write_bytes(b"\x00\xff garbage"), "is not readable JSON"),
    "truncated-json": (lambda d: (d / CHECKPOINT).write_text((d / CHECKPOINT).read_text()[:40]), "is not readable JSON"),
    "json-list": (lambda d: (d / CHECKPOINT).write_text("[1, 2]"), "holds a JSON list"),
    "no-state-key": (lambda d: write_checkpoint(d, changes={"state": ...}), "lacks the key\\(s\\) 'state'"),
    "bad-step": (lambda d: write_checkpoint(d, changes={"step": "three"}), "has step 'three'"),
    "state-outside": (lambda d: write_checkpoint(d, changes={"state": "../elsewhere.eqx"}), "names the state file"),
    "state-missing": (lambda d: (d / "state-00000200.eqx").unlink(), "state-00000200.eqx that .* is missing"),
    "state-truncated": (lambda d: (d / "state-00000200.eqx").write_bytes(b"leaves" * 50), "truncated or damaged"),
    "state-altered": (lambda d: (d / "state-00000200.eqx").write_bytes(b"LEAVES" * 100), "does not match the SHA-256"),
    "step-edited": (lambda d: write_checkpoint(d, edits={"step": 100}), "does not match its own checksum"),
    "run-edited": (lambda d: write_checkpoint(d, edits={"run": {**CLI_RUN, "key": [0, 5]}}), "does not match its own checksum"),
    "no-checksum": (lambda d: write_checkpoint(d, edits={"checksum": ...}), "lacks the key\\(s\\) 'checksum'"),
    # a flipped bit in the state with the hash keys removed: the old checks passed it (another θ resumed)
    "hashes-removed": (lambda d: (write_checkpoint(d, edits={"state_sha256": ..., "state_bytes": ...}),
                                  (d / "state-00000200.eqx").write_bytes(b"leaves" * 99 + b"leavEs")),
                       "lacks the key\\(s\\) 'state_bytes', 'state_sha256'"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_checkpoint_is_refused_naming_the_file_before_any_work(tmp_path, capsys, monkeypatch, damage):
    monkeypatch.setattr(maxent_gan.inference.ebm, "build_training", expensive)
    folder = write_checkpoint(tmp_path / "run" / "checkpoints")
    spoil, message = DAMAGES[damage]
    spoil(folder)
    err = one_error_line(*run_cli(capsys, "train", "--resume", "--out", str(tmp_path / "run")))
    assert "maxent-gan: error: resume: " in err and str(folder) in err
    assert re.search(message, err)
    with pytest.raises(ValueError, match=message):
        maxent_gan.inference.driver.check_checkpoint(folder)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--method", "gan"], "method: the checkpoint .* was written with method='gcl', this run has method='gan'"),
        (["--seed", "3"], "key: the checkpoint .* was written with key=\\[0, 0\\], this run has key=\\[0, 3\\] \\(the run's key, from --seed\\)"),
        (["--samples", "64"], "num_draws: .* num_draws=256, this run has num_draws=64"),
        (["--learning-rate", "0.01"], "learning_rate: .* learning_rate=0.003, this run has learning_rate=0.01"),
        (["--steps", "100"], "steps: 100 is fewer than the 200 steps already in the checkpoint"),
        (["--steps", "400"], "steps: .* written with steps=200, this run has steps=400 \\(the learning rate's "
                             "schedule spans the run's total steps"),
    ],
    ids=["method", "seed", "samples", "learning-rate", "fewer-steps", "more-steps"],
)
def test_resume_refuses_a_checkpoint_of_another_run_before_any_work(tmp_path, capsys, monkeypatch, flags, message):
    monkeypatch.setattr(maxent_gan.inference.ebm, "build_training", expensive)
    write_checkpoint(tmp_path / "checkpoints")
    flags = flags if "--steps" in flags else [*flags, "--steps", "200"]
    err = one_error_line(*run_cli(capsys, "train", "--resume", "--out", str(tmp_path), *flags))
    assert re.search(message, err), err


def test_resume_of_the_same_run_passes_the_checks(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(maxent_gan.inference.ebm, "build_training", expensive)
    write_checkpoint(tmp_path / "checkpoints")
    with pytest.raises(ExpensiveWorkStarted):  # past every check: the checkpoint is this run's
        main(["train", "--resume", "--out", str(tmp_path), "--steps", "200"])


def test_a_checkpoint_without_run_settings_is_refused_on_resume(tmp_path):
    folder = write_checkpoint(tmp_path, changes={"run": ...})
    with pytest.raises(ValueError, match="does not record the settings of its run"):
        maxent_gan.inference.driver.check_checkpoint(folder, run=CLI_RUN)


def test_train_ebm_checks_the_checkpoint_before_the_data(tmp_path, monkeypatch):
    monkeypatch.setattr(maxent_gan.inference.ebm, "build_training", expensive)
    problem = maxent_gan.inference.ebm.make_problem("rings")._replace(data=expensive)
    write_checkpoint(tmp_path, run={**CLI_RUN, "float64": True})
    with pytest.raises(ValueError, match="^method: .*method='gcl', this run has method='gan'"):
        maxent_gan.inference.ebm.train_ebm(problem, "gan", steps=300, checkpoint_dir=tmp_path, resume=True, progress=False)


def test_driver_records_the_run_and_refuses_fewer_steps(tmp_path):
    from maxent_gan.inference.driver import _save

    state = {"w": np.arange(3.0)}
    _save(tmp_path, state, 7, [{"step": 7}], {"problem": "toy", "seed": 1})
    meta = maxent_gan.inference.driver.check_checkpoint(tmp_path, run={"problem": "toy", "seed": 1}, steps=7)
    assert meta["run"] == {"problem": "toy", "seed": 1} and len(meta["state_sha256"]) == 64
    restored, step, trace = load_checkpoint(tmp_path, state)
    np.testing.assert_array_equal(restored["w"], state["w"])
    with pytest.raises(ValueError, match="^steps: 5 is fewer than the 7 steps"):
        load_checkpoint(tmp_path, state, steps=5)
    with pytest.raises(ValueError, match="^seed: .*seed=1, this run has seed=2"):
        load_checkpoint(tmp_path, state, run={"problem": "toy", "seed": 2})


# 5, 6, 7: output folders, undefined statistics, interrupts ------------------------------------------------------------


def fake_posterior(model, data, *, num_chains, num_samples, estimator, **options):
    """What sample_posterior returns, without NUTS: the Gaussian family's sites; the per-draw statistics of
    the proposal's weights are NaN, as for the exact estimator (no draws)."""
    rng = np.random.default_rng(0)
    shape = (num_chains, num_samples)
    stats = {name: np.full(shape, np.nan) for name in ("log_z", "log_z_ess", "log_z_k_hat", "log_z_forward_ess",
                                                        "log_z_forward_k_hat", "log_z_reliable")}
    stats["diverging"] = np.zeros(shape, bool)
    return az.from_dict(posterior={"loc": rng.normal(size=(*shape, 2)), "log_precision": rng.normal(size=(*shape, 2))},
                        sample_stats=stats)


GAUSSIAN = ["compare", "--problem", "gaussian", "--demos", "10", "--samples", "20", "--chains", "2"]


def old_run(folder: Path) -> Path:
    folder.mkdir()
    for name in ("posterior_gcl.nc", "summary.json", "report.md"):
        (folder / name).write_text(f"old {name}")
    return folder


def test_compare_force_replaces_the_whole_folder_with_one_chain(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(maxent_gan.inference.app.compare, "sample_posterior", fake_posterior)
    out = old_run(tmp_path / "out")
    code, err = run_cli(capsys, *GAUSSIAN, "--proposals", "exact", "--chains", "1", "--out", str(out), "--force")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["figures", "posterior_exact.nc", "report.md", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["proposals"]["exact"]["rhat_max"] is None  # R-hat of one chain is undefined: null, not NaN
    assert leftovers(tmp_path) == []
    mode = 0o666 & ~umask()
    for name in ("report.md", "summary.json", "posterior_exact.nc", "figures/forest.png"):
        assert (out / name).stat().st_mode & 0o777 == mode, name
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask()


def test_an_interrupted_compare_leaves_the_old_folder_as_it_was(tmp_path, capsys, monkeypatch):
    calls = []

    def interrupted_on_the_second(*args, **kwargs):
        calls.append(kwargs["estimator"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return fake_posterior(*args, **kwargs)

    monkeypatch.setattr(maxent_gan.inference.app.compare, "sample_posterior", interrupted_on_the_second)
    out = old_run(tmp_path / "out")
    code, err = run_cli(capsys, *GAUSSIAN, "--proposals", "exact,broad", "--out", str(out), "--force")
    assert (code, err) == (130, "maxent-gan: interrupted\n")
    assert len(calls) == 2  # posterior_exact.nc was written, to the temporary folder
    assert sorted(p.name for p in out.iterdir()) == ["posterior_gcl.nc", "report.md", "summary.json"]
    assert (out / "summary.json").read_text() == "old summary.json"
    assert leftovers(tmp_path) == []


def test_an_interrupted_fresh_compare_leaves_no_folder(tmp_path, capsys, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(maxent_gan.inference.app.compare, "train_ebm", interrupt)
    code, err = run_cli(capsys, *GAUSSIAN, "--out", str(tmp_path / "out"))
    assert (code, err) == (130, "maxent-gan: interrupted\n")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_identities_force_rerun_keeps_the_old_report(tmp_path, capsys, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(maxent_gan.inference.app.identities, "check_identities", interrupt)
    out = old_run(tmp_path / "out")
    code, err = run_cli(capsys, "identities", "--samples", "200", "--dim", "2", "--out", str(out), "--force")
    assert (code, err) == (130, "maxent-gan: interrupted\n")
    assert (out / "report.md").read_text() == "old report.md"
    assert leftovers(tmp_path) == []


def test_an_interrupted_train_keeps_the_old_folder_unless_it_checkpointed(tmp_path, capsys, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    def checkpoint_then_interrupt(key, algorithm, state, data, *, checkpoint_dir, run, **options):
        write_checkpoint(Path(checkpoint_dir), step=3, run=run)
        raise KeyboardInterrupt

    monkeypatch.setattr(maxent_gan.inference.ebm, "build_training", lambda *args, **kwargs: (None, None))
    quick = ["train", "--train-size", "50", "--test-size", "50", "--out", str(tmp_path / "out"), "--force"]
    out = old_run(tmp_path / "out")
    monkeypatch.setattr(maxent_gan.inference.ebm, "run_training", interrupt)
    assert run_cli(capsys, *quick) == (130, "maxent-gan: interrupted\n")
    assert sorted(p.name for p in out.iterdir()) == ["posterior_gcl.nc", "report.md", "summary.json"]
    assert leftovers(tmp_path) == []
    # after a checkpoint, the folder is kept as it stands (the checkpoint only), for --resume
    monkeypatch.setattr(maxent_gan.inference.ebm, "run_training", checkpoint_then_interrupt)
    assert run_cli(capsys, *quick) == (130, "maxent-gan: interrupted\n")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "checkpoints", "checkpoints/checkpoint.json", "checkpoints/state-00000003.eqx"]
    assert leftovers(tmp_path) == []
    run = {**CLI_RUN, "num_train": 50, "num_test": 50, "steps": maxent_gan.inference.ebm.NETWORK_STEPS}
    assert maxent_gan.inference.driver.check_checkpoint(out / "checkpoints", run=run, steps=3)["run"] == run


# 8: arguments that failed late or under another name ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["identities", "--out", "/proc/x"], "out: cannot create /proc/x: "),
        (["compare", "--out", "/proc/x"], "out: cannot create /proc/x: "),
        (["train", "--out", "/proc/x"], "out: cannot create /proc/x: "),
        (["logz", "--seed", "-1"], "seed: expected an integer in [0, 2**63), got -1"),
        (["logz", "--seed", str(2**64)], "seed: expected an integer in [0, 2**63), got 18446744073709551616"),
        (["compare", "--seed", str(2**63)], "seed: expected an integer in [0, 2**63)"),
        (["train", "--seed", str(2**32 + 5)], "seed: expected an integer in [0, 2**32) for train"),
        (["compare", "--demos", "1000000000"], "demos: expected at most 100000, got 1000000000"),
        (["compare", "--draws", "1"], "draws: expected at least 2 proposal draws, got 1"),
        (["logz", "--scale", "inf"], "scale: expected a finite positive number, got inf"),
        (["logz", "--scale", "nan"], "scale: expected a finite positive number, got nan"),
        (["train", "--learning-rate", "inf"], "learning-rate: expected a finite positive number, got inf"),
    ],
    ids=lambda value: "-".join(value)[:40] if isinstance(value, list) else None,
)
def test_cli_arguments_fail_in_one_line_naming_the_argument_before_any_work(args, message, tmp_path, capsys,
                                                                             monkeypatch):
    for module, name in [(maxent_gan.inference.app.compare, "train_ebm"), (maxent_gan.inference.ebm, "build_training"),
                         (maxent_gan.inference.app.logz, "estimate_log_z"), (maxent_gan.inference.app.identities, "check_identities")]:
        monkeypatch.setattr(module, name, expensive)
    out = [] if args[0] == "logz" or "--out" in args else ["--out", str(tmp_path / "out")]
    err = one_error_line(*run_cli(capsys, *args, *out))
    assert message in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["logz", "identities"])
def test_dim_is_bounded_before_the_problem_is_built(command, tmp_path, capsys, monkeypatch):
    import maxent_gan.models.problems

    monkeypatch.setitem(maxent_gan.models.problems.PROBLEMS, "gaussian", expensive)  # a d x d precision matrix
    out = ["--out", str(tmp_path / "out")] if command == "identities" else []
    err = one_error_line(*run_cli(capsys, command, "--dim", "10000", *out))
    assert "dim: expected at most 1000, got 10000" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.filterwarnings("ignore::maxent_gan.inference.diagnostics.UnreliableEstimateWarning")  # 200 draws: only the count
def test_numpy_integer_draws_are_accepted():
    data = jax.random.normal(jax.random.key(0), (20, DIM))
    idata = sample_posterior(model, data, key=jax.random.key(1), proposal=Gaussian.isotropic(DIM, 0.8),
                             num_draws=np.int64(200), num_warmup=20, num_samples=20, num_chains=1)
    assert idata.posterior.attrs["num_draws"] == 200


@pytest.mark.parametrize(("num", "cause"), [(10, "too few to fit"), (10_000, "tail could not be fitted")])
def test_k_hat_warning_says_why_it_could_not_be_estimated(num, cause):
    with pytest.warns(UnreliableEstimateWarning, match=f"could not be estimated from {num} draws") as caught:
        warn_if_unreliable("log_z_importance", np.inf, 1.0, num)
    message = str(caught[0].message)
    assert cause in message and ("too few" in message) == (num < 25)


def test_a_terminated_compare_leaves_no_folder(tmp_path):
    """SIGTERM (kill, timeout, a scheduler's limit) removes the run's temporary folder as Ctrl-C does, and the
    exit code says so (143). A 32 x 32 gridworld compare stopped by `timeout` once left its staging folder."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "maxent_gan.inference.app.cli", *GAUSSIAN, "--out", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(path.name.endswith(".tmp") for path in tmp_path.iterdir()):  # the run has started writing
        assert process.poll() is None and time.monotonic() < deadline, "compare ended before its folder appeared"
        time.sleep(0.05)
    try:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()  # a no-op once it has ended
    assert (process.returncode, err.strip().splitlines()[-1]) == (143, "maxent-gan: terminated")
    assert list(tmp_path.iterdir()) == []
