"""maxent-gan: GANs, maximum-entropy inverse reinforcement learning and energy-based models as one
estimator of an intractable normalizer (Finn, Christiano, Abbeel & Levine, 2016), in NumPyro.

``maxent_gan.models`` holds what is true (energies, cost families, the NumPyro models and their exact
references); ``maxent_gan.inference`` how it is estimated (proposals, estimators, objectives, training,
diagnostics, the normalizing handler). Both are imported on first use, so ``import maxent_gan`` is cheap.
"""

import importlib

__version__ = "0.1.0"
__all__ = ["inference", "models"]


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
