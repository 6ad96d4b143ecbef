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
from jax.typing import ArrayLike
from tqdm.auto import tqdm

from inference.objectives import sampler_loss
from inference.proposals.base import Proposal
from inference.proposals.mixture import AnchorMixture
from inference.training import all_finite, proposal_update
from models.unnormalized import Unnormalized

__all__ = [
    "SamplerInfo", "SamplerState", "annealing_schedule", "fit_at_anchors", "fit_sampler", "sampler_init", "sampler_step",
    "sigma_anchors",
]


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


def fit_at_anchors(
    key: jax.Array,
    proposal: Proposal,
    cost_fn,
    anchors,
    *,
    steps: int = 500,
    num_samples: int = 256,
    optimizer: optax.GradientTransformation | None = None,
    chunk: int = 50,
    progress: bool = True,
) -> AnchorMixture:
    """A θ-following proposal: one copy of ``proposal`` fitted by reverse KL at each anchor θ_k, all
    at once (``vmap`` over the anchors, ``chunk`` steps per host round-trip), as an
    :class:`~inference.proposals.AnchorMixture`.

    ``cost_fn(theta, x)`` is the cost family; ``anchors`` a pytree of θ's whose leaves carry a
    leading axis of length ``K``. Every copy starts from ``proposal`` (the sampler training learned
    at θ̂) and takes ``steps`` sampler steps toward :math:`p_{\\theta_k}` (the score-function
    gradient for discrete families, as in training). Stops at the last chunk whose parameters are
    all finite, with a warning naming the step.
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps: expected a non-negative integer, got {steps!r}")
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk: expected a positive integer, got {chunk!r}")
    sizes = {leaf.shape[0] if jnp.ndim(leaf) else None for leaf in jax.tree.leaves(anchors)}
    if len(sizes) != 1 or None in sizes:
        raise ValueError("anchors: expected θ's stacked along one leading axis (the same length in every leaf)")
    (K,) = sizes
    optimizer = optax.adam(1e-2) if optimizer is None else optimizer
    components = AnchorMixture.stack([proposal] * K).components
    opt_state = eqx.filter_vmap(lambda q: sampler_init(q, optimizer).opt_state)(components)

    def one(q, opt, theta, k):
        q, opt, loss, _ = proposal_update(k, q, opt, sampler_loss, lambda x: cost_fn(theta, x), optimizer,
                                          num_samples)
        return q, opt, loss

    @eqx.filter_jit
    def run_chunk(q, opt, start, length):
        # the scan carries arrays only: a flow's static parts (its activation functions) stay outside
        static = eqx.partition((q, opt), eqx.is_array)[1]

        def body(carry, i):
            q, opt = eqx.combine(carry, static)
            keys = jax.random.split(jax.random.fold_in(key, start + i), K)
            q, opt, loss = eqx.filter_vmap(one)(q, opt, anchors, keys)
            return eqx.partition((q, opt), eqx.is_array)[0], loss

        carry, losses = jax.lax.scan(body, eqx.partition((q, opt), eqx.is_array)[0], jnp.arange(length))
        q, opt = eqx.combine(carry, static)
        return q, opt, losses

    done = 0
    bar = tqdm(total=steps, desc=f"fit sampler at {K} anchors", disable=not progress, leave=False)
    while done < steps:
        length = min(chunk, steps - done)
        new_q, new_opt, losses = run_chunk(components, opt_state, done, length)
        if not (bool(all_finite(new_q)) and bool(np.isfinite(np.asarray(losses)).all())):
            warnings.warn(f"fit_at_anchors: a loss or parameter became non-finite between steps {done} and "
                          f"{done + length}; returning the proposals of step {done}", stacklevel=2)
            break
        components, opt_state, done = new_q, new_opt, done + length
        bar.update(length)
        bar.set_postfix(loss=f"{float(np.mean(np.asarray(losses)[-1])):.4f}")
    bar.close()
    return AnchorMixture(components, K)


def sigma_anchors(mean: ArrayLike, covariance: ArrayLike, *, spread: float = 1.5) -> np.ndarray:
    """``2d + 1`` anchors spread over a Gaussian approximation of the posterior: the mean and the
    points :math:`\\mu \\pm s\\sqrt{d\\lambda_i}\\, v_i` along each principal axis (the unscented
    transform's sigma points, scaled by ``spread`` to cover a pilot that may be too narrow)."""
    mean, covariance = np.asarray(mean, float), np.asarray(covariance, float)
    if mean.ndim != 1 or covariance.shape != (mean.size, mean.size):
        raise ValueError(f"covariance: expected shape ({mean.size}, {mean.size}) for a mean of shape {mean.shape}, "
                         f"got {covariance.shape}")
    if not (np.isfinite(mean).all() and np.isfinite(covariance).all()):
        raise ValueError("mean, covariance: expected finite values")
    values, vectors = np.linalg.eigh(0.5 * (covariance + covariance.T))
    offsets = spread * np.sqrt(mean.size * np.clip(values, 0.0, None)) * vectors  # columns: the principal axes
    return np.concatenate([mean[None], mean + offsets.T, mean - offsets.T])
