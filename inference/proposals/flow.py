"""Normalizing-flow proposals, behind the protocol, built on flowjax.

flowjax was chosen over NumPyro's flows (measured in ``benchmarks/flow_choice.py``): its
flows are equinox modules like every other proposal here, so optax trains them with the
same ``sampler_step``; ``sample_and_log_prob`` never inverts; and its rational-quadratic
spline coupling flow is exact-invertible both ways, so log q of data (for the GCL mixture)
is as cheap as a draw.

The coupling flows draw through the spline's forward map (``invert=False``). Reverse KL, the
sampler's step, differentiates the draws x = T(ε), and flowjax's default (``invert=True``) makes
T the spline's inverse, whose root ``sqrt(b² - 4ac)`` has an infinite or
NaN gradient where the discriminant nears zero: over 60 000 random spline parameters and points,
49 gave a non-finite parameter gradient through the inverse and none through the forward map.
On the 40-mode mixture (costs in the thousands away from the modes) this was the cause of
the fit's skipped steps and, under other XLA rounding, of its guard stop. The price moves to
log q of given points (maximum-likelihood warm starts, the forward check), which now uses the
root; those are short fits from a near-identity flow, or no gradient at all.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import paramax
from flowjax.bijections import RationalQuadraticSpline
from flowjax.distributions import Normal
from flowjax.flows import coupling_flow
from maxent_gan.inference.proposals.base import check_count, check_points, compiled_when_eager

__all__ = ["Flow", "spline_coupling_flow"]


def spline_coupling_flow(key, dim, *, layers, knots, interval, width, base_scale, invert, cond_dim=None):
    """flowjax's spline coupling flow over N(0, base_scale² I) in the default dtype: the one
    construction behind :meth:`Flow.coupling` and ``ConditionalFlow.coupling`` (``cond_dim``)."""
    dtype = jnp.zeros(()).dtype
    return coupling_flow(key, base_dist=Normal(jnp.zeros(dim, dtype), jnp.full(dim, base_scale, dtype)),
                         transformer=RationalQuadraticSpline(knots=knots, interval=interval), cond_dim=cond_dim,
                         flow_layers=layers, nn_width=width, invert=invert)


class Flow(eqx.Module):
    """A flowjax distribution as a proposal: :math:`q(x) = N(f^{-1}(x)) |\\det J_{f^{-1}}|`."""

    reparameterized: ClassVar[bool] = True  # a bijection of base noise

    flow: eqx.Module

    @classmethod
    def coupling(
        cls,
        key: jax.Array,
        dim: int,
        *,
        layers: int = 8,
        knots: int = 8,
        interval: float = 5.0,
        width: int = 64,
        base_scale: float = 1.0,
        invert: bool = False,
    ) -> Flow:
        """A spline coupling flow (Durkan et al. 2019) on R^dim over N(0, base_scale² I).

        The splines act on ``[-interval, interval]`` and are the identity outside it.
        ``invert=False`` (flowjax's default is True) sends draws through the spline's forward map,
        a ratio of quadratics whose gradient is finite for every parameter, and log q of given
        points through its inverse, a square root (the module docstring says why).
        """
        if not isinstance(dim, int) or dim < 2:
            raise ValueError(f"dim: a coupling flow needs an integer dimension >= 2, got {dim!r}")
        if not base_scale > 0 or not interval > 0:
            raise ValueError(f"base_scale, interval: expected positive numbers, got {base_scale!r}, {interval!r}")
        return cls(spline_coupling_flow(key, dim, layers=layers, knots=knots, interval=interval, width=width,
                                        base_scale=base_scale, invert=invert))

    @property
    def dim(self) -> int:
        return self.flow.shape[-1]

    @compiled_when_eager
    def sample(self, key: jax.Array, n: int) -> jax.Array:
        check_count(n)
        return paramax.unwrap(self.flow).sample(key, (n,))

    @compiled_when_eager
    def log_prob(self, x: jax.Array) -> jax.Array:
        check_points("x", x, self.dim)
        return paramax.unwrap(self.flow).log_prob(x)

    @compiled_when_eager
    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        check_count(n)
        return paramax.unwrap(self.flow).sample_and_log_prob(key, (n,))

