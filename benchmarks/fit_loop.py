"""Steps per second of the fit loop: one host round-trip per step (chunk 1) against lax.scan chunks
of 50, in float64 and float32, for the sampler fit (a spline coupling flow on Neal's funnel, 10-D,
and a tabular policy on the gridworld, 512 draws per step) and for the training driver (GCL on the
gridworld's cost family, 256 draws per step; its chunk is the stretch between two logged steps,
``log_every``). Compile time is excluded (one warm-up run of the same shapes).

    python benchmarks/fit_loop.py            # writes benchmarks/results/fit_loop.{md,json}
"""

import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maxent_gan.inference.driver import run_training  # noqa: E402
from maxent_gan.inference.ebm import build_training  # noqa: E402
from maxent_gan.inference.io import write_atomic, write_json  # noqa: E402
from maxent_gan.inference.proposals import Flow  # noqa: E402
from maxent_gan.inference.sampler import fit_sampler  # noqa: E402
from maxent_gan.inference.spaces import broad_proposal  # noqa: E402
from maxent_gan.models.problems import make_problem  # noqa: E402

STEPS = 200


def _time(proposal, target, chunk):
    key = jax.random.key(0)
    fit_sampler(key, proposal, target, steps=chunk, num_draws=512, chunk=chunk, progress=False)  # compile
    start = time.perf_counter()
    fitted, _, _, _ = fit_sampler(key, proposal, target, steps=STEPS, num_draws=512, chunk=chunk, progress=False)
    jax.block_until_ready(jax.tree.leaves(fitted))
    return STEPS / (time.perf_counter() - start)


def _time_driver(problem, chunk):
    key = jax.random.key(0)
    data, _ = problem.data(key, 256, 2)
    algorithm, state = build_training(problem, "gcl", key, data, steps=STEPS, parametric=True, flow_epochs=1)

    def run(steps):
        result = run_training(key, algorithm, state, data, steps=steps, log_every=chunk, progress=False)
        jax.block_until_ready(jax.tree.leaves(result.state))

    run(chunk)  # compile
    start = time.perf_counter()
    run(STEPS)
    return STEPS / (time.perf_counter() - start)


def main():
    rows = []
    for x64 in (True, False):
        jax.config.update("jax_enable_x64", x64)
        funnel = make_problem("funnel10").target
        grid = make_problem("gridworld")
        cases = {"flow on funnel10": (Flow.coupling(jax.random.key(1), 10), funnel),
                 "tabular policy on gridworld": (broad_proposal(grid.space, None), grid.target)}
        for name, (proposal, target) in cases.items():
            for chunk in (1, 50):
                rate = _time(proposal, target, chunk)
                rows.append({"case": name, "float": 64 if x64 else 32, "chunk": chunk, "steps_per_s": rate})
                print(rows[-1], flush=True)
        for chunk in (1, 50):
            rate = _time_driver(grid, chunk)
            rows.append({"case": "driver: GCL on gridworld", "float": 64 if x64 else 32, "chunk": chunk,
                         "steps_per_s": rate})
            print(rows[-1], flush=True)
    out = Path(__file__).parent / "results"
    write_json(out / "fit_loop.json", rows)
    lines = ["# Sampler fit: steps per second (one run, 2 CPU cores, compile excluded)", "",
             f"`python benchmarks/fit_loop.py`: {STEPS} steps each (sampler fits: reverse KL, 512 draws; "
             "driver: GCL, 256 draws, a minibatch of 256 demonstrations).", "",
             "| case | float | chunk (steps per host round-trip) | steps/s |", "|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['float']} | {r['chunk']} | {r['steps_per_s']:.1f} |" for r in rows]
    write_atomic(out / "fit_loop.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
