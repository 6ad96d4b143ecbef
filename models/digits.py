"""scikit-learn's bundled 8x8 digits as a 64-D data set, dequantized and standardized.

The 1797 images ship with scikit-learn (nothing is downloaded). Pixels take the 17 values
0..16; adding U(0, 1) noise and dividing by 17 gives a continuous density on (0, 1)^64
(dequantization: its likelihood lower-bounds the discrete one). The problem then
standardizes with the training split's mean and standard deviation.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from maxent_gan.models.problem import Problem
from maxent_gan.models.spaces import Points

__all__ = ["DigitsData", "digits_problem", "load_digits_data", "to_pixels"]


class DigitsData(NamedTuple):
    train: jax.Array  # (n_train, 64), standardized
    test: jax.Array  # (n_test, 64), standardized with the training statistics
    loc: jax.Array  # (64,)
    scale: jax.Array  # (64,)


def load_digits_data(key: jax.Array, *, test_fraction: float = 0.2) -> DigitsData:
    """The dequantized digits, split at random into train and test (seeded by ``key``)."""
    from sklearn.datasets import load_digits

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    pixels = jnp.asarray(load_digits().data, dtype=jnp.zeros(()).dtype)
    key_noise, key_split = jax.random.split(key)
    x = (pixels + jax.random.uniform(key_noise, pixels.shape, dtype=pixels.dtype)) / 17.0
    order = jax.random.permutation(key_split, x.shape[0])
    n_test = int(round(test_fraction * x.shape[0]))
    train, test = x[order[n_test:]], x[order[:n_test]]
    loc, scale = train.mean(0), train.std(0)
    return DigitsData((train - loc) / scale, (test - loc) / scale, loc, scale)


def to_pixels(x: jax.Array, loc: jax.Array, scale: jax.Array) -> np.ndarray:
    """Standardized points back to 8x8 images in [0, 1], shape ``(n, 8, 8)``."""
    return np.clip(np.asarray(x * scale + loc), 0.0, 1.0).reshape(-1, 8, 8)


def digits_problem() -> Problem:
    """The digits as a problem: a fixed data set in R^64, no reference density and no cost family."""
    def data(key, n_train, n_test):
        digits = load_digits_data(key)
        return digits.train, digits.test

    return Problem("digits", Points(64), None, None, data)
