"""Does the reliability rule see mass that q misses? 8gaussians with proposals that drop one mode.

q is the target's own mixture with one component removed (its mass missing) or kept, its
components widened or narrowed; 10 000 draws from q, 2000 exact draws for the forward check,
seeds 0-4. For each case: the error of log Z, the reverse diagnostics (q's own draws), the forward
ones, and whether the rule of ``maxent_gan.inference.diagnostics`` flags the estimate.

    python benchmarks/forward_check.py      # writes benchmarks/results/forward_check.{md,json}
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from maxent_gan.inference.diagnostics import UnreliableEstimateWarning  # noqa: E402
from maxent_gan.inference.estimators import log_z_importance  # noqa: E402
from maxent_gan.inference.proposals import GaussianMixture  # noqa: E402
from maxent_gan.models import make_problem  # noqa: E402
from maxent_gan.models.toys import TOYS  # noqa: E402

CASES = [("one mode dropped", 0, 1.0), ("one mode dropped, widened 1.3x", 0, 1.3), ("exact", None, 1.0),
         ("widened 1.3x", None, 1.3), ("narrowed 0.8x", None, 0.8)]
SEEDS = range(5)


def main() -> None:
    target = make_problem("8gaussians").target
    locs, scales = (np.asarray(a) for a in TOYS["8gaussians"]())
    rows = []
    for label, drop, widen in CASES:
        keep = [k for k in range(len(locs)) if k != drop]
        q = GaussianMixture(np.ones(len(keep)), locs[keep], np.stack([np.eye(2) * widen * scales[k] for k in keep]))
        for seed in SEEDS:
            x, log_q = q.sample_and_log_prob(jax.random.key(seed), 10_000)
            points = target.sample(jax.random.key(100 + seed), (2000,))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnreliableEstimateWarning)
                estimate = log_z_importance(target.cost(x), log_q, cost_data=target.cost(points),
                                            log_q_data=q.log_prob(points))
            rows.append({
                "case": label, "seed": seed,
                "error": float(estimate.log_z - target.log_normalizer),
                "k_hat": float(estimate.k_hat), "ess": float(estimate.ess),
                "forward_k_hat": float(estimate.forward.k_hat), "forward_ess": float(estimate.forward.ess),
                "forward_error": float(estimate.forward.log_z_upper - target.log_normalizer),
                "flagged": not estimate.reliable, "reasons": estimate.unreliable_reasons(),
            })
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "forward_check.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["# The forward check on 8gaussians (10 000 draws of q, 2000 exact draws, seeds 0-4)", "",
             "| case | seed | error (nats) | k-hat | ESS | forward k-hat | forward ESS | forward error | flagged |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['seed']} | {r['error']:+.3f} | {r['k_hat']:.2f} | {r['ess']:.0f} | "
                     f"{r['forward_k_hat']:.2f} | {r['forward_ess']:.0f} | {r['forward_error']:+.3f} | "
                     f"{'yes' if r['flagged'] else 'no'} |")
    wrong = [r for r in rows if abs(r["error"]) > 0.1]
    lines += ["", f"Estimates more than 0.1 nats off: {len(wrong)}, of which unflagged: "
              f"{sum(not r['flagged'] for r in wrong)}. Flagged although within 0.1 nats: "
              f"{sum(r['flagged'] and abs(r['error']) <= 0.1 for r in rows)} of "
              f"{sum(abs(r['error']) <= 0.1 for r in rows)}.", ""]
    (out / "forward_check.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
