"""Float64 for the whole suite (identities are checked to 1e-10), set before any test runs."""

import os

import jax

jax.config.update("jax_enable_x64", True)
os.environ.setdefault("MAXENT_GAN_QUICK", "1")
