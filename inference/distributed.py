"""Posteriors whose chains span the processes of a ``jax.distributed`` job.

Every process of the job calls :func:`sample_posterior_across_processes` with the same arguments.
Each runs ``num_chains`` NUTS chains of its own (their key: NUTS's key folded with the process
index) on the *same* proposal draws (every process takes them from ``key``, so all chains sample one
posterior, with one draw set's error, and R-hat across processes means what it means within one).
The chains are then gathered along ``chain`` with JAX's own collectives
(``jax.experimental.multihost_utils.process_allgather``) into one ``InferenceData`` on every
process, judged by the library's rule over all of them, and written once, by process 0, to ``out``
(a temp file, then renamed). No scheduler of our own: the processes are started by whatever starts
a ``jax.distributed`` job (Slurm, ``mpirun``, or by hand; see the README).

On CPU, cross-process collectives need gloo, chosen before the backend starts::

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address="host:port", num_processes=N, process_id=i)

(under Slurm, ``jax.distributed.initialize()`` with no arguments reads the job's environment).
With one process (no ``jax.distributed``) this is :func:`~maxent_gan.inference.posterior.sample_posterior`
with ``nuts_key=chain_key(key, 0)``, followed by :func:`~maxent_gan.inference.posterior.save_posterior`.
``out``'s folder must exist on every process (a shared file system, as on a cluster).

What spans processes is chains, not proposal draws: each process holds all ``num_draws`` draws
and evaluates its chains' :math:`\\hat Z(\\theta)` over them alone. Splitting the draws themselves
across processes would put a cross-process all-reduce inside every NUTS step; NumPyro's MCMC closes
over the handler's draws, and a jitted function may not close over an array that spans other
processes' devices, so that is not offered (``shard=True`` is refused here for that reason).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import arviz as az
import jax
import numpy as np
import xarray as xr
from jax.experimental import multihost_utils
from maxent_gan.inference.diagnostics import UnreliableEstimateWarning
from maxent_gan.inference.posterior import judge_posterior, sample_posterior, save_posterior

__all__ = ["chain_key", "sample_posterior_across_processes"]

_GATHERED = ("posterior", "sample_stats", "log_likelihood")  # groups with a chain axis


def chain_key(key: jax.Array, process: int) -> jax.Array:
    """NUTS's key of process ``process`` (its chains), from the run's ``key``."""
    return jax.random.fold_in(jax.random.split(key)[1], process)


def sample_posterior_across_processes(model, *model_args, key: jax.Array, out: str | os.PathLike | None = None,
                                      **options) -> az.InferenceData:
    """:func:`~maxent_gan.inference.posterior.sample_posterior` with ``num_chains`` chains on each process of a
    ``jax.distributed`` job, gathered: ``(processes x num_chains)`` chains, in process order, on
    every process; process 0 writes them to ``out`` (netCDF) when given. ``options``: those of
    ``sample_posterior`` (not ``nuts_key``: each process's is :func:`chain_key`)."""
    if "nuts_key" in options:
        raise ValueError("nuts_key: set per process here (chain_key(key, process)); pass only key")
    if options.get("shard") and jax.process_count() > 1:
        raise ValueError("shard: the draws would span every process's devices, which NumPyro's MCMC cannot close "
                         "over; each process holds all its draws here (shard=False)")
    if out is not None and not Path(out).parent.is_dir():
        raise ValueError(f"out: the folder {Path(out).parent} does not exist")
    process, processes = jax.process_index(), jax.process_count()
    with warnings.catch_warnings():  # one verdict, over every process's chains, below
        warnings.simplefilter("ignore", UnreliableEstimateWarning)
        local = sample_posterior(model, *model_args, key=key, nuts_key=chain_key(key, process), **options)
    idata = _gather_chains(local, processes)
    stats = {name: idata.sample_stats[name].values for name in idata.sample_stats.data_vars
             if name.startswith(("log_z_reliable", "log_z_forward_reliable")) or name == "draw_set_log_ratio"}
    samples = {name: idata.posterior[name].values for name in idata.posterior.data_vars}
    attrs = {name: value for name, value in local.posterior.attrs.items()
             if name in ("estimator", "num_draws", "chain_method", "sampling_seconds")}
    judge_posterior(idata, samples, stats, has_draws=attrs["num_draws"] > 0, caller="sample_posterior_across_processes",
                    attrs=dict(attrs, processes=processes, chains_per_process=local.posterior.sizes["chain"]))
    if out is not None:
        try:
            if process == 0:
                save_posterior(idata, out)
        finally:  # reached even when the write fails, so no process waits forever
            multihost_utils.sync_global_devices("maxent-gan: posterior written")
    return idata


def _gather_chains(local: az.InferenceData, processes: int) -> az.InferenceData:
    if processes == 1:
        return local.copy()
    groups = {}
    for group in local.groups():
        dataset = local[group]
        if group not in _GATHERED:
            groups[group] = dataset
            continue
        variables = {}
        for name in dataset.data_vars:  # the same names, in the same order, on every process
            variables[name] = (dataset[name].dims, _gather_rows(np.asarray(dataset[name].values)))
        coords = {name: coord for name, coord in dataset.coords.items() if name != "chain"}
        chains = dataset.sizes["chain"] * processes
        groups[group] = xr.Dataset(variables, coords={**coords, "chain": np.arange(chains)}, attrs=dataset.attrs)
    return az.InferenceData(**groups)


def _gather_rows(values: np.ndarray) -> np.ndarray:
    """Every process's ``values`` stacked along the first axis, bit for bit: sent as bytes, since the
    gather goes through device arrays, which would round float64 statistics to float32 where x64 is off
    (the library's float32 mode) and cannot carry bools."""
    rows = np.ascontiguousarray(values).reshape(values.shape[0], -1).view(np.uint8)
    gathered = np.asarray(multihost_utils.process_allgather(rows, tiled=True))
    return np.ascontiguousarray(gathered).view(values.dtype).reshape(-1, *values.shape[1:])
