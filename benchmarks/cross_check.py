"""Does the SMC cross-check catch a bad learned sampler, and pass a good one, where no exact log Z exists?

On the point mass (trajectories of a differentiable simulator; no exact log Z(θ)), ``compare`` with the
``gcl`` row alone, its sampler trained by guided cost learning for ``--steps`` steps (10: deliberately bad;
1500: compare's default), then NUTS under that fixed sampler and the cross-check at posterior draws
(``maxent_gan.inference.app.cross_check``: tempered SMC started at the sampler, a second run at a few draws to
measure SMC's own noise). Reports what the check read and why, beside the posterior's own rule, and the
seconds each part took.

    python benchmarks/cross_check.py [--seeds 0 1 2] [--steps 10 1500] [--check-thetas 8] [--full]
        # --full: the posterior at compare's default sizes (CompareSettings()), not its quick ones
        # resumable: rows already in results/cross_check.json are kept, not rerun;
        # writes results/cross_check.{md,json} after every row
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from maxent_gan.inference.app.compare import CompareSettings, compare  # noqa: E402
from maxent_gan.inference.app.cross_check import cross_check_reading, cross_check_reasons  # noqa: E402
from maxent_gan.inference.io import write_atomic, write_json  # noqa: E402

OUT = Path(__file__).parent / "results"
# compare's quick sizes for the posterior (4000 proposal draws, 2 chains x 200 after 200): the check, not the
# posterior, is what is measured; the sampler trains for the steps asked
SETTINGS = CompareSettings.quick()


def run(seed: int, steps: int, check_thetas: int, *, full: bool = False) -> dict:
    settings = (CompareSettings(train_steps=steps, check_thetas=check_thetas) if full
                else CompareSettings.quick(train_steps=steps, check_thetas=check_thetas))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the verdicts are in the row
        summary = compare("pointmass", ("gcl",), settings=settings, key=jax.random.key(seed))
    row = summary["proposals"]["gcl"]
    check = row["cross_check"]
    own = [reason for reason in (row["unreliable_reasons"] or "").split("; ")  # no reason holds "; "
           if reason and reason not in cross_check_reasons(check)]
    return {"seed": seed, "steps": steps, "check_thetas": check_thetas, "sizes": "default" if full else "quick",
            "num_draws": settings.num_draws, "nuts": f"{settings.num_chains} x {settings.num_samples} after "
            f"{settings.num_warmup}", "reading": cross_check_reading(check),
            "check": check, "check_reasons": cross_check_reasons(check), "posterior_reasons": own,
            "trained_theta": summary["learned_theta"].get("gcl"), "posterior_mean": row["posterior_mean"],
            "train_seconds": row["train_seconds"],
            "row_seconds": row["seconds"], "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", nargs="*", type=int, default=[10, 1500])
    parser.add_argument("--check-thetas", type=int, default=SETTINGS.check_thetas)
    parser.add_argument("--full", action="store_true", help="the posterior at compare's default sizes")
    args = parser.parse_args()
    path = OUT / "cross_check.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    for seed in args.seeds:
        for steps in args.steps:
            sizes = "default" if args.full else "quick"
            if any(r["seed"] == seed and r["steps"] == steps and r["check_thetas"] == args.check_thetas
                   and r["sizes"] == sizes for r in rows):
                continue
            rows.append(run(seed, steps, args.check_thetas, full=args.full))
            print(json.dumps(rows[-1], default=str), flush=True)
            rows.sort(key=lambda r: (r["sizes"] != "quick", r["steps"], r["seed"]))
            write_json(path, rows)
            _write(rows)


def _fmt(value, spec=".3f"):
    return "n/a" if value is None else format(value, spec)


def _write(rows: list) -> None:
    lines = ["# The SMC cross-check on a bad and a good learned sampler (point mass, no exact log Z)", "",
             "`python benchmarks/cross_check.py [--full]`: `compare` on `pointmass` with the `gcl` row alone, its "
             "sampler trained for the steps shown (10: deliberately bad; 1500: compare's default), the posterior at "
             "the sizes shown (compare's quick ones, or with `--full` its defaults), the cross-check at the posterior "
             "draws shown, SMC with "
             f"{rows[0]['check']['particles'] if rows else 2048} particles; one run per row, float64, 2 CPU cores.", "",
             "| train steps | seed | posterior: proposal draws, NUTS | trained θ̂ (goal, obstacle, log effort) | posterior mean | check at | bridges run | start misses mass at | "
             "SMC flags itself at | beyond the offset (nats) | SMC's run-to-run sd | reading | posterior's own rule | "
             "seconds (training / training and NUTS / check) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r["check"]
        theta, mean = (", ".join(f"{v:.2f}" for v in r[name]) for name in ("trained_theta", "posterior_mean"))
        own = "flags it" if r["posterior_reasons"] else "passes it"
        check_seconds = r["seconds"] - r["row_seconds"]  # the row's own seconds include its training and NUTS
        sizes = f"{r['num_draws']}, {r['nuts']}"
        lines.append(f"| {r['steps']} | {r['seed']} | {sizes} | {theta} | {mean} | {c['thetas']} draws | {c['bridges']} | "
                     f"{c['start_misses']} | {c['smc_unreliable']} | {_fmt(c['spread'])} | "
                     f"{_fmt(c['smc_noise'])} | **{r['reading']}** | {own} | {r['train_seconds']:.0f} / "
                     f"{r['row_seconds']:.0f} / {check_seconds:.0f} |")
    lines += ["", "Why each flagged row was flagged:", ""]
    for r in rows:
        for reason in r["check_reasons"] + r["posterior_reasons"]:
            lines.append(f"- steps {r['steps']}, seed {r['seed']}: {reason}")
    write_atomic(OUT / "cross_check.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
