"""LQR trajectory MaxEnt against the dense Gaussian integral over the whole trajectory."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from maxent_gan.models.lqr import log_partition, lqr_cost, sample_trajectories


def random_system(key, n=2, m=1, horizon=4):
    keys = jax.random.split(key, 6)
    A = jnp.eye(n) + 0.3 * jax.random.normal(keys[0], (n, n))
    B = jax.random.normal(keys[1], (n, m))
    L = jax.random.normal(keys[2], (n, n))
    Q = 0.5 * L @ L.T + 0.1 * jnp.eye(n)
    R = jnp.eye(m) * 0.7
    M = 0.3 * jax.random.normal(keys[3], (n, n))
    W = M @ M.T + 0.05 * jnp.eye(n)
    m0 = jax.random.normal(keys[4], (n,))
    S0 = 0.4 * jnp.eye(n) + 0.1
    return A, B, Q, R, W, m0, S0, horizon


def dense_gaussian(A, B, Q, R, W, m0, S0, horizon):
    """The log integrand over z = (x0, u0, x1, ..., u_{T-1}, x_T) as -½zᵀJz + hᵀz + c."""
    n, m = B.shape
    size = (horizon + 1) * n + horizon * m

    def x_rows(t):
        E = np.zeros((n, size))
        E[:, t * (n + m): t * (n + m) + n] = np.eye(n)
        return jnp.asarray(E)

    def u_rows(t):
        E = np.zeros((m, size))
        E[:, t * (n + m) + n: t * (n + m) + n + m] = np.eye(m)
        return jnp.asarray(E)

    S0_inv, W_inv = jnp.linalg.inv(S0), jnp.linalg.inv(W)
    J = x_rows(0).T @ S0_inv @ x_rows(0)
    h = x_rows(0).T @ S0_inv @ m0
    c = -0.5 * m0 @ S0_inv @ m0 - 0.5 * jnp.linalg.slogdet(2 * jnp.pi * S0)[1]
    for t in range(horizon):
        D = x_rows(t + 1) - A @ x_rows(t) - B @ u_rows(t)
        J += D.T @ W_inv @ D + x_rows(t).T @ Q @ x_rows(t) + u_rows(t).T @ R @ u_rows(t)
        c -= 0.5 * jnp.linalg.slogdet(2 * jnp.pi * W)[1]
    log_z = c + 0.5 * h @ jnp.linalg.solve(J, h) + 0.5 * size * jnp.log(2 * jnp.pi) - 0.5 * jnp.linalg.slogdet(J)[1]
    cov = jnp.linalg.inv(J)
    return log_z, cov @ h, cov


@pytest.mark.parametrize(("seed", "n", "m", "horizon"), [(0, 2, 1, 4), (1, 3, 2, 6), (2, 1, 1, 1)],
                         ids=["2x1-T4", "3x2-T6", "1x1-T1"])
def test_log_partition_is_the_dense_gaussian_integral(seed, n, m, horizon):
    system = random_system(jax.random.key(seed), n, m, horizon)
    exact, _, _ = dense_gaussian(*system)
    assert jnp.allclose(log_partition(*system), exact, atol=1e-10)


def test_deterministic_start_and_singular_terminal_precision_are_fine():
    A, B, Q, R, W, m0, _, horizon = random_system(jax.random.key(3))
    # S0 -> 0: the dense integral's limit is the deterministic start; compare against a tiny S0
    tiny = log_partition(A, B, Q, R, W, m0, 1e-9 * jnp.eye(2), horizon)
    assert jnp.isfinite(log_partition(A, B, Q, R, W, m0, jnp.zeros((2, 2)), horizon))
    assert jnp.allclose(log_partition(A, B, Q, R, W, m0, jnp.zeros((2, 2)), horizon), tiny, atol=1e-7)


def test_exact_samples_have_the_dense_gaussian_moments():
    system = random_system(jax.random.key(4), 2, 1, 3)
    _, mean, cov = dense_gaussian(*system)
    n = 100_000
    states, actions = sample_trajectories(jax.random.key(5), *system, n)
    assert states.shape == (n, 4, 2) and actions.shape == (n, 3, 1)
    # flatten in the order of z: x0, u0, x1, u1, ...
    z = jnp.concatenate([jnp.concatenate([states[:, t], actions[:, t]], -1) for t in range(3)] + [states[:, 3]], -1)
    sd = jnp.sqrt(jnp.diag(cov))
    assert jnp.all(jnp.abs(z.mean(0) - mean) < 5 * sd / jnp.sqrt(n))
    # covariance entries: standard error of a sample covariance is about sd_i sd_j sqrt(2/n)
    assert jnp.all(jnp.abs(jnp.cov(z.T) - cov) < 5 * jnp.outer(sd, sd) * jnp.sqrt(2.0 / n))


def test_gradient_matches_finite_differences():
    A, B, Q, R, W, m0, S0, horizon = random_system(jax.random.key(6))

    def log_z(scale):
        return log_partition(A, B, scale * Q, R, W, m0, S0, horizon)

    eps = 1e-6
    numeric = (log_z(1.0 + eps) - log_z(1.0 - eps)) / (2 * eps)
    assert jnp.allclose(jax.grad(log_z)(1.0), numeric, atol=1e-7)
    # d log Z / d scale = -E[Σ ½ xᵀQx]: check against exact samples
    states, actions = sample_trajectories(jax.random.key(7), A, B, Q, R, W, m0, S0, horizon, 200_000)
    quadratic = lqr_cost(Q, jnp.zeros_like(R), states, actions)
    assert jnp.abs(jax.grad(log_z)(1.0) + quadratic.mean()) < 5 * quadratic.std() / jnp.sqrt(200_000)


def test_bad_shapes_name_the_argument():
    A, B, Q, R, W, m0, S0, horizon = random_system(jax.random.key(0))
    with pytest.raises(ValueError, match=r"R: expected shape \(1, 1\)"):
        log_partition(A, B, Q, jnp.eye(2), W, m0, S0, horizon)
    with pytest.raises(ValueError, match="A: expected a square"):
        log_partition(jnp.ones((2, 3)), B, Q, R, W, m0, S0, horizon)
    with pytest.raises(ValueError, match="horizon"):
        log_partition(A, B, Q, R, W, m0, S0, 0)
    with pytest.raises(ValueError, match="R: expected a positive definite"):
        log_partition(A, B, Q, -R, W, m0, S0, horizon)
