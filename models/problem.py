"""The Problem protocol: what is true about a problem, in one place.

A :class:`Problem` holds its sample space (``maxent_gan.models.spaces``: what inference dispatches on), its
data, the data density as an :class:`Unnormalized` energy where one is known, and its parametric
cost family (:class:`CostFamily`: the cost :math:`c_\\theta(x)`, θ's names, the NumPyro model
whose posterior ``compare`` and ``sample_posterior`` sample, and the exact references log Z(θ)
and a sampler of :math:`p_\\theta` where they exist). Each built-in problem is built in its own
module under ``models/`` and named by one line of ``maxent_gan.models.problems.PROBLEMS``; a user's own
problem is built by ``maxent_gan.models.builders`` (``tabular_problem``, ``energy_problem``) or loaded from
a file (``maxent_gan.models.files``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from maxent_gan.models.spaces import SampleSpace
from maxent_gan.models.unnormalized import Unnormalized

__all__ = ["CostFamily", "DataFn", "Problem", "draws_data"]

DataFn = Callable[[jax.Array, int, int], tuple[jax.Array, jax.Array]]


class CostFamily(NamedTuple):
    """A parametric cost family :math:`c_\\theta(x)` with a posterior over θ.

    ``cost_fn(θ, x) -> (n,)`` with θ a pytree: one array (``sites`` has one name, e.g. the IRL
    weights ``"theta"``) or a dict whose keys are the model's latent sites. ``model(data=None, *,
    num_data=None)`` is the NumPyro model: a prior on the sites, the data observed through
    :class:`Unnormalized`. ``init`` is where training starts; ``theta_true`` the truth (or the
    best member of the family) when known. ``log_partition_fn(θ)`` and ``sampler(key, θ, n)``
    are the exact references, ``None`` where intractable. ``learning_rate`` is θ's Adam step.
    """

    cost_fn: Callable[[Any, jax.Array], jax.Array]
    model: Callable[..., None]
    init: Any
    theta_names: tuple[str, ...]
    sites: tuple[str, ...] = ("theta",)
    theta_true: Any = None
    log_partition_fn: Callable[[Any], jax.Array] | None = None
    sampler: Callable[[jax.Array, Any, int], jax.Array] | None = None
    theta_descriptions: tuple[str, ...] | None = None
    learning_rate: float = 0.05

    @property
    def dict_valued(self) -> bool:
        """θ is a dict of the sites (else one array, the single site)."""
        return isinstance(self.init, dict)

    def to_sites(self, theta) -> dict:
        """θ as the model's latent sites."""
        return dict(theta) if self.dict_valued else {self.sites[0]: theta}

    def from_sites(self, sites: dict):
        """The model's latent sites (or a posterior's draws of them) as θ."""
        return {s: sites[s] for s in self.sites} if self.dict_valued else sites[self.sites[0]]

    def flatten(self, sites: dict) -> np.ndarray:
        """The sites as one vector (``(..., k)`` for stacked draws), in the order of ``theta_names``.
        ``sites`` is any mapping from site names to arrays: a dict, or a posterior's ``idata.posterior``."""
        reference = self.to_sites(self.init)
        parts = []
        for site in self.sites:
            value = np.asarray(sites[site])
            batch = value.shape[:value.ndim - np.ndim(reference[site])]
            parts.append(value.reshape(batch + (-1,)))
        return np.concatenate(parts, axis=-1)

    def unflatten(self, theta: np.ndarray) -> dict:
        """The inverse of :meth:`flatten`: ``(..., k)`` back to the sites' dict."""
        theta = np.asarray(theta)
        reference = self.to_sites(self.init)
        params, start = {}, 0
        for site in self.sites:
            shape = np.shape(reference[site])
            size = int(np.prod(shape))
            params[site] = jnp.asarray(theta[..., start:start + size].reshape(theta.shape[:-1] + shape))
            start += size
        return params

    def target(self, theta, space: SampleSpace) -> Unnormalized:
        """:math:`p_\\theta` over ``space`` as an :class:`Unnormalized` (with its exact log Z and
        sampler where the family has them), relative to the space's base measure."""
        return Unnormalized(
            self.cost_fn, theta, event_shape=(space.size,),
            log_normalizer=None if self.log_partition_fn is None else self.log_partition_fn(theta),
            sampler=None if self.sampler is None else _ShapedSampler(self.sampler, space.size),
            base_measure=space.base_measure, support=space.support,
        )


@dataclasses.dataclass(frozen=True)
class _ShapedSampler:
    """A family's ``sampler(key, θ, n)`` as an :class:`Unnormalized` sampler: any sample shape, ``prod(shape)``
    draws reshaped. Equal for equal sampler and size (not a fresh closure per θ), so the targets of two θ's
    share their compiled programs: an estimator run at many θ's compiles once."""

    sampler: Callable[[jax.Array, Any, int], jax.Array]
    size: int

    def __call__(self, key, params, shape):
        shape = tuple(shape)
        n = int(np.prod(shape)) if shape else 1
        return self.sampler(key, params, n).reshape(shape + (self.size,))


class Problem(NamedTuple):
    """A problem: its sample space, data, the data density, and its cost family.

    ``target`` is the data density as an :class:`Unnormalized` energy (exact ``log_normalizer``
    and sampler where known), or ``None`` when no reference exists (digits). ``data(key,
    n_train, n_test)`` gives training and held-out points (a fixed data set ignores the counts).
    ``true_params`` are the target's parameters (θ* for IRL problems). ``family`` is the
    parametric cost family whose posterior ``compare`` samples, ``None`` where the problem has
    none (digits, the standard sampler targets). ``data_fixed``: the data are a fixed set (a user's
    demonstrations), split into training and held-out rows, not fresh draws; ``compare`` then
    conditions on all of them.
    """

    name: str
    space: SampleSpace
    target: Unnormalized | None
    true_params: Any = None
    data: DataFn | None = None
    family: CostFamily | None = None
    data_fixed: bool = False  # ``data`` is a fixed set split once (a user's): the counts are ignored
    # what `train` fits by default: the cost family (True), an MLP energy (False); None: the family on
    # trajectory spaces, an MLP on points (the built-in toys' families are references, not the model)
    trains_family: bool | None = None

    @property
    def dim(self) -> int:
        """Length of one point (a packed trajectory for trajectory spaces)."""
        return self.space.size

    @property
    def bounds(self):
        """The 2-D quadrature box of a point problem, else ``None``."""
        return getattr(self.space, "bounds", None)

    @property
    def model(self) -> Callable[..., None] | None:
        """The NumPyro model of the cost family (``None`` without one)."""
        return None if self.family is None else self.family.model


def draws_data(target: Unnormalized) -> DataFn:
    """Training and held-out data as independent exact draws of ``target``."""
    def data(key, n_train, n_test):
        key_train, key_test = jax.random.split(key)
        return target.sample(key_train, (n_train,)), target.sample(key_test, (n_test,))

    return data
