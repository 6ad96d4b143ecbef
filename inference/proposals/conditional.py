"""θ-conditional proposals :math:`q_\\phi(x \\mid \\theta)` on points: a proposal that follows the cost's
parameters, built on flowjax's conditional spline coupling flows.

The condition is θ raveled to one vector (``jax.flatten_util.ravel_pytree``: a dict of sites in
sorted key order, or one array), so the same proposal takes θ as the model's site dict or as
the array an IRL family uses, as long as training and use see the same structure.

Reparameterized in x *and* in θ: :math:`x = T_\\phi(\\varepsilon; \\theta)`, so with the base draws
ε held fixed (common random numbers) every draw and its density are smooth functions of θ, and
so is the handler's :math:`\\log\\hat Z(\\theta)`: NUTS can run on it
(:class:`maxent_gan.inference.handler.normalized`). :meth:`ConditionalFlow.at` gives :math:`q(\\cdot\\mid\\theta)`
as an ordinary proposal for everything else in the library.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import paramax
from jax.flatten_util import ravel_pytree
from maxent_gan.inference.proposals.base import Proposal, check_count, check_points, compiled_when_eager
from maxent_gan.inference.proposals.flow import spline_coupling_flow

DEFENSIVE_WEIGHT = 0.1  # the broad component's usual share (Hesterberg 1995)

__all__ = ["DEFENSIVE_WEIGHT", "AtCondition", "ConditionalFlow", "DefensiveConditional", "condition_vector", "is_conditional"]


def condition_vector(theta: Any) -> jax.Array:
    """θ (any pytree of arrays) as the flow's condition: one vector."""
    return ravel_pytree(theta)[0]


def is_conditional(proposal) -> bool:
    """Whether ``proposal`` is a θ-conditional proposal (declares ``conditional = True``)."""
    return bool(getattr(proposal, "conditional", False))


class _ConditionalProposal(eqx.Module):
    """What every θ-conditional proposal derives from :meth:`base_draws` and :meth:`transform`:
    draws at θ, and :meth:`at` (the unconditional proposal q(·|θ))."""

    reparameterized: ClassVar[bool] = True
    conditional: ClassVar[bool] = True

    @compiled_when_eager
    def sample_and_log_prob(self, key: jax.Array, n: int, theta) -> tuple[jax.Array, jax.Array]:
        return self.transform(self.base_draws(key, n), theta)

    @compiled_when_eager
    def sample(self, key: jax.Array, n: int, theta) -> jax.Array:
        return self.sample_and_log_prob(key, n, theta)[0]

    def at(self, theta) -> AtCondition:
        """:math:`q(\\cdot\\mid\\theta)` as an ordinary (unconditional) proposal."""
        return AtCondition(self, theta)


class ConditionalFlow(_ConditionalProposal):
    """:math:`q_\\phi(x\\mid\\theta) = N(T_\\phi^{-1}(x;\\theta))\\,|\\det J_{T^{-1}}|`: a spline coupling flow
    whose coupling networks read θ.

    The protocol of a conditional proposal: :meth:`base_draws` (ε, once), :meth:`transform`
    (x and log q at θ from fixed ε), :meth:`log_prob` and :meth:`sample_and_log_prob` at θ, and
    :meth:`at` (the unconditional proposal q(·|θ)).
    """

    flow: eqx.Module
    center: Any = None  # with scale and bound: see bounded_to
    scale: Any = None
    bound: float | None = eqx.field(static=True, default=None)

    @classmethod
    def coupling(cls, key: jax.Array, dim: int, cond_dim: int, *, layers: int = 6, knots: int = 8,
                 interval: float = 5.0, width: int = 64, base_scale: float = 1.0,
                 invert: bool = False) -> ConditionalFlow:
        """A conditional spline coupling flow on R^dim over N(0, base_scale² I), θ of ``cond_dim`` numbers.

        Draws (and their θ-gradients inside NUTS) go through the spline's forward map, as in
        :meth:`Flow.coupling` (``invert=False``; the docstring of ``maxent_gan.inference.proposals.flow`` says why)."""
        if not isinstance(dim, int) or dim < 2:
            raise ValueError(f"dim: a coupling flow needs an integer dimension >= 2, got {dim!r}")
        if not isinstance(cond_dim, int) or cond_dim < 1:
            raise ValueError(f"cond_dim: expected a positive integer (θ's length), got {cond_dim!r}")
        return cls(spline_coupling_flow(key, dim, layers=layers, knots=knots, interval=interval, width=width,
                                        base_scale=base_scale, invert=invert, cond_dim=cond_dim))

    @property
    def dim(self) -> int:
        return self.flow.shape[-1]

    @property
    def cond_dim(self) -> int:
        return self.flow.cond_shape[-1]

    def bounded_to(self, thetas, *, bound: float = 3.0) -> ConditionalFlow:
        """This flow reading θ standardized by a pool ``thetas`` (θ's stacked along a leading axis: the
        pool it is fitted over) and squashed into ``±bound``: :math:`z = b \\tanh((\\theta - m)/(b s))`, m and
        s the pool's mean and sd per coordinate.

        Inside the pool z is nearly the standardized θ; far outside it q(·|θ) stops changing (it
        saturates at the pool's edge) instead of extrapolating the θ-dependence it learnt, which can put
        its mass anywhere (a posterior 40-80 sd off on the rings family, drawn there because Ẑ(θ) came out
        too small). The weights still use the exact :math:`\\tilde p_\\theta`, so estimates stay
        unbiased; only how well q fits outside the pool changes. Smooth in θ, so NUTS runs on it as before.
        """
        if isinstance(bound, bool) or not (isinstance(bound, int | float) and math.isfinite(bound) and bound > 0):
            raise ValueError(f"bound: expected a positive finite number, got {bound!r}")
        conditions = jax.vmap(condition_vector)(thetas)
        if conditions.ndim != 2 or conditions.shape[1] != self.cond_dim or conditions.shape[0] < 2:
            raise ValueError(f"thetas: expected at least 2 θ's of {self.cond_dim} numbers along a leading axis, "
                             f"got conditions of shape {conditions.shape}")
        spread = jnp.std(conditions, axis=0)
        scale = jnp.where(spread > 0, spread, 1.0)
        return ConditionalFlow(self.flow, paramax.NonTrainable(jnp.mean(conditions, axis=0)),
                               paramax.NonTrainable(scale), float(bound))

    def _condition(self, theta) -> jax.Array:
        condition = condition_vector(theta)
        if condition.shape != (self.cond_dim,):
            raise ValueError(f"theta: the proposal was built for θ of {self.cond_dim} numbers, got "
                             f"{condition.shape[0]}")
        if self.bound is None:
            return condition
        center, scale = paramax.unwrap((self.center, self.scale))
        return self.bound * jnp.tanh((condition - center) / (self.bound * scale))

    def base_draws(self, key: jax.Array, n: int) -> jax.Array:
        """ε: n draws of the base distribution, ``(n, dim)`` (the common random numbers)."""
        check_count(n)
        return paramax.unwrap(self.flow).base_dist.sample(key, (n,))

    def transform(self, eps: jax.Array, theta) -> tuple[jax.Array, jax.Array]:
        """``(x, log q(x|θ))`` of the base draws ε at θ: smooth in θ for fixed ε."""
        flow = paramax.unwrap(self.flow)
        condition = self._condition(theta)
        x, log_det = jax.vmap(lambda e: flow.bijection.transform_and_log_det(e, condition))(eps)
        return x, flow.base_dist.log_prob(eps) - log_det

    @compiled_when_eager
    def log_prob(self, x: jax.Array, theta) -> jax.Array:
        check_points("x", x, self.dim)
        flow = paramax.unwrap(self.flow)
        condition = self._condition(theta)
        return jax.vmap(lambda point: flow.log_prob(point, condition))(x)


class DefensiveConditional(_ConditionalProposal):
    """:math:`q(x\\mid\\theta) = (1-\\alpha)\\,q_\\phi(x\\mid\\theta) + \\alpha\\,q_{broad}(x)`: a θ-conditional
    proposal with a defensive component that does not move with θ (Hesterberg 1995).

    A flow fitted over a pool of θ extrapolates outside it, and where it misses mass of
    :math:`p_\\theta` its :math:`\\hat Z(\\theta)` is too small, so :math:`-n\\log\\hat Z(\\theta)` pulls a
    posterior there (a chain stuck far out). The broad part bounds every weight,
    :math:`w \\le \\tilde p_\\theta / (\\alpha\\, q_{broad})`, at every θ.

    The draws are stratified, not picked at random: of n base draws the last
    ``round(α n)`` are draws of ``broad`` itself (they do not depend on θ) and the rest are the flow's
    ε, moved by :math:`T_\\phi(\\varepsilon;\\theta)`. Every draw is weighted by the mixture density at
    the draws' realized share m/n (the balance heuristic with the actual counts; :meth:`transform`),
    so :math:`\\hat Z(\\theta)` is unbiased at every θ for every n and, with the draws
    fixed, smooth in θ: NUTS can run on it, as on the flow alone. The price is at most a fraction
    α of the draws where the flow alone was good. Its log needs the flow's density at the broad
    draws, one inverse pass.
    """

    proposal: ConditionalFlow
    broad: Proposal
    weight: float = eqx.field(static=True)

    def __init__(self, proposal: ConditionalFlow, broad: Proposal, weight: float = DEFENSIVE_WEIGHT):
        if not is_conditional(proposal):
            raise TypeError(f"proposal: expected a θ-conditional proposal, got {type(proposal).__name__}")
        if not isinstance(broad, Proposal) or is_conditional(broad):
            raise TypeError("broad: expected an ordinary (unconditional) proposal with "
                            "sample/log_prob/sample_and_log_prob")
        if getattr(broad, "dim", proposal.dim) != proposal.dim:
            raise ValueError(f"broad: its draws have {broad.dim} coordinates, the flow's {proposal.dim}")
        if not 0.0 < float(weight) < 1.0:
            raise ValueError(f"weight: expected the broad component's weight in (0, 1), got {weight!r}")
        self.proposal, self.broad, self.weight = proposal, broad, float(weight)

    @property
    def dim(self) -> int:
        return self.proposal.dim

    @property
    def cond_dim(self) -> int:
        return self.proposal.cond_dim

    def num_broad(self, n: int) -> int:
        """How many of n draws are the broad component's (at least one, at most n - 1)."""
        return min(max(round(self.weight * n), 1), n - 1)

    def base_draws(self, key: jax.Array, n: int) -> jax.Array:
        """``(n, dim)``: the flow's ε, then ``num_broad(n)`` draws of the broad component."""
        check_count(n)
        if n < 2:
            raise ValueError(f"n: a defensive mixture needs at least 2 draws (one per component), got {n}")
        m = self.num_broad(n)
        key_flow, key_broad = jax.random.split(key)
        return jnp.concatenate([self.proposal.base_draws(key_flow, n - m), self.broad.sample(key_broad, m)])

    def _mixture(self, log_q_flow: jax.Array, log_q_broad: jax.Array, share: float | None = None) -> jax.Array:
        share = self.weight if share is None else share
        return jnp.logaddexp(math.log1p(-share) + log_q_flow, math.log(share) + log_q_broad)

    def transform(self, eps: jax.Array, theta) -> tuple[jax.Array, jax.Array]:
        """``(x, log q(x|θ))`` of :meth:`base_draws`' rows at θ. The mixture's weight is the broad draws'
        realized share ``num_broad(n) / n``: with ``weight * n`` not a whole number (n = 128: 13 broad
        draws, 0.1016) the nominal weight would bias Ẑ by up to that ratio where the broad part
        dominates. It is :meth:`log_prob`'s density exactly when ``weight * n`` is whole."""
        n = eps.shape[0]
        m = self.num_broad(n)
        x_flow, log_q_flow = self.proposal.transform(eps[:-m], theta)
        x_broad = eps[-m:]
        x = jnp.concatenate([x_flow, x_broad])
        log_q_flow = jnp.concatenate([log_q_flow, self.proposal.log_prob(x_broad, theta)])
        return x, self._mixture(log_q_flow, self.broad.log_prob(x), m / n)

    @compiled_when_eager
    def log_prob(self, x: jax.Array, theta) -> jax.Array:
        """The mixture's density at the nominal weight (a point's density: the forward check's)."""
        check_points("x", x, self.dim)
        return self._mixture(self.proposal.log_prob(x, theta), self.broad.log_prob(x))


class AtCondition(eqx.Module):
    """A conditional proposal at one θ: the ordinary proposal protocol."""

    reparameterized: ClassVar[bool] = True

    proposal: _ConditionalProposal
    theta: Any

    @compiled_when_eager
    def sample(self, key: jax.Array, n: int) -> jax.Array:
        return self.proposal.sample(key, n, self.theta)

    @compiled_when_eager
    def log_prob(self, x: jax.Array) -> jax.Array:
        return self.proposal.log_prob(x, self.theta)

    @compiled_when_eager
    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        return self.proposal.sample_and_log_prob(key, n, self.theta)
