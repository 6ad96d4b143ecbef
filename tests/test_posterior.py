"""maxent_gan.inference.posterior: NUTS on the normalized model as InferenceData, checked against closed forms."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from maxent_gan.inference.estimators import log_mean_exp
from maxent_gan.inference.normalizers import Exact, Importance
from maxent_gan.inference.posterior import load_posterior, sample_posterior, save_posterior
from maxent_gan.inference.proposals import Gaussian

from tests.test_handler import DIM, conjugate, model

N = 60


@pytest.fixture(scope="module")
def data():
    return jax.random.normal(jax.random.key(0), (N, DIM)) / jnp.sqrt(3.0)


@pytest.fixture(scope="module")
def exact_idata(data):
    return sample_posterior(model, data, key=jax.random.key(1), estimator=Exact(), num_warmup=200, num_samples=300,
                            num_chains=2)


@pytest.fixture(scope="module")
def importance_idata(data):
    return sample_posterior(model, data, key=jax.random.key(1), proposal=Gaussian.isotropic(DIM, 0.8), num_draws=3000,
                            num_warmup=200, num_samples=300, num_chains=2)


def test_groups_shapes_and_pointwise_log_likelihood_are_the_closed_form(exact_idata, data):
    idata = exact_idata
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data"} <= set(idata.groups())
    precision = idata.posterior["precision"].values
    assert precision.shape == (2, 300)
    pointwise = idata.log_likelihood["x"].values
    assert pointwise.shape == (2, 300, N)  # one value per observation
    # log p(x_i | prec) = -prec |x_i|²/2 - log(2π/prec), for every draw and observation
    expected = (-0.5 * precision[..., None] * np.sum(np.asarray(data) ** 2, -1)
                - np.log(2 * np.pi / precision[..., None]))
    np.testing.assert_allclose(pointwise, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(idata.observed_data["x"].values, data)
    stats = idata.sample_stats
    np.testing.assert_allclose(stats["log_z"].values, np.log(2 * np.pi / precision), rtol=1e-12)
    assert np.all(stats["log_z_error"].values == 0.0)
    assert np.isnan(stats["log_z_ess"].values).all() and np.isnan(stats["log_z_k_hat"].values).all()  # no draws
    mean, sd = conjugate(data)
    assert abs(float(precision.mean()) - mean) < 0.3 * sd
    assert float(az.rhat(idata)["precision"]) < 1.02


def test_per_draw_log_z_ess_and_k_hat_are_those_of_the_fixed_draws(importance_idata, data):
    idata = importance_idata
    stats = idata.sample_stats
    precision = idata.posterior["precision"].values
    # recompute from the same draws: sample_posterior splits its key (draws, NUTS)
    proposal = Gaussian.isotropic(DIM, 0.8)
    draws, log_q = proposal.sample_and_log_prob(jax.random.split(jax.random.key(1))[0], 3000)
    for c, d in [(0, 0), (1, 299), (0, 150)]:
        log_w = -0.5 * precision[c, d] * jnp.sum(draws**2, -1) - log_q
        assert abs(float(log_mean_exp(log_w)) - stats["log_z"].values[c, d]) < 1e-10
        ess = float(jnp.exp(2 * jax.nn.logsumexp(log_w) - jax.nn.logsumexp(2 * log_w)))
        assert abs(ess - stats["log_z_ess"].values[c, d]) < 1e-6 * ess
    k_hat = stats["log_z_k_hat"].values
    assert np.isfinite(k_hat).all() and np.all(k_hat < 0.7)  # a proposal wider than the target: good weights
    assert np.all(np.abs(stats["log_z_error"].values) < 0.05)
    assert idata.posterior.attrs["estimator"] == "importance" and idata.posterior.attrs["num_draws"] == 3000


def test_netcdf_round_trip_and_loo(tmp_path, importance_idata):
    path = save_posterior(importance_idata, tmp_path / "sub" / "posterior.nc")
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    loaded = load_posterior(path)
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data"):
        for name, values in importance_idata[group].data_vars.items():
            np.testing.assert_array_equal(loaded[group][name].values, values.values)
    loo = az.loo(loaded, pointwise=True)
    assert loo.loo_i.shape == (N,) and np.isfinite(loo.elpd_loo)
    with pytest.raises(ValueError, match="path: no posterior file"):
        load_posterior(tmp_path / "missing.nc")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"chain_method": "nope"}, "chain_method: unknown name 'nope'; valid: vectorized, parallel, sequential"),
        ({"estimator": "nope"}, "estimator: expected an Estimator .*, got 'nope'"),
        ({"num_chains": 0}, "num_chains: expected a positive integer, got 0"),
        ({"chain_method": "parallel", "num_chains": 64}, "'parallel' runs one chain per device"),
        ({"estimator": Importance()}, "proposal: the 'importance' estimator needs a proposal"),
    ],
)
def test_bad_options_fail_before_sampling(options, message, data):
    options = {"estimator": Exact(), **options}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sample_posterior(model, data, key=jax.random.key(0), **options)


SHARDED = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    from maxent_gan.inference.handler import normalized
    from maxent_gan.inference.posterior import sample_posterior
    from maxent_gan.inference.proposals import Gaussian
    from tests.test_handler import DIM, conjugate, model
    assert jax.device_count() == 4, jax.devices()
    data = jax.random.normal(jax.random.key(0), (60, DIM)) / jnp.sqrt(3.0)
    proposal = Gaussian.isotropic(DIM, 0.8)
    handled = normalized(model, proposal, 4000, jax.random.key(5), shard=True)
    assert len(handled.draws.sharding.device_set) == 4 and len(handled.log_q.sharding.device_set) == 4
    idata = sample_posterior(model, data, key=jax.random.key(1), proposal=proposal, num_draws=4000, num_warmup=200,
                             num_samples=300, num_chains=4, chain_method="parallel", shard=True)
    precision = idata.posterior["precision"].values
    assert precision.shape == (4, 300)
    draws, log_q = proposal.sample_and_log_prob(jax.random.split(jax.random.key(1))[0], 4000)  # unsharded
    log_w = -0.5 * precision[..., None] * np.sum(np.asarray(draws) ** 2, -1) - np.asarray(log_q)
    log_z = np.logaddexp.reduce(log_w, axis=-1) - np.log(4000)
    np.testing.assert_allclose(idata.sample_stats["log_z"].values, log_z, rtol=0, atol=1e-10)
    mean, sd = conjugate(data)
    assert abs(precision.mean() - mean) < 0.3 * sd, (precision.mean(), mean, sd)
    print("sharded ok")
""")


def test_draws_and_chains_sharded_over_four_cpu_devices():
    root = Path(__file__).parent.parent
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": str(root)}
    result = subprocess.run([sys.executable, "-c", SHARDED], cwd=root, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sharded ok" in result.stdout
