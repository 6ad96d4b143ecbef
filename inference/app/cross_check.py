"""An independent check of log Ẑ(θ) where no exact normalizer exists: tempered SMC started at the proposal.

A posterior sampled with importance-estimated :math:`\\log\\hat Z(\\theta)` moves with the error's *slope* across
θ, times the number of observations; where the family has no exact log Z(θ), nothing else checks it from
outside the proposal's own draws. Here adaptive tempered SMC (:func:`maxent_gan.inference.annealed.log_z_annealed`),
started at the same proposal and bridged to :math:`p_\\theta` with HMC moves, estimates log Z(θ) afresh at a
spread of posterior draws; the two estimates share the start, not the estimator, and where the weights are
heavy-tailed the bridge corrects what importance sampling cannot. On points in R^d HMC moves the points; on a
simulator's trajectories it moves the noise a reparameterized sampler (an MLP policy) turns into trajectories
(:func:`maxent_gan.inference.annealed.log_z_annealed_reparameterized`), so every particle stays a trajectory of
the dynamics.

Where the proposal misses mass of :math:`p_\\theta` that the data visit (the forward check of the start, at
the data), the bridge's local moves cannot find it, and SMC's own rule rejects its estimate whatever the bridge
does; from so far a start a bridge can also take hours (a point-mass sampler trained for 10 steps, whose
posterior lies at a goal weight of 1 650 to 6 200: one bridge of 2048 particles had not finished in 10
minutes). The check therefore runs the forward check at every θ first (cheap: one pass over the data), and
where it fails at more than half of them runs no bridge at all: its answer, "cannot vouch", is decided.

SMC's estimate is itself random: on the point mass's trajectories, 2048 particles give log Z(θ) that differs
from run to run by about a tenth of a nat, more than the tolerance. A second run at a few of the θ's measures
that run-to-run variation, and a disagreement it can explain is reported as inconclusive, not as an error of
log Ẑ(θ): the check flags only what lies beyond its own noise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from maxent_gan.inference.annealed import log_z_annealed, log_z_annealed_reparameterized
from maxent_gan.inference.app.settings import CROSS_CHECK_PARTICLES, CROSS_CHECK_THETAS
from maxent_gan.inference.diagnostics import forward_check, forward_reasons
from maxent_gan.inference.proposals.conditional import is_conditional
from maxent_gan.models._validation import check_positive_int
from maxent_gan.models.problem import Problem
from maxent_gan.models.spaces import Points, SimulatorTrajectories

if TYPE_CHECKING:
    import arviz as az

__all__ = ["CROSS_CHECK_NOISE_MULTIPLE", "CROSS_CHECK_PARTICLES", "CROSS_CHECK_REPLICATES", "CROSS_CHECK_THETAS",
           "CROSS_CHECK_TOLERANCE", "annealer", "cross_check", "cross_check_reading", "cross_check_reasons",
           "spread_draws"]

CROSS_CHECK_TOLERANCE = 0.05  # nats: the largest disagreement, after the common offset, the check lets pass
CROSS_CHECK_REPLICATES = 4  # θ's at which SMC runs a second time, to measure its own run-to-run variation
# A disagreement flags only beyond the tolerance plus this many run-to-run sds of one SMC estimate: with 20 θ's
# and no error in log Ẑ(θ), the largest deviation from the common offset exceeds 3 sd about one time in twenty
CROSS_CHECK_NOISE_MULTIPLE = 3.0


def annealer(problem: Problem, proposal):
    """The annealed estimator that applies to ``problem``'s space with ``proposal`` as its start, or ``None``:
    :func:`~maxent_gan.inference.annealed.log_z_annealed` on points, its reparameterized form on a simulator's
    trajectories under a sampler with a noise map (not a mixture of them, nor the exact normalizer)."""
    if proposal is None:
        return None
    if isinstance(problem.space, Points):
        return log_z_annealed
    if isinstance(problem.space, SimulatorTrajectories) and hasattr(proposal, "transform"):
        return log_z_annealed_reparameterized
    return None


def spread_draws(flat: np.ndarray, count: int) -> np.ndarray:
    """The indices of ``count`` rows of ``flat`` (``(n, k)`` posterior draws), every ``n / count``-th along its
    first principal axis, so both tails are in (all ``n`` when ``count >= n``)."""
    centred = flat - flat.mean(0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0] if len(flat) > 1 else np.zeros(flat.shape[1])
    order = np.argsort(centred @ axis)
    return order[np.linspace(0, len(order) - 1, min(count, len(order))).round().astype(int)]


def cross_check(problem: Problem, idata: az.InferenceData, proposal, data, key: jax.Array, *,
                num_thetas: int = CROSS_CHECK_THETAS, num_particles: int = CROSS_CHECK_PARTICLES,
                replicates: int = CROSS_CHECK_REPLICATES) -> dict[str, Any] | None:
    """log Ẑ(θ) the posterior used against tempered SMC started at ``proposal``, at ``num_thetas`` of its draws
    (every ``n / num_thetas``-th, sorted along the posterior's first principal axis, so both tails are in).

    Returns ``None`` where it does not apply (:func:`annealer`: tabular or linear-Gaussian trajectories, a
    mixture of policies, or no proposal: the exact normalizer), else
    ``thetas``, ``max_difference`` (the largest |log Ẑ − log Z_SMC|), ``spread`` (the same after removing the
    median difference: a constant offset does not move a posterior), ``smc_unreliable`` (how many of the SMC
    runs their own rule flags), ``smc_noise`` (the sd of one SMC estimate from run to run, from a second,
    independent run at ``replicates`` of the θ's, spread as the picks are; ``None`` with ``replicates=0``) and
    ``replicates``, ``start_misses`` (at how many of the θ's the proposal fails the forward check over ``data``:
    SMC's own rule flags each of them) and ``bridges`` (how many SMC runs were made: none when ``start_misses``
    is more than half the θ's, and then ``max_difference``, ``spread`` and ``smc_noise`` are ``None``); numbers
    only (JSON-able). :func:`cross_check_reading` says what they mean."""
    replicates = check_positive_int("replicates", replicates, minimum=0)
    if annealer(problem, proposal) is None:
        return None
    family = problem.family
    draws = family.flatten(idata.posterior)
    flat = draws.reshape(-1, draws.shape[-1])
    used = np.asarray(idata.sample_stats["log_z"].values, np.float64).reshape(-1)
    picks = spread_draws(flat, num_thetas)
    unreliable = 0

    def at(index):
        sites = family.unflatten(flat[index])
        start = proposal.at(sites) if is_conditional(proposal) else proposal
        return family.target(family.from_sites(sites), problem.space), start

    def smc_at(index, key_run):  # the start's forward check is made once, below, not again by the bridge
        target, start = at(index)
        return annealer(problem, start)(key_run, target, start, num_particles=num_particles)

    def misses(index):  # the start's forward check over the data: a failure is one SMC's own rule flags
        if data is None:
            return False
        target, start = at(index)
        return bool(forward_reasons(forward_check(-target.unnormalized_log_prob(data), start.log_prob(data))))

    missed = [misses(index) for index in picks]
    start_misses = sum(missed)
    if start_misses > len(picks) // 2:  # the answer is decided: no bridge could vouch at most of the θ's
        return {"thetas": int(len(picks)), "max_difference": None, "spread": None, "smc_unreliable": start_misses,
                "particles": num_particles, "replicates": 0, "smc_noise": None, "start_misses": start_misses,
                "bridges": 0}
    estimates = []
    for i, index in enumerate(picks):
        estimate = smc_at(index, jax.random.fold_in(key, i))
        estimates.append(float(estimate.log_z))
        unreliable += missed[i] or bool(estimate.unreliable_reasons())
    replicates = min(replicates, len(picks))
    pairs = []
    for j, i in enumerate(np.linspace(0, len(picks) - 1, replicates).round().astype(int) if replicates else []):
        pairs.append(estimates[i] - float(smc_at(picks[i], jax.random.fold_in(key, len(picks) + j)).log_z))
    # a difference of two independent runs has twice the variance of one
    noise = float(np.sqrt(np.mean(np.square(pairs)) / 2)) if pairs else None
    differences = used[picks] - np.asarray(estimates)
    common = {"smc_unreliable": unreliable, "particles": num_particles, "replicates": len(pairs),
              "smc_noise": noise if noise is None or np.isfinite(noise) else float("inf"),
              "start_misses": start_misses, "bridges": len(picks) + len(pairs)}
    if not np.all(np.isfinite(differences)):  # an estimate that is no number: nothing vouches for the row
        return {"thetas": int(len(picks)), "max_difference": float("inf"), "spread": float("inf"), **common}
    return {"thetas": int(len(picks)), "max_difference": float(np.max(np.abs(differences))),
            "spread": float(np.max(np.abs(differences - np.median(differences)))), **common}


def cross_check_reading(check: dict[str, Any] | None) -> str | None:
    """What a cross-check says: ``"cannot vouch"`` (SMC's own rule flags it at more than half the θ's: it can
    neither confirm nor contradict log Ẑ(θ)), else ``"agrees"`` (the disagreement beyond the common offset is
    within :data:`CROSS_CHECK_TOLERANCE`), ``"disagrees"`` (beyond the tolerance plus
    :data:`CROSS_CHECK_NOISE_MULTIPLE` times SMC's own run-to-run sd, or not a number) or ``"inconclusive"``
    (above the tolerance, but within what SMC's own variation explains: more particles would tell);
    ``None`` where none ran."""
    if check is None:
        return None
    if check["smc_unreliable"] > check["thetas"] // 2:
        return "cannot vouch"
    spread, noise = check["spread"], check.get("smc_noise")
    if spread is None or not np.isfinite(spread):  # None: a non-finite value, read back from JSON
        return "disagrees"
    if spread <= CROSS_CHECK_TOLERANCE:
        return "agrees"
    if noise is None or not np.isfinite(noise) or spread > CROSS_CHECK_TOLERANCE + CROSS_CHECK_NOISE_MULTIPLE * noise:
        return "disagrees"
    return "inconclusive"


def cross_check_reasons(check: dict[str, Any] | None) -> list[str]:
    """Why the cross-check flags a posterior (empty: it does not, or it was not run)."""
    if check is None:
        return []
    reasons = []
    spread, noise = check["spread"], check.get("smc_noise")
    if cross_check_reading(check) == "disagrees":
        amount = "a non-finite amount" if spread is None or not np.isfinite(spread) else f"up to {spread:.3f} nats"
        beyond = "" if noise is None else (f", more than its own SMC's run-to-run variation ({noise:.3f} nats) "
                                           "explains" if np.isfinite(noise) else ", and its SMC gave no number")
        reasons.append(f"log Ẑ(θ) disagrees with tempered SMC started at the proposal by {amount} across "
                       f"{check['thetas']} posterior draws (beyond their common offset; > {CROSS_CHECK_TOLERANCE}"
                       f"{beyond})")
    if cross_check_reading(check) == "cannot vouch":
        misses, why = check.get("start_misses") or 0, ""
        if misses:
            why = (f" (at {misses} of them the proposal misses mass of p_θ that the data visit, which the bridge's "
                   f"moves cannot find{': no bridge was run' if check.get('bridges') == 0 else ''})")
        reasons.append(f"the cross-check's own SMC is unreliable at {check['smc_unreliable']} of {check['thetas']} "
                       f"posterior draws, so it cannot vouch for log Ẑ(θ){why}")
    return reasons
