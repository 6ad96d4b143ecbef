"""Bad input: a ValueError that names the argument, before any work; warnings when unreliable."""

import jax.numpy as jnp
import numpy as np
import pytest
from maxent_gan.inference.app.recipes import make_proposal
from maxent_gan.inference.estimators import elbo, iwae, log_z_importance, log_z_mixture
from maxent_gan.inference.objectives import cost_loss, discriminator_loss, generator_loss, sampler_loss
from maxent_gan.inference.proposals import DefensiveMixture, Gaussian
from maxent_gan.models import gaussian_target_params, make_problem, quadratic_energy

GOOD = np.linspace(0.0, 1.0, 30)


def with_bad(position, bad, arity):
    args = [GOOD] * arity
    args[position] = bad
    return args


BAD_VALUES = {
    "nan": np.where(np.arange(30) == 7, np.nan, GOOD),
    "inf": np.where(np.arange(30) == 3, np.inf, GOOD),
    "empty": np.array([]),
    "2d": GOOD.reshape(5, 6),
}

TWO = [("log_z_importance", log_z_importance, ["costs", "log_q"]),
       ("elbo", elbo, ["costs", "log_q"]),
       ("sampler_loss", sampler_loss, ["cost_samples", "log_q_samples"])]
FOUR = [("log_z_mixture", log_z_mixture, ["cost_data", "cost_samples", "log_q_data", "log_q_samples"])]
CASES = [(fn_name, fn, names, i) for fn_name, fn, names in TWO + FOUR for i in range(len(names))]


@pytest.mark.parametrize("kind", list(BAD_VALUES))
@pytest.mark.parametrize(("fn_name", "fn", "names", "position"), CASES, ids=[f"{c[0]}-{c[2][c[3]]}" for c in CASES])
def test_bad_array_names_the_argument(fn_name, fn, names, position, kind):
    with pytest.raises(ValueError, match=f"^{names[position]}: "):
        fn(*with_bad(position, BAD_VALUES[kind], len(names)))


def test_nan_error_says_where():
    with pytest.raises(ValueError, match="1 non-finite value.*first at index 7"):
        log_z_importance(BAD_VALUES["nan"], GOOD)


@pytest.mark.parametrize("fn", [log_z_importance, elbo, sampler_loss])
def test_mismatched_shapes_are_reported(fn):
    with pytest.raises(ValueError, match=r"expected shape \(30,\).*got \(29,\)"):
        fn(GOOD, GOOD[:29])


def test_objectives_check_their_inputs():
    with pytest.raises(ValueError, match="^log_q_data: .*shape"):
        discriminator_loss(GOOD, GOOD, GOOD[:3], GOOD, 0.0)
    with pytest.raises(ValueError, match="^log_z: expected a scalar"):
        cost_loss(GOOD, GOOD, GOOD, GOOD, jnp.zeros(2))
    with pytest.raises(ValueError, match="^log_z: expected a finite scalar"):
        generator_loss(GOOD, GOOD, np.nan)


@pytest.mark.parametrize("k", [0, 7, 2.0, -1, True])
def test_iwae_rejects_a_bad_group_size(k):
    with pytest.raises(ValueError, match="^k: "):
        iwae(GOOD, GOOD, k)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="problem: unknown name 'nope'; valid: gaussian"):
        make_problem("nope")
    target = quadratic_energy(gaussian_target_params(2))
    with pytest.raises(ValueError, match="proposal: unknown name 'nope'; valid: exact-sampler, broad"):
        make_proposal("nope", None, target)


def test_bad_proposal_parameters():
    with pytest.raises(ValueError, match="^scale: "):
        make_proposal("broad", None, quadratic_energy(gaussian_target_params(2)), scale=-1.0)
    with pytest.raises(ValueError, match="^scale_tril: .*positive diagonal"):
        Gaussian.isotropic(2, 0.0)
    with pytest.raises(ValueError, match="^covariance: "):
        Gaussian.from_covariance(jnp.zeros(2), -jnp.eye(2))
    with pytest.raises(ValueError, match="^weight: "):
        DefensiveMixture(Gaussian.isotropic(2, 1.0), Gaussian.isotropic(2, 2.0), weight=1.5)
    with pytest.raises(ValueError, match=r"^x: expected points of shape \(n, 2\)"):
        Gaussian.isotropic(2, 1.0).log_prob(jnp.zeros((4, 3)))
    with pytest.raises(ValueError, match="^n: "):
        Gaussian.isotropic(2, 1.0).sample(None, 0)
    with pytest.raises(ValueError, match="^dim: "):
        gaussian_target_params(0)
