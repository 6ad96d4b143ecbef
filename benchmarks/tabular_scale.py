"""Exact tabular log Z + gradient at scale: a 1000 x 1000 gridworld (10^6
states, 5 actions, T = 100), as (state, action, step)/s against this machine's memory-bandwidth
ceiling, in float64 and float32, deterministic moves by default (``--slips 0.1`` for slippery ones,
at smaller sizes); the forward pass (log Z alone) beside log Z + gradient.

    python benchmarks/tabular_scale.py [--size 1000] [--horizon 100] [--slips 0.0]   # writes results/tabular_scale.{md,json}

Warm times (one compile run first), median of 3. The ceiling: one pass over the (S, A) array of
the step's dtype per step, read once, at the bandwidth a plain ``sum`` reaches on an array of
that size.

Tried and dropped (2026-12-02): a rescaled linear-space step (2·S transcendentals per step instead
of S·A·(K+1), with the log-space step as an exact fallback) was no faster on XLA's CPU backend
(300 x 300, T = 50: forward 0.175 s against 0.145 s, gradient 1.24 s against 0.76 s): the step is
bound by the gather and, in the gradient, its transpose (a scatter-add), not by exp and log.

2026-12-03: the gradient is a hand-written JVP (maxent_gan.models.tabular._log_partition_jvp: one forward
pass for the occupancy, recomputing each step's messages from the stored log β) instead of reverse
mode through the scan, and one successor skips the inner logsumexp. 1000 x 1000, T = 100, slip 0,
one run each: log Z 5.24 -> 1.72 s, log Z + gradient 22.67 -> 9.61 s (float64); 3.04 -> 1.13 and
11.45 -> 3.56 s (float32). Tried and dropped the same day: gathering each state's incoming flow
through a precomputed in-edge table instead of the forward pass's scatter-add (segment_sum): 10.58
s against 9.61 s, no gain, so the scatter is not what bounds the forward pass either.

2026-12-04: the steps run action-major, unrolled over the (action, successor) slots when A·K <= 64
(maxent_gan.models.tabular.UNROLL_LIMIT): XLA's CPU backend reduced the (S, A) arrays' tiny minor axis element
by element. One A/B run on a quiet machine (/tmp script, both forms in one process), 1000 x 1000,
T = 100: float64 log Z 1.25 -> 0.80 s, log Z + gradient 3.28 -> 2.75 s; float32 0.73 -> 0.29 s and
2.12 -> 1.25 s. The table's earlier 9.69 s (float64) was measured when this machine read memory at
2.45e9 float64/s; today it reads 6.47e9/s, so most of the change since is the machine, not the code.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import maxent_gan.models.tabular as tabular  # noqa: E402
from maxent_gan.inference.io import write_atomic, write_json  # noqa: E402
from maxent_gan.models.gridworld import gridworld, linear_costs  # noqa: E402

THETA = jnp.array([-1.0, 4.0, 3.0, 0.1])


def _median(fn, repeats=3):
    jax.block_until_ready(fn())  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _bandwidth(n, dtype):
    x = jnp.ones(n, dtype)
    total = jax.jit(jnp.sum)
    seconds = _median(lambda: total(x))
    return n * x.dtype.itemsize / seconds  # bytes/s


def run(size, horizon, slip, dtype):
    mdp = gridworld(size, horizon=horizon, slip=slip)
    transitions = tabular.Transitions(mdp.transitions.successors, mdp.transitions.log_probs.astype(dtype))
    features = mdp.features.astype(dtype)
    initial = mdp.initial.astype(dtype)

    def log_z(theta):
        return tabular.log_partition(linear_costs(theta, features), transitions, initial, horizon)

    theta = THETA.astype(dtype)
    forward, both = jax.jit(log_z), jax.jit(jax.value_and_grad(log_z))
    forward_seconds = _median(lambda: forward(theta))
    seconds = _median(lambda: both(theta))
    elements = mdp.num_states * mdp.num_actions * horizon
    return {"size": size, "states": mdp.num_states, "horizon": horizon, "slip": slip, "dtype": jnp.dtype(dtype).name,
            "forward_seconds": forward_seconds, "seconds": seconds, "elements_per_s": elements / seconds,
            "log_z": float(forward(theta)),
            "successors": int(transitions.successors.shape[-1])}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--horizon", type=int, default=100)
    # slip spreads each move over 6 successors: the gradient's residuals at 10^6 states would not fit in 24 GB
    parser.add_argument("--slips", type=float, nargs="+", default=[0.0])
    args = parser.parse_args()
    rows = []
    for slip in args.slips:
        for dtype in (jnp.float64, jnp.float32):
            rows.append(run(args.size, args.horizon, slip, dtype))
            print(rows[-1], flush=True)
    states = args.size**2
    ceiling = {}
    for dtype in (jnp.float64, jnp.float32):
        bandwidth = _bandwidth(states * 5, dtype)
        ceiling[jnp.dtype(dtype).name] = bandwidth / jnp.dtype(dtype).itemsize  # (s, a) elements read per second
    out = Path(__file__).parent / "results"
    write_json(out / "tabular_scale.json", {"rows": rows, "ceiling_elements_per_s": ceiling})
    lines = [f"# Exact tabular log Z + gradient, {args.size} x {args.size} gridworld ({states:,} states, 5 actions, "
             f"T = {args.horizon}); one run, 2 CPU cores", "",
             "`python benchmarks/tabular_scale.py`. Warm, median of 3; `jit(value_and_grad)` of `log_partition` in θ. "
             "Ceiling: (s, a) elements per second a plain sum reads at this machine's bandwidth "
             f"(float64 {ceiling['float64']:.3g}/s, float32 {ceiling['float32']:.3g}/s).", "",
             "| slip | successors K | dtype | log Z alone (s) | log Z + gradient (s) | (s, a, t)/s | of ceiling | log Z |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['slip']} | {r['successors']} | {r['dtype']} | {r['forward_seconds']:.2f} | {r['seconds']:.2f} | "
                     f"{r['elements_per_s']:.3g} | {r['elements_per_s'] / ceiling[r['dtype']]:.2f} | {r['log_z']:.6f} |")
    write_atomic(out / "tabular_scale.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
