"""Training an energy three ways, as ``init`` / ``step`` pairs.

Each method is a :class:`TrainingAlgorithm` ``(init, step)``: ``state = init(energy,
proposal)`` and ``state, info = step(key, state, batch)``. Generic over problems: the
energy is any pytree of parameters θ with ``cost_fn(θ, x) -> (n,)`` and the proposal any
:class:`~maxent_gan.inference.proposals.base.Proposal` whose draws are reparameterized (flows,
Gaussians). The IRL problems reuse these as they are, with trajectories for x.

* :func:`exact_maxent`: :math:`E_p[c_\\theta] + \\log Z(\\theta)` with an exact
  ``log_partition_fn`` (quadrature in 2D, the tabular recursion for MDPs): the gold standard.
* :func:`guided_cost_learning`: a cost step on ``cost_loss`` with the mixture estimate of
  log Z, then a sampler step on ``sampler_loss``.
* :func:`gan_form`: a discriminator step on ``discriminator_loss`` in (θ, log Z), log Z a
  learned scalar, then a generator step on ``generator_loss``.

All three also take a sampler step, so every method reports the proposal's k-hat and ESS
against the current energy (``info.log_weights``); only GCL and the GAN form use it for θ.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import paramax
from maxent_gan.inference.estimators import log_z_mixture
from maxent_gan.inference.objectives import cost_loss, discriminator_loss, generator_loss, sampler_loss
from maxent_gan.inference.proposals.base import is_reparameterized

__all__ = [
    "METHODS",
    "TrainInfo",
    "TrainState",
    "TrainingAlgorithm",
    "all_finite",
    "apply_update",
    "exact_maxent",
    "gan_form",
    "guided_cost_learning",
    "proposal_update",
    "trainable",
]

CostFn = Callable[[Any, jax.Array], jax.Array]


class TrainState(NamedTuple):
    energy: Any  # θ
    proposal: Any  # q
    log_z: jax.Array  # GAN form: the learned scalar; otherwise the last estimate
    energy_opt: Any
    proposal_opt: Any


class TrainInfo(NamedTuple):
    energy_loss: jax.Array  # L_cost (exact, GCL) or L_disc (GAN form)
    proposal_loss: jax.Array  # L_sampler (exact, GCL) or L_gen (GAN form)
    log_z: jax.Array  # exact, mixture estimate, or learned
    log_weights: jax.Array  # (num_draws,) -c_θ(x) - log q(x) of the draws, θ after the step


class TrainingAlgorithm(NamedTuple):
    init: Callable[..., TrainState]
    step: Callable[..., tuple[TrainState, TrainInfo]]


@eqx.filter_jit
def all_finite(tree) -> jax.Array:
    """Whether every :func:`trainable` leaf of ``tree`` is finite (the NaN guard's test: fixed parts such
    as a policy's dynamics are the problem's, not the fit's)."""
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(trainable(tree))]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def _is_frozen(node) -> bool:
    return isinstance(node, paramax.NonTrainable)


def trainable(tree):
    """The leaves an optimizer updates: the floating-point arrays of ``tree``, less those under a
    ``paramax.NonTrainable`` (a policy's dynamics, a flow's fixed parts). ``None`` elsewhere."""
    return eqx.filter(tree, eqx.is_inexact_array, is_leaf=_is_frozen)


def apply_update(optimizer: optax.GradientTransformation, grads, opt_state, tree):
    """One optimizer update of the :func:`trainable` leaves of ``tree``; ``(tree, opt_state)``."""
    updates, opt_state = optimizer.update(trainable(grads), opt_state, trainable(tree))
    return eqx.apply_updates(tree, updates), opt_state


def proposal_update(
    key: jax.Array,
    proposal,
    opt_state,
    loss_of: Callable[[jax.Array, jax.Array], jax.Array],
    cost_of: Callable[[jax.Array], jax.Array],
    optimizer: optax.GradientTransformation,
    num_draws: int,
):
    """One reparameterized step on ``loss_of(costs, log_q)`` of fresh draws.

    Shared by the sampler step (``sampler_loss``), the generator step (``generator_loss``)
    and ``maxent_gan.inference.sampler``. Returns ``(proposal, opt_state, loss, log_weights)``, the
    log weights of the draws under ``cost_of`` (before the update).
    """

    reparameterized = is_reparameterized(proposal)

    def loss_fn(q):
        x, log_q = q.sample_and_log_prob(key, num_draws)
        if not reparameterized:
            # the score function needs ∇ log q at the draws held fixed: no gradient flows through x
            x = jax.lax.stop_gradient(x)
            log_q = q.log_prob(x)
        costs = cost_of(x)
        loss = loss_of(costs, log_q)
        if not reparameterized:
            loss = loss + _score_function_term(loss_of, jax.lax.stop_gradient(costs), log_q)
        return loss, -costs - log_q

    (loss, log_weights), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(proposal)
    proposal, opt_state = apply_update(optimizer, grads, opt_state, proposal)
    return proposal, opt_state, loss, jax.lax.stop_gradient(log_weights)


def _score_function_term(loss_of, costs, log_q):
    """Zero in value; its gradient is the score-function part of :math:`\\nabla E_q[f]`.

    Discrete draws (tabular policies) carry no gradient, so
    :math:`\\nabla E_q[f] = E_q[(f - b)\\nabla \\log q] + E_q[\\partial f/\\partial \\log q \\cdot \\nabla \\log q]`;
    autodiff gives the second term, this adds the first with the leave-one-out baseline ``b``
    (unbiased; Kool et al. 2019). ``loss_of`` must be a mean of per-draw terms (the sampler
    and generator losses are).
    """
    per_draw = jax.lax.stop_gradient(jax.vmap(lambda c, lq: loss_of(c[None], lq[None]))(costs, log_q))
    n = per_draw.shape[0]
    baseline = (per_draw.sum() - per_draw) / (n - 1)
    surrogate = jnp.mean((per_draw - baseline) * log_q)
    return surrogate - jax.lax.stop_gradient(surrogate)


def _no_log_z(grads, state):
    # exact and GCL keep log Z out of the optimizer's parameters (a zero gradient)
    return grads, jnp.zeros_like(state.log_z)


def _init(energy_optimizer, proposal_optimizer, log_z0=0.0):
    def init(energy, proposal) -> TrainState:
        log_z = jnp.asarray(log_z0, dtype=jnp.zeros(()).dtype)
        return TrainState(
            energy, proposal, log_z,
            energy_optimizer.init(trainable((energy, log_z))), proposal_optimizer.init(trainable(proposal)),
        )

    return init


def _draws_and_densities(key, proposal, batch, num_draws):
    # the mixture's ingredients: q's draws, log q there and at the data; constants for θ's step
    x, log_q_draws = jax.lax.stop_gradient(proposal.sample_and_log_prob(key, num_draws))
    return x, log_q_draws, jax.lax.stop_gradient(proposal.log_prob(batch))


def _sampler_step(key, state, cost_fn, energy, proposal_optimizer, num_draws):
    # the sampler chases the energy after its update: L_sampler = KL(q || p_θ) - log Z(θ);
    # only q is differentiated, so θ enters as a constant
    return proposal_update(
        key, state.proposal, state.proposal_opt, sampler_loss,
        lambda x: cost_fn(energy, x), proposal_optimizer, num_draws,
    )


def exact_maxent(
    cost_fn: CostFn,
    log_partition_fn: Callable[[Any], jax.Array],
    energy_optimizer: optax.GradientTransformation,
    proposal_optimizer: optax.GradientTransformation,
    *,
    num_draws: int = 256,
) -> TrainingAlgorithm:
    """Maximum likelihood with the exact normalizer: :math:`E_p[c_\\theta] + \\log Z(\\theta)`."""

    @eqx.filter_jit
    def step(key, state: TrainState, batch: jax.Array):
        def loss_fn(energy):
            log_z = log_partition_fn(energy)
            return jnp.mean(cost_fn(energy, batch)) + log_z, log_z

        (loss, log_z), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(state.energy)
        (energy, _), energy_opt = apply_update(energy_optimizer, _no_log_z(grads, state), state.energy_opt,
                                         (state.energy, state.log_z))
        proposal, proposal_opt, proposal_loss, log_weights = _sampler_step(
            key, state, cost_fn, energy, proposal_optimizer, num_draws
        )
        state = TrainState(energy, proposal, log_z, energy_opt, proposal_opt)
        return state, TrainInfo(loss, proposal_loss, log_z, log_weights)

    return TrainingAlgorithm(_init(energy_optimizer, proposal_optimizer), step)


def guided_cost_learning(
    cost_fn: CostFn,
    energy_optimizer: optax.GradientTransformation,
    proposal_optimizer: optax.GradientTransformation,
    *,
    num_draws: int = 256,
) -> TrainingAlgorithm:
    """GCL (Finn et al. 2016): ``cost_loss`` with the mixture estimate of log Z, then a
    sampler step. μ̃ is frozen inside ``cost_loss`` (claim 2's convention)."""

    @eqx.filter_jit
    def step(key, state: TrainState, batch: jax.Array):
        key_draws, key_sampler = jax.random.split(key)
        x, log_q_draws, log_q_data = _draws_and_densities(key_draws, state.proposal, batch, num_draws)

        def loss_fn(energy):
            cost_data, cost_samples = cost_fn(energy, batch), cost_fn(energy, x)
            # the estimate enters as a constant: the gradient is E_p[∇c] - E_μ[(u/μ̃)∇c]
            log_z = jax.lax.stop_gradient(
                log_z_mixture(cost_data, cost_samples, log_q_data, log_q_draws).log_z
            )
            return cost_loss(cost_data, cost_samples, log_q_data, log_q_draws, log_z), log_z

        (loss, log_z), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(state.energy)
        (energy, _), energy_opt = apply_update(energy_optimizer, _no_log_z(grads, state), state.energy_opt,
                                         (state.energy, state.log_z))
        proposal, proposal_opt, proposal_loss, log_weights = _sampler_step(
            key_sampler, state, cost_fn, energy, proposal_optimizer, num_draws
        )
        return TrainState(energy, proposal, log_z, energy_opt, proposal_opt), TrainInfo(
            loss, proposal_loss, log_z, log_weights
        )

    return TrainingAlgorithm(_init(energy_optimizer, proposal_optimizer), step)


def gan_form(
    cost_fn: CostFn,
    energy_optimizer: optax.GradientTransformation,
    proposal_optimizer: optax.GradientTransformation,
    *,
    num_draws: int = 256,
    log_z0: float = 0.0,
) -> TrainingAlgorithm:
    """The GAN form: a discriminator :math:`D = \\sigma(-c_\\theta - \\log Z - \\log q)` with a
    learned scalar log Z, trained on ``discriminator_loss``; the generator on ``generator_loss``."""

    @eqx.filter_jit
    def step(key, state: TrainState, batch: jax.Array):
        key_draws, key_generator = jax.random.split(key)
        x, log_q_draws, log_q_data = _draws_and_densities(key_draws, state.proposal, batch, num_draws)

        def loss_fn(discriminator):
            energy, log_z = discriminator
            return discriminator_loss(cost_fn(energy, batch), cost_fn(energy, x), log_q_data, log_q_draws, log_z)

        loss, grads = eqx.filter_value_and_grad(loss_fn)((state.energy, state.log_z))
        (energy, log_z), energy_opt = apply_update(energy_optimizer, grads, state.energy_opt, (state.energy, state.log_z))
        # the generator step differentiates q only: θ and log Z enter as constants
        proposal, proposal_opt, proposal_loss, log_weights = proposal_update(
            key_generator, state.proposal, state.proposal_opt,
            lambda costs, log_q: generator_loss(costs, log_q, log_z),
            lambda points: cost_fn(energy, points), proposal_optimizer, num_draws,
        )
        return TrainState(energy, proposal, log_z, energy_opt, proposal_opt), TrainInfo(
            loss, proposal_loss, log_z, log_weights
        )

    return TrainingAlgorithm(_init(energy_optimizer, proposal_optimizer, log_z0), step)


METHODS = ("exact", "gcl", "gan")
