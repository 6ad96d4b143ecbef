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
import numpy as np
import optax
from tqdm.auto import tqdm

from inference.objectives import sampler_loss
from inference.proposals.base import Proposal
from models.unnormalized import Unnormalized

__all__ = ["SamplerInfo", "SamplerState", "fit_sampler", "sampler_init", "sampler_step"]


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
) -> tuple[SamplerState, SamplerInfo]:
    """One reparameterized gradient step on :math:`L_{sampler}` (the cost is ``-target.log_prob``)."""

    @eqx.filter_value_and_grad
    def loss_fn(proposal):
        x, log_q = proposal.sample_and_log_prob(key, num_samples)
        return sampler_loss(-target.log_prob(x), log_q)

    loss, grads = loss_fn(state.proposal)
    params = eqx.filter(state.proposal, eqx.is_inexact_array)
    updates, opt_state = optimizer.update(grads, state.opt_state, params)
    return SamplerState(eqx.apply_updates(state.proposal, updates), opt_state), SamplerInfo(loss)


def fit_sampler(
    key: jax.Array,
    proposal: Proposal,
    target: Unnormalized,
    *,
    steps: int = 1000,
    num_samples: int = 256,
    optimizer: optax.GradientTransformation | None = None,
    progress: bool = True,
) -> tuple[Proposal, np.ndarray]:
    """Fit ``proposal`` to ``target`` by reverse KL; returns the fitted proposal and losses.

    Stops at the last finite state if a loss turns NaN/inf, with a warning that says so.
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps: expected a non-negative integer, got {steps!r}")
    optimizer = optax.adam(1e-2) if optimizer is None else optimizer
    state = sampler_init(proposal, optimizer)
    losses = []
    bar = tqdm(range(steps), desc="fit sampler", disable=not progress, leave=False)
    for i in bar:
        new_state, info = sampler_step(jax.random.fold_in(key, i), state, target, optimizer, num_samples)
        loss = float(info.loss)
        if not np.isfinite(loss):
            warnings.warn(f"fit_sampler: loss became {loss} at step {i}; returning the proposal of step {i - 1}",
                          stacklevel=2)
            break
        state = new_state
        losses.append(loss)
        if i % 50 == 0:
            bar.set_postfix(loss=f"{loss:.4f}")
    return state.proposal, np.asarray(losses)
