"""Output files written atomically (temp file in the same folder, then rename)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["finite_or_none", "prepare_out_dir", "save_figure", "write_atomic", "write_json"]


def finite_or_none(value: float | None) -> float | None:
    """A float for strict JSON: non-finite values (e.g. k-hat of ±inf) and ``None`` become null."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def prepare_out_dir(path: str | os.PathLike, *, force: bool) -> Path:
    """Create ``path``; refuse a non-empty existing folder unless ``force``."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out: {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ValueError(f"out: {out} exists and is not empty; pass --force to overwrite or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` so that no half-written file is ever visible there."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    return write_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")


def save_figure(figure, path: str | os.PathLike) -> Path:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    return write_atomic(path, buffer.getvalue())
