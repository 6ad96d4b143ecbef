"""The one fit loop: chunks change nothing but the host round-trips, and the guard keeps the last good step."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from maxent_gan.inference.loop import fit_in_chunks
from maxent_gan.inference.sampler import _beta, annealing_schedule

jax.config.update("jax_enable_x64", True)


def _step(carry, i, args):
    # a damped map with a step-dependent input: any reordering or skipped step changes the result
    (scale,) = args
    x = 0.9 * carry["x"] + scale * jnp.sin(i + 1.0)
    return {"x": x}, jnp.sum(x**2)


@pytest.mark.parametrize("chunk", [1, 3, 7, 50])
def test_chunks_give_the_step_by_step_result(chunk):
    start = {"x": jnp.array([1.0, -2.0])}
    reference, reference_losses = start, []
    for i in range(17):
        reference, loss = _step(reference, jnp.asarray(i), (0.5,))
        reference_losses.append(float(loss))
    carry, losses, stopped = fit_in_chunks(_step, start, 17, args=(jnp.asarray(0.5),), chunk=chunk)
    assert stopped is None
    np.testing.assert_allclose(carry["x"], reference["x"], rtol=1e-12)
    np.testing.assert_allclose(losses, reference_losses, rtol=1e-12)


def test_the_guard_keeps_every_good_step_and_names_the_first_bad_one():
    def step(carry, i, args):
        x = jnp.where(i == 11, jnp.nan, carry + 1.0)  # the parameters break at step 11, the loss stays finite
        return x, jnp.asarray(0.0)

    carry, losses, stopped = fit_in_chunks(step, jnp.zeros(2), 30, chunk=8)
    assert losses.shape == (11,)
    np.testing.assert_array_equal(carry, np.full(2, 11.0))
    assert stopped == ("the parameters became non-finite (the loss, 0, was finite: its gradient was not) at step 11; "
                       "returning the state after 11 step(s)")


@pytest.mark.parametrize("beta0", [None, 0.05, 0.5])
def test_the_annealing_is_geometric_over_the_first_half(beta0):
    for i in (0, 3, 10, 19, 20, 39):
        expected = 1.0 if beta0 is None else min(1.0, beta0 ** (1.0 - i / 20))
        assert annealing_schedule(i, 40, beta0) == pytest.approx(expected, rel=1e-12)
        assert float(_beta(jnp.asarray(i), jnp.asarray(40), beta0)) == pytest.approx(expected, rel=1e-12)


def test_start_numbers_the_steps_from_there():
    start = {"x": jnp.array([1.0, -2.0])}
    first, _, _ = fit_in_chunks(_step, start, 5, args=(jnp.asarray(0.5),), chunk=5)
    both, _, _ = fit_in_chunks(_step, first, 12, args=(jnp.asarray(0.5),), chunk=4, start=5)
    whole, _, _ = fit_in_chunks(_step, start, 17, args=(jnp.asarray(0.5),), chunk=17)
    np.testing.assert_allclose(both["x"], whole["x"], rtol=1e-12)


def _counting_cost(traces):
    def cost(theta, x):
        traces.append(1)  # Python runs only while jax traces
        return 0.5 * jnp.sum((x - theta) ** 2, -1)

    return cost


class _Counted(eqx.Module):
    # a proposal whose log density calls the counting cost (maximum likelihood traces nothing else)
    inner: eqx.Module
    cost: object = eqx.field(static=True)

    def log_prob(self, x):
        return self.inner.log_prob(x) + 0.0 * self.cost(jnp.zeros(2), x)


def _fits(cost):
    # every fit of the library, each with settings built afresh per call (the optimizer included)
    from maxent_gan.inference.proposals import ConditionalFlow, Gaussian
    from maxent_gan.inference.sampler import (
        fit_at_anchors,
        fit_conditional,
        fit_sampler,
        fit_to_data,
        proposal_optimizer,
    )
    from maxent_gan.models.unnormalized import Unnormalized

    anchors = jnp.array([[0.0, 0.0], [1.0, -1.0]])
    flow = ConditionalFlow.coupling(jax.random.key(0), 2, 2, layers=1, width=4, knots=3)
    target = Unnormalized(lambda _, x: -cost(jnp.zeros(2), x), None, event_shape=(2,))
    return {
        "fit_sampler": lambda key: fit_sampler(key, Gaussian.isotropic(2, 1.0), target, steps=6, chunk=3,
                                               progress=False, optimizer=proposal_optimizer(1e-2, 6)),
        "fit_at_anchors": lambda key: fit_at_anchors(key, Gaussian.isotropic(2, 1.0), cost, anchors, steps=6, chunk=3,
                                                     progress=False),
        "fit_conditional": lambda key: fit_conditional(key, flow, cost, anchors, steps=6, chunk=3, num_draws=4,
                                                       thetas_per_step=2, progress=False),
        "fit_to_data": lambda key: fit_to_data(key, _Counted(Gaussian.isotropic(2, 1.0), cost),
                                               jax.random.normal(jax.random.key(3), (40, 2)), max_epochs=3,
                                               batch_size=8),
    }


@pytest.mark.parametrize("name", ["fit_sampler", "fit_at_anchors", "fit_conditional", "fit_to_data"])
def test_every_fit_has_one_shape_and_reuses_its_compiled_step(name):
    # a second call with equal settings (objects built afresh) and shapes traces nothing: the steps are keyed
    # on their settings by value, not on a process-wide cache of function objects
    from maxent_gan.inference.loop import FitResult

    traces = []
    fit = _fits(_counting_cost(traces))[name]
    first = fit(jax.random.key(0))
    traced = len(traces)
    second = fit(jax.random.key(1))
    assert traced > 0 and len(traces) == traced
    for result in (first, second):
        assert isinstance(result, FitResult) and result.stopped is None and result.skipped == 0
        assert result.losses.shape[0] > 0 and np.all(np.isfinite(result.losses))


def test_the_proposal_optimizer_is_equal_for_equal_settings_without_a_cache():
    from maxent_gan.inference.sampler import proposal_optimizer

    a, b = proposal_optimizer(1e-2, 100), proposal_optimizer(1e-2, 100)
    assert a == b and hash(a) == hash(b) and a is not b
    assert a != proposal_optimizer(1e-2, 101) and a != proposal_optimizer(2e-2, 100)
    with pytest.raises(ValueError, match="learning_rate: expected a positive number"):
        proposal_optimizer(0.0, 100)


def test_bad_steps_and_chunks_are_refused():
    with pytest.raises(ValueError, match="steps: expected a non-negative integer"):
        fit_in_chunks(_step, {"x": jnp.zeros(1)}, -1)
    with pytest.raises(ValueError, match="chunk: expected a positive integer"):
        fit_in_chunks(_step, {"x": jnp.zeros(1)}, 3, chunk=0)



def test_a_float32_fit_runs_in_float32_and_returns_the_given_dtypes():
    seen = []

    def step(carry, i, args):
        (scale,) = args
        seen.append((carry["x"].dtype, scale.dtype, jnp.zeros(()).dtype))  # traced: the dtypes inside the fit
        new, loss = _step(carry, i, args)
        return {**new, "n": carry["n"] + 1}, loss

    start = {"x": jnp.array([1.0, -2.0]), "n": jnp.asarray(3)}
    carry, losses, _ = fit_in_chunks(step, start, 17, args=(jnp.asarray(0.5),), chunk=5, dtype="float32")
    assert set(seen) == {(np.dtype("float32"),) * 3}
    assert carry["x"].dtype == jnp.float64 and carry["n"].dtype == start["n"].dtype and losses.dtype == np.float32
    reference, _, _ = fit_in_chunks(_step, {"x": start["x"]}, 17, args=(jnp.asarray(0.5),), chunk=5)
    assert int(carry["n"]) == 20
    # float32 rounding (ulp 1.2e-7 at the iterates' scale, 1) over 17 steps, not a different fit
    np.testing.assert_allclose(carry["x"], reference["x"], rtol=0, atol=2e-6)
    assert not np.array_equal(carry["x"], reference["x"])  # and it really ran in float32
    assert jnp.zeros(()).dtype == jnp.float64  # the scope ended with the fit


def test_a_float32_fitted_proposal_keeps_the_estimate_exact():
    # the fit's precision changes only how good q is: the weights are float64 for the q that was fitted
    from maxent_gan.inference.estimators import log_z_importance
    from maxent_gan.inference.proposals import Gaussian
    from maxent_gan.inference.sampler import fit_sampler
    from maxent_gan.models import gaussian_target_params, quadratic_energy

    target = quadratic_energy(gaussian_target_params(3))
    fitted, losses, _, _ = fit_sampler(jax.random.key(0), Gaussian.isotropic(3, 2.0), target, steps=600, progress=False,
                                 dtype="float32")
    assert losses.dtype == np.float32 and fitted.loc.dtype == jnp.float64
    x, log_q = fitted.sample_and_log_prob(jax.random.key(1), 20_000)
    assert x.dtype == jnp.float64 and log_q.dtype == jnp.float64
    estimate = log_z_importance(-target.unnormalized_log_prob(x), log_q)
    assert abs(float(estimate.log_z) - float(target.log_normalizer)) < 0.01


def test_a_bad_fit_precision_is_refused_before_any_work():
    with pytest.raises(ValueError, match="dtype: expected 'float32', 'float64' or None, got 'half'"):
        fit_in_chunks(_step, {"x": jnp.zeros(1)}, 3, dtype="half")
