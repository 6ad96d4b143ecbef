"""Fixed against θ-following samplers inside the posterior: the main job's defaults.

For each problem and seed: ``compare`` with the exact normalizer, the gcl and gan samplers fixed
at θ̂, and their θ-following versions (refitted at anchors over the fixed sampler's posterior,
``maxent_gan.inference.spaces.follow_theta``, mixed by the balance heuristic, estimated with ``"mis-cv"``). Reports the largest shift of the posterior mean from
the exact one (in exact-posterior sd), k-hat over the posterior draws (median, 95th percentile),
the share of draws the library's rule calls unreliable, the draw-set error (how far the set of
proposal draws alone moves a posterior mean, in posterior sd) and seconds.

    python benchmarks/follow.py [problem ...] [--seeds 0 1 2]   # writes benchmarks/results/follow.{md,json}
    python benchmarks/follow.py --summaries DIR/summary.json ...  # the same table from finished
                                                                  # `maxent-gan compare` runs (its defaults)
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
from maxent_gan.inference.io import write_atomic  # noqa: E402

PROPOSALS = ("exact", "gcl", "gcl-follow", "gan", "gan-follow")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("problems", nargs="*", default=["gridworld"])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--summaries", nargs="*", type=Path, default=[],
                        help="summary.json files of compare runs at the defaults, read instead of running")
    parser.add_argument("--note", default="", help="a line above the table (how and when the runs were made)")
    args = parser.parse_args()
    rows = []
    keys = ("shift_max_sd", "k_hat_median", "k_hat_p95", "unreliable_fraction", "draw_set_error", "seconds",
            "train_seconds")
    for path in args.summaries:
        summary = json.loads(path.read_text())
        for name, row in summary["proposals"].items():
            rows.append({"problem": summary["problem"], "seed": summary["seed"], "proposal": name,
                         **{key: row.get(key) for key in keys}})
    for problem in ([] if args.summaries else args.problems):
        for seed in args.seeds:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the rule's verdicts are in the rows
                summary = compare(problem, PROPOSALS, settings=CompareSettings(), key=jax.random.key(seed))
            for name, row in summary["proposals"].items():
                rows.append({"problem": problem, "seed": seed, "proposal": name, **{key: row.get(key) for key in keys}})
            print(f"{problem} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    out = Path(__file__).parent / "results"
    write_atomic(out / "follow.json", json.dumps(rows, indent=1))
    lines = ["# Fixed and θ-following samplers inside the posterior", "", args.note, "",
             "| problem | seed | proposal | shift (sd) | k-hat median | k-hat p95 | unreliable | draw-set error (sd) "
             "| seconds (training) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        def f(v, fmt="{:.2f}"):
            return "–" if v is None else fmt.format(v)
        lines.append(f"| {r['problem']} | {r['seed']} | {r['proposal']} | {f(r['shift_max_sd'])} | {f(r['k_hat_median'])} "
                     f"| {f(r['k_hat_p95'])} | {f(r['unreliable_fraction'], '{:.1%}')} | {f(r['draw_set_error'])} | "
                     f"{r['seconds']:.0f} ({r['train_seconds']:.0f}) |")
    write_atomic(out / "follow.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
