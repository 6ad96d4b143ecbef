"""A NumPyro distribution known only up to its normalizer.

.. math:: p_\\theta(x) = \\exp(-c_\\theta(x)) / Z(\\theta), \\quad
          Z(\\theta) = \\int \\exp(-c_\\theta(x))\\, d\\nu(x)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from numpyro.distributions import constraints
from numpyro.distributions.distribution import Distribution

__all__ = ["MissingNormalizerWarning", "Unnormalized"]


class MissingNormalizerWarning(UserWarning):
    """An ``Unnormalized`` density was evaluated as a likelihood without the normalizing handler."""

CostFn = Callable[[Any, jax.Array], jax.Array]
Sampler = Callable[[jax.Array, Any, tuple[int, ...]], jax.Array]


class Unnormalized(Distribution):
    r"""An energy-based density :math:`\exp(-c_\theta(x))` relative to a base measure.

    ``log_prob(x)`` is the *unnormalized* log density
    :math:`\log b(x) - c_\theta(x)` (``b`` is the optional proper base density; without
    it the log density is relative to ``base_measure`` itself). Observing data through
    this distribution without accounting for :math:`-N \log Z(\theta)` gives a wrong
    posterior; the library's normalizing handler adds that term.

    Args:
        cost_fn: ``cost_fn(params, x) -> costs``, x of shape ``(..., *event_shape)``,
            costs of shape ``(...)``. A pure function (it is pytree aux data).
        params: the cost parameters θ, any pytree of arrays (traced by NumPyro).
        event_shape: shape of one data point, e.g. ``(d,)``.
        log_normalizer: the exact :math:`\log Z(\theta)` when known, else ``None``.
        sampler: ``sampler(key, params, sample_shape) -> x``, an exact sampler of the
            normalized density, when one exists.
        base_log_prob: ``base_log_prob(x)``, a proper base density ``b`` whose log is
            added to ``-cost``; ``None`` means ``b = 1``.
        base_measure: the reference measure, in words (``"lebesgue"``, ``"counting"``,
            ``"dynamics"``). Every proposal density used with this distribution must
            be relative to the same measure.
        support: the NumPyro constraint of ``x``.
    """

    pytree_data_fields = ("params", "log_normalizer")
    pytree_aux_fields = ("cost_fn", "sampler", "base_log_prob", "base_measure", "_support")

    def __init__(
        self,
        cost_fn: CostFn,
        params: Any,
        *,
        event_shape: tuple[int, ...],
        log_normalizer: jax.typing.ArrayLike | None = None,
        sampler: Sampler | None = None,
        base_log_prob: Callable[[jax.Array], jax.Array] | None = None,
        base_measure: str = "lebesgue",
        support: constraints.Constraint = constraints.real_vector,
        validate_args: bool | None = None,
    ):
        if not callable(cost_fn):
            raise TypeError(f"cost_fn: expected a callable cost_fn(params, x), got {type(cost_fn).__name__}")
        if sampler is not None and not callable(sampler):
            raise TypeError(f"sampler: expected a callable sampler(key, params, shape) or None, got {type(sampler).__name__}")
        self.cost_fn = cost_fn
        self.params = params
        self.log_normalizer = None if log_normalizer is None else jnp.asarray(log_normalizer)
        self.sampler = sampler
        self.base_log_prob = base_log_prob
        self.base_measure = base_measure
        self._support = support
        super().__init__(batch_shape=(), event_shape=tuple(event_shape), validate_args=validate_args)

    @property
    def support(self) -> constraints.Constraint:
        return self._support

    @property
    def has_exact_sampler(self) -> bool:
        return self.sampler is not None

    def cost(self, x: jax.Array) -> jax.Array:
        """The cost (energy) :math:`c_\\theta(x)`, shape ``x.shape[:-len(event_shape)]``."""
        # shapes are static in JAX, so these checks also hold under jit and grad
        shape, event_shape = tuple(jnp.shape(x)), tuple(self.event_shape)
        batch_ndim = len(shape) - len(event_shape)
        if batch_ndim < 0 or shape[batch_ndim:] != event_shape:
            raise ValueError(
                f"x: expected trailing shape {event_shape} (the target's event_shape), got shape {shape}"
            )
        costs = self.cost_fn(self.params, x)
        if tuple(jnp.shape(costs)) != shape[:batch_ndim]:
            raise ValueError(
                f"cost_fn: returned shape {tuple(jnp.shape(costs))} for points of batch shape {shape[:batch_ndim]}; "
                "expected one cost per point"
            )
        return costs

    def unnormalized_log_prob(self, x: jax.Array) -> jax.Array:
        """Unnormalized log density :math:`\\log b(x) - c_\\theta(x)` (no :math:`\\log Z`)."""
        log_density = -self.cost(x)
        if self.base_log_prob is not None:
            log_density = log_density + self.base_log_prob(x)
        return log_density

    def log_prob(self, x: jax.Array) -> jax.Array:
        """The NumPyro density: :meth:`unnormalized_log_prob`, with a warning (once per call site).

        NumPyro calls this for an observed site; if it is reached, no normalizing handler replaced
        the site, and a posterior built on it ignores :math:`-N\\log Z(\\theta)`.
        Library code calls :meth:`unnormalized_log_prob`, which never warns.
        """
        warnings.warn(
            "Unnormalized.log_prob: this density has no -log Z(θ); a posterior that observes data through it "
            "ignores the normalizer. Wrap the model in maxent_gan.inference.handler.normalized(model, proposal, n, key)",
            MissingNormalizerWarning, stacklevel=2,
        )
        return self.unnormalized_log_prob(x)

    def normalized_log_prob(self, x: jax.Array) -> jax.Array:
        """:math:`\\log p_\\theta(x)`, using the exact ``log_normalizer``."""
        if self.log_normalizer is None:
            raise ValueError(
                "normalized_log_prob: this Unnormalized distribution has no exact "
                "log_normalizer; estimate log Z with maxent_gan.inference.estimators instead"
            )
        return self.unnormalized_log_prob(x) - self.log_normalizer

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        if self.sampler is None:
            raise NotImplementedError(
                "Unnormalized.sample: this energy has no exact sampler (its normalizer is "
                "intractable); draw from a proposal (maxent_gan.inference.proposals) and weight, or "
                "pass sampler=... when an exact one exists"
            )
        return self.sampler(key, self.params, tuple(sample_shape))
