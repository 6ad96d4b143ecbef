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


def _lazy_exports(module_globals: dict, sources: dict[str, str]):
    """``(__getattr__, __dir__)`` for a package whose public names, ``{name: module}``, are imported on first
    use (PEP 562): ``import maxent_gan.inference.app.cli`` then starts the command line without loading JAX."""

    def __getattr__(name: str):
        if name in sources:
            value = getattr(importlib.import_module(sources[name]), name)
            module_globals[name] = value
            return value
        raise AttributeError(f"module {module_globals['__name__']!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(module_globals) | set(sources))

    return __getattr__, __dir__
