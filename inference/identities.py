"""The paper's three claims evaluated on a problem: the main job's report and notebook 01.

Each claim is computed two independent ways and the gap reported:
claim 1 compares the root of the balance equation (``log_z_mixture``) with a Newton
minimization of ``discriminator_loss`` on autodiff; claim 2 compares two autodiff
gradients; claim 3 compares the GAN-form generator loss with the sampler loss.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
from maxent_gan.inference.estimators import log_z_mixture
from maxent_gan.inference.objectives import cost_loss, discriminator_loss, generator_loss, sampler_loss
from maxent_gan.inference.proposals.base import Proposal
from maxent_gan.models.gaussian import quadratic_cost

__all__ = ["IdentityCheck", "check_identities", "diagonal_quadratic_cost", "discriminator_argmin"]


class IdentityCheck(NamedTuple):
    log_z_fixed_point: jax.Array  # claim 1, root of the balance equation
    log_z_argmin: jax.Array  # claim 1, Newton on discriminator_loss
    grad_discriminator: jax.Array  # claim 2, ∇θ L_disc at Z*, flattened
    grad_cost: jax.Array  # claim 2, ∇θ L_cost at Z*, flattened
    grad_gap_elsewhere: jax.Array  # claim 2 fails away from Z*: max gap at log Z* + 1
    generator_gap: jax.Array  # claim 3, max over log Z grid of |L_gen - L_sampler - log Z|

    @property
    def claim1_gap(self) -> float:
        return float(jnp.abs(self.log_z_fixed_point - self.log_z_argmin))

    @property
    def claim2_gap(self) -> float:
        return float(jnp.max(jnp.abs(self.grad_discriminator - self.grad_cost)))


def diagonal_quadratic_cost(theta: dict, x: jax.Array) -> jax.Array:
    """:math:`\\tfrac12 \\sum_j e^{\\lambda_j}(x_j - m_j)^2`, θ = {loc m, log_precision λ}."""
    return quadratic_cost({"loc": theta["loc"], "precision": jnp.diag(jnp.exp(theta["log_precision"]))}, x)


def discriminator_argmin(cost_data, cost_samples, log_q_data, log_q_samples, *, start=0.0, iterations=100):
    """The log Z minimizing ``discriminator_loss``: damped Newton on autodiff (loss is convex)."""

    def loss(log_z):
        return discriminator_loss(cost_data, cost_samples, log_q_data, log_q_samples, log_z)

    @jax.jit
    def newton(log_z):
        step = jax.grad(loss)(log_z) / jax.hessian(loss)(log_z)

        # far from the optimum, halve the step until the loss does not increase; close to it
        # (|step| < 1e-3) take full steps: loss values cannot resolve changes below sqrt(eps)
        def cond(s):
            return (jnp.abs(s) > 1e-3) & (loss(log_z - s) > loss(log_z))

        return log_z - jax.lax.while_loop(cond, lambda s: s / 2, step)

    log_z = jnp.asarray(start, dtype=jnp.result_type(cost_data))
    for _ in range(iterations):
        new = newton(log_z)
        if abs(float(new - log_z)) <= 1e-15 * (1 + abs(float(log_z))):
            return new
        log_z = new
    return log_z


def check_identities(
    data: jax.Array, samples: jax.Array, proposal: Proposal, cost_fn, theta
) -> IdentityCheck:
    """Evaluate the three claims for cost ``cost_fn(theta, x)``, data, and proposal draws."""
    log_q_data, log_q_samples = proposal.log_prob(data), proposal.log_prob(samples)

    def loss_in_theta(objective, log_z):
        def loss(theta):
            return objective(cost_fn(theta, data), cost_fn(theta, samples), log_q_data, log_q_samples, log_z)

        return lambda theta: jax.flatten_util.ravel_pytree(jax.grad(loss)(theta))[0]

    cost_data, cost_samples = cost_fn(theta, data), cost_fn(theta, samples)
    log_z = log_z_mixture(cost_data, cost_samples, log_q_data, log_q_samples).log_z
    argmin = discriminator_argmin(cost_data, cost_samples, log_q_data, log_q_samples, start=log_z - 3.0)
    grad_disc = loss_in_theta(discriminator_loss, log_z)(theta)
    grad_cost = loss_in_theta(cost_loss, log_z)(theta)
    elsewhere = jnp.max(
        jnp.abs(loss_in_theta(discriminator_loss, log_z + 1.0)(theta) - loss_in_theta(cost_loss, log_z + 1.0)(theta))
    )
    grid = log_z + jnp.linspace(-20.0, 20.0, 9)
    gap = jnp.max(
        jnp.abs(
            jnp.stack([generator_loss(cost_samples, log_q_samples, z) for z in grid])
            - sampler_loss(cost_samples, log_q_samples)
            - grid
        )
    )
    return IdentityCheck(log_z, argmin, grad_disc, grad_cost, elsewhere, gap)
