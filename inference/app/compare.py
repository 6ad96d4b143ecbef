"""The main job: posterior cost estimates under several proposals, against the exact-normalizer
posterior (``maxent-gan compare``).

For one problem: draw demonstrations (or data) from a known θ*, train the learned samplers
(GCL, GAN form), run NUTS on the model under each proposal's normalizing handler (and under the
exact normalizer, the gold standard), and write ``report.md``, ``figures/*.png``,
``posterior_<proposal>.nc`` and ``summary.json`` (all atomically, after the names are checked).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
from maxent_gan.inference.diagnostics import (
    DRAW_SET_ERROR,
    K_HAT_FORWARD,
    K_HAT_UNRELIABLE,
    UNRELIABLE_FRACTION,
    UnreliableEstimateWarning,
    posterior_reasons,
)
from maxent_gan.inference.ebm import train_ebm
from maxent_gan.inference.io import finite_or_none, json_safe, save_figure, staged_out_dir, write_atomic, write_json
from maxent_gan.inference.posterior import sample_posterior, save_posterior
from maxent_gan.inference.proposals import AnchorMixture
from maxent_gan.inference.spaces import broad_proposal, follow_theta, sampler_rates, warm_start
from maxent_gan.models._validation import check_positive_int
from maxent_gan.models.problem import CostFamily
from maxent_gan.models.problems import Problem, make_problem
from maxent_gan.models.spaces import TabularTrajectories
from tqdm.auto import tqdm

__all__ = ["COMPARE_PROBLEMS", "CompareSettings", "check_compare_args", "compare", "compare_proposal_names"]

# the built-in problems whose family has an exact normalizer (the gold standard row); any problem with a
# cost family is accepted (pointmass, a user's own), these are listed in help and errors
COMPARE_PROBLEMS = ("gridworld", "lqr", "gaussian", "rings", "8gaussians", "moons", "checkerboard", "pinwheel")
SHIFT_OK = 0.2  # |posterior mean - exact posterior mean| in exact-posterior sd: 'agrees' up to this


@dataclass(frozen=True)
class CompareSettings:
    """Sizes of one comparison; :meth:`quick` is the ``--quick`` preset (a smoke run in well under 3 minutes)."""

    demos: int = 100
    train_steps: int = 1500
    num_draws: int = 16_000
    num_warmup: int = 500
    num_samples: int = 500
    num_chains: int = 4
    anchor_steps: int = 500  # sampler steps at each anchor of the θ-following samplers

    @classmethod
    def quick(cls, **changes) -> CompareSettings:
        return replace(cls(train_steps=300, num_draws=4000, num_warmup=200, num_samples=200, num_chains=2,
                           anchor_steps=150),
                       **changes)


def _problem(problem: str | Problem) -> Problem:
    """A problem with a cost family (its posterior is what ``compare`` samples); names are checked here."""
    problem = make_problem(problem) if isinstance(problem, str) else problem
    if problem.family is None:
        raise ValueError(f"problem: {problem.name} has no cost family whose posterior compare could sample; "
                         f"valid built-in problems: {', '.join(COMPARE_PROBLEMS)}, or your own problem "
                         "(maxent_gan.models.builders, or a .npz file)")
    return problem


def compare_proposal_names(problem: str | Problem) -> tuple[str, ...]:
    """``exact`` (the exact normalizer, where the family has one), ``broad`` (the space's broad proposal), ``cloned`` (fitted to
    the data: behaviour cloning, or a flow by maximum likelihood), ``gcl`` and ``gan`` (the samplers the two
    training methods learn, fixed at θ̂), ``gcl-follow`` and ``gan-follow`` (proposals that follow θ, built
    from the fixed sampler's pilot posterior: the sampler refitted at anchors on trajectories, a
    θ-conditional flow on points; :func:`maxent_gan.inference.spaces.follow_theta`)."""
    problem = _problem(problem)
    exact = ("exact",) if problem.family.log_partition_fn is not None else ()
    return (*exact, "broad", "gcl", "gan", "gcl-follow", "gan-follow", "cloned")


DEFAULT_PROPOSALS = ("exact", "gcl", "gan", "gcl-follow", "gan-follow")


def default_proposals(problem: str | Problem) -> tuple[str, ...]:
    """:data:`DEFAULT_PROPOSALS` less those the problem cannot have (``exact`` without an exact log Z(θ))."""
    valid = compare_proposal_names(problem)
    return tuple(name for name in DEFAULT_PROPOSALS if name in valid)


def check_compare_args(problem: str | Problem, proposals: tuple[str, ...], settings: CompareSettings) -> Problem:
    """Names and sizes, checked before any work (the errors list the valid names); returns the problem."""
    problem = _problem(problem)
    valid = compare_proposal_names(problem)
    if not proposals:
        raise ValueError(f"proposals: empty; valid: {', '.join(valid)}")
    for name in proposals:
        if name == "exact" and name not in valid:
            raise ValueError(f"proposals: 'exact' needs the exact log Z(θ) of the family, which {problem.name} does "
                             f"not have (no log_partition_fn); valid: {', '.join(valid)}")
        if name not in valid:
            raise ValueError(f"proposals: unknown name {name!r} for {problem.name}; valid: {', '.join(valid)}")
    if len(set(proposals)) != len(proposals):
        raise ValueError(f"proposals: a name is repeated in {','.join(proposals)}")
    for field in ("demos", "train_steps", "num_draws", "num_warmup", "num_samples", "num_chains",
                  "anchor_steps"):
        check_positive_int(field.replace("_", "-"), getattr(settings, field))
    if settings.demos < 2:
        raise ValueError(f"demos: expected at least 2, got {settings.demos}")
    return problem


def _train(problem: Problem, method: str, key: jax.Array, data, test, steps: int) -> tuple[Any, Any, dict]:
    """θ̂, the sampler and what happened (steps done, requested, why it stopped or ``None``) of one training
    run of the cost family (the one training assembly,
    ``maxent_gan.inference.ebm``; tabular samplers with transition tilts, the family that contains p_θ)."""
    with warnings.catch_warnings():  # its log Z evaluations at θ̂ are not the product here
        warnings.simplefilter("ignore", UnreliableEstimateWarning)
        run = train_ebm(problem, method, steps=steps, seed=int(jax.random.randint(key, (), 0, 2**31 - 1)),
                        data=(data, test), tilted=True, parametric=True, flow_epochs=50, evaluate=False, progress=False)
    training = {"steps": run.result.steps_done, "requested": steps, "stopped": run.result.stopped}
    return run.result.state.energy, run.result.state.proposal, training


def _chain_method(num_chains: int) -> str:
    return "parallel" if 1 < num_chains <= jax.local_device_count() else "vectorized"


def compare(
    problem: str | Problem = "gridworld",
    proposals: tuple[str, ...] | None = None,
    *,
    settings: CompareSettings | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    force: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Posterior of θ under each proposal; returns the summary (and writes the outputs when ``out`` is given).

    ``proposals=None``: :func:`default_proposals` (the default set the problem supports).

    Each proposal's posterior uses the normalizing handler with that proposal's fixed draws;
    ``exact`` uses the exact normalizer. The samplers ``gcl`` and ``gan`` are trained on the same
    demonstrations first (for tabular problems, samplers with transition tilts, the family that
    contains :math:`p_\\theta`).
    """
    settings = settings or CompareSettings()
    problem = _problem(problem)
    proposals = default_proposals(problem) if proposals is None else tuple(proposals)
    problem = check_compare_args(problem, proposals, settings)
    family, space = problem.family, problem.space
    # a fresh folder beside --out, swapped in when complete: --out never mixes two runs' files, and an
    # error or interrupt leaves it as it was
    with staged_out_dir(out, force=force) as out:
        key_data, key_train, key_post = jax.random.split(jax.random.key(seed), 3)
        data, test = problem.data(key_data, settings.demos, 1000)
        if problem.data_fixed:  # a user's demonstrations: the posterior conditions on every one of them
            data = jnp.concatenate([data, test])
        results: dict[str, dict[str, Any]] = {}
        idatas: dict[str, az.InferenceData] = {}
        learned: dict[str, np.ndarray] = {}
        bar = tqdm(proposals, desc=f"compare on {problem.name}", disable=not progress)
        trained: dict[str, tuple[dict, Any, float]] = {}  # method -> (θ̂, its sampler, training seconds)
        training: dict[str, dict] = {}  # method -> steps done, requested, why it stopped (None: it did not)

        def run_nuts(proposal, estimator):
            return sample_posterior(
                family.model, data, key=key_post, proposal=proposal, estimator=estimator,
                num_draws=settings.num_draws, num_warmup=settings.num_warmup,
                num_samples=settings.num_samples, num_chains=settings.num_chains,
                chain_method=_chain_method(settings.num_chains),
            )

        for name in bar:
            start = time.perf_counter()
            train_seconds = 0.0
            method = name.removesuffix("-follow")
            if method in ("gcl", "gan"):
                bar.set_postfix_str(f"{name}: training its sampler")
                if method not in trained:
                    begin = time.perf_counter()
                    params, proposal, training[method] = _train(
                        problem, method, jax.random.fold_in(key_train, 2 + (method == "gan")), data, test,
                        settings.train_steps)
                    trained[method] = (params, proposal, time.perf_counter() - begin)
                params, proposal, train_seconds = trained[method]
                learned[method] = family.flatten(family.to_sites(params))
            if name == "exact":
                proposal, estimator = None, "exact"
            elif name == "broad":
                proposal, estimator = broad_proposal(space, jax.random.fold_in(key_train, 0)), "importance"
            elif name == "cloned":
                proposal = warm_start(space, jax.random.fold_in(key_train, 1), data, epochs=50)
                estimator = "importance"
            elif name in ("gcl", "gan"):
                estimator = "importance"
            else:  # θ-following: the sampler refitted at anchors spread over a pilot posterior
                bar.set_postfix_str(f"{name}: pilot posterior and anchors")
                begin = time.perf_counter()
                pilot = idatas.get(method)
                if pilot is None:
                    with warnings.catch_warnings():  # the pilot only places the anchors
                        warnings.simplefilter("ignore", UnreliableEstimateWarning)
                        pilot = run_nuts(proposal, "importance")
                proposal = _follow_theta(problem, proposal, pilot, settings.anchor_steps,
                                         jax.random.fold_in(key_train, 4 + (method == "gan")))
                # an anchor mixture: its components are control variates of the estimate
                estimator = "mis-cv" if isinstance(proposal, AnchorMixture) else "importance"
                train_seconds += time.perf_counter() - begin
            bar.set_postfix_str(f"{name}: NUTS")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UnreliableEstimateWarning)
                idata = run_nuts(proposal, estimator)
            for warning in caught:  # say which proposal's posterior the warning is about
                message = str(warning.message).replace("sample_posterior:", f"compare: the {name!r} posterior:", 1)
                warnings.warn(message, warning.category, stacklevel=2)
            idata.posterior.attrs["proposal"] = name
            dim = f"{family.sites[0]}_dim_0"
            if len(family.sites) == 1 and idata.posterior.sizes.get(dim) == len(family.theta_names):
                idata.posterior = idata.posterior.assign_coords({dim: list(family.theta_names)})  # forest plot labels
            idatas[name] = idata
            results[name] = _posterior_row(family, idata, time.perf_counter() - start, train_seconds)
            if method in training and training[method]["stopped"] is not None:
                results[name]["training_stopped"] = _stop_text(method, training[method])
            if out is not None:
                save_posterior(idata, out / f"posterior_{name}.nc")
        summary = {
            "problem": problem.name,
            "seed": seed,
            "settings": settings.__dict__,
            "num_data": int(data.shape[0]),  # a fixed data set (a user's) ignores settings.demos
            "theta_names": list(family.theta_names),
            "theta_descriptions": None if family.theta_descriptions is None else list(family.theta_descriptions),
            "theta_true": None if family.theta_true is None else family.flatten(family.to_sites(family.theta_true)).tolist(),
            "proposals": results,
            "learned_theta": {name: value.tolist() for name, value in learned.items()},
            "training": training,
            "cost_maps": _grid_shape(problem) is not None and family.theta_true is not None,
        }
        _add_verdicts(summary)
        if out is not None:
            _write_outputs(out, problem, summary, idatas, data)
        return summary


def _follow_theta(problem: Problem, proposal, pilot: az.InferenceData, steps: int, key: jax.Array):
    """The θ-following sampler built from the pilot posterior's draws, by the space's recipe
    (:func:`maxent_gan.inference.spaces.follow_theta`: anchors and a mixture on trajectories, a conditional
    flow on points)."""
    family = problem.family
    draws = family.flatten(pilot.posterior)
    draws = draws.reshape(-1, draws.shape[-1])
    space = problem.space
    cost_table = None
    if isinstance(space, TabularTrajectories):
        def cost_table(sites):
            return space.cost_table(family.from_sites(sites))
    return follow_theta(space, key, proposal, lambda sites, x: family.cost_fn(family.from_sites(sites), x),
                        jnp.asarray(draws), unflatten=family.unflatten, steps=steps,
                        rate=sampler_rates(space).refit, cost_table=cost_table)


def _finite_stat(stat, values: np.ndarray) -> float | None:
    # None when no draw has a finite value (the exact estimator has no draws: all NaN)
    return finite_or_none(stat(values)) if np.isfinite(values).any() else None


def _posterior_row(family: CostFamily, idata: az.InferenceData, seconds: float, train_seconds: float) -> dict:
    draws = family.flatten(idata.posterior)  # (chain, draw, k)
    rhat = az.rhat(idata, var_names=list(family.sites))
    stats = idata.sample_stats
    k_hat, ess = stats["log_z_k_hat"].values, stats["log_z_ess"].values
    return {
        "posterior_mean": draws.mean((0, 1)).tolist(),
        "posterior_sd": draws.std((0, 1)).tolist(),
        # NaN when undefined (one chain, or too few draws): null in summary.json
        "rhat_max": float(np.max([rhat[s].values.max() for s in family.sites])),
        "k_hat_median": _finite_stat(np.nanmedian, k_hat),
        "k_hat_p95": _finite_stat(lambda v: np.nanpercentile(v, 95), k_hat),
        "k_hat_max": _finite_stat(np.nanmax, k_hat),
        "forward_k_hat_median": _finite_stat(np.nanmedian, stats["log_z_forward_k_hat"].values),
        "forward_ess_median": _finite_stat(np.nanmedian, stats["log_z_forward_ess"].values),
        # the share of draws whose log Ẑ(θ) breaks the rule of maxent_gan.inference.diagnostics (None: exact, no draws)
        "unreliable_fraction": idata.posterior.attrs.get("unreliable_fraction"),
        # how far its set of proposal draws alone moves the posterior, in sd (None: exact)
        "draw_set_error": finite_or_none(idata.posterior.attrs.get("draw_set_error")),
        # the verdict of the rule for a posterior, as sample_posterior found it (None: exact)
        "unreliable_reasons": idata.posterior.attrs.get("unreliable_reasons"),
        "ess_median": _finite_stat(np.nanmedian, ess),
        "divergences": int(stats["diverging"].values.sum()),
        "seconds": seconds,
        "train_seconds": train_seconds,
    }


def _add_verdicts(summary: dict) -> None:
    """Shift of each posterior mean from the exact-normalizer posterior (in its sd), and a verdict in words."""
    rows = summary["proposals"]
    exact = rows.get("exact")
    for name, row in rows.items():
        if exact is not None:
            shift = np.abs(np.subtract(row["posterior_mean"], exact["posterior_mean"])) / np.asarray(exact["posterior_sd"])
            row["shift_max_sd"] = float(shift.max())
        row["verdict"] = _verdict(name, row, have_exact=exact is not None)


PROPOSAL_DESCRIPTIONS = {
    "exact": "the exact normalizer log Z(θ) (no proposal): the gold standard every other row is scored against",
    "broad": "a broad proposal (tabular: every action equally likely; continuous: a wide Gaussian policy or "
             "density), fixed before seeing the data",
    "cloned": "a sampler fitted to the demonstrations and then fixed (behaviour cloning for a policy, maximum "
              "likelihood for a flow on points)",
    "gcl": "the sampler trained by guided cost learning alongside the cost (the paper's sampler step), then fixed",
    "gan": "the sampler trained as the GAN form's generator alongside the cost, then fixed",
    "gcl-follow": "a proposal that follows θ, built from the gcl row's posterior (the pilot): on trajectories the gcl "
                  "sampler refitted by reverse KL at anchors spread over it (on a tabular problem by the exact gradient), mixed with "
                  "the balance heuristic, its components the control variates of the estimate (MIS with control variates, "
                  "Owen & Zhou 2000; ESS is then that of the controlled weights); on "
                  "points a θ-conditional flow q(x|θ) fitted over it, its draws moving with θ, mixed with the broad proposal "
                  "(weight 0.1, its draws fixed) so that no weight is unbounded where the flow extrapolates",
    "gan-follow": "a proposal that follows θ, built the same way from the gan row's posterior (the gan sampler "
                  "refitted at anchors on trajectories, a θ-conditional flow on points)",
}


def _grade(shift: float) -> str:
    if shift <= SHIFT_OK:
        return "agrees"
    if shift <= 1.0:
        return "slightly off"
    if shift <= 5.0:
        return "off"
    return "far off"


def _flag(row: dict) -> tuple[bool, str]:
    """Whether the rule of maxent_gan.inference.diagnostics flags this posterior, and how to say so."""
    fraction = row.get("unreliable_fraction")
    if fraction is None:  # no per-draw rule (older summaries): the median k-hat alone
        k_hat = row.get("k_hat_median")
        flagged = k_hat is None or k_hat > K_HAT_UNRELIABLE
        return flagged, "k-hat could not be estimated" if k_hat is None else f"median k-hat {k_hat:.2f}"
    reasons = row.get("unreliable_reasons")
    if reasons is None:  # summaries written before the rule for a posterior: point 4 alone
        reasons = "; ".join(posterior_reasons(fraction, None))
    if reasons:
        return True, reasons
    text = f"log Ẑ(θ) unreliable at {100 * fraction:.0f}% of the draws"
    if row.get("draw_set_error") is not None:
        text += f", its set of draws moves it up to {row['draw_set_error']:.2f} sd"
    return False, text


def _stop_text(method: str, training: dict) -> str:
    return (f"its {method} sampler's training stopped at step {training['steps']} of {training['requested']} "
            f"({training['stopped'].removeprefix('training stopped: ')})")


def _verdict(name: str, row: dict, *, have_exact: bool) -> str:
    if name == "exact":
        return "the gold standard: the exact log Z(θ) at every step"
    flagged, flag_text = _flag(row)
    if row.get("training_stopped"):  # a sampler that was never trained as asked: its row is not a result
        flagged, flag_text = True, row["training_stopped"] + (f"; {flag_text}" if flag_text else "")
    if not have_exact:
        return f"{flag_text}: " + ("flagged, do not trust this posterior" if flagged else
                                   "not flagged, as far as the diagnostics can see")
    shift = row["shift_max_sd"]
    grade = f"{_grade(shift)} ({shift:.2f} sd)"
    if shift <= SHIFT_OK:
        return f"{grade}; {flag_text}" + (": it agrees by luck, not by guarantee" if flagged else "")
    if flagged:
        return f"{grade}, and flagged: {flag_text}"
    return (f"{grade}, NOT flagged ({flag_text}): an error every set of draws shares, which neither the "
            "per-draw checks nor a second set of draws can see")


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
        f"{s['num_warmup']} warm-up, seed {summary['seed']}); every proposal stands in for Z(θ) through "
        f"{s['num_draws']} draws fixed once (common random numbers).",
        "",
        "Proposals:",
        "",
        *[f"- `{name}`: {PROPOSAL_DESCRIPTIONS.get(name, 'a user-given proposal')}"
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
        "| draw-set error (sd) | median ESS | R-hat max | divergences | seconds (of which training) | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        shift = row.get("shift_max_sd")
        fraction = row.get("unreliable_fraction")
        rhat = row["rhat_max"]
        rhat_text = "n/a" if rhat is None else f"{rhat:.3f}" + (" (chains disagree)" if rhat > 1.01 else "")
        lines.append(
            f"| {name} | {'n/a' if shift is None else f'{shift:.2f}'} | {_fmt(row['k_hat_median'])} / "
            f"{_fmt(row.get('k_hat_p95'))} | {_fmt(row.get('forward_k_hat_median'))} | "
            f"{'n/a' if fraction is None else f'{100 * fraction:.0f}%'} | {_fmt(row.get('draw_set_error'))} | "
            f"{_fmt(row['ess_median'], '.0f')} | "
            f"{rhat_text} | {row['divergences']} | {row['seconds']:.1f} ({row['train_seconds']:.1f}) | "
            f"{row['verdict']} |"
        )
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
        "- **draws unreliable**: the share of posterior draws whose log Ẑ(θ) breaks the library's one rule "
        f"(k-hat > {K_HAT_UNRELIABLE}, ESS < min(100, n/10), or the forward check: ESS < min(100, m/10) or k-hat "
        f"> {K_HAT_FORWARD:.2f}; `maxent_gan.inference.diagnostics`). Above {100 * UNRELIABLE_FRACTION:.0f}% the posterior is flagged.",
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


def _write_outputs(out: Path, problem: Problem, summary: dict, idatas: dict, data) -> None:
    # figures are matplotlib Figure objects, not pyplot's: no backend is chosen or switched for the user
    figures = out / "figures"
    save_figure(_forest_figure(problem.family, summary, idatas), figures / "forest.png")
    save_figure(_k_hat_figure(summary, idatas), figures / "k_hat.png")
    if summary["cost_maps"]:
        save_figure(_cost_maps(problem.space, summary), figures / "costs.png")
    write_atomic(out / "report.md", render_report(summary))
    write_json(out / "summary.json", json_safe(summary))  # undefined statistics (R-hat of one chain) as null


def _grid_shape(problem: Problem) -> tuple[int, int] | None:
    """``(rows, columns)`` of a tabular problem laid out on a grid (its costs can be drawn as maps), else None."""
    return getattr(problem.space, "grid_shape", None)


def _colors(names) -> dict[str, Any]:
    """One colour per proposal, the same in every figure (exact is black)."""
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    others = [n for n in PROPOSAL_DESCRIPTIONS if n != "exact"] + [n for n in names if n not in PROPOSAL_DESCRIPTIONS]
    return {name: "black" if name == "exact" else palette[others.index(name) % len(palette)] for name in names}


def _forest_figure(family: CostFamily, summary: dict, idatas: dict):
    """Per weight, each proposal's posterior mean and 94% interval; θ* a star on its own row; posteriors
    beyond the axis (set by the exact posterior) named in the figure instead of flattening the rest."""
    from matplotlib.figure import Figure

    names, weights = list(idatas), summary["theta_names"]
    colors = _colors(names)
    figure = Figure(figsize=(7, 1.0 + 0.32 * len(weights) * (len(names) + 1)))
    ax = figure.subplots()
    reference = summary["proposals"].get("exact")
    limits = None
    if reference is not None:
        mean, sd = np.asarray(reference["posterior_mean"]), np.asarray(reference["posterior_sd"])
        points = np.concatenate([mean - 8 * sd, mean + 8 * sd, summary["theta_true"] or []])
        limits = (points.min(), points.max())
    off_scale = []
    rows = _forest_rows(len(names), truth=summary["theta_true"] is not None)
    for j, weight in enumerate(weights):
        base = len(weights) - 1 - j
        if summary["theta_true"] is not None:
            ax.plot(summary["theta_true"][j], base + rows.truth, marker="*", color="gold", markeredgecolor="k",
                    ms=12, zorder=3, label="θ* (truth)" if j == 0 else None)
        for i, name in enumerate(names):
            draws = family.flatten(idatas[name].posterior)[..., j].ravel()
            low, high = np.quantile(draws, [0.03, 0.97])
            y = base + rows.proposals[i]
            if limits is not None and (draws.mean() < limits[0] or draws.mean() > limits[1]):
                off_scale.append(f"{name} on {weight}: {draws.mean():.4g}")
                continue
            ax.plot([low, high], [y, y], color=colors[name], lw=2)
            ax.plot(draws.mean(), y, "o", color=colors[name], ms=4, label=name if j == 0 else None)
    ax.set_yticks([len(weights) - 1 - j + 0.5 for j in range(len(weights))], weights)
    if limits is not None:
        ax.set_xlim(*limits)
    ax.set_title(f"{summary['problem']}: posterior mean and 94% interval of each weight, per proposal")
    ax.set_xlabel("weight value" + ("" if not off_scale else "\noff the scale (mean): " + "; ".join(off_scale)))
    ax.legend(loc="best", fontsize=7)
    figure.tight_layout()
    return figure


class _ForestRows(NamedTuple):
    truth: float  # θ*'s offset within a weight's band of height 1
    proposals: tuple[float, ...]  # each proposal's offset, in order


def _forest_rows(num_proposals: int, *, truth: bool) -> _ForestRows:
    """Offsets within a weight's band: θ* (when known) on the top row of its own, the proposals below it,
    every row a distinct height (a proposal sharing θ*'s row would hide its marker under the star)."""
    slots = num_proposals + (1 if truth else 0)
    offsets = [1 - (k + 1) / (slots + 1) for k in range(slots)]
    return _ForestRows(offsets[0] if truth else float("nan"), tuple(offsets[1:] if truth else offsets))


def _k_hat_figure(summary: dict, idatas: dict):
    """What the per-draw rule reads, per posterior draw and proposal: the reverse k-hat of the proposal's
    weights (left) and the forward k-hat over the data (right), each draw red where the rule calls its
    log Ẑ(θ) unreliable (by either, or by an ESS); under each proposal the share of such draws and the
    draw-set error, the posterior-level check. Axes cover every value; proposals without draws left out."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    names = [n for n in idatas if np.isfinite(idatas[n].sample_stats["log_z_k_hat"].values).any()]
    figure = Figure(figsize=(max(6.0, 1.6 * len(names) + 3), 3.6))
    axes = figure.subplots(1, 2, sharey=True)
    rng = np.random.default_rng(0)
    labels = []
    for i, name in enumerate(names):
        stats = idatas[name].sample_stats
        reliable = stats["log_z_reliable"].values.ravel() if "log_z_reliable" in stats else None
        row = summary["proposals"].get(name, {})
        label = name
        if row.get("unreliable_fraction") is not None:
            label += f"\n{100 * row['unreliable_fraction']:.0f}% unreliable"
        if row.get("draw_set_error") is not None:
            label += f"\ndraw-set {row['draw_set_error']:.2f} sd"
        labels.append(label)
        for ax, variable in zip(axes, ("log_z_k_hat", "log_z_forward_k_hat"), strict=True):
            if variable not in stats:
                continue
            values = stats[variable].values.ravel()
            keep = np.isfinite(values)
            bad = np.zeros_like(keep) if reliable is None else ~reliable.astype(bool)
            x = i + 0.12 * rng.standard_normal(values.size)
            for mask, color in ((keep & ~bad, "tab:blue"), (keep & bad, "tab:red")):
                ax.scatter(x[mask], values[mask], s=3, alpha=0.35, color=color)
    values = np.concatenate([idatas[n].sample_stats[v].values.ravel() for n in names
                             for v in ("log_z_k_hat", "log_z_forward_k_hat") if v in idatas[n].sample_stats]
                            or [np.zeros(1)])
    values = values[np.isfinite(values)]
    low, high = _k_hat_limits(values)
    for ax, title in zip(axes, ("reverse k-hat (the proposal's weights)", "forward k-hat (over the data)"),
                         strict=True):
        ax.axhline(K_HAT_UNRELIABLE, color="r", ls="--", lw=1)
        ax.set_yscale("symlog", linthresh=1.0)  # linear in [-1, 1] where the thresholds are, logarithmic beyond
        ax.set_ylim(low, high)
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(range(len(names)), labels, fontsize=7)
        ax.set_title(title, fontsize=9)
    axes[0].set_ylabel(f"per posterior draw (dashed: {K_HAT_UNRELIABLE})")
    figure.suptitle(f"{summary['problem']}: how far to trust log Ẑ(θ) at each posterior draw "
                    "(red: the rule calls that draw unreliable)", fontsize=9)
    figure.tight_layout()
    return figure


def _k_hat_limits(values: np.ndarray) -> tuple[float, float]:
    """y-limits holding every value and the 0.7 threshold, with a margin (symlog: linear within ±1)."""
    low = min(float(values.min(initial=0.0)), 0.0)
    high = max(float(values.max(initial=0.0)), K_HAT_UNRELIABLE)
    margin = 0.1 * (high - low) if high <= 1.0 else 0.0
    return low - 0.1 - margin if low < 0 else -0.1, high * 1.3 if high > 1.0 else high + 0.1 + margin


def _cost_maps(space: TabularTrajectories, summary: dict):
    """Posterior-mean cost minus the true cost per state (gauge removed), one shared diverging scale;
    sparse binary state features (goal, walls) marked by their initials."""
    from matplotlib.figure import Figure

    shape = space.grid_shape
    rows = {name: row for name, row in summary["proposals"].items()}
    true = np.asarray(space.cost_table(jnp.asarray(summary["theta_true"])).mean(1))
    true = true - true.mean()
    diffs = {}
    for name, row in rows.items():
        cost = np.asarray(space.cost_table(jnp.asarray(row["posterior_mean"])).mean(1))
        diffs[name] = (cost - cost.mean()) - true
    # one scale for every difference, set by the posteriors within 5 sd of exact (a far-off one saturates)
    near = [diffs[n] for n, row in rows.items() if (row.get("shift_max_sd") or 0.0) <= 5.0] or [true]
    scale = max(float(np.abs(np.concatenate(near)).max()), 1e-12)
    marks = _feature_marks(space)
    panels = 1 + len(diffs)
    figure = Figure(figsize=(2.7 * panels, 3.0))
    axes = figure.subplots(1, panels, squeeze=False)
    axes = list(axes[0])
    image = axes[0].imshow(true.reshape(shape), cmap="magma_r")
    figure.colorbar(image, ax=axes[0], fraction=0.046, pad=0.04)
    axes[0].set(title="true cost (centred)", xticks=[], yticks=[])
    for ax, (name, diff) in zip(axes[1:], diffs.items(), strict=True):
        image = ax.imshow(diff.reshape(shape), cmap="RdBu_r", vmin=-scale, vmax=scale)
        ax.set(title=f"{name} − truth", xticks=[], yticks=[])
    figure.colorbar(image, ax=axes[1:], fraction=0.046, pad=0.04, label="posterior-mean cost − true cost")
    for ax in axes:
        for label, cells in marks.items():
            for row, column in cells:
                ax.text(column, row, label, ha="center", va="center", color="lime", fontsize=8, weight="bold")
    figure.suptitle(f"{summary['problem']}: cost per state, averaged over actions (same colour scale for every "
                    "difference; letters mark sparse features)", fontsize=9)
    return figure


def _feature_marks(space: TabularTrajectories) -> dict[str, list[tuple[int, int]]]:
    """Cells of each sparse binary state feature (at most a quarter of the states), by the feature's initial."""
    features = np.asarray(space.mdp.features)  # (S, A, F)
    shape = space.grid_shape
    marks = {}
    for f, name in enumerate(space.mdp.feature_names):
        values = features[:, :, f].max(1)
        on = np.flatnonzero(values)
        if np.isin(values, (0.0, 1.0)).all() and 0 < on.size <= values.size // 4:
            marks[name[0].upper()] = [divmod(int(i), shape[1]) for i in on]
    return marks
