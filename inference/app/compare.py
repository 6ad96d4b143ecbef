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
from pathlib import Path
from typing import Any

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
from maxent_gan.inference._validation import check_key
from maxent_gan.inference.app.cross_check import cross_check, cross_check_reasons
from maxent_gan.inference.app.recipes import RECIPES, compare_names
from maxent_gan.inference.app.report import render_report, write_outputs
from maxent_gan.inference.app.settings import COMPARE_PROBLEMS, CompareSettings
from maxent_gan.inference.app.verdict import SHIFT_OK, add_verdicts, stop_text
from maxent_gan.inference.diagnostics import (
    UnreliableEstimateWarning,
)
from maxent_gan.inference.ebm import train_ebm
from maxent_gan.inference.io import finite_or_none, staged_out_dir
from maxent_gan.inference.normalizers import Importance
from maxent_gan.inference.posterior import sample_posterior, save_posterior
from maxent_gan.inference.spaces import follow_theta, sampler_rates
from maxent_gan.models._validation import check_positive_int
from maxent_gan.models.problem import CostFamily
from maxent_gan.models.problems import Problem, make_problem
from maxent_gan.models.spaces import TabularTrajectories
from tqdm.auto import tqdm

# render_report and SHIFT_OK are re-exported: the report and the verdict live in their own modules
__all__ = ["COMPARE_PROBLEMS", "DEFAULT_PROPOSALS", "SHIFT_OK", "CompareSettings", "check_compare_args", "compare",
           "compare_proposal_names", "default_proposals", "render_report"]

def _problem(problem: str | Problem) -> Problem:
    """A problem with a cost family (its posterior is what ``compare`` samples); names are checked here."""
    problem = make_problem(problem) if isinstance(problem, str) else problem
    if problem.family is None:
        raise ValueError(f"problem: {problem.name} has no cost family whose posterior compare could sample; "
                         f"valid built-in problems: {', '.join(COMPARE_PROBLEMS)}, or your own problem "
                         "(maxent_gan.models.builders, or a .npz file)")
    return problem


def compare_proposal_names(problem: str | Problem) -> tuple[str, ...]:
    """The rows ``compare`` can run on ``problem``: the recipes of
    :data:`maxent_gan.inference.app.recipes.RECIPES` that make a row there (``exact``, the exact normalizer,
    where the family has one; ``broad``, ``gcl``, ``gan``, ``gcl-follow``, ``gan-follow``, ``cloned``)."""
    return compare_names(_problem(problem))


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
    check_positive_int("check-thetas", settings.check_thetas, minimum=0)
    if settings.demos < 2:
        raise ValueError(f"demos: expected at least 2, got {settings.demos}")
    return problem


# each proposal's own stream of the training key (the indices fixed, so that adding a row changes no other)
_STREAMS = {"broad": 0, "cloned": 1, "gcl": 2, "gan": 3, "gcl-follow": 4, "gan-follow": 5}


class _RowContext:
    """What a recipe's ``row`` builds from (:class:`maxent_gan.inference.app.recipes.Recipe`): the problem, the
    data, a key per row, the trained samplers (each method trained once) and the pilot posteriors; it
    records each training run and the seconds spent building each row's proposal."""

    def __init__(self, problem: Problem, data, test, settings: CompareSettings, key: jax.Array, run_nuts,
                 idatas: dict):
        self.problem, self.data, self._test, self._settings = problem, data, test, settings
        self._key, self._run_nuts, self._idatas = key, run_nuts, idatas
        self.fits: dict[str, tuple[Any, Any]] = {}  # method -> (θ̂, its sampler)
        self.training: dict[str, dict] = {}  # method -> steps done, requested, why it stopped (None: it did not)
        self.seconds: dict[str, float] = {}  # method or row -> seconds spent training or building

    def key(self, name: str) -> jax.Array:
        return jax.random.fold_in(self._key, _STREAMS[name])

    def trained(self, method: str):
        """The sampler ``method`` (``"gcl"`` or ``"gan"``) trains alongside the cost, fixed at θ̂."""
        if method not in self.fits:
            begin = time.perf_counter()
            with warnings.catch_warnings():  # its log Z evaluations at θ̂ are not the product here
                warnings.simplefilter("ignore", UnreliableEstimateWarning)
                run = train_ebm(self.problem, method, steps=self._settings.train_steps, key=self.key(method),
                                data=(self.data, self._test), tilted=True, parametric=True, flow_epochs=50,
                                evaluate=False, progress=False)
            result = run.result
            self.fits[method] = (result.state.energy, result.state.proposal)
            self.training[method] = {"steps": result.steps_done, "requested": self._settings.train_steps,
                                     "stopped": result.stopped}
            self.seconds[method] = time.perf_counter() - begin
        return self.fits[method][1]

    def follow(self, method: str):
        """The θ-following proposal built from the pilot posterior under ``method``'s fixed sampler (that
        row's posterior when it ran, else a pilot run here), by the space's recipe
        (:func:`maxent_gan.inference.spaces.follow_theta`)."""
        proposal = self.trained(method)
        begin = time.perf_counter()
        pilot = self._idatas.get(method)
        if pilot is None:
            with warnings.catch_warnings():  # the pilot only places the anchors
                warnings.simplefilter("ignore", UnreliableEstimateWarning)
                pilot = self._run_nuts(proposal, Importance())
        followed = _follow_theta(self.problem, proposal, pilot, self._settings.anchor_steps,
                                 self.key(f"{method}-follow"))
        self.seconds[f"{method}-follow"] = time.perf_counter() - begin
        return followed


def _chain_method(num_chains: int) -> str:
    return "parallel" if 1 < num_chains <= jax.local_device_count() else "vectorized"


def compare(
    problem: str | Problem = "gridworld",
    proposals: tuple[str, ...] | None = None,
    *,
    settings: CompareSettings | None = None,
    key: jax.Array | None = None,
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
    key = check_key(key)
    problem = _problem(problem)
    proposals = default_proposals(problem) if proposals is None else tuple(proposals)
    problem = check_compare_args(problem, proposals, settings)
    family = problem.family
    # a fresh folder beside --out, swapped in when complete: --out never mixes two runs' files, and an
    # error or interrupt leaves it as it was
    with staged_out_dir(out, force=force) as out:
        key_data, key_train, key_post = jax.random.split(key, 3)
        key_check = jax.random.fold_in(key, 3)  # the cross-check's own stream (problems without an exact log Z)
        data, test = problem.data(key_data, settings.demos, 1000)
        if problem.data_fixed:  # a user's demonstrations: the posterior conditions on every one of them
            data = jnp.concatenate([data, test])
        results: dict[str, dict[str, Any]] = {}
        idatas: dict[str, az.InferenceData] = {}
        learned: dict[str, np.ndarray] = {}
        bar = tqdm(proposals, desc=f"compare on {problem.name}", disable=not progress)

        def run_nuts(proposal, estimator):
            return sample_posterior(
                family.model, data, key=key_post, proposal=proposal, estimator=estimator,
                num_draws=settings.num_draws, num_warmup=settings.num_warmup,
                num_samples=settings.num_samples, num_chains=settings.num_chains,
                chain_method=_chain_method(settings.num_chains), dense_mass=settings.dense_mass,
            )

        context = _RowContext(problem, data, test, settings, key_train, run_nuts, idatas)
        for name in bar:
            start = time.perf_counter()
            bar.set_postfix_str(f"{name}: building its proposal")
            proposal, estimator = RECIPES[name].row(context)
            method = name.removesuffix("-follow")  # a θ-following row's time includes its method's training
            train_seconds = context.seconds.get(method, 0.0) + (context.seconds.get(name, 0.0) if name != method else 0.0)
            if method in context.fits:
                learned[method] = family.flatten(family.to_sites(context.fits[method][0]))
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
            row = _posterior_row(family, idata, time.perf_counter() - start, train_seconds)
            if family.log_partition_fn is None and proposal is not None and settings.check_thetas:
                bar.set_postfix_str(f"{name}: cross-check by tempered SMC")  # nothing exact to score it against
                row["cross_check"] = cross_check(problem, idata, proposal, data,
                                                 jax.random.fold_in(key_check, len(results)),
                                                 num_thetas=settings.check_thetas)
                extra = cross_check_reasons(row["cross_check"])
                if extra:
                    row["unreliable_reasons"] = "; ".join(filter(None, [row["unreliable_reasons"], *extra]))
            results[name] = row
            training = context.training
            if method in training and training[method]["stopped"] is not None:
                results[name]["training_stopped"] = stop_text(method, training[method])
            if out is not None:
                save_posterior(idata, out / f"posterior_{name}.nc")
        summary = {
            "problem": problem.name,
            "key": np.asarray(jax.random.key_data(key)).ravel().tolist(),
            "settings": settings.__dict__,
            "num_data": int(data.shape[0]),  # a fixed data set (a user's) ignores settings.demos
            "theta_names": list(family.theta_names),
            "theta_descriptions": None if family.theta_descriptions is None else list(family.theta_descriptions),
            "theta_true": None if family.theta_true is None else family.flatten(family.to_sites(family.theta_true)).tolist(),
            "proposals": results,
            "learned_theta": {name: value.tolist() for name, value in learned.items()},
            "training": context.training,
            "cost_maps": _grid_shape(problem) is not None and family.theta_true is not None,
        }
        add_verdicts(summary)
        if out is not None:
            write_outputs(out, problem, summary, idatas, data)
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
        # where those draws are: the share of them beyond 2 posterior sd (None: none fails)
        "unreliable_in_tails": finite_or_none(idata.posterior.attrs.get("unreliable_in_tails")),
        # the share of draws whose forward check fails (point 4 of the rule: it flags above 5 %)
        "forward_unreliable_fraction": idata.posterior.attrs.get("forward_unreliable_fraction"),
        # how far its set of proposal draws alone moves the posterior, in sd (None: exact)
        "draw_set_error": finite_or_none(idata.posterior.attrs.get("draw_set_error")),
        # the verdict of the rule for a posterior, as sample_posterior found it (None: exact)
        "unreliable_reasons": idata.posterior.attrs.get("unreliable_reasons"),
        "ess_median": _finite_stat(np.nanmedian, ess),
        "divergences": int(stats["diverging"].values.sum()),
        "seconds": seconds,
        "train_seconds": train_seconds,
    }


def _grid_shape(problem: Problem) -> tuple[int, int] | None:
    """``(rows, columns)`` of a tabular problem laid out on a grid (its costs can be drawn as maps), else None."""
    return getattr(problem.space, "grid_shape", None)


