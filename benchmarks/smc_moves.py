"""The annealed estimator's moves on the standard targets: per-particle step jitter, and more
temperatures and moves, over many seeds (the evidence behind ``step_jitter``).

Per target, ``maxent_gan.inference.annealed.log_z_annealed`` from the broad Gaussian of
``benchmarks/standard_targets.py`` with 4096 particles, in four settings: the default bridge
(target ESS 0.5, 10 HMC moves per temperature) and a longer one (0.9, 20 moves), each with one
step for all particles (``step_jitter=0``) and with the default jitter. The reference row is plain
blackjax as ``../shared/NOTES.md`` runs it (the issue's baseline): the same broad start, identity
mass matrix, a fixed step of 0.2, 10 leapfrog steps, 10 moves, target ESS 0.5. One run per seed,
after one compile per setting (the program is reused across seeds); float64, CPU.

    python benchmarks/smc_moves.py [--seeds 8] [--targets funnel10 gmm40 manywell32] [--resume]
    # -> results/smc_moves.{md,json}; --resume keeps the cells of an earlier run's json
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import blackjax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.smc import resampling

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maxent_gan.inference.annealed import STEP_JITTER, log_z_annealed  # noqa: E402
from maxent_gan.inference.diagnostics import UnreliableEstimateWarning  # noqa: E402
from maxent_gan.inference.io import write_atomic, write_json  # noqa: E402
from maxent_gan.inference.proposals import Gaussian  # noqa: E402
from maxent_gan.models.problems import make_problem  # noqa: E402

BROAD = {"gmm40": 25.0, "funnel10": 3.0, "manywell32": 2.0}  # the scales of standard_targets.py
SETTINGS = {"ess 0.5, 10 moves": dict(target_ess=0.5, num_mcmc_steps=10),
            "ess 0.9, 20 moves": dict(target_ess=0.9, num_mcmc_steps=20)}
PARTICLES = 4096
REFERENCE = "plain blackjax (step 0.2, identity mass)"


@eqx.filter_jit
def _plain_blackjax(key, target, broad, num_particles):
    """NOTES.md's recipe: blackjax's adaptive tempered SMC, HMC moves with fixed parameters."""
    dim = target.event_shape[0]
    key_start, key_bridge = jax.random.split(key)
    particles = broad.sample(key_start, num_particles)
    params = dict(step_size=jnp.full((1,), 0.2), inverse_mass_matrix=jnp.eye(dim)[None],
                  num_integration_steps=jnp.full((1,), 10))

    def log_prior(x):
        return broad.log_prob(x[None])[0]

    smc = blackjax.adaptive_tempered_smc(log_prior, lambda x: target.unnormalized_log_prob(x[None])[0] - log_prior(x),
                                         blackjax.hmc.build_kernel(), blackjax.hmc.init, params, resampling.systematic,
                                         0.5, num_mcmc_steps=10)

    def body(carry):
        i, state, log_z = carry
        state, info = smc.step(jax.random.fold_in(key_bridge, i), state)
        return i + 1, state, log_z + info.log_likelihood_increment

    _, state, log_z = jax.lax.while_loop(lambda carry: (carry[1].tempering_param < 1) & (carry[0] < 500), body,
                                         (0, smc.init(particles), jnp.zeros(())))
    return log_z, state.tempering_param


def run(seeds, targets, rows):
    done = {(row["target"], row["setting"], row["step_jitter"]) for row in rows}
    for name in targets:
        target = make_problem(name).target
        broad = Gaussian.isotropic(target.event_shape[0], BROAD[name])
        if (name, REFERENCE, None) not in done:
            _plain_blackjax(jax.random.key(10_000), target, broad, PARTICLES)
            for seed in range(seeds):
                start = time.perf_counter()
                log_z, reached = _plain_blackjax(jax.random.key(seed), target, broad, PARTICLES)
                rows.append(dict(target=name, setting=REFERENCE, step_jitter=None, seed=seed,
                                 error=float(log_z - target.log_normalizer), seconds=time.perf_counter() - start,
                                 temperatures=None, reliable=None, reached_one=bool(reached >= 1)))
                print(rows[-1], flush=True)
        for setting, options in SETTINGS.items():
            for jitter in (0.0, STEP_JITTER):
                if (name, setting, jitter) in done:
                    continue
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
        cells = [(REFERENCE, None)] + [(setting, jitter) for setting in SETTINGS for jitter in (0.0, STEP_JITTER)]
        for setting, jitter in cells:
            sub = [row for row in rows if row["target"] == name and row["setting"] == setting
                   and row["step_jitter"] == jitter]
            if not sub:
                continue
            errors = np.array([row["error"] for row in sub])
            temperatures = [row["temperatures"] for row in sub if row["temperatures"] is not None]
            reliable = "–" if setting == REFERENCE else f"{sum(bool(row['reliable']) for row in sub)}/{len(sub)}"
            lines.append(f"| {name} | {setting} | {'–' if jitter is None else f'{jitter:.2f}'} | "
                         f"{np.median(np.abs(errors)):.3f} [{np.max(np.abs(errors)):.3f}] | {errors.mean():+.3f} | "
                         f"{np.median([row['seconds'] for row in sub]):.2f} | "
                         f"{np.median(temperatures) if temperatures else '–'} | {reliable} |")
    write_atomic(out / "smc_moves.md", "\n".join(lines) + "\n")
    write_json(out / "smc_moves.json", rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--targets", nargs="+", choices=list(BROAD), default=list(BROAD))
    parser.add_argument("--resume", action="store_true", help="keep the cells of an earlier run's json")
    args = parser.parse_args()
    warnings.simplefilter("ignore", UnreliableEstimateWarning)  # the rule's verdict is a column instead
    json_path = Path(__file__).parent / "results" / "smc_moves.json"
    rows = json.loads(json_path.read_text()) if args.resume and json_path.exists() else []
    rows = run(args.seeds, args.targets, rows)
    command = f"python benchmarks/smc_moves.py --seeds {args.seeds}"
    if args.targets != list(BROAD):
        command += " --targets " + " ".join(args.targets)
    report(rows, args.seeds, Path(__file__).parent / "results", command)


if __name__ == "__main__":
    main()
