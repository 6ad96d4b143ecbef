"""Gaussian proposals (diagonal and full covariance), trainable by optax through equinox.

Parameters are unconstrained (log scales, a free strictly-lower triangle) so any gradient
step keeps the covariance positive definite; densities come from NumPyro's distributions.
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.typing import ArrayLike
from maxent_gan.inference._validation import require
from maxent_gan.inference.proposals.base import check_count, check_points, compiled_when_eager

__all__ = ["DiagonalGaussian", "Gaussian"]


def _standard_normal_log_prob(z: jax.Array) -> jax.Array:
    return -0.5 * jnp.sum(z**2, axis=-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


def _as_float(name: str, value: ArrayLike, ndim: int) -> jax.Array:
    array = jnp.asarray(value)
    if array.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {array.shape}")
    if not jnp.issubdtype(array.dtype, jnp.floating):
        array = array.astype(jnp.zeros(()).dtype)
    require(jnp.isfinite(array), f"{name}: contains NaN or inf")
    return array


class DiagonalGaussian(eqx.Module):
    """:math:`q = N(m, \\mathrm{diag}(\\sigma^2))`, parameters ``loc`` and ``log_scale``."""

    reparameterized: ClassVar[bool] = True  # loc + scale · z

    loc: jax.Array
    log_scale: jax.Array

    def __init__(self, loc: ArrayLike, scale: ArrayLike):
        loc = _as_float("loc", loc, 1)
        scale = jnp.broadcast_to(_as_float("scale", scale, jnp.ndim(scale)), loc.shape)
        require(scale > 0, "scale: expected positive standard deviations")
        self.loc, self.log_scale = loc, jnp.log(scale).astype(loc.dtype)

    @property
    def dim(self) -> int:
        return self.loc.shape[-1]

    def distribution(self) -> dist.Distribution:
        return dist.Normal(self.loc, jnp.exp(self.log_scale)).to_event(1)

    @compiled_when_eager
    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        check_count(n)
        z = jax.random.normal(key, (n, self.dim), dtype=self.loc.dtype)
        x = self.loc + jnp.exp(self.log_scale) * z  # reparameterized
        return x, _standard_normal_log_prob(z) - jnp.sum(self.log_scale)

    @compiled_when_eager
    def sample(self, key: jax.Array, n: int) -> jax.Array:
        return self.sample_and_log_prob(key, n)[0]

    @compiled_when_eager
    def log_prob(self, x: jax.Array) -> jax.Array:
        check_points("x", x, self.dim)
        return self.distribution().log_prob(x)


class Gaussian(eqx.Module):
    """:math:`q = N(m, L L^\\top)`, full covariance through its Cholesky factor ``L``.

    ``L = tril(lower, -1) + diag(exp(log_diag))``. Build with :meth:`from_covariance`
    or from a loc and ``scale_tril``.
    """

    reparameterized: ClassVar[bool] = True  # loc + L z

    loc: jax.Array
    lower: jax.Array
    log_diag: jax.Array

    def __init__(self, loc: ArrayLike, scale_tril: ArrayLike):
        loc = _as_float("loc", loc, 1)
        scale_tril = _as_float("scale_tril", scale_tril, 2)
        if scale_tril.shape != (loc.shape[0], loc.shape[0]):
            raise ValueError(f"scale_tril: expected shape {(loc.shape[0],) * 2}, got {scale_tril.shape}")
        diag = jnp.diagonal(scale_tril)
        require(diag > 0, "scale_tril: expected a lower-triangular factor with a positive diagonal")
        self.loc = loc
        self.lower = jnp.tril(scale_tril, -1).astype(loc.dtype)
        self.log_diag = jnp.log(diag).astype(loc.dtype)

    @classmethod
    def from_covariance(cls, loc: ArrayLike, covariance: ArrayLike) -> Gaussian:
        covariance = _as_float("covariance", covariance, 2)
        chol = jnp.linalg.cholesky(covariance)
        require(jnp.isfinite(chol), "covariance: expected a symmetric positive-definite matrix")
        return cls(loc, chol)

    @classmethod
    def isotropic(cls, dim: int, scale: float, *, loc: ArrayLike | None = None) -> Gaussian:
        """:math:`N(m, \\mathrm{scale}^2 I)`, a broad default (``loc`` zero unless given)."""
        dtype = jnp.zeros(()).dtype
        loc = jnp.zeros(dim, dtype) if loc is None else loc
        return cls(loc, scale * jnp.eye(dim, dtype=dtype))

    @property
    def dim(self) -> int:
        return self.loc.shape[-1]

    @property
    def scale_tril(self) -> jax.Array:
        return jnp.tril(self.lower, -1) + jnp.diag(jnp.exp(self.log_diag))

    def distribution(self) -> dist.Distribution:
        return dist.MultivariateNormal(self.loc, scale_tril=self.scale_tril)

    @compiled_when_eager
    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        check_count(n)
        z = jax.random.normal(key, (n, self.dim), dtype=self.loc.dtype)
        x = self.loc + z @ self.scale_tril.T  # reparameterized
        # no triangular solve: log q(x) = log N(z; 0, I) - log|det L|
        return x, _standard_normal_log_prob(z) - jnp.sum(self.log_diag)

    @compiled_when_eager
    def sample(self, key: jax.Array, n: int) -> jax.Array:
        return self.sample_and_log_prob(key, n)[0]

    @compiled_when_eager
    def log_prob(self, x: jax.Array) -> jax.Array:
        check_points("x", x, self.dim)
        return self.distribution().log_prob(x)
