"""The EBM problems: toy mixtures, quadrature against analytic log Z, the MLP energy, digits."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from maxent_gan.models.digits import load_digits_data, to_pixels
from maxent_gan.models.energy import MLPEnergy, ebm_model, energy_cost
from maxent_gan.models.gaussian import quadratic_cost, quadratic_log_partition
from maxent_gan.models.mixture import mixture_cost, mixture_log_partition, mixture_params, mixture_sample
from maxent_gan.models.problems import PROBLEMS, make_problem
from maxent_gan.models.quadrature import grid_log_density, log_partition_grid
from maxent_gan.models.toys import TOYS, sample_toy, toy_bounds, toy_params


@pytest.mark.parametrize("name", list(TOYS))
def test_quadrature_matches_analytic_log_z_on_every_toy(name):
    params = toy_params(name)
    log_z = log_partition_grid(lambda x: mixture_cost(params, x), toy_bounds(name), 400)
    assert abs(float(log_z - mixture_log_partition(params))) < 1e-4


def test_quadrature_matches_a_correlated_gaussian():
    params = {"loc": jnp.array([0.3, -0.2]), "precision": jnp.array([[2.0, 0.8], [0.8, 1.0]])}
    log_z = log_partition_grid(lambda x: quadratic_cost(params, x), ((-8, 8), (-8, 8)), 300)
    assert abs(float(log_z - quadratic_log_partition(params))) < 1e-8


def test_grid_log_density_is_normalized():
    params = toy_params("moons")
    log_density, (xs, ys), _ = grid_log_density(lambda x: mixture_cost(params, x), toy_bounds("moons"), 200)
    area = (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert float(jax.scipy.special.logsumexp(log_density) + jnp.log(area)) == pytest.approx(0.0, abs=1e-12)


def test_mixture_log_partition_with_full_covariances_matches_quadrature():
    trils = jnp.array([[[0.5, 0.0], [0.3, 0.2]], [[0.4, 0.0], [-0.2, 0.6]]])
    params = mixture_params(jnp.array([[-1.0, 0.0], [1.0, 0.5]]), trils, weights=jnp.array([0.3, 0.7]))
    log_z = log_partition_grid(lambda x: mixture_cost(params, x), ((-6, 6), (-6, 6)), 400)
    assert abs(float(log_z - mixture_log_partition(params))) < 1e-8


def test_mixture_sampler_matches_mixture_moments():
    params = mixture_params(jnp.array([[-2.0, 0.0], [2.0, 1.0]]), jnp.array([0.5, 1.0]), weights=jnp.array([1.0, 3.0]))
    x = mixture_sample(jax.random.key(0), params, (200_000,))
    mean = 0.25 * jnp.array([-2.0, 0.0]) + 0.75 * jnp.array([2.0, 1.0])
    np.testing.assert_allclose(x.mean(0), mean, atol=0.02)


@pytest.mark.parametrize(
    ("bounds", "resolution", "message"),
    [(((1, 0), (0, 1)), 10, "min < max"), (((0, 1), (0, float("nan"))), 10, "finite"),
     ((0, 1), 10, "expected \\(\\(xmin"), (((0, 1), (0, 1)), 1, "resolution")],
    ids=["reversed", "nan", "shape", "resolution"],
)
def test_quadrature_rejects_bad_boxes(bounds, resolution, message):
    with pytest.raises(ValueError, match=message):
        log_partition_grid(lambda x: jnp.sum(x**2, -1), bounds, resolution)


def test_toys_are_seeded_and_unknown_names_list_the_valid_ones():
    a, b = sample_toy(jax.random.key(5), "rings", 100), sample_toy(jax.random.key(5), "rings", 100)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="valid: rings, 8gaussians, moons, checkerboard, pinwheel"):
        sample_toy(jax.random.key(0), "spiral", 10)
    with pytest.raises(ValueError, match="problem: unknown name 'spiral'; valid: gaussian, rings"):
        make_problem("spiral")


@pytest.mark.parametrize("name", [n for n in PROBLEMS if n not in ("gaussian",)])
def test_problems_give_train_and_test_data_of_their_dimension(name):
    problem = make_problem(name)
    train, test = problem.data(jax.random.key(0), 50, 20)
    assert train.shape[1] == test.shape[1] == problem.dim
    assert bool(jnp.all(jnp.isfinite(train)))


def test_mlp_energy_has_no_final_bias_and_is_confined():
    energy = MLPEnergy(jax.random.key(0), 2, confinement=2.0)
    assert energy.mlp.layers[-1].bias is None  # a free additive constant is unidentified (gauge)
    far = jnp.array([[50.0, -50.0]])
    assert float(energy_cost(energy, far)[0]) > 100.0  # the quadratic term wins far out: Z is finite
    x = jax.random.normal(jax.random.key(1), (7, 3, 2))
    assert energy_cost(energy, x).shape == (7, 3)


def test_ebm_model_observes_data_through_the_unnormalized_energy():
    from maxent_gan.models.unnormalized import Unnormalized

    data = sample_toy(jax.random.key(0), "moons", 30)
    model_trace = numpyro.handlers.trace(numpyro.handlers.seed(ebm_model, 0)).get_trace(
        data, energy=MLPEnergy(jax.random.key(0), 2))
    site = model_trace["x"]
    assert site["is_observed"] and site["value"].shape == (30, 2)
    assert isinstance(site["fn"].base_dist if hasattr(site["fn"], "base_dist") else site["fn"], Unnormalized)
    priors = [name for name, s in model_trace.items() if s["type"] == "sample" and not s["is_observed"]]
    assert priors and all(name.startswith("energy/") for name in priors)


def test_digits_are_dequantized_standardized_and_round_trip_to_pixels():
    digits = load_digits_data(jax.random.key(0))
    assert digits.train.shape == (1438, 64) and digits.test.shape == (359, 64)
    np.testing.assert_allclose(digits.train.mean(0), 0.0, atol=1e-6)
    pixels = to_pixels(digits.train[:5], digits.loc, digits.scale)
    assert pixels.shape == (5, 8, 8) and pixels.min() >= 0 and pixels.max() <= 1
    raw = np.asarray(digits.train * digits.scale + digits.loc) * 17  # dequantized: integer + U(0, 1)
    assert np.all((raw - np.floor(raw) > 0) | (raw == np.floor(raw)))
    assert len(np.unique(np.round(raw[:, 20], 6))) > 100  # continuous, not 17 levels


def test_energy_module_trains_with_equinox_filters():
    energy = MLPEnergy(jax.random.key(0), 2)
    grads = eqx.filter_grad(lambda e: jnp.mean(energy_cost(e, jnp.ones((4, 2)))))(energy)
    assert math.isfinite(float(jnp.sum(grads.mlp.layers[0].weight)))
