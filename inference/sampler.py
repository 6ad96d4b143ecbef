"""Fitting a proposal to an energy by reverse KL: the sampler step of the paper.

.. math:: L_{sampler}(q) = E_q[c_\\theta + \\log q] = KL(q \\| p_\\theta) - \\log Z(\\theta)

An ``init``/``step`` pair (blackjax/optax style) over any equinox proposal, and the fits built on
it, which run through the one fit loop (``maxent_gan.inference.loop.fit_in_chunks``: ``lax.scan`` chunks, the
progress bar and the NaN guard per chunk).
"""

from __future__ import annotations

import functools
import itertools
import warnings
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike
from maxent_gan.inference.loop import FIT_DTYPE, cached_step, fit_in_chunks
from maxent_gan.inference.objectives import sampler_loss
from maxent_gan.inference.proposals.base import Proposal
from maxent_gan.inference.proposals.mixture import AnchorMixture
from maxent_gan.inference.training import apply_update, proposal_update, trainable
from maxent_gan.models._validation import check_positive_int
from maxent_gan.models.unnormalized import Unnormalized

__all__ = [
    "SamplerInfo", "SamplerState", "annealing_schedule", "fit_at_anchors", "fit_conditional", "fit_sampler", "proposal_optimizer",
    "sampler_init", "sampler_step", "skipped_steps",
    "box_anchors", "sigma_anchors",
]


class SamplerState(NamedTuple):
    proposal: Proposal
    opt_state: Any


class SamplerInfo(NamedTuple):
    loss: jax.Array  # L_sampler = -ELBO


def sampler_init(proposal: Proposal, optimizer: optax.GradientTransformation) -> SamplerState:
    return SamplerState(proposal, optimizer.init(trainable(proposal)))


@eqx.filter_jit
def sampler_step(
    key: jax.Array,
    state: SamplerState,
    target: Unnormalized,
    optimizer: optax.GradientTransformation,
    num_draws: int,
    beta: jax.Array | float = 1.0,
) -> tuple[SamplerState, SamplerInfo]:
    """One reparameterized gradient step on :math:`L_{sampler}` for the tempered target
    :math:`e^{-\\beta c}` (``beta = 1``: the target itself; the cost is ``-target.unnormalized_log_prob``)."""
    proposal, opt_state, loss, _ = proposal_update(
        key, state.proposal, state.opt_state, sampler_loss,
        lambda x: -beta * target.unnormalized_log_prob(x), optimizer, num_draws,
    )
    return SamplerState(proposal, opt_state), SamplerInfo(loss)


def annealing_schedule(step: int, steps: int, beta0: float | None) -> float:
    """Inverse temperature: geometric from ``beta0`` to 1 over the first half, then 1.

    Reverse KL is mode-seeking; starting on a flattened target lets q spread over every
    mode before they separate (``None``: no annealing). The same formula runs inside the
    compiled fit loop (:func:`_beta`).
    """
    return float(_beta(jnp.asarray(step), steps, beta0))


def fit_sampler(
    key: jax.Array,
    proposal: Proposal,
    target: Unnormalized,
    *,
    steps: int = 1000,
    num_draws: int = 256,
    optimizer: optax.GradientTransformation | None = None,
    anneal: float | None = None,
    chunk: int = 50,
    progress: bool = True,
    dtype: str | None = FIT_DTYPE,
) -> tuple[Proposal, np.ndarray]:
    """Fit ``proposal`` to ``target`` by reverse KL; returns the fitted proposal and losses.
    ``chunk`` steps run per host round-trip (``maxent_gan.inference.loop.fit_in_chunks``).

    ``anneal=beta0`` tempers the target from ``beta0`` to 1 (see :func:`annealing_schedule`).
    ``optimizer`` defaults to :func:`proposal_optimizer` at rate 1e-2 over ``steps`` (gradients
    clipped, and a step with a non-finite gradient skipped and counted, with a warning: plain Adam
    drove a flow on the 40-mode mixture, whose costs run to the thousands away from the modes, to
    non-finite parameters by step 84-272).
    Stops at the last finite state if a loss or parameter turns NaN/inf, with a warning.
    ``dtype``: the fit's precision (``"float32"``: faster, the proposal comes back in the dtypes it
    was given; default ``None``, the inputs' own; see :mod:`maxent_gan.inference.loop`).
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps: expected a non-negative integer, got {steps!r}")
    optimizer = proposal_optimizer(1e-2, steps) if optimizer is None else optimizer
    step = cached_step(_reverse_kl_step, optimizer, num_draws, annealed=anneal is not None)
    args = (key, target, jnp.asarray(steps), jnp.asarray(1.0 if anneal is None else anneal))
    state, losses, stopped = fit_in_chunks(step, sampler_init(proposal, optimizer), steps, args=args,
                                           chunk=chunk, params=lambda state: state.proposal, progress=progress,
                                           desc="fit sampler", dtype=dtype)
    if stopped is not None:
        cause = stopped.replace("the parameters", "the proposal's parameters")
        warnings.warn(f"fit_sampler: {cause}", stacklevel=2)
    _warn_skipped("fit_sampler", state.opt_state, steps)
    return state.proposal, losses


@functools.lru_cache(maxsize=64)
def proposal_optimizer(learning_rate: float, steps: int, *, alpha: float = 0.05) -> optax.GradientTransformation:
    """The samplers' optimizer everywhere: global-norm clipping at 10, then Adam on a cosine schedule
    that decays to ``alpha`` times the rate (the last steps average out the draws' noise), inside
    ``optax.apply_if_finite``: a step whose gradient is non-finite is skipped (counted in the
    state's ``total_notfinite``, see :func:`skipped_steps`), and only ``MAX_SKIPPED_IN_A_ROW`` in a
    row let the NaN through to the fit's guard. One draw far in a spline's tail can make every
    gradient NaN while the loss stays finite (0 × inf in the backward pass; the 40-mode mixture,
    seeds 0 and 2).

    The same settings return the same object, so fits built with it reuse their compiled step
    (:func:`maxent_gan.inference.loop.cached_step` keys on the optimizer)."""
    schedule = optax.cosine_decay_schedule(learning_rate, max(steps, 1), alpha=alpha)
    return optax.apply_if_finite(optax.chain(optax.clip_by_global_norm(10.0), optax.adam(schedule)),
                                 MAX_SKIPPED_IN_A_ROW)


MAX_SKIPPED_IN_A_ROW = 5


def skipped_steps(opt_state) -> int:
    """How many steps :func:`proposal_optimizer` skipped for a non-finite gradient (0 for other optimizers)."""
    return int(np.sum(optax.tree_utils.tree_get(opt_state, "total_notfinite", default=0)))  # summed over vmapped fits


def _warn_skipped(name: str, opt_state, steps: int) -> None:
    skipped = skipped_steps(opt_state)
    if skipped:
        warnings.warn(f"{name}: {skipped} of {steps} steps had a non-finite gradient (the loss was finite: one draw "
                      "in the proposal's far tail can do it) and were skipped", UserWarning, stacklevel=3)


def _reverse_kl_step(optimizer: optax.GradientTransformation, num_draws: int, *, annealed: bool):
    def step(state, i, args):
        key, target, steps, beta0 = args
        beta = _beta(i, steps, beta0 if annealed else None)
        proposal, opt_state, loss, _ = proposal_update(
            jax.random.fold_in(key, i), state.proposal, state.opt_state, sampler_loss,
            lambda x: -beta * target.unnormalized_log_prob(x), optimizer, num_draws)
        return SamplerState(proposal, opt_state), loss

    return step


def _beta(i: jax.Array, steps, beta0) -> jax.Array:
    # the schedule as traced arithmetic (steps and beta0 may be traced): annealing_schedule's one formula
    if beta0 is None:
        return jnp.asarray(1.0)
    return jnp.minimum(1.0, beta0 ** jnp.maximum(0.0, 1.0 - i / (0.5 * steps))).astype(jnp.result_type(beta0))


def fit_at_anchors(
    key: jax.Array,
    proposal: Proposal,
    cost_fn,
    anchors,
    *,
    steps: int = 500,
    num_draws: int = 256,
    optimizer: optax.GradientTransformation | None = None,
    chunk: int = 50,
    progress: bool = True,
    dtype: str | None = FIT_DTYPE,
    expected_loss=None,
) -> AnchorMixture:
    """A θ-following proposal: one copy of ``proposal`` fitted by reverse KL at each anchor θ_k, all
    at once (``vmap`` over the anchors, ``chunk`` steps per host round-trip), as an
    :class:`~maxent_gan.inference.proposals.AnchorMixture`.

    ``cost_fn(theta, x)`` is the cost family; ``anchors`` a pytree of θ's whose leaves carry a
    leading axis of length ``K``. Every copy starts from ``proposal`` (the sampler training learned
    at θ̂) and takes ``steps`` sampler steps toward :math:`p_{\\theta_k}` (the score-function
    gradient for discrete families, as in training). Stops at the last chunk whose parameters are
    all finite, with a warning naming the step. ``dtype``: the fit's precision, as in
    :func:`fit_sampler`.

    ``expected_loss(q, θ)``: the sampler loss :math:`E_q[c_\\theta + \\log q]` computed exactly, where
    the family allows it (a tabular policy on known dynamics:
    :meth:`~maxent_gan.inference.proposals.TabularPolicy.expected_loss` of θ's cost table). Each step is then its
    exact gradient and ``num_draws`` is unused: a score-function estimate from draws learns only the
    states the draws visit, and the states it leaves untrained are where the weights' tails come from.
    """
    check_positive_int("steps", steps, minimum=0)
    check_positive_int("chunk", chunk)
    sizes = {leaf.shape[0] if jnp.ndim(leaf) else None for leaf in jax.tree.leaves(anchors)}
    if len(sizes) != 1 or None in sizes:
        raise ValueError("anchors: expected θ's stacked along one leading axis (the same length in every leaf)")
    (K,) = sizes
    optimizer = proposal_optimizer(1e-2, steps) if optimizer is None else optimizer
    components = AnchorMixture.stack([proposal] * K).components
    opt_state = eqx.filter_vmap(lambda q: sampler_init(q, optimizer).opt_state)(components)
    if expected_loss is None:
        step = cached_step(_anchor_step, cost_fn, optimizer, num_draws, K)
    else:
        step = cached_step(_exact_anchor_step, expected_loss, optimizer)
    (components, opt_state), _, stopped = fit_in_chunks(step, (components, opt_state), steps, args=(key, anchors),
                                                        chunk=chunk, params=lambda carry: carry[0], progress=progress,
                                                        desc=f"fit sampler at {K} anchors", dtype=dtype)
    if stopped is not None:
        warnings.warn(f"fit_at_anchors: {stopped}", stacklevel=2)
    _warn_skipped("fit_at_anchors", opt_state, steps * K)
    return AnchorMixture(components, K)


def _anchor_step(cost_fn, optimizer, num_draws: int, K: int):
    def one(q, opt, theta, k):
        q, opt, loss, _ = proposal_update(k, q, opt, sampler_loss, lambda x: cost_fn(theta, x), optimizer,
                                          num_draws)
        return q, opt, loss

    def step(carry, i, args):
        key, anchors = args
        q, opt = carry
        q, opt, loss = eqx.filter_vmap(one)(q, opt, anchors, jax.random.split(jax.random.fold_in(key, i), K))
        return (q, opt), loss

    return step


def _exact_anchor_step(expected_loss, optimizer):
    def one(q, opt, theta):
        loss, grads = eqx.filter_value_and_grad(expected_loss)(q, theta)
        q, opt = apply_update(optimizer, grads, opt, q)
        return q, opt, loss

    def step(carry, i, args):
        _, anchors = args
        q, opt = carry
        q, opt, loss = eqx.filter_vmap(one)(q, opt, anchors)
        return (q, opt), loss

    return step


def fit_conditional(
    key: jax.Array,
    proposal,
    cost_fn,
    thetas,
    *,
    steps: int = 1000,
    num_draws: int = 256,
    thetas_per_step: int = 8,
    optimizer: optax.GradientTransformation | None = None,
    chunk: int = 50,
    progress: bool = True,
    dtype: str | None = FIT_DTYPE,
):
    r"""Fit a θ-conditional proposal (:class:`~maxent_gan.inference.proposals.conditional.ConditionalFlow`) by
    reverse KL over θ: each step draws ``thetas_per_step`` θ's from the pool ``thetas`` (a pytree
    whose leaves carry a leading axis: a pilot posterior's draws, a broadened Laplace
    approximation, the θ path of training) and ``num_draws`` x from :math:`q(\cdot\mid\theta)` at
    each, and descends :math:`\frac1B\sum_b E_{q(\cdot|\theta_b)}[c_{\theta_b}(x) + \log q(x|\theta_b)]`
    (the paper's sampler step, averaged over where the posterior lives). Pathwise gradient;
    ``chunk`` steps per host round-trip; stops on the last finite chunk with a warning.
    ``dtype``: the fit's precision, as in :func:`fit_sampler`.
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps: expected a non-negative integer, got {steps!r}")
    if not getattr(proposal, "conditional", False):
        raise ValueError("proposal: expected a θ-conditional proposal (ConditionalFlow), got "
                         f"{type(proposal).__name__}")
    sizes = {leaf.shape[0] if jnp.ndim(leaf) else None for leaf in jax.tree.leaves(thetas)}
    if len(sizes) != 1 or None in sizes:
        raise ValueError("thetas: expected θ's stacked along one leading axis (the same length in every leaf)")
    for name, value in (("num_draws", num_draws), ("thetas_per_step", thetas_per_step)):
        check_positive_int(name, value)
    optimizer = proposal_optimizer(1e-2, steps) if optimizer is None else optimizer
    step = cached_step(_conditional_step, cost_fn, optimizer, num_draws, thetas_per_step)
    state = sampler_init(proposal, optimizer)
    state, _, stopped = fit_in_chunks(step, state, steps, args=(key, thetas), chunk=chunk,
                                      params=lambda state: state.proposal, progress=progress,
                                      desc="fit conditional sampler", dtype=dtype)
    if stopped is not None:
        warnings.warn(f"fit_conditional: {stopped}", stacklevel=2)
    _warn_skipped("fit_conditional", state.opt_state, steps)
    return state.proposal


def _conditional_step(cost_fn, optimizer, num_draws: int, thetas_per_step: int):
    def step(state, i, args):
        key, thetas = args
        key_pick, key_draw = jax.random.split(jax.random.fold_in(key, i))
        pool = jax.tree.leaves(thetas)[0].shape[0]
        picked = jax.tree.map(lambda leaf: leaf[jax.random.randint(key_pick, (thetas_per_step,), 0, pool)], thetas)

        def loss_fn(q):
            def one(theta, k):
                x, log_q = q.sample_and_log_prob(k, num_draws, theta)
                return sampler_loss(cost_fn(theta, x), log_q)

            return jnp.mean(jax.vmap(one)(picked, jax.random.split(key_draw, thetas_per_step)))

        loss, grads = eqx.filter_value_and_grad(loss_fn)(state.proposal)
        proposal, opt_state = apply_update(optimizer, grads, state.opt_state, state.proposal)
        return SamplerState(proposal, opt_state), loss

    return step


def box_anchors(mean: ArrayLike, covariance: ArrayLike, *, half_width: float = 3.0) -> np.ndarray:
    """``2^d + 1`` anchors: the mean and the corners of the box :math:`\\mu \\pm h\\sqrt{\\lambda_i}\\, v_i`
    along the principal axes of a Gaussian approximation of the posterior (``h = half_width`` sd).

    For a cost linear in θ, :math:`p_\\theta(x)/p_{\\theta_k}(x) \\propto e^{-(\\theta - \\theta_k)\\cdot\\phi(x)}`,
    so the mixture's weights stay bounded at every θ inside the anchors' convex hull and grow a heavy
    tail outside it. The box's hull holds all θ within h sd along every axis; the sigma points'
    (:func:`sigma_anchors`) only those within h sd in the sum of the axes' distances, which misses
    most of a posterior in four dimensions or more."""
    mean, covariance = _checked_gaussian(mean, covariance)
    values, vectors = np.linalg.eigh(0.5 * (covariance + covariance.T))
    corners = np.array(list(itertools.product((-1.0, 1.0), repeat=mean.size)))
    return np.concatenate([mean[None], mean + (corners * half_width * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T])


def _checked_gaussian(mean, covariance):
    mean, covariance = np.asarray(mean, float), np.asarray(covariance, float)
    if mean.ndim != 1 or covariance.shape != (mean.size, mean.size):
        raise ValueError(f"covariance: expected shape ({mean.size}, {mean.size}) for a mean of shape {mean.shape}, "
                         f"got {covariance.shape}")
    if not (np.isfinite(mean).all() and np.isfinite(covariance).all()):
        raise ValueError("mean, covariance: expected finite values")
    return mean, covariance


def sigma_anchors(mean: ArrayLike, covariance: ArrayLike, *, spread: float = 1.5) -> np.ndarray:
    """``2d + 1`` anchors spread over a Gaussian approximation of the posterior: the mean and the
    points :math:`\\mu \\pm s\\sqrt{d\\lambda_i}\\, v_i` along each principal axis (the unscented
    transform's sigma points, scaled by ``spread`` to cover a pilot that may be too narrow)."""
    mean, covariance = _checked_gaussian(mean, covariance)
    values, vectors = np.linalg.eigh(0.5 * (covariance + covariance.T))
    offsets = spread * np.sqrt(mean.size * np.clip(values, 0.0, None)) * vectors  # columns: the principal axes
    return np.concatenate([mean[None], mean + offsets.T, mean - offsets.T])
