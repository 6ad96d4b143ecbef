"""The report of ``compare``: ``report.md`` for a reader who has not read the paper, ``summary.json``
and the figures, written into the run's folder."""

from __future__ import annotations

from pathlib import Path

from maxent_gan.inference.app.cross_check import CROSS_CHECK_NOISE_MULTIPLE, CROSS_CHECK_TOLERANCE, cross_check_reading
from maxent_gan.inference.app.plots import cost_maps, forest_figure, k_hat_figure
from maxent_gan.inference.app.recipes import RECIPES
from maxent_gan.inference.app.verdict import SHIFT_OK
from maxent_gan.inference.diagnostics import DRAW_SET_ERROR, K_HAT_FORWARD, K_HAT_UNRELIABLE, UNRELIABLE_FRACTION
from maxent_gan.inference.io import json_safe, save_figure, write_atomic, write_json
from maxent_gan.models.problem import Problem

__all__ = ["render_report", "write_outputs"]


def _description(name: str) -> str:
    recipe = RECIPES.get(name)
    return "a user-given proposal" if recipe is None else recipe.description


def render_report(summary: dict) -> str:
    """``report.md``: what was run, the posterior table against θ* and the exact posterior, diagnostics,
    verdicts, and the rules behind them, for a reader who has not read the paper."""
    names, truth = summary["theta_names"], summary["theta_true"]
    rows = summary["proposals"]
    s = summary["settings"]
    lines = [
        f"# Posterior cost estimates on {summary['problem']}",
        "",
        f"The question: given {summary.get('num_data', s['demos'])} demonstrations "
        + ("drawn from a known cost θ*" if truth is not None else "(your data; no θ* is known)")
        + ", what does the Bayesian "
        "posterior over the cost weights say, and does it stay right when the normalizer Z(θ) (a sum over every "
        "possible trajectory or point) has to be estimated by importance sampling with a proposal? Each row "
        f"below is one posterior (NUTS, {s['num_chains']} chains x {s['num_samples']} draws after "
        f"{s['num_warmup']} warm-up{', a dense mass matrix' if s.get('dense_mass') else ''}, key {summary['key']}); every proposal stands in for Z(θ) through "
        f"{s['num_draws']} draws fixed once (common random numbers).",
        "",
        "Proposals:",
        "",
        *[f"- `{name}`: {_description(name)}"
          + (f". **Not a trained result: {row['training_stopped']}.**" if row.get("training_stopped") else "")
          for name, row in rows.items()],
        "",
        *(["Cost weights (θ):", "", *[f"- `{n}`: {d}" for n, d in zip(names, summary["theta_descriptions"],
                                                                       strict=True)], ""]
          if summary.get("theta_descriptions") else []),
        "## Posterior mean ± sd of each cost weight",
        "",
        "| proposal | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    if truth is not None:  # a user's problem without θ*: no truth row
        lines.append("| θ* (the truth) | " + " | ".join(f"{v:.3f}" for v in truth) + " |")
    for name, row in rows.items():
        cells = [f"{m:.3f} ± {sd:.3f}" for m, sd in zip(row["posterior_mean"], row["posterior_sd"], strict=True)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    training = summary.get("training", {})
    for name, theta in summary["learned_theta"].items():
        run = training.get(name, {})
        label = (f"{name}: where training STOPPED (step {run['steps']} of {run['requested']})" if run.get("stopped")
                 else f"{name}: point estimate")
        lines.append(f"| {label} | " + " | ".join(f"{v:.3f}" for v in theta) + " |")
    if summary["learned_theta"]:
        lines += ["", "The point-estimate rows are the θ each sampler's training run ended at (no posterior): "
                  "the sampler was trained there and then held fixed for the posterior."]
        stopped = [name for name, run in training.items() if run.get("stopped")]
        if stopped:
            lines += ["", "**Training stopped early** for " + ", ".join(f"`{name}`" for name in stopped) + ": "
                      + "; ".join(f"{name} at step {training[name]['steps']} of {training[name]['requested']} "
                                  f"({training[name]['stopped']})" for name in stopped)
                      + ". Those samplers were not trained as asked; the rows built on them are flagged."]
    lines += [
        "",
        "## Diagnostics",
        "",
        "| proposal | shift from exact (max, sd) | k-hat median / 95% | forward k-hat median | draws unreliable "
        "(in the tails) | forward check fails | draw-set error (sd) | median ESS | R-hat max | divergences "
        "| seconds (of which training) | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        shift = row.get("shift_max_sd")
        fraction, tails = row.get("unreliable_fraction"), row.get("unreliable_in_tails")
        forward = row.get("forward_unreliable_fraction")
        rhat = row["rhat_max"]
        rhat_text = "n/a" if rhat is None else f"{rhat:.3f}" + (" (chains disagree)" if rhat > 1.01 else "")
        lines.append(
            f"| {name} | {'n/a' if shift is None else f'{shift:.2f}'} | {_fmt(row['k_hat_median'])} / "
            f"{_fmt(row.get('k_hat_p95'))} | {_fmt(row.get('forward_k_hat_median'))} | "
            f"{'n/a' if fraction is None else f'{100 * fraction:.0f}%'}"
            f"{'' if tails is None else f' ({100 * tails:.0f}%)'} | "
            f"{'n/a' if forward is None else f'{100 * forward:.0f}%'} | {_fmt(row.get('draw_set_error'))} | "
            f"{_fmt(row['ess_median'], '.0f')} | "
            f"{rhat_text} | {row['divergences']} | {row['seconds']:.1f} ({row['train_seconds']:.1f}) | "
            f"{row['verdict']} |"
        )
    checked = {name: row["cross_check"] for name, row in rows.items() if row.get("cross_check")}
    if checked:
        lines += [
            "",
            "## Cross-check where no exact log Z exists",
            "",
            f"At {next(iter(checked.values()))['thetas']} posterior draws spread along the posterior's first principal "
            "axis, log Ẑ(θ) as the posterior used it against adaptive tempered SMC started at the same proposal "
            f"({next(iter(checked.values()))['particles']} particles, HMC moves toward p_θ; "
            "`maxent_gan.inference.app.cross_check`). A constant offset does not move a posterior; what is left after "
            f"it, above {CROSS_CHECK_TOLERANCE} nats, flags the row unless SMC's own run-to-run variation explains "
            f"it (more than {CROSS_CHECK_TOLERANCE} plus {CROSS_CHECK_NOISE_MULTIPLE:g} times that sd, measured by a "
            "second SMC run at a few of the draws): then the check is inconclusive and says so (more particles would "
            "tell), and the other checks decide. Where SMC's own rule flags it at more than half the draws (most "
            "often because the proposal misses mass the data visit, which the bridge cannot find; then no bridge "
            "is run), the check cannot vouch for log Ẑ(θ), and the row is flagged.",
            "",
            "| proposal | largest difference (nats) | beyond the common offset (nats) | SMC's run-to-run sd (nats) | "
            "SMC runs its own rule flags | reading |",
            "|---|---|---|---|---|---|",
            *[f"| {name} | {_fmt(c['max_difference'], '.3f')} | {_fmt(c['spread'], '.3f')} | "
              f"{_fmt(c.get('smc_noise'), '.3f')} | {c['smc_unreliable']} of {c['thetas']} | {cross_check_reading(c)} |"
              for name, c in checked.items()],
        ]
    lines += [
        "",
        "How to read it:",
        "",
        f"- **shift**: the largest |posterior mean − exact posterior mean| over the weights, in exact-posterior "
        f"sd. Up to {SHIFT_OK} sd \"agrees\", up to 1 \"slightly off\", up to 5 \"off\", beyond that \"far off\".",
        f"- **k-hat** (Pareto k̂, Vehtari et al.): the tail of the proposal's importance weights at each posterior "
        f"draw; above {K_HAT_UNRELIABLE} the estimate of Z(θ) rests on a few draws (for a row estimated with control "
        "variates its ESS is that of the controlled weights, the summands of its estimate). The **forward k-hat** is the "
        "same log-ratio over the demonstrations themselves: it sees trajectories the proposal never draws.",
        "- **draws unreliable**: the share of posterior draws whose log Ẑ(θ) breaks the library's per-draw rule "
        f"(k-hat > {K_HAT_UNRELIABLE}, ESS < min(100, n/10), or the forward check: ESS < min(100, m/10) or k-hat "
        f"> {K_HAT_FORWARD:.2f}; `maxent_gan.inference.diagnostics`); in brackets the share of those beyond 2 sd of "
        "the posterior mean (its tails). It says where the estimate is weak; what that does to the posterior is "
        "the draw-set error's to measure.",
        "- **forward check fails**: the share of draws where the proposal misses mass of p_θ that the "
        f"demonstrations visit, an error every set of proposal draws shares. Above {100 * UNRELIABLE_FRACTION:.0f}% "
        "the posterior is flagged.",
        "- **draw-set error**: the posterior's draws reweighted to 3 other, independent sets of as many proposal "
        "draws (the log joint under each minus the one sampled); twice the spread of a posterior mean over the "
        f"sets, in posterior sd, at the worst weight. Above {DRAW_SET_ERROR:g} sd, or a reweighting ESS below "
        "min(100, n/10), the posterior is flagged: each draw's Ẑ(θ) can pass while the error's slope across θ, "
        "times the number of demonstrations, moves the posterior.",
        "- **R-hat** above 1.01 means the NUTS chains disagree: run longer before reading the row.",
        "- **seconds**: the whole row; in brackets the part spent training the sampler first.",
        "",
        "Figures: `figures/forest.png` (θ under every proposal, θ* marked), `figures/k_hat.png` (k-hat per "
        "posterior draw, log scale)"
        + (", `figures/costs.png` (the posterior-mean cost minus the true cost, per state)"
           if summary.get("cost_maps") else "") + ".",
        "",
    ]
    return "\n".join(lines)


def _fmt(value, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def write_outputs(out: Path, problem: Problem, summary: dict, idatas: dict, data) -> None:
    # figures are matplotlib Figure objects, not pyplot's: no backend is chosen or switched for the user
    figures = out / "figures"
    save_figure(forest_figure(problem.family, summary, idatas, order=tuple(RECIPES)), figures / "forest.png")
    save_figure(k_hat_figure(summary, idatas), figures / "k_hat.png")
    if summary["cost_maps"]:
        save_figure(cost_maps(problem.space, summary), figures / "costs.png")
    write_atomic(out / "report.md", render_report(summary))
    write_json(out / "summary.json", json_safe(summary))  # undefined statistics (R-hat of one chain) as null
