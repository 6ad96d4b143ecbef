"""Trajectories as flat arrays: one row per trajectory, so they batch, observe and index like points.

A row is ``[s_0, …, s_T, a_0, …, a_{T-1}]`` with each state and action flattened: ints for
tabular problems (``state_dim = action_dim = 0``, scalars), floats for continuous ones.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from maxent_gan.models._jit import compiled_when_eager

__all__ = ["TrajectoryLayout"]


class TrajectoryLayout(NamedTuple):
    """``horizon`` T; ``state_dim`` / ``action_dim`` are 0 for scalar (tabular) states and actions."""

    horizon: int
    state_dim: int = 0
    action_dim: int = 0

    @property
    def size(self) -> int:
        """Length of one packed row."""
        return (self.horizon + 1) * max(self.state_dim, 1) + self.horizon * max(self.action_dim, 1)

    @compiled_when_eager
    def pack(self, states: jax.Array, actions: jax.Array) -> jax.Array:
        """``states (n, T+1[, ds])``, ``actions (n, T[, da])`` -> ``(n, size)``."""
        n = states.shape[0]
        return jnp.concatenate([states.reshape(n, -1), actions.reshape(n, -1).astype(states.dtype)], axis=1)

    @compiled_when_eager
    def unpack(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(n, size)`` -> ``(states, actions)``."""
        n = x.shape[0]
        cut = (self.horizon + 1) * max(self.state_dim, 1)
        state_shape = (n, self.horizon + 1) + ((self.state_dim,) if self.state_dim else ())
        action_shape = (n, self.horizon) + ((self.action_dim,) if self.action_dim else ())
        return x[:, :cut].reshape(state_shape), x[:, cut:].reshape(action_shape)
