"""log Z of a problem's reference energy with a named proposal: one call for the CLI, the
notebooks and the benchmarks (fit the proposal, draw, weight, diagnose)."""

from __future__ import annotations

import time
from typing import Any

import jax

from inference.estimators import log_z_importance
from inference.proposals.registry import make_proposal, proposal_names
from models.problems import Problem

__all__ = ["compare_proposals", "estimate_log_z"]


def estimate_log_z(
    problem: Problem,
    proposal: str,
    *,
    seed: int = 0,
    samples: int = 10_000,
    scale: float = 2.0,
    fit_steps: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Importance-sampling log Z of ``problem.target`` with the named proposal.

    Returns ``log_z``, ``log_z_exact`` (or None), ``error``, ``ess``, ``k_hat`` (a float:
    ``-inf`` when all weights are equal, ``+inf`` when too few draws; JSON writers turn those
    into null) and ``seconds`` (fit + draws). Names are checked before any work.
    """
    if proposal not in proposal_names(problem):
        raise ValueError(f"proposal: unknown name {proposal!r} for {problem.name}; "
                         f"valid: {', '.join(proposal_names(problem))}")
    target = problem.target
    if target is None:
        raise ValueError(f"problem: {problem.name} has no reference energy to estimate log Z of; "
                         "train one with `maxent-gan train`")
    key_fit, key_draw = jax.random.split(jax.random.key(seed))
    start = time.perf_counter()
    fitted = make_proposal(proposal, key_fit, target, problem=problem, scale=scale, steps=fit_steps,
                           progress=progress)
    x, log_q = fitted.sample_and_log_prob(key_draw, samples)
    estimate = log_z_importance(-target.unnormalized_log_prob(x), log_q)
    seconds = time.perf_counter() - start
    exact = None if target.log_normalizer is None else float(target.log_normalizer)
    return {
        "proposal": proposal,
        "log_z": float(estimate.log_z),
        "log_z_exact": exact,
        "error": None if exact is None else float(estimate.log_z) - exact,
        "ess": float(estimate.ess),
        "k_hat": float(estimate.k_hat),
        "seconds": seconds,
    }


def compare_proposals(problem: Problem, proposals: tuple[str, ...] | None = None, **options) -> list[dict[str, Any]]:
    """:func:`estimate_log_z` for each named proposal (default: every one that applies)."""
    return [estimate_log_z(problem, name, **options) for name in (proposals or proposal_names(problem))]
