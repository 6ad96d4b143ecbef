"""The ``flow`` proposal's settings by time to accuracy: draws per step, flow size, annealing and steps.

Run: ``python benchmarks/flow_settings.py [--targets rings,8gaussians,funnel10] [--seed 0] [--only SETTINGS]``;
resumable (each
finished fit is appended to ``benchmarks/results/flow_settings.json`` and skipped by the next run), then the table
``results/flow_settings.md``.

Each setting fits the flow by reverse KL as ``logz --proposal flow`` does (``proposal_optimizer`` at the point
rate with cosine decay to zero over the steps, the base and splines at the problem's broad scale), then
estimates log Z by importance sampling with 10 000 draws and the forward check on 2 000 exact draws. Per
fit: |error| against the exact log Z, the estimate's own verdict, fit steps per second (compiled, the
second of two fits of the same program), and seconds (fit + estimate, compile excluded). Seconds to 0.05
nats: the fastest steps setting of a configuration whose estimate is within 0.05 nats and called reliable.
One seed, float64, 2 CPU cores.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maxent_gan.inference.estimators import log_z_importance  # noqa: E402
from maxent_gan.inference.proposals.flow import Flow  # noqa: E402
from maxent_gan.inference.sampler import fit_sampler, proposal_optimizer  # noqa: E402
from maxent_gan.inference.spaces import POINT_RATES, flow_architecture  # noqa: E402
from maxent_gan.models.problems import make_problem  # noqa: E402

SIZES = {"8x64": dict(layers=8, width=64, knots=8), "4x32": dict(layers=4, width=32, knots=6)}
DRAWS = (128, 512)
ANNEAL = (0.05, None)
STEPS = (500, 1000, 2000, 4000)
CURRENT = ("8x64", 512, 0.05, 4000)  # the flow recipe's settings before this benchmark
RESULTS = Path(__file__).resolve().parent / "results"


def fit_and_estimate(problem, key, size, draws, anneal, steps):
    target = problem.target
    dim = problem.dim
    key_init, key_fit, key_draw, key_data = jax.random.split(key, 4)
    architecture = flow_architecture(dim, fit="energy", scale=problem.space.broad_scale)._replace(**SIZES[size])
    flow = Flow.coupling(key_init, dim, **architecture._asdict())
    optimizer = proposal_optimizer(POINT_RATES.fit, steps, alpha=0.0)

    def fit():
        return fit_sampler(key_fit, flow, target, steps=steps, num_draws=draws, optimizer=optimizer, anneal=anneal,
                           progress=False).proposal

    data = target.sample(key_data, (2000,))

    def estimate(fitted):
        x, log_q = fitted.sample_and_log_prob(key_draw, 10_000)
        result = log_z_importance(-target.unnormalized_log_prob(x), log_q,
                                  cost_data=-target.unnormalized_log_prob(data), log_q_data=fitted.log_prob(data))
        return float(result.log_z), bool(result.reliable)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimate(fit())  # compiles (the chunk program, the draws); the timed calls below run them again
        start = time.perf_counter()
        fitted = fit()
        jax.block_until_ready(fitted)
        fit_seconds = time.perf_counter() - start
        log_z, reliable = estimate(fitted)
        seconds = time.perf_counter() - start
    return {"error": log_z - float(target.log_normalizer), "reliable": reliable, "steps_per_second": steps / fit_seconds,
            "seconds": seconds}


def report(rows, targets) -> str:
    swept = [t for t in targets if sum(r["target"] == t and r["seed"] == 0 for r in rows) >= len(STEPS) * 2]
    lines = ["# The flow proposal's settings by time to accuracy (one run, 2 CPU cores, float64)", "",
             "`python benchmarks/flow_settings.py` (seed 0), then `--targets rings,8gaussians,moons --seed S --only "
             "4x32:512:0.05:1000,8x64:512:0.05:4000` for seeds 1 and 2 (and seed 0 of moons), and the same for "
             "checkerboard and pinwheel at seeds 0-2. The sweep, seed 0: per "
             "configuration (flow size, draws per step, annealing "
             "from β₀ or none) and target: fit steps per second, and the seconds (fit + estimate, compile "
             "excluded) of the fastest steps setting (of 500, 1000, 2000, 4000) whose estimate is within 0.05 nats "
             "and called reliable, with its steps and |error|; `-` where none is. The flow recipe's settings before "
             "this benchmark: 8x64, 512 draws, annealed from 0.05, 4000 steps.", "",
             "| size | draws | anneal | " + " | ".join(swept) + " |", "|---|---|---|" + "---|" * len(swept)]
    for size in SIZES:
        for draws in DRAWS:
            for anneal in ANNEAL:
                cells = []
                for target in swept:
                    got = [r for r in rows if (r["target"], r["size"], r["draws"], r["anneal"], r["seed"]) ==
                           (target, size, draws, anneal, 0)]
                    if not got:
                        cells.append("not run")
                        continue
                    rate = sum(r["steps_per_second"] for r in got) / len(got)
                    good = sorted((r for r in got if abs(r["error"]) <= 0.05 and r["reliable"]),
                                  key=lambda r: r["seconds"])
                    cells.append(f"{rate:.0f} steps/s; " + (f"{good[0]['seconds']:.1f} s ({good[0]['steps']} steps, "
                                                          f"{abs(good[0]['error']):.3f})" if good else "-"))
                lines.append(f"| {size} | {draws} | {anneal or 'none'} | " + " | ".join(cells) + " |")
    settings = sorted({(r["size"], r["draws"], r["anneal"] or 0.0, r["steps"]) for r in rows if r["seed"] != 0})
    if settings:
        seeds = sorted({r["seed"] for r in rows})
        lines += ["", f"Settings run at every seed ({', '.join(map(str, seeds))}): median |error| in nats [max], "
                  "seeds called reliable, median seconds (fit + estimate).", "",
                  "| size | draws | anneal | steps | " + " | ".join(targets) + " |",
                  "|---|---|---|---|" + "---|" * len(targets)]
        for size, draws, anneal, steps in settings:
            cells = []
            for target in targets:
                got = [r for r in rows if (r["target"], r["size"], r["draws"], r["anneal"] or 0.0, r["steps"]) ==
                       (target, size, draws, anneal, steps)]
                errors = sorted(abs(r["error"]) for r in got)
                seconds = sorted(r["seconds"] for r in got)
                cells.append(f"{errors[len(errors) // 2]:.3f} [{errors[-1]:.3f}], "
                             f"{sum(r['reliable'] for r in got)}/{len(got)}, {seconds[len(seconds) // 2]:.1f} s"
                             if got else "not run")
            lines.append(f"| {size} | {draws} | {anneal or 'none'} | {steps} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", default="rings,8gaussians,funnel10")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=None,
                        help="comma-separated size:draws:anneal:steps settings to run (anneal 'none'), e.g. the "
                             "chosen one and the old one at more seeds")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    only = None if args.only is None else {
        (size, int(draws), None if anneal == "none" else float(anneal), int(steps))
        for size, draws, anneal, steps in (item.split(":") for item in args.only.split(","))}
    targets = args.targets.split(",")
    path = RESULTS / "flow_settings.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    if not args.report_only:
        for target in targets:
            problem = make_problem(target)
            for size in SIZES:
                for draws in DRAWS:
                    for anneal in ANNEAL:
                        for steps in STEPS:
                            setting = {"target": target, "seed": args.seed, "size": size, "draws": draws,
                                       "anneal": anneal, "steps": steps}
                            if any(all(r[k] == v for k, v in setting.items()) for r in rows):
                                continue
                            if only is not None and (size, draws, anneal, steps) not in only:
                                continue
                            row = {**setting, **fit_and_estimate(problem, jax.random.key(args.seed), size, draws,
                                                                 anneal, steps)}
                            rows.append(row)
                            print(json.dumps(row), flush=True)
                            jax.clear_caches()  # each fit's programs map memory; one process held too many
                            tmp = path.with_suffix(".json.tmp")
                            tmp.write_text(json.dumps(rows, indent=1))
                            tmp.replace(path)
    text = report(rows, targets)
    tmp = RESULTS / "flow_settings.md.tmp"
    tmp.write_text(text)
    tmp.replace(RESULTS / "flow_settings.md")
    print(text)


if __name__ == "__main__":
    main()
