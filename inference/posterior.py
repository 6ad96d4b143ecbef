"""Posteriors over costs: NUTS on the normalized model, returned as ArviZ ``InferenceData``
(DESIGN.md §1, Bayesian IRL / EBM).

``sample_posterior(model, *args, key=..., proposal=...)`` wraps ``model`` in
:class:`~inference.handler.normalized` (one fixed set of proposal draws), runs NUTS with several
chains, and returns ``InferenceData`` with

- ``posterior``: the model's latent sites, ``(chain, draw, ...)``;
- ``log_likelihood``: one value per observation (demonstration or data point), each with its
  :math:`-\\log\\hat Z(\\theta)`, so ``az.loo`` and ``az.compare`` work across cost families and proposals;
- ``sample_stats``: NUTS's own statistics, plus per draw the log normalizer the handler used
  (``log_z``), the ESS and Pareto k-hat of the proposal's weights at that θ (``log_z_ess``,
  ``log_z_k_hat``: how far to trust that draw's :math:`\\hat Z`), and where the site knows its
  exact normalizer, ``log_z_error``;
- ``observed_data``.

:func:`save_posterior` writes netCDF atomically; ``az.from_netcdf`` (or :func:`load_posterior`) reads it back.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import arviz as az
import jax
import numpy as np
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.infer import MCMC, NUTS

from inference.diagnostics import _k_hat_numpy, effective_sample_size
from inference.handler import NormalizedSite, normalized

__all__ = ["CHAIN_METHODS", "load_posterior", "normalizer_stats", "sample_posterior", "save_posterior"]

CHAIN_METHODS = ("vectorized", "parallel", "sequential")


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")


def sample_posterior(
    model,
    *model_args,
    key: jax.Array,
    proposal=None,
    estimator: str = "importance",
    num_draws: int = 4000,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 4,
    chain_method: str = "vectorized",
    shard: bool = False,
    progress: bool = False,
    **model_kwargs,
) -> az.InferenceData:
    """NUTS on ``normalized(model, proposal, num_draws, ...)``; ``InferenceData`` with per-draw
    normalizer diagnostics.

    Args:
        model: a NumPyro model with observed :class:`~models.unnormalized.Unnormalized` sites.
        model_args, model_kwargs: passed to the model.
        key: one key for everything (proposal draws, then NUTS).
        proposal: the importance proposal (unused with ``estimator="exact"``).
        estimator: ``"importance"``, ``"mixture"`` or ``"exact"`` (see :class:`normalized`).
        num_draws: proposal draws, taken once (common random numbers).
        num_warmup, num_samples, num_chains: NUTS settings, per chain.
        chain_method: ``"vectorized"`` (one device, chains batched), ``"parallel"`` (one chain per
            device, ``pmap``) or ``"sequential"``.
        shard: spread the proposal draws over all devices (``jax.sharding``).
        progress: NUTS's progress bar.
    """
    if chain_method not in CHAIN_METHODS:
        raise ValueError(f"chain_method: unknown name {chain_method!r}; valid: {', '.join(CHAIN_METHODS)}")
    for name, value in (("num_warmup", num_warmup), ("num_samples", num_samples), ("num_chains", num_chains)):
        _check_positive_int(name, value)
    if chain_method == "parallel" and num_chains > jax.local_device_count():
        raise ValueError(f"chain_method: 'parallel' runs one chain per device, and {num_chains} chains need "
                         f"{num_chains} devices ({jax.local_device_count()} here); use 'vectorized'")
    key_draws, key_nuts = jax.random.split(key)
    handled = normalized(model, proposal, num_draws, key_draws, estimator=estimator, shard=shard)
    mcmc = MCMC(NUTS(handled), num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method=chain_method, progress_bar=progress)
    start = time.perf_counter()
    mcmc.run(key_nuts, *model_args, extra_fields=("diverging",), **model_kwargs)
    jax.block_until_ready(mcmc.get_samples())
    seconds = time.perf_counter() - start
    idata = az.from_numpyro(mcmc, log_likelihood=True)
    samples = mcmc.get_samples(group_by_chain=True)
    for name, values in normalizer_stats(handled, samples, *model_args, **model_kwargs).items():
        idata.sample_stats[name] = (("chain", "draw"), values)
    idata.posterior.attrs.update(estimator=estimator, proposal_draws=0 if estimator == "exact" else num_draws,
                                 chain_method=chain_method, sampling_seconds=seconds)
    return idata


def _normalized_sites(trace) -> dict[str, NormalizedSite]:
    sites = {}
    for name, site in trace.items():
        fn = site.get("fn")
        fn = fn.base_dist if isinstance(fn, dist.ExpandedDistribution) else fn
        if isinstance(fn, NormalizedSite):
            sites[name] = fn
    return sites


def normalizer_stats(handled: normalized, samples: dict, *model_args, batch_size: int = 64,
                     **model_kwargs) -> dict[str, np.ndarray]:
    """Per posterior draw: the handler's :math:`\\log\\hat Z(\\theta)`, the ESS and k-hat of the
    proposal weights :math:`e^{-c_\\theta(x_j)}/q(x_j)` at that θ, and :math:`\\log\\hat Z - \\log Z`
    where the site has an exact normalizer.

    ``samples`` maps site names to ``(chain, draw, ...)`` arrays. Keys are ``log_z``,
    ``log_z_ess``, ``log_z_k_hat``, ``log_z_error``, suffixed ``_<site>`` when the model has
    several normalized sites. ESS and k-hat are NaN for the exact estimator (no draws).
    """
    chains, draws = next(iter(samples.values())).shape[:2]
    flat = jax.tree.map(lambda v: v.reshape((chains * draws,) + v.shape[2:]), samples)
    has_draws = handled.estimator != "exact"

    def one(params):
        trace = handlers.trace(handlers.substitute(handled, params)).get_trace(*model_args, **model_kwargs)
        out = {}
        for name, site in _normalized_sites(trace).items():
            row = {"log_z": site.log_z}
            if has_draws:
                log_w = site.base.unnormalized_log_prob(handled.draws) - handled.log_q
                row.update(log_weights=log_w, log_z_ess=effective_sample_size(log_w))
            if site.base.log_normalizer is not None:
                row["log_z_error"] = site.log_z - site.base.log_normalizer
            out[name] = row
        return out

    per_site = jax.device_get(jax.lax.map(jax.jit(one), flat, batch_size=batch_size))
    stats = {}
    for site, row in per_site.items():
        suffix = "" if len(per_site) == 1 else f"_{site}"
        stats[f"log_z{suffix}"] = row["log_z"]
        log_w = row.pop("log_weights", None)
        stats[f"log_z_ess{suffix}"] = row.get("log_z_ess", np.full(chains * draws, np.nan))
        stats[f"log_z_k_hat{suffix}"] = (np.full(chains * draws, np.nan) if log_w is None
                                         else np.array([_k_hat_numpy(w) for w in log_w]))
        if "log_z_error" in row:
            stats[f"log_z_error{suffix}"] = row["log_z_error"]
    return {name: np.asarray(value, np.float64).reshape(chains, draws) for name, value in stats.items()}


def save_posterior(idata: az.InferenceData, path: str | os.PathLike) -> Path:
    """Write ``idata`` as netCDF; a temp file in the same folder, renamed when complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    try:
        idata.to_netcdf(str(temp))
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def load_posterior(path: str | os.PathLike) -> az.InferenceData:
    """Read a posterior written by :func:`save_posterior` (``az.from_netcdf``, loaded into memory)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: no posterior file at {path}")
    idata = az.from_netcdf(str(path))
    for group in idata.groups():
        idata[group].load()
    return idata
