"""How we estimate: proposals, estimators, objectives, training, diagnostics."""

from inference.diagnostics import UnreliableEstimateWarning, effective_sample_size, pareto_k_hat
from inference.estimators import BoundEstimate, LogZEstimate, elbo, iwae, log_z_importance, log_z_mixture
from inference.objectives import cost_loss, discriminator_loss, generator_loss, sampler_loss
from inference.sampler import fit_sampler

__all__ = [
    "BoundEstimate",
    "LogZEstimate",
    "UnreliableEstimateWarning",
    "cost_loss",
    "discriminator_loss",
    "effective_sample_size",
    "elbo",
    "fit_sampler",
    "generator_loss",
    "iwae",
    "log_z_importance",
    "log_z_mixture",
    "pareto_k_hat",
    "sampler_loss",
]
