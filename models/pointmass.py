"""A nonlinear point-mass navigation task with obstacles: no exact Z, only estimates.

State :math:`x = (p, v) \\in R^4`, action (force) :math:`u \\in R^2`. Dynamics with quadratic drag,
:math:`v' = v + \\Delta t\\,(u - k\\,|v|\\,v)`, :math:`p' = p + \\Delta t\\, v'`, plus Gaussian noise
:math:`N(0, \\sigma^2 I)` on the next state; :math:`x_0 \\sim N(m_0, S_0)`. The cost per step,

.. math::

    c_\\theta(x, u) = w_g \\tfrac12 |p - g|^2 + w_o \\sum_k e^{-|p - o_k|^2 / 2r^2}
                      + e^{\\theta_3}\\tfrac12 |u|^2,

with :math:`\\theta = (w_g, w_o, \\theta_3)`; the effort weight is positive by construction so
:math:`Z(\\theta)` is finite. The obstacles make the cost non-quadratic and the drag makes the
dynamics nonlinear, so no recursion gives Z: demonstrations are drawn by NUTS on the
trajectory's free variables (start, actions, noise), where the target is exactly
:math:`p_\\theta(\\tau) \\propto \\nu(\\tau) e^{-c_\\theta(\\tau)}` (additive noise: the change of
variables from noise to states has a constant Jacobian).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from maxent_gan.models._jit import compiled_when_eager
from maxent_gan.models.dynamics import Dynamics, GaussianStart, dynamics_demonstrations
from maxent_gan.models.trajectory import TrajectoryLayout

__all__ = ["POINTMASS_THETA", "PointMass", "pointmass_cost", "pointmass_demonstrations"]

POINTMASS_THETA = (1.0, 5.0, -1.0)  # goal pull, obstacle penalty, log effort


class PointMass(NamedTuple):
    dt: float = 0.1
    drag: float = 0.5
    noise: float = 0.02
    goal: tuple[float, float] = (2.0, 2.0)
    obstacles: tuple[tuple[float, float], ...] = ((1.0, 0.9), (0.7, 1.7), (1.7, 0.6))
    radius: float = 0.3
    start_scale: float = 0.1
    horizon: int = 30

    @property
    def layout(self) -> TrajectoryLayout:
        return TrajectoryLayout(self.horizon, 4, 2)

    def step(self, x: jax.Array, u: jax.Array) -> jax.Array:
        """The noiseless next state, batched over leading axes."""
        p, v = x[..., :2], x[..., 2:]
        speed = jnp.sqrt(jnp.sum(v**2, -1, keepdims=True) + 1e-12)
        v_next = v + self.dt * (u - self.drag * speed * v)
        return jnp.concatenate([p + self.dt * v_next, v_next], -1)

    def start(self) -> tuple[jax.Array, jax.Array]:
        """:math:`(m_0, S_0)`: at the origin, at rest, spread ``start_scale``."""
        dtype = jnp.zeros(()).dtype
        return jnp.zeros(4, dtype), self.start_scale**2 * jnp.eye(4, dtype=dtype)

    @property
    def dynamics(self) -> Dynamics:
        """The task as a :class:`~maxent_gan.models.dynamics.Dynamics`: unbounded forces (Lebesgue base
        measure, the effort term makes :math:`e^{-c}` integrable), a Gaussian start, additive noise."""
        variance = self.start_scale**2
        cov = tuple(tuple(variance if i == j else 0.0 for j in range(4)) for i in range(4))
        return Dynamics(self.step, self.horizon, 4, 2, GaussianStart((0.0,) * 4, cov), noise=self.noise)

    def decorate(self, ax) -> None:
        """Draw the obstacles and the goal on a figure of positions."""
        from matplotlib import patches

        for centre in self.obstacles:
            ax.add_patch(patches.Circle(centre, self.radius, color="C3", alpha=0.4))
        ax.plot(*self.goal, "k*", ms=12)
        ax.set(aspect="equal", xlabel="x", ylabel="y")


@compiled_when_eager
def pointmass_cost(task: PointMass, theta: jax.Array, states: jax.Array, actions: jax.Array) -> jax.Array:
    """:math:`c_\\theta(\\tau) = \\sum_{t<T} c_\\theta(x_t, u_t)`, shape ``(n,)``."""
    p = states[:, :-1, :2]
    goal = 0.5 * jnp.sum((p - jnp.asarray(task.goal)) ** 2, -1)
    centres = jnp.asarray(task.obstacles, p.dtype).reshape(-1, 2)  # (K, 2), K may be 0
    bumps = jnp.exp(-jnp.sum((p[..., None, :] - centres) ** 2, -1) / (2 * task.radius**2)).sum(-1)
    effort = 0.5 * jnp.sum(actions**2, -1)
    # linear in (θ_goal, θ_obstacle, exp θ_effort): at fixed proposal draws XLA computes the statistics once
    statistics = jnp.stack([goal.sum(-1), bumps.sum(-1), effort.sum(-1)], axis=-1)
    return statistics @ jnp.stack([theta[0], theta[1], jnp.exp(theta[2])])


def pointmass_demonstrations(key: jax.Array, task: PointMass, theta: jax.Array, n: int, *, thinning: int = 5,
                             num_chains: int = 4, progress: bool = False) -> jax.Array:
    """``n`` draws of :math:`p_\\theta` by NUTS (``num_chains`` chains, one draw kept in ``thinning``),
    packed ``(n, layout.size)``. Approximate: the only sampler this task has."""
    layout = task.layout

    def cost_fn(theta, x):
        return pointmass_cost(task, theta, *layout.unpack(x))

    return dynamics_demonstrations(key, task.dynamics, cost_fn, theta, n, thinning=thinning, num_chains=num_chains,
                                   progress=progress)
