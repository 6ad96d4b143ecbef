"""Checks at the public boundary: shapes always, values only when concrete (not traced)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = ["check_key", "check_same_length", "check_vector", "is_concrete"]


def is_concrete(x: ArrayLike) -> bool:
    """True when ``x`` holds values (not a tracer inside jit/grad/vmap)."""
    return not isinstance(x, jax.core.Tracer)


def check_vector(name: str, value: ArrayLike) -> jax.Array:
    """Return ``value`` as a non-empty 1-D float array, or raise a ``ValueError`` naming it."""
    if value is None:
        raise ValueError(f"{name}: expected a 1-D array of shape (n,), got None")
    array = jnp.asarray(value)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of shape (n,), got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name}: is empty; need at least one value")
    if jnp.iscomplexobj(array):  # a cast would keep the real part alone, silently
        raise ValueError(f"{name}: expected real values, got dtype {array.dtype}")
    if not jnp.issubdtype(array.dtype, jnp.floating):
        array = array.astype(jnp.zeros(()).dtype)
    if is_concrete(array):
        bad = ~np.isfinite(np.asarray(array))
        if bad.any():
            first = int(np.argmax(bad))
            raise ValueError(
                f"{name}: {int(bad.sum())} non-finite value(s) (NaN or inf), first at index "
                f"{first} ({float(np.asarray(array)[first])})"
            )
    return array


def check_same_length(name: str, value: jax.Array, ref_name: str, ref: jax.Array) -> None:
    """Raise a ``ValueError`` unless ``value`` has the shape of ``ref``."""
    if value.shape != ref.shape:
        raise ValueError(f"{name}: expected shape {ref.shape} to match {ref_name}, got {value.shape}")


def require(condition: jax.Array, message: str) -> None:
    """Raise ``ValueError(message)`` when a concrete ``condition`` is false; skip if traced."""
    if is_concrete(condition) and not bool(np.all(np.asarray(condition))):
        raise ValueError(message)


def check_key(key: jax.Array | None) -> jax.Array:
    """One typed PRNG key (``jax.random.key(seed)``); ``None`` gives ``key(0)``. The library takes keys, never
    seeds: only the command line turns ``--seed`` into one."""
    key = jax.random.key(0) if key is None else key
    if not (isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ()):
        raise ValueError(f"key: expected one typed key (jax.random.key(seed)), got {key!r}")
    return key
