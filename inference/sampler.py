"""Fitting a proposal to an energy by reverse KL: the sampler step of the paper.

.. math:: L_{sampler}(q) = E_q[c_\\theta + \\log q] = KL(q \\| p_\\theta) - \\log Z(\\theta)

An ``init``/``step`` pair (blackjax/optax style) over any equinox proposal with
reparameterized ``sample_and_log_prob``, and a thin Python driver with a progress bar and
a NaN guard.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from inference.objectives import sampler_loss
from inference.proposals.base import Proposal
from inference.training import all_finite, proposal_update
from models.unnormalized import Unnormalized

__all__ = ["SamplerInfo", "SamplerState", "annealing_schedule", "fit_sampler", "sampler_init", "sampler_step"]


class SamplerState(NamedTuple):
    proposal: Proposal
    opt_state: Any


class SamplerInfo(NamedTuple):
    loss: jax.Array  # L_sampler = -ELBO


def sampler_init(proposal: Proposal, optimizer: optax.GradientTransformation) -> SamplerState:
    return SamplerState(proposal, optimizer.init(eqx.filter(proposal, eqx.is_inexact_array)))


@eqx.filter_jit
def sampler_step(
    key: jax.Array,
    state: SamplerState,
    target: Unnormalized,
    optimizer: optax.GradientTransformation,
    num_samples: int,
    beta: jax.Array | float = 1.0,
) -> tuple[SamplerState, SamplerInfo]:
    """One reparameterized gradient step on :math:`L_{sampler}` for the tempered target
    :math:`e^{-\beta c}` (``beta = 1``: the target itself; the cost is ``-target.unnormalized_log_prob``)."""
    proposal, opt_state, loss, _ = proposal_update(
        key, state.proposal, state.opt_state, sampler_loss,
        lambda x: -beta * target.unnormalized_log_prob(x), optimizer, num_samples,
    )
    return SamplerState(proposal, opt_state), SamplerInfo(loss)


def annealing_schedule(step: int, steps: int, beta0: float | None) -> float:
    """Inverse temperature: geometric from ``beta0`` to 1 over the first half, then 1.

    Reverse KL is mode-seeking; starting on a flattened target lets q spread over every
    mode before they separate (``None``: no annealing).
    """
    if beta0 is None:
        return 1.0
    return float(min(1.0, beta0 ** max(0.0, 1.0 - step / (0.5 * steps))))


def fit_sampler(
    key: jax.Array,
    proposal: Proposal,
    target: Unnormalized,
    *,
    steps: int = 1000,
    num_samples: int = 256,
    optimizer: optax.GradientTransformation | None = None,
    anneal: float | None = None,
    progress: bool = True,
) -> tuple[Proposal, np.ndarray]:
    """Fit ``proposal`` to ``target`` by reverse KL; returns the fitted proposal and losses.

    ``anneal=beta0`` tempers the target from ``beta0`` to 1 (see :func:`annealing_schedule`).
    Stops at the last finite state if a loss or parameter turns NaN/inf, with a warning.
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps: expected a non-negative integer, got {steps!r}")
    optimizer = optax.adam(1e-2) if optimizer is None else optimizer
    state = sampler_init(proposal, optimizer)
    losses = []
    bar = tqdm(range(steps), desc="fit sampler", disable=not progress, leave=False)
    for i in bar:
        beta = jnp.asarray(annealing_schedule(i, steps, anneal))
        new_state, info = sampler_step(jax.random.fold_in(key, i), state, target, optimizer, num_samples, beta)
        loss = float(info.loss)
        finite_loss, finite_params = bool(np.isfinite(loss)), bool(all_finite(new_state.proposal))
        if not (finite_loss and finite_params):
            cause = (f"the loss became {loss}" if not finite_loss else
                     f"the proposal's parameters became non-finite (the loss, {loss:.6g}, was finite: its "
                     "gradient was not)")
            warnings.warn(f"fit_sampler: {cause} at step {i}; returning the proposal of step {i - 1}", stacklevel=2)
            break
        state = new_state
        losses.append(loss)
        if i % 50 == 0:
            bar.set_postfix(loss=f"{loss:.4f}")
    return state.proposal, np.asarray(losses)
