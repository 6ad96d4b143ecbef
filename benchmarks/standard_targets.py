"""log Z error against wall-clock on the standard sampler targets, fit included.

Rows, per target and seed:

* ``is-broad``: importance sampling with the broad Gaussian N(0, s² I), 16 000 draws;
* ``smc-N``: adaptive tempered SMC (blackjax, HMC moves; ``maxent_gan.inference.annealed``) from the same
  broad Gaussian with N particles: the tempered-SMC baseline;
* ``is-flow``: ``maxent-gan logz --proposal flow``'s recipe (a spline coupling flow fitted by
  annealed reverse KL from β = 0.05 to the energy alone, clipped Adam on a cosine schedule),
  ``FIT_STEPS`` steps, then 16 000 importance draws; ``fit_stopped`` says whether the fit's guard
  stopped it early;
* ``flow+smc-N``: the same fitted flow as the start of the SMC bridge, N particles.

``seconds`` is wall-clock including the fit and compilation (the bridge's program is compiled
once per target, start and particle count, and reused by later seeds; the first seed pays it);
``reliable`` is the estimator's own rule (importance: k-hat, ESS and the forward check over exact
draws; annealed: the bridge's rule). One run, float64, CPU
unless the device column says otherwise.

    python benchmarks/standard_targets.py [--seeds 3] [--quick] [--targets gmm40 ...] [--flow-seeds 1]
    # -> results/standard_targets.{md,json,png}
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maxent_gan.inference.annealed import log_z_annealed  # noqa: E402
from maxent_gan.inference.app.recipes import make_proposal  # noqa: E402
from maxent_gan.inference.diagnostics import UnreliableEstimateWarning  # noqa: E402
from maxent_gan.inference.estimators import log_z_importance  # noqa: E402
from maxent_gan.inference.io import save_figure, write_atomic, write_json  # noqa: E402
from maxent_gan.inference.proposals import Gaussian  # noqa: E402
from maxent_gan.models.problems import make_problem  # noqa: E402

TARGETS = {"gmm40": 25.0, "funnel10": 3.0, "manywell32": 2.0, "8gaussians": 2.0, "rings": 2.0}  # broad scale
IS_DRAWS = 16_000
FIT_STEPS = 2000
FLOW_SMC_MAX = 4096  # flow+smc rows up to this many particles (HMC through the flow: 70 s at 4096 on funnel10)


def _row(target_name, seed, method, log_z, exact, seconds, reliable, **extra):
    row = {"target": target_name, "seed": seed, "method": method, "log_z": log_z, "error": log_z - exact,
           "seconds": seconds, "reliable": reliable, "device": jax.devices()[0].platform, **extra}
    print(json.dumps(row), flush=True)
    return row


def _importance(key, target, proposal, data):
    x, log_q = proposal.sample_and_log_prob(key, IS_DRAWS)
    estimate = log_z_importance(-target.unnormalized_log_prob(x), log_q, cost_data=-target.unnormalized_log_prob(data),
                                log_q_data=proposal.log_prob(data))
    return float(estimate.log_z), estimate.reliable


def run(seeds, particles, fit_steps, targets=tuple(TARGETS), flow_seeds=None):
    rows = []
    for name in targets:
        scale = TARGETS[name]
        target = make_problem(name).target
        exact = float(target.log_normalizer)
        dim = target.event_shape[0]
        broad = Gaussian.isotropic(dim, scale)
        for seed in range(seeds):
            key = jax.random.key(seed)
            data = target.sample(jax.random.fold_in(key, 99), (2000,))
            start = time.perf_counter()
            log_z, reliable = _importance(key, target, broad, data)
            rows.append(_row(name, seed, "is-broad", log_z, exact, time.perf_counter() - start, reliable))
            for n in particles:
                start = time.perf_counter()
                estimate = log_z_annealed(key, target, broad, num_particles=n, data=data)
                rows.append(_row(name, seed, f"smc-{n}", float(estimate.log_z), exact, time.perf_counter() - start,
                                 estimate.reliable, temperatures=estimate.num_temperatures))
            if flow_seeds is not None and seed >= flow_seeds:
                continue
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:  # the fit's guard: recorded in the row
                warnings.simplefilter("always")
                flow = make_proposal("flow", jax.random.fold_in(key, 1), target, scale=scale, steps=fit_steps,
                                     progress=False)
            fit_stopped = any("non-finite" in str(w.message) or "became" in str(w.message) for w in caught)
            fit_seconds = time.perf_counter() - start
            start = time.perf_counter()
            log_z, reliable = _importance(key, target, flow, data)
            rows.append(_row(name, seed, "is-flow", log_z, exact, fit_seconds + time.perf_counter() - start, reliable,
                             fit_stopped=fit_stopped))
            for n in (n for n in particles if n <= FLOW_SMC_MAX):
                start = time.perf_counter()
                estimate = log_z_annealed(key, target, flow, num_particles=n, data=data)
                rows.append(_row(name, seed, f"flow+smc-{n}", float(estimate.log_z), exact,
                                 fit_seconds + time.perf_counter() - start, estimate.reliable,
                                 temperatures=estimate.num_temperatures))
    return rows


def report(rows, out: Path, command: str):
    methods = list(dict.fromkeys(row["method"] for row in rows))
    lines = ["# Standard targets: log Z error against wall-clock, fit included", "",
             f"`{command}`. Per cell: median |error| in nats over seeds (max in brackets), median seconds, "
             "and how many seeds the estimator's own rule called reliable.", "",
             "| target | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    targets = list(dict.fromkeys(row["target"] for row in rows))
    figure, axes = plt.subplots(1, len(targets), figsize=(4 * len(targets), 3.4))
    for ax, target in zip(np.atleast_1d(axes), targets, strict=True):
        cells = []
        for method in methods:
            sub = [row for row in rows if row["target"] == target and row["method"] == method]
            if not sub:
                cells.append("")
                continue
            errors = np.abs([row["error"] for row in sub])
            seconds = np.median([row["seconds"] for row in sub])
            reliable = sum(bool(row["reliable"]) for row in sub)
            cells.append(f"{np.nanmedian(errors):.3f} [{np.nanmax(errors):.3f}], {seconds:.1f} s, {reliable}/{len(sub)}")
            ax.scatter([row["seconds"] for row in sub], np.maximum(errors, 1e-4), label=method, s=18)
        lines.append(f"| {target} | " + " | ".join(cells) + " |")
        ax.set(xscale="log", yscale="log", title=target, xlabel="seconds (fit included)", ylabel="|log Z error| (nats)")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    figure.tight_layout()
    write_atomic(out / "standard_targets.md", "\n".join(lines) + "\n")
    write_json(out / "standard_targets.json", rows)
    save_figure(figure, out / "standard_targets.png")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one seed, 1024 particles, 200 fit steps")
    parser.add_argument("--targets", nargs="+", choices=list(TARGETS), default=list(TARGETS))
    parser.add_argument("--flow-seeds", type=int, default=None, help="the flow rows on the first this many seeds only")
    parser.add_argument("--particles", type=int, nargs="+", default=[1024, 4096, 16384])
    args = parser.parse_args()
    warnings.simplefilter("ignore", UnreliableEstimateWarning)  # the rule's verdict is a column instead
    seeds, particles, steps = (1, (1024,), 200) if args.quick else (args.seeds, tuple(args.particles), FIT_STEPS)
    rows = run(seeds, particles, steps, args.targets, args.flow_seeds)
    command = "python benchmarks/standard_targets.py" + (" --quick" if args.quick else f" --seeds {args.seeds}")
    if args.flow_seeds is not None:
        command += f" --flow-seeds {args.flow_seeds}"
    if tuple(args.particles) != (1024, 4096, 16384):
        command += " --particles " + " ".join(map(str, args.particles))
    if args.targets != list(TARGETS):
        command += " --targets " + " ".join(args.targets)
    report(rows, Path(__file__).parent / "results", command)


if __name__ == "__main__":
    main()
