"""Policy proposals over trajectories (DESIGN.md §1, §3): the dynamics cancel from every weight.

A policy's density relative to the dynamics base measure ν is
:math:`\\log q(\\tau) = \\sum_t \\log \\pi(a_t | s_t)`. Draws are packed rows
(:class:`models.trajectory.TrajectoryLayout`); tabular draws are discrete, so tabular
policies train by the score-function gradient (``reparameterized = False``).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from inference.proposals.base import check_count
from models.tabular import Transitions, backward_messages, log_partition, sample_trajectories, trajectory_cost
from models.trajectory import TrajectoryLayout

__all__ = ["TabularExact", "TabularPolicy"]


def _simulate(key, transitions: Transitions, initial, horizon, n, action_logits_at):
    """Roll out ``n`` trajectories: ``s_0 ~ p_0``, ``a_t ~ softmax(action_logits_at(t, s_t))``, ``s' ~ P``."""
    key_0, key_steps = jax.random.split(key)
    states_0 = jax.random.categorical(key_0, jnp.log(initial), shape=(n,)).astype(jnp.int32)

    def forward(states, inputs):
        t, key_t = inputs
        key_action, key_state = jax.random.split(key_t)
        actions = jax.random.categorical(key_action, action_logits_at(t, states)).astype(jnp.int32)
        slot = jax.random.categorical(key_state, transitions.log_probs[states, actions])
        next_states = jnp.take_along_axis(transitions.successors[states, actions], slot[:, None], axis=1)[:, 0]
        return next_states, (next_states, actions)

    keys = jax.random.split(key_steps, horizon)
    _, (later, actions) = jax.lax.scan(forward, states_0, (jnp.arange(horizon), keys))
    return jnp.concatenate([states_0[None], later], 0).T, actions.T


class TabularPolicy(eqx.Module):
    """A time-varying softmax policy :math:`\\pi_t(a|s) \\propto e^{\\ell_t(s,a)}`, logits ``(T, S, A)``."""

    logits: jax.Array
    transitions: Transitions
    initial: jax.Array
    reparameterized: ClassVar[bool] = False

    @property
    def layout(self) -> TrajectoryLayout:
        return TrajectoryLayout(self.logits.shape[0])

    @classmethod
    def uniform(cls, transitions: Transitions, initial: jax.Array, horizon: int) -> TabularPolicy:
        """Every action equally likely: the broad proposal of a tabular problem."""
        dtype = jnp.asarray(initial).dtype
        shape = (horizon, transitions.num_states, transitions.num_actions)
        return cls(jnp.zeros(shape, dtype), transitions, jnp.asarray(initial))

    @classmethod
    def soft_optimal(cls, costs: jax.Array, transitions: Transitions, initial: jax.Array, horizon: int) -> TabularPolicy:
        """:math:`\\pi_t(a|s) \\propto e^{-c(s,a)} \\sum_{s'} P(s'|s,a)\\beta_{t+1}(s')`: the exact action
        conditional of :math:`p_c`. Equal to :math:`p_c` for deterministic dynamics; under stochastic ones
        it leaves the transitions untilted, and the weights account for the difference."""
        log_beta = backward_messages(costs, transitions, horizon)
        expected = jax.nn.logsumexp(transitions.log_probs[None] + log_beta[1:, transitions.successors], axis=-1)
        return cls(-costs[None] + expected, transitions, jnp.asarray(initial))

    def _log_policy(self) -> jax.Array:
        return jax.nn.log_softmax(self.logits, axis=-1)

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        check_count(n)
        transitions = jax.lax.stop_gradient(self.transitions)
        logits = self.logits
        states, actions = _simulate(key, transitions, self.initial, self.logits.shape[0], n,
                                    lambda t, s: logits[t, s])
        return self.layout.pack(states, actions)

    def log_prob(self, x: jax.Array) -> jax.Array:
        states, actions = self.layout.unpack(x)
        times = jnp.arange(self.logits.shape[0])
        return self._log_policy()[times[None, :], states[:, :-1], actions].sum(-1)

    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        x = self.sample(key, n)
        return x, self.log_prob(x)


class TabularExact(eqx.Module):
    """The exact trajectory-MaxEnt sampler of fixed costs: :math:`\\log q = -c(\\tau) - \\log Z` (the oracle)."""

    costs: jax.Array
    transitions: Transitions
    initial: jax.Array
    horizon: int = eqx.field(static=True)
    reparameterized: ClassVar[bool] = False

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        check_count(n)
        states, actions = sample_trajectories(key, self.costs, self.transitions, self.initial, self.horizon, n)
        return TrajectoryLayout(self.horizon).pack(states, actions)

    def log_prob(self, x: jax.Array) -> jax.Array:
        states, actions = TrajectoryLayout(self.horizon).unpack(x)
        log_z = log_partition(self.costs, self.transitions, self.initial, self.horizon)
        return -trajectory_cost(self.costs, states, actions) - log_z

    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        x = self.sample(key, n)
        return x, self.log_prob(x)
