"""Pendulum-v1 (gymnasium, gymnax) as a differentiable simulator, with its reward as a linear cost.

State :math:`s = (\\vartheta, \\dot\\vartheta)`, the angle wrapped to :math:`[-\\pi, \\pi)` (0 upright),
torque :math:`u \\in [-u_{max}, u_{max}]`. One step of length :math:`\\Delta t`, exactly as gymnasium's and
gymnax's Pendulum-v1:

.. math::

    \\dot\\vartheta' = \\mathrm{clip}(\\dot\\vartheta + (\\tfrac{3g}{2l}\\sin\\vartheta + \\tfrac{3}{ml^2}u)\\Delta t,
    \\pm v_{max}), \\qquad \\vartheta' = \\vartheta + \\dot\\vartheta'\\Delta t,

from :math:`\\vartheta_0 \\sim U(-\\pi, \\pi)`, :math:`\\dot\\vartheta_0 \\sim U(-1, 1)`. The environment
reports the reward :math:`-(\\vartheta^2 + 0.1\\,\\dot\\vartheta^2 + 0.001\\,u^2)` per step (angle
normalized): the cost :math:`\\theta \\cdot \\phi(s, u)` with features
:math:`\\phi = (\\vartheta^2, \\dot\\vartheta^2, u^2)` at :data:`PENDULUM_THETA` ``= (1, 0.1, 0.001)``.
Environments record observations :math:`(\\cos\\vartheta, \\sin\\vartheta, \\dot\\vartheta)`;
:func:`states_from_observations` maps them back.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from maxent_gan.models.dynamics import BoxStart, Dynamics

__all__ = ["PENDULUM_FEATURE_NAMES", "PENDULUM_HORIZON", "PENDULUM_THETA", "Pendulum", "angle_normalize", "observations",
           "pendulum_problem",
           "pendulum_features", "states_from_observations"]

PENDULUM_THETA = (1.0, 0.1, 0.001)  # Pendulum-v1's reward, negated
PENDULUM_FEATURE_NAMES = ("angle", "velocity", "torque")


def angle_normalize(angle: jax.Array) -> jax.Array:
    """The angle wrapped to :math:`[-\\pi, \\pi)`."""
    return (angle + jnp.pi) % (2 * jnp.pi) - jnp.pi


def observations(states: jax.Array) -> jax.Array:
    """Pendulum-v1's observation :math:`(\\cos\\vartheta, \\sin\\vartheta, \\dot\\vartheta)` of states ``(..., 2)``."""
    angle, velocity = states[..., 0], states[..., 1]
    return jnp.stack([jnp.cos(angle), jnp.sin(angle), velocity], -1)


def states_from_observations(obs: jax.Array) -> jax.Array:
    """States ``(..., 2)`` (angle in :math:`[-\\pi, \\pi]`, velocity) from observations ``(..., 3)``."""
    obs = jnp.asarray(obs)
    if obs.shape[-1:] != (3,):
        raise ValueError(f"observations: expected Pendulum-v1's (cos, sin, velocity) in a last axis of 3, got shape "
                         f"{obs.shape}")
    return jnp.stack([angle_normalize(jnp.arctan2(obs[..., 1], obs[..., 0])), obs[..., 2]], -1)


def pendulum_features(states: jax.Array, actions: jax.Array) -> jax.Array:
    """:math:`\\phi(s, u) = (\\vartheta^2, \\dot\\vartheta^2, u^2)`, shape ``(..., 3)``, the angle normalized."""
    return jnp.stack([angle_normalize(states[..., 0]) ** 2, states[..., 1] ** 2, actions[..., 0] ** 2], -1)


class Pendulum(NamedTuple):
    """Pendulum-v1's parameters (gymnax's ``EnvParams`` names and defaults) and the horizon."""

    max_speed: float = 8.0
    max_torque: float = 2.0
    dt: float = 0.05
    g: float = 10.0
    m: float = 1.0
    l: float = 1.0  # noqa: E741 (the environment's own name)
    horizon: int = 200

    def step(self, states: jax.Array, actions: jax.Array) -> jax.Array:
        """One step, batched over leading axes: states ``(..., 2)``, torques ``(..., 1)``."""
        angle, velocity = states[..., 0], states[..., 1]
        u = jnp.clip(actions[..., 0], -self.max_torque, self.max_torque)
        velocity = velocity + (3 * self.g / (2 * self.l) * jnp.sin(angle) + 3.0 / (self.m * self.l**2) * u) * self.dt
        velocity = jnp.clip(velocity, -self.max_speed, self.max_speed)
        return jnp.stack([angle_normalize(angle + velocity * self.dt), velocity], -1)

    @property
    def dynamics(self) -> Dynamics:
        """The environment as a :class:`~maxent_gan.models.dynamics.Dynamics`: deterministic, the torque box as
        the action space (uniform base measure), the policy reading the observation."""
        return Dynamics(self.step, self.horizon, 2, 1, BoxStart((-math.pi, -1.0), (math.pi, 1.0)),
                        (-self.max_torque,), (self.max_torque,), observe=observations)

    @staticmethod
    def decorate(ax) -> None:
        """Label a figure of (angle, velocity) and mark the upright goal."""
        ax.plot(0.0, 0.0, "k*", ms=12)
        ax.set(xlabel="angle (0 upright)", ylabel="angular velocity", xlim=(-math.pi, math.pi))


PENDULUM_HORIZON = 40  # the built-in problem's: 2 s, long enough to swing up from most starts


def pendulum_problem(*, horizon: int = PENDULUM_HORIZON, demonstrations=None, test_demonstrations=None,
                     pendulum: Pendulum | None = None):
    """Pendulum-v1 as an IRL problem: the cost :math:`\\theta \\cdot (\\vartheta^2, \\dot\\vartheta^2, u^2)` summed over
    ``horizon`` steps, uniform base measure on the torque box.

    Without ``demonstrations`` the data are draws of :math:`p_{\\theta^*}` at the environment's own reward,
    :data:`PENDULUM_THETA`, by NUTS (so the posterior can be scored against a known θ*). With them
    (imitation's rollout ``.npz``, its trajectories, or arrays of observations ``(n, T+1, 3)`` and torques
    ``(n, T, 1)``) the observations are mapped to states and checked against the dynamics; θ* is then the
    reward the environment reports, which an expert trained by RL follows only up to its own temperature
    and its own imperfection: compare the learned cost to it by a scale-free measure (EPIC, correlation)."""
    from maxent_gan.models.builders import simulator_problem

    pendulum = Pendulum(horizon=horizon) if pendulum is None else pendulum._replace(horizon=horizon)
    return simulator_problem(
        pendulum.dynamics, pendulum_features, PENDULUM_FEATURE_NAMES, demonstrations=demonstrations,
        test_demonstrations=test_demonstrations, to_states=states_from_observations, theta_true=PENDULUM_THETA,
        theta_descriptions=("cost on the angle from upright, squared", "cost on the angular velocity, squared",
                            "cost on the torque, squared"),
        decorate=Pendulum.decorate, name="pendulum")
