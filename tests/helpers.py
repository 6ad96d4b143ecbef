"""Shared fixtures of the tests: a non-trivial cost family and a data/proposal setup."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from maxent_gan.inference.proposals import Gaussian
from maxent_gan.models import quadratic_energy


def tilted_cost(theta: dict, x: jax.Array) -> jax.Array:
    """A cost nonlinear in θ: :math:`\\tfrac12\\sum_j e^{a_j}(x_j-b_j)^2 + w_j\\tanh(x_j)`."""
    return 0.5 * jnp.sum(jnp.exp(theta["a"]) * (x - theta["b"]) ** 2, -1) + jnp.sum(theta["w"] * jnp.tanh(x), -1)


def tilted_theta(dim: int) -> dict:
    return {
        "a": jnp.linspace(-0.3, 0.4, dim),
        "b": jnp.linspace(0.5, -0.5, dim),
        "w": jnp.linspace(0.2, -0.7, dim),
    }


class Setup(NamedTuple):
    data: jax.Array
    samples: jax.Array
    log_q_data: jax.Array
    log_q_samples: jax.Array


def gaussian_setup(key, *, dim=3, num_data=400, num_samples=700, scale=1.5) -> Setup:
    """Data from a Gaussian energy, draws from a broad Gaussian proposal, its log densities."""
    key_data, key_q = jax.random.split(key)
    params = {"loc": jnp.linspace(-0.5, 0.5, dim), "precision": jnp.eye(dim) * 1.3 + 0.2}
    data = quadratic_energy(params).sample(key_data, (num_data,))
    proposal = Gaussian.isotropic(dim, scale)
    samples, log_q_samples = proposal.sample_and_log_prob(key_q, num_samples)
    return Setup(data, samples, proposal.log_prob(data), log_q_samples)


def log_z_stderr(log_weights: jax.Array) -> float:
    """Delta-method standard error of log Z-hat: std(w) / (mean(w) sqrt(n))."""
    w = jnp.exp(log_weights - log_weights.max())
    return float(jnp.std(w) / (jnp.mean(w) * math.sqrt(w.shape[0])))


def run_cli(*args: str):
    """``maxent-gan ARGS`` in this process (compiled programs are shared between tests), with its
    exit code, stdout and stderr as a ``subprocess.CompletedProcess``; the float64 setting that
    ``train`` switches off is restored afterwards."""
    import contextlib
    import io
    import subprocess

    from maxent_gan.inference.app.cli import main

    out, err = io.StringIO(), io.StringIO()
    x64 = jax.config.jax_enable_x64
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        jax.config.update("jax_enable_x64", x64)
    return subprocess.CompletedProcess(["maxent-gan", *args], code, out.getvalue(), err.getvalue())
