"""The one fit loop: chunks change nothing but the host round-trips, and the guard keeps the last good step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inference.loop import fit_in_chunks
from inference.sampler import _beta, annealing_schedule

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


def test_repeated_fits_reuse_the_compiled_step():
    # fit_at_anchors and fit_policy_to_demos build their steps through cached_step: a second call
    # with the same settings and shapes traces nothing
    from inference.loop import cached_step
    from inference.proposals import Gaussian
    from inference.sampler import fit_at_anchors

    traces = []

    def cost(theta, x):
        traces.append(1)  # Python runs only while jax traces
        return 0.5 * jnp.sum((x - theta) ** 2, -1)

    anchors = jnp.array([[0.0, 0.0], [1.0, -1.0]])
    fit_at_anchors(jax.random.key(0), Gaussian.isotropic(2, 1.0), cost, anchors, steps=6, chunk=3, progress=False)
    traced = len(traces)
    fit_at_anchors(jax.random.key(1), Gaussian.isotropic(2, 1.0), cost, anchors + 1.0, steps=6, chunk=3,
                   progress=False)
    assert traced > 0 and len(traces) == traced
    assert cached_step(dict, a=1) is cached_step(dict, a=1)


def test_bad_steps_and_chunks_are_refused():
    with pytest.raises(ValueError, match="steps: expected a non-negative integer"):
        fit_in_chunks(_step, {"x": jnp.zeros(1)}, -1)
    with pytest.raises(ValueError, match="chunk: expected a positive integer"):
        fit_in_chunks(_step, {"x": jnp.zeros(1)}, 3, chunk=0)

