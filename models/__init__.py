"""Problems: energies and costs, NumPyro models, and their exact references."""

from maxent_gan import _lazy_exports

_SOURCES = {
    "CostFamily": "maxent_gan.models.problems",
    "PROBLEMS": "maxent_gan.models.problems",
    "Problem": "maxent_gan.models.problems",
    "Unnormalized": "maxent_gan.models.unnormalized",
    "energy_problem": "maxent_gan.models.builders",
    "gaussian_model": "maxent_gan.models.gaussian",
    "gaussian_target_params": "maxent_gan.models.gaussian",
    "make_problem": "maxent_gan.models.problems",
    "quadratic_cost": "maxent_gan.models.gaussian",
    "quadratic_energy": "maxent_gan.models.gaussian",
    "quadratic_log_partition": "maxent_gan.models.gaussian",
    "quadratic_sample": "maxent_gan.models.gaussian",
    "tabular_problem": "maxent_gan.models.builders",
}
__all__ = sorted(_SOURCES)


__getattr__, __dir__ = _lazy_exports(globals(), _SOURCES)
