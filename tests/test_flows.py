"""Flow proposals: a normalized density, consistent draws, and the fit to data (the fit by reverse KL to an
energy is checked for accuracy in benchmarks/checks)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from maxent_gan.inference.app.recipes import make_proposal, proposal_names
from maxent_gan.inference.proposals.flow import Flow
from maxent_gan.inference.sampler import fit_to_data
from maxent_gan.models.mixture import mixture_energy, mixture_params
from maxent_gan.models.quadrature import log_partition_grid


@pytest.fixture(scope="module")
def flow():
    return Flow.coupling(jax.random.key(0), 2, layers=3, knots=6, interval=4.0, width=16)


def test_flow_density_integrates_to_one(flow):
    # quadrature of q over a box holding its mass: log ∫ q = 0
    log_mass = log_partition_grid(lambda x: -flow.log_prob(x), ((-9, 9), (-9, 9)), 300)
    assert abs(float(log_mass)) < 1e-3


def test_sample_and_log_prob_agrees_with_log_prob(flow):
    x, log_q = flow.sample_and_log_prob(jax.random.key(1), 500)
    np.testing.assert_allclose(log_q, flow.log_prob(x), atol=1e-8)
    np.testing.assert_array_equal(x, flow.sample(jax.random.key(1), 500))


def test_flow_protocol_checks_shapes(flow):
    with pytest.raises(ValueError, match=r"expected points of shape \(n, 2\)"):
        flow.log_prob(jnp.ones((3, 5)))
    with pytest.raises(ValueError, match="positive integer"):
        flow.sample(jax.random.key(0), 0)
    with pytest.raises(ValueError, match="dimension >= 2"):
        Flow.coupling(jax.random.key(0), 1)


def _two_blobs():
    return mixture_energy(mixture_params(jnp.array([[-1.5, 0.0], [1.5, 0.5]]), jnp.array([0.5, 0.7])))


def test_flow_fitted_to_data_covers_the_data():
    target = _two_blobs()
    data = target.sample(jax.random.key(0), (4000,))
    initial = Flow.coupling(jax.random.key(1), 2, layers=4, width=32, interval=5.0)
    fitted, losses, _, _ = fit_to_data(jax.random.key(2), initial, data, max_epochs=30, learning_rate=3e-3)
    held_out = target.sample(jax.random.key(3), (2000,))
    true_nll = float(-jnp.mean(target.normalized_log_prob(held_out)))
    nll_before, nll_after = float(-jnp.mean(initial.log_prob(held_out))), float(-jnp.mean(fitted.log_prob(held_out)))
    assert nll_after < nll_before and nll_after - true_nll < 0.1  # KL(p || q) < 0.1 nats
    assert losses.ndim == 1 and len(losses) > 0


def test_fit_to_data_rejects_nan_data(flow):
    with pytest.raises(ValueError, match="data: contains NaN"):
        fit_to_data(jax.random.key(0), flow, jnp.ones((10, 2)).at[3, 0].set(jnp.nan))


def test_registry_has_the_flows_and_flow_data_needs_an_exact_sampler():
    from maxent_gan.models.energy import MLPEnergy, energy_distribution

    assert {"flow", "flow-data"} <= set(proposal_names())
    with pytest.raises(ValueError, match="flow-data.*has none"):
        make_proposal("flow-data", jax.random.key(0), energy_distribution(MLPEnergy(jax.random.key(0), 2)))


def test_draws_go_through_the_splines_forward_map_whose_gradient_is_finite():
    """The reason for ``invert=False`` (maxent_gan.inference.proposals.flow): reverse KL differentiates the
    draws, and the spline's forward map (a ratio of quadratics) has a finite parameter gradient
    for every parameter and point; its inverse's square root does not (49 of 60 000 measured)."""
    import equinox as eqx
    import paramax
    from flowjax.bijections import Invert, RationalQuadraticSpline

    flow = Flow.coupling(jax.random.key(0), 2, layers=2, knots=6, interval=4.0, width=16)
    assert not isinstance(flow.flow.bijection, Invert)
    spline = RationalQuadraticSpline(knots=8, interval=75.0)
    params, static = eqx.partition(spline, eqx.is_inexact_array)
    leaves, treedef = jax.tree.flatten(params)

    def forward(leaves, x):
        y, log_det = paramax.unwrap(eqx.combine(jax.tree.unflatten(treedef, leaves), static)).transform_and_log_det(x)
        return y + log_det

    n = 20_000
    keys = jax.random.split(jax.random.key(1), len(leaves) + 1)
    extreme = [20.0 * jax.random.normal(k, (n, *leaf.shape)) for k, leaf in zip(keys[:-1], leaves, strict=True)]
    x = jax.random.uniform(keys[-1], (n,), minval=-80.0, maxval=80.0)
    x = x.at[: n // 4].set(jnp.sign(x[: n // 4]) * 75.0)  # a quarter on the interval's edges
    grads = jax.jit(jax.vmap(jax.grad(forward)))(extreme, x)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
