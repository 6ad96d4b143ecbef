"""Sample spaces: what a problem's points are. Inference chooses what it does with a problem
(proposal families, warm starts, metrics, figures) by the type of its space, never by its name.

- :class:`Points`: points in R^d (EBMs); ``bounds`` a quadrature box for 2-D problems.
- :class:`TabularTrajectories`: state/action index trajectories of a tabular MDP.
- :class:`LinearGaussianTrajectories`: trajectories of a linear system with Gaussian noise (LQR).
- :class:`SimulatorTrajectories`: trajectories of a user's differentiable simulator (the point mass, the
  pendulum, a gymnax environment).

Trajectories are packed rows (``maxent_gan.models.trajectory``); the base measure of a trajectory space is
its dynamics, that of :class:`Points` is Lebesgue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
from maxent_gan.models.dynamics import Dynamics
from maxent_gan.models.gridworld import MDP, linear_costs
from maxent_gan.models.lqr import LQR
from maxent_gan.models.trajectory import TrajectoryLayout
from numpyro.distributions import constraints

__all__ = ["LinearGaussianTrajectories", "Points", "SampleSpace", "SimulatorTrajectories", "TabularTrajectories",
           "Trajectories"]


@dataclass(frozen=True, eq=False)
class Points:
    """Points in R^``dim``; ``bounds`` ``((x_lo, x_hi), (y_lo, y_hi))``: a 2-D quadrature box, else ``None``;
    ``scale``: how far the target's mass spreads about the origin, per coordinate, where the problem knows it
    (the broad proposal's standard deviation), else ``None``."""

    dim: int
    bounds: tuple[tuple[float, float], tuple[float, float]] | None = None
    scale: float | None = None
    base_measure = "lebesgue"
    support = constraints.real_vector

    @property
    def size(self) -> int:
        """Length of one point."""
        return self.dim

    @property
    def broad_scale(self) -> float:
        """The broad Gaussian's standard deviation: ``scale`` where given, else a quarter of the quadrature
        box, else 2."""
        if self.scale is not None:
            return float(self.scale)
        return 2.0 if self.bounds is None else float(self.bounds[0][1] - self.bounds[0][0]) / 4


class Trajectories:
    """What every trajectory space has: a packed-row ``layout`` and the dynamics as base measure."""

    base_measure = "dynamics"
    support = constraints.real_vector

    @property
    def layout(self) -> TrajectoryLayout:
        raise NotImplementedError

    @property
    def size(self) -> int:
        return self.layout.size

    @property
    def horizon(self) -> int:
        return self.layout.horizon


@dataclass(frozen=True, eq=False)
class TabularTrajectories(Trajectories):
    """Trajectories of a tabular MDP with linear costs :math:`c_\\theta(s, a) = \\theta\\cdot\\phi(s, a)`."""

    mdp: MDP
    support = constraints.independent(constraints.nonnegative_integer, 1)

    @property
    def layout(self) -> TrajectoryLayout:
        return TrajectoryLayout(self.mdp.horizon)

    def cost_table(self, theta: jax.Array) -> jax.Array:
        """``(S, A)`` costs at θ (metrics, heat maps, exact recursions)."""
        return linear_costs(theta, self.mdp.features)

    @property
    def grid_shape(self) -> tuple[int, int] | None:
        """``(rows, columns)`` when the states are cells of a grid (costs can be drawn as maps)."""
        return self.mdp.shape


@dataclass(frozen=True, eq=False)
class LinearGaussianTrajectories(Trajectories):
    """Trajectories of :math:`x_{t+1} = A x_t + B u_t + w_t` with quadratic costs; ``matrices(θ) -> (Q, R)``."""

    system: LQR
    matrices: Callable[[Any], tuple[jax.Array, jax.Array]]

    @property
    def layout(self) -> TrajectoryLayout:
        return TrajectoryLayout(self.system.horizon, self.system.A.shape[0], self.system.B.shape[1])

    @property
    def dynamics(self) -> tuple:
        """``(A, B, W, m0, S0)``: what a linear-Gaussian policy simulates with."""
        s = self.system
        return s.A, s.B, s.W, s.m0, s.S0


@dataclass(frozen=True, eq=False)
class SimulatorTrajectories(Trajectories):
    """Trajectories of a user's differentiable simulator (:class:`~maxent_gan.models.dynamics.Dynamics`: a step
    function, a start, a horizon, an action box or none); ``decorate(ax)``, if given, draws the task's scene
    (goal, obstacles) on a figure of the first two state coordinates; ``features(states, actions) -> (..., k)``,
    if given, are the per-step features of a cost linear in them (what scores a learned cost step by step)."""

    dynamics: Dynamics
    decorate: Callable[[Any], None] | None = None
    features: Callable[[jax.Array, jax.Array], jax.Array] | None = None

    @property
    def layout(self) -> TrajectoryLayout:
        return self.dynamics.layout


SampleSpace = Points | TabularTrajectories | LinearGaussianTrajectories | SimulatorTrajectories
