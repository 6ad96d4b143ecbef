"""Does the verdict read right? ``compare`` over a fixed grid of problems with an exact log Z(θ), seeds and
proposals, each row's shift from the exact posterior against whether the rule flags it.

For every posterior draw the exact log Z(θ) is known here, so beside the shift of the two NUTS runs (which
carries both runs' Monte Carlo error) the benchmark measures the shift the estimator's error *causes*: the
handler's posterior is the exact one times :math:`e^{-N(\\log\\hat Z(\\theta) - \\log Z(\\theta))}` (N
observations, each with its own normalizer), so reweighting its draws by :math:`e^{N\\,\\epsilon(\\theta)}`,
:math:`\\epsilon = \\log\\hat Z - \\log Z`, gives the exact posterior's means from the same draws
(``shift_reweighted``; ``reweight_ess`` says how far to trust it). The per-draw statistics the rule could use
are kept with the runs (``--runs``, not committed), so candidate rules can be scored without rerunning.

    python benchmarks/verdict.py [--problems gridworld lqr gaussian rings] [--seeds 0 1 2 3 4]
        # resumable: a (problem, seed) whose run folder holds summary.json is read, not rerun;
        # writes benchmarks/results/verdict.{md,json} after every run
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import arviz as az  # noqa: E402
import numpy as np  # noqa: E402
from maxent_gan.inference.app.compare import CompareSettings, compare  # noqa: E402
from maxent_gan.inference.diagnostics import ForwardCheck, draw_set_error, forward_reasons, posterior_reasons  # noqa: E402
from maxent_gan.inference.io import write_atomic  # noqa: E402
from maxent_gan.models.problems import make_problem  # noqa: E402
from maxent_gan.models.spaces import Points  # noqa: E402

PROBLEMS = ("gridworld", "lqr", "gaussian", "rings")
# on points the θ-following rows move every proposal draw with θ through a conditional flow inside NUTS: at
# compare's defaults (16 000 draws, 4 chains x 1000 steps) one such row ran over 13 minutes on 2 cores, so
# the point families run with fewer draws and chains here (the rule is judged at the settings it is given)
POINT_SETTINGS = CompareSettings(num_draws=4000, num_warmup=300, num_samples=500, num_chains=2)
PROPOSALS = ("exact", "broad", "gcl", "gan", "gcl-follow", "gan-follow")
TRUTH = 0.1  # a row more than this many exact-posterior sd off is wrong (the line)
HERE = Path(__file__).parent


def _per_draw(problem, idata: az.InferenceData, num_data: int) -> dict:
    """Per posterior draw: θ (flattened), the log Ẑ the handler used, the exact log Z, the per-draw checks."""
    family = problem.family
    draws = family.flatten(idata.posterior)
    flat = draws.reshape(-1, draws.shape[-1])
    exact_fn = jax.jit(lambda sites: family.log_partition_fn(family.from_sites(sites)))
    exact = np.array([float(exact_fn(family.unflatten(row))) for row in flat])
    stats = idata.sample_stats
    out = {"theta": flat, "log_z_exact": exact, "num_data": num_data}
    for name in ("log_z", "log_z_k_hat", "log_z_ess", "log_z_forward_k_hat", "log_z_forward_ess", "log_z_reliable"):
        if name in stats:
            out[name] = np.asarray(stats[name].values, np.float64).reshape(-1)
    return out


def _judge(path: Path, num_data: int) -> str:
    """The rule for a posterior, as the library now states it, over a stored run's per-draw statistics
    (runs made before the forward share was stored get it from the forward k-hat and ESS)."""
    idata = az.from_netcdf(path)
    stats = idata.sample_stats
    if "log_z_forward_reliable" in stats:
        forward_ok = np.asarray(stats["log_z_forward_reliable"].values).reshape(-1) > 0.5
    else:
        forward_ok = np.array([not forward_reasons(ForwardCheck(np.nan, fe, fk, np.empty(num_data)))
                               for fk, fe in zip(np.ravel(stats["log_z_forward_k_hat"].values),
                                                 np.ravel(stats["log_z_forward_ess"].values), strict=True)])
    samples = {v: idata.posterior[v].values for v in idata.posterior.data_vars}
    draw_set = draw_set_error(samples, stats["draw_set_log_ratio"].values)
    return "; ".join(posterior_reasons(draw_set, float(np.mean(~forward_ok))))


def _reweighted_shift(per_draw: dict, sd_exact: np.ndarray) -> tuple[float, float]:
    """The shift of the posterior means that the estimator's error causes, from the row's own draws, in exact sd;
    and the ESS of that reweighting."""
    if "log_z" not in per_draw:
        return 0.0, float(len(per_draw["log_z_exact"]))
    error = per_draw["log_z"] - per_draw["log_z_exact"]
    log_w = per_draw["num_data"] * error
    if not np.all(np.isfinite(log_w)):
        return float("inf"), 0.0
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    theta = per_draw["theta"]
    moved = np.abs(w @ theta - theta.mean(0)) / sd_exact
    return float(moved.max()), float(1.0 / np.sum(w**2))


def run_one(problem_name: str, seed: int, runs: Path, proposals: tuple[str, ...], settings: CompareSettings) -> list[dict]:
    folder = runs / f"{problem_name}_{seed}"
    problem = make_problem(problem_name)
    if isinstance(problem.space, Points) and settings == CompareSettings():
        settings = POINT_SETTINGS
    if not (folder / "summary.json").exists():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the rule's verdicts are in the rows
            compare(problem, proposals, settings=settings, key=jax.random.key(seed), out=folder, force=True)
        print(f"{problem_name} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    summary = json.loads((folder / "summary.json").read_text())
    sd_exact = np.asarray(summary["proposals"]["exact"]["posterior_sd"])
    rows = []
    for name, row in summary["proposals"].items():
        if name == "exact":
            continue
        cached = folder / f"draws_{name}.npz"
        if cached.exists():
            with np.load(cached) as stored:
                per_draw = {key: stored[key] for key in stored.files}
        else:
            per_draw = _per_draw(problem, az.from_netcdf(folder / f"posterior_{name}.nc"), summary["num_data"])
            np.savez(cached, **per_draw)
        shift_reweighted, reweight_ess = _reweighted_shift(per_draw, sd_exact)
        reasons = _judge(folder / f"posterior_{name}.nc", summary["num_data"])  # the rule as it is now
        rows.append({
            "problem": problem_name, "seed": seed, "proposal": name, "num_data": summary["num_data"],
            "shift": row["shift_max_sd"], "shift_reweighted": shift_reweighted, "reweight_ess": reweight_ess,
            "flagged": bool(reasons) or bool(row.get("training_stopped")), "reasons": reasons,
            "flagged_before": bool(row.get("unreliable_reasons")) or bool(row.get("training_stopped")),
            "unreliable_fraction": row.get("unreliable_fraction"), "draw_set_error": row.get("draw_set_error"),
            "k_hat_median": row.get("k_hat_median"), "k_hat_p95": row.get("k_hat_p95"),
            "log_z_error_sd": float(np.std(per_draw["log_z"] - per_draw["log_z_exact"])) if "log_z" in per_draw else 0.0,
            "seconds": row["seconds"],
        })
    return rows


def confusion(rows: list[dict], key: str = "shift", flag: str = "flagged") -> dict:
    wrong = [r for r in rows if r[key] > TRUTH]
    right = [r for r in rows if r[key] <= TRUTH]
    return {"wrong_flagged": sum(r[flag] for r in wrong), "wrong_unflagged": sum(not r[flag] for r in wrong),
            "right_flagged": sum(r[flag] for r in right), "right_unflagged": sum(not r[flag] for r in right)}


def render(rows: list[dict], note: str) -> str:
    def f(v, fmt="{:.2f}"):
        return "–" if v is None else fmt.format(v)

    lines = ["# Does the verdict read right?", "", note, "",
             f"Truth: a row is *wrong* when its posterior mean is more than {TRUTH} exact-posterior sd from the exact "
             "one. Two measures: `shift` (this row's NUTS run against the exact normalizer's: both runs' Monte Carlo "
             "error included) and `reweighted` (the shift the estimator's error causes, from this row's own draws "
             "reweighted by exp(N (log Ẑ − log Z)); `ESS` of that reweighting).", ""]
    for key, label, flag in (("shift_reweighted", "the caused shift (reweighted), the rule now", "flagged"),
                             ("shift", "the two-run shift, the rule now", "flagged"),
                             ("shift_reweighted", "the caused shift, the rule before (any 5 % of draws failing "
                              "the per-draw checks flagged)", "flagged_before")):
        c = confusion(rows, key, flag)
        right = c["right_flagged"] + c["right_unflagged"]
        lines += [f"**By {label}** ({len(rows)} rows): wrong and flagged {c['wrong_flagged']}, "
                  f"**wrong and not flagged {c['wrong_unflagged']}**, right and flagged {c['right_flagged']}, "
                  f"right and not flagged {c['right_unflagged']}"
                  + (f" ({c['right_unflagged'] / right:.0%} of the right rows unflagged)." if right else "."), ""]
    lines += ["| problem | seed | proposal | shift (sd) | reweighted (sd) | reweight ESS | flagged | unreliable draws "
              "| draw-set error (sd) | k-hat p95 | sd of log Ẑ error | reasons |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['problem']} | {r['seed']} | {r['proposal']} | {f(r['shift'])} | {f(r['shift_reweighted'])} "
                     f"| {f(r['reweight_ess'], '{:.0f}')} | {'yes' if r['flagged'] else 'no'} "
                     f"| {f(r['unreliable_fraction'], '{:.1%}')} | {f(r['draw_set_error'])} | {f(r['k_hat_p95'])} "
                     f"| {f(r['log_z_error_sd'], '{:.3f}')} | {r['reasons'][:120]} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", nargs="*", default=list(PROBLEMS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--proposals", nargs="*", default=list(PROPOSALS))
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "verdict")
    parser.add_argument("--note", default="")
    parser.add_argument("--quick", action="store_true", help="compare's --quick sizes (a smoke run of this script)")
    args = parser.parse_args()
    settings = CompareSettings.quick() if args.quick else CompareSettings()
    out = HERE / "results"
    for seed in args.seeds:  # seeds outermost: a partial table covers every problem
        for problem in args.problems:
            run_one(problem, seed, args.runs, tuple(args.proposals), settings)
            # the table covers every finished run in the folder, this invocation's and earlier ones
            done = sorted((folder.name.rsplit("_", 1) for folder in args.runs.glob("*_*")
                           if (folder / "summary.json").exists()),
                          key=lambda pair: (PROBLEMS.index(pair[0]) if pair[0] in PROBLEMS else 99, int(pair[1])))
            rows = [row for name, done_seed in done
                    for row in run_one(name, int(done_seed), args.runs, tuple(args.proposals), settings)]
            seeds = sorted({row["seed"] for row in rows})
            write_atomic(out / "verdict.json", json.dumps(rows, indent=1))
            write_atomic(out / "verdict.md", render(rows, args.note or (
                "compare at its defaults (CompareSettings()) on trajectories, on points with "
                f"{POINT_SETTINGS.num_draws} proposal draws and {POINT_SETTINGS.num_chains} chains x "
                f"{POINT_SETTINGS.num_samples} draws; the runs finished so far: seeds {seeds}.")))


if __name__ == "__main__":
    main()
