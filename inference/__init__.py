"""How we estimate: proposals, estimators, objectives, training, diagnostics."""

from maxent_gan import _lazy_exports

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


__getattr__, __dir__ = _lazy_exports(globals(), _SOURCES)
