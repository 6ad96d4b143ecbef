"""The command line's promise on the inputs and faults users meet: one line on stderr naming the input
and what to fix, exit 2 (1 for a run that failed), never a traceback or a signal, and nothing lost."""

import errno
import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import jax
import numpy as np
import pytest
from maxent_gan.inference.estimators import log_z_importance
from maxent_gan.models.files import MAX_ARRAY_BYTES_ENV, from_imitation_trajectories, load_problem_file
from maxent_gan.models.gridworld import gridworld
from maxent_gan.models.tabular import sample_trajectories

from tests.test_bad_input_files import run_cli as cli

HORIZON = 5


@pytest.fixture(autouse=True)
def _keep_x64():
    yield  # `maxent-gan train` runs in float32; the suite in float64
    jax.config.update("jax_enable_x64", True)


def arrays(**changes) -> dict:
    """The keys of a good tabular file (a 3x3 slippery grid, dense transitions with zeros), with ``changes``."""
    mdp = gridworld(3, slip=0.1, horizon=HORIZON)
    costs = np.asarray(mdp.features) @ np.array([-1.0, 2.0, 1.0, 0.3])
    states, actions = sample_trajectories(jax.random.key(0), costs, mdp.transitions, mdp.initial, HORIZON, 12)
    good = {"features": np.asarray(mdp.features), "transitions": np.asarray(mdp.transitions.dense()),
            "initial": np.asarray(mdp.initial), "horizon": np.array(HORIZON), "states": np.asarray(states),
            "actions": np.asarray(actions)}
    good.update(changes)
    return {key: value for key, value in good.items() if value is not None}


def write(path: Path, **changes) -> Path:
    np.savez(path, **arrays(**changes))
    return path


def one_line(code: int, err: str, *, expected_code: int = 2) -> str:
    lines = err.strip().splitlines()
    assert code == expected_code and len(lines) == 1 and lines[0].startswith("maxent-gan: error: "), err
    return lines[0]


def _zip_damaged(path: Path) -> None:
    data = bytearray(path.read_bytes())
    member = zipfile.ZipFile(path).getinfo("features.npy")
    data[member.header_offset + 30 + len(member.filename) + 200] ^= 0xFF  # a byte inside the stored array
    path.write_bytes(bytes(data))


def _declares_40_gb(path: Path) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (5_000_000_000,)})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("huge.npy", header.getvalue() + b"\0" * 64)
    # the archive's own `features` replaced by the huge one
    rewritten = path.with_suffix(".tmp.npz")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(rewritten, "w") as target:
        for item in source.namelist():
            if item == "features.npy":
                continue
            target.writestr("features.npy" if item == "huge.npy" else item, source.read(item))
    os.replace(rewritten, path)


FILES = {
    "empty": (lambda p: p.write_bytes(b""), "is an empty file"),
    "npy-renamed": (lambda p: np.save(open(p, "wb"), np.zeros(3)), "a single .npy array"),
    "text": (lambda p: p.write_text("states,actions\n1,2\n"), "is a text file"),
    "pickle": (lambda p: p.write_bytes(b"\x80\x04\x95" + b"\0" * 40), "pickled Python data"),
    "truncated-zip": (lambda p: (write(p), p.write_bytes(p.read_bytes()[:300])), "damaged .npz|damaged|truncated"),
    "crc-damaged": (lambda p: (write(p), _zip_damaged(p)), "features: in .*, is damaged"),
    "header-40GB": (lambda p: (write(p), _declares_40_gb(p)), "features: in .*, declares shape \\(5000000000,\\) .* "
                                                               f"over the limit .*; set {MAX_ARRAY_BYTES_ENV}"),
    "object-array": (lambda p: np.savez(p, **arrays(features=np.array([{"a": 1}], dtype=object))),
                     "features: in .*, holds Python objects"),
    "zero-demos": (lambda p: write(p, states=np.zeros((0, HORIZON + 1), int), actions=np.zeros((0, HORIZON), int)),
                   "states, actions: 0 demonstration\\(s\\); expected at least 4"),
    "horizon-2^62": (lambda p: write(p, horizon=np.array(2**62)), "horizon: 4611686018427387904 does not match"),
    "no-features": (lambda p: write(p, features=np.zeros((9, 5, 0))), "features: expected at least one state and one"),
    "huge-features": (lambda p: write(p, features=np.full((9, 5, 4), 1e308)), "features: values up to 1e\\+308"),
    "feature-names": (lambda p: write(p, feature_names=np.array(["a", "b"])), "feature_names: expected 4 names"),
}


@pytest.mark.parametrize("case", list(FILES))
@pytest.mark.parametrize("command", ["train", "logz", "compare"])
def test_a_bad_problem_file_is_one_line_naming_it(tmp_path, capsys, case, command):
    spoil, message = FILES[case]
    path = tmp_path / "mine.npz"
    spoil(path)
    out = tmp_path / "out"
    args = [command, "--problem", str(path)] + ([] if command == "logz" else ["--out", str(out)])
    line = one_line(*cli(capsys, *args))
    assert pytest.importorskip("re").search(message, line), line
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["mine.npz"]


def test_the_size_limit_is_the_users_to_raise(tmp_path, monkeypatch):
    path = write(tmp_path / "mine.npz")
    monkeypatch.setenv(MAX_ARRAY_BYTES_ENV, "64")
    with pytest.raises(ValueError, match=f"over the limit of 64 bytes; set {MAX_ARRAY_BYTES_ENV}"):
        load_problem_file(path)
    monkeypatch.setenv(MAX_ARRAY_BYTES_ENV, str(10**9))
    assert load_problem_file(path).name == "mine"


def test_trajectories_without_acts_are_named():
    with pytest.raises(ValueError, match="^trajectories: trajectory 1 has no 'acts'"):
        from_imitation_trajectories([{"obs": np.arange(3), "acts": np.arange(2)}, {"obs": np.arange(3)}])


def test_complex_costs_are_refused_not_cast():
    with pytest.raises(ValueError, match="^costs: expected real values, got dtype complex"):
        log_z_importance(np.array([1.0 + 2.0j, 0.5]), np.zeros(2))


@pytest.mark.parametrize(("args", "message"), [
    (["compare", "--chains", "200000"], "chains: expected at most 256, got 200000"),
    (["logz", "--scale", "1e300"], "scale: expected at most 1e\\+06"),
])
def test_sizes_that_would_exhaust_the_machine_are_refused_first(capsys, args, message):
    assert pytest.importorskip("re").search(message, one_line(*cli(capsys, *args)))


def test_force_refuses_the_current_folder_and_its_parents(tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.tex").write_text("precious")
    monkeypatch.chdir(work)
    for out in (".", "..", str(work)):
        line = one_line(*cli(capsys, "identities", "--out", out, "--force"))
        assert "is the current folder or one above it" in line
    assert (work / "thesis.tex").read_text() == "precious"


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    import maxent_gan.inference.driver as driver

    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(driver, "write_atomic", full)  # the first checkpoint
    path = write(tmp_path / "mine.npz")
    code, err = cli(capsys, "train", "--problem", str(path), "--method", "exact", "--steps", "4",
                    "--checkpoint-every", "2", "--out", str(tmp_path / "out"))
    line = one_line(code, err, expected_code=1)
    assert "No space left on device" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.npz"]


def _cli_process(*args, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "maxent_gan.inference.app.cli", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, process, seconds=120):
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before the moment to stop it"
        time.sleep(0.05)


def test_sigint_at_start_up_is_one_line(tmp_path):
    process = _cli_process("logz", "--problem", "gaussian", cwd=tmp_path)
    time.sleep(1.0)  # past interpreter start-up, inside the libraries' imports (about 3 s)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and err.strip().splitlines() == ["maxent-gan: interrupted"], err


def test_a_train_killed_outright_resumes_from_its_staging_folder(tmp_path):
    path = write(tmp_path / "mine.npz")
    run = ["train", "--problem", str(path), "--method", "gcl", "--steps", "400", "--checkpoint-every", "20",
           "--eval-every", "400", "--out", "out", "--json"]
    process = _cli_process(*run, cwd=tmp_path)
    try:
        _wait_for(lambda: any(tmp_path.glob(".out.*.tmp/checkpoints/checkpoint.json")), process)
        process.send_signal(signal.SIGKILL)  # the OOM killer, a scheduler past its grace period
        process.wait(timeout=60)
    finally:
        process.kill()
    assert not (tmp_path / "out").exists()
    resumed = subprocess.run([sys.executable, "-m", "maxent_gan.inference.app.cli", *run, "--resume"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    unbroken = subprocess.run([sys.executable, "-m", "maxent_gan.inference.app.cli", *run[:-2], "whole", "--json"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
    import json

    assert json.loads(resumed.stdout)["theta"] == json.loads(unbroken.stdout)["theta"]  # to every digit
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.npz", "out", "whole"]


@pytest.mark.parametrize("attempt", [0, 1])
def test_sigint_during_compare_is_one_line_and_no_crash(tmp_path, attempt):
    """Ctrl-C mid-run: "interrupted", exit 130, the run's folder removed; no segmentation fault after it
    (3 of 6 such runs once crashed in the interpreter's teardown)."""
    process = _cli_process("compare", "--problem", "gaussian", "--demos", "10", "--samples", "20", "--chains", "2",
                           "--out", "out", cwd=tmp_path)
    try:
        _wait_for(lambda: any(p.name.endswith(".tmp") for p in tmp_path.iterdir()), process)
        time.sleep(0.5 * attempt)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130 and err.strip().splitlines()[-1] == "maxent-gan: interrupted", err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []


def test_a_second_run_loads_its_programs_from_the_compilation_cache(tmp_path):
    cache = tmp_path / "cache"
    # every program cached, however fast it compiled (the default keeps only those over 0.1 s, and a program
    # near that line could be kept by one run and not the other on a loaded machine)
    # (and not the suite's own cache, which tests/conftest.py hands every subprocess through JAX's variable)
    env = {**{k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"},
           "MAXENT_GAN_COMPILATION_CACHE": str(cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    command = [sys.executable, "-m", "maxent_gan.inference.app.cli", "logz", "--problem", "gaussian", "--samples",
               "500", "--json"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    stored = sorted(p.name for p in cache.rglob("*") if p.is_file())
    assert stored  # the compiled programs were written
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    import json

    numbers = [{k: v for k, v in json.loads(run.stdout).items() if k != "seconds"} for run in (first, second)]
    assert second.returncode == 0 and numbers[0] == numbers[1]  # the same numbers from loaded programs
    assert sorted(p.name for p in cache.rglob("*") if p.is_file()) == stored  # nothing compiled anew


def test_the_compilation_cache_is_bounded_once_by_deleting_its_oldest_programs(tmp_path):
    from maxent_gan.inference.app.cli import prune_compilation_cache

    for i in range(10):  # ten programs of 100 bytes, program 0 the oldest
        path = tmp_path / f"program{i}-cache"
        path.write_bytes(b"x" * 100)
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    (tmp_path / ".lockfile").write_bytes(b"")
    assert prune_compilation_cache(tmp_path, max_bytes=1000) == 0  # at the bound: nothing goes
    assert prune_compilation_cache(tmp_path, max_bytes=800) == 4  # down to 3/4 of the bound, oldest first
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lockfile"] + [f"program{i}-cache" for i in range(4, 10)]
    assert prune_compilation_cache(tmp_path / "absent") == 0
