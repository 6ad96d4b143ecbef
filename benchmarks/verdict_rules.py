"""Candidate rules for a posterior's verdict, scored offline on the runs of ``benchmarks/verdict.py``.

Each rule sees only what a user has (the per-draw checks, the draw-set log ratios, the draws); the truth is
the shift the estimator's error causes (``shift_reweighted`` of ``results/verdict.json``, the exact log Z at
every draw) and the two-run shift. Prints, per rule, the confusion table against "more than 0.1 sd off".

    python benchmarks/verdict_rules.py [--runs benchmarks/runs/verdict]   # writes results/verdict_rules.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import arviz as az
import numpy as np
from maxent_gan.inference.diagnostics import (
    DRAW_SET_ERROR,
    K_HAT_FORWARD,
    K_HAT_UNRELIABLE,
    UNRELIABLE_FRACTION,
    draw_set_error,
    min_ess,
)
from maxent_gan.inference.io import write_atomic

HERE = Path(__file__).parent
TRUTH = 0.1


def _features(folder: Path, name: str, num_draws: int) -> dict:
    idata = az.from_netcdf(folder / f"posterior_{name}.nc")
    stats = idata.sample_stats
    theta = np.concatenate([np.asarray(idata.posterior[v].values).reshape(-1, int(np.prod(
        idata.posterior[v].shape[2:], dtype=int))) for v in idata.posterior.data_vars], axis=1)
    flat = {k: np.asarray(stats[k].values, np.float64).reshape(-1)
            for k in ("log_z_k_hat", "log_z_ess", "log_z_forward_k_hat", "log_z_forward_ess", "log_z_reliable")}
    reverse_bad = ~(flat["log_z_k_hat"] <= K_HAT_UNRELIABLE) | (flat["log_z_ess"] < min_ess(num_draws))
    forward_bad = ~(flat["log_z_forward_k_hat"] <= K_HAT_FORWARD)
    severe = ~(flat["log_z_k_hat"] <= 1.0) | (flat["log_z_ess"] < min_ess(num_draws))
    reliable = flat["log_z_reliable"] > 0.5
    sd = theta.std(0)
    drop = np.max(np.abs(theta.mean(0) - theta[reliable].mean(0)) / sd) if reliable.any() else np.inf
    ratios = np.asarray(stats["draw_set_log_ratio"].values)
    check = draw_set_error({"theta": theta.reshape(ratios.shape[:2] + theta.shape[1:])}, ratios)
    return {"unreliable": 1 - reliable.mean(), "reverse_bad": reverse_bad.mean(), "forward_bad": forward_bad.mean(),
            "severe": severe.mean(), "drop_shift": float(drop), "draw_set_error": check.error,
            "draw_set_low_ess": check.ess < min_ess(check.num)}


RULES = {
    "before: 5 % of draws failing points 1-3, or point 5": lambda f: f["unreliable"] > UNRELIABLE_FRACTION or f["draw_set_error"] > DRAW_SET_ERROR
    or f["draw_set_low_ess"],
    "point 5 alone (draw sets)": lambda f: f["draw_set_error"] > DRAW_SET_ERROR or f["draw_set_low_ess"],
    "point 5 + forward share (the rule now)": lambda f: f["draw_set_error"] > DRAW_SET_ERROR or f["draw_set_low_ess"]
    or f["forward_bad"] > UNRELIABLE_FRACTION,
    "point 5 + severe share (k-hat > 1)": lambda f: f["draw_set_error"] > DRAW_SET_ERROR or f["draw_set_low_ess"]
    or f["severe"] > UNRELIABLE_FRACTION or f["forward_bad"] > UNRELIABLE_FRACTION,
    "point 5 + what the failing draws move": lambda f: f["draw_set_error"] > DRAW_SET_ERROR or f["draw_set_low_ess"]
    or f["drop_shift"] > DRAW_SET_ERROR,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "verdict")
    args = parser.parse_args()
    rows = json.loads((HERE / "results" / "verdict.json").read_text())
    for row in rows:
        folder = args.runs / f"{row['problem']}_{row['seed']}"
        settings = json.loads((folder / "summary.json").read_text())["settings"]
        row.update(_features(folder, row["proposal"], settings["num_draws"]))
    lines = ["# Candidate verdict rules, scored on the verdict benchmark's runs", "",
             f"{len(rows)} rows; wrong: more than {TRUTH} exact-posterior sd off. Each cell: wrong and not flagged "
             "(the worst outcome) / right and flagged (a right estimate labelled unreliable) / right and unflagged.", "",
             "| rule | by the caused shift (reweighted) | by the two-run shift |", "|---|---|---|"]
    for label, rule in RULES.items():
        cells = []
        for key in ("shift_reweighted", "shift"):
            wrong_unflagged = sum(r[key] > TRUTH and not rule(r) for r in rows)
            right_flagged = sum(r[key] <= TRUTH and rule(r) for r in rows)
            right = sum(r[key] <= TRUTH for r in rows)
            cells.append(f"{wrong_unflagged} / {right_flagged} / {right - right_flagged} of {right}")
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    lines += ["", "| problem | seed | proposal | caused shift | shift | unreliable | reverse | forward | k-hat > 1 "
              "| failing draws move (sd) | draw-set error |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['problem']} | {r['seed']} | {r['proposal']} | {r['shift_reweighted']:.2f} | {r['shift']:.2f} "
                     f"| {r['unreliable']:.1%} | {r['reverse_bad']:.1%} | {r['forward_bad']:.1%} | {r['severe']:.1%} "
                     f"| {r['drop_shift']:.2f} | {r['draw_set_error']:.2f} |")
    text = "\n".join(lines) + "\n"
    write_atomic(HERE / "results" / "verdict_rules.md", text)
    print(text)


if __name__ == "__main__":
    main()
