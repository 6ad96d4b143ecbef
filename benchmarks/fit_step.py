"""The sampler fit's step against a bare optax + flowjax reverse-KL step of the same flow, in one run.

The same spline coupling flow (funnel10's ``flow`` proposal: 8 layers of width 64, 8 knots), the same
512 draws per step, float32 and float64. Rows, each timed after a warm-up call of the same settings
(compile excluded), best of three repetitions of ``STEPS`` steps:

- ``bare``: ``eqx.filter_value_and_grad`` of ``mean(c(x) + log q(x))`` over
  ``flow.sample_and_log_prob`` and ``optax.adam``, in a ``lax.scan`` of ``CHUNK`` steps (what a user
  would write with flowjax and optax alone);
- ``bare + optimizer``: the same loop with the library's optimizer (clipping, cosine schedule,
  ``apply_if_finite``);
- ``fit_sampler``: the library's fit (annealing off, then on), chunks of ``CHUNK`` steps with the
  NaN guard and the progress bar off.

    python benchmarks/fit_step.py     # writes benchmarks/results/fit_step.{md,json}
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
import paramax  # noqa: E402
from maxent_gan.inference.io import write_atomic  # noqa: E402
from maxent_gan.inference.proposals import Flow  # noqa: E402
from maxent_gan.inference.sampler import fit_sampler, proposal_optimizer  # noqa: E402
from maxent_gan.inference.spaces import flow_architecture  # noqa: E402
from maxent_gan.models.problems import make_problem  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
STEPS, CHUNK, DRAWS, REPEATS = 200, 50, 512, 3


def bare_fit(flow, target, optimizer, dtype):
    """flowjax + optax alone: the reverse-KL loss of fresh draws, ``CHUNK`` steps per scan. Returns a
    function of the key that runs ``STEPS`` steps (its scan compiled once, on the first call)."""
    with jax.enable_x64(dtype == "float64"):
        params, static = eqx.partition(flow.flow, eqx.is_inexact_array)
        params = jax.tree.map(lambda x: x.astype(dtype), params)
    log_density = target.unnormalized_log_prob

    @jax.jit
    def chunk(params, opt_state, keys):
        def body(carry, key):
            params, opt_state = carry

            def loss(params):
                dist = paramax.unwrap(eqx.combine(params, static))
                x, log_q = dist.sample_and_log_prob(key, (DRAWS,))
                return jnp.mean(log_q - log_density(x))

            value, grads = jax.value_and_grad(loss)(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        return jax.lax.scan(body, (params, opt_state), keys)

    def run(key):
        with jax.enable_x64(dtype == "float64"):
            state, losses = (params, optimizer.init(params)), []
            for keys in jnp.split(jax.random.split(key, STEPS), STEPS // CHUNK):
                state, values = chunk(*state, keys)
                losses.append(values)
            jax.block_until_ready(state)
            return jnp.concatenate(losses)

    return run


def library_fit(flow, target, key, steps, dtype, anneal):
    result = fit_sampler(key, flow, target, steps=steps, num_draws=DRAWS, anneal=anneal, chunk=CHUNK,
                         progress=False, dtype=dtype)
    jax.block_until_ready(jax.tree.leaves(result.proposal))
    return result.losses


def timed(fit) -> tuple[float, float]:
    fit()  # compile
    best, loss = float("inf"), float("nan")
    for _ in range(REPEATS):
        start = time.perf_counter()
        losses = fit()
        best = min(best, time.perf_counter() - start)
        loss = float(jnp.mean(losses[-20:]))
    return STEPS / best, loss


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    target = make_problem("funnel10").target
    flow = Flow.coupling(jax.random.key(1), 10, **flow_architecture(10, fit="energy")._asdict())
    key = jax.random.key(0)
    rows = []
    for dtype in ("float32", "float64"):
        cases = {
            "bare (optax.adam 1e-2)": partial(bare_fit(flow, target, optax.adam(1e-2), dtype), key),
            "bare + the library's optimizer": partial(bare_fit(flow, target, proposal_optimizer(1e-2, STEPS), dtype),
                                                      key),
            "fit_sampler": lambda d=dtype: library_fit(flow, target, key, STEPS, d, None),
            "fit_sampler, annealed from 0.05": lambda d=dtype: library_fit(flow, target, key, STEPS, d, 0.05),
        }
        for name, fit in cases.items():
            rate, loss = timed(fit)
            rows.append({"dtype": dtype, "step": name, "steps_per_s": rate, "ms_per_step": 1e3 / rate, "loss": loss})
            print(rows[-1], flush=True)
    write(rows)


def write(rows: list[dict]) -> None:
    lines = ["# The fit step against a bare flowjax + optax step (one run, 2 CPU cores, compile excluded)", "",
             f"`python benchmarks/fit_step.py`: funnel10's coupling flow (8 layers, width 64, 8 knots), {DRAWS} draws "
             f"per step, {STEPS} steps in scans of {CHUNK}, best of {REPEATS}. Loss: mean of the last 20 steps.", "",
             "| dtype | step | steps/s | ms/step | time / bare step | loss |", "|---|---|---|---|---|---|"]
    for row in rows:
        bare = next(r for r in rows if r["dtype"] == row["dtype"] and r["step"].startswith("bare (optax"))
        lines.append(f"| {row['dtype']} | {row['step']} | {row['steps_per_s']:.1f} | {row['ms_per_step']:.1f} | "
                     f"{bare['steps_per_s'] / row['steps_per_s']:.2f} | {row['loss']:.3f} |")
    lines += ["", "The bare and the library's rows with the same optimizer compute the same steps (the same keys: their "
              "losses agree to the last digit), so the ratio is the loop's own cost: the NaN guard between chunks, "
              "the annealing arithmetic and the trainable-leaf filtering."]
    RESULTS.mkdir(exist_ok=True)
    write_atomic(RESULTS / "fit_step.md", "\n".join(lines) + "\n")
    write_atomic(RESULTS / "fit_step.json", json.dumps({"rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
