"""Policy proposals over trajectories: the dynamics cancel from every weight.

A policy's density relative to the dynamics base measure ν is
:math:`\\log q(\\tau) = \\sum_t \\log \\pi(a_t | s_t)`. Draws are packed rows
(:class:`maxent_gan.models.trajectory.TrajectoryLayout`); tabular draws are discrete, so tabular
policies train by the score-function gradient (``reparameterized = False``).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import paramax
from maxent_gan.inference._validation import require
from maxent_gan.inference.proposals.base import check_count, compiled_when_eager
from maxent_gan.models.dynamics import GaussianStart
from maxent_gan.models.lqr import _tilt, backward_riccati
from maxent_gan.models.tabular import (
    Transitions,
    log_partition,
    sample_trajectories,
    simulate,
    soft_action_logits,
    trajectory_cost,
)
from maxent_gan.models.trajectory import TrajectoryLayout

__all__ = ["LinearGaussianPolicy", "MLPGaussianPolicy", "TabularExact", "TabularPolicy"]


class TabularPolicy(eqx.Module):
    """A time-varying softmax policy :math:`\\pi_t(a|s) \\propto e^{\\ell_t(s,a)}`, logits ``(T, S, A)``,
    with its own start :math:`q_0 \\propto e^{\\ell_0(s)}` on the support of :math:`p_0`.

    Relative to the dynamics, :math:`\\log q(\\tau) = \\log q_0(s_0) - \\log p_0(s_0) + \\sum_t \\log\\pi_t(a_t|s_t)`
    (the exact model tilts the start by :math:`\\beta_0`; a fixed start would pay for it in every weight).

    With ``successor_logits`` ``(T, S)`` the sampler also tilts the transitions,
    :math:`q(s'|s,a) \\propto P(s'|s,a)e^{w_t(s')}`, adding
    :math:`\\sum_t w_t(s_{t+1}) - \\log\\sum_{s'}P(s'|s_t,a_t)e^{w_t(s')}` to :math:`\\log q`. Under stochastic
    dynamics the trajectory model :math:`p_\\theta` tilts its transitions by :math:`\\beta_{t+1}`, so only this
    family contains it (a tabular *trajectory sampler*: it needs the dynamics, which the tabular problems know).
    ``None`` (the default) is a plain policy on the untilted dynamics.
    """

    logits: jax.Array
    initial_logits: jax.Array
    successor_logits: jax.Array | None
    dynamics: paramax.NonTrainable  # (P, p_0): the problem's, never trained (no optimizer state, no gradient)
    reparameterized: ClassVar[bool] = False

    def __init__(self, logits, transitions, initial, initial_logits=None, successor_logits=None):
        self.logits = logits
        initial = jnp.asarray(initial)
        self.dynamics = paramax.NonTrainable((transitions, initial))
        self.initial_logits = jnp.zeros_like(initial) if initial_logits is None else jnp.asarray(initial_logits)
        self.successor_logits = None if successor_logits is None else jnp.asarray(successor_logits)

    @property
    def transitions(self) -> Transitions:
        return paramax.unwrap(self.dynamics)[0]

    @property
    def initial(self) -> jax.Array:
        return paramax.unwrap(self.dynamics)[1]

    def _log_start(self) -> jax.Array:
        # masked to the support of p_0 (-inf outside), so q stays absolutely continuous w.r.t. ν;
        # the parameters themselves stay finite (the NaN guard checks them)
        return jax.nn.log_softmax(jnp.where(self.initial > 0, self.initial_logits, -jnp.inf))

    @property
    def layout(self) -> TrajectoryLayout:
        return TrajectoryLayout(self.logits.shape[0])

    @classmethod
    def uniform(cls, transitions: Transitions, initial: jax.Array, horizon: int, *,
                tilted: bool = False) -> TabularPolicy:
        """Every action equally likely: the broad proposal of a tabular problem (``tilted``: with
        transition tilts, all zero, to be learned)."""
        dtype = jnp.asarray(initial).dtype
        shape = (horizon, transitions.num_states, transitions.num_actions)
        successor_logits = jnp.zeros(shape[:2], dtype) if tilted else None
        return cls(jnp.zeros(shape, dtype), transitions, jnp.asarray(initial), successor_logits=successor_logits)

    @classmethod
    def soft_optimal(cls, costs: jax.Array, transitions: Transitions, initial: jax.Array, horizon: int, *,
                     tilted: bool = False) -> TabularPolicy:
        """:math:`\\pi_t(a|s) \\propto e^{-c(s,a)} \\sum_{s'} P(s'|s,a)\\beta_{t+1}(s')`: the exact action
        conditional of :math:`p_c`. Equal to :math:`p_c` for deterministic dynamics; under stochastic ones
        it leaves the transitions untilted, and the weights account for the difference. ``tilted``
        also tilts the transitions by :math:`\\beta_{t+1}`: then it *is* :math:`p_c`."""
        log_beta, action_logits = soft_action_logits(costs, transitions, horizon)
        initial = jnp.asarray(initial)
        return cls(action_logits, transitions, initial, jnp.where(initial > 0, jnp.log(initial), 0.0) + log_beta[0],
                   successor_logits=log_beta[1:] if tilted else None)

    def _log_policy(self) -> jax.Array:
        return jax.nn.log_softmax(self.logits, axis=-1)

    @compiled_when_eager
    def sample(self, key: jax.Array, n: int) -> jax.Array:
        check_count(n)
        states, actions = simulate(key, self.transitions, self._log_start(), self.logits, n,
                                   successor_log_weights=self.successor_logits)
        return self.layout.pack(states, actions)

    @compiled_when_eager
    def log_prob(self, x: jax.Array) -> jax.Array:
        states, actions = self.layout.unpack(x)
        times = jnp.arange(self.logits.shape[0])
        log_start = self._log_start()[states[:, 0]] - jnp.log(self.initial[states[:, 0]])
        log_q = log_start + self._log_policy()[times[None, :], states[:, :-1], actions].sum(-1)
        if self.successor_logits is None:
            return log_q
        # q(s'|s,a) / P(s'|s,a) = e^{w_t(s')} / Σ_k P_k(s,a) e^{w_t(succ_k)}
        transitions = self.transitions
        w = self.successor_logits
        successors = transitions.successors[states[:, :-1], actions]  # (n, T, K)
        log_norm = jax.nn.logsumexp(transitions.log_probs[states[:, :-1], actions] + w[times[None, :, None], successors],
                                    axis=-1)
        return log_q + (w[times[None, :], states[:, 1:]] - log_norm).sum(-1)

    @compiled_when_eager
    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        x = self.sample(key, n)
        return x, self.log_prob(x)

    def expected_loss(self, costs: jax.Array) -> jax.Array:
        """The sampler loss :math:`E_q[c(\\tau) + \\log q(\\tau)]` (``log q`` relative to the dynamics, as in
        :meth:`log_prob`) computed exactly, without draws: the forward recursion of q's state marginals
        :math:`d_t(s)`, each step adding :math:`\\sum_{s,a} d_t(s)\\pi_t(a|s)[c(s,a) + \\log\\pi_t(a|s) +
        KL(q(\\cdot|s,a)\\|P(\\cdot|s,a))]`. Plus :math:`\\log Z(c)` it is :math:`KL(q\\|p_c) \\ge 0`, zero at
        the tilted soft-optimal policy. ``costs`` ``(S, A)``. Its gradient is the exact sampler gradient,
        which the known dynamics of a tabular problem make possible (the score-function estimate of
        training sees only the states its draws visit)."""
        transitions = self.transitions
        successors, log_probs = transitions.successors, transitions.log_probs
        support = self.initial > 0
        log_start = self._log_start()
        start = jnp.exp(log_start)
        log_ratio = jnp.where(support, log_start, 0.0) - jnp.log(jnp.where(support, self.initial, 1.0))
        start_term = jnp.sum(jnp.where(support, start * log_ratio, 0.0))
        log_policy = self._log_policy()  # (T, S, A)
        horizon = log_policy.shape[0]
        if self.successor_logits is None:
            log_next = jnp.broadcast_to(log_probs, (horizon, *log_probs.shape))
            tilt_kl = jnp.zeros(log_policy.shape, log_policy.dtype)
        else:  # q(s'|s,a) = P e^{w(s')} / Σ P e^{w}: log q - log P = w(s') - lse, finite on every slot
            w = self.successor_logits[:, successors]  # (T, S, A, K)
            log_norm = jax.nn.logsumexp(log_probs[None] + w, axis=-1, keepdims=True)
            log_next = log_probs[None] + w - log_norm
            tilt_kl = jnp.sum(jnp.exp(log_next) * (w - log_norm), axis=-1)

        def step(marginal, per_time):
            log_pi, log_q_next, kl = per_time
            visits = marginal[:, None] * jnp.exp(log_pi)  # (S, A)
            term = jnp.sum(visits * (costs + log_pi + kl))
            flow = visits[..., None] * jnp.exp(log_q_next)  # (S, A, K)
            return jnp.zeros_like(marginal).at[successors].add(flow), term

        _, terms = jax.lax.scan(step, start, (log_policy, log_next, tilt_kl))
        return start_term + jnp.sum(terms)


class TabularExact(eqx.Module):
    """The exact trajectory-MaxEnt sampler of fixed costs: :math:`\\log q = -c(\\tau) - \\log Z` (the oracle)."""

    costs: jax.Array
    transitions: Transitions
    initial: jax.Array
    horizon: int = eqx.field(static=True)
    reparameterized: ClassVar[bool] = False

    @compiled_when_eager
    def sample(self, key: jax.Array, n: int) -> jax.Array:
        check_count(n)
        states, actions = sample_trajectories(key, self.costs, self.transitions, self.initial, self.horizon, n)
        return TrajectoryLayout(self.horizon).pack(states, actions)

    @compiled_when_eager
    def log_prob(self, x: jax.Array) -> jax.Array:
        states, actions = TrajectoryLayout(self.horizon).unpack(x)
        log_z = log_partition(self.costs, self.transitions, self.initial, self.horizon)
        return -trajectory_cost(self.costs, states, actions) - log_z

    @compiled_when_eager
    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        x = self.sample(key, n)
        return x, self.log_prob(x)


class LinearGaussianPolicy(eqx.Module):
    """A time-varying linear-Gaussian policy :math:`u_t \\sim N(-K_t x_t + k_t, L_t L_t^\\top)` on a
    linear system :math:`x' \\sim N(Ax + Bu, W)`, with its own start :math:`x_0 \\sim q_0` and, when
    ``tilted``, its own transitions :math:`x_{t+1} \\sim N(F_t \\mu_t + f_t, C_t C_t^\\top)`,
    :math:`\\mu_t = Ax_t + Bu_t`.

    Relative to the dynamics base measure, :math:`\\log q(\\tau) = \\log q_0(x_0) - \\log p_0(x_0)
    + \\sum_t \\log \\pi_t(u_t|x_t)` (+ :math:`\\sum_t \\log q_t(x_{t+1}|\\mu_t) - \\log N(x_{t+1}; \\mu_t, W)`
    when tilted): the exact model tilts the start by :math:`\\beta_0` and every transition by
    :math:`\\beta_{t+1}` (:func:`maxent_gan.models.lqr.sample_trajectories`), and a proposal that could not
    follow would pay for it in every weight. An untilted policy reaches :math:`p_\\theta` only when
    W = 0; a tilted one contains it (``soft_optimal(..., tilted=True)`` is :math:`p_\\theta`, its log
    weights are log Z at every draw). Needs :math:`S_0` (and, tilted, W) positive definite.

    Draws are reparameterized through the (known, differentiable) dynamics, so the sampler step
    is a pathwise gradient. ``K (T, m, n)``, ``k (T, m)``, ``scale_tril (T, m, m)``; tilted:
    ``transition_gain F (T, n, n)``, ``transition_shift f (T, n)``, ``transition_tril (T, n, n)``
    (``None`` when untilted).
    """

    K: jax.Array
    k: jax.Array
    scale_tril: jax.Array
    initial_mean: jax.Array  # q0(x0) = N(initial_mean, initial_tril initial_trilᵀ)
    initial_tril: jax.Array
    dynamics: paramax.NonTrainable  # (A, B, W, m0, S0): the system's, never trained
    transition_gain: jax.Array | None
    transition_shift: jax.Array | None
    transition_tril: jax.Array | None
    reparameterized: ClassVar[bool] = True

    def __init__(self, K, k, scale_tril, initial_mean, initial_tril, system, transitions=None):
        self.K, self.k, self.scale_tril = K, k, scale_tril
        self.initial_mean, self.initial_tril = initial_mean, initial_tril
        self.dynamics = paramax.NonTrainable(tuple(system))
        if transitions is not None:
            require(jnp.linalg.eigvalsh(system[2]) > 0, "transitions: a tilted linear-Gaussian policy needs a positive "
                    "definite dynamics noise W (with W singular the transitions are not a density to tilt)")
            gain, shift, tril = transitions
            horizon, n = K.shape[0], K.shape[2]
            for name, value, shape in (("transition_gain", gain, (horizon, n, n)), ("transition_shift", shift, (horizon, n)),
                                       ("transition_tril", tril, (horizon, n, n))):
                if jnp.shape(value) != shape:
                    raise ValueError(f"transitions: {name} has shape {jnp.shape(value)}, expected {shape}")
            self.transition_gain, self.transition_shift, self.transition_tril = gain, shift, tril
        else:
            self.transition_gain = self.transition_shift = self.transition_tril = None

    @property
    def tilted(self) -> bool:
        return self.transition_gain is not None

    @property
    def system(self) -> tuple:
        return paramax.unwrap(self.dynamics)

    @property
    def layout(self) -> TrajectoryLayout:
        horizon, m, n = self.K.shape
        return TrajectoryLayout(horizon, n, m)

    @staticmethod
    def untilted_transitions(system, horizon: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(F, f, raw C)`` of the dynamics themselves (F = I, f = 0, C = chol W): tilts at zero."""
        A, W = system[0], system[2]
        n = A.shape[0]
        return (jnp.broadcast_to(jnp.eye(n, dtype=A.dtype), (horizon, n, n)), jnp.zeros((horizon, n), A.dtype),
                jnp.broadcast_to(_raw_tril(W), (horizon, n, n)))

    @classmethod
    def broad(cls, system, horizon: int, scale: float = 1.0, *, tilted: bool = False) -> LinearGaussianPolicy:
        """Zero gains and actions :math:`N(0, s^2 I)`: the broad proposal of a linear system (tilted: with
        the dynamics' own transitions as the starting tilts)."""
        A, B = system[0], system[1]
        n, m = B.shape
        covariance = jnp.broadcast_to(scale**2 * jnp.eye(m, dtype=A.dtype), (horizon, m, m))
        m0, S0 = system[3], system[4]
        return cls(jnp.zeros((horizon, m, n), A.dtype), jnp.zeros((horizon, m), A.dtype),
                   _raw_tril(covariance), m0, _raw_tril(S0), tuple(system),
                   cls.untilted_transitions(system, horizon) if tilted else None)

    @classmethod
    def soft_optimal(cls, system, Q: jax.Array, R: jax.Array, horizon: int, *, tilted: bool = False
                     ) -> LinearGaussianPolicy:
        """The exact action conditional of the LQR MaxEnt model, :math:`u_t \\sim N(-H_t^{-1}G_t x_t, H_t^{-1})`
        (maxent_gan.models.lqr). Untilted, the transitions stay the dynamics', so unless W = 0 the weights still
        matter; ``tilted``: with the exact tilted transitions
        :math:`N((I + WP_{t+1})^{-1}\\mu_t,\\ W - WP_{t+1}(I+WP_{t+1})^{-1}W)` too, i.e. :math:`p_\\theta` itself."""
        A, B, W, m0, S0 = system
        riccati = backward_riccati(A, B, Q, R, W, horizon)
        eye = jnp.eye(A.shape[0], dtype=A.dtype)
        initial_mean, initial_cov = _tilt(m0, S0, riccati.P[0], eye)
        transitions = None
        if tilted:  # N(μ, W) tilted by β_{t+1}: mean (I + W P_{t+1})^{-1} μ, i.e. _tilt of the identity map
            gain, cov = jax.vmap(lambda P_next: _tilt(eye, W, P_next, eye))(riccati.P[1:])
            transitions = (gain, jnp.zeros((horizon, A.shape[0]), A.dtype), _raw_tril(cov))
        return cls(riccati.gain, jnp.zeros(riccati.gain.shape[:2], A.dtype), _raw_tril(riccati.action_cov),
                   initial_mean, _raw_tril(initial_cov), tuple(system), transitions)

    def _unpack_system(self):
        A, B, W, m0, S0 = self.system
        return A, B, W, m0, S0

    def _tril(self) -> jax.Array:
        return _positive_tril(self.scale_tril)

    def _initial_log_ratio(self, x0: jax.Array) -> jax.Array:
        _, _, _, m0, S0 = self._unpack_system()
        return _start_log_ratio(x0, self.initial_mean, self.initial_tril, m0, S0)

    def _transition_log_ratio(self, mean: jax.Array, x_next: jax.Array) -> jax.Array:
        # Σ_t log q_t(x_{t+1} | μ_t) - log N(x_{t+1}; μ_t, W); mean and x_next (T, b, n)
        W = self.system[2]
        tril = _positive_tril(self.transition_tril)
        tilted_mean = jnp.einsum("tij,tbj->tbi", self.transition_gain, mean) + self.transition_shift[:, None]
        own = jax.vmap(jax.scipy.stats.multivariate_normal.logpdf)(x_next, tilted_mean,
                                                                   tril @ jnp.swapaxes(tril, -1, -2))
        return (own - jax.scipy.stats.multivariate_normal.logpdf(x_next, mean, W)).sum(0)

    @compiled_when_eager
    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        check_count(n)
        A, B, W, m0, S0 = self._unpack_system()
        horizon, m, dx = self.K.shape
        key_0, key_u, key_x = jax.random.split(key, 3)
        x0 = self.initial_mean + jax.random.normal(key_0, (n, dx), A.dtype) @ _positive_tril(self.initial_tril).T
        noise_u = jax.random.normal(key_u, (horizon, n, m), A.dtype)
        if self.tilted:
            gain, shift = self.transition_gain, self.transition_shift
            noise_x = jnp.einsum("tbj,tij->tbi", jax.random.normal(key_x, (horizon, n, dx), A.dtype),
                                 _positive_tril(self.transition_tril))
        else:
            gain = jnp.broadcast_to(jnp.eye(dx, dtype=A.dtype), (horizon, dx, dx))
            shift = jnp.zeros((horizon, dx), A.dtype)
            noise_x = jax.random.normal(key_x, (horizon, n, dx), A.dtype) @ _psd_factor(W).T
        tril = self._tril()

        def forward(x, inputs):
            K, k, L, eps, F, f, xi = inputs
            u = -x @ K.T + k + eps @ L.T
            log_q = jax.scipy.stats.multivariate_normal.logpdf(u, -x @ K.T + k, L @ L.T)
            mean = x @ A.T + u @ B.T
            return mean @ F.T + f + xi, (x, u, log_q, mean)

        last, (states, actions, log_q, means) = jax.lax.scan(forward, x0, (self.K, self.k, tril, noise_u, gain, shift,
                                                                           noise_x))
        later = jnp.concatenate([states[1:], last[None]], 0)
        log_q = log_q.sum(0) + self._initial_log_ratio(x0)
        if self.tilted:
            log_q = log_q + self._transition_log_ratio(means, later)
        states = jnp.concatenate([states, last[None]], 0)
        packed = self.layout.pack(jnp.swapaxes(states, 0, 1), jnp.swapaxes(actions, 0, 1))
        return packed, log_q

    @compiled_when_eager
    def sample(self, key: jax.Array, n: int) -> jax.Array:
        return self.sample_and_log_prob(key, n)[0]

    @compiled_when_eager
    def log_prob(self, x: jax.Array) -> jax.Array:
        states, actions = self.layout.unpack(x)
        tril = self._tril()
        mean = -jnp.einsum("tmn,btn->btm", self.K, states[:, :-1]) + self.k
        cov = tril @ jnp.swapaxes(tril, -1, -2)
        steps = jax.vmap(jax.scipy.stats.multivariate_normal.logpdf, in_axes=(1, 1, 0))(actions, mean, cov)
        log_q = steps.sum(0) + self._initial_log_ratio(states[:, 0])
        if self.tilted:
            A, B = self.system[0], self.system[1]
            means = jnp.swapaxes(states[:, :-1] @ A.T + actions @ B.T, 0, 1)
            log_q = log_q + self._transition_log_ratio(means, jnp.swapaxes(states[:, 1:], 0, 1))
        return log_q


def _start_log_ratio(x0, mean, raw_tril, m0, S0) -> jax.Array:
    # log q0(x0) - log p0(x0): the proposal's own Gaussian start against the dynamics' start
    tril = _positive_tril(raw_tril)
    return (jax.scipy.stats.multivariate_normal.logpdf(x0, mean, tril @ tril.T)
            - jax.scipy.stats.multivariate_normal.logpdf(x0, m0, S0))




class MLPGaussianPolicy(eqx.Module):
    """:math:`a_t \\sim N(\\mu_\\phi(s_t, t/T), \\mathrm{diag}\\,\\sigma_\\phi(s_t, t/T)^2)`, an MLP, on a
    differentiable simulator (:class:`~maxent_gan.models.dynamics.Dynamics`), squashed into the action box
    by :math:`\\tanh` where the actions are bounded.

    Reparameterized through the dynamics. Its density is relative to the dynamics' base measure
    :math:`\\nu`: :math:`\\log q(\\tau) - \\log \\nu(\\tau) = \\log q_0(s_0) - \\log p_0(s_0) +
    \\sum_t [\\log \\pi(a_t | s_t) - \\log \\mu(a_t)]` (the transition densities cancel). The start is
    learned too, since :math:`p_\\theta` reweights starts by how cheap the task is from them: a Gaussian
    start by its own mean and covariance (starting at :math:`p_0`'s); a box start as a logistic-normal on
    the box's free coordinates, :math:`s_0 = l + (h - l)\\,\\sigma(z)`, :math:`z \\sim N(m, LL^T)`, starting at
    :math:`m = 0`, :math:`LL^T = (\\pi^2/3) I` (the logistic's variance: close to uniform). Where the dynamics
    have a ``mirror`` symmetry the policy respects it by construction (its mean odd, its scale even), so it
    covers both mirror-image modes of :math:`p_\\theta` (from a symmetric start the first action's mean is 0).
    """

    mlp: eqx.nn.MLP
    initial_mean: jax.Array  # the start's Gaussian (in logit space for a box start; empty for a fixed one)
    initial_tril: jax.Array
    dynamics: object = eqx.field(static=True)  # a hashable maxent_gan.models.dynamics.Dynamics
    reparameterized: ClassVar[bool] = True

    def __init__(self, key: jax.Array, dynamics, *, width: int = 64, depth: int = 2):
        do, du = dynamics.observation_dim, dynamics.action_dim
        dtype = jnp.zeros(()).dtype
        mlp = eqx.nn.MLP(do + 1, 2 * du, width, depth, activation=jax.nn.silu, key=key, dtype=dtype)
        # start at N(0, I) actions (unbounded) or N(0, I) before the squash (a box): a zero last layer,
        # and softplus(0.5413) = 1 for the scale
        last = mlp.layers[-1]
        bias = jnp.concatenate([jnp.zeros(du, dtype), jnp.full(du, 0.5413, dtype)])
        mlp = eqx.tree_at(lambda m: (m.layers[-1].weight, m.layers[-1].bias), mlp, (jnp.zeros_like(last.weight), bias))
        self.mlp = mlp
        if isinstance(dynamics.start, GaussianStart):
            self.initial_mean = jnp.asarray(dynamics.start.mean, dtype)
            self.initial_tril = _raw_tril(jnp.asarray(dynamics.start.cov, dtype))
        else:
            free = len(_free_coordinates(dynamics.start))
            self.initial_mean = jnp.zeros(free, dtype)
            self.initial_tril = _raw_tril(jnp.pi**2 / 3 * jnp.eye(free, dtype=dtype))
        self.dynamics = dynamics

    @property
    def layout(self) -> TrajectoryLayout:
        return self.dynamics.layout

    def _action_distribution(self, x: jax.Array, t: jax.Array):
        horizon = self.dynamics.horizon
        x = self.dynamics.observation(x)
        time = jnp.broadcast_to(t / horizon, x.shape[:-1] + (1,)).astype(x.dtype)

        def network(obs):
            inputs = jnp.concatenate([obs, time], -1)
            return jax.vmap(self.mlp)(inputs.reshape(-1, inputs.shape[-1])).reshape(obs.shape[:-1] + (-1,))

        out = network(x)
        du = self.layout.action_dim
        mean, raw_scale = out[..., :du], out[..., du:]
        if self.dynamics.mirror is not None:
            # symmetric by construction: the mean odd and the scale even under the mirror, so that
            # π(-a | mirror(s)) = π(a | s) and q gives mirror-image trajectories the same density
            mirrored = network(self.dynamics.mirror(x))
            mean, raw_scale = 0.5 * (mean - mirrored[..., :du]), 0.5 * (raw_scale + mirrored[..., du:])
        return mean, jax.nn.softplus(raw_scale) + 1e-4

    def act(self, key: jax.Array, states: jax.Array, t: int | jax.Array) -> jax.Array:
        """Actions ``(..., da)`` drawn for ``states`` ``(..., ds)`` at step ``t`` (squashed into the box): the
        policy alone, from any states (the environment's own resets, other dynamics), without its start."""
        mean, scale = self._action_distribution(states, jnp.asarray(t))
        return self._squash(mean + scale * jax.random.normal(key, mean.shape, mean.dtype))

    def _log_ratio_actions(self, z: jax.Array, mean: jax.Array, scale: jax.Array) -> jax.Array:
        # log π(a) - log μ(a) summed over the action's coordinates, with a = squash(z)
        log_normal = jax.scipy.stats.norm.logpdf(z, mean, scale)
        if not self.dynamics.bounded:
            return jnp.sum(log_normal, -1)
        # a = c + h tanh z: log π(a) = log N(z) - log h - log(1 - tanh² z); log μ(a) = -log 2h
        log_one_minus_tanh2 = 2 * (jnp.log(2.0) - z - jax.nn.softplus(-2 * z))
        return jnp.sum(log_normal - log_one_minus_tanh2 + jnp.log(2.0), -1)

    def _squash(self, z: jax.Array) -> jax.Array:
        if not self.dynamics.bounded:
            return z
        centre, half = self.dynamics.action_box(z.dtype)
        return centre + half * jnp.tanh(z)

    def _unsquash(self, a: jax.Array) -> jax.Array:
        if not self.dynamics.bounded:
            return a
        centre, half = self.dynamics.action_box(a.dtype)
        # an action on the box's edge (recorded, or a draw whose tanh rounded to 1) is read just inside it
        edge = 1 - 10 * jnp.finfo(a.dtype).eps
        return jnp.arctanh(jnp.clip((a - centre) / half, -edge, edge))

    @property
    def _start_noise_dim(self) -> int:
        return self.initial_mean.shape[0]

    @property
    def noise_dim(self) -> int:
        """The length of the standard normal noise one draw is a function of (:meth:`transform`): the start's
        free coordinates, the pre-squash actions, and the transition noise where the dynamics have some."""
        dynamics = self.dynamics
        transition = dynamics.horizon * dynamics.state_dim if dynamics.noise > 0 else 0
        return self._start_noise_dim + dynamics.horizon * dynamics.action_dim + transition

    def _start(self, noise: jax.Array) -> tuple[jax.Array, jax.Array]:
        n, dtype = noise.shape[0], noise.dtype
        if not self._start_noise_dim:  # a fixed start
            return jnp.broadcast_to(jnp.asarray(self.dynamics.start.low, dtype), (n, self.layout.state_dim)), \
                jnp.zeros(n, dtype)
        z = self.initial_mean + noise @ _positive_tril(self.initial_tril).T
        if isinstance(self.dynamics.start, GaussianStart):
            return z, self._start_log_ratio(z)
        low, high, free = self._box(dtype)
        x0 = jnp.broadcast_to(low, (n, low.shape[0])).at[:, free].set(low[free] + (high - low)[free] * jax.nn.sigmoid(z))
        return x0, self._box_log_ratio(z)

    def _box(self, dtype):
        start = self.dynamics.start
        return (jnp.asarray(start.low, dtype), jnp.asarray(start.high, dtype),
                jnp.asarray(_free_coordinates(start), int))

    def _box_log_ratio(self, z: jax.Array) -> jax.Array:
        # log q0(s0) - log p0(s0) with s0 = l + (h - l) sigmoid(z): the (h - l) cancel against p0's volume
        tril = _positive_tril(self.initial_tril)
        log_normal = jax.scipy.stats.multivariate_normal.logpdf(z, self.initial_mean, tril @ tril.T)
        return log_normal - jnp.sum(jax.nn.log_sigmoid(z) + jax.nn.log_sigmoid(-z), -1)

    def _start_log_ratio(self, x0: jax.Array) -> jax.Array:
        tril = _positive_tril(self.initial_tril)
        if isinstance(self.dynamics.start, GaussianStart):
            return (jax.scipy.stats.multivariate_normal.logpdf(x0, self.initial_mean, tril @ tril.T)
                    - self.dynamics.start_log_prob(x0))
        low, high, free = self._box(x0.dtype)
        inside = jnp.isfinite(self.dynamics.start_log_prob(x0))
        if not free.shape[0]:  # a fixed start: the ratio is 1 there
            return jnp.where(inside, 0.0, -jnp.inf).astype(x0.dtype)
        # a recorded start on the box's edge is read just inside it
        edge = 10 * jnp.finfo(x0.dtype).eps
        u = jnp.clip((x0[..., free] - low[free]) / (high - low)[free], edge, 1 - edge)
        return jnp.where(inside, self._box_log_ratio(jnp.log(u) - jnp.log1p(-u)), -jnp.inf)

    def transform(self, noise: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Draws and their log density (relative to the base measure) from standard normal ``noise``
        ``(n, noise_dim)``: a smooth map, so a sampler can run in the noise's space (the annealed estimator's
        :func:`~maxent_gan.inference.annealed.log_z_annealed_reparameterized`)."""
        dynamics = self.dynamics
        n, (dx, du), horizon = noise.shape[0], (self.layout.state_dim, self.layout.action_dim), dynamics.horizon
        start_dim = self._start_noise_dim
        x0, log_start = self._start(noise[:, :start_dim])
        noise_u = jnp.swapaxes(noise[:, start_dim:start_dim + horizon * du].reshape(n, horizon, du), 0, 1)
        if dynamics.noise > 0:
            noise_x = jnp.swapaxes(noise[:, start_dim + horizon * du:].reshape(n, horizon, dx), 0, 1)
        else:
            noise_x = jnp.zeros((horizon, n, dx), noise.dtype)

        def forward(x, inputs):
            t, eps, xi = inputs
            mean, scale = self._action_distribution(x, t)
            z = mean + scale * eps
            u = self._squash(z)
            return dynamics.step(x, u) + dynamics.noise * xi, (x, u, self._log_ratio_actions(z, mean, scale))

        last, (states, actions, log_pi) = jax.lax.scan(forward, x0, (jnp.arange(horizon), noise_u, noise_x))
        states = jnp.concatenate([states, last[None]], 0)
        packed = self.layout.pack(jnp.swapaxes(states, 0, 1), jnp.swapaxes(actions, 0, 1))
        return packed, log_pi.sum(0) + log_start

    @compiled_when_eager
    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        check_count(n)
        dtype = self.mlp.layers[-1].bias.dtype
        return self.transform(jax.random.normal(key, (n, self.noise_dim), dtype))

    @compiled_when_eager
    def sample(self, key: jax.Array, n: int) -> jax.Array:
        return self.sample_and_log_prob(key, n)[0]

    @compiled_when_eager
    def log_prob(self, x: jax.Array) -> jax.Array:
        states, actions = self.layout.unpack(x)
        times = jnp.arange(self.dynamics.horizon)[None, :, None]
        mean, scale = self._action_distribution(states[:, :-1], times)
        log_pi = jnp.sum(self._log_ratio_actions(self._unsquash(actions), mean, scale), -1)
        return log_pi + self._start_log_ratio(states[:, 0])


def _free_coordinates(start) -> tuple[int, ...]:
    # the coordinates a box start spreads over (low < high); the others are fixed at low
    return tuple(i for i, (lo, hi) in enumerate(zip(start.low, start.high, strict=True)) if hi > lo)


def _positive_tril(raw: jax.Array) -> jax.Array:
    # a lower-triangular factor with a positive diagonal (softplus keeps it invertible)
    diag = jax.nn.softplus(jnp.diagonal(raw, axis1=-2, axis2=-1))
    return jnp.tril(raw, -1) + diag[..., None] * jnp.eye(diag.shape[-1], dtype=diag.dtype)


def _raw_tril(covariance: jax.Array) -> jax.Array:
    # the parameter whose _tril() is chol(covariance): the diagonal through the inverse softplus
    tril = jnp.linalg.cholesky(covariance)
    diag = jnp.diagonal(tril, axis1=-2, axis2=-1)
    raw_diag = diag + jnp.log(-jnp.expm1(-diag))  # softplus^{-1}, stable
    return jnp.tril(tril, -1) + raw_diag[..., None] * jnp.eye(diag.shape[-1], dtype=diag.dtype)


def _psd_factor(M: jax.Array) -> jax.Array:
    # a square root of a positive semi-definite matrix (Cholesky fails on singular S0 = 0)
    values, vectors = jnp.linalg.eigh(M)
    return vectors * jnp.sqrt(jnp.clip(values, 0.0))
