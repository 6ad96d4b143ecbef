"""Mixture proposals: a Gaussian mixture, the defensive mixture with a broad proposal, and the anchor mixture (MIS)."""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.typing import ArrayLike
from maxent_gan.inference._validation import require
from maxent_gan.inference.proposals.base import Proposal, check_count, check_points, compiled_when_eager

__all__ = ["AnchorMixture", "DefensiveMixture", "GaussianMixture"]


class GaussianMixture(eqx.Module):
    """:math:`q = \\sum_k \\pi_k N(m_k, L_k L_k^\\top)`, ``pi = softmax(logits)``.

    Density and draws from NumPyro's ``MixtureSameFamily`` (log-sum-exp over components).
    """

    reparameterized: ClassVar[bool] = False  # the component of a draw is picked discretely

    logits: jax.Array
    locs: jax.Array
    lower: jax.Array
    log_diag: jax.Array

    def __init__(self, weights: ArrayLike, locs: ArrayLike, scale_trils: ArrayLike):
        weights, locs, scale_trils = jnp.asarray(weights), jnp.asarray(locs), jnp.asarray(scale_trils)
        if locs.ndim != 2:
            raise ValueError(f"locs: expected shape (K, d), got {locs.shape}")
        num, dim = locs.shape
        if weights.shape != (num,):
            raise ValueError(f"weights: expected {num} mixture weights, got shape {weights.shape}")
        require(weights > 0, "weights: expected positive mixture weights")
        if scale_trils.shape != (num, dim, dim):
            raise ValueError(f"scale_trils: expected shape {(num, dim, dim)}, got {scale_trils.shape}")
        diag = jnp.diagonal(scale_trils, axis1=-2, axis2=-1)
        require(diag > 0, "scale_trils: expected lower-triangular factors with positive diagonals")
        dtype = jnp.result_type(locs.dtype, jnp.zeros(()).dtype)
        self.logits = jnp.log(weights / weights.sum()).astype(dtype)
        self.locs = locs.astype(dtype)
        self.lower = jnp.tril(scale_trils, -1).astype(dtype)
        self.log_diag = jnp.log(diag).astype(dtype)

    @property
    def dim(self) -> int:
        return self.locs.shape[-1]

    @property
    def scale_trils(self) -> jax.Array:
        eye = jnp.eye(self.dim, dtype=self.locs.dtype)
        return jnp.tril(self.lower, -1) + eye * jnp.exp(self.log_diag)[..., None, :]

    def distribution(self) -> dist.Distribution:
        return dist.MixtureSameFamily(
            dist.Categorical(logits=self.logits), dist.MultivariateNormal(self.locs, scale_tril=self.scale_trils)
        )

    @compiled_when_eager
    def sample(self, key: jax.Array, n: int) -> jax.Array:
        check_count(n)
        return self.distribution().sample(key, (n,))

    @compiled_when_eager
    def log_prob(self, x: jax.Array) -> jax.Array:
        check_points("x", x, self.dim)
        return self.distribution().log_prob(x)

    @compiled_when_eager
    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        x = self.sample(key, n)
        return x, self.log_prob(x)


class DefensiveMixture(eqx.Module):
    """:math:`q = (1-\\alpha)\\, q_{learned} + \\alpha\\, q_{broad}` (Hesterberg 1995).

    The broad component bounds the weights where the learned one misses mass of p:
    :math:`w \\le p / (\\alpha q_{broad})`. Draws are i.i.d. from the mixture.
    """

    reparameterized: ClassVar[bool] = False  # the component of a draw is picked discretely

    proposal: Proposal
    broad: Proposal
    weight: float = eqx.field(static=True)

    def __init__(self, proposal: Proposal, broad: Proposal, weight: float = 0.1):
        for name, value in (("proposal", proposal), ("broad", broad)):
            if not isinstance(value, Proposal):
                raise TypeError(f"{name}: expected a proposal with sample/log_prob/sample_and_log_prob")
        if not 0.0 < float(weight) < 1.0:
            raise ValueError(f"weight: expected the broad component's weight in (0, 1), got {weight!r}")
        self.proposal, self.broad, self.weight = proposal, broad, float(weight)

    @compiled_when_eager
    def log_prob(self, x: jax.Array) -> jax.Array:
        return jnp.logaddexp(
            math.log1p(-self.weight) + self.proposal.log_prob(x), math.log(self.weight) + self.broad.log_prob(x)
        )

    @compiled_when_eager
    def sample(self, key: jax.Array, n: int) -> jax.Array:
        check_count(n)
        key_pick, key_learned, key_broad = jax.random.split(key, 3)
        use_broad = jax.random.bernoulli(key_pick, self.weight, (n,))
        learned, broad = self.proposal.sample(key_learned, n), self.broad.sample(key_broad, n)
        return jnp.where(use_broad.reshape((n,) + (1,) * (learned.ndim - 1)), broad, learned)

    @compiled_when_eager
    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        x = self.sample(key, n)
        return x, self.log_prob(x)


class AnchorMixture(eqx.Module):
    """Equal-weight mixture of ``K`` proposals of one family, each fitted at its own anchor θ_k, with
    stratified draws: multiple importance sampling with the balance heuristic (Veach & Guibas 1995;
    Owen & Zhou 2000).

    ``components`` is one proposal whose array leaves carry a leading axis of length ``K``
    (:meth:`stack` builds it from a list). ``sample(n)`` takes ``n // K`` draws from every component
    and the remaining ``n % K`` from distinct components picked uniformly, so each draw is marginally
    from :math:`q_{mix} = \\frac1K \\sum_k q_k` and

    .. math:: \\hat Z(\\theta) = \\frac1n \\sum_j \\frac{\\tilde p_\\theta(x_j)}{q_{mix}(x_j)}

    is unbiased at every θ. The draws are fixed once (common random numbers), so inside a posterior
    :math:`\\log \\hat Z(\\theta)` is a smooth function of θ however the components were fitted; its
    bias is that of the log of an unbiased estimate, about :math:`-1/(2\\,ESS(\\theta))`. At a θ near an
    anchor the weights are at most ``K`` times those of that anchor's own component
    (:math:`q_{mix} \\ge q_k / K`), so a θ-following family needs only a few anchors spread over the
    posterior. Not reparameterized: the component of a draw is picked discretely.
    """

    components: Proposal
    num_components: int = eqx.field(static=True)
    reparameterized: bool = eqx.field(static=True, default=False)

    def __init__(self, components: Proposal, num_components: int):
        if not isinstance(components, Proposal):
            raise TypeError("components: expected a proposal with sample/log_prob/sample_and_log_prob, "
                            "its array leaves stacked along a leading axis")
        check_count(num_components)
        leaves = eqx.filter(jax.tree.leaves(components), eqx.is_array)
        bad = [leaf.shape for leaf in leaves if leaf is not None and (leaf.ndim == 0 or leaf.shape[0] != num_components)]
        if bad:
            raise ValueError(f"components: every array leaf needs a leading axis of length {num_components}; "
                             f"got leaves of shape {bad[0]}")
        self.components, self.num_components = components, int(num_components)

    @classmethod
    def stack(cls, proposals) -> AnchorMixture:
        """The mixture of a list of proposals of one family (same structure, same static fields)."""
        proposals = list(proposals)
        if not proposals:
            raise ValueError("proposals: expected at least one proposal, got none")
        arrays, static = eqx.partition(proposals[0], eqx.is_array)
        for i, q in enumerate(proposals[1:], start=1):
            if jax.tree.structure(eqx.partition(q, eqx.is_array)[0]) != jax.tree.structure(arrays):
                raise ValueError(f"proposals: proposal {i} is not of the same family as proposal 0")
        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *[eqx.partition(q, eqx.is_array)[0] for q in proposals])
        return cls(eqx.combine(stacked, static), len(proposals))

    def component(self, k: int) -> Proposal:
        """The ``k``-th component as a proposal of its own."""
        arrays, static = eqx.partition(self.components, eqx.is_array)
        return eqx.combine(jax.tree.map(lambda a: a[k], arrays), static)

    def component_log_probs(self, x: jax.Array) -> jax.Array:
        """:math:`\\log q_k(x_j)` of every component, ``(K, n)`` (the control variates of the
        ``"mis-cv"`` estimator, :func:`maxent_gan.inference.estimators.mixture_controls`)."""
        return eqx.filter_vmap(lambda q: q.log_prob(x))(self.components)

    def log_prob(self, x: jax.Array) -> jax.Array:
        return jax.nn.logsumexp(self.component_log_probs(x), axis=0) - math.log(self.num_components)

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        check_count(n)
        K = self.num_components
        per, rest = divmod(n, K)
        key_draws, key_pick = jax.random.split(key)
        m = per + (rest > 0)
        keys = jax.random.split(key_draws, K)
        draws = eqx.filter_vmap(lambda q, k: q.sample(k, m))(self.components, keys)  # (K, m, ...)
        parts = [draws[:, :per].reshape((K * per,) + draws.shape[2:])] if per else []
        if rest:
            picked = jax.random.choice(key_pick, K, (rest,), replace=False)
            parts.append(draws[picked, per])
        return jnp.concatenate(parts) if len(parts) > 1 else parts[0]

    def sample_and_log_prob(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        x = self.sample(key, n)
        return x, self.log_prob(x)
