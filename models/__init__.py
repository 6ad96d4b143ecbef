"""Problems: energies and costs, NumPyro models, and their exact references."""

from models.gaussian import (
    gaussian_model,
    gaussian_target_params,
    quadratic_cost,
    quadratic_energy,
    quadratic_log_partition,
    quadratic_sample,
)
from models.problems import PROBLEMS, Problem, make_problem
from models.unnormalized import Unnormalized

__all__ = [
    "PROBLEMS",
    "Problem",
    "Unnormalized",
    "gaussian_model",
    "gaussian_target_params",
    "make_problem",
    "quadratic_cost",
    "quadratic_energy",
    "quadratic_log_partition",
    "quadratic_sample",
]
