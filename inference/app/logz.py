"""log Z of a problem's reference energy with a named proposal: one call for the CLI, the
notebooks and the benchmarks (fit the proposal, draw, weight, diagnose)."""

from __future__ import annotations

import time
import warnings
from typing import Any

import jax
import numpy as np
from maxent_gan.inference._validation import check_key
from maxent_gan.inference.annealed import check_annealable, log_z_annealed
from maxent_gan.inference.app.recipes import make_proposal, proposal_names
from maxent_gan.inference.diagnostics import UnreliableEstimateWarning
from maxent_gan.inference.estimators import log_z_importance
from maxent_gan.inference.normalizers import Annealed, Importance
from maxent_gan.models.problems import Problem
from maxent_gan.models.spaces import Points

__all__ = ["ImportanceThenAnnealed", "compare_proposals", "estimate_log_z"]


def estimate_log_z(
    problem: Problem,
    proposal: str,
    *,
    key: jax.Array | None = None,
    samples: int = 10_000,
    scale: float | None = None,
    fit_steps: int | None = None,
    estimator: Importance | Annealed | ImportanceThenAnnealed | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """log Z of ``problem.target`` with the named proposal (a recipe of
    :data:`maxent_gan.inference.app.recipes.RECIPES`): ``Importance()`` (the default), ``Annealed()``
    (points only), adaptive tempered SMC started at it (:mod:`maxent_gan.inference.annealed`;
    ``samples`` particles, ``ess``/``k_hat`` are the start's, plus ``num_temperatures`` and the
    bridge's lowest mean HMC ``acceptance``; ``unreliable_reasons`` is the bridge's rule), or
    :class:`ImportanceThenAnnealed` (the command line's default: the first, and the second where the first is
    unreliable; ``escalated_from`` then holds the importance estimate and its reasons, else ``None``).
    ``scale``: the broad Gaussian's standard deviation on points (default: the problem's own,
    :attr:`~maxent_gan.models.spaces.Points.broad_scale`).

    Returns ``log_z``, ``log_z_exact`` (or None), ``error``, ``ess``, ``k_hat`` (a float:
    ``-inf`` when all weights are equal, ``+inf`` when too few draws; JSON writers turn those
    into null), the forward check (``forward_source``: ``"exact draws"`` of the target, the
    problem's ``"data"``, or ``None`` when neither exists and only q's own draws could be checked;
    ``forward_k_hat``, ``forward_ess``, ``forward_points``, ``log_z_upper``), ``reliable``,
    ``unreliable_reasons`` (the rule of :mod:`maxent_gan.inference.diagnostics`), ``checks_run`` (which checks
    that rule could run: without data or exact draws only the reverse one, or the bridge's own)
    and ``seconds`` (fit + draws + checks). Names are checked before any work.
    """
    estimator = Importance() if estimator is None else estimator
    if not isinstance(estimator, Importance | Annealed | ImportanceThenAnnealed):
        raise ValueError(f"estimator: expected Importance() or Annealed() (maxent_gan.inference.normalizers), or "
                         f"ImportanceThenAnnealed(), got {estimator!r}")
    key = check_key(key)
    if proposal not in proposal_names(problem):
        raise ValueError(f"proposal: unknown name {proposal!r} for {problem.name}; "
                         f"valid: {', '.join(proposal_names(problem))}")
    target = problem.target
    if target is None:
        raise ValueError(f"problem: {problem.name} has no reference energy to estimate log Z of; "
                         "train one with `maxent-gan train`")
    if isinstance(estimator, Annealed):
        check_annealable(target)  # before the proposal's fit
    key_fit, key_draw = jax.random.split(key)
    key_forward = jax.random.fold_in(key, 1)  # a third stream; fit and draws as before
    start = time.perf_counter()
    fitted = make_proposal(proposal, key_fit, target, problem=problem, scale=scale, steps=fit_steps,
                           progress=progress)
    source, points = _forward_points(problem, key_forward)
    escalated_from = None
    if isinstance(estimator, Annealed):
        estimate, ess, k_hat, extra = _annealed(key_draw, target, fitted, samples, points, estimator)
    else:
        estimate, ess, k_hat, extra = _importance(key_draw, target, fitted, samples, points)
        if (isinstance(estimator, ImportanceThenAnnealed) and not estimate.reliable
                and isinstance(problem.space, Points)):
            escalated_from = {"estimator": "importance", "log_z": float(estimate.log_z),
                              "unreliable_reasons": estimate.unreliable_reasons()}
            estimator = estimator.annealed
            estimate, ess, k_hat, extra = _annealed(jax.random.fold_in(key_draw, 1), target, fitted, samples, points,
                                                    estimator)
        else:
            estimator = Importance()  # the estimator that gave the estimate
    extra["escalated_from"] = escalated_from
    seconds = time.perf_counter() - start
    if estimate.unreliable_reasons():  # the edge a person reads: the estimator itself only reports
        warnings.warn(f"logz: the estimate is unreliable: {'; '.join(estimate.unreliable_reasons())}; use a proposal "
                      "closer to the target", UnreliableEstimateWarning, stacklevel=2)
    exact = None if target.log_normalizer is None else float(target.log_normalizer)
    check = estimate.forward
    return {
        "proposal": proposal,
        "log_z": float(estimate.log_z),
        "log_z_exact": exact,
        "error": None if exact is None else float(estimate.log_z) - exact,
        "ess": ess,
        "k_hat": k_hat,
        "forward_source": source,
        "forward_points": None if check is None else int(check.log_ratios.shape[0]),
        "forward_k_hat": None if check is None else float(check.k_hat),
        "forward_ess": None if check is None else float(check.ess),
        "log_z_upper": None if check is None else float(check.log_z_upper),
        "reliable": estimate.reliable,
        "unreliable_reasons": estimate.unreliable_reasons(),
        "checks_run": estimate.checks_run,
        "seconds": seconds,
        "estimator": estimator.name,
        **extra,
    }


class ImportanceThenAnnealed:
    """``logz``'s default on points: importance sampling from the proposal first and, where the estimate's own
    rule calls it unreliable, adaptive tempered SMC (:class:`~maxent_gan.inference.normalizers.Annealed`,
    ``options`` its settings) from the same proposal with as many particles as there were draws. Importance
    sampling costs a fraction of a second and, from a broad start at the target's own scale, is the fastest
    way to a given accuracy where it is reliable; where it is not, the bridge is (the benchmarks' standard
    targets). On trajectories it is plain importance sampling. The result names the estimator that gave the
    estimate, and ``escalated_from`` the importance estimate and its reasons where it escalated."""

    name = "importance-then-annealed"

    def __init__(self, **options):
        self.annealed = Annealed(**options)

    def __repr__(self) -> str:
        return f"ImportanceThenAnnealed({', '.join(f'{k}={v!r}' for k, v in self.annealed.options.items())})"


def _importance(key, target, proposal, samples, points):
    x, log_q = proposal.sample_and_log_prob(key, samples)
    forward = {} if points is None else {"cost_data": -target.unnormalized_log_prob(points),
                                         "log_q_data": proposal.log_prob(points)}
    estimate = log_z_importance(-target.unnormalized_log_prob(x), log_q, **forward)
    return estimate, float(estimate.ess), float(estimate.k_hat), {}


def _annealed(key, target, proposal, samples, points, estimator: Annealed):
    estimate = log_z_annealed(key, target, proposal, num_particles=samples, data=points, **estimator.options)
    extra = {"num_temperatures": estimate.num_temperatures,
             "acceptance": float(np.min(estimate.acceptance)) if estimate.acceptance.size else None}
    return estimate, estimate.start_ess, estimate.start_k_hat, extra


FORWARD_POINTS = 2000  # exact draws for the forward check
FORWARD_DATA = 200  # data points for it where no exact sampler exists (the point mass's come from NUTS)


def _forward_points(problem: Problem, key: jax.Array) -> tuple[str | None, jax.Array | None]:
    """Points from the target for the forward check: exact draws, else the problem's data, else none."""
    if problem.target.has_exact_sampler:
        return "exact draws", problem.target.sample(key, (FORWARD_POINTS,))
    if problem.data is not None:
        train, _ = problem.data(key, FORWARD_DATA, 1)
        return "data", train[:FORWARD_DATA]
    return None, None


def compare_proposals(problem: Problem, proposals: tuple[str, ...] | None = None, **options) -> list[dict[str, Any]]:
    """:func:`estimate_log_z` for each named proposal (default: every one that applies)."""
    return [estimate_log_z(problem, name, **options) for name in (proposals or proposal_names(problem))]
