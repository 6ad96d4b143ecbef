"""gymnax's continuous environments as :class:`~maxent_gan.models.dynamics.Dynamics` (the ``gymnax`` optional
dependency).

:func:`from_gymnax` takes a gymnax environment and its parameters and returns the dynamics whose state is
the environment's state fields (``Pendulum-v1``: angle and velocity; ``MountainCarContinuous-v0``: position
and velocity), stepping through the environment's own ``step_env`` with its transition gradients on
(gymnax >= 1.0), so a policy is fitted pathwise through the real environment code. The horizon is fixed:
gymnax's auto-reset and termination are not used (a trajectory of the model runs ``horizon`` steps).

gymnax 1.0 needs gymnasium >= 1.1 while imitation 1.0 pins gymnasium 0.29, so the two cannot share an
environment; ``maxent-gan``'s own Pendulum (:class:`~maxent_gan.models.pendulum.Pendulum`) needs neither and
is checked step for step against both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from maxent_gan.models.dynamics import BoxStart, Dynamics
from maxent_gan.models.pendulum import observations

__all__ = ["KNOWN_ENVIRONMENTS", "from_gymnax"]


# what the adapter knows of each environment: its state fields, its start box (the same as its reset_env's
# distribution, a function of the parameters) and what a policy reads
KNOWN_ENVIRONMENTS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": {"fields": ("theta", "theta_dot"), "start": lambda params: BoxStart((-math.pi, -1.0), (math.pi, 1.0)),
                    "observe": observations},
    "MountainCarContinuous-v0": {"fields": ("position", "velocity"),
                                 "start": lambda params: BoxStart((-0.6, 0.0), (-0.4, 0.0)), "observe": None},
}


@dataclass(frozen=True)
class GymnaxStep:
    """``step(states (..., ds), actions (..., da)) -> (..., ds)`` through a gymnax environment's ``step_env``;
    hashable by the environment's identity, its parameters and the fields."""

    env: Any
    params: Any
    fields: tuple[str, ...]

    def __call__(self, states: jax.Array, actions: jax.Array) -> jax.Array:
        batch = states.shape[:-1]
        flat_states = states.reshape(-1, states.shape[-1])
        flat_actions = actions.reshape(-1, actions.shape[-1])
        key = jax.random.key(0)  # the continuous environments' steps draw nothing
        _, template = self.env.reset_env(key, self.params)

        def one(x, u):
            state = template.replace(**{name: x[i] for i, name in enumerate(self.fields)})
            _, new, *_ = self.env.step_env(key, state, u, self.params)
            return jnp.stack([jnp.asarray(getattr(new, name), x.dtype).reshape(()) for name in self.fields])

        return jax.vmap(one)(flat_states, flat_actions).reshape(batch + (len(self.fields),))


def from_gymnax(env, params=None, *, horizon: int | None = None, fields: tuple[str, ...] | None = None,
                start: BoxStart | None = None, observe=None) -> Dynamics:
    """The :class:`~maxent_gan.models.dynamics.Dynamics` of a gymnax continuous environment ``env`` at ``params``
    (``None``: its defaults): the action box from its action space, ``horizon`` (``None``: the parameters'
    ``max_steps_in_episode``). ``fields``, ``start`` and ``observe`` are known for
    :data:`KNOWN_ENVIRONMENTS`; give them for another environment (its state fields that change, the start
    box its ``reset_env`` draws from, what a policy reads)."""
    name = getattr(env, "name", type(env).__name__)
    if not hasattr(env, "step_env") or not hasattr(env, "action_space"):
        raise TypeError(f"env: expected a gymnax environment (with step_env and action_space), got {type(env).__name__}")
    params = env.default_params if params is None else params
    known = KNOWN_ENVIRONMENTS.get(name, {})
    fields = tuple(fields) if fields is not None else known.get("fields")
    start = start if start is not None else (known["start"](params) if known else None)
    observe = observe if observe is not None else known.get("observe")
    if fields is None or start is None:
        raise ValueError(f"env: {name} is not one of {', '.join(KNOWN_ENVIRONMENTS)}; give fields (its state fields) "
                         "and start (a BoxStart of its reset distribution)")
    space = env.action_space(params)
    low, high = jnp.ravel(jnp.asarray(space.low, float)), jnp.ravel(jnp.asarray(space.high, float))
    action_dim = int(math.prod(space.shape)) if space.shape else 1
    low, high = jnp.broadcast_to(low, (action_dim,)), jnp.broadcast_to(high, (action_dim,))
    if getattr(env, "supports_transition_gradients", False):
        env = env.with_transition_gradients()
    horizon = int(params.max_steps_in_episode) if horizon is None else horizon
    return Dynamics(GymnaxStep(env, params, fields), horizon, len(fields), action_dim, start,
                    tuple(map(float, low)), tuple(map(float, high)), observe=observe)
