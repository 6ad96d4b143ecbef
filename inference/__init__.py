"""How we estimate: proposals, estimators, objectives, training, diagnostics."""

# Names are imported on first use (PEP 562): `import maxent_gan.inference.app.cli` starts the command line
# without loading JAX, so an interrupt at start-up is handled like any other.
import importlib

_SOURCES = {
    "BoundEstimate": "maxent_gan.inference.estimators",
    "LogZEstimate": "maxent_gan.inference.estimators",
    "UnreliableEstimateWarning": "maxent_gan.inference.diagnostics",
    "cost_loss": "maxent_gan.inference.objectives",
    "discriminator_loss": "maxent_gan.inference.objectives",
    "effective_sample_size": "maxent_gan.inference.diagnostics",
    "elbo": "maxent_gan.inference.estimators",
    "fit_sampler": "maxent_gan.inference.sampler",
    "generator_loss": "maxent_gan.inference.objectives",
    "iwae": "maxent_gan.inference.estimators",
    "log_z_importance": "maxent_gan.inference.estimators",
    "log_z_mixture": "maxent_gan.inference.estimators",
    "pareto_k_hat": "maxent_gan.inference.diagnostics",
    "sampler_loss": "maxent_gan.inference.objectives",
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
