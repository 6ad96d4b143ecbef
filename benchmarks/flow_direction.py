"""Which way the coupling flow's splines run when it draws: flowjax's default
(``invert=True``: draws through the spline's inverse, a square root) against this library's
(``invert=False``: draws through the forward map, a ratio of quadratics).

The recipe is ``maxent-gan logz --proposal flow``'s (``maxent_gan.inference.app.recipes``: coupling flow over
N(0, s² I), annealed reverse KL from β = 0.05, clipped Adam on a cosine schedule, 512 draws a
step), then 16 000 importance draws and the forward check over 2000 exact draws. Per row: steps
the optimizer skipped for a non-finite gradient, whether the guard stopped the fit, the log Z
error, reverse k-hat and ESS, forward ESS, the library's verdict, and seconds (fit included).
One run, float64, CPU.

    python benchmarks/flow_direction.py [--seeds 3] [--steps 2000]   # -> results/flow_direction.{md,json}
"""

import argparse
import json
import re
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maxent_gan.inference.diagnostics import UnreliableEstimateWarning  # noqa: E402
from maxent_gan.inference.estimators import log_z_importance  # noqa: E402
from maxent_gan.inference.io import write_atomic, write_json  # noqa: E402
from maxent_gan.inference.proposals import Flow  # noqa: E402
from maxent_gan.inference.sampler import fit_sampler, proposal_optimizer  # noqa: E402
from maxent_gan.inference.spaces import POINT_RATES  # noqa: E402
from maxent_gan.models.problems import make_problem  # noqa: E402

SCALE = {"gmm40": 25.0}


def one(name, seed, invert, steps):
    target = make_problem(name).target
    scale = SCALE[name]
    key = jax.random.key(seed)
    key_init, key_fit = jax.random.split(jax.random.fold_in(key, 1))
    start = time.perf_counter()
    flow = Flow.coupling(key_init, target.event_shape[0], base_scale=scale, interval=3 * scale, invert=invert)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", UnreliableEstimateWarning)
        fitted, _, _, _ = fit_sampler(key_fit, flow, target, steps=steps, num_draws=512,
                                optimizer=proposal_optimizer(POINT_RATES.fit, steps, alpha=0.0), anneal=0.05,
                                progress=False)
    messages = [str(w.message) for w in caught]
    skipped = sum(int(m.group(1)) for text in messages if (m := re.search(r"(\d+) of \d+ steps had a non-finite", text)))
    stopped = any("became" in text or "stopped" in text for text in messages)
    x, log_q = fitted.sample_and_log_prob(key, 16_000)
    data = target.sample(jax.random.fold_in(key, 99), (2000,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreliableEstimateWarning)
        estimate = log_z_importance(-target.unnormalized_log_prob(x), log_q,
                                    cost_data=-target.unnormalized_log_prob(data), log_q_data=fitted.log_prob(data))
    row = {"target": name, "seed": seed, "invert": invert, "skipped": skipped, "stopped": stopped,
           "error": float(estimate.log_z) - float(target.log_normalizer), "k_hat": float(estimate.k_hat),
           "ess": float(estimate.ess), "forward_ess": float(estimate.forward.ess), "reliable": bool(estimate.reliable),
           "seconds": time.perf_counter() - start}
    print(json.dumps(row), flush=True)
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    rows = [one(name, seed, invert, args.steps) for name in SCALE for seed in range(args.seeds) for invert in (True, False)]
    command = f"python benchmarks/flow_direction.py --seeds {args.seeds} --steps {args.steps}"
    lines = ["# Coupling flow: draws through the spline's inverse (flowjax's default) or its forward map", "",
             f"`{command}`. One row per fit.", "",
             "| target | seed | draws through | skipped steps | guard stop | log Z error | k-hat | ESS | forward ESS "
             "| reliable | seconds |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['target']} | {r['seed']} | {'inverse' if r['invert'] else 'forward'} | {r['skipped']} | "
                     f"{'yes' if r['stopped'] else 'no'} | {r['error']:+.3f} | {r['k_hat']:.2f} | {r['ess']:.0f} | "
                     f"{r['forward_ess']:.0f} | {'yes' if r['reliable'] else 'no'} | {r['seconds']:.0f} |")
    for invert in (True, False):
        sub = [r for r in rows if r["invert"] == invert]
        lines.append("")
        lines.append(f"- {'inverse' if invert else 'forward'}: skipped steps {sum(r['skipped'] for r in sub)} in all, "
                     f"guard stops {sum(r['stopped'] for r in sub)}, median |error| "
                     f"{np.median(np.abs([r['error'] for r in sub])):.3f} nats, reliable {sum(r['reliable'] for r in sub)}"
                     f"/{len(sub)}")
    out = Path(__file__).parent / "results"
    write_atomic(out / "flow_direction.md", "\n".join(lines) + "\n")
    write_json(out / "flow_direction.json", rows)


if __name__ == "__main__":
    main()
