"""The normalizing handler against a conjugate posterior that accounts for Z(θ) exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from maxent_gan.inference.handler import normalized
from maxent_gan.inference.normalizers import Exact, Importance, Mixture
from maxent_gan.inference.proposals import Gaussian
from maxent_gan.models.unnormalized import MissingNormalizerWarning, Unnormalized
from numpyro.infer import MCMC, NUTS
from numpyro.infer.util import log_density, log_likelihood

DIM = 2


def isotropic_energy(precision):
    # exp(-½ prec |x|²) in 2D: Z = 2π / prec, known so that the exact estimator can be checked too
    return Unnormalized(lambda p, x: 0.5 * p * jnp.sum(x**2, -1), precision, event_shape=(DIM,),
                        log_normalizer=jnp.log(2 * jnp.pi) - jnp.log(precision))


def model(x):
    precision = numpyro.sample("precision", dist.Gamma(2.0, 1.0))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("x", isotropic_energy(precision), obs=x)


@pytest.fixture(scope="module")
def data():
    return jax.random.normal(jax.random.key(0), (200, DIM)) / jnp.sqrt(3.0)


def conjugate(data):
    # prior Gamma(2, 1) times prec^N exp(-prec Σ|x|²/2): Gamma(2 + N, 1 + Σ|x|²/2)
    a, b = 2.0 + data.shape[0] * DIM / 2, 1.0 + 0.5 * float(jnp.sum(data**2))
    return a / b, np.sqrt(a) / b


@pytest.mark.parametrize("estimator", [Exact(), Importance(), Mixture()], ids=lambda e: e.name)
def test_joint_has_minus_n_log_z_exactly_once(estimator, data):
    proposal = Gaussian.isotropic(DIM, 0.8)
    handled = normalized(model, proposal, 4000, jax.random.key(1), estimator=estimator)
    precision = 2.7
    joint, _ = log_density(handled, (data,), {}, {"precision": precision})
    with pytest.warns(MissingNormalizerWarning):  # the plain model: the unhandled likelihood
        plain, _ = log_density(model, (data,), {}, {"precision": precision})
    site = isotropic_energy(precision)
    if estimator == Exact():
        log_z = jnp.log(2 * jnp.pi) - jnp.log(precision)
    elif estimator == Importance():  # recomputed from the handler's own fixed draws
        log_z = jax.nn.logsumexp(-site.cost(handled.draws) - handled.log_q) - jnp.log(4000.0)
    else:
        from maxent_gan.inference.estimators import log_z_mixture

        log_z = log_z_mixture(site.cost(data), site.cost(handled.draws), proposal.log_prob(data), handled.log_q).log_z
    # the correction is -N log Ẑ(θ), once (not once per plate element)
    assert abs((joint - plain) - (-data.shape[0] * log_z)) < 1e-9
    # and the estimate itself is close to the exact 2π/θ
    assert abs(log_z - (jnp.log(2 * jnp.pi) - jnp.log(precision))) < 0.02


def test_a_proposal_that_cannot_be_hashed_is_served_and_its_draws_are_held_as_arguments(data):
    """A user's proposal may be a plain (unfrozen) dataclass, which has no hash: the handler prepares it without
    compiling (a static argument must hash). Its draws then go through ``holding`` as a jitted function's
    arguments and give the same log joint as the handler's own."""
    import dataclasses

    @dataclasses.dataclass
    class Plain:
        scale: float = 0.8

        def sample_and_log_prob(self, key, n):
            x = self.scale * jax.random.normal(key, (n, DIM))
            return x, self.log_prob(x)

        def log_prob(self, x):
            return jax.scipy.stats.norm.logpdf(x, 0.0, self.scale).sum(-1)

    handled = normalized(model, Plain(), 4000, jax.random.key(1))
    joint = log_density(handled, (data,), {}, {"precision": 2.7})[0]

    def held(fixed, precision):
        with handled.holding(fixed):
            return log_density(handled, (data,), {}, {"precision": precision})[0]

    other = normalized(model, Plain(), 4000, jax.random.key(2)).fixed()
    assert abs(jax.jit(held)(handled.fixed(), 2.7) - joint) < 1e-9
    assert abs(jax.jit(held)(other, 2.7) - joint) > 1e-6  # the draws held are the ones read


def test_nuts_on_the_handled_model_matches_the_conjugate_posterior(data):
    mean, sd = conjugate(data)
    # IS with fixed draws shifts the posterior by about N·∂(log Ẑ error)/∂θ: 2·10⁴ draws keep that
    # well under the Monte Carlo error here (at 4000 it is about 0.3 sd)
    for estimator in (Exact(), Importance()):
        handled = normalized(model, Gaussian.isotropic(DIM, 0.8), 20_000, jax.random.key(2), estimator=estimator)
        mcmc = MCMC(NUTS(handled), num_warmup=300, num_samples=1000, progress_bar=False)
        mcmc.run(jax.random.key(3), data)
        draws = mcmc.get_samples()["precision"]
        # Monte Carlo error of the mean with ~300 effective draws, plus the IS bias allowance
        assert abs(float(draws.mean()) - mean) < 0.3 * sd, (estimator, float(draws.mean()), mean)
        assert abs(float(draws.std()) - sd) < 0.3 * sd


def test_without_the_handler_the_posterior_is_wrong_and_says_so(data):
    # the classic bug the library exists to prevent: the unnormalized likelihood drives prec to 0
    mean, sd = conjugate(data)
    mcmc = MCMC(NUTS(model), num_warmup=300, num_samples=500, progress_bar=False)
    with pytest.warns(MissingNormalizerWarning, match="ignores the normalizer"):
        mcmc.run(jax.random.key(4), data)
    assert abs(float(mcmc.get_samples()["precision"].mean()) - mean) > 10 * sd


def test_the_handled_model_does_not_warn(data):
    import warnings

    handled = normalized(model, Gaussian.isotropic(DIM, 0.8), 500, jax.random.key(5))
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingNormalizerWarning)
        log_density(handled, (data,), {}, {"precision": 2.0})


def test_pointwise_log_likelihood_has_one_value_per_observation(data):
    handled = normalized(model, None, estimator=Exact())
    values = log_likelihood(handled, {"precision": jnp.array([1.0, 3.0])}, data)["x"]
    assert values.shape == (2, data.shape[0])
    expected = -1.5 * jnp.sum(data**2, -1) - (jnp.log(2 * jnp.pi) - jnp.log(3.0))
    assert jnp.allclose(values[1], expected, atol=1e-10)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="estimator: expected an Estimator .*, got 'nope'; pass one of Importance\\(\\), "
                                         "MISControlVariates\\(\\), Mixture\\(\\), Exact\\(\\)"):
        normalized(model, None, estimator="nope")
    with pytest.raises(ValueError, match="got 'exact'; pass Exact\\(\\)"):  # names are the command line's
        normalized(model, None, estimator="exact")
    with pytest.raises(ValueError, match="proposal: the 'importance' estimator needs a proposal"):
        normalized(model, None, 100, jax.random.key(0))
    with pytest.raises(ValueError, match="key: the proposal draws need a key"):
        normalized(model, Gaussian.isotropic(DIM, 1.0), 100, None)
