"""The normalizing handler (Bayesian IRL and EBMs).

``normalized(model, proposal, num_draws, key)`` finds every observed site whose distribution is
:class:`~maxent_gan.models.unnormalized.Unnormalized` and replaces it by the same density minus
:math:`\\log \\hat Z(\\theta)` per observation, so the joint gains :math:`-N \\log \\hat Z(\\theta)`
exactly once (not once per plate element) and pointwise log-likelihoods stay right for LOO.
The proposal draws are taken once, when the handler is built (common random numbers), so the
log density is a smooth deterministic function of θ and NUTS can run on it. A θ-conditional
proposal (:mod:`maxent_gan.inference.proposals.conditional`) follows θ instead: its base draws ε are fixed
once and the draws move with θ, :math:`x_j(\\theta) = T_\\phi(\\varepsilon_j;\\theta)`, still smooth in θ.

The bias of both: at each θ, :math:`\\log\\hat Z(\\theta)` is the log of an unbiased importance
estimate with ``num_draws`` draws, so it is biased low by about :math:`\\mathrm{Var}[w]/(2 M \\bar w^2)`
(Jensen; half the squared relative error of :math:`\\hat Z`), and because the draws are fixed its
error is one fixed random function of θ, not fresh noise per θ: NUTS samples the exact posterior
of that fixed approximation, whose gradient error, times the number of observations, is what
moves the posterior. A proposal that follows θ keeps the weights flat at every θ, so that error
stays small where the posterior lives, instead of only near the θ the sampler was trained at.

Estimators: ``"importance"`` (plain IS with the fixed draws), ``"mis-cv"`` (for an
:class:`~maxent_gan.inference.proposals.AnchorMixture`: multiple importance sampling with its components as
control variates, :func:`~maxent_gan.inference.estimators.log_z_mis_cv`; the controls are fixed with the draws,
so each θ adds a regression on ``K - 1`` fixed columns: a few passes over the ``(n, K - 1)`` controls
and two small triangular solves), ``"mixture"`` (the data + draws
fixed point, ``log_z_mixture``), ``"exact"`` (the site's own exact ``log_normalizer``: the gold
standard where a problem has one). Written by hand on ``numpyro.primitives.Messenger``.

A caution on ``"mixture"`` inside a posterior (``sample_posterior`` refuses it; here it stays for
evaluating the GCL objective's log density): the data enter their own normalizer, so each
observation's term is bounded by :math:`\\hat Z/N` and the likelihood keeps growing as the cost
family separates the data from the draws (the estimate drifts toward the empirical
distribution). On the gridworld with a cloned policy NUTS ran off to |θ| > 1000 that way,
k-hat > 40 flagging it. Use ``"importance"`` with a good proposal for posteriors.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import equinox as eqx
import jax
import numpy as np
import numpyro.distributions as dist
from maxent_gan.inference.normalizers import Estimator, Importance, as_estimator
from maxent_gan.inference.proposals.conditional import is_conditional
from maxent_gan.models.unnormalized import Unnormalized
from numpyro.primitives import Messenger

__all__ = ["NormalizedSite", "normalized", "shard_rows"]


def shard_rows(tree, devices=None):
    """Place every array of ``tree`` on ``devices`` (default: all), split along its first axis."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.asarray(jax.devices() if devices is None else devices), ("rows",))
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec("rows")))


class NormalizedSite(dist.Distribution):
    """An :class:`Unnormalized` density divided by a normalizer: ``log_prob = base.log_prob - log_z``."""

    pytree_data_fields = ("base", "log_z")

    def __init__(self, base: Unnormalized, log_z: jax.Array):
        self.base, self.log_z = base, log_z
        super().__init__(batch_shape=base.batch_shape, event_shape=base.event_shape)

    @property
    def support(self):
        return self.base.support

    def log_prob(self, x):
        return self.base.unnormalized_log_prob(x) - self.log_z

    def sample(self, key, sample_shape=()):
        return self.base.sample(key, sample_shape)


def _prepare(estimator: Estimator, proposal, draws: jax.Array, log_q: jax.Array):
    # one compiled program; what is not an array in the proposal and the estimator is its static key, so a
    # proposal or estimator with an unhashable part (a plain, unfrozen dataclass) is prepared eagerly
    try:
        hash((estimator, *jax.tree.leaves(eqx.filter(proposal, eqx.is_array, inverse=True))))
    except TypeError:
        return estimator.prepare(proposal, draws, log_q)
    return _prepare_compiled(estimator, proposal, draws, log_q)


@eqx.filter_jit
def _prepare_compiled(estimator: Estimator, proposal, draws: jax.Array, log_q: jax.Array):
    return estimator.prepare(proposal, draws, log_q)


class normalized(Messenger):  # noqa: N801 (a NumPyro handler: lower case, like numpyro.handlers.*)
    """Add :math:`-N\\log\\hat Z(\\theta)` for every observed :class:`Unnormalized` site of ``model``.

    Args:
        model: a NumPyro model function.
        proposal: any proposal (``sample_and_log_prob``, ``log_prob``), relative to the site's
            base measure; unused (may be ``None``) with ``estimator=Exact()``.
        num_draws: proposal draws, taken once (the name every API uses for proposal draws; NUTS
            draws are ``num_samples`` in ``sample_posterior``, as in NumPyro).
        key: the key of those draws.
        estimator: how :math:`\\log\\hat Z(\\theta)` is estimated, an
            :class:`~maxent_gan.inference.normalizers.Estimator` (default ``Importance()``; ``MISControlVariates()``
            for an anchor mixture, ``Mixture()``, ``Exact()``).
        shard: spread the draws over all of ``jax.devices()`` along their first axis
            (``jax.sharding``): every cost evaluation then runs on all devices at once.
            ``num_draws`` must be a multiple of the device count.
    """

    def __init__(self, fn=None, proposal=None, num_draws: int = 4000, key: jax.Array | None = None, *,
                 estimator: Estimator | None = None, shard: bool = False):
        estimator = Importance() if estimator is None else as_estimator(estimator)
        estimator.check(proposal, shard=shard)
        self.draws = self.log_q = self.prepared = self.eps = None
        if estimator.uses_draws:
            if key is None:
                raise ValueError("key: the proposal draws need a key (they are drawn once, here)")
            if not isinstance(num_draws, int | np.integer) or (num_draws := int(num_draws)) < 2:  # a static shape
                raise ValueError(f"num_draws: expected an integer >= 2, got {num_draws!r}")
            devices = jax.devices()
            if shard and num_draws % len(devices):
                raise ValueError(f"num_draws: {num_draws} draws cannot be sharded evenly over "
                                 f"{len(devices)} devices; use a multiple of {len(devices)}")
            if is_conditional(proposal):
                # a θ-conditional proposal: fix the base draws ε, move x_j(θ) = T(ε_j; θ) with θ
                self.eps, self.draws, self.log_q = proposal.base_draws(key, num_draws), None, None
                if shard:
                    self.eps = shard_rows(self.eps, devices)
            else:
                # drawn eagerly: under jit the LQR anchor mixture's draws and densities, as one program, never
                # finished under XLA:CPU's older loop emitters (the suite's --xla_cpu_use_fusion_emitters=false);
                # what the estimator prepares is one program (a mixture's component densities, eagerly, ran
                # op by op: 8 s of the gridworld comparison)
                self.draws, self.log_q = proposal.sample_and_log_prob(key, num_draws)
                self.prepared = _prepare(estimator, proposal, self.draws, self.log_q)
                if shard:
                    self.draws, self.log_q = shard_rows((self.draws, self.log_q), devices)
        self.proposal, self.estimator = proposal, estimator
        super().__init__(fn)

    def fixed(self) -> tuple:
        """The arrays fixed when the handler was built: ``(draws, log_q, prepared, eps)`` (``None`` where a
        strategy has none; ``eps`` are a θ-conditional proposal's base draws)."""
        return self.draws, self.log_q, self.prepared, self.eps

    @contextmanager
    def holding(self, fixed: tuple):
        """Inside: the handler reads ``fixed`` (:meth:`fixed`'s tuple, e.g. the arguments of a jitted function)
        in place of its own arrays. A program that closes over the handler bakes its draws into the program as
        constants (16 000 trajectories: 0.6 s more compile for each program, and tens of megabytes in each
        cached program); passed as arguments through this, they are inputs like any other."""
        saved = self.fixed()
        self.draws, self.log_q, self.prepared, self.eps = fixed
        try:
            yield self
        finally:
            self.draws, self.log_q, self.prepared, self.eps = saved

    def draws_at(self, site: Unnormalized) -> tuple[jax.Array, jax.Array]:
        """The proposal draws and their log q at the site's θ: the fixed draws, or, for a
        θ-conditional proposal, :math:`T(\\varepsilon_j;\\theta)` of the fixed base draws."""
        if is_conditional(self.proposal):
            return self.proposal.transform(self.eps, site.params)
        return self.draws, self.log_q

    def log_q_at(self, site: Unnormalized, points: jax.Array) -> jax.Array:
        """log q of ``points`` (at the site's θ for a θ-conditional proposal)."""
        if is_conditional(self.proposal):
            return self.proposal.log_prob(points, site.params)
        return self.proposal.log_prob(points)

    def log_normalizer(self, site: Unnormalized, data: jax.Array) -> jax.Array:
        """:math:`\\log \\hat Z(\\theta)` of one site at its current parameters, by the estimator."""
        draws, log_q = self.draws_at(site) if self.estimator.uses_draws else (None, None)
        return self.estimator.log_normalizer(site, draws, log_q, self.prepared, data,
                                             lambda points: self.log_q_at(site, points))

    def __enter__(self):
        self._replaced = 0
        return super().__enter__()

    def __exit__(self, exc_type, exc_value, traceback):
        if exc_type is None and not self._replaced:
            warnings.warn("normalized: the model has no observed Unnormalized site, so the handler changed "
                          "nothing (observe the data through models.Unnormalized)", UserWarning, stacklevel=2)
        return super().__exit__(exc_type, exc_value, traceback)

    def process_message(self, msg):
        if msg["type"] != "sample" or not msg["is_observed"]:
            return
        fn = msg["fn"]
        # plates inside the model act first, so the site may arrive expanded (an isinstance test on it alone would silently do nothing)
        base = fn.base_dist if isinstance(fn, dist.ExpandedDistribution) else fn
        if not isinstance(base, Unnormalized):
            return
        # replace the density, never add a factor here: a factor would land inside the plate (trap 2)
        site = NormalizedSite(base, self.log_normalizer(base, msg["value"]))
        self._replaced += 1
        msg["fn"] = site.expand(fn.batch_shape) if fn is not base else site
