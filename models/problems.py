"""The registry of built-in problems: one line per problem, each built in its own module.

A problem (``maxent_gan.models.problem.Problem``) holds what is true: its sample space, data, the data
density and its cost family. What inference does with it is chosen by its sample space.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial

from maxent_gan.models.digits import digits_problem
from maxent_gan.models.files import is_problem_file, load_problem_file
from maxent_gan.models.gaussian import gaussian_problem
from maxent_gan.models.irl_problems import gridworld_problem, lqr_problem, pointmass_problem
from maxent_gan.models.pendulum import pendulum_problem
from maxent_gan.models.problem import CostFamily, Problem
from maxent_gan.models.standard_targets import STANDARD_TARGETS, standard_problem
from maxent_gan.models.toys import TOYS, toy_problem

__all__ = ["PROBLEMS", "CostFamily", "Problem", "make_problem"]

PROBLEMS: dict[str, Callable[..., Problem]] = {
    "gaussian": gaussian_problem,
    **{name: partial(toy_problem, name) for name in TOYS},  # rings, 8gaussians, moons, checkerboard, pinwheel
    "digits": digits_problem,
    "gridworld": gridworld_problem,
    "lqr": lqr_problem,
    "pointmass": pointmass_problem,
    "pendulum": pendulum_problem,
    **{name: partial(standard_problem, name) for name in STANDARD_TARGETS},  # gmm40, funnel10, manywell32
}


def make_problem(name: str, *, dim: int | None = None) -> Problem:
    """Build a registered problem by name, or load a user's tabular problem from a ``.npz`` file
    (``maxent_gan.models.files``); the error lists the valid names.

    ``dim`` goes to the problems whose builder takes one (the Gaussian, default 2); every other
    problem has its own size and ignores it.
    """
    if is_problem_file(name):
        return load_problem_file(name)
    if name not in PROBLEMS:
        raise ValueError(f"problem: unknown name {name!r}; valid: {', '.join(PROBLEMS)}, or a .npz file")
    build = PROBLEMS[name]
    takes_dim = "dim" in inspect.signature(build).parameters
    return build(dim) if takes_dim and dim is not None else build()
