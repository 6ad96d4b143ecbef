"""A user's own tabular problem from a file, and the field's formats (imitation's trajectories, seals'
tabular environments).

``maxent-gan compare --problem my_mdp.npz`` (and ``train``, ``logz``) reads an ``.npz`` with the keys

=================  =====================================================================  ========
key                what                                                                   needed
=================  =====================================================================  ========
``features``       cost features, ``(S, A, K)`` or ``(S, K)`` (the same for every action)   yes
``transitions``    dense ``(S, A, S)`` probabilities; or give ``successors`` and            yes
                   ``successor_probs`` ``(S, A, M)`` (sparse: M successors per (s, a))
``initial``        start distribution ``(S,)``                                            yes
``horizon``        T, a positive integer (a 0-d array)                                    yes
``states``         demonstrations' states, integers ``(n, T+1)``                           yes
``actions``        their actions, integers ``(n, T)``                                      yes
``theta_true``     the true weights ``(K,)``, when known (the report then scores θ̂)       no
``feature_names``  ``(K,)`` strings                                                       no
``grid_shape``     ``(rows, columns)`` when the states are the cells of a grid, row-major  no
=================  =====================================================================  ========

Every array is checked before any work; a missing or malformed key raises ``ValueError`` naming it
(the CLI prints it on one line and exits 2). Written by hand: no package reads this layout.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from maxent_gan.models.builders import tabular_problem
from maxent_gan.models.problem import Problem
from maxent_gan.models.tabular import Transitions

__all__ = ["REQUIRED_KEYS", "from_imitation_trajectories", "from_seals_env", "is_problem_file", "load_problem_file"]

REQUIRED_KEYS = ("features", "initial", "horizon", "states", "actions")


def is_problem_file(name: str | os.PathLike) -> bool:
    """Whether a ``--problem`` value names a file (it ends in ``.npz``) rather than a built-in problem."""
    return str(name).endswith(".npz")


MAX_ARRAY_BYTES = 2**31  # per member; MAX_ARRAY_BYTES_ENV (bytes) raises it
MAX_ARRAY_BYTES_ENV = "MAXENT_GAN_MAX_ARRAY_BYTES"
_ZIP_MAGIC, _NPY_MAGIC = b"PK\x03\x04", b"\x93NUMPY"


def _max_bytes() -> int:
    text = os.environ.get(MAX_ARRAY_BYTES_ENV)
    if text is None:
        return MAX_ARRAY_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{MAX_ARRAY_BYTES_ENV}: expected a positive number of bytes, got {text!r}")
    return value


def _what_it_is(head: bytes) -> str:
    if not head:
        return "an empty file"
    if head.startswith(_NPY_MAGIC):
        return "a single .npy array (np.save), not an .npz archive of named arrays (np.savez)"
    if head.startswith(b"\x80"):
        return "pickled Python data"
    if all(32 <= byte < 127 or byte in b"\t\r\n" for byte in head):
        return "a text file"
    return "not an .npz archive"


class _Archive:
    """The members of an ``.npz`` file, read one by one with every failure named: a member's header
    (dtype, shape) is read first, so an object array or one larger than the limit is refused before its
    bytes are allocated, and a damaged member (CRC, truncation) is named with its key and the file."""

    def __init__(self, path: Path):
        self.path = path
        try:
            with open(path, "rb") as file:
                head = file.read(64)
        except OSError as err:
            raise ValueError(f"problem: cannot read {str(path)!r}: {err.strerror or err}") from None
        if not head.startswith(_ZIP_MAGIC):
            raise ValueError(f"problem: {str(path)!r} is {_what_it_is(head)}; save the arrays with np.savez")
        try:
            self.zip = zipfile.ZipFile(path)
            names = self.zip.namelist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
            raise ValueError(f"problem: {str(path)!r} is a damaged .npz (zip) archive ({err})") from None
        self.members = {name[:-4]: name for name in names if name.endswith(".npy")}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.zip.close()

    @property
    def files(self) -> list[str]:
        return list(self.members)

    def __getitem__(self, key: str) -> np.ndarray:
        where = f"{key}: in {self.path.name}"
        try:
            with self.zip.open(self.members[key]) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)  # 3.0 differs only in the encoding
                shape, fortran, dtype = read_header(member)
                if dtype.hasobject:
                    raise ValueError(f"{where}, holds Python objects; save plain numeric arrays "
                                     "(np.savez without pickles)")
                size = int(np.prod(shape, dtype=object)) * dtype.itemsize
                limit = _max_bytes()
                if size > limit:
                    raise ValueError(f"{where}, declares shape {shape} ({size:,} bytes), over the limit of {limit:,} "
                                     f"bytes; set {MAX_ARRAY_BYTES_ENV} to raise it")
                data = member.read(size)
        except ValueError as err:
            if str(err).startswith(where):
                raise
            raise ValueError(f"{where}, cannot be read as an array ({err})") from None
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{where}, is damaged ({err})") from None
        if len(data) != size:
            raise ValueError(f"{where}, is truncated ({len(data)} of {size} bytes)")
        array = np.frombuffer(data, dtype=dtype)
        return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def _array(arrays: _Archive, key: str, *, dtype=None, ndim: tuple[int, ...] | None = None) -> np.ndarray:
    value = arrays[key]
    if dtype is not None:
        kind = np.dtype(dtype).kind
        if kind == "i" and not np.issubdtype(value.dtype, np.integer):
            raise ValueError(f"{key}: expected integers, got dtype {value.dtype}")
        if kind == "f" and not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
            raise ValueError(f"{key}: expected real numbers, got dtype {value.dtype}")
    if ndim is not None and value.ndim not in ndim:
        shapes = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{key}: expected a {shapes} array, got shape {value.shape}")
    if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
        raise ValueError(f"{key}: contains non-finite values")
    return value


def load_problem_file(path: str | os.PathLike, *, name: str | None = None) -> Problem:
    """The tabular problem in an ``.npz`` file (the keys of this module's table).

    Each member's size is checked against its header before it is read (at most
    :data:`MAX_ARRAY_BYTES`, or the environment variable ``MAXENT_GAN_MAX_ARRAY_BYTES``); every
    malformed, damaged or missing member raises a ``ValueError`` naming its key."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"problem: no such file {str(path)!r}")
    with _Archive(path) as arrays:
        keys = set(arrays.files)
        missing = [key for key in REQUIRED_KEYS if key not in keys]
        if "transitions" not in keys and not {"successors", "successor_probs"} <= keys:
            missing.append("transitions (or successors and successor_probs)")
        if missing:
            raise ValueError(f"{missing[0]}: missing from {path.name} (keys found: {', '.join(sorted(keys)) or 'none'})")
        horizon = _array(arrays, "horizon", dtype=int, ndim=(0, 1))
        if horizon.size != 1:
            raise ValueError(f"horizon: expected one integer, got shape {horizon.shape}")
        horizon = int(horizon.reshape(()))
        states = _array(arrays, "states", dtype=int, ndim=(2,))
        actions = _array(arrays, "actions", dtype=int, ndim=(2,))
        if horizon < 1 or actions.shape[1] != horizon or states.shape[1] != horizon + 1:
            raise ValueError(f"horizon: {horizon} does not match the demonstrations (states {states.shape}, actions "
                             f"{actions.shape}: states (n, T+1) and actions (n, T) give T = {actions.shape[1]})")
        features = _array(arrays, "features", dtype=float, ndim=(2, 3))
        if "transitions" in keys:
            transitions: Any = _array(arrays, "transitions", dtype=float, ndim=(3,))
        else:
            successors = _array(arrays, "successors", dtype=int, ndim=(3,))
            probs = _array(arrays, "successor_probs", dtype=float, ndim=(3,))
            if probs.shape != successors.shape:
                raise ValueError(f"successor_probs: expected the shape of successors {successors.shape}, "
                                 f"got {probs.shape}")
            if np.any(probs < 0):
                raise ValueError("successor_probs: negative probabilities")
            if np.any((successors < 0) | (successors >= successors.shape[0])):
                raise ValueError(f"successors: expected state indices in [0, {successors.shape[0]})")
            with np.errstate(divide="ignore"):
                transitions = Transitions(successors, np.log(probs))
        initial = _array(arrays, "initial", dtype=float, ndim=(1,))
        theta_true = _array(arrays, "theta_true", dtype=float, ndim=(1,)) if "theta_true" in keys else None
        names = None
        if "feature_names" in keys:
            names = tuple(str(v) for v in _array(arrays, "feature_names", ndim=(1,)))
            if len(names) != features.shape[-1]:
                raise ValueError(f"feature_names: expected {features.shape[-1]} names (one per feature), "
                                 f"got {len(names)}")
        grid = None
        if "grid_shape" in keys:
            grid = tuple(int(v) for v in _array(arrays, "grid_shape", dtype=int, ndim=(1,)))
            if len(grid) != 2 or grid[0] * grid[1] != features.shape[0]:
                raise ValueError(f"grid_shape: expected (rows, columns) with rows x columns = {features.shape[0]} "
                                 f"states, got {grid}")
    return tabular_problem(features, transitions, initial, horizon, states, actions,
                           theta_names=names, theta_true=theta_true, name=name or path.stem, grid_shape=grid)


def _field(trajectory, key: str, index: int):
    try:
        return trajectory[key] if isinstance(trajectory, dict) else getattr(trajectory, key)
    except (KeyError, AttributeError):
        raise ValueError(f"trajectories: trajectory {index} has no {key!r}; expected obs and acts (imitation's "
                         "Trajectory, or dicts with those keys)") from None


def _state_indices(obs: np.ndarray, index: int) -> np.ndarray:
    if obs.ndim == 1 and np.issubdtype(obs.dtype, np.integer):
        return obs
    if obs.ndim == 2 and np.all((obs == 0) | (obs == 1)) and np.all(obs.sum(1) == 1):
        return obs.argmax(1)  # one-hot observations (seals' tabular environments can emit them)
    raise ValueError(f"trajectories: trajectory {index}'s obs must be state indices (T+1,) or one-hot rows "
                     f"(T+1, S), got shape {obs.shape} and dtype {obs.dtype}")


def from_imitation_trajectories(trajectories: Iterable) -> tuple[np.ndarray, np.ndarray]:
    """``(states (n, T+1), actions (n, T))`` from imitation-style trajectories: each has ``obs`` of length
    T+1 (state indices, or one-hot rows) and ``acts`` of length T (attributes, as ``imitation.data.types
    .Trajectory``, or dict keys). Every trajectory must have the same T (MaxEnt IRL's finite horizon)."""
    states, actions = [], []
    for i, trajectory in enumerate(trajectories):
        obs, acts = np.asarray(_field(trajectory, "obs", i)), np.asarray(_field(trajectory, "acts", i))
        if acts.ndim != 1 or not np.issubdtype(acts.dtype, np.integer):
            raise ValueError(f"trajectories: trajectory {i}'s acts must be integer actions (T,), got shape "
                             f"{acts.shape} and dtype {acts.dtype}")
        if obs.shape[0] != acts.shape[0] + 1:
            raise ValueError(f"trajectories: trajectory {i} has {obs.shape[0]} obs and {acts.shape[0]} acts; "
                             "expected one more obs than acts")
        if states and acts.shape[0] != actions[0].shape[0]:
            raise ValueError(f"trajectories: trajectory {i} has length {acts.shape[0]}, trajectory 0 has "
                             f"{actions[0].shape[0]}; MaxEnt IRL here needs one horizon")
        states.append(_state_indices(obs, i))
        actions.append(acts)
    if not states:
        raise ValueError("trajectories: none given")
    return np.stack(states), np.stack(actions)


def from_seals_env(env, *, features: np.ndarray | None = None) -> dict[str, Any]:
    """The tabular pieces of a seals-style environment (``TabularModelPOMDP``: CliffWorld and friends):
    ``transition_matrix`` (S, A, S), ``initial_state_dist`` (S,), ``horizon``, and as features the
    ``observation_matrix`` (S, K) unless ``features`` is given. Returns the keyword arguments of
    :func:`maxent_gan.models.builders.tabular_problem` (less the demonstrations)."""
    env = getattr(env, "unwrapped", env)
    for attribute in ("transition_matrix", "initial_state_dist", "horizon"):
        if not hasattr(env, attribute):
            raise ValueError(f"env: has no {attribute!r}; expected a seals tabular environment")
    if features is None:
        if not hasattr(env, "observation_matrix"):
            raise ValueError("env: has no 'observation_matrix'; pass features=")
        features = env.observation_matrix
    return {"features": np.asarray(features, dtype=float), "transitions": np.asarray(env.transition_matrix),
            "initial": np.asarray(env.initial_state_dist), "horizon": int(env.horizon)}
