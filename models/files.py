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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from models.builders import tabular_problem
from models.problem import Problem
from models.tabular import Transitions

__all__ = ["REQUIRED_KEYS", "from_imitation_trajectories", "from_seals_env", "is_problem_file", "load_problem_file"]

REQUIRED_KEYS = ("features", "initial", "horizon", "states", "actions")


def is_problem_file(name: str | os.PathLike) -> bool:
    """Whether a ``--problem`` value names a file (it ends in ``.npz``) rather than a built-in problem."""
    return str(name).endswith(".npz")


def _array(arrays, key: str, *, dtype=None, ndim: tuple[int, ...] | None = None) -> np.ndarray:
    value = arrays[key]
    if value.dtype == object:
        raise ValueError(f"{key}: holds Python objects; save plain numeric arrays (np.savez without pickles)")
    if dtype is not None:
        kind = np.dtype(dtype).kind
        if kind == "i" and not np.issubdtype(value.dtype, np.integer):
            raise ValueError(f"{key}: expected integers, got dtype {value.dtype}")
        if kind == "f" and not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
            raise ValueError(f"{key}: expected numbers, got dtype {value.dtype}")
    if ndim is not None and value.ndim not in ndim:
        shapes = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{key}: expected a {shapes} array, got shape {value.shape}")
    if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
        raise ValueError(f"{key}: contains non-finite values")
    return value


def load_problem_file(path: str | os.PathLike, *, name: str | None = None) -> Problem:
    """The tabular problem in an ``.npz`` file (the keys of this module's table)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"problem: no such file {str(path)!r}")
    try:
        arrays = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"problem: {str(path)!r} is not a readable .npz file ({error})") from None
    with arrays:
        keys = set(arrays.files)
        missing = [key for key in REQUIRED_KEYS if key not in keys]
        if "transitions" not in keys and not {"successors", "successor_probs"} <= keys:
            missing.append("transitions (or successors and successor_probs)")
        if missing:
            raise ValueError(f"{missing[0]}: missing from {path.name} (keys found: {', '.join(sorted(keys)) or 'none'})")
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
        horizon = _array(arrays, "horizon", dtype=int, ndim=(0, 1))
        if horizon.size != 1:
            raise ValueError(f"horizon: expected one integer, got shape {horizon.shape}")
        states = _array(arrays, "states", dtype=int, ndim=(2,))
        actions = _array(arrays, "actions", dtype=int, ndim=(2,))
        theta_true = _array(arrays, "theta_true", dtype=float, ndim=(1,)) if "theta_true" in keys else None
        names = None
        if "feature_names" in keys:
            names = tuple(str(v) for v in _array(arrays, "feature_names", ndim=(1,)))
        grid = None
        if "grid_shape" in keys:
            grid = tuple(int(v) for v in _array(arrays, "grid_shape", dtype=int, ndim=(1,)))
            if len(grid) != 2 or grid[0] * grid[1] != features.shape[0]:
                raise ValueError(f"grid_shape: expected (rows, columns) with rows x columns = {features.shape[0]} "
                                 f"states, got {grid}")
    return tabular_problem(features, transitions, initial, int(horizon.reshape(())), states, actions,
                           theta_names=names, theta_true=theta_true, name=name or path.stem, grid_shape=grid)


def _field(trajectory, key: str):
    return trajectory[key] if isinstance(trajectory, dict) else getattr(trajectory, key)


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
        obs, acts = np.asarray(_field(trajectory, "obs")), np.asarray(_field(trajectory, "acts"))
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
    :func:`models.builders.tabular_problem` (less the demonstrations)."""
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
