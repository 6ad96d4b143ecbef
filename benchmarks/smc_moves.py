"""The annealed estimator's moves on the standard targets: per-particle step jitter, and more
temperatures and moves, over many seeds (issue 13, item 3; the evidence behind ``step_jitter``).

Per target, ``inference.annealed.log_z_annealed`` from the broad Gaussian of
``benchmarks/standard_targets.py`` with 4096 particles, in four settings: the default bridge
(target ESS 0.5, 10 HMC moves per temperature) and a longer one (0.9, 20 moves), each with one
step for all particles (``step_jitter=0``) and with the default jitter. One run per seed, after
one compile per setting (the bridge's program is reused across seeds); float64, CPU.

    python benchmarks/smc_moves.py [--seeds 8] [--targets funnel10 gmm40 manywell32]   # -> results/smc_moves.{md,json}
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.annealed import STEP_JITTER, log_z_annealed  # noqa: E402
from inference.diagnostics import UnreliableEstimateWarning  # noqa: E402
from inference.io import write_atomic, write_json  # noqa: E402
from inference.proposals import Gaussian  # noqa: E402
from models.problems import make_problem  # noqa: E402

BROAD = {"gmm40": 25.0, "funnel10": 3.0, "manywell32": 2.0}  # the scales of standard_targets.py
SETTINGS = {"ess 0.5, 10 moves": dict(target_ess=0.5, num_mcmc_steps=10),
            "ess 0.9, 20 moves": dict(target_ess=0.9, num_mcmc_steps=20)}
PARTICLES = 4096


def run(seeds, targets):
    rows = []
    for name in targets:
        target = make_problem(name).target
        broad = Gaussian.isotropic(target.event_shape[0], BROAD[name])
        for setting, options in SETTINGS.items():
            for jitter in (0.0, STEP_JITTER):
                log_z_annealed(jax.random.key(10_000), target, broad, num_particles=PARTICLES, step_jitter=jitter,
                               **options)  # compile once, outside the timings
                for seed in range(seeds):
                    start = time.perf_counter()
                    estimate = log_z_annealed(jax.random.key(seed), target, broad, num_particles=PARTICLES,
                                              step_jitter=jitter, **options)
                    error = float(estimate.log_z - target.log_normalizer)
                    rows.append(dict(target=name, setting=setting, step_jitter=jitter, seed=seed, error=error,
                                     seconds=time.perf_counter() - start, temperatures=estimate.num_temperatures,
                                     reliable=estimate.reliable))
                    print(rows[-1], flush=True)
    return rows


def report(rows, seeds, out: Path, command: str):
    lines = ["# The annealed estimator's moves: step jitter and bridge length", "",
             f"`{command}`: {PARTICLES} particles from the broad Gaussian, {seeds} seeds per cell, after one compile "
             "per setting; one run, float64, 2 CPU cores. Per cell: median |error| in nats [max], mean error, median "
             "seconds per run, median temperatures, and how many runs the bridge's own rule called reliable.", "",
             "| target | setting | step_jitter | median abs error [max] | mean error | seconds | temperatures | reliable |",
             "|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(row["target"] for row in rows):
        for setting in SETTINGS:
            for jitter in (0.0, STEP_JITTER):
                sub = [row for row in rows if row["target"] == name and row["setting"] == setting
                       and row["step_jitter"] == jitter]
                if not sub:
                    continue
                errors = np.array([row["error"] for row in sub])
                lines.append(f"| {name} | {setting} | {jitter:.2f} | {np.median(np.abs(errors)):.3f} "
                             f"[{np.max(np.abs(errors)):.3f}] | {errors.mean():+.3f} | "
                             f"{np.median([row['seconds'] for row in sub]):.2f} | "
                             f"{np.median([row['temperatures'] for row in sub]):.0f} | "
                             f"{sum(bool(row['reliable']) for row in sub)}/{len(sub)} |")
    write_atomic(out / "smc_moves.md", "\n".join(lines) + "\n")
    write_json(out / "smc_moves.json", rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--targets", nargs="+", choices=list(BROAD), default=list(BROAD))
    args = parser.parse_args()
    warnings.simplefilter("ignore", UnreliableEstimateWarning)  # the rule's verdict is a column instead
    rows = run(args.seeds, args.targets)
    command = f"python benchmarks/smc_moves.py --seeds {args.seeds}"
    if args.targets != list(BROAD):
        command += " --targets " + " ".join(args.targets)
    report(rows, args.seeds, Path(__file__).parent / "results", command)


if __name__ == "__main__":
    main()
