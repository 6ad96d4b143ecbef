"""Pendulum-v1 (gymnasium, gymnax) as a differentiable simulator, with its reward as a linear cost.

State :math:`s = (\\vartheta, \\dot\\vartheta)`, the angle as the environment keeps it (0 upright, not wrapped:
the cost and the observation wrap it),
torque :math:`u \\in [-u_{max}, u_{max}]`. One step of length :math:`\\Delta t`, exactly as gymnasium's and
gymnax's Pendulum-v1:

.. math::

    \\dot\\vartheta' = \\mathrm{clip}(\\dot\\vartheta + (\\tfrac{3g}{2l}\\sin\\vartheta + \\tfrac{3}{ml^2}u)\\Delta t,
    \\pm v_{max}), \\qquad \\vartheta' = \\vartheta + \\dot\\vartheta'\\Delta t,

from :math:`\\vartheta_0 \\sim U(-\\pi, \\pi)`, :math:`\\dot\\vartheta_0 \\sim U(-1, 1)` (Pendulum-v1's reset,
:attr:`Pendulum.dynamics`) or at rest hanging down (the swing-up, :attr:`Pendulum.swing_up`). The environment
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
from maxent_gan.models.dynamics import BoxStart, Dynamics, dynamics_demonstrations, linear_feature_cost

__all__ = ["PENDULUM_FEATURE_NAMES", "PENDULUM_HORIZON", "PENDULUM_THETA", "Pendulum", "angle_normalize", "observations",
           "mirror_observations", "pendulum_problem", "reflect",
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


def mirror_observations(obs: jax.Array) -> jax.Array:
    """The reflection about the hanging position on observations :math:`(\\cos, \\sin, \\dot\\vartheta)`: the sine
    and the velocity negated (with the torque negated, the swing-up's dynamics, start and cost are unchanged)."""
    return obs * jnp.asarray([1.0, -1.0, -1.0], obs.dtype)


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
        return jnp.stack([angle + velocity * self.dt, velocity], -1)

    @property
    def dynamics(self) -> Dynamics:
        """The environment as a :class:`~maxent_gan.models.dynamics.Dynamics`: deterministic, the torque box as
        the action space (uniform base measure), the policy reading the observation."""
        return Dynamics(self.step, self.horizon, 2, 1, BoxStart((-math.pi, -1.0), (math.pi, 1.0)),
                        (-self.max_torque,), (self.max_torque,), observe=observations)

    @property
    def swing_up(self) -> Dynamics:
        """The swing-up: the same dynamics from rest hanging down, :math:`s_0 = (\\pi, 0)`. A fixed start is not
        reweighted by the trajectory model (only where the task is cheap to start from is), so the model is
        MaxEnt over the torques alone: maximum causal entropy for these deterministic dynamics."""
        return Dynamics(self.step, self.horizon, 2, 1, BoxStart((math.pi, 0.0), (math.pi, 0.0)),
                        (-self.max_torque,), (self.max_torque,), observe=observations, mirror=mirror_observations)

    @staticmethod
    def decorate(ax) -> None:
        """Label a figure of (angle, velocity) and mark the upright goal."""
        ax.plot(0.0, 0.0, "k*", ms=12)
        ax.set(xlabel="angle (0 upright)", ylabel="angular velocity")


PENDULUM_HORIZON = 40  # the built-in swing-up's: 2 s, the first swing (at 100 steps the policy fit is not yet stable)


def reflect(rows: jax.Array, layout) -> jax.Array:
    """The mirror image of swing-up trajectories about the hanging position: angle :math:`\\to 2\\pi - \\vartheta`,
    velocity and torque negated. The dynamics, the start at rest hanging down and the cost are symmetric under
    it, so :math:`p_\\theta` is too."""
    states, actions = layout.unpack(rows)
    states = jnp.stack([2 * jnp.pi - states[..., 0], -states[..., 1]], -1)
    return layout.pack(states, -actions)


def _swing_up_sampler(dynamics: Dynamics, cost_fn):
    def sample(key, theta, n):
        # NUTS chains each settle on swinging left or right; p_θ is symmetric under the reflection, so
        # reflecting a fair coin's half of the draws weighs the two mirror modes exactly equally
        key_nuts, key_flip = jax.random.split(key)
        rows = dynamics_demonstrations(key_nuts, dynamics, cost_fn, theta, n, num_chains=8, num_warmup=500)
        flip = jax.random.bernoulli(key_flip, 0.5, (rows.shape[0], 1))
        return jnp.where(flip, reflect(rows, dynamics.layout), rows)

    return sample


def pendulum_problem(*, horizon: int = PENDULUM_HORIZON, demonstrations=None, test_demonstrations=None,
                     pendulum: Pendulum | None = None):
    """Pendulum-v1 as an IRL problem: the cost :math:`\\theta \\cdot (\\vartheta^2, \\dot\\vartheta^2, u^2)` summed over
    ``horizon`` steps, uniform base measure on the torque box, θ* = the environment's reward
    (:data:`PENDULUM_THETA`).

    Without ``demonstrations``: the swing-up (:attr:`Pendulum.swing_up`, from rest hanging down), the data
    draws of :math:`p_{\\theta^*}` by NUTS over the torques, the two mirror modes (swinging left or right)
    weighed equally by :func:`reflect`: approximate as NUTS is, the only sampler a simulator has.

    With ``demonstrations`` (imitation's rollout ``.npz``, its trajectories, or arrays of observations
    ``(n, T+1, 3)`` and torques ``(n, T, 1)``): Pendulum-v1's own uniform start, the observations mapped
    to states and checked against the dynamics. An expert trained by RL follows the reward only up to its
    own temperature and imperfection (compare by a scale-free measure: EPIC, correlation), and its starts
    are the environment's resets, which the trajectory model reweights by how cheap the task is from each
    (the documentation's continuous-control page says what that does)."""
    from maxent_gan.models.builders import simulator_problem

    pendulum = Pendulum(horizon=horizon) if pendulum is None else pendulum._replace(horizon=horizon)
    dynamics = pendulum.swing_up if demonstrations is None else pendulum.dynamics
    return simulator_problem(
        dynamics, pendulum_features, PENDULUM_FEATURE_NAMES, demonstrations=demonstrations,
        test_demonstrations=test_demonstrations, to_states=states_from_observations, theta_true=PENDULUM_THETA,
        theta_descriptions=("cost on the angle from upright, squared", "cost on the angular velocity, squared",
                            "cost on the torque, squared"),
        decorate=Pendulum.decorate, name="pendulum",
        sampler=None if demonstrations is not None else _swing_up_sampler(dynamics, linear_feature_cost(
            pendulum_features, dynamics.layout)))
