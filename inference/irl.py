"""Behaviour cloning in closed form: the policies' warm starts on demonstrations (the IRL analogue of
fitting the flow to the data; a network policy is cloned by gradient,
``maxent_gan.inference.sampler.fit_to_data``). ``maxent_gan.inference.spaces`` picks one per sample space."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from maxent_gan.inference.proposals.policy import LinearGaussianPolicy, TabularPolicy, _raw_tril
from maxent_gan.models._jit import compiled_when_eager

__all__ = ["behaviour_cloning", "linear_gaussian_cloning"]


@compiled_when_eager
def behaviour_cloning(policy: TabularPolicy, demos: jax.Array, *, pseudo_count: float = 1.0) -> TabularPolicy:
    """The maximum-likelihood time-varying policy of the demonstrations, smoothed by
    ``pseudo_count`` per action (closed form: log of the counts)."""
    states, actions = policy.layout.unpack(demos)
    horizon = policy.logits.shape[0]
    times = jnp.broadcast_to(jnp.arange(horizon), actions.shape)
    counts = jnp.zeros(policy.logits.shape, policy.logits.dtype).at[times, states[:, :-1], actions].add(1.0)
    starts = jnp.zeros(policy.initial.shape, policy.logits.dtype).at[states[:, 0]].add(1.0)
    return TabularPolicy(jnp.log(counts + pseudo_count), policy.transitions, policy.initial,
                         jnp.log(starts + pseudo_count), policy.successor_logits)


@compiled_when_eager
def linear_gaussian_cloning(policy: LinearGaussianPolicy, demos: jax.Array, *, ridge: float = 1e-6) -> LinearGaussianPolicy:
    """Per time step, least squares of :math:`u_t` on :math:`(x_t, 1)`; the residual covariance
    (plus ``ridge``) is the action noise. A tilted policy's transitions are fitted the same way,
    :math:`x_{t+1}` on :math:`(\\mu_t, 1)` with :math:`\\mu_t = Ax_t + Bu_t`: the demonstrations come from
    :math:`p_\\theta`, whose transitions are tilted."""
    states, actions = policy.layout.unpack(demos)

    def fit(x, u):
        x = jnp.concatenate([x, jnp.ones(x.shape[:-1] + (1,), x.dtype)], -1)
        coef, *_ = jnp.linalg.lstsq(x, u)
        residual = u - x @ coef
        return coef, residual.T @ residual / x.shape[0] + ridge * jnp.eye(u.shape[1], dtype=u.dtype)

    coef, covariance = jax.vmap(fit, in_axes=(1, 1))(states[:, :-1], actions)  # (T, n+1, m), (T, m, m)
    gains = -jnp.swapaxes(coef[:, :-1], -1, -2)
    x0 = states[:, 0]
    initial_cov = jnp.cov(x0.T).reshape(x0.shape[1], x0.shape[1]) + ridge * jnp.eye(x0.shape[1], dtype=x0.dtype)
    transitions = None
    if policy.tilted:
        A, B = policy.system[0], policy.system[1]
        coef_x, noise = jax.vmap(fit, in_axes=(1, 1))(states[:, :-1] @ A.T + actions @ B.T, states[:, 1:])
        transitions = (jnp.swapaxes(coef_x[:, :-1], -1, -2), coef_x[:, -1], _raw_tril(noise))
    return LinearGaussianPolicy(gains, coef[:, -1], _raw_tril(covariance), x0.mean(0), _raw_tril(initial_cov),
                                policy.system, transitions)
