"""Problems: energies and costs, NumPyro models, and their exact references."""

from models.builders import energy_problem, tabular_problem
from models.gaussian import (
    gaussian_model,
    gaussian_target_params,
    quadratic_cost,
    quadratic_energy,
    quadratic_log_partition,
    quadratic_sample,
)
from models.problems import PROBLEMS, CostFamily, Problem, make_problem
from models.unnormalized import Unnormalized

__all__ = [
    "PROBLEMS",
    "CostFamily",
    "Problem",
    "Unnormalized",
    "energy_problem",
    "gaussian_model",
    "gaussian_target_params",
    "make_problem",
    "quadratic_cost",
    "quadratic_energy",
    "quadratic_log_partition",
    "quadratic_sample",
    "tabular_problem",
]
