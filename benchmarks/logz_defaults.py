"""``maxent-gan logz`` at its defaults, before and after they became the standard-targets benchmark's best per time.

Run: ``python benchmarks/logz_defaults.py [--seeds 3]`` (writes benchmarks/results/logz_defaults.{md,json}).

* ``now``: the defaults since 2026-12-07: the broad Gaussian at the problem's own scale
  (``Points.broad_scale``: 25 for gmm40, 3 for funnel10, a quarter of a toy's box, else 2), importance
  sampling with 10 000 draws, and tempered SMC from the same start with 10 000 particles where the
  importance estimate's own rule calls it unreliable (``ImportanceThenAnnealed``);
* ``before``: the defaults until then: a Gaussian fitted by reverse KL (1000 steps, from N(0, 2² I)), importance
  sampling with 10 000 draws.

Per row: |error| in nats against the exact log Z, whether the estimate's own rule called it reliable, the
estimator that gave it, and seconds (fit + draws + checks, in one process: the first seed of each problem
includes compiling). One run, float64, 2 CPU cores.
"""

import argparse
import json
import sys
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maxent_gan.inference.app.logz import ImportanceThenAnnealed, estimate_log_z  # noqa: E402
from maxent_gan.inference.normalizers import Importance  # noqa: E402
from maxent_gan.models.problems import make_problem  # noqa: E402

PROBLEMS = ("gmm40", "funnel10", "manywell32", "8gaussians", "rings", "moons", "checkerboard", "pinwheel")
SETTINGS = {"now": dict(proposal="broad", estimator=ImportanceThenAnnealed()),
            "before": dict(proposal="gaussian", estimator=Importance(), scale=2.0)}


def run(seeds: int):
    rows = []
    for name in PROBLEMS:
        problem = make_problem(name)
        for setting, options in SETTINGS.items():
            for seed in range(seeds):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = estimate_log_z(problem, key=jax.random.key(seed), **options)
                rows.append({"problem": name, "defaults": setting, "seed": seed, "error": result["error"],
                             "reliable": result["reliable"], "estimator": result["estimator"],
                             "seconds": result["seconds"]})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def report(rows, seeds: int) -> str:
    lines = [f"# `maxent-gan logz` at its defaults, now and before (seeds 0-{seeds - 1}, one run, 2 CPU cores)", "",
             f"`python benchmarks/logz_defaults.py --seeds {seeds}`. Per cell: median |error| in nats [max], "
             "seeds the estimate's own rule called reliable, median seconds (fit + draws + checks; the first seed "
             "includes compiling); for `now`, how many seeds escalated to tempered SMC.", "",
             "| problem | before: gaussian fit + IS | now: broad IS, SMC where unreliable |", "|---|---|---|"]
    for name in PROBLEMS:
        cells = []
        for setting in ("before", "now"):
            got = [r for r in rows if r["problem"] == name and r["defaults"] == setting]
            errors = sorted(abs(r["error"]) for r in got)
            seconds = sorted(r["seconds"] for r in got)
            cell = (f"{errors[len(errors) // 2]:.3f} [{errors[-1]:.3f}], {sum(r['reliable'] for r in got)}/{len(got)} "
                    f"reliable, {seconds[len(seconds) // 2]:.1f} s")
            if setting == "now":
                cell += f", {sum(r['estimator'] == 'annealed' for r in got)} escalated"
            cells.append(cell)
        lines.append(f"| {name} | {' | '.join(cells)} |")
    wrong_unflagged = [r for r in rows if r["reliable"] and abs(r["error"]) > 0.1]
    lines += ["", f"Rows more than 0.1 nats off and called reliable: {len(wrong_unflagged)} "
              f"({', '.join(sorted({r['problem'] + ' ' + r['defaults'] for r in wrong_unflagged})) or 'none'})."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--report-only", action="store_true", help="rewrite the table from results/logz_defaults.json")
    args = parser.parse_args()
    out = Path(__file__).resolve().parent / "results"
    rows = json.loads((out / "logz_defaults.json").read_text()) if args.report_only else run(args.seeds)
    for suffix, text in (("json", json.dumps(rows, indent=1)), ("md", report(rows, args.seeds))):
        tmp = out / f"logz_defaults.{suffix}.tmp"
        tmp.write_text(text)
        tmp.replace(out / f"logz_defaults.{suffix}")
    print(report(rows, args.seeds))


if __name__ == "__main__":
    main()
