"""Steps per second of a sampler fit in float64 against ``dtype="float32"``: a
spline coupling flow on Neal's funnel (10-D), 512 draws per step, reverse KL with annealing, the
default optimizer, 50 steps per host round-trip; and the final loss of each (the same seed).
Compile time excluded (one warm-up fit of the same settings first).

    python benchmarks/fit_precision.py     # writes benchmarks/results/fit_precision.md
"""

import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maxent_gan.inference.io import write_atomic  # noqa: E402
from maxent_gan.inference.proposals import Flow  # noqa: E402
from maxent_gan.inference.sampler import fit_sampler  # noqa: E402
from maxent_gan.models.problems import make_problem  # noqa: E402

STEPS = 200


def main():
    target = make_problem("funnel10").target
    flow = Flow.coupling(jax.random.key(1), 10)
    rows = []
    for dtype in ("float32", None):
        def fit(dtype=dtype):
            fitted, losses, _, _ = fit_sampler(jax.random.key(0), flow, target, steps=STEPS, num_draws=512, anneal=0.05,
                                         progress=False, dtype=dtype)
            jax.block_until_ready(jax.tree.leaves(fitted))
            return losses

        fit()  # compile
        start = time.perf_counter()
        losses = fit()
        seconds = time.perf_counter() - start
        rows.append((dtype or "float64", STEPS / seconds, float(losses[-20:].mean())))
        print(rows[-1], flush=True)
    lines = ["# Sampler fit: float64 against float32 (one run, 2 CPU cores, compile excluded)", "",
             f"`python benchmarks/fit_precision.py`: a coupling flow on funnel10, {STEPS} steps of 512 draws, annealed "
             "from 0.05, the default optimizer, chunks of 50.", "",
             "| fit dtype | steps/s | mean loss, last 20 steps |", "|---|---|---|"]
    lines += [f"| {name} | {rate:.1f} | {loss:.3f} |" for name, rate, loss in rows]
    lines += ["", f"float32 / float64: {rows[0][1] / rows[1][1]:.2f}x the steps per second."]
    write_atomic(Path(__file__).parent / "results" / "fit_precision.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
