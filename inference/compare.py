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
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from inference.diagnostics import K_HAT_UNRELIABLE, UnreliableEstimateWarning
from inference.io import finite_or_none, json_safe, save_figure, staged_out_dir, write_atomic, write_json
from inference.posterior import sample_posterior, save_posterior
from models.problems import Problem, make_problem

__all__ = ["COMPARE_PROBLEMS", "CompareSettings", "Family", "compare", "compare_proposal_names", "posterior_family"]

COMPARE_PROBLEMS = ("gridworld", "lqr", "gaussian", "rings", "8gaussians", "moons", "checkerboard", "pinwheel")
SHIFT_OK = 0.2  # |posterior mean - exact posterior mean| in exact-posterior sd: the target of issue 6


@dataclass(frozen=True)
class CompareSettings:
    """Sizes of one comparison; :meth:`quick` is the ``--quick`` preset (a smoke run in well under 3 minutes)."""

    demos: int = 100
    train_steps: int = 1500
    proposal_draws: int = 16_000
    num_warmup: int = 500
    num_samples: int = 500
    num_chains: int = 4

    @classmethod
    def quick(cls, **changes) -> CompareSettings:
        return replace(cls(train_steps=300, proposal_draws=4000, num_warmup=200, num_samples=200, num_chains=2),
                       **changes)


@dataclass(frozen=True)
class Family:
    """A cost family with a posterior: the NumPyro model, its latent sites, and the pieces training needs.

    ``theta_true`` is θ* as the model's latent sites (a dict; for the Gaussian: the best member of
    the diagonal family); ``sites`` orders the sites when θ is flattened.
    """

    problem: Problem
    model: Callable[..., None]
    theta_true: dict
    sites: tuple[str, ...]
    names: tuple[str, ...]
    broad: Callable[[jax.Array], Any]  # key -> the broad proposal
    train: Callable[..., Any]  # (method, key, data, test, steps) -> (learned params, trained proposal)

    def flatten(self, params: dict) -> np.ndarray:
        """θ as one vector (or ``(..., k)`` for stacked draws), in the order of :attr:`names`."""
        parts = []
        for site in self.sites:
            value = np.asarray(params[site])
            batch = value.shape[:value.ndim - np.ndim(self.theta_true[site])]
            parts.append(value.reshape(batch + (-1,)))
        return np.concatenate(parts, axis=-1)


def _irl_family(problem: Problem) -> Family:
    from inference.ebm import train_ebm
    from inference.irl import base_policy

    def train(method, key, data, test, steps):
        with warnings.catch_warnings():  # its log Z evaluations at θ̂ are not the product here
            warnings.simplefilter("ignore", UnreliableEstimateWarning)
            run = train_ebm(
                problem, method, steps=steps, seed=int(jax.random.randint(key, (), 0, 2**31 - 1)),
                data=(data, test), tilted=True, eval_every=max(steps, 1), progress=False)
        return {"theta": run.result.state.energy}, run.result.state.proposal

    return Family(problem, problem.model, {"theta": problem.true_params}, ("theta",), problem.irl.theta_names,
                  lambda key: base_policy(problem, key), train)


def _train_parametric(cost_fn, params, proposal, method, key, data, steps, *, learning_rate=0.05,
                      proposal_learning_rate=0.02, log_z0=0.0):
    """GCL or the GAN form on a small parametric cost family (the algorithms of ``inference.training``)."""
    import optax

    from inference.driver import run_training
    from inference.ebm import _schedule
    from inference.training import gan_form, guided_cost_learning

    energy_opt = optax.adam(_schedule(learning_rate, steps))
    proposal_opt = optax.chain(optax.clip_by_global_norm(10.0), optax.adam(_schedule(proposal_learning_rate, steps)))
    if method == "gcl":
        algorithm = guided_cost_learning(cost_fn, energy_opt, proposal_opt, num_samples=256)
    else:
        algorithm = gan_form(cost_fn, energy_opt, proposal_opt, num_samples=256, log_z0=log_z0)
    result = run_training(key, algorithm, algorithm.init(params, proposal), data, steps=steps, progress=False,
                          desc=f"{method} sampler")
    return result.state.energy, result.state.proposal


def _gaussian_family(problem: Problem) -> Family:
    from inference.proposals import Gaussian
    from models.gaussian import gaussian_model, quadratic_cost

    dim = problem.dim
    covariance = jnp.linalg.inv(problem.true_params["precision"])
    # the diagonal family's best member (moment matching): the data mean, 1 / the marginal variances
    theta_true = {"loc": problem.true_params["loc"], "log_precision": -jnp.log(jnp.diagonal(covariance))}

    def cost_fn(p, x):
        return quadratic_cost({"loc": p["loc"], "precision": jnp.diag(jnp.exp(p["log_precision"]))}, x)

    def train(method, key, data, test, steps):
        params = {"loc": jnp.zeros(dim), "log_precision": jnp.zeros(dim)}
        return _train_parametric(cost_fn, params, Gaussian.isotropic(dim, 2.0), method, key, data, steps,
                                 log_z0=0.5 * dim * np.log(2 * np.pi))

    names = tuple(f"loc[{i}]" for i in range(dim)) + tuple(f"log_precision[{i}]" for i in range(dim))
    return Family(problem, gaussian_model, theta_true, ("loc", "log_precision"), names,
                  lambda key: Gaussian.isotropic(dim, 2.0), train)


def _toy_family(problem: Problem) -> Family:
    from inference.ebm import data_flow
    from inference.proposals import Gaussian
    from models.toys import toy_family_cost, toy_family_log_partition, toy_family_model

    base = problem.true_params
    zero = jnp.zeros((), jnp.zeros(()).dtype)
    theta_true = {"log_spread": zero, "log_scale": zero}
    half = float(problem.bounds[0][1])

    def cost_fn(p, x):
        return toy_family_cost(base, p, x)

    def train(method, key, data, test, steps):
        key_init, key_fit, key_train = jax.random.split(key, 3)
        flow = data_flow(key_init, key_fit, data, max_epochs=50)
        params = {"log_spread": zero, "log_scale": zero}
        return _train_parametric(cost_fn, params, flow, method, key_train, data, steps, learning_rate=0.02,
                                 proposal_learning_rate=1e-3, log_z0=float(toy_family_log_partition(base, params)))

    return Family(problem, partial(toy_family_model, base=base), theta_true, ("log_spread", "log_scale"),
                  ("log_spread", "log_scale"), lambda key: Gaussian.isotropic(2, half / 2), train)


def _check_problem(name: str) -> None:
    if name not in COMPARE_PROBLEMS:
        raise ValueError(f"problem: unknown name {name!r} for compare; valid: {', '.join(COMPARE_PROBLEMS)}")


def posterior_family(problem: str | Problem) -> Family:
    """The cost family whose posterior ``compare`` samples; the error lists the problems that have one."""
    name = problem if isinstance(problem, str) else problem.name
    _check_problem(name)
    problem = make_problem(name) if isinstance(problem, str) else problem
    if problem.irl is not None:
        return _irl_family(problem)
    return _gaussian_family(problem) if name == "gaussian" else _toy_family(problem)


def compare_proposal_names(problem: str) -> tuple[str, ...]:
    """``exact`` (the exact normalizer), ``uniform`` (broad), ``cloned`` (IRL: behaviour cloning),
    ``gcl`` and ``gan`` (the samplers the two training methods learn)."""
    return ("exact", "uniform", "gcl", "gan") + (("cloned",) if problem in ("gridworld", "lqr") else ())


def check_compare_args(problem: str, proposals: tuple[str, ...], settings: CompareSettings) -> None:
    """Names and sizes, checked before any work (the errors list the valid names)."""
    _check_problem(problem)
    valid = compare_proposal_names(problem)
    if not proposals:
        raise ValueError(f"proposals: empty; valid: {', '.join(valid)}")
    for name in proposals:
        if name not in valid:
            raise ValueError(f"proposals: unknown name {name!r} for {problem}; valid: {', '.join(valid)}")
    if len(set(proposals)) != len(proposals):
        raise ValueError(f"proposals: a name is repeated in {','.join(proposals)}")
    for field in ("demos", "train_steps", "proposal_draws", "num_warmup", "num_samples", "num_chains"):
        value = getattr(settings, field)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{field.replace('_', '-')}: expected a positive integer, got {value!r}")
    if settings.demos < 2:
        raise ValueError(f"demos: expected at least 2, got {settings.demos}")


def _chain_method(num_chains: int) -> str:
    return "parallel" if 1 < num_chains <= jax.local_device_count() else "vectorized"


def compare(
    problem: str = "gridworld",
    proposals: tuple[str, ...] = ("exact", "uniform", "gcl", "gan"),
    *,
    settings: CompareSettings | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    force: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Posterior of θ under each proposal; returns the summary (and writes the outputs when ``out`` is given).

    Each proposal's posterior uses the normalizing handler with that proposal's fixed draws;
    ``exact`` uses the exact normalizer. The samplers ``gcl`` and ``gan`` are trained on the same
    demonstrations first (for tabular problems, samplers with transition tilts, the family that
    contains :math:`p_\\theta`).
    """
    settings = settings or CompareSettings()
    proposals = tuple(proposals)
    check_compare_args(problem, proposals, settings)
    # a fresh folder beside --out, swapped in when complete: --out never mixes two runs' files, and an
    # error or interrupt leaves it as it was
    with staged_out_dir(out, force=force) as out:
        family = posterior_family(problem)
        key_data, key_train, key_post = jax.random.split(jax.random.key(seed), 3)
        data, test = family.problem.data(key_data, settings.demos, 1000)
        results: dict[str, dict[str, Any]] = {}
        idatas: dict[str, az.InferenceData] = {}
        learned: dict[str, np.ndarray] = {}
        bar = tqdm(proposals, desc=f"compare on {problem}", disable=not progress)
        for name in bar:
            bar.set_postfix_str(name)
            start = time.perf_counter()
            train_seconds = 0.0
            if name == "exact":
                proposal, estimator = None, "exact"
            elif name == "uniform":
                proposal, estimator = family.broad(jax.random.fold_in(key_train, 0)), "importance"
            elif name == "cloned":
                from inference.irl import irl_setup

                proposal, estimator = irl_setup(family.problem, data, jax.random.fold_in(key_train, 1))[1], "importance"
            else:
                params, proposal = family.train(name, jax.random.fold_in(key_train, 2 + (name == "gan")), data, test,
                                                settings.train_steps)
                learned[name] = family.flatten(params)
                estimator = "importance"
                train_seconds = time.perf_counter() - start
            idata = sample_posterior(
                family.model, data, key=key_post, proposal=proposal, estimator=estimator,
                num_draws=settings.proposal_draws, num_warmup=settings.num_warmup, num_samples=settings.num_samples,
                num_chains=settings.num_chains, chain_method=_chain_method(settings.num_chains),
            )
            idata.posterior.attrs["proposal"] = name
            dim = f"{family.sites[0]}_dim_0"
            if len(family.sites) == 1 and idata.posterior.sizes.get(dim) == len(family.names):
                idata.posterior = idata.posterior.assign_coords({dim: list(family.names)})  # forest plot labels
            idatas[name] = idata
            results[name] = _posterior_row(family, idata, time.perf_counter() - start, train_seconds)
            if out is not None:
                save_posterior(idata, out / f"posterior_{name}.nc")
        summary = {
            "problem": problem,
            "seed": seed,
            "settings": settings.__dict__,
            "theta_names": list(family.names),
            "theta_true": family.flatten(family.theta_true).tolist(),
            "proposals": results,
            "learned_theta": {name: value.tolist() for name, value in learned.items()},
        }
        _add_verdicts(summary)
        if out is not None:
            _write_outputs(out, family, summary, idatas, data)
        return summary


def _finite_stat(stat, values: np.ndarray) -> float | None:
    # None when no draw has a finite value (the exact estimator has no draws: all NaN)
    return finite_or_none(stat(values)) if np.isfinite(values).any() else None


def _posterior_row(family: Family, idata: az.InferenceData, seconds: float, train_seconds: float) -> dict:
    draws = family.flatten({s: idata.posterior[s].values for s in family.sites})  # (chain, draw, k)
    rhat = az.rhat(idata, var_names=list(family.sites))
    stats = idata.sample_stats
    k_hat, ess = stats["log_z_k_hat"].values, stats["log_z_ess"].values
    return {
        "posterior_mean": draws.mean((0, 1)).tolist(),
        "posterior_sd": draws.std((0, 1)).tolist(),
        # NaN when undefined (one chain, or too few draws): null in summary.json
        "rhat_max": float(np.max([rhat[s].values.max() for s in family.sites])),
        "k_hat_median": _finite_stat(np.nanmedian, k_hat),
        "k_hat_max": _finite_stat(np.nanmax, k_hat),
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


def _verdict(name: str, row: dict, *, have_exact: bool) -> str:
    if name == "exact":
        return "the gold standard: the exact log Z(θ) at every step"
    k_hat = row["k_hat_median"]
    flagged = k_hat is None or k_hat > K_HAT_UNRELIABLE
    k_text = "k-hat could not be estimated" if k_hat is None else f"median k-hat {k_hat:.2f}"
    if not have_exact:
        return f"{k_text}: " + ("do not trust this posterior" if flagged else "the weights look trustworthy")
    shift = row["shift_max_sd"]
    agrees = shift <= SHIFT_OK
    if agrees and not flagged:
        return f"agrees with the exact posterior (largest shift {shift:.2f} sd); {k_text}"
    if agrees:
        return f"agrees (largest shift {shift:.2f} sd), but {k_text} > {K_HAT_UNRELIABLE}: it was luck, not a guarantee"
    if flagged:
        return f"biased (largest shift {shift:.2f} sd), and {k_text} > {K_HAT_UNRELIABLE} flags it"
    return (f"biased (largest shift {shift:.2f} sd) although {k_text} looks fine: the fixed draws' error, "
            "times the number of demonstrations; use more proposal draws")


def render_report(summary: dict) -> str:
    """``report.md``: the posterior table, θ against θ* and the exact posterior, diagnostics, verdicts."""
    names, truth = summary["theta_names"], summary["theta_true"]
    rows = summary["proposals"]
    s = summary["settings"]
    lines = [
        f"# Posterior cost estimates on {summary['problem']}",
        "",
        f"{s['demos']} demonstrations from a known θ*, seed {summary['seed']}. NUTS: {s['num_chains']} chains x "
        f"{s['num_samples']} draws ({s['num_warmup']} warm-up). Each proposal stands in for Z(θ) through "
        f"{s['proposal_draws']} fixed draws (importance sampling); `exact` uses the exact log Z(θ).",
        "",
        "## Posterior mean ± sd of each cost weight",
        "",
        "| proposal | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
        "| θ* | " + " | ".join(f"{v:.3f}" for v in truth) + " |",
    ]
    for name, row in rows.items():
        cells = [f"{m:.3f} ± {sd:.3f}" for m, sd in zip(row["posterior_mean"], row["posterior_sd"], strict=True)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name, theta in summary["learned_theta"].items():
        lines.append(f"| {name} (point estimate of its training) | " + " | ".join(f"{v:.3f}" for v in theta) + " |")
    lines += [
        "",
        "## Diagnostics",
        "",
        "| proposal | shift from exact (max, sd) | median k-hat | median ESS of the draws | R-hat max | divergences "
        "| seconds (training) | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        shift = row.get("shift_max_sd")
        lines.append(
            f"| {name} | {'n/a' if shift is None else f'{shift:.2f}'} | {_fmt(row['k_hat_median'])} | "
            f"{_fmt(row['ess_median'], '.0f')} | {row['rhat_max']:.3f} | {row['divergences']} | "
            f"{row['seconds']:.1f} ({row['train_seconds']:.1f}) | {row['verdict']} |"
        )
    lines += [
        "",
        f"k-hat is Pareto k̂ of the proposal's importance weights at each posterior draw: above {K_HAT_UNRELIABLE} "
        "the normalizer estimate, and the posterior built on it, cannot be trusted. R-hat above 1.01 means the "
        "chains disagree. Figures: `figures/forest.png` (θ under every proposal), `figures/k_hat.png`"
        + (", `figures/costs.png` (posterior-mean cost maps)" if summary["problem"] == "gridworld" else "") + ".",
        "",
    ]
    return "\n".join(lines)


def _fmt(value, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def _write_outputs(out: Path, family: Family, summary: dict, idatas: dict, data) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = out / "figures"
    names = list(idatas)
    axes = az.plot_forest([idatas[n] for n in names], model_names=names, var_names=list(family.sites),
                          combined=True, figsize=(7, 1.0 + 0.35 * len(family.names) * len(names)))
    ax = axes.ravel()[0]
    figure = ax.figure
    figure.suptitle(f"{summary['problem']}: posterior of θ under each proposal (θ* dotted)")
    for value in summary["theta_true"]:
        ax.axvline(value, color="k", ls=":", lw=0.8)
    reference = summary["proposals"].get("exact")
    if reference is not None:  # a posterior far off (the broad proposal's) would flatten the rest: it goes off-axis
        mean, sd = np.asarray(reference["posterior_mean"]), np.asarray(reference["posterior_sd"])
        points = np.concatenate([mean - 8 * sd, mean + 8 * sd, summary["theta_true"]])
        ax.set_xlim(points.min(), points.max())
        ax.set_xlabel("posteriors beyond the axis are off the scale; see report.md")
    save_figure(figure, figures / "forest.png")
    plt.close(figure)
    figure, ax = plt.subplots(figsize=(6, 3))
    for i, name in enumerate(names):
        k_hat = idatas[name].sample_stats["log_z_k_hat"].values.ravel()
        k_hat = k_hat[np.isfinite(k_hat)]
        if k_hat.size:
            ax.scatter(i + 0.15 * np.random.default_rng(0).standard_normal(k_hat.size), k_hat, s=3, alpha=0.3)
    ax.axhline(K_HAT_UNRELIABLE, color="r", ls="--", lw=1, label=f"k-hat = {K_HAT_UNRELIABLE}: unreliable above")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("Pareto k-hat per posterior draw")
    ax.legend(loc="upper right", fontsize=8)
    save_figure(figure, figures / "k_hat.png")
    plt.close(figure)
    if summary["problem"] == "gridworld":
        save_figure(_cost_maps(family, summary, data), figures / "costs.png")
        plt.close("all")
    write_atomic(out / "report.md", render_report(summary))
    write_json(out / "summary.json", json_safe(summary))  # undefined statistics (R-hat of one chain) as null


def _cost_maps(family: Family, summary: dict, data):
    import matplotlib.pyplot as plt

    from inference.plots import plot_grid_costs

    spec = family.problem.irl
    shape = spec.system.shape
    rows = summary["proposals"]
    panels = 1 + len(rows)
    figure, axes = plt.subplots(1, panels, figsize=(2.8 * panels, 2.8), squeeze=False)
    axes = list(axes[0])
    plot_grid_costs(axes.pop(0), spec.cost_table(jnp.asarray(summary["theta_true"])).mean(1), shape, title="true cost")
    for ax, (name, row) in zip(axes, rows.items(), strict=True):
        plot_grid_costs(ax, spec.cost_table(jnp.asarray(row["posterior_mean"])).mean(1), shape,
                        title=f"posterior mean: {name}")
    figure.tight_layout()
    return figure
