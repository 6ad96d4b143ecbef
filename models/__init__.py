"""Problems: energies and costs, NumPyro models, and their exact references."""

# Names are imported on first use (PEP 562): `import maxent_gan.inference.app.cli` starts the command line
# without loading JAX, so an interrupt at start-up is handled like any other.
import importlib

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


def __getattr__(name: str):
    if name in _SOURCES:
        value = getattr(importlib.import_module(_SOURCES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
