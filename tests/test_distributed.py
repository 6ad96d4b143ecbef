"""A posterior whose chains span two processes of a jax.distributed job on this machine (gloo collectives)."""

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import arviz as az
import jax
import numpy as np
import pytest
from maxent_gan.inference.diagnostics import draw_set_error, posterior_reasons
from maxent_gan.inference.distributed import sample_posterior_across_processes

WORKER = textwrap.dedent("""
    import sys
    process, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=2, process_id=process)
    # float32, the library's default outside the tests: the float64 statistics must still travel whole
    import jax.numpy as jnp, numpy as np
    from maxent_gan.inference.distributed import chain_key, sample_posterior_across_processes
    from maxent_gan.inference.posterior import sample_posterior
    from maxent_gan.inference.proposals import Gaussian
    from tests.test_handler import DIM, model
    assert jax.process_count() == 2 and jax.device_count() == 2, (jax.process_count(), jax.devices())
    data = jax.random.normal(jax.random.key(0), (60, DIM)) / jnp.sqrt(3.0)
    options = dict(proposal=Gaussian.isotropic(DIM, 0.8), num_draws=500, num_warmup=60, num_samples=60,
                   num_chains=2)
    idata = sample_posterior_across_processes(model, data, key=jax.random.key(1), out=out, **options)
    assert idata.posterior.sizes["chain"] == 4  # every process holds the gathered chains
    # this process's chains alone, as one process would run them: they must be its block of the file
    alone = sample_posterior(model, data, key=jax.random.key(1), nuts_key=chain_key(jax.random.key(1), process),
                             **options)
    np.savez(f"{out}.alone{process}.npz", precision=alone.posterior["precision"].values,
             log_z=alone.sample_stats["log_z"].values, log_ratio=alone.sample_stats["draw_set_log_ratio"].values)
    print("worker ok", flush=True)
""")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def test_chains_on_two_processes_are_gathered_into_one_file_and_judged_together(tmp_path):
    root = Path(__file__).parent.parent
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(root)}
    out, port = tmp_path / "posterior.nc", str(_free_port())
    logs = [tmp_path / f"worker{process}.log" for process in (0, 1)]  # files, not pipes: no worker blocks on one
    handles = [log.open("w") for log in logs]
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(process), port, str(out)], cwd=root, env=env,
                                stdout=handle, stderr=subprocess.STDOUT) for process, handle in enumerate(handles)]
    try:
        for worker in workers:
            worker.wait(timeout=300)
    finally:
        for worker, handle in zip(workers, handles, strict=True):
            worker.kill()
            handle.close()
    for worker, log in zip(workers, logs, strict=True):
        assert worker.returncode == 0 and "worker ok" in log.read_text(), log.read_text()[-3000:]
    idata = az.from_netcdf(out)
    precision = idata.posterior["precision"].values
    assert precision.shape == (4, 60)
    for process in (0, 1):  # process p's chains are block p, bit for bit, their float64 statistics too
        alone, block = np.load(f"{out}.alone{process}.npz"), slice(2 * process, 2 * process + 2)
        np.testing.assert_array_equal(precision[block], alone["precision"])
        assert idata.sample_stats["log_z"].dtype == np.float64
        np.testing.assert_array_equal(idata.sample_stats["log_z"].values[block], alone["log_z"])
        np.testing.assert_array_equal(idata.sample_stats["draw_set_log_ratio"].values[block], alone["log_ratio"])
    assert not np.array_equal(precision[:2], precision[2:])  # other keys, other chains
    assert idata.sample_stats["log_z"].shape == (4, 60) and idata.log_likelihood["x"].shape == (4, 60, 60)
    attrs = idata.posterior.attrs
    assert (attrs["processes"], attrs["chains_per_process"]) == (2, 2)
    # the verdict is over all four chains, not one process's
    gathered = draw_set_error({"precision": precision}, idata.sample_stats["draw_set_log_ratio"].values)
    assert attrs["draw_set_error"] == pytest.approx(gathered.error, rel=1e-12)
    assert attrs["reliable"] == int(not posterior_reasons(gathered, attrs["forward_unreliable_fraction"]))
    assert not list(tmp_path.glob("*.tmp*"))  # written whole, then renamed


def test_bad_options_are_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match=r"nuts_key: set per process here \(chain_key\(key, process\)\)"):
        sample_posterior_across_processes(None, key=jax.random.key(0), nuts_key=jax.random.key(1))
    with pytest.raises(ValueError, match="out: the folder .* does not exist"):
        sample_posterior_across_processes(None, key=jax.random.key(0), out=tmp_path / "missing" / "posterior.nc")
