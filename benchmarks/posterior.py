"""Issue 6's targets: posteriors under learned proposals against the exact-normalizer posterior.

Run: ``python benchmarks/posterior.py`` (writes benchmarks/results/posterior.{md,json,png} and the
full reports under results/posterior_<problem>/). One run, seed 0, on this machine's CPU.

Targets:
- with a learned proposal (gcl or gan), posterior means within 0.2 exact-posterior sd of the
  exact-normalizer posterior, on gridworld and LQR;
- the broad proposal's bias visible and flagged by k-hat > 0.7;
- ``maxent-gan compare --quick`` on its default finishes in under 3 minutes on 2 CPU cores.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import matplotlib.pyplot as plt

jax.config.update("jax_enable_x64", True)
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from maxent_gan.inference.app.compare import SHIFT_OK, CompareSettings, compare  # noqa: E402
from maxent_gan.inference.io import save_figure, write_atomic, write_json  # noqa: E402

OUT = Path(__file__).parent / "results"
ALL = ("exact", "broad", "cloned", "gcl", "gan")
RUNS = [
    # (problem, settings, proposals): the CLI's defaults, then the learned samplers with more draws and training
    ("gridworld", CompareSettings(), ALL),
    ("gridworld", CompareSettings(train_steps=3000, num_draws=48_000), ("exact", "gcl", "gan")),
    ("lqr", CompareSettings(), ALL),
]


def time_quick_cli() -> float:
    out = OUT / "posterior_quick_cli"
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "maxent_gan.inference.app.cli", "compare", "--quick", "--out", str(out), "--force"],
                            cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return seconds


def main():
    quick_seconds = time_quick_cli()
    print(f"compare --quick: {quick_seconds:.1f} s", flush=True)
    runs = []
    for i, (problem, settings, proposals) in enumerate(RUNS):
        summary = compare(problem, proposals, settings=settings, key=jax.random.key(0), out=OUT / f"posterior_{problem}_{i}",
                          force=True)
        runs.append(summary)
        for name, row in summary["proposals"].items():
            print(problem, settings.num_draws, name, round(row["shift_max_sd"], 3), row["k_hat_median"], flush=True)
    lines = [
        "# Posterior cost estimates: learned proposals vs the exact normalizer",
        "",
        f"`python benchmarks/posterior.py`, seed 0, CPU (2 cores). Shift: the largest |posterior mean - exact posterior "
        f"mean| over the cost weights, in exact-posterior sd (target ≤ {SHIFT_OK} for a learned proposal). 100 "
        "demonstrations; NUTS 4 chains x 500 draws (500 warm-up).",
        "",
        f"`maxent-gan compare --quick` (gridworld; exact, broad, gcl, gan): **{quick_seconds:.0f} s** "
        f"(target < 180 s: {'met' if quick_seconds < 180 else 'missed'}).",
        "",
        "| problem | draws | train steps | proposal | shift (sd) | median k-hat | median ESS | R-hat | seconds | "
        "target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for summary in runs:
        s = summary["settings"]
        for name, row in summary["proposals"].items():
            if name in ("gcl", "gan"):
                target = "met" if row["shift_max_sd"] <= SHIFT_OK else "missed"
            elif name == "broad":
                flagged = row["k_hat_median"] is None or row["k_hat_median"] > 0.7
                target = "flagged" if flagged and row["shift_max_sd"] > SHIFT_OK else "not flagged"
            else:
                target = ""
            k_hat = "n/a" if row["k_hat_median"] is None else f"{row['k_hat_median']:.2f}"
            ess = "n/a" if row["ess_median"] is None else f"{row['ess_median']:.0f}"
            lines.append(f"| {summary['problem']} | {s['num_draws']} | {s['train_steps']} | {name} | "
                         f"{row['shift_max_sd']:.2f} | {k_hat} | {ess} | {row['rhat_max']:.3f} | "
                         f"{row['seconds']:.0f} | {target} |")
    write_atomic(OUT / "posterior.md", "\n".join(lines) + "\n")
    write_json(OUT / "posterior.json", {"quick_cli_seconds": quick_seconds, "runs": runs})
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, problem in zip(axes, ("gridworld", "lqr"), strict=True):
        for summary in [r for r in runs if r["problem"] == problem]:
            rows = {k: v for k, v in summary["proposals"].items() if k != "exact"}
            ks = [v["k_hat_median"] for v in rows.values()]
            shifts = [v["shift_max_sd"] for v in rows.values()]
            ax.scatter(ks, shifts, label=f"{summary['settings']['num_draws']} draws")
            for name, k, sh in zip(rows, ks, shifts, strict=True):
                ax.annotate(name, (k, sh), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axvline(0.7, color="r", ls="--", lw=1)
        ax.axhline(SHIFT_OK, color="gray", ls=":", lw=1)
        ax.set(xscale="symlog", yscale="log", xlabel="median k-hat", ylabel="largest shift (exact sd)", title=problem)
        ax.legend(fontsize=7)
    figure.tight_layout()
    save_figure(figure, OUT / "posterior.png")
    print(json.dumps({"quick_cli_seconds": quick_seconds}))



if __name__ == "__main__":
    main()
