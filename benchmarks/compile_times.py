"""Compile time against run time: the exact tabular recursions by size, and the command line cold and warm.

1. **The tabular recursions** (exact log Z and its gradient, float64) at S = 28 (seals' CliffWorld as a
   user exports it: dense transitions full of zeros, 2 successors), 64 (an 8 x 8 gridworld, deterministic
   and with slips: 6 successors), 1024 (32 x 32 with slips) and 10^6 (1000 x 1000), each timed as trace +
   lowering, XLA compile, and a warm call, in the form each size gets (``UNROLL_MIN_STATES``,
   ``UNROLL_LIMIT`` in ``maxent_gan.models.tabular``) and in the other.
2. **The command line**, each command run twice in a fresh process against one fresh persistent compilation
   cache (cold, then warm): total wall time, the time before it starts computing (its first compile or
   cache load: everything before is imports, parsing and the problem's set-up) and its compiles.

    python benchmarks/compile_times.py     # writes benchmarks/results/compile_times.{md,json}

Needs the formats extra (seals) for CliffWorld.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from maxent_gan.inference.io import write_atomic  # noqa: E402
from maxent_gan.models import tabular  # noqa: E402
from maxent_gan.models.gridworld import gridworld  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

# what runs in each command-line process: JAX's compile events counted from inside, the command as the
# console script runs it
PROBE = r"""
import time
T0 = time.time()
import json, sys
import jax.monitoring as monitoring
seen = {"first": None, "compiles": 0, "compile_s": 0.0, "hits": 0}
def on_duration(event, duration, **kwargs):
    if event in ("/jax/core/compile/backend_compile_duration", "/jax/compilation_cache/cache_retrieval_time_sec"):
        if seen["first"] is None:
            seen["first"] = time.time() - T0 - duration
    if event == "/jax/core/compile/backend_compile_duration":
        seen["compiles"] += 1
        seen["compile_s"] += duration
def on_event(event, **kwargs):
    if event == "/jax/compilation_cache/cache_hits":
        seen["hits"] += 1
monitoring.register_event_duration_secs_listener(on_duration)
monitoring.register_event_listener(on_event)
from maxent_gan.inference.app.cli import main
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    json.dump({"code": code, "wall": time.time() - T0, **seen}, f)
"""


def cliffworld() -> dict:
    from maxent_gan.models.files import from_seals_env
    from seals.diagnostics.cliff_world import CliffWorldEnv

    env = CliffWorldEnv(width=7, height=4, horizon=8, use_xy_obs=False)
    return from_seals_env(env) | {"reward": np.asarray(env.reward_matrix, dtype=float)}


def tabular_cases() -> dict:
    cliff = cliffworld()
    cases = {"CliffWorld (dense file)": (cliff["transitions"], cliff["initial"], cliff["horizon"])}
    for label, size, horizon, slip in (("gridworld 8x8", 8, 20, 0.0), ("gridworld 8x8, slips", 8, 20, 0.1),
                                       ("gridworld 32x32, slips", 32, 50, 0.1), ("gridworld 1000x1000", 1000, 100, 0.0)):
        mdp = gridworld(size, horizon=horizon, slip=slip)
        cases[label] = (mdp.transitions, mdp.initial, horizon)
    return cases


def time_recursion(transitions, initial, horizon, *, unrolled: bool) -> dict:
    transitions = tabular.as_transitions(transitions)
    initial = jnp.asarray(initial, jnp.float64)
    costs = jnp.ones(transitions.successors.shape[:2])
    limits = (tabular.UNROLL_LIMIT, tabular.UNROLL_MIN_STATES)
    tabular.UNROLL_LIMIT, tabular.UNROLL_MIN_STATES = (10**9, 0) if unrolled else (0, 10**9)
    try:
        jax.clear_caches()
        function = jax.jit(jax.value_and_grad(lambda c: tabular._log_partition(c, transitions, initial, horizon)))
        start = time.perf_counter()
        lowered = function.lower(costs)
        traced = time.perf_counter()
        compiled = lowered.compile()
        built = time.perf_counter()
        jax.block_until_ready(compiled(costs))
        runs = []
        for _ in range(3):
            begin = time.perf_counter()
            jax.block_until_ready(compiled(costs))
            runs.append(time.perf_counter() - begin)
    finally:
        tabular.UNROLL_LIMIT, tabular.UNROLL_MIN_STATES = limits
    return {"trace_lower_s": traced - start, "compile_s": built - traced, "run_s": float(np.median(runs))}


def run_cli(args: list[str], cache: Path, workdir: Path) -> dict:
    out = workdir / f"probe-{time.monotonic_ns()}.json"
    env = {**os.environ, "MAXENT_GAN_COMPILATION_CACHE": str(cache)}
    env.pop("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", None)
    completed = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], cwd=workdir, env=env,
                               capture_output=True, text=True)
    if completed.returncode != 0 or not out.exists():
        raise RuntimeError(f"{' '.join(args)} failed:\n{completed.stderr[-2000:]}")
    return json.loads(out.read_text())


def cli_rows(workdir: Path) -> list[dict]:
    from maxent_gan.models.tabular import sample_trajectories

    cliff = cliffworld()
    costs = -np.broadcast_to(cliff["reward"][:, None], cliff["transitions"].shape[:2])
    states, actions = sample_trajectories(jax.random.key(0), costs, cliff["transitions"], cliff["initial"],
                                          cliff["horizon"], 100)
    np.savez(workdir / "cliff.npz", features=cliff["features"], transitions=cliff["transitions"],
             initial=cliff["initial"], horizon=cliff["horizon"], states=np.asarray(states), actions=np.asarray(actions))
    commands = {
        "train --problem cliff.npz --method exact": ["train", "--problem", "cliff.npz", "--method", "exact"],
        "train --problem gridworld --method gcl": ["train", "--problem", "gridworld", "--method", "gcl"],
        "logz --problem rings --proposal gaussian": ["logz", "--problem", "rings", "--proposal", "gaussian", "--json"],
    }
    rows = []
    for label, args in commands.items():
        cache = workdir / f"cache-{len(rows)}"
        for run in ("cold", "warm"):
            extra = ["--out", str(workdir / f"out-{len(rows)}")] if args[0] == "train" else []
            result = run_cli(args + extra, cache, workdir)
            rows.append({"command": label, "cache": run, **result})
            print(rows[-1], flush=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    recursion = []
    for label, (transitions, initial, horizon) in tabular_cases().items():
        sparse = tabular.as_transitions(transitions)
        default = tabular._unrolled(sparse)
        for unrolled in (default, not default):
            row = {"problem": label, "states": sparse.num_states, "slots": sparse.num_actions * sparse.successors.shape[2],
                   "horizon": horizon, "form": "unrolled" if unrolled else "(S, A, K)", "default": unrolled == default,
                   **time_recursion(transitions, initial, horizon, unrolled=unrolled)}
            recursion.append(row)
            print(row, flush=True)
    with tempfile.TemporaryDirectory() as folder:
        cli = cli_rows(Path(folder))
    lines = ["# Compile time against run time (one run, 2 CPU cores)", "",
             "`python benchmarks/compile_times.py`. Exact log Z + gradient, float64: trace + lowering, XLA compile, and "
             "the median of 3 warm calls; the form each size gets by default first, the other below it.", "",
             "| problem | S | slots (A·K) | T | form | trace + lower (s) | compile (s) | warm call (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for row in recursion:
        form = row["form"] + ("" if row["default"] else " (not chosen)")
        lines.append(f"| {row['problem']} | {row['states']} | {row['slots']} | {row['horizon']} | {form} | "
                     f"{row['trace_lower_s']:.2f} | {row['compile_s']:.2f} | {row['run_s']:.4f} |")
    lines += ["", "The command line, each command twice in fresh processes sharing one fresh persistent compilation "
              "cache (its defaults: every program kept). *Starts computing*: the time to its first compile or cache "
              "load, after the imports, the parsing and the problem's set-up.", "",
              "| command | cache | wall (s) | starts computing (s) | compiled | loaded from the cache | compile (s) |",
              "|---|---|---|---|---|---|---|"]
    for row in cli:
        lines.append(f"| `{row['command']}` | {row['cache']} | {row['wall']:.1f} | {row['first']:.1f} | "
                     f"{row['compiles'] - row['hits']} | {row['hits']} | {row['compile_s']:.1f} |")
    RESULTS.mkdir(exist_ok=True)
    write_atomic(RESULTS / "compile_times.md", "\n".join(lines) + "\n")
    write_atomic(RESULTS / "compile_times.json", json.dumps({"recursion": recursion, "cli": cli}, indent=1) + "\n")


if __name__ == "__main__":
    main()
