"""Linear-quadratic trajectory MaxEnt: exact log Z and exact samples by a backward recursion.

Trajectory :math:`\\tau = (x_0, u_0, x_1, \\dots, u_{T-1}, x_T)`, cost
:math:`c(\\tau) = \\sum_{t<T} \\tfrac12 (x_t^\\top Q x_t + u_t^\\top R u_t)`, base measure
:math:`\\nu = N(x_0; m_0, S_0) \\prod_t N(x_{t+1}; A x_t + B u_t, W)` times Lebesgue on the actions.
With :math:`\\beta_t(x) = e^{-\\frac12 x^\\top P_t x - k_t}`, :math:`P_T = 0`:

.. math::

    \\tilde P = P_{t+1}(I + W P_{t+1})^{-1},\\quad H = R + B^\\top \\tilde P B,\\quad G = B^\\top \\tilde P A,\\\\
    P_t = Q + A^\\top \\tilde P A - G^\\top H^{-1} G,\\quad
    k_t = k_{t+1} + \\tfrac12 \\log|I + W P_{t+1}| + \\tfrac12 \\log|H| - \\tfrac m2 \\log 2\\pi,\\\\
    \\log Z = -k_0 - \\tfrac12 \\log|I + S_0 P_0| - \\tfrac12 m_0^\\top P_0 (I + S_0 P_0)^{-1} m_0 .

No matrix is inverted that could be singular (:math:`P_T = 0`, :math:`S_0 = 0` are fine).
Written by hand: the Riccati recursion of a MaxEnt (not a control) problem is in no JAX library.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from maxent_gan.models.tabular import check_positive_int

__all__ = ["LQR", "backward_riccati", "log_partition", "lqr_cost", "quadratic_statistics", "sample_trajectories"]


class LQR(NamedTuple):
    """The system: ``A (n, n)``, ``B (n, m)``, ``Q (n, n)``, ``R (m, m)``, ``W (n, n)``, ``m0 (n,)``, ``S0 (n, n)``."""

    A: jax.Array
    B: jax.Array
    Q: jax.Array
    R: jax.Array
    W: jax.Array
    m0: jax.Array
    S0: jax.Array
    horizon: int


class Riccati(NamedTuple):
    P: jax.Array  # (T+1, n, n): β_t's precision
    k: jax.Array  # (T+1,): β_t's constant
    gain: jax.Array  # (T, m, n): u_t | x_t has mean -gain_t x_t
    action_cov: jax.Array  # (T, m, m): and covariance H_t^{-1}


def _solve(M, X):
    return jnp.linalg.solve(M, X)


@partial(jax.jit, static_argnames="horizon")  # eagerly, a scan over a fresh closure compiles on every call
def backward_riccati(A, B, Q, R, W, horizon: int) -> Riccati:
    """The backward pass of the module docstring, as a ``lax.scan`` over time."""
    n, m = B.shape
    eye = jnp.eye(n, dtype=A.dtype)

    def backward(carry, _):
        P_next, k_next = carry
        inner = eye + W @ P_next
        P_tilde = _symmetrize(P_next @ jnp.linalg.inv(inner))
        H = _symmetrize(R + B.T @ P_tilde @ B)
        G = B.T @ P_tilde @ A
        gain = _solve(H, G)
        P = _symmetrize(Q + A.T @ P_tilde @ A - G.T @ gain)
        k = (k_next + 0.5 * jnp.linalg.slogdet(inner)[1] + 0.5 * jnp.linalg.slogdet(H)[1]
             - 0.5 * m * jnp.log(2 * jnp.pi))
        return (P, k), (P, k, gain, jnp.linalg.inv(H))

    P_T, k_T = jnp.zeros((n, n), A.dtype), jnp.zeros((), A.dtype)
    _, (P, k, gain, action_cov) = jax.lax.scan(backward, (P_T, k_T), None, length=horizon)
    # scan order is t = T-1, ..., 0
    P = jnp.concatenate([P[::-1], P_T[None]], axis=0)
    k = jnp.concatenate([k[::-1], k_T[None]], axis=0)
    return Riccati(P, k, gain[::-1], _symmetrize(action_cov[::-1]))


def _symmetrize(M):
    return 0.5 * (M + jnp.swapaxes(M, -1, -2))


def log_partition(
    A: ArrayLike, B: ArrayLike, Q: ArrayLike, R: ArrayLike, W: ArrayLike, m0: ArrayLike, S0: ArrayLike,
    horizon: int,
) -> jax.Array:
    """Exact :math:`\\log Z` of the LQR trajectory MaxEnt model; differentiable in every matrix."""
    A, B, Q, R, W, m0, S0, horizon = _check(A, B, Q, R, W, m0, S0, horizon)
    riccati = backward_riccati(A, B, Q, R, W, horizon)
    P0, k0 = riccati.P[0], riccati.k[0]
    inner = jnp.eye(A.shape[0], dtype=A.dtype) + S0 @ P0
    log_z = -k0 - 0.5 * jnp.linalg.slogdet(inner)[1] - 0.5 * m0 @ P0 @ jnp.linalg.solve(inner, m0)
    _check_overflow(log_z, A=A, B=B, Q=Q, R=R, W=W, m0=m0, S0=S0)
    return log_z


def sample_trajectories(
    key: jax.Array, A, B, Q, R, W, m0, S0, horizon: int, n: int
) -> tuple[jax.Array, jax.Array]:
    """Exact draws ``(states (n, T+1, dx), actions (n, T, du))``.

    :math:`x_0 \\sim N((I+S_0P_0)^{-1}m_0,\\ S_0 - S_0P_0(I+S_0P_0)^{-1}S_0)`;
    :math:`u_t \\sim N(-H^{-1}Gx_t, H^{-1})`; :math:`x_{t+1} \\sim N((I+WP_{t+1})^{-1}\\mu,\\
    W - WP_{t+1}(I+WP_{t+1})^{-1}W)` with :math:`\\mu = Ax_t + Bu_t`.
    """
    A, B, Q, R, W, m0, S0, horizon = _check(A, B, Q, R, W, m0, S0, horizon)
    n = check_positive_int("n", n)
    states, actions = _sample(key, A, B, Q, R, W, m0, S0, horizon, n)
    _check_overflow(states, A=A, B=B, Q=Q, R=R, W=W, m0=m0, S0=S0)
    _check_overflow(actions, A=A, B=B, Q=Q, R=R, W=W, m0=m0, S0=S0)
    return jnp.swapaxes(states, 0, 1), jnp.swapaxes(actions, 0, 1)


@partial(jax.jit, static_argnames=("horizon", "n"))
def _sample(key, A, B, Q, R, W, m0, S0, horizon: int, n: int) -> tuple[jax.Array, jax.Array]:
    riccati = backward_riccati(A, B, Q, R, W, horizon)
    dx = A.shape[0]
    eye = jnp.eye(dx, dtype=A.dtype)
    key_0, key_steps = jax.random.split(key)
    mean_0, cov_0 = _tilt(m0, S0, riccati.P[0], eye)
    x0 = jax.random.multivariate_normal(key_0, mean_0, cov_0, shape=(n,), method="eigh")

    def forward(x, inputs):
        key_t, gain, action_cov, P_next = inputs
        key_u, key_x = jax.random.split(key_t)
        u = -x @ gain.T + jax.random.multivariate_normal(
            key_u, jnp.zeros(gain.shape[0], A.dtype), action_cov, shape=(n,), method="eigh"
        )
        mean = x @ A.T + u @ B.T
        next_mean, next_cov = _tilt(mean.T, W, P_next, eye)  # the transition N(mean, W) tilted by P_{t+1}
        next_mean = next_mean.T
        x_next = next_mean + jax.random.multivariate_normal(
            key_x, jnp.zeros(dx, A.dtype), next_cov, shape=(n,), method="eigh"
        )
        return x_next, (x_next, u)

    keys = jax.random.split(key_steps, horizon)
    _, (later, actions) = jax.lax.scan(forward, x0, (keys, riccati.gain, riccati.action_cov, riccati.P[1:]))
    return jnp.concatenate([x0[None], later], axis=0), actions


def _tilt(mean, cov, P, eye):
    # N(mean, cov) times exp(-½ xᵀPx), renormalized, without inverting cov
    inner = eye + cov @ P
    return jnp.linalg.solve(inner, mean), _symmetrize(cov - cov @ P @ jnp.linalg.solve(inner, cov))


def lqr_cost(Q: jax.Array, R: jax.Array, states: jax.Array, actions: jax.Array) -> jax.Array:
    """:math:`c(\\tau) = \\sum_{t<T} \\tfrac12 (x_t^\\top Q x_t + u_t^\\top R u_t)`, shape ``(n,)``."""
    x = states[:, :-1]
    return 0.5 * (jnp.einsum("nti,ij,ntj->n", x, Q, x) + jnp.einsum("nti,ij,ntj->n", actions, R, actions))


def quadratic_statistics(states: jax.Array, actions: jax.Array) -> jax.Array:
    """:math:`\\tfrac12\\sum_{t<T}(x_{t,1}^2, \\dots, x_{t,d}^2, u_{t,1}^2, \\dots, u_{t,k}^2)`, shape ``(n, d + k)``:
    the sufficient statistics of a diagonal quadratic cost, ``lqr_cost(diag(q), diag(r), ...) = stats @ [q, r]``."""
    return 0.5 * jnp.concatenate([jnp.sum(states[:, :-1] ** 2, axis=1), jnp.sum(actions**2, axis=1)], axis=-1)


def _check_overflow(result: jax.Array, **inputs: jax.Array) -> None:
    # finite inputs (checked in _check) and a non-finite result: blame the largest input
    if isinstance(result, jax.core.Tracer) or bool(np.all(np.isfinite(np.asarray(result)))):
        return
    # a concrete result means concrete inputs
    sizes = {name: float(np.abs(np.asarray(value)).max()) for name, value in inputs.items()}
    name = max(sizes, key=sizes.get)
    raise ValueError(
        f"{name}: the Riccati recursion overflowed (entries up to {sizes[name]:.3g}); "
        "rescale the system or shorten the horizon"
    )


def _check(A, B, Q, R, W, m0, S0, horizon):
    A, B, Q, R, W, m0, S0 = (jnp.asarray(v) for v in (A, B, Q, R, W, m0, S0))
    names = ("A", "B", "Q", "R", "W", "m0", "S0")
    for name, value in zip(names, (A, B, Q, R, W, m0, S0), strict=True):
        if jnp.iscomplexobj(value):
            raise ValueError(f"{name}: expected real values, got dtype {value.dtype}")
    # one floating dtype for every matrix (lax.scan needs its carry's dtype fixed)
    dtype = jnp.result_type(A, B, Q, R, W, m0, S0)
    dtype = dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.zeros(()).dtype
    A, B, Q, R, W, m0, S0 = (v.astype(dtype) for v in (A, B, Q, R, W, m0, S0))
    n = A.shape[0] if A.ndim == 2 else -1
    if A.ndim != 2 or A.shape != (n, n):
        raise ValueError(f"A: expected a square (n, n) matrix, got shape {A.shape}")
    if B.ndim != 2 or B.shape[0] != n:
        raise ValueError(f"B: expected shape ({n}, m), got {B.shape}")
    m = B.shape[1]
    for name, value, shape in (("Q", Q, (n, n)), ("R", R, (m, m)), ("W", W, (n, n)), ("m0", m0, (n,)),
                               ("S0", S0, (n, n))):
        if value.shape != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {value.shape}")
    horizon = check_positive_int("horizon", horizon)
    for name, value in zip(names, (A, B, Q, R, W, m0, S0), strict=True):
        if not isinstance(value, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(value))):
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(np.asarray(value)))[0])
            raise ValueError(f"{name}: non-finite value at index {index}")
    # the action integral converges only for R > 0; Q, W, S0 must be positive semi-definite
    for name, value, strict in (("R", R, True), ("Q", Q, False), ("W", W, False), ("S0", S0, False)):
        if not isinstance(value, jax.core.Tracer):
            # numpy, not jnp: inside jit every jnp operation is staged, even on constants
            matrix = np.asarray(value)
            smallest = float(np.linalg.eigvalsh(0.5 * (matrix + matrix.T)).min())
            if smallest <= 0 if strict else smallest < -1e-10:
                kind = "positive definite" if strict else "positive semi-definite"
                raise ValueError(f"{name}: expected a {kind} matrix, smallest eigenvalue {smallest:.3g}")
    return A, B, Q, R, W, m0, S0, horizon
