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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from maxent_gan.inference.annealed import log_z_annealed, log_z_annealed_reparameterized
from maxent_gan.inference.app.settings import CROSS_CHECK_PARTICLES, CROSS_CHECK_THETAS
from maxent_gan.inference.proposals.conditional import is_conditional
from maxent_gan.models.problem import Problem
from maxent_gan.models.spaces import Points, SimulatorTrajectories

if TYPE_CHECKING:
    import arviz as az

__all__ = ["CROSS_CHECK_PARTICLES", "CROSS_CHECK_THETAS", "CROSS_CHECK_TOLERANCE", "annealer", "cross_check",
           "cross_check_reasons", "spread_draws"]

CROSS_CHECK_TOLERANCE = 0.05  # nats: the largest disagreement, after the common offset, the check lets pass


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
                num_thetas: int = CROSS_CHECK_THETAS, num_particles: int = CROSS_CHECK_PARTICLES) -> dict[str, Any] | None:
    """log Ẑ(θ) the posterior used against tempered SMC started at ``proposal``, at ``num_thetas`` of its draws
    (every ``n / num_thetas``-th, sorted along the posterior's first principal axis, so both tails are in).

    Returns ``None`` where it does not apply (:func:`annealer`: tabular or linear-Gaussian trajectories, a
    mixture of policies, or no proposal: the exact normalizer), else
    ``thetas``, ``max_difference`` (the largest |log Ẑ − log Z_SMC|), ``spread`` (the same after removing the
    median difference: a constant offset does not move a posterior), ``smc_unreliable`` (how many of the SMC
    runs their own rule flags) and ``seconds``-free numbers only (JSON-able)."""
    if annealer(problem, proposal) is None:
        return None
    family = problem.family
    draws = family.flatten(idata.posterior)
    flat = draws.reshape(-1, draws.shape[-1])
    used = np.asarray(idata.sample_stats["log_z"].values, np.float64).reshape(-1)
    picks = spread_draws(flat, num_thetas)
    differences, unreliable = [], 0
    for i, index in enumerate(picks):
        sites = family.unflatten(flat[index])
        start = proposal.at(sites) if is_conditional(proposal) else proposal
        estimate = annealer(problem, start)(jax.random.fold_in(key, i),
                                            family.target(family.from_sites(sites), problem.space), start,
                                            num_particles=num_particles, data=data)
        differences.append(used[index] - float(estimate.log_z))
        unreliable += bool(estimate.unreliable_reasons())
    differences = np.asarray(differences)
    if not np.all(np.isfinite(differences)):  # an estimate that is no number: nothing vouches for the row
        return {"thetas": int(len(picks)), "max_difference": float("inf"), "spread": float("inf"),
                "smc_unreliable": unreliable, "particles": num_particles}
    return {"thetas": int(len(picks)), "max_difference": float(np.max(np.abs(differences))),
            "spread": float(np.max(np.abs(differences - np.median(differences)))), "smc_unreliable": unreliable,
            "particles": num_particles}


def cross_check_reasons(check: dict[str, Any] | None) -> list[str]:
    """Why the cross-check flags a posterior (empty: it does not, or it was not run)."""
    if check is None:
        return []
    reasons = []
    spread = check["spread"]
    if spread is None or not spread <= CROSS_CHECK_TOLERANCE:  # None: a non-finite value, read back from JSON
        amount = "a non-finite amount" if spread is None or not np.isfinite(spread) else f"up to {spread:.3f} nats"
        reasons.append(f"log Ẑ(θ) disagrees with tempered SMC started at the proposal by {amount} across "
                       f"{check['thetas']} posterior draws (beyond their common offset; > {CROSS_CHECK_TOLERANCE})")
    if check["smc_unreliable"] > check["thetas"] // 2:
        reasons.append(f"the cross-check's own SMC is unreliable at {check['smc_unreliable']} of {check['thetas']} "
                       "posterior draws, so it cannot vouch for log Ẑ(θ)")
    return reasons
