"""Output files and folders written atomically (a temp file or folder beside the target, then a rename).

Files get the mode an ordinary ``open`` would give them (``0o666`` less the umask), not
``mkstemp``'s ``0o600``. A run's output folder is built in a fresh temporary folder next to
``--out`` and swapped in at the end (:func:`staged_out_dir`), so ``--out`` holds one whole run:
never an old run's files beside a new one's, never a half-written run.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import numbers
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "find_staged", "finite_or_none", "json_safe", "prepare_out_dir", "save_figure", "staged_out_dir",
           "write_atomic", "write_json"]


def finite_or_none(value: float | None) -> float | None:
    """A float for strict JSON: non-finite values (e.g. k-hat of ±inf) and ``None`` become null."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def json_safe(payload: Any) -> Any:
    """``payload`` with every float passed through :func:`finite_or_none` (nested dicts, lists, tuples)."""
    if isinstance(payload, dict):
        return {key: json_safe(value) for key, value in payload.items()}
    if isinstance(payload, list | tuple):
        return [json_safe(value) for value in payload]
    if isinstance(payload, numbers.Real) and not isinstance(payload, numbers.Integral):  # numpy floats too
        return finite_or_none(payload)
    return payload


@functools.cache
def _umask() -> int:
    # /proc says it without changing it; os.umask can only be read by setting it (a race with other threads)
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _default_mode(*, folder: bool = False) -> int:
    return (0o777 if folder else 0o666) & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A unique temp path beside ``path`` to write to; renamed onto ``path`` when the block succeeds.

    Unique (``mkstemp``), so two processes writing the same file never share a temp file; removed
    on any error or interrupt; given the umask's mode before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(descriptor)
    temp = Path(name)
    try:
        yield temp
        os.chmod(temp, _default_mode())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _check_out_dir(out: Path, *, force: bool) -> None:
    try:
        if out.exists() and not out.is_dir():
            raise ValueError(f"out: {out} exists and is not a directory")
        here = Path.cwd().resolve()
        if force and out.is_dir() and (out.resolve() == here or out.resolve() in here.parents):
            # replacing it would delete the files of the folder the user works in
            raise ValueError(f"out: {out} is the current folder or one above it; --force would replace it with all "
                             "it holds: choose a new folder for --out")
        if out.is_dir() and any(out.iterdir()) and not force:
            raise ValueError(f"out: {out} exists and is not empty; pass --force to overwrite or choose another --out")
    except OSError as err:
        raise ValueError(f"out: cannot use {out}: {err.strerror or err}") from None


def prepare_out_dir(path: str | os.PathLike, *, force: bool) -> Path:
    """Create ``path`` in place; refuse a non-empty existing folder unless ``force``.

    Runs use :func:`staged_out_dir` instead; this is for writing into a folder that is kept
    (``train --resume``).
    """
    out = Path(path)
    _check_out_dir(out, force=force)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"out: cannot create {out}: {err.strerror or err}") from None
    return out


def find_staged(path: str | os.PathLike, keep_if: str) -> Path | None:
    """The newest staging folder of ``path`` (:func:`staged_out_dir`'s) that holds ``keep_if``, or ``None``.

    A run killed outright (SIGKILL, the out-of-memory killer) cannot swap its folder in: its
    checkpoints stay in the staging folder, where ``train --resume`` finds them.
    """
    out = Path(path).absolute()
    try:
        found = [folder for folder in out.parent.glob(f".{out.name}.*.tmp")
                 if folder.is_dir() and (folder / keep_if).is_file()]
    except OSError:
        return None
    return max(found, key=lambda folder: (folder / keep_if).stat().st_mtime, default=None)


@contextlib.contextmanager
def staged_out_dir(path: str | os.PathLike | None, *, force: bool, keep_if: str | None = None,
                   staging: Path | None = None) -> Iterator[Path | None]:
    """A fresh temporary folder next to ``path`` to write a run into, swapped in for ``path`` at the end.

    The checks of :func:`prepare_out_dir` come first, when the block is entered (before any
    work). On success the old ``path`` (``--force``) is renamed away, the new folder renamed in,
    and the old one deleted. On an error or interrupt the temporary folder is removed and
    ``path`` is left as it was, unless the run wrote ``keep_if`` (e.g. a training checkpoint,
    which ``--resume`` continues from): then the folder is swapped in as it stands.
    ``path=None`` yields ``None`` (a run that writes nothing). ``staging``: an existing staging folder
    to continue in (:func:`find_staged`), swapped in the same way.
    """
    if path is None:
        yield None
        return
    out = Path(path).absolute()  # "." has a name and a parent this way
    if staging is None:
        _check_out_dir(Path(path), force=force)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
        except OSError as err:
            raise ValueError(f"out: cannot create {path}: {err.strerror or err}") from None
    try:
        os.chmod(staging, _default_mode(folder=True))  # mkdtemp's folders are 0o700
        yield staging
    except BaseException:
        if keep_if is not None and (staging / keep_if).exists():
            _swap_in(staging, out)
        else:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    _swap_in(staging, out)


def _swap_in(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``; an existing ``out`` is renamed away first, then deleted."""
    if not out.exists():
        os.replace(staging, out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
    os.replace(out, old)  # onto the empty folder mkdtemp made: a unique name, no race
    try:
        os.replace(staging, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` so that no half-written file is ever visible there."""
    with atomic_path(path) as temp:
        temp.write_bytes(data.encode() if isinstance(data, str) else data)
    return Path(path)


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    return write_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")


def save_figure(figure, path: str | os.PathLike) -> Path:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    return write_atomic(path, buffer.getvalue())
