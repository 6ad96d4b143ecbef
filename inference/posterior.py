"""Posteriors over costs: NUTS on the normalized model, returned as ArviZ ``InferenceData``
(Bayesian IRL and EBMs).

``sample_posterior(model, *args, key=..., proposal=...)`` wraps ``model`` in
:class:`~maxent_gan.inference.handler.normalized` (one fixed set of proposal draws), runs NUTS with several
chains, and returns ``InferenceData`` with

- ``posterior``: the model's latent sites, ``(chain, draw, ...)``;
- ``log_likelihood``: one value per observation (demonstration or data point), each with its
  :math:`-\\log\\hat Z(\\theta)`, so ``az.loo`` and ``az.compare`` work across cost families and proposals;
- ``sample_stats``: NUTS's own statistics, plus per draw the log normalizer the handler used
  (``log_z``), the ESS and Pareto k-hat of the proposal's weights at that θ (``log_z_ess``,
  ``log_z_k_hat``: how far to trust that draw's :math:`\\hat Z`), and where the site knows its
  exact normalizer, ``log_z_error``; and ``draw_set_log_ratio`` (``chain, draw, draw_set``), the
  log joint under 3 other, independent sets of proposal draws minus the one sampled (point 5 of
  the rule);
- ``observed_data``;
- ``posterior.attrs``: ``unreliable_fraction`` (the share of draws breaking the per-draw rule),
  ``draw_set_error`` / ``draw_set_site`` / ``draw_set_ess`` (how far the set of proposal draws
  alone moves a posterior mean, in posterior sd: twice its estimated sd over sets), ``reliable``
  and ``unreliable_reasons`` (the rule for a posterior, :func:`maxent_gan.inference.diagnostics.posterior_reasons`).

:func:`save_posterior` writes netCDF atomically; ``az.from_netcdf`` (or :func:`load_posterior`) reads it back.
"""

from __future__ import annotations

import os
import time
import warnings
from functools import partial
from pathlib import Path

import arviz as az
import jax
import numpy as np
import numpyro.distributions as dist
from maxent_gan.inference.diagnostics import (
    DRAW_SETS,
    ForwardCheck,
    UnreliableEstimateWarning,
    _k_hat_numpy,
    draw_set_error,
    effective_sample_size,
    forward_reasons,
    posterior_reasons,
    summand_ess_numpy,
    unreliable_reasons,
)
from maxent_gan.inference.handler import NormalizedSite, normalized
from maxent_gan.inference.io import atomic_path
from maxent_gan.inference.normalizers import Estimator, Importance, as_estimator
from maxent_gan.models._validation import check_positive_int
from numpyro import handlers
from numpyro.infer import MCMC, NUTS
from numpyro.infer.util import log_density

__all__ = ["CHAIN_METHODS", "judge_posterior", "load_posterior", "normalizer_stats", "sample_posterior",
           "save_posterior"]

CHAIN_METHODS = ("vectorized", "parallel", "sequential")


def sample_posterior(
    model,
    *model_args,
    key: jax.Array,
    proposal=None,
    estimator: Estimator | None = None,
    num_draws: int = 4000,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 4,
    chain_method: str = "vectorized",
    dense_mass: bool = False,
    shard: bool = False,
    progress: bool = False,
    nuts_key: jax.Array | None = None,
    **model_kwargs,
) -> az.InferenceData:
    """NUTS on ``normalized(model, proposal, num_draws, ...)``; ``InferenceData`` with per-draw
    normalizer diagnostics.

    Warns (:class:`~maxent_gan.inference.diagnostics.UnreliableEstimateWarning`) when the library's rule for a
    posterior calls it unreliable: more than 5 % of the posterior draws have a
    :math:`\\hat Z(\\theta)` that breaks the per-draw rule (reverse k-hat or ESS of the proposal's
    weights, or the forward check over the observed data), or 3 other, independent sets of
    ``num_draws`` proposal draws puts more than 0.1 sd on a posterior mean. The posterior, and
    every pointwise log-likelihood (``az.loo``, ``az.compare``), inherit that error.

    Args:
        model: a NumPyro model with observed :class:`~maxent_gan.models.unnormalized.Unnormalized` sites.
        model_args, model_kwargs: passed to the model.
        key: one key for everything (proposal draws, then NUTS).
        proposal: the importance proposal (unused with ``estimator=Exact()``).
        estimator: an :class:`~maxent_gan.inference.normalizers.Estimator`: ``Importance()`` (the default),
            ``MISControlVariates()`` (an anchor mixture with its components as control variates; the per-draw
            ESS is then that of the controlled weights, the summands of that estimate, and k-hat still the
            raw weights') or ``Exact()``. ``Mixture()`` is refused here: inside a posterior the data enter
            their own normalizer, and NUTS follows the bias (7 sd on a quartic energy at 4000 or 64 000
            draws).
        num_draws: proposal draws, taken once (common random numbers); 3 more sets of as many, from
            independent keys, only judge the result (3 more passes over the posterior draws).
        num_warmup, num_samples, num_chains: NUTS settings, per chain.
        chain_method: ``"vectorized"`` (one device, chains batched), ``"parallel"`` (one chain per
            device, ``pmap``) or ``"sequential"``.
        dense_mass: adapt a dense mass matrix in warm-up (NumPyro's ``NUTS(dense_mass=True)``), not a
            diagonal one: fewer leapfrog steps where the weights are correlated, for a few of them (on
            the gridworld's 4 weights, correlated up to 0.74, 5.5 steps a draw instead of 8.1).
        shard: spread the proposal draws over all devices (``jax.sharding``).
        progress: NUTS's progress bar.
        nuts_key: NUTS's own key (default: split from ``key``); the proposal draws always come from
            ``key``, so runs that differ only here sample one posterior with other chains
            (:func:`maxent_gan.inference.distributed.sample_posterior_across_processes`).
    """
    if chain_method not in CHAIN_METHODS:
        raise ValueError(f"chain_method: unknown name {chain_method!r}; valid: {', '.join(CHAIN_METHODS)}")
    estimator = Importance() if estimator is None else as_estimator(estimator)
    if not estimator.in_posterior:
        raise ValueError(f"estimator: {estimator!r} does not serve inside a posterior: {estimator.why_not_in_posterior}; "
                         "use Importance() with a proposal close to p_θ, or Exact()")
    for name, value in (("num_warmup", num_warmup), ("num_samples", num_samples), ("num_chains", num_chains)):
        check_positive_int(name, value)
    num_warmup, num_samples, num_chains = int(num_warmup), int(num_samples), int(num_chains)  # NumPyro wants int
    if chain_method == "parallel" and num_chains > jax.local_device_count():
        raise ValueError(f"chain_method: 'parallel' runs one chain per device, and {num_chains} chains need "
                         f"{num_chains} devices ({jax.local_device_count()} here); use 'vectorized'")
    key_draws, key_nuts = jax.random.split(key)
    key_nuts = key_nuts if nuts_key is None else nuts_key
    handled = normalized(model, proposal, num_draws, key_draws, estimator=estimator, shard=shard)
    replicas = [] if not estimator.uses_draws else [  # point 5 of the rule: other, independent draw sets
        normalized(model, proposal, num_draws, jax.random.fold_in(key_draws, r + 1), estimator=estimator, shard=shard)
        for r in range(DRAW_SETS)]
    _check_model(handled, key_nuts, model_args, model_kwargs)
    # the proposal draws enter NUTS's program as an argument (jit_model_args), not as constants baked into it
    mcmc = MCMC(NUTS(partial(_holding, handled), dense_mass=bool(dense_mass)), num_warmup=num_warmup,
                num_samples=num_samples, num_chains=num_chains, chain_method=chain_method, progress_bar=progress,
                jit_model_args=True)
    start = time.perf_counter()
    mcmc.run(key_nuts, *model_args, extra_fields=NUTS_FIELDS, _fixed=handled.fixed(), **model_kwargs)
    jax.block_until_ready(mcmc.get_samples())
    seconds = time.perf_counter() - start
    idata = az.from_numpyro(mcmc, log_likelihood=True)
    samples = mcmc.get_samples(group_by_chain=True)
    stats = normalizer_stats(handled, samples, *model_args, replicas=replicas, **model_kwargs)
    for name, values in stats.items():
        idata.sample_stats[name] = (("chain", "draw", "draw_set")[:values.ndim], values)
    attrs = dict(estimator=estimator.name, num_draws=num_draws if estimator.uses_draws else 0,
                 chain_method=chain_method, sampling_seconds=seconds)
    judge_posterior(idata, samples, stats, has_draws=estimator.uses_draws, attrs=attrs, caller="sample_posterior")
    return idata


def _holding(handled: normalized, *model_args, _fixed: tuple, **model_kwargs):
    # the handled model with the handler's fixed arrays as an argument (see normalized.holding)
    with handled.holding(_fixed):
        return handled(*model_args, **model_kwargs)


def judge_posterior(idata: az.InferenceData, samples: dict, stats: dict, *, has_draws: bool, attrs: dict,
                    caller: str) -> list[str]:
    """The rule for a posterior (:func:`maxent_gan.inference.diagnostics.posterior_reasons`) over its draws and
    per-draw statistics: sets ``idata.posterior.attrs`` (``attrs`` plus ``unreliable_fraction``, the share of
    draws failing the per-draw rule, ``unreliable_in_tails``, the share of those beyond 2 posterior sd,
    ``forward_unreliable_fraction``, the draw-set error, ``reliable``, ``unreliable_reasons``), warns when it
    fails, returns the reasons."""
    attrs = dict(attrs)
    reasons = []
    flat = _flat_draws(samples)
    for prefix, key in (("log_z_reliable", "unreliable_fraction"),
                        ("log_z_forward_reliable", "forward_unreliable_fraction")):
        for name in [name for name in stats if name.startswith(prefix) and has_draws]:  # exact: no draws to judge
            site = name[len(prefix):]
            failing = np.asarray(stats[name]).reshape(-1) == 0
            attrs[f"{key}{site}"] = float(np.mean(failing))
            if key == "unreliable_fraction":
                attrs[f"unreliable_in_tails{site}"] = _share_in_tails(flat, failing)
            else:
                reasons += [f"{reason} ({site[1:]})" if site else reason
                            for reason in posterior_reasons(None, float(np.mean(failing)))]
    if "draw_set_log_ratio" in stats:
        draw_set = draw_set_error(samples, stats["draw_set_log_ratio"])
        attrs.update(draw_set_error=draw_set.error, draw_set_site=draw_set.site, draw_set_ess=draw_set.ess,
                     draw_sets=draw_set.sets)
        reasons += posterior_reasons(draw_set)
    idata.posterior.attrs.update(attrs, reliable=int(not reasons), unreliable_reasons="; ".join(reasons))
    if reasons:
        warnings.warn(
            f"{caller}: the posterior is unreliable: {'; '.join(reasons)} (the rule of maxent_gan.inference.diagnostics: "
            "k-hat, ESS and the forward check per draw, and other sets of proposal draws): the posterior and its "
            "pointwise log-likelihoods (az.loo, az.compare) carry that error; use a proposal closer to p_θ, or more "
            "draws", UnreliableEstimateWarning, stacklevel=3)
    return reasons


def _flat_draws(samples: dict) -> np.ndarray:
    """Every scalar of every site, one row per posterior draw (chain and draw flattened)."""
    leaves = [np.asarray(value, np.float64) for value in samples.values()]
    num = leaves[0].shape[0] * leaves[0].shape[1]
    return np.concatenate([leaf.reshape(num, -1) for leaf in leaves], axis=1)


def _share_in_tails(draws: np.ndarray, failing: np.ndarray) -> float:
    """The share of the failing draws that lie beyond 2 posterior sd of the posterior mean along some
    scalar (NaN when none fails: netCDF attributes cannot be None): where in the posterior the per-draw
    estimate breaks."""
    if not failing.any():
        return float("nan")
    sd = draws.std(0)
    z = np.abs(draws - draws.mean(0)) / np.where(sd > 0, sd, np.inf)
    return float(np.mean(z[failing].max(1) > 2.0))


# NUTS's own statistics, so az.plot_energy and friends work (ArviZ renames them: lp, acceptance_rate, ...)
NUTS_FIELDS = ("diverging", "energy", "potential_energy", "num_steps", "accept_prob", "adapt_state.step_size")


def _check_model(handled: normalized, key: jax.Array, model_args, model_kwargs) -> None:
    """One trace before NUTS: the model must have an observed Unnormalized site, and finite data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trace = handlers.trace(handlers.seed(handled, key)).get_trace(*model_args, **model_kwargs)
    sites = _normalized_sites(trace)
    if not sites:
        raise ValueError("model: no observed site has an Unnormalized distribution, so there is no Z(θ) to "
                         "account for; observe the data through models.Unnormalized")
    for name in sites:
        value = np.asarray(trace[name]["value"])
        if not np.all(np.isfinite(value)):
            bad = np.argwhere(~np.isfinite(value.reshape(value.shape[0], -1)))[0][0] if value.ndim else 0
            raise ValueError(f"data: the observed site {name!r} has a NaN or infinite value (first at row {bad})")


def _normalized_sites(trace) -> dict[str, NormalizedSite]:
    sites = {}
    for name, site in trace.items():
        fn = site.get("fn")
        fn = fn.base_dist if isinstance(fn, dist.ExpandedDistribution) else fn
        if isinstance(fn, NormalizedSite):
            sites[name] = fn
    return sites


def normalizer_stats(handled: normalized, samples: dict, *model_args, batch_size: int = 64,
                     replicas: tuple | list = (), **model_kwargs) -> dict[str, np.ndarray]:
    """Per posterior draw: the handler's :math:`\\log\\hat Z(\\theta)`, the ESS (for ``"mis-cv"``: of the
    controlled weights, 0 where the estimate was floored) and k-hat of the proposal weights :math:`e^{-c_\\theta(x_j)}/q(x_j)` at that θ, the forward check over the site's
    observed data (k-hat and ESS of :math:`\\log\\tilde p_\\theta(x_i) - \\log q(x_i)`), whether the
    draw passes the rule of :mod:`maxent_gan.inference.diagnostics`, and :math:`\\log\\hat Z - \\log Z` where the
    site has an exact normalizer.

    ``samples`` maps site names to ``(chain, draw, ...)`` arrays. Keys are ``log_z``,
    ``log_z_ess``, ``log_z_k_hat``, ``log_z_forward_ess``, ``log_z_forward_k_hat``,
    ``log_z_reliable`` (1.0 or 0.0), ``log_z_error``, suffixed ``_<site>`` when the model has
    several normalized sites. The diagnostics are NaN for the exact estimator (no draws). With
    ``replicas`` (the same model under other, independent sets of proposal draws),
    ``draw_set_log_ratio`` is ``(chain, draw, R)``: their log joints minus ``handled``'s at each
    draw (point 5 of the rule). The
    weights stay on the device but for ``batch_size`` posterior draws at a time (k-hat is fitted
    on the host, by ArviZ).
    """
    chains, draws = next(iter(samples.values())).shape[:2]
    total = chains * draws
    flat = jax.tree.map(lambda v: np.asarray(v).reshape((total,) + v.shape[2:]), samples)
    has_draws = handled.estimator.uses_draws

    def one(params, fixed):  # the handlers' draws as arguments, not constants (normalized.holding)
        with handled.holding(fixed[0]):
            return _one(params, fixed[1])

    def _one(params, replica_fixed):
        joint, trace = log_density(handled, model_args, model_kwargs, params)  # one trace for the joint and the sites
        out = {}
        for name, site in _normalized_sites(trace).items():
            row = {"log_z": site.log_z}
            if has_draws:
                points = trace[name]["value"].reshape((-1,) + site.base.event_shape)
                draws, log_q = handled.draws_at(site.base)
                log_weights = site.base.unnormalized_log_prob(draws) - log_q
                forward = site.base.unnormalized_log_prob(points) - handled.log_q_at(site.base, points)
                # the ESSs here, in the program (on the host, eagerly, they were hundreds of small dispatches)
                row.update(log_weights=log_weights, forward=forward, ess=effective_sample_size(log_weights),
                           forward_ess=effective_sample_size(forward))
                summands = handled.estimator.summands(log_weights, handled.prepared)
                if summands is not None:  # the estimate's own summands carry its diagnostics (mis-cv)
                    row["floored"], row["summands"] = summands
            if site.base.log_normalizer is not None:
                row["log_z_error"] = site.log_z - site.base.log_normalizer
            out[name] = row
        if replicas:
            out = {"sites": out, "draw_set_log_ratio": jax.numpy.stack(
                [_replica_log_density(r, f, params) - joint for r, f in zip(replicas, replica_fixed, strict=True)])}
        return out

    def _replica_log_density(replica, fixed, params):
        with replica.holding(fixed):
            return log_density(replica, model_args, model_kwargs, params)[0]

    batched = jax.jit(jax.vmap(one, in_axes=(0, None)))
    fixed = (handled.fixed(), [r.fixed() for r in replicas])
    padded = -(-total // batch_size) * batch_size  # whole chunks: one compilation
    flat = jax.tree.map(lambda v: np.concatenate([v, np.repeat(v[-1:], padded - total, axis=0)]), flat)
    rows: dict[str, dict[str, list]] = {}
    ratios: list[np.ndarray] = []
    for start in range(0, padded, batch_size):
        chunk = jax.device_get(batched({name: v[start:start + batch_size] for name, v in flat.items()}, fixed))
        chunk = jax.tree.map(lambda v, keep=total - start: v[:keep], chunk)
        if replicas:
            ratios.append(chunk["draw_set_log_ratio"])
            chunk = chunk["sites"]
        for site, row in chunk.items():
            into = rows.setdefault(site, {})
            for name, value in _draw_stats(row).items():
                into.setdefault(name, []).append(value)
    stats = {}
    for site, row in rows.items():
        suffix = "" if len(rows) == 1 else f"_{site}"
        for name, parts in row.items():
            stats[f"{name}{suffix}"] = np.concatenate(parts).astype(np.float64).reshape(chains, draws)
    if replicas:
        stats["draw_set_log_ratio"] = np.concatenate(ratios).astype(np.float64).reshape(chains, draws, -1)
    return stats


def _draw_stats(row: dict) -> dict[str, np.ndarray]:
    """The per-draw statistics of one chunk of posterior draws (host side)."""
    count = row["log_z"].shape[0]
    stats = {"log_z": row["log_z"]}
    if "log_weights" in row:
        log_w, forward = row["log_weights"], row["forward"]
        # mis-cv: the ESS of its summands, the controlled weights; k-hat stays the raw weights' (the controls
        # are bounded, so the controlled weights' right tail is the weights' own, fitted best on them)
        if "summands" in row:  # a floored estimate (CV_FLOOR) has ESS 0: the rule flags it
            stats["log_z_ess"] = np.where(row["floored"], 0.0, summand_ess_numpy(row["summands"]))
        else:
            stats["log_z_ess"] = np.asarray(row["ess"])
        stats["log_z_k_hat"] = _k_hat_numpy(log_w)
        stats["log_z_forward_ess"] = np.asarray(row["forward_ess"])
        stats["log_z_forward_k_hat"] = _k_hat_numpy(forward)
        checks = [ForwardCheck(np.nan, fe, fk, forward[i])
                  for i, (fk, fe) in enumerate(zip(stats["log_z_forward_k_hat"], stats["log_z_forward_ess"],
                                                   strict=True))]
        stats["log_z_reliable"] = np.array([
            not unreliable_reasons(k, e, log_w.shape[1], forward=check)
            for k, e, check in zip(stats["log_z_k_hat"], stats["log_z_ess"], checks, strict=True)], dtype=np.float64)
        stats["log_z_forward_reliable"] = np.array([not forward_reasons(check) for check in checks], dtype=np.float64)
    else:
        for name in ("log_z_ess", "log_z_k_hat", "log_z_forward_ess", "log_z_forward_k_hat", "log_z_reliable",
                     "log_z_forward_reliable"):
            stats[name] = np.full(count, np.nan)
    if "log_z_error" in row:
        stats["log_z_error"] = row["log_z_error"]
    return stats


def save_posterior(idata: az.InferenceData, path: str | os.PathLike) -> Path:
    """Write ``idata`` as netCDF; a unique temp file in the same folder, renamed when complete."""
    with atomic_path(path) as temp:
        idata.to_netcdf(str(temp))
    return Path(path)


# netCDF-4 (HDF5); netCDF-3 classic, 64-bit offset, 64-bit data
_NETCDF_SIGNATURES = (b"\x89HDF\r\n\x1a\n", b"CDF\x01", b"CDF\x02", b"CDF\x05")


def load_posterior(path: str | os.PathLike) -> az.InferenceData:
    """Read a posterior written by :func:`save_posterior` (``az.from_netcdf``, loaded into memory).

    A file that is not netCDF, is truncated, or has no ``posterior`` group is a ``ValueError``
    naming the path, not an HDF5 ``OSError``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: no posterior file at {path}")

    def unreadable(why: str) -> ValueError:
        return ValueError(f"path: {path} is not a readable netCDF posterior ({why})")

    with path.open("rb") as handle:
        head = handle.read(8)
    if not head.startswith(_NETCDF_SIGNATURES):
        raise unreadable("no netCDF signature at its start: not a netCDF file")
    try:
        idata = az.from_netcdf(str(path))
        for group in idata.groups():
            idata[group].load()
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise unreadable(f"truncated or damaged: {type(err).__name__}: {err}") from err
    if "posterior" not in idata.groups():
        raise unreadable(f"it has no posterior group, only: {', '.join(idata.groups()) or 'none'}")
    return idata
