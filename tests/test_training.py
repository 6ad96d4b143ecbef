"""The three training methods and the driver: convergence to the closed-form MLE, the NaN
guard, checkpoints and resume."""

import json
import math
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from maxent_gan.inference.driver import TrainingDivergedWarning, check_data, load_checkpoint, run_training, trace_column
from maxent_gan.inference.proposals import DiagonalGaussian
from maxent_gan.inference.training import exact_maxent, gan_form, guided_cost_learning

DIM = 2


def diagonal_cost(theta, x):
    """:math:`\\tfrac12 \\sum_j e^{\\lambda_j}(x_j - m_j)^2`: a Gaussian with free loc and precision."""
    return 0.5 * jnp.sum(jnp.exp(theta["log_precision"]) * (x - theta["loc"]) ** 2, axis=-1)


def diagonal_log_partition(theta):
    return 0.5 * DIM * math.log(2 * math.pi) - 0.5 * jnp.sum(theta["log_precision"])


def _data(num=500):
    key = jax.random.key(0)
    return jnp.array([1.0, -0.5]) + jnp.array([0.7, 1.4]) * jax.random.normal(key, (num, DIM))


def _algorithm(method, steps):
    energy_opt = optax.adam(optax.cosine_decay_schedule(0.05, steps, alpha=0.02))
    proposal_opt = optax.adam(optax.cosine_decay_schedule(0.05, steps, alpha=0.02))
    if method == "exact":
        return exact_maxent(diagonal_cost, diagonal_log_partition, energy_opt, proposal_opt, num_draws=512)
    if method == "gcl":
        return guided_cost_learning(diagonal_cost, energy_opt, proposal_opt, num_draws=512)
    return gan_form(diagonal_cost, energy_opt, proposal_opt, num_draws=512)


def _initial():
    theta = {"loc": jnp.zeros(DIM), "log_precision": jnp.zeros(DIM)}
    return theta, DiagonalGaussian(jnp.zeros(DIM), jnp.full(DIM, 2.0))


@pytest.mark.parametrize("method", ["exact", "gcl", "gan"])
def test_methods_reach_the_closed_form_maximum_likelihood(method):
    data, steps = _data(), 600
    algorithm = _algorithm(method, steps)
    result = run_training(jax.random.key(1), algorithm, algorithm.init(*_initial()), data,
                          steps=steps, batch_size=data.shape[0], progress=False)
    theta = result.state.energy
    # the MLE of a Gaussian: sample mean and (biased) sample variance
    np.testing.assert_allclose(theta["loc"], data.mean(0), atol=0.03)
    np.testing.assert_allclose(jnp.exp(-theta["log_precision"]), data.var(0), rtol=0.06)
    log_z_true = diagonal_log_partition({"log_precision": -jnp.log(data.var(0))})
    # exact: the closed form; GCL: the mixture estimate; GAN form: the learned scalar
    assert abs(float(result.state.log_z) - float(log_z_true)) < 0.05
    assert result.stopped is None and result.steps_done == steps


def test_exact_method_loss_is_mean_cost_plus_log_z():
    data = _data()
    algorithm = _algorithm("exact", 10)
    theta, proposal = _initial()
    _, info = algorithm.step(jax.random.key(0), algorithm.init(theta, proposal), data)
    expected = jnp.mean(diagonal_cost(theta, data)) + diagonal_log_partition(theta)
    assert float(info.energy_loss) == pytest.approx(float(expected), abs=1e-12)
    assert float(info.log_z) == pytest.approx(float(diagonal_log_partition(theta)), abs=1e-12)


@pytest.mark.parametrize("method", ["exact", "gcl", "gan"])
def test_step_compiles_once(method):
    traces = []

    def counting_cost(theta, x):
        traces.append(1)  # Python runs only while jax traces
        return diagonal_cost(theta, x)

    optimizer = optax.adam(optax.cosine_decay_schedule(0.05, 10))
    algorithm = {
        "exact": lambda: exact_maxent(counting_cost, diagonal_log_partition, optimizer, optimizer),
        "gcl": lambda: guided_cost_learning(counting_cost, optimizer, optimizer),
        "gan": lambda: gan_form(counting_cost, optimizer, optimizer),
    }[method]()
    state = algorithm.init(*_initial())
    state, _ = algorithm.step(jax.random.key(0), state, _data()[:64])
    traced_once = len(traces)
    for i in range(1, 4):  # new keys, new batches, a new step count in the schedules
        state, _ = algorithm.step(jax.random.key(i), state, _data()[64 * i: 64 * (i + 1)])
    assert len(traces) == traced_once


def _run(steps, directory, *, resume=False, checkpoint_every=3):
    algorithm = _algorithm("gcl", 10)
    return run_training(jax.random.key(3), algorithm, algorithm.init(*_initial()), _data(), steps=steps,
                        batch_size=64, log_every=1, checkpoint_dir=directory, checkpoint_every=checkpoint_every,
                        resume=resume, progress=False)


def test_resume_gives_the_same_numbers_as_an_unbroken_run(tmp_path):
    unbroken = _run(10, tmp_path / "a")
    _run(4, tmp_path / "b")
    resumed = _run(10, tmp_path / "b", resume=True)
    for left, right in zip(jax.tree.leaves(eqx.filter(unbroken.state, eqx.is_array)),
                           jax.tree.leaves(eqx.filter(resumed.state, eqx.is_array)), strict=True):
        np.testing.assert_array_equal(left, right)
    assert [row["step"] for row in resumed.trace] == list(range(1, 11))
    assert trace_column(resumed.trace, "log_z")[1] == pytest.approx(trace_column(unbroken.trace, "log_z")[1])


def test_segments_between_logged_steps_give_the_same_numbers_as_single_steps():
    # the driver runs each stretch between two logged steps as one lax.scan: how the run is cut
    # into stretches (log_every) changes no number
    algorithm = _algorithm("gcl", 12)
    runs = [run_training(jax.random.key(3), algorithm, algorithm.init(*_initial()), _data(), steps=12, batch_size=64,
                         log_every=every, progress=False) for every in (1, 5)]
    for left, right in zip(*(jax.tree.leaves(eqx.filter(run.state, eqx.is_array)) for run in runs), strict=True):
        np.testing.assert_allclose(left, right, rtol=1e-12, atol=1e-14)
    assert [row["step"] for row in runs[1].trace] == [5, 10, 12]
    by_step = {row["step"]: row for row in runs[0].trace}
    for row in runs[1].trace:
        for name in ("energy_loss", "proposal_loss", "log_z", "ess", "k_hat"):
            assert row[name] == pytest.approx(by_step[row["step"]][name], rel=1e-10)


def test_checkpoints_are_atomic_json_plus_leaves_without_pickle(tmp_path):
    _run(7, tmp_path, checkpoint_every=3)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["checkpoint.json", "state-00000007.eqx"]  # older states and temp files are gone
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    assert meta["step"] == 7 and meta["state"] == "state-00000007.eqx"
    assert not (tmp_path / meta["state"]).read_bytes().startswith(b"\x80")  # not a pickle stream
    algorithm = _algorithm("gcl", 10)
    state, step, trace = load_checkpoint(tmp_path, algorithm.init(*_initial()))
    assert step == 7 and len(trace) == 7 and bool(jnp.all(jnp.isfinite(state.energy["loc"])))


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="resume: no checkpoint"):
        _run(3, tmp_path, resume=True)


def test_nan_guard_stops_on_the_last_good_state(tmp_path):
    def cost_that_breaks(theta, x):
        # finite until the location crosses 0.5, NaN after: a model that blows up mid-training
        cost = diagonal_cost(theta, x)
        return jnp.where(theta["loc"][0] > 0.5, jnp.nan, cost)

    optimizer = optax.sgd(0.05)
    algorithm = exact_maxent(cost_that_breaks, diagonal_log_partition, optimizer, optimizer, num_draws=64)
    with pytest.warns(TrainingDivergedWarning, match=r"training stopped: the \(energy loss, proposal loss, log Z\) became .* at step \d+; returning"):
        result = run_training(jax.random.key(0), algorithm, algorithm.init(*_initial()), _data(), steps=200,
                              batch_size=500, checkpoint_dir=tmp_path, progress=False)
    assert result.stopped is not None and 0 < result.steps_done < 200
    assert float(result.state.energy["loc"][0]) <= 0.5
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(eqx.filter(result.state, eqx.is_array)))
    assert json.loads((tmp_path / "checkpoint.json").read_text())["step"] == result.steps_done


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (jnp.ones((10, 3)), r"expected points of shape \(n, 2\), got \(10, 3\)"),
        (jnp.ones(10), r"expected points of shape \(n, 2\)"),
        (jnp.ones((10, 2)).at[4, 1].set(jnp.nan), "1 point\\(s\\) with NaN or inf, first at row 4"),
        (jnp.ones((1, 2)), "at least 2 points"),
    ],
    ids=["wrong-dim", "flat", "nan", "too-few"],
)
def test_bad_data_is_a_clear_error(data, message):
    with pytest.raises(ValueError, match=message):
        check_data(data, 2)


def test_driver_rejects_bad_counts():
    algorithm = _algorithm("exact", 5)
    with warnings.catch_warnings():
        with pytest.raises(ValueError, match="batch_size: expected a positive integer"):
            run_training(jax.random.key(0), algorithm, algorithm.init(*_initial()), _data(), steps=5, batch_size=0)


@pytest.mark.parametrize(
    ("train", "message"),
    [(jnp.ones((50, 3)), r"data: expected points of shape \(n, 2\), got \(50, 3\)"),
     (jnp.ones((50, 2)).at[7, 0].set(jnp.nan), "data: 1 point\\(s\\) with NaN or inf, first at row 7")],
    ids=["wrong-dim", "nan"],
)
def test_train_ebm_checks_user_data_before_any_training(train, message, monkeypatch):
    import maxent_gan.inference.ebm as ebm

    def fail(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(ebm, "build_training", fail)
    with pytest.raises(ValueError, match=message):
        ebm.train_ebm("rings", "gcl", data=(train, jnp.ones((10, 2))), progress=False)


def test_train_ebm_rejects_unknown_method_listing_valid_ones():
    from maxent_gan.inference.ebm import train_ebm

    with pytest.raises(ValueError, match="method: unknown name 'sgd'; valid: exact, gcl, gan"):
        train_ebm("rings", "sgd")
