"""The main job's time and accuracy: ``maxent-gan compare`` on its defaults, cold and warm.

Each run is the console script's ``compare`` in a fresh process (what ``./dev run`` runs), against one fresh
persistent compilation cache: seed 0 cold (nothing cached), then seed 0 warm, then seeds 1 and 2 warm (the
compiled programs do not depend on the seed: the demonstrations and the proposal draws enter them as
arguments). Per run: the wall time, the compiles and cache loads, and per row its seconds, its shift from the
exact posterior (in exact-posterior sd) and whether the verdict flags it. The target: under 2 minutes, cold
and warm, with the θ-following rows within 0.1 sd.

    python benchmarks/main_job.py     # writes benchmarks/results/main_job.{md,json}
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from compile_times import run_cli
from maxent_gan.inference.io import write_atomic

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = (("cold", 0), ("warm", 0), ("warm", 1), ("warm", 2))


def one_run(cache: Path, workdir: Path, seed: int) -> dict:
    out = workdir / f"compare-{seed}"
    probe = run_cli(["compare", "--seed", str(seed), "--out", str(out), "--force"], cache, workdir)
    summary = json.loads((out / "summary.json").read_text())
    rows = {name: {"seconds": row["seconds"], "train_seconds": row["train_seconds"],
                   "shift_sd": row.get("shift_max_sd"), "flagged": bool(row.get("unreliable_reasons"))}
            for name, row in summary["proposals"].items()}
    return {"seed": seed, "wall": probe["wall"], "compiles": probe["compiles"] - probe["hits"],
            "loaded": probe["hits"], "compile_s": probe["compile_s"], "rows": rows}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        for cache, seed in RUNS:
            runs.append({"cache": cache, **one_run(workdir / "cache", workdir, seed)})
            print(runs[-1], flush=True)
    names = list(runs[0]["rows"])
    lines = ["# The main job, cold and warm (one run each, 2 CPU cores)", "",
             "`python benchmarks/main_job.py`: `maxent-gan compare` on its defaults (the gridworld, 5 rows, NUTS 4 x "
             "500 after 500 warm-up, 16 000 proposal draws) in a fresh process against one fresh compilation cache. "
             "Per row: its shift from the exact posterior in exact-posterior sd, flagged or not by the verdict, and "
             "its seconds (training included).", "",
             "| cache | seed | wall (s) | compiled | loaded | compile (s) | "
             + " | ".join(f"{name}: shift (sd), seconds" for name in names) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(names)]
    for run in runs:
        cells = []
        for name in names:
            row = run["rows"][name]
            shift = "exact" if row["shift_sd"] is None or name == "exact" else f"{row['shift_sd']:.2f}"
            cells.append(f"{shift}{' flagged' if row['flagged'] else ''}, {row['seconds']:.1f}")
        lines.append(f"| {run['cache']} | {run['seed']} | {run['wall']:.1f} | {run['compiles']} | {run['loaded']} | "
                     f"{run['compile_s']:.1f} | " + " | ".join(cells) + " |")
    RESULTS.mkdir(exist_ok=True)
    write_atomic(RESULTS / "main_job.md", "\n".join(lines) + "\n")
    write_atomic(RESULTS / "main_job.json", json.dumps(runs, indent=1) + "\n")


if __name__ == "__main__":
    main()
