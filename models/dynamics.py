"""Trajectories of a user's differentiable dynamics: the sample space of continuous-control IRL.

A :class:`Dynamics` is what a user of the field has: a step function ``step(state, action) -> state``
written in JAX (so a policy can be fitted pathwise through it), a start distribution, a horizon
and an action space. The maximum-entropy model over trajectories :math:`\\tau = (s_0, a_0, \\ldots,
a_{T-1}, s_T)` is

.. math::

    p_\\theta(\\tau) = \\nu(\\tau)\\, e^{-c_\\theta(\\tau)} / Z(\\theta), \\qquad
    \\nu(\\tau) = p_0(s_0) \\prod_t \\mu(a_t)\\, p(s_{t+1} | s_t, a_t),

and the **base measure** :math:`\\nu` is part of the model. Its action part :math:`\\mu` is stated:

- **a box** ``[action_low, action_high]``: :math:`\\mu` is the uniform *probability* on the box, so a
  cost of zero gives uniformly random actions and :math:`Z(\\theta) = E_\\nu[e^{-c_\\theta}]` lies
  between :math:`e^{-\\max c}` and :math:`e^{-\\min c}`;
- **unbounded** actions: :math:`\\mu` is Lebesgue measure, and the cost must make
  :math:`e^{-c_\\theta}` integrable in the actions (an effort term, as the point mass has).

Transitions are ``step(s, a) + noise * ξ`` with :math:`\\xi \\sim N(0, I)` (``noise = 0``:
deterministic, the usual case for a simulator such as Pendulum-v1). A sampler's density is taken
relative to :math:`\\nu`, so the transition densities cancel and only the start and the actions
enter the importance weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from maxent_gan.models._jit import compiled_when_eager
from maxent_gan.models.trajectory import TrajectoryLayout
from numpyro.infer import MCMC, NUTS

__all__ = ["BoxStart", "Dynamics", "GaussianStart", "dynamics_demonstrations", "linear_feature_cost"]


class GaussianStart(NamedTuple):
    """:math:`s_0 \\sim N(\\text{mean}, \\text{cov})` (tuples, so a :class:`Dynamics` is hashable)."""

    mean: tuple[float, ...]
    cov: tuple[tuple[float, ...], ...]


class BoxStart(NamedTuple):
    """:math:`s_0` uniform on the box ``[low, high]`` (Pendulum-v1: angle in ±π, velocity in ±1); a coordinate
    with ``low == high`` is fixed (MountainCarContinuous-v0 starts at rest)."""

    low: tuple[float, ...]
    high: tuple[float, ...]


def _floats(name: str, value, length: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in np.ravel(np.asarray(value, dtype=float)))
    if len(values) != length:
        raise ValueError(f"{name}: expected {length} values, got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name}: expected finite values, got {values}")
    return values


@dataclass(frozen=True)
class Dynamics:
    """A differentiable simulator: ``step(states (..., ds), actions (..., da)) -> (..., ds)`` (batched over
    leading axes, written in JAX), ``horizon`` steps, a ``start`` (:class:`GaussianStart` or
    :class:`BoxStart`), an action box ``action_low``/``action_high`` (both ``None``: unbounded, Lebesgue
    base measure) and additive Gaussian transition ``noise`` (0: deterministic).

    Hashable (a jit-static field of the policies that simulate it): ``step`` is compared by identity
    unless it is a bound method or a frozen dataclass, which compare by value.
    """

    step: Callable[[jax.Array, jax.Array], jax.Array]
    horizon: int
    state_dim: int
    action_dim: int
    start: GaussianStart | BoxStart
    action_low: tuple[float, ...] | None = None
    action_high: tuple[float, ...] | None = None
    noise: float = 0.0
    observe: Callable[[jax.Array], jax.Array] | None = None
    mirror: Callable[[jax.Array], jax.Array] | None = None

    def __post_init__(self):
        if not callable(self.step):
            raise TypeError(f"step: expected a function step(state, action) -> state, got {type(self.step).__name__}")
        if self.observe is not None and not callable(self.observe):
            raise TypeError(f"observe: expected a function of the state or None, got {type(self.observe).__name__}")
        if self.mirror is not None and not callable(self.mirror):
            raise TypeError(f"mirror: expected a function of the observation or None, got {type(self.mirror).__name__}")
        for name in ("horizon", "state_dim", "action_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        ds = self.state_dim
        if isinstance(self.start, GaussianStart):
            mean = _floats("start.mean", self.start.mean, ds)
            cov = np.asarray(self.start.cov, dtype=float).reshape(-1)
            if cov.shape != (ds * ds,):
                raise ValueError(f"start.cov: expected a {ds} x {ds} matrix, got {cov.size} values")
            matrix = cov.reshape(ds, ds)
            if not (np.all(np.isfinite(matrix)) and np.all(np.linalg.eigvalsh(0.5 * (matrix + matrix.T)) > 0)):
                raise ValueError("start.cov: expected a positive definite covariance")
            object.__setattr__(self, "start", GaussianStart(mean, tuple(tuple(map(float, row)) for row in matrix)))
        elif isinstance(self.start, BoxStart):
            low, high = _floats("start.low", self.start.low, ds), _floats("start.high", self.start.high, ds)
            if not all(lo <= hi for lo, hi in zip(low, high, strict=True)):
                raise ValueError(f"start: expected low <= high in every coordinate, got {low} and {high}")
            object.__setattr__(self, "start", BoxStart(low, high))
        else:
            raise TypeError(f"start: expected a GaussianStart or a BoxStart, got {type(self.start).__name__}")
        if (self.action_low is None) != (self.action_high is None):
            raise ValueError("action_low, action_high: give both (a box) or neither (unbounded actions)")
        if self.action_low is not None:
            low = _floats("action_low", self.action_low, self.action_dim)
            high = _floats("action_high", self.action_high, self.action_dim)
            if not all(lo < hi for lo, hi in zip(low, high, strict=True)):
                raise ValueError(f"action_high: expected above action_low in every coordinate, got {low} and {high}")
            object.__setattr__(self, "action_low", low)
            object.__setattr__(self, "action_high", high)
        if self.mirror is not None and self.bounded and any(
                abs(lo + hi) > 1e-12 for lo, hi in zip(self.action_low, self.action_high, strict=True)):
            raise ValueError("mirror: negating the action needs a box symmetric about 0, got "
                             f"[{self.action_low}, {self.action_high}]")
        if not (math.isfinite(self.noise) and self.noise >= 0):
            raise ValueError(f"noise: expected a finite scale >= 0, got {self.noise!r}")

    @property
    def layout(self) -> TrajectoryLayout:
        return TrajectoryLayout(self.horizon, self.state_dim, self.action_dim)

    @property
    def observation_dim(self) -> int:
        """The length of what a policy reads (:attr:`observe`'s output)."""
        if self.observe is None:
            return self.state_dim
        return jax.eval_shape(self.observe, jax.ShapeDtypeStruct((self.state_dim,), jnp.float32)).shape[-1]

    def observation(self, states: jax.Array) -> jax.Array:
        """What a policy reads of ``states (..., ds)``."""
        return states if self.observe is None else self.observe(states)

    @property
    def bounded(self) -> bool:
        """Whether actions live in a box (uniform base measure) rather than in R^k (Lebesgue)."""
        return self.action_low is not None

    def action_box(self, dtype) -> tuple[jax.Array, jax.Array]:
        """``(centre, half_width)`` of the action box."""
        low, high = jnp.asarray(self.action_low, dtype), jnp.asarray(self.action_high, dtype)
        return 0.5 * (low + high), 0.5 * (high - low)

    @compiled_when_eager
    def start_sample(self, key: jax.Array, n: int, dtype=None) -> jax.Array:
        """``n`` starts ``(n, ds)`` from :math:`p_0`."""
        dtype = jnp.zeros(()).dtype if dtype is None else dtype
        if isinstance(self.start, GaussianStart):
            mean, cov = jnp.asarray(self.start.mean, dtype), jnp.asarray(self.start.cov, dtype)
            return mean + jax.random.normal(key, (n, self.state_dim), dtype) @ jnp.linalg.cholesky(cov).T
        low, high = jnp.asarray(self.start.low, dtype), jnp.asarray(self.start.high, dtype)
        return low + (high - low) * jax.random.uniform(key, (n, self.state_dim), dtype)

    @compiled_when_eager
    def start_log_prob(self, x0: jax.Array) -> jax.Array:
        """:math:`\\log p_0(s_0)`, shape ``x0.shape[:-1]`` (``-inf`` outside a box start)."""
        if isinstance(self.start, GaussianStart):
            mean, cov = jnp.asarray(self.start.mean, x0.dtype), jnp.asarray(self.start.cov, x0.dtype)
            return jax.scipy.stats.multivariate_normal.logpdf(x0, mean, cov)
        low, high = jnp.asarray(self.start.low, x0.dtype), jnp.asarray(self.start.high, x0.dtype)
        inside = jnp.all((x0 >= low) & (x0 <= high), -1)
        spread = high > low  # fixed coordinates are a point mass: they count only as inside or not
        log_volume = jnp.sum(jnp.where(spread, jnp.log(jnp.where(spread, high - low, 1.0)), 0.0))
        return jnp.where(inside, -log_volume, -jnp.inf)

    @compiled_when_eager
    def rollout(self, x0: jax.Array, actions: jax.Array, noise: jax.Array | None = None) -> jax.Array:
        """States ``(n, T+1, ds)`` from starts ``(n, ds)``, actions ``(n, T, da)`` and unit transition noise
        ``(n, T, ds)`` (``None``: none)."""
        actions = jnp.swapaxes(actions, 0, 1)
        xi = jnp.zeros(actions.shape[:2] + (self.state_dim,), x0.dtype) if noise is None else jnp.swapaxes(noise, 0, 1)

        def forward(x, inputs):
            u, e = inputs
            x_next = self.step(x, u) + self.noise * e
            return x_next, x_next

        _, later = jax.lax.scan(forward, x0, (actions, xi))
        return jnp.concatenate([x0[:, None], jnp.swapaxes(later, 0, 1)], 1)

    @compiled_when_eager
    def transition_error(self, states: jax.Array, actions: jax.Array) -> jax.Array:
        """Largest difference between each recorded next state and ``step(s_t, a_t)``, per trajectory ``(n,)``,
        compared through :attr:`observe` where it is given (an angle is then compared by its cosine and sine, not
        across its wrap): how far recorded trajectories are from these dynamics (rounding only for
        deterministic ones)."""
        predicted = self.observation(self.step(states[:, :-1], actions))
        return jnp.max(jnp.abs(self.observation(states[:, 1:]) - predicted), axis=(-1, -2))


def linear_feature_cost(features: Callable[[jax.Array, jax.Array], jax.Array], layout: TrajectoryLayout):
    """The cost :math:`c_\\theta(\\tau) = \\sum_{t<T} \\theta \\cdot \\phi(s_t, a_t)` of user features
    ``features(states (..., ds), actions (..., da)) -> (..., k)``, as ``cost(theta, x)`` on packed rows
    ``x (n, layout.size)``, shape ``(n,)``."""

    def cost(theta, x):
        states, actions = layout.unpack(x)
        return jnp.sum(features(states[:, :-1], actions) @ theta, -1)

    return cost


def _trajectory_model(dynamics: Dynamics, cost_fn, theta):
    # the free variables of a trajectory under ν: the start, the actions, the unit transition noise;
    # their priors are ν's own (p0, μ, N(0, I)), and the cost is a factor
    dtype = jnp.zeros(()).dtype
    start = dynamics.start
    if isinstance(start, GaussianStart):
        x0 = numpyro.sample("x0", dist.MultivariateNormal(jnp.asarray(start.mean, dtype), jnp.asarray(start.cov, dtype)))
    else:
        low, high = np.asarray(start.low), np.asarray(start.high)
        spread = np.flatnonzero(high > low)
        x0 = jnp.asarray(low, dtype)
        if spread.size:  # a fixed start has no free variable
            free = numpyro.sample("x0", dist.Uniform(jnp.asarray(low[spread], dtype),
                                                     jnp.asarray(high[spread], dtype)).to_event(1))
            x0 = x0.at[spread].set(free)
    shape = (dynamics.horizon, dynamics.action_dim)
    if dynamics.bounded:
        low, high = jnp.asarray(dynamics.action_low, dtype), jnp.asarray(dynamics.action_high, dtype)
        actions = numpyro.sample("u", dist.Uniform(jnp.broadcast_to(low, shape), jnp.broadcast_to(high, shape))
                                 .to_event(2))
    else:
        actions = numpyro.sample("u", dist.ImproperUniform(dist.constraints.real, (), shape))
    noise = None
    if dynamics.noise > 0:
        noise = numpyro.sample("xi", dist.Normal(jnp.zeros((dynamics.horizon, dynamics.state_dim), dtype), 1.0)
                               .to_event(2))[None]
    rows = dynamics.layout.pack(dynamics.rollout(x0[None], actions[None], noise), actions[None])
    numpyro.deterministic("tau", rows[0])
    numpyro.factor("cost", -cost_fn(theta, rows)[0])


def dynamics_demonstrations(key: jax.Array, dynamics: Dynamics, cost_fn, theta, n: int, *, thinning: int = 5,
                            num_chains: int = 4, num_warmup: int = 300, progress: bool = False) -> jax.Array:
    """``n`` draws of :math:`p_\\theta(\\tau) \\propto \\nu(\\tau) e^{-c_\\theta(\\tau)}`, packed ``(n, layout.size)``,
    by NUTS on the trajectory's free variables (start, actions, transition noise) with ``num_chains`` chains
    (one draw kept in ``thinning``). With additive noise the map from noise to states has a unit Jacobian,
    so the target is exact; the draws are approximate only as NUTS is (chains that stay in one of several
    modes, e.g. swinging left or right, weigh the modes wrongly): the only sampler a simulator has.
    ``cost_fn(theta, x)`` is the family's cost on packed rows."""
    per_chain = -(-n // num_chains)
    mcmc = MCMC(NUTS(_trajectory_model), num_warmup=num_warmup, num_samples=per_chain * thinning, thinning=thinning,
                num_chains=num_chains, chain_method="vectorized", progress_bar=progress)
    mcmc.run(key, dynamics, cost_fn, theta)
    return mcmc.get_samples()["tau"][:n]
