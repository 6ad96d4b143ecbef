"""Tabular trajectory MaxEnt: exact log Z and exact samples, in log space.

A trajectory is :math:`\\tau = (s_0, a_0, s_1, \\dots, a_{T-1}, s_T)`, its cost
:math:`c(\\tau) = \\sum_{t<T} c(s_t, a_t)`, and the base measure the dynamics,
:math:`\\nu(\\tau) = p_0(s_0) \\prod_t P(s_{t+1} | s_t, a_t)` times counting measure on actions.
The backward recursion (Ziebart 2008), with :math:`\\log \\beta_T = 0`:

.. math::

    \\log \\beta_t(s) = \\operatorname{logsumexp}_a \\big[-c(s,a)
        + \\operatorname{logsumexp}_{s'} (\\log P(s'|s,a) + \\log \\beta_{t+1}(s'))\\big],
    \\qquad \\log Z = \\operatorname{logsumexp}_s (\\log p_0(s) + \\log \\beta_0(s)).

Transitions are stored sparsely, as the ``K`` successors of each ``(s, a)`` with their log
probabilities (:class:`Transitions`), so a step costs ``S·A·K``; a dense ``(S, A, S)`` array is
accepted everywhere and converted once. Written by hand: no JAX library offers this recursion.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from maxent_gan.models._jit import compiled_when_eager
from maxent_gan.models._validation import check_positive_int

__all__ = [
    "Transitions",
    "as_transitions",
    "backward_messages",
    "check_trajectories",
    "feature_counts",
    "log_partition",
    "occupancy",
    "sample_trajectories",
    "simulate",
    "soft_action_logits",
    "trajectory_cost",
    "trajectory_log_base",
]


class Transitions(NamedTuple):
    """Sparse dynamics: ``successors[s, a, k]`` is reached with log probability ``log_probs[s, a, k]``.

    Repeated successors are allowed (their probabilities add). :func:`as_transitions` gives every
    unused slot (probability 0) a share of its row's most likely successor, so that no log probability
    is ``-inf``. Shapes ``(S, A, K)``.
    """

    successors: jax.Array
    log_probs: jax.Array

    @property
    def num_states(self) -> int:
        return self.successors.shape[0]

    @property
    def num_actions(self) -> int:
        return self.successors.shape[1]

    def dense(self) -> jax.Array:
        """The ``(S, A, S)`` probability array."""
        num_states, num_actions, _ = self.successors.shape
        rows = jnp.zeros((num_states, num_actions, num_states), self.log_probs.dtype)
        s, a = jnp.meshgrid(jnp.arange(num_states), jnp.arange(num_actions), indexing="ij")
        return rows.at[s[..., None], a[..., None], self.successors].add(jnp.exp(self.log_probs))


def as_transitions(transitions: Transitions | ArrayLike, *, atol: float = 1e-6) -> Transitions:
    """Check the dynamics and return them sparse.

    A dense ``(S, A, S)`` array keeps, per row, only its nonzero entries (``K`` = the largest
    count). Every row must be a probability vector: the error names the first bad ``(s, a)``.
    """
    if isinstance(transitions, Transitions):
        _check_not_empty(transitions.successors.shape)
        if not (_concrete(transitions.log_probs) and _concrete(transitions.successors)):
            return transitions  # traced: checked and filled where it was built
        log_probs = np.asarray(transitions.log_probs)
        if np.iscomplexobj(log_probs) or np.isnan(log_probs).any() or np.isposinf(log_probs).any():
            raise ValueError("transitions: log probabilities must be real, and finite or -inf")
        _check_rows(np.exp(log_probs).sum(-1), atol)
        successors = np.asarray(transitions.successors)
        if not np.issubdtype(successors.dtype, np.integer):
            raise ValueError(f"transitions: successors must be integers, got dtype {successors.dtype}")
        if np.any((successors < 0) | (successors >= successors.shape[0])):
            raise ValueError(f"transitions: successors must be state indices in [0, {successors.shape[0]})")
        successors, log_probs = _fill_empty_slots(successors, log_probs)
        return Transitions(jnp.asarray(successors, jnp.int32), jnp.asarray(log_probs))
    if np.iscomplexobj(transitions):
        raise ValueError(f"transitions: expected real probabilities, got dtype {np.asarray(transitions).dtype}")
    dense = np.asarray(transitions, dtype=float)
    if dense.ndim != 3 or dense.shape[0] != dense.shape[2]:
        raise ValueError(f"transitions: expected shape (S, A, S), got {dense.shape}")
    _check_not_empty(dense.shape)
    for bad, what in ((~np.isfinite(dense), "is not finite"), (dense < 0, "is negative")):
        if bad.any():
            s, a, s_next = np.argwhere(bad)[0]
            raise ValueError(
                f"transitions: entry (s={s}, a={a}, s'={s_next}) {what} ({dense[s, a, s_next]:.6g}); "
                "rows must be probabilities"
            )
    _check_rows(dense.sum(-1), atol)
    width = max(int((dense > 0).sum(-1).max()), 1)
    successors = np.argsort(-dense, axis=-1, kind="stable")[..., :width]
    kept = np.take_along_axis(dense, successors, axis=-1)
    with np.errstate(divide="ignore"):
        log_probs = np.log(kept)
    successors, log_probs = _fill_empty_slots(successors, log_probs)
    return Transitions(jnp.asarray(successors, jnp.int32), jnp.asarray(log_probs, jnp.zeros(()).dtype))


def _fill_empty_slots(successors: np.ndarray, log_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give every unused slot (probability 0) a share of the row's most likely successor, so that no
    log probability is -inf (repeated successors add up: the dynamics are the same).

    A row of a dense ``(S, A, S)`` array with fewer nonzeros than the widest row, or a sparse slot of
    probability 0, would otherwise carry ``log 0 = -inf`` into every program that touches the dynamics:
    a parameter check that sees it, a gradient that multiplies it by 0. Splitting the top successor's
    probability ``p`` over it and the ``m`` empty slots, ``log p - log(m+1)`` each, keeps every slot finite.
    """
    empty = ~np.isfinite(log_probs)
    if not empty.any():
        return successors, log_probs
    successors, log_probs = successors.copy(), log_probs.copy()
    top = np.argmax(log_probs, axis=-1)[..., None]  # a row sums to 1, so its top slot is finite
    top_successor = np.take_along_axis(successors, top, axis=-1)
    shares = empty.sum(-1, keepdims=True) + 1
    top_log_prob = np.take_along_axis(log_probs, top, axis=-1) - np.log(shares)
    log_probs = np.where(empty, top_log_prob, log_probs)
    np.put_along_axis(log_probs, top, top_log_prob, axis=-1)
    successors = np.where(empty, top_successor, successors)
    return successors, log_probs


def _concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_not_empty(shape: tuple[int, ...]) -> None:
    # NumPy's max over an empty axis would fail later with a message that names no argument
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"transitions: expected at least one state and one action, got shape {shape}")


def _check_rows(row_sums: np.ndarray, atol: float) -> None:
    bad = np.abs(row_sums - 1.0) > atol
    if bad.any():
        s, a = np.argwhere(bad)[0]
        raise ValueError(
            f"transitions: {int(bad.sum())} row(s) do not sum to 1; first (s={s}, a={a}) sums to "
            f"{row_sums[s, a]:.6g}"
        )


def _lookahead(log_beta_next: jax.Array, transitions: Transitions) -> tuple[jax.Array, jax.Array]:
    # log P(s'_k|s,a) + log β_{t+1}(s'_k), shape (S, A, K), and its log Σ_k, shape (S, A);
    # one successor (deterministic moves) needs no logsumexp
    ahead = transitions.log_probs + log_beta_next[transitions.successors]
    return ahead, ahead[..., 0] if ahead.shape[-1] == 1 else jax.nn.logsumexp(ahead, axis=-1)


def _expected_next(log_beta_next: jax.Array, transitions: Transitions) -> jax.Array:
    # log Σ_{s'} P(s'|s,a) β_{t+1}(s'), shape (S, A)
    return _lookahead(log_beta_next, transitions)[1]


def backward_messages(costs: ArrayLike, transitions: Transitions | ArrayLike, horizon: int) -> jax.Array:
    """:math:`\\log \\beta_t(s)` for ``t = 0..T``, shape ``(T+1, S)``; ``costs`` is ``(S, A)``."""
    transitions = as_transitions(transitions)
    return _backward_messages(jnp.asarray(costs), transitions, horizon, unroll=_unrolled(transitions))


# The scans run under jit with the horizon (and below, the number of rollouts) static: called
# eagerly, a lax.scan over a fresh closure compiles anew on every call, and these are called
# eagerly on every proposal draw and exact log Z outside a fit.
#
# With few (action, successor) slots (A·K <= UNROLL_LIMIT: a gridworld's 5 x 1, or 5 x 6 when it slips)
# the steps run action-major and unrolled over the slots, on (S,) vectors: XLA's CPU backend
# reduces a tiny minor axis of an (S, A) array element by element. At 10^6 states log Z ran 1.6x
# (float64) and 2.5x (float32) faster this way, log Z + gradient 1.2x and 1.7x
# (benchmarks/tabular_scale.py's notes). Wider tables keep the (S, A, K) form. So do smaller ones
# (S < UNROLL_MIN_STATES): there the unrolled program only compiles slower (it grows with the slots) and
# runs no faster: log Z + gradient, float64, of 32 x 32 with slips (30 slots) compiled in 1.23 s against
# 0.24 s and ran 15.0 ms against 12.6 ms a call (benchmarks/results/compile_times.md). The threshold is
# from one A/B run of the same timing at larger sizes (2026-12-07): 100 x 100, deterministic, 14.3 ms
# against 11.1 ms a call; 300 x 300 with slips 0.61 s against 0.97 s; 1000 x 1000 with slips 8.0 s against
# 12.8 s.
UNROLL_LIMIT = 64
UNROLL_MIN_STATES = 2**15


def _unrolled(transitions: Transitions) -> bool:
    # read where the steps are called, not inside their traces: a static argument of the jitted steps
    num_states, num_actions, width = transitions.successors.shape
    return num_actions * width <= UNROLL_LIMIT and num_states >= UNROLL_MIN_STATES


def _slot_logsumexp(terms: list[jax.Array]) -> jax.Array:
    # logsumexp over a list of (S,) vectors (the unrolled slots); all -inf gives -inf
    if len(terms) == 1:
        return terms[0]
    top = terms[0]
    for term in terms[1:]:
        top = jnp.maximum(top, term)
    top = jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, 0.0))
    return jnp.log(sum(jnp.exp(term - top) for term in terms)) + top


def _slots(transitions: Transitions) -> tuple[jax.Array, jax.Array]:
    # successors and log probabilities action-major, (A, K, S)
    return jnp.moveaxis(transitions.successors, 0, -1), jnp.moveaxis(transitions.log_probs, 0, -1)


def _unrolled_lookahead(log_beta_next, successors, log_probs) -> tuple[list, list]:
    # _lookahead on the action-major slots: per action, the K terms (S,) and their log Σ_k
    num_actions, width, _ = successors.shape
    ahead = [[log_probs[a, k] + log_beta_next[successors[a, k]] for k in range(width)] for a in range(num_actions)]
    return ahead, [_slot_logsumexp(terms) for terms in ahead]


@partial(jax.jit, static_argnames=("horizon", "unroll"))
def _backward_messages(costs: jax.Array, transitions: Transitions, horizon: int, *, unroll: bool) -> jax.Array:
    if unroll:
        successors, log_probs = _slots(transitions)
        costs_t = costs.T

        def backward(log_beta_next, _):
            _, q = _unrolled_lookahead(log_beta_next, successors, log_probs)
            log_beta = _slot_logsumexp([-costs_t[a] + q_a for a, q_a in enumerate(q)])
            return log_beta, log_beta_next
    else:
        def backward(log_beta_next, _):
            log_beta = jax.nn.logsumexp(-costs + _expected_next(log_beta_next, transitions), axis=-1)
            return log_beta, log_beta_next

    # the carry takes the promoted dtype (float32 costs with float64 dynamics give float64 messages)
    log_beta_last = jnp.zeros(costs.shape[0], jnp.result_type(costs, transitions.log_probs))
    log_beta_0, later = jax.lax.scan(backward, log_beta_last, None, length=horizon)
    # `later` holds β_T, β_{T-1}, ..., β_1 in scan order
    return jnp.concatenate([log_beta_0[None], later[::-1]], axis=0)


@partial(jax.jit, static_argnames=("horizon", "edges", "unroll"))
def _visits(costs, transitions, log_initial, horizon, edges, *, unroll):
    """The forward pass under :math:`p_c`: ``(log Z, occupancy (S, A), β_0 / Z (S,), edge visits (S, A, K) or
    None)``; :math:`\\beta_0(s)/Z = \\partial \\log Z / \\partial p_0(s)`, finite where :math:`p_0(s) = 0` too.

    :math:`\\mu_0 = \\operatorname{softmax}(\\log p_0 + \\log\\beta_0)`; at each step the pair
    :math:`(s,a)` is visited with :math:`\\mu_t(s)\\pi_t(a|s)`, :math:`\\pi_t = e^{\\ell_t - \\log\\beta_t}` with
    :math:`\\ell_t = -c + q_t` (:func:`soft_action_logits`),
    and its ``k``-th successor with that times :math:`e^{\\log P_k + \\log\\beta_{t+1}(s'_k) - q_t(s,a)}`
    (the dynamics tilted by the future); :math:`\\mu_{t+1}` sums those into each successor. Every
    exponent is a log probability (at most 0): no exp of a raw cost, and messages hundreds of nats apart
    lose nothing. The messages are recomputed from the stored :math:`\\log\\beta` rather than kept per
    step, so memory is ``(T+1)·S`` plus one step's ``S·A·K`` (and the ``S·A·K`` edge-visit sum) instead of
    the ``T·S·A·K`` residuals reverse mode would keep. The successor sums are a scatter-add (``segment_sum``).
    """
    log_beta = _backward_messages(costs, transitions, horizon, unroll=unroll)
    start = log_initial + log_beta[0]
    log_z = jax.nn.logsumexp(start)
    mu_0 = jnp.exp(start - log_z)
    start_weight = jnp.exp(log_beta[0] - log_z)
    if unroll:
        visits, edge_visits = _unrolled_visits(costs, transitions, log_beta, mu_0, edges)
        return log_z, visits, start_weight, edge_visits
    num_states = costs.shape[0]
    flat_successors = transitions.successors.reshape(-1)

    def forward(carry, inputs):
        mu, visits, edge_visits = carry
        log_beta_t, log_beta_next = inputs
        ahead, q = _lookahead(log_beta_next, transitions)
        pair = mu[:, None] * jnp.exp(-costs + q - log_beta_t[:, None])
        flow = pair[..., None] * jnp.exp(ahead - q[..., None])
        mu_next = jax.ops.segment_sum(flow.reshape(-1), flat_successors, num_segments=num_states)
        return (mu_next, visits + pair, None if edge_visits is None else edge_visits + flow), None

    init = (mu_0, jnp.zeros_like(costs), jnp.zeros(transitions.log_probs.shape, costs.dtype) if edges else None)
    (_, visits, edge_visits), _ = jax.lax.scan(forward, init, (log_beta[:-1], log_beta[1:]))
    return log_z, visits, start_weight, edge_visits


def _unrolled_visits(costs, transitions, log_beta, mu_0, edges):
    """:func:`_visits`' forward pass on the action-major slots (see :data:`UNROLL_LIMIT`): the same
    quantities, ``visits (S, A)`` and ``edge visits (S, A, K)`` or ``None``."""
    successors, log_probs = _slots(transitions)
    num_actions, width, num_states = successors.shape
    costs_t = costs.T

    def forward(carry, inputs):
        mu, visits, edge_visits = carry
        log_beta_t, log_beta_next = inputs
        ahead, q = _unrolled_lookahead(log_beta_next, successors, log_probs)
        mu_next = jnp.zeros(num_states, mu.dtype)
        pairs, flows = [], []
        for a in range(num_actions):
            pair = mu * jnp.exp(-costs_t[a] + q[a] - log_beta_t)
            pairs.append(pair)
            for k in range(width):
                flow = pair if width == 1 else pair * jnp.exp(ahead[a][k] - q[a])
                flows.append(flow)
                mu_next = mu_next.at[successors[a, k]].add(flow)
        visits = visits + jnp.stack(pairs)
        if edge_visits is not None:
            edge_visits = edge_visits + jnp.stack(flows).reshape(num_actions, width, num_states)
        return (mu_next, visits, edge_visits), None

    init = (mu_0, jnp.zeros_like(costs_t), jnp.zeros(successors.shape, costs.dtype) if edges else None)
    (_, visits, edge_visits), _ = jax.lax.scan(forward, init, (log_beta[:-1], log_beta[1:]))
    return visits.T, None if edge_visits is None else jnp.moveaxis(edge_visits, -1, 0)


@partial(jax.custom_jvp, nondiff_argnums=(3,))
def _log_partition(costs, transitions, initial, horizon):
    log_beta = _backward_messages(costs, transitions, horizon, unroll=_unrolled(transitions))
    return jax.nn.logsumexp(jnp.log(initial) + log_beta[0])


@partial(_log_partition.defjvp, symbolic_zeros=True)
def _log_partition_jvp(horizon, primals, tangents):
    """d log Z = −Σ occupancy·dc + Σ (β_0/Z)·dp_0 + Σ edge visits·d log P: one backward and one forward
    pass, where reverse mode through the scan kept every step's (S, A, K) residuals (at 10^6 states,
    gigabytes). The start enters as probabilities, not their log, so its derivative is finite where
    p_0 = 0 (the gridworld's one-hot start). Second and higher orders differentiate this rule's forward
    pass by plain autodiff (in p_0, only where p_0 > 0)."""
    costs, transitions, initial = primals
    d_costs, d_transitions, d_initial = tangents
    d_log_probs = d_transitions.log_probs
    zero = jax.custom_derivatives.SymbolicZero
    edges = not isinstance(d_log_probs, zero)
    log_z, visits, start_weight, edge_visits = _visits(costs, transitions, jnp.log(initial), horizon, edges,
                                                       unroll=_unrolled(transitions))
    d_log_z = jnp.zeros_like(log_z)
    if not isinstance(d_costs, zero):
        d_log_z = d_log_z - jnp.sum(visits * d_costs)
    if not isinstance(d_initial, zero):
        d_log_z = d_log_z + jnp.sum(start_weight * d_initial)
    if edges:
        # unused slots (log P = -inf) carry no visits and no tangent
        d_log_z = d_log_z + jnp.sum(jnp.where(edge_visits > 0, edge_visits * d_log_probs, 0.0))
    return log_z, d_log_z


_compiled_log_partition = compiled_when_eager(_log_partition)


def log_partition(
    costs: ArrayLike, transitions: Transitions | ArrayLike, initial: ArrayLike, horizon: int
) -> jax.Array:
    """Exact :math:`\\log Z` of trajectory MaxEnt: ``costs (S, A)``, ``transitions (S, A, S)`` or
    :class:`Transitions`, ``initial (S,)`` probabilities; differentiable in ``costs``, the dynamics'
    log probabilities and ``initial`` (zero start probabilities included: :math:`\\beta_0/Z`), by a
    hand-written derivative (:func:`_log_partition_jvp`: the occupancy from one forward pass); higher
    orders by autodiff of that pass (in ``initial``, where ``initial > 0``)."""
    costs, transitions, initial = _check_problem(costs, transitions, initial, horizon)
    return _compiled_log_partition(costs, transitions, initial, horizon)


def occupancy(
    costs: ArrayLike, transitions: Transitions | ArrayLike, initial: ArrayLike, horizon: int
) -> jax.Array:
    """Expected state-action visit counts under :math:`p_\\theta`, shape ``(S, A)``:
    :math:`-\\partial \\log Z / \\partial c(s,a)`, the MaxEnt IRL feature-matching term."""
    costs, transitions, initial = _check_problem(costs, transitions, initial, horizon)
    return _occupancy(costs, transitions, initial, horizon)


@compiled_when_eager
def _occupancy(costs, transitions, initial, horizon):
    return _visits(costs, transitions, jnp.log(initial), horizon, False, unroll=_unrolled(transitions))[1]


def sample_trajectories(
    key: jax.Array,
    costs: ArrayLike,
    transitions: Transitions | ArrayLike,
    initial: ArrayLike,
    horizon: int,
    n: int,
) -> tuple[jax.Array, jax.Array]:
    """Exact draws from :math:`p(\\tau) \\propto \\nu(\\tau) e^{-c(\\tau)}`: ``(states (n, T+1), actions (n, T))``.

    :math:`s_0 \\propto p_0 \\beta_0`; :math:`a_t \\propto e^{-c(s_t,a)} \\sum_{s'} P(s'|s_t,a)\\beta_{t+1}(s')`;
    :math:`s_{t+1} \\propto P(s'|s_t,a_t)\\beta_{t+1}(s')` (the dynamics tilted by the future).
    """
    costs, transitions, initial = _check_problem(costs, transitions, initial, horizon)
    n = check_positive_int("n", n)
    log_beta, action_logits = soft_action_logits(costs, transitions, horizon)
    return simulate(key, transitions, jnp.log(initial) + log_beta[0], action_logits, n, successor_log_weights=log_beta[1:])


def soft_action_logits(costs: jax.Array, transitions: Transitions, horizon: int) -> tuple[jax.Array, jax.Array]:
    """``(log β (T+1, S), ℓ (T, S, A))`` with :math:`\\ell_t(s,a) = -c(s,a) + \\log\\sum_{s'} P(s'|s,a)\\beta_{t+1}(s')`:
    the exact action conditional of :math:`p_c`, up to its normalizer over actions."""
    log_beta = backward_messages(costs, transitions, horizon)
    return log_beta, -costs[None] + jax.vmap(_expected_next, in_axes=(0, None))(log_beta[1:], transitions)


def simulate(
    key: jax.Array,
    transitions: Transitions,
    initial_logits: jax.Array,
    action_logits: jax.Array,
    n: int,
    *,
    successor_log_weights: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Roll out ``n`` trajectories: :math:`s_0 \\propto e^{\\ell_0}`, :math:`a_t \\propto e^{\\ell_t(s_t, \\cdot)}`
    (``action_logits (T, S, A)``), :math:`s_{t+1} \\propto P(s'|s_t,a_t)\\,e^{w_{t}(s')}`
    (``successor_log_weights (T, S)``; ``None``: the dynamics untilted, a policy's rollout).

    Returns ``(states (n, T+1), actions (n, T))``; shared by the exact sampler and policies.
    """
    if successor_log_weights is None:
        successor_log_weights = jnp.zeros((action_logits.shape[0], transitions.num_states), transitions.log_probs.dtype)
    return _simulate(key, transitions, initial_logits, action_logits, successor_log_weights, n)


@partial(jax.jit, static_argnames="n")
def _simulate(key, transitions, initial_logits, action_logits, successor_log_weights, n):
    horizon = action_logits.shape[0]
    key_0, key_steps = jax.random.split(key)
    states_0 = jax.random.categorical(key_0, initial_logits, shape=(n,)).astype(jnp.int32)

    def forward(states, inputs):
        key_t, logits_t, weights_next = inputs
        key_action, key_state = jax.random.split(key_t)
        actions = jax.random.categorical(key_action, logits_t[states]).astype(jnp.int32)
        successors = transitions.successors[states, actions]
        logits_next = transitions.log_probs[states, actions] + weights_next[successors]
        slot = jax.random.categorical(key_state, logits_next)
        next_states = jnp.take_along_axis(successors, slot[:, None], axis=1)[:, 0]
        return next_states, (next_states, actions)

    keys = jax.random.split(key_steps, horizon)
    _, (later_states, actions) = jax.lax.scan(forward, states_0, (keys, action_logits, successor_log_weights))
    states = jnp.concatenate([states_0[None], later_states], axis=0).T
    return states, actions.T


@compiled_when_eager
def trajectory_cost(costs: ArrayLike, states: jax.Array, actions: jax.Array) -> jax.Array:
    """:math:`c(\\tau) = \\sum_{t<T} c(s_t, a_t)`, shape ``(n,)``."""
    return jnp.asarray(costs)[states[:, :-1], actions].sum(axis=-1)


@compiled_when_eager
def feature_counts(features: ArrayLike, states: jax.Array, actions: jax.Array) -> jax.Array:
    """:math:`\\sum_{t<T} \\phi(s_t, a_t)` of each trajectory, shape ``(n, F)`` for ``features (S, A, F)``: the
    sufficient statistics of a linear cost, :math:`c_\\theta(\\tau) = \\theta\\cdot\\sum_t\\phi(s_t,a_t)`."""
    return jnp.asarray(features)[states[:, :-1], actions].sum(axis=1)


def trajectory_log_base(
    transitions: Transitions | ArrayLike, initial: ArrayLike, states: jax.Array, actions: jax.Array
) -> jax.Array:
    """:math:`\\log \\nu(\\tau) = \\log p_0(s_0) + \\sum_t \\log P(s_{t+1}|s_t,a_t)`, shape ``(n,)``
    (used by brute-force checks; weights never need it, the dynamics cancel)."""
    transitions = as_transitions(transitions)
    dense = transitions.dense()
    with np.errstate(divide="ignore"):
        log_initial = jnp.log(jnp.asarray(initial))
    steps = jnp.log(dense[states[:, :-1], actions, states[:, 1:]])
    return log_initial[states[:, 0]] + steps.sum(axis=-1)


def check_trajectories(
    states: ArrayLike, actions: ArrayLike, num_states: int, num_actions: int, horizon: int
) -> tuple[jax.Array, jax.Array]:
    """Validate demonstrations: int arrays ``(n, T+1)`` and ``(n, T)`` with values in range.

    Errors name the first bad trajectory by its index.
    """
    states_np, actions_np = np.asarray(states), np.asarray(actions)
    if states_np.ndim != 2 or actions_np.ndim != 2:
        raise ValueError(
            f"demonstrations: expected states (n, T+1) and actions (n, T), got {states_np.shape} and "
            f"{actions_np.shape}"
        )
    if states_np.shape[0] != actions_np.shape[0]:
        raise ValueError(f"demonstrations: {states_np.shape[0]} state rows but {actions_np.shape[0]} action rows")
    if actions_np.shape[1] != horizon or states_np.shape[1] != horizon + 1:
        raise ValueError(
            f"demonstrations: horizon {horizon} needs states (n, {horizon + 1}) and actions (n, {horizon}), "
            f"got {states_np.shape} and {actions_np.shape}"
        )
    for name, values, size in (("states", states_np, num_states), ("actions", actions_np, num_actions)):
        if not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"demonstrations: {name} must be integers, got dtype {values.dtype}")
        bad = (values < 0) | (values >= size)
        if bad.any():
            index, t = np.argwhere(bad)[0]
            raise ValueError(
                f"demonstrations: trajectory {index} has {name[:-1]} {values[index, t]} at t={t}, "
                f"outside 0..{size - 1}"
            )
    return jnp.asarray(states_np, jnp.int32), jnp.asarray(actions_np, jnp.int32)


def _check_problem(costs, transitions, initial, horizon):
    transitions = as_transitions(transitions)
    costs = jnp.asarray(costs)
    for name, value in (("costs", costs), ("initial", initial)):
        if jnp.iscomplexobj(value):
            raise ValueError(f"{name}: expected real values, got dtype {jnp.asarray(value).dtype}")
    if costs.shape != (transitions.num_states, transitions.num_actions):
        raise ValueError(
            f"costs: expected shape (S, A) = ({transitions.num_states}, {transitions.num_actions}) to match "
            f"transitions, got {costs.shape}"
        )
    check_positive_int("horizon", horizon)
    # one dtype for costs, dynamics and start (lax.scan needs its carry's dtype fixed)
    costs = costs.astype(jnp.result_type(costs, transitions.log_probs))
    initial = jnp.asarray(initial, costs.dtype)
    if initial.shape != (transitions.num_states,):
        raise ValueError(f"initial: expected shape ({transitions.num_states},), got {initial.shape}")
    if _concrete(initial):
        values = np.asarray(initial)
        for bad, what in ((~np.isfinite(values), "is not finite"), (values < 0, "is negative")):
            if bad.any():
                index = int(np.argwhere(bad)[0, 0])
                raise ValueError(f"initial: entry {index} {what} ({values[index]:.6g}); expected probabilities")
        if abs(values.sum() - 1) > 1e-6:
            raise ValueError(f"initial: expected probabilities that sum to 1, got sum {values.sum():.6g}")
    if _concrete(costs) and not bool(np.all(np.isfinite(np.asarray(costs)))):
        s, a = np.argwhere(~np.isfinite(np.asarray(costs)))[0]
        raise ValueError(f"costs: non-finite value at (s={s}, a={a})")
    return costs, transitions, initial
