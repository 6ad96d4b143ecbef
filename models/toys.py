"""The 2D toy data sets as Gaussian mixtures that trace the classic shapes.

Each toy is a mixture whose components lie along the shape (rings, arcs, squares, spiral
arms), so its data density, its log Z and exact draws are all known: the true NLL of
held-out data is a number, not a guess. ``toy_params(name)`` gives the mixture,
``sample_toy(key, name, n)`` seeded draws, ``toy_bounds(name)`` a box holding all but a
negligible (< 1e-12) fraction of the mass, for quadrature.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from maxent_gan.models._validation import check_positive_int
from maxent_gan.models.mixture import mixture_energy, mixture_params, mixture_sample
from maxent_gan.models.problem import CostFamily, Problem, draws_data
from maxent_gan.models.spaces import Points

__all__ = ["TOYS", "sample_toy", "toy_bounds", "toy_family_cost", "toy_family_log_partition", "toy_family_model",
           "toy_params", "toy_problem"]


def _arc(center, radius, start, stop, spacing):
    """Points every ``spacing`` along a circular arc (angles in radians)."""
    count = max(2, math.ceil(abs(stop - start) * radius / spacing))
    angle = np.linspace(start, stop, count, endpoint=not math.isclose(abs(stop - start), 2 * math.pi))
    return np.stack([center[0] + radius * np.cos(angle), center[1] + radius * np.sin(angle)], axis=-1)


def _rings():
    locs = np.concatenate([_arc((0, 0), r, 0, 2 * math.pi, 0.15) for r in (1.0, 2.0, 3.0)])
    return locs, np.full(len(locs), 0.12)


def _eight_gaussians():
    angle = np.arange(8) * math.pi / 4
    return 2.5 * np.stack([np.cos(angle), np.sin(angle)], axis=-1), np.full(8, 0.25)


def _moons():
    upper = _arc((0.0, 0.0), 1.0, 0.0, math.pi, 0.08)
    lower = _arc((1.0, 0.5), 1.0, math.pi, 2 * math.pi, 0.08)
    locs = 1.5 * (np.concatenate([upper, lower]) - np.array([0.5, 0.25]))
    return locs, np.full(len(locs), 0.15)


def _checkerboard():
    sub = (np.arange(4) + 0.5) / 4  # a 4 x 4 sub-grid of blobs fills each square
    squares = [(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0]
    locs = np.array([(i + a - 2, j + b - 2) for i, j in squares for a in sub for b in sub])
    return 1.5 * locs, np.full(len(locs), 1.5 * 0.12)


def _pinwheel():
    radius = np.linspace(0.4, 3.0, 24)
    arms = [
        np.stack([radius * np.cos(2 * math.pi * k / 5 + 0.6 * radius), radius * np.sin(2 * math.pi * k / 5 + 0.6 * radius)],
                 axis=-1)
        for k in range(5)
    ]
    return np.concatenate(arms), np.tile(0.06 + 0.05 * radius, 5)


TOYS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
    "rings": _rings,
    "8gaussians": _eight_gaussians,
    "moons": _moons,
    "checkerboard": _checkerboard,
    "pinwheel": _pinwheel,
}


def _check_name(name: str) -> None:
    if name not in TOYS:
        raise ValueError(f"problem: unknown toy {name!r}; valid: {', '.join(TOYS)}")


def toy_params(name: str) -> dict[str, jax.Array]:
    """The toy's mixture parameters (see ``maxent_gan.models.mixture``)."""
    _check_name(name)
    locs, scales = TOYS[name]()
    return mixture_params(locs, scales)


def toy_bounds(name: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """A square box around the toy reaching 8 component scales past every location."""
    _check_name(name)
    locs, scales = TOYS[name]()
    half = float(np.max(np.abs(locs)) + 8 * np.max(scales))
    return ((-half, half), (-half, half))


def sample_toy(key: jax.Array, name: str, n: int) -> jax.Array:
    """``n`` exact draws from the toy, shape ``(n, 2)``."""
    check_positive_int("n", n)
    return mixture_sample(key, toy_params(name), (n,))


def toy_log_density(name: str, x: jax.Array) -> jax.Array:
    """The toy's normalized log density (for true NLL)."""
    from maxent_gan.models.mixture import mixture_cost, mixture_log_partition

    params = toy_params(name)
    return -mixture_cost(params, jnp.asarray(x)) - mixture_log_partition(params)


def _scaled(base: dict, theta: dict) -> dict:
    # the shape stretched by e^{log_spread} (locations) and its blobs widened by e^{log_scale}
    return {"logits": base["logits"], "locs": base["locs"] * jnp.exp(theta["log_spread"]),
            "scale_trils": base["scale_trils"] * jnp.exp(theta["log_scale"])}


def toy_family_cost(base: dict, theta: dict, x: jax.Array) -> jax.Array:
    r"""A two-parameter cost family around a toy: θ = (log spread, log scale), θ = 0 the toy itself.
    Exact log Z for every θ (a mixture), so posteriors have a gold standard.

    The toys' components are axis-aligned (diagonal scale factors), so the cost is written out
    directly rather than through ``mixture_cost``'s triangular solves (which hung XLA's CPU runtime
    inside vectorized NUTS chains here)."""
    params = _scaled(base, theta)
    scales = jnp.diagonal(params["scale_trils"], axis1=-2, axis2=-1)  # (K, d)
    white = (x[..., None, :] - params["locs"]) / scales
    return -jax.scipy.special.logsumexp(params["logits"] - 0.5 * jnp.sum(white**2, -1), axis=-1)


def toy_family_log_partition(base: dict, theta: dict) -> jax.Array:
    from maxent_gan.models.mixture import mixture_log_partition

    return mixture_log_partition(_scaled(base, theta))


def toy_family_model(data: jax.Array | None = None, *, base: dict, num_data: int | None = None) -> None:
    """NumPyro: log spread, log scale ~ N(0, 0.5²); points observed through ``Unnormalized`` (exact log Z)."""
    import numpyro
    import numpyro.distributions as dist
    from maxent_gan.models.unnormalized import Unnormalized

    theta = {name: numpyro.sample(name, dist.Normal(0.0, 0.5)) for name in ("log_spread", "log_scale")}
    energy = Unnormalized(lambda p, x: toy_family_cost(base, p, x), theta, event_shape=(2,),
                          log_normalizer=toy_family_log_partition(base, theta))
    with numpyro.plate("data", num_data if data is None else data.shape[0]):
        numpyro.sample("x", energy, obs=data)


def toy_problem(name: str) -> Problem:
    """A toy as a problem: exact draws of the mixture as data, the quadrature box, and the two-parameter
    family of :func:`toy_family_cost` (θ* = 0, the toy itself; exact log Z and draws at every θ)."""
    base = toy_params(name)
    target = mixture_energy(base)
    zero = jnp.zeros((), jnp.zeros(()).dtype)
    family = CostFamily(
        partial(toy_family_cost, base), partial(toy_family_model, base=base),
        {"log_spread": zero, "log_scale": zero}, ("log_spread", "log_scale"), sites=("log_spread", "log_scale"),
        theta_true={"log_spread": zero, "log_scale": zero},
        log_partition_fn=partial(toy_family_log_partition, base),
        sampler=lambda key, theta, n: mixture_sample(key, _scaled(base, theta), (n,)),
        theta_descriptions=("log of how far the toy's blobs sit from its centre (0: the toy itself)",
                            "log of each blob's width (0: the toy itself)"),
        learning_rate=0.02,
    )
    return Problem(name, Points(2, toy_bounds(name)), target, base, draws_data(target), family)
