"""Gridworlds and random MDPs with linear costs :math:`c_\\theta(s,a) = \\theta \\cdot \\phi(s,a)`.

No feature is constant over all ``(s, a)``, and no set of indicators partitions them: a
constant would be an unidentified additive bias (the cost's gauge).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from maxent_gan.models.tabular import Transitions, as_transitions

__all__ = ["ACTIONS", "MDP", "gridworld", "linear_costs", "random_mdp"]

# stay, up, down, left, right as (row, column) moves
ACTIONS = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])


class MDP(NamedTuple):
    """A tabular problem: dynamics, start distribution, horizon, and cost features.

    ``features`` is ``(S, A, F)`` and ``feature_names`` names its last axis. ``shape`` is the
    grid's ``(rows, columns)`` for a gridworld, else ``None``.
    """

    transitions: Transitions
    initial: jax.Array
    horizon: int
    features: jax.Array
    feature_names: tuple[str, ...]
    shape: tuple[int, int] | None = None
    feature_descriptions: tuple[str, ...] | None = None  # one phrase per feature, for reports

    @property
    def num_states(self) -> int:
        return self.transitions.num_states

    @property
    def num_actions(self) -> int:
        return self.transitions.num_actions


def linear_costs(theta: jax.Array, features: jax.Array) -> jax.Array:
    """:math:`c_\\theta(s,a) = \\theta \\cdot \\phi(s,a)`, shape ``(S, A)``."""
    return features @ theta


def gridworld(
    size: int = 8,
    *,
    horizon: int = 20,
    slip: float = 0.0,
    goal: tuple[int, int] | None = None,
    obstacles: tuple[tuple[int, int], ...] | None = None,
    start: tuple[int, int] | None = (0, 0),
) -> MDP:
    """An ``size x size`` grid with five actions (stay, up, down, left, right).

    With probability ``slip`` the action taken is replaced by one drawn uniformly from the five;
    moves into a wall stay put. Features: ``goal`` (at the goal), ``obstacle`` (on an
    obstacle), ``distance`` (Manhattan distance to the goal / (2·size)), ``move`` (the action is
    not *stay*). ``start=None`` starts uniformly on the free cells.
    """
    if not isinstance(size, int) or size < 2:
        raise ValueError(f"size: expected an integer >= 2, got {size!r}")
    if not 0.0 <= slip <= 1.0:
        raise ValueError(f"slip: expected a probability in [0, 1], got {slip}")
    goal = (size - 1, size - 1) if goal is None else goal
    if obstacles is None:
        # a wall across the middle with a gap at one end
        obstacles = tuple((size // 2, column) for column in range(1, size - 1)) if size >= 4 else ()
    for name, cell in [("goal", goal), ("start", start)] + [("obstacles", o) for o in obstacles]:
        if cell is not None and not (0 <= cell[0] < size and 0 <= cell[1] < size):
            raise ValueError(f"{name}: cell {cell} is outside the {size}x{size} grid")
    rows, columns = np.divmod(np.arange(size * size), size)
    moved_rows = np.clip(rows[:, None] + ACTIONS[None, :, 0], 0, size - 1)
    moved_columns = np.clip(columns[:, None] + ACTIONS[None, :, 1], 0, size - 1)
    intended = moved_rows * size + moved_columns  # (S, A)
    num_actions = len(ACTIONS)
    # successor slot 0: the intended move; slots 1..5: each action's move, taken on a slip
    successors = np.concatenate([intended[:, :, None], np.repeat(intended[:, None, :], num_actions, axis=1)], -1)
    probs = np.concatenate(
        [np.full((size * size, num_actions, 1), 1.0 - slip),
         np.full((size * size, num_actions, num_actions), slip / num_actions)], -1,
    )
    if slip == 0.0:
        successors, probs = successors[..., :1], probs[..., :1]
    with np.errstate(divide="ignore"):
        log_probs = np.log(probs)
    dtype = jnp.zeros(()).dtype
    transitions = as_transitions(Transitions(jnp.asarray(successors, jnp.int32), jnp.asarray(log_probs, dtype)))

    obstacle = np.zeros(size * size)
    for r, c in obstacles:
        obstacle[r * size + c] = 1.0
    at_goal = (np.arange(size * size) == goal[0] * size + goal[1]).astype(float)
    distance = (np.abs(rows - goal[0]) + np.abs(columns - goal[1])) / (2.0 * size)
    move = (np.arange(num_actions) != 0).astype(float)
    state_features = np.stack([at_goal, obstacle, distance], axis=-1)  # (S, 3)
    features = np.concatenate(
        [np.repeat(state_features[:, None, :], num_actions, axis=1),
         np.broadcast_to(move[None, :, None], (size * size, num_actions, 1))], -1,
    )
    if start is None:
        free = 1.0 - obstacle
        initial = free / free.sum()
    else:
        initial = np.zeros(size * size)
        initial[start[0] * size + start[1]] = 1.0
    return MDP(transitions, jnp.asarray(initial, dtype), horizon, jnp.asarray(features, dtype),
               ("goal", "obstacle", "distance", "move"), (size, size), GRIDWORLD_FEATURES)


GRIDWORLD_FEATURES = (
    "cost of standing on the goal cell (negative: the goal attracts)",
    "cost of standing on a wall (obstacle) cell",
    "cost per unit of Manhattan distance to the goal (scaled by 1/(2·size))",
    "cost of any action but stay (effort)",
)


def random_mdp(
    key: jax.Array,
    num_states: int = 6,
    num_actions: int = 3,
    num_features: int = 4,
    *,
    horizon: int = 5,
    concentration: float = 0.5,
) -> MDP:
    """A random MDP: Dirichlet transitions, Dirichlet start, Gaussian features (no constant)."""
    key_p, key_0, key_f = jax.random.split(key, 3)
    dense = jax.random.dirichlet(key_p, jnp.full(num_states, concentration), (num_states, num_actions))
    dense = np.array(dense, dtype=float)
    dense /= dense.sum(-1, keepdims=True)
    initial = np.array(jax.random.dirichlet(key_0, jnp.ones(num_states)), dtype=float)
    initial /= initial.sum()
    features = jax.random.normal(key_f, (num_states, num_actions, num_features))
    dtype = jnp.zeros(()).dtype
    return MDP(as_transitions(dense), jnp.asarray(initial, dtype), horizon, features.astype(dtype),
               tuple(f"f{i}" for i in range(num_features)))
