"""The one integer check of the public boundary (sizes, counts, horizons), shared by every layer."""

from __future__ import annotations

import numpy as np

__all__ = ["check_positive_int"]


def check_positive_int(name: str, value, *, minimum: int = 1, what: str | None = None) -> int:
    """``value`` as an ``int`` of at least ``minimum``, or a ``ValueError`` naming ``name`` (bools, floats
    and arrays are refused). ``what`` replaces "a positive integer" (or "a non-negative integer") in
    the message."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer) or value < minimum:
        kind = what or ("a positive integer" if minimum == 1 else "a non-negative integer" if minimum == 0
                        else f"an integer >= {minimum}")
        raise ValueError(f"{name}: expected {kind}, got {value!r}")
    return int(value)
