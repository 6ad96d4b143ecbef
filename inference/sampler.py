"""Fitting a proposal to an energy by reverse KL: the sampler step of the paper.

.. math:: L_{sampler}(q) = E_q[c_\\theta + \\log q] = KL(q \\| p_\\theta) - \\log Z(\\theta)

An ``init``/``step`` pair (blackjax/optax style) over any equinox proposal, and the fits built on
it, which run through the one fit loop (``maxent_gan.inference.loop.fit_in_chunks``: ``lax.scan`` chunks, the
progress bar and the NaN guard per chunk) and return a :class:`~maxent_gan.inference.loop.FitResult`:
:func:`fit_sampler` (reverse KL at one θ), :func:`fit_at_anchors` (at several θ's at once),
:func:`fit_conditional` (a θ-conditional sampler over a pool of θ's) and :func:`fit_to_data` (maximum
likelihood of data: a flow's warm start, behaviour cloning by gradient).
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike
from maxent_gan.inference.loop import FIT_DTYPE, FitResult, fit_in_chunks
from maxent_gan.inference.objectives import sampler_loss
from maxent_gan.inference.proposals.base import Proposal
from maxent_gan.inference.proposals.mixture import AnchorMixture
from maxent_gan.inference.training import apply_update, proposal_update, trainable
from maxent_gan.models._validation import check_positive_int
from maxent_gan.models.unnormalized import Unnormalized
from tqdm.auto import tqdm

__all__ = [
    "FitResult", "ProposalOptimizer", "SamplerInfo", "SamplerState", "annealing_schedule", "fit_at_anchors",
    "fit_conditional", "fit_sampler", "fit_to_data", "proposal_optimizer",
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
) -> FitResult:
    """Fit ``proposal`` to ``target`` by reverse KL, one :func:`sampler_step` per step; returns a
    :class:`~maxent_gan.inference.loop.FitResult`. ``chunk`` steps run per host round-trip
    (``maxent_gan.inference.loop.fit_in_chunks``).

    ``anneal=beta0`` tempers the target from ``beta0`` to 1 (see :func:`annealing_schedule`).
    ``optimizer`` defaults to :func:`proposal_optimizer` at rate 1e-2 over ``steps`` (gradients
    clipped, and a step with a non-finite gradient skipped and counted, with a warning: plain Adam
    drove a flow on the 40-mode mixture, whose costs run to the thousands away from the modes, to
    non-finite parameters by step 84-272).
    Stops at the last finite state if a loss or parameter turns NaN/inf, with a warning.
    ``dtype``: the fit's precision (``"float32"``: faster, the proposal comes back in the dtypes it
    was given; default ``None``, the inputs' own; see :mod:`maxent_gan.inference.loop`).
    """
    check_positive_int("steps", steps, minimum=0)
    optimizer = proposal_optimizer(1e-2, steps) if optimizer is None else optimizer
    step = _ReverseKLStep(optimizer, num_draws, annealed=anneal is not None)
    args = (key, target, jnp.asarray(steps), jnp.asarray(1.0 if anneal is None else anneal))
    state, losses, stopped = fit_in_chunks(step, sampler_init(proposal, optimizer), steps, args=args,
                                           chunk=chunk, params=lambda state: state.proposal, progress=progress,
                                           desc="fit sampler", dtype=dtype)
    return _result("fit_sampler", state.proposal, losses, stopped, state.opt_state, steps)


@dataclasses.dataclass(frozen=True)
class ProposalOptimizer:
    """The samplers' optimizer everywhere (an optax ``GradientTransformation``: ``init`` and ``update``):
    global-norm clipping at 10, then Adam on a cosine schedule from ``learning_rate`` over ``steps``
    that decays to ``alpha`` times the rate (the last steps average out the draws' noise), inside
    ``optax.apply_if_finite``: a step whose gradient is non-finite is skipped (counted in the
    state's ``total_notfinite``, see :func:`skipped_steps`), and only ``MAX_SKIPPED_IN_A_ROW`` in a
    row let the NaN through to the fit's guard. One draw far in a spline's tail can make every
    gradient NaN while the loss stays finite (0 × inf in the backward pass; the 40-mode mixture,
    seeds 0 and 2).

    A frozen dataclass, equal for equal settings: a fit's compiled step is keyed on its settings by
    value, so fits with the same settings share one program (an optax optimizer a user builds is
    keyed on the object: reuse the object to reuse the program)."""

    learning_rate: float
    steps: int
    alpha: float = 0.05

    def _transformation(self) -> optax.GradientTransformation:
        schedule = optax.cosine_decay_schedule(self.learning_rate, max(self.steps, 1), alpha=self.alpha)
        return optax.apply_if_finite(optax.chain(optax.clip_by_global_norm(10.0), optax.adam(schedule)),
                                     MAX_SKIPPED_IN_A_ROW)

    def init(self, params):
        return self._transformation().init(params)

    def update(self, updates, state, params=None):
        return self._transformation().update(updates, state, params)


def proposal_optimizer(learning_rate: float, steps: int, *, alpha: float = 0.05) -> ProposalOptimizer:
    """The samplers' optimizer at ``learning_rate`` over ``steps`` (see :class:`ProposalOptimizer`)."""
    if not learning_rate > 0:
        raise ValueError(f"learning_rate: expected a positive number, got {learning_rate!r}")
    check_positive_int("steps", steps, minimum=0)
    return ProposalOptimizer(float(learning_rate), int(steps), float(alpha))


MAX_SKIPPED_IN_A_ROW = 5


def skipped_steps(opt_state) -> int:
    """How many steps :func:`proposal_optimizer` skipped for a non-finite gradient (0 for other optimizers)."""
    return int(np.sum(optax.tree_utils.tree_get(opt_state, "total_notfinite", default=0)))  # summed over vmapped fits


def _result(name: str, proposal, losses, stopped, opt_state, steps: int) -> FitResult:
    # the fits' one ending: warn where the guard stopped the fit or steps were skipped, and say so in the result
    if stopped is not None:
        cause = stopped.replace("the parameters", "the proposal's parameters")
        warnings.warn(f"{name}: {cause}", stacklevel=3)
    skipped = skipped_steps(opt_state)
    if skipped:
        warnings.warn(f"{name}: {skipped} of {steps} steps had a non-finite gradient (the loss was finite: one draw "
                      "in the proposal's far tail can do it) and were skipped", UserWarning, stacklevel=3)
    return FitResult(proposal, losses, stopped, skipped)


class _ReverseKLStep(eqx.Module):
    # fit_sampler's step: the public sampler_step at the annealed inverse temperature of step i
    optimizer: Any = eqx.field(static=True)
    num_draws: int = eqx.field(static=True)
    annealed: bool = eqx.field(static=True)

    def __call__(self, state, i, args):
        key, target, steps, beta0 = args
        beta = _beta(i, steps, beta0 if self.annealed else None)
        state, info = sampler_step(jax.random.fold_in(key, i), state, target, self.optimizer, self.num_draws, beta)
        return state, info.loss


def _beta(i: jax.Array, steps, beta0) -> jax.Array:
    # the schedule as traced arithmetic (steps and beta0 may be traced): annealing_schedule's one formula
    if beta0 is None:
        return jnp.asarray(1.0)
    return jnp.minimum(1.0, beta0 ** jnp.maximum(0.0, 1.0 - i / (0.5 * steps))).astype(jnp.result_type(beta0))


def _stacked_length(name: str, tree, what: str) -> int:
    """The length of the leading axis every leaf of ``tree`` shares (at least 1), or a ``ValueError`` naming it."""
    sizes = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in jax.tree.leaves(tree)}
    if len(sizes) != 1 or None in sizes or 0 in sizes:
        raise ValueError(f"{name}: expected {what} along one leading axis (the same length in every leaf)")
    (length,) = sizes
    return length


class _CostTarget(eqx.Module):
    # the target exp(-cost_fn(θ, x)) of one θ, for sampler_step
    cost_fn: Any = eqx.field(static=True)
    theta: Any

    def unnormalized_log_prob(self, x):
        return -self.cost_fn(self.theta, x)


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
) -> FitResult:
    """A θ-following proposal: one copy of ``proposal`` fitted by reverse KL at each anchor θ_k, all
    at once (``vmap`` of :func:`sampler_step` over the anchors, ``chunk`` steps per host round-trip);
    the result's proposal is an :class:`~maxent_gan.inference.proposals.AnchorMixture`.

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
    K = _stacked_length("anchors", anchors, "θ's stacked")
    optimizer = proposal_optimizer(1e-2, steps) if optimizer is None else optimizer
    components = AnchorMixture.stack([proposal] * K).components
    states = eqx.filter_vmap(lambda q: sampler_init(q, optimizer))(components)
    step = (_AnchorStep(cost_fn, optimizer, num_draws, K) if expected_loss is None
            else _ExactAnchorStep(expected_loss, optimizer))
    states, losses, stopped = fit_in_chunks(step, states, steps, args=(key, anchors), chunk=chunk,
                                            params=lambda states: states.proposal, progress=progress,
                                            desc=f"fit sampler at {K} anchors", dtype=dtype)
    return _result("fit_at_anchors", AnchorMixture(states.proposal, K), losses, stopped, states.opt_state, steps * K)


class _AnchorStep(eqx.Module):
    cost_fn: Any = eqx.field(static=True)
    optimizer: Any = eqx.field(static=True)
    num_draws: int = eqx.field(static=True)
    K: int = eqx.field(static=True)

    def __call__(self, states, i, args):
        key, anchors = args

        def one(state, theta, k):
            state, info = sampler_step(k, state, _CostTarget(self.cost_fn, theta), self.optimizer, self.num_draws)
            return state, info.loss

        return eqx.filter_vmap(one)(states, anchors, jax.random.split(jax.random.fold_in(key, i), self.K))


class _ExactAnchorStep(eqx.Module):
    expected_loss: Any = eqx.field(static=True)
    optimizer: Any = eqx.field(static=True)

    def __call__(self, states, i, args):
        _, anchors = args

        def one(state, theta):
            loss, grads = eqx.filter_value_and_grad(self.expected_loss)(state.proposal, theta)
            q, opt = apply_update(self.optimizer, grads, state.opt_state, state.proposal)
            return SamplerState(q, opt), loss

        return eqx.filter_vmap(one)(states, anchors)


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
) -> FitResult:
    r"""Fit a θ-conditional proposal (:class:`~maxent_gan.inference.proposals.conditional.ConditionalFlow`) by
    reverse KL over θ: each step draws ``thetas_per_step`` θ's from the pool ``thetas`` (a pytree
    whose leaves carry a leading axis: a pilot posterior's draws, a broadened Laplace
    approximation, the θ path of training) and ``num_draws`` x from :math:`q(\cdot\mid\theta)` at
    each, and descends :math:`\frac1B\sum_b E_{q(\cdot|\theta_b)}[c_{\theta_b}(x) + \log q(x|\theta_b)]`
    (the paper's sampler step, averaged over where the posterior lives). Pathwise gradient;
    ``chunk`` steps per host round-trip; stops on the last finite chunk with a warning.
    ``dtype``: the fit's precision, as in :func:`fit_sampler`.
    """
    check_positive_int("steps", steps, minimum=0)
    if not getattr(proposal, "conditional", False):
        raise ValueError("proposal: expected a θ-conditional proposal (ConditionalFlow), got "
                         f"{type(proposal).__name__}")
    _stacked_length("thetas", thetas, "θ's stacked")
    for name, value in (("num_draws", num_draws), ("thetas_per_step", thetas_per_step)):
        check_positive_int(name, value)
    optimizer = proposal_optimizer(1e-2, steps) if optimizer is None else optimizer
    step = _ConditionalStep(cost_fn, optimizer, num_draws, thetas_per_step)
    state, losses, stopped = fit_in_chunks(step, sampler_init(proposal, optimizer), steps, args=(key, thetas),
                                           chunk=chunk, params=lambda state: state.proposal, progress=progress,
                                           desc="fit conditional sampler", dtype=dtype)
    return _result("fit_conditional", state.proposal, losses, stopped, state.opt_state, steps)


class _ConditionalStep(eqx.Module):
    cost_fn: Any = eqx.field(static=True)
    optimizer: Any = eqx.field(static=True)
    num_draws: int = eqx.field(static=True)
    thetas_per_step: int = eqx.field(static=True)

    def __call__(self, state, i, args):
        key, thetas = args
        key_pick, key_draw = jax.random.split(jax.random.fold_in(key, i))
        pool = jax.tree.leaves(thetas)[0].shape[0]
        picked = jax.tree.map(lambda leaf: leaf[jax.random.randint(key_pick, (self.thetas_per_step,), 0, pool)],
                              thetas)

        def loss_fn(q):
            def one(theta, k):
                x, log_q = q.sample_and_log_prob(k, self.num_draws, theta)
                return sampler_loss(self.cost_fn(theta, x), log_q)

            return jnp.mean(jax.vmap(one)(picked, jax.random.split(key_draw, self.thetas_per_step)))

        loss, grads = eqx.filter_value_and_grad(loss_fn)(state.proposal)
        proposal, opt_state = apply_update(self.optimizer, grads, state.opt_state, state.proposal)
        return SamplerState(proposal, opt_state), loss


def fit_to_data(
    key: jax.Array,
    proposal,
    data,
    *,
    max_epochs: int = 200,
    learning_rate: float = 1e-3,
    batch_size: int = 256,
    validation: float = 0.1,
    patience: int = 20,
    progress: bool = False,
    dtype: str | None = FIT_DTYPE,
) -> FitResult:
    """Maximum likelihood of ``data`` (rows along the leading axis of every leaf: points, or a policy's
    trajectories): Adam at ``learning_rate`` on minibatches of ``batch_size`` rows, reshuffled every
    epoch, through the one fit loop (its NaN guard and ``dtype``). ``validation``: the share of rows
    held out; the fit stops when their mean negative log-likelihood has not improved for ``patience``
    epochs and returns the parameters of the best epoch (flowjax's ``fit_to_data`` recipe). With
    ``validation=0`` it runs every epoch and returns the last. The losses are the training losses of
    every step taken."""
    check_positive_int("max_epochs", max_epochs)
    check_positive_int("batch_size", batch_size)
    check_positive_int("patience", patience)
    if not 0 <= validation < 1:
        raise ValueError(f"validation: expected a share in [0, 1), got {validation!r}")
    n = _stacked_length("data", data, "rows")
    leaves = jax.tree.leaves(data)
    if not all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)):
        raise ValueError("data: contains NaN or inf")
    try:  # the rows' shape against what the proposal models, before any work (compiled once per shape)
        _mean_nll(proposal, jax.tree.map(lambda leaf: leaf[:1], data))
    except ValueError as err:
        raise ValueError(f"data: {err}") from None
    key_split, key_fit = jax.random.split(key)
    held = int(validation * n) if n > 1 else 0
    order = jax.random.permutation(key_split, n)
    held_out = jax.tree.map(lambda leaf: leaf[order[:held]], data)
    train = jax.tree.map(lambda leaf: leaf[order[held:]], data)
    batch_size = min(batch_size, n - held)
    per_epoch = (n - held) // batch_size
    optimizer = _Adam(float(learning_rate))
    step = _LikelihoodStep(optimizer, batch_size, per_epoch)
    state = sampler_init(proposal, optimizer)
    best, best_loss, since, kept, stopped = state.proposal, np.inf, 0, [], None
    bar = tqdm(range(max_epochs), desc="fit to data", disable=not progress, leave=False)
    for epoch in bar:
        state, losses, stopped = fit_in_chunks(step, state, per_epoch, args=(key_fit, train), chunk=per_epoch,
                                               start=epoch * per_epoch, params=lambda state: state.proposal,
                                               loss_name="the negative log-likelihood", dtype=dtype)
        kept.append(losses)
        if stopped is not None:
            break
        if not held:
            best = state.proposal
            continue
        loss = float(_mean_nll(state.proposal, held_out))
        bar.set_postfix(validation=f"{loss:.4f}")
        if loss < best_loss:
            best, best_loss, since = state.proposal, loss, 0
        elif (since := since + 1) >= patience:
            break
    bar.close()
    if stopped is not None and not held:
        best = state.proposal  # the guard's last good state
    return _result("fit_to_data", best, np.concatenate(kept), stopped, state.opt_state, len(kept) * per_epoch)


@dataclasses.dataclass(frozen=True)
class _Adam:
    # optax.adam at a constant rate, equal for equal rates (a fit's compiled step is keyed on it by value)
    learning_rate: float

    def init(self, params):
        return optax.adam(self.learning_rate).init(params)

    def update(self, updates, state, params=None):
        return optax.adam(self.learning_rate).update(updates, state, params)


@eqx.filter_jit
def _mean_nll(proposal, rows):
    return -jnp.mean(proposal.log_prob(rows))


class _LikelihoodStep(eqx.Module):
    # one minibatch of an epoch's shuffle (epoch i // per_epoch), the rows' mean negative log-likelihood
    optimizer: Any = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    per_epoch: int = eqx.field(static=True)

    def __call__(self, state, i, args):
        key, rows = args
        n = jax.tree.leaves(rows)[0].shape[0]
        order = jax.random.permutation(jax.random.fold_in(key, i // self.per_epoch), n)
        picked = jax.lax.dynamic_slice_in_dim(order, (i % self.per_epoch) * self.batch_size, self.batch_size)
        batch = jax.tree.map(lambda leaf: leaf[picked], rows)
        loss, grads = eqx.filter_value_and_grad(lambda q: -jnp.mean(q.log_prob(batch)))(state.proposal)
        proposal, opt_state = apply_update(self.optimizer, grads, state.opt_state, state.proposal)
        return SamplerState(proposal, opt_state), loss


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
