"""Continuous-control demonstrations as the field stores them, read into a :class:`~maxent_gan.models.dynamics.Dynamics`'
packed trajectories.

Accepted:

- imitation's rollout files (``.npz`` with ``obs`` ``(sum T_i + 1, do)``, ``acts`` ``(sum T_i, k)`` and
  ``indices``, the cut points between trajectories; ``terminal`` and ``rews`` are read if present). Only
  these arrays are read, never the pickled ``infos``.
- imitation's trajectory objects (anything with ``obs`` and ``acts``: ``imitation.data.types.Trajectory``).
- plain arrays: observations or states ``(n, T+1, do)`` and actions ``(n, T, k)``, or a ``.npz`` with
  ``states``/``obs`` and ``actions``/``acts`` of those shapes.

Observations go to states through ``to_states`` (Pendulum-v1: :func:`~maxent_gan.models.pendulum.states_from_observations`).
Every trajectory must have at least the dynamics' horizon of steps (longer ones are cut to their first
``horizon`` steps: a prefix of a trajectory is a trajectory from the same start), actions must lie in the
action box, starts in the start's support, and, for deterministic dynamics, each recorded next state must be
what the dynamics give (:meth:`~maxent_gan.models.dynamics.Dynamics.transition_error`): demonstrations of
another environment or other parameters are refused, saying where they depart.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from maxent_gan.models.dynamics import Dynamics

__all__ = ["load_demonstrations", "read_trajectories"]

EDGE_TOLERANCE = 1e-6  # actions may exceed the box by this share of its width (float32 rounding)


def _read_npz(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    if not path.is_file():
        raise ValueError(f"demonstrations: no such file {str(path)!r}")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:  # not a zip of arrays
        raise ValueError(f"demonstrations: {str(path)!r} is not an .npz archive of arrays ({err})") from None
    with archive:
        keys = set(archive.files)
        obs_key = next((k for k in ("obs", "states") if k in keys), None)
        act_key = next((k for k in ("acts", "actions") if k in keys), None)
        if obs_key is None or act_key is None:
            raise ValueError(f"demonstrations: {str(path)!r} has arrays {sorted(keys)}; expected 'obs' and 'acts' "
                             "(imitation's rollouts) or 'states' and 'actions'")
        obs, acts = np.asarray(archive[obs_key]), np.asarray(archive[act_key])
        indices = np.asarray(archive["indices"]) if "indices" in keys else None
    if indices is None:
        if obs.ndim != 3 or acts.ndim != 3:
            raise ValueError(f"demonstrations: without 'indices', expected {obs_key} (n, T+1, d) and {act_key} "
                             f"(n, T, k), got {obs.shape} and {acts.shape}")
        return list(zip(obs, acts, strict=True))
    # imitation's flat layout: trajectory i has acts[a_i:a_{i+1}] and obs[a_i + i : a_{i+1} + i + 1]
    if obs.ndim != 2 or acts.ndim != 2 or indices.ndim != 1:
        raise ValueError(f"demonstrations: imitation's rollouts have obs (N + n, d), acts (N, k) and indices (n - 1,),"
                         f" got {obs.shape}, {acts.shape} and {indices.shape}")
    cuts = np.concatenate([[0], indices.astype(int), [acts.shape[0]]])
    if np.any(np.diff(cuts) < 1) or obs.shape[0] != acts.shape[0] + len(cuts) - 1:
        raise ValueError(f"demonstrations: indices {indices.tolist()[:8]}... do not cut acts ({acts.shape[0]} rows) "
                         f"and obs ({obs.shape[0]} rows) into trajectories of one more observation than actions")
    return [(obs[a + i:b + i + 1], acts[a:b]) for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True))]


def read_trajectories(source) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(observations (T_i + 1, do), actions (T_i, k)), ...]`` from any accepted ``source`` (see the module)."""
    if isinstance(source, str | os.PathLike):
        return _read_npz(Path(source))
    if isinstance(source, tuple) and len(source) == 2 and not hasattr(source[0], "obs"):
        obs, acts = np.asarray(source[0]), np.asarray(source[1])
        if obs.ndim != 3 or acts.ndim != 3 or obs.shape[0] != acts.shape[0]:
            raise ValueError(f"demonstrations: expected (observations (n, T+1, d), actions (n, T, k)), got shapes "
                             f"{obs.shape} and {acts.shape}")
        return list(zip(obs, acts, strict=True))
    if isinstance(source, Sequence) and source and all(hasattr(t, "obs") and hasattr(t, "acts") for t in source):
        pairs = []
        for i, trajectory in enumerate(source):
            obs, acts = np.asarray(trajectory.obs), np.asarray(trajectory.acts)
            if acts.ndim == 1:
                acts = acts[:, None]
            if obs.ndim != 2 or obs.shape[0] != acts.shape[0] + 1:
                raise ValueError(f"demonstrations: trajectory {i} has obs {obs.shape} and acts {acts.shape}; expected "
                                 "one more observation than actions")
            pairs.append((obs, acts))
        return pairs
    raise TypeError(f"demonstrations: expected a path to an .npz file, imitation trajectories or a pair of arrays, got "
                    f"{type(source).__name__}")


def load_demonstrations(source, dynamics: Dynamics, *, to_states: Callable[[jax.Array], jax.Array] | None = None,
                        tolerance: float = 1e-4) -> jax.Array:
    """Demonstrations as packed rows ``(n, dynamics.layout.size)`` in the default float dtype, checked against
    ``dynamics`` (see the module). ``to_states`` maps observations ``(..., do)`` to states ``(..., ds)``
    (``None``: the observations are the states); ``tolerance``: the largest transition error allowed, in
    the states' units, for deterministic dynamics."""
    pairs = read_trajectories(source)
    if not pairs:
        raise ValueError("demonstrations: no trajectories")
    horizon, layout = dynamics.horizon, dynamics.layout
    short = [i for i, (_, acts) in enumerate(pairs) if acts.shape[0] < horizon]
    if short:
        raise ValueError(f"demonstrations: trajectory {short[0]} has {pairs[short[0]][1].shape[0]} steps, fewer than "
                         f"the dynamics' horizon {horizon} ({len(short)} of {len(pairs)} are this short)")
    dtype = jnp.zeros(()).dtype
    obs = np.stack([o[:horizon + 1] for o, _ in pairs]).astype(float)
    acts = np.stack([a[:horizon] for _, a in pairs]).astype(float)
    if acts.shape[-1] != dynamics.action_dim:
        raise ValueError(f"demonstrations: actions have {acts.shape[-1]} coordinates, the dynamics {dynamics.action_dim}")
    states = jnp.asarray(obs if to_states is None else to_states(jnp.asarray(obs)), dtype)
    if states.shape[-1] != dynamics.state_dim:
        raise ValueError(f"demonstrations: states have {states.shape[-1]} coordinates, the dynamics "
                         f"{dynamics.state_dim}" + ("" if to_states else "; pass to_states to map observations"))
    actions = jnp.asarray(acts, dtype)
    if not (bool(jnp.all(jnp.isfinite(states))) and bool(jnp.all(jnp.isfinite(actions)))):
        raise ValueError("demonstrations: contain non-finite observations or actions")
    if dynamics.bounded:
        low, high = np.asarray(dynamics.action_low), np.asarray(dynamics.action_high)
        slack = EDGE_TOLERANCE * (high - low)
        outside = np.any((acts < low - slack) | (acts > high + slack), axis=(1, 2))
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise ValueError(f"demonstrations: trajectory {i} has actions outside the box [{low.tolist()}, "
                             f"{high.tolist()}] (range {acts[i].min():.4g} to {acts[i].max():.4g})")
        actions = jnp.clip(actions, jnp.asarray(low, dtype), jnp.asarray(high, dtype))
    starts_outside = ~np.isfinite(np.asarray(dynamics.start_log_prob(states[:, 0])))
    if starts_outside.any():
        i = int(np.flatnonzero(starts_outside)[0])
        raise ValueError(f"demonstrations: trajectory {i} starts at {np.asarray(states[i, 0]).tolist()}, outside the "
                         "dynamics' start distribution")
    if dynamics.noise == 0:
        errors = np.asarray(dynamics.transition_error(states, actions))
        if errors.max() > tolerance:
            i = int(np.argmax(errors))
            raise ValueError(f"demonstrations: trajectory {i} departs from the dynamics by {errors[i]:.3g} (tolerance "
                             f"{tolerance:g}): were they recorded in this environment with these parameters?")
    return layout.pack(states, actions)
