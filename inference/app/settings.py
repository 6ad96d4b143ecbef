"""What ``compare`` runs on and how large: the built-in problems it lists, and :class:`CompareSettings`.

Apart from ``maxent_gan.inference.app.compare`` so that the command line can build its help and defaults
without importing the comparison's libraries (ArviZ alone is a second of every command's start-up).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["COMPARE_PROBLEMS", "CROSS_CHECK_PARTICLES", "CROSS_CHECK_THETAS", "CompareSettings"]

CROSS_CHECK_PARTICLES = 2048  # SMC particles of each cross-check (train's final log Z, compare's at each θ)
CROSS_CHECK_THETAS = 20  # posterior draws the SMC cross-check runs at, spread over the posterior

# the built-in problems with a cost family, listed in compare's help and errors (tests/test_problem_protocol.py
# checks the list); a user's own problem with a cost family is accepted too
COMPARE_PROBLEMS = ("gridworld", "lqr", "pointmass", "pendulum", "gaussian", "rings", "8gaussians", "moons", "checkerboard",
                    "pinwheel")


@dataclass(frozen=True)
class CompareSettings:
    """Sizes of one comparison; :meth:`quick` is the ``--quick`` preset (a smoke run in well under 3 minutes)."""

    demos: int = 100
    train_steps: int = 1500
    num_draws: int = 16_000
    num_warmup: int = 500
    num_samples: int = 500
    num_chains: int = 4
    dense_mass: bool = True  # NUTS adapts a dense mass matrix: a cost family has a few, often correlated, weights
    anchor_steps: int = 500  # sampler steps at each anchor of the θ-following samplers
    check_thetas: int = CROSS_CHECK_THETAS  # posterior draws the SMC cross-check runs at (no exact log Z); 0: none

    @classmethod
    def quick(cls, **changes) -> CompareSettings:
        return replace(cls(train_steps=300, num_draws=4000, num_warmup=200, num_samples=200, num_chains=2,
                           anchor_steps=150, check_thetas=8),
                       **changes)
