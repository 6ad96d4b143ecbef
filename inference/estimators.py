"""Estimators of log Z from costs and proposal densities, in log space.

All take *costs* :math:`c(x)` (not negative energies) and proposal log densities
:math:`\\log q(x)` relative to the problem's base measure; all return NamedTuples that
carry ESS and Pareto k-hat beside the value. Inputs are checked at Python time (shapes
always; NaN/inf when the values are concrete), so they also run under ``jit``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.nn import log_sigmoid
from jax.scipy.special import logsumexp
from jax.typing import ArrayLike
from maxent_gan.inference._validation import check_same_length, check_vector
from maxent_gan.inference.diagnostics import (
    ForwardCheck,
    effective_sample_size,
    forward_check,
    pareto_k_hat,
    unreliable_reasons,
)
from maxent_gan.models._jit import compiled_when_eager

__all__ = [
    "BoundEstimate",
    "LogZEstimate",
    "elbo",
    "iwae",
    "log_mean_exp",
    "CV_FLOOR",
    "MixtureControls",
    "controlled_weights",
    "log_mean_controlled",
    "log_z_importance",
    "log_z_mis_cv",
    "log_z_mixture",
    "mixture_controls",
    "mixture_log_weights",
]


MIN_OVERLAP = 0.01  # below it the mixture estimate rests on the tails of data and draws


class LogZEstimate(NamedTuple):
    """An estimate of log Z with its importance-weight diagnostics.

    ``forward`` is the forward check over points from the target (data or exact draws), where the
    caller gave them (:func:`maxent_gan.inference.diagnostics.forward_check`); ``reliable`` applies the
    library's one rule (:func:`maxent_gan.inference.diagnostics.unreliable_reasons`) to both.
    """

    log_z: jax.Array
    ess: jax.Array
    k_hat: jax.Array
    log_weights: jax.Array
    forward: ForwardCheck | None = None
    overlap: jax.Array | None = None  # the mixture estimate's: 2(1 - mean discriminator on the data)

    def unreliable_reasons(self) -> list[str]:
        """Why the estimate is unreliable under the library's rule (empty: reliable). The verdict travels
        in the result: the estimators never warn (eager and jitted calls agree); the edges that a
        person reads (``sample_posterior``, the command line) do."""
        reasons = unreliable_reasons(self.k_hat, self.ess, self.log_weights.shape[0], forward=self.forward)
        if self.overlap is not None and float(self.overlap) < MIN_OVERLAP:
            reasons.append(f"data and proposal draws barely overlap (overlap {float(self.overlap):.1e} < "
                           f"{MIN_OVERLAP}): the discriminator separates them, so log Z rests on the tails of both")
        return reasons

    @property
    def reliable(self) -> bool:
        return not self.unreliable_reasons()

    @property
    def checks_run(self) -> str:
        """Which checks the rule could run, in words: without points from the target only the
        reverse check, which cannot see mass that q misses."""
        if self.forward is None:
            return "only the reverse check (q's own draws): no data for the forward check"
        return "the reverse check (q's own draws) and the forward check"


class BoundEstimate(NamedTuple):
    """A stochastic lower bound on log Z (ELBO, IWAE) with its Monte Carlo error."""

    bound: jax.Array
    stderr: jax.Array
    ess: jax.Array
    k_hat: jax.Array
    log_weights: jax.Array


@compiled_when_eager
def log_mean_exp(values: jax.Array) -> jax.Array:
    """:math:`\\log \\frac1n \\sum_i e^{v_i}`."""
    return logsumexp(values) - math.log(values.shape[0])


def _checked_pair(cost_name, costs, log_q_name, log_q):
    costs = check_vector(cost_name, costs)
    log_q = check_vector(log_q_name, log_q)
    check_same_length(log_q_name, log_q, cost_name, costs)
    return costs, log_q


def log_z_importance(costs: ArrayLike, log_q: ArrayLike, *, cost_data: ArrayLike | None = None,
                     log_q_data: ArrayLike | None = None) -> LogZEstimate:
    """Plain importance sampling, :math:`\\hat Z = \\frac1n\\sum_i e^{-c(x_i)}/q(x_i)`, x ~ q.

    Consistent, unbiased in Z, biased low in log Z (Jensen).

    Args:
        costs: (n,) costs :math:`c(x_i)` of draws from the proposal.
        log_q: (n,) proposal log densities at the same draws.
        cost_data, log_q_data: (m,) the same at points from the target (data, or exact draws),
            for the forward check (``forward``), which sees mass q misses; both or neither.
    """
    costs, log_q = _checked_pair("costs", costs, "log_q", log_q)
    if (cost_data is None) != (log_q_data is None):
        raise ValueError("cost_data, log_q_data: give both (the forward check) or neither")
    forward = None
    if cost_data is not None:
        forward = forward_check(*_checked_pair("cost_data", cost_data, "log_q_data", log_q_data))
    log_weights = -costs - log_q
    estimate = LogZEstimate(
        log_z=log_mean_exp(log_weights),
        ess=effective_sample_size(log_weights),
        k_hat=pareto_k_hat(log_weights),
        log_weights=log_weights,
        forward=forward,
    )
    return estimate


CV_FLOOR = 0.5  # the controlled estimate is floored at this fraction of plain MIS's (a larger correction is not trusted)


class MixtureControls(NamedTuple):
    """The control variates of multiple importance sampling at fixed draws from an equal-weight mixture
    (:func:`mixture_controls`): ``centered`` ``(n, K-1)``, their ``mean`` ``(K-1,)`` and the Cholesky
    factor of their Gram matrix, all independent of θ, so each θ costs ``K - 1`` dot products."""

    centered: jax.Array
    mean: jax.Array
    gram_cholesky: jax.Array


def mixture_controls(log_q: ArrayLike, log_q_components: ArrayLike) -> MixtureControls:
    """:math:`z_{jk} = q_k(x_j)/q_{mix}(x_j) - 1`, k < K, at draws :math:`x_j` of
    :math:`q_{mix} = \\frac1K\\sum_k q_k` (``log_q`` ``(n,)``, ``log_q_components`` ``(K, n)``).

    Each has mean zero under :math:`q_{mix}` because every :math:`q_k` is normalized; the K-th is
    minus the sum of the others (balance heuristic) and is left out. Bounded by ``K - 1``: a ratio of
    normalized densities, never a raw cost."""
    log_q = check_vector("log_q", log_q)
    log_q_components = jnp.asarray(log_q_components)
    if log_q_components.ndim != 2 or log_q_components.shape[1] != log_q.shape[0] or log_q_components.shape[0] < 2:
        raise ValueError(f"log_q_components: expected shape (K >= 2, {log_q.shape[0]}), got {log_q_components.shape}")
    z = jnp.exp(log_q_components[:-1] - log_q).T - 1.0
    mean = z.mean(0)
    centered = z - mean
    gram = centered.T @ centered
    # two equal components make it singular; relative to the dtype's resolution, so float32 gets one too
    relative = max(1e-12, 10 * float(jnp.finfo(gram.dtype).eps))
    ridge = relative * jnp.trace(gram) / gram.shape[0] + jnp.finfo(gram.dtype).tiny
    return MixtureControls(centered, mean, jnp.linalg.cholesky(gram + ridge * jnp.eye(gram.shape[0], dtype=gram.dtype)))


def log_mean_controlled(log_weights: jax.Array, controls: MixtureControls
                        ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(log Ẑ, floored, s)``: the log of the controlled estimate, floored at :data:`CV_FLOOR` times the
    plain MIS estimate (``floored``: whether the floor was reached; the per-draw rule then flags it), and
    the controlled weights :math:`s_j` behind it, scaled by the largest weight (:func:`controlled_weights`).
    The floor keeps :math:`-N\\log\\hat Z` bounded inside a posterior where the correction would overshoot."""
    shift, summands = controlled_weights(log_weights, controls)
    controlled, plain = jnp.mean(summands), jnp.mean(jnp.exp(log_weights - shift))
    floored = controlled < CV_FLOOR * plain
    return shift + jnp.log(jnp.where(floored, CV_FLOOR * plain, controlled)), floored, summands


def controlled_weights(log_weights: jax.Array, controls: MixtureControls) -> tuple[jax.Array, jax.Array]:
    """``(shift, s)``: the controlled weights :math:`s_j = \\tilde w_j - \\hat\\beta^\\top z_j` of
    :math:`\\tilde w_j = e^{\\log w_j - \\text{shift}}` (shift: the largest log weight), with
    :math:`\\hat\\beta` the least-squares regression of the weights on the controls. Their mean is
    :math:`\\hat Z e^{-\\text{shift}}` (:func:`log_z_mis_cv`). Smooth in the log weights."""
    shift = jax.lax.stop_gradient(jnp.max(log_weights))
    w = jnp.exp(log_weights - shift)
    beta = jax.scipy.linalg.cho_solve((controls.gram_cholesky, True), controls.centered.T @ (w - w.mean()))
    return shift, w - (controls.centered + controls.mean) @ beta


def log_z_mis_cv(costs: ArrayLike, log_q: ArrayLike, log_q_components: ArrayLike, *,
                 cost_data: ArrayLike | None = None, log_q_data: ArrayLike | None = None) -> LogZEstimate:
    """Multiple importance sampling with the mixture's components as control variates (Owen & Zhou
    2000): :math:`\\hat Z = \\frac1n\\sum_j [w_j - \\hat\\beta^\\top z_j]`, where
    :math:`w_j = e^{-c(x_j)}/q_{mix}(x_j)` and :math:`z_j` are :func:`mixture_controls`.

    Where :math:`p = \\tilde p / Z` is close to a combination :math:`\\sum_k \\beta_k q_k` of the
    components (a θ between the anchors of fitted components), the regression absorbs most of the
    weights' variance: exact when p is in their span. It is never much worse than plain MIS
    (Owen & Zhou: at most about the variance of importance sampling from the best single component,
    times K). Bias: :math:`\\hat\\beta` is fitted on the same draws, which biases :math:`\\hat Z` by
    :math:`O(K/n)`, plus the log's :math:`-\\mathrm{Var}/(2n\\bar s^2)`. Where the correction would take
    :math:`\\hat Z` below :data:`CV_FLOOR` times the plain MIS estimate (or below zero) it is floored there,
    and ``ess`` is 0 and ``k_hat`` inf, so the rule flags it.

    ``ess`` is Kish's ESS of the controlled weights :math:`s_j` (the summands of the mean: how much
    variance the controls removed); ``k_hat`` stays that of the raw weights, ``log_weights``: the
    controls are bounded by K - 1, so the right tail of the :math:`s_j`, the one that can hide mass, is
    the weights' own, and the fit on the raw weights is not perturbed by the regression's bounded term
    (the left tail of the :math:`s_j` is bounded). On the gridworld the two-tailed k-hat of the
    :math:`s_j` read above 0.7 at 29 % of posterior draws whose controlled ESS was 15 995 of 16 000.
    ``log_q`` ``(n,)`` is :math:`\\log q_{mix}`, ``log_q_components`` ``(K, n)``; the forward check
    as in :func:`log_z_importance` (``log_q_data``: :math:`\\log q_{mix}` at the data).
    """
    costs, log_q = _checked_pair("costs", costs, "log_q", log_q)
    if (cost_data is None) != (log_q_data is None):
        raise ValueError("cost_data, log_q_data: give both (the forward check) or neither")
    controls = mixture_controls(log_q, log_q_components)
    forward = None
    if cost_data is not None:
        forward = forward_check(*_checked_pair("cost_data", cost_data, "log_q_data", log_q_data))
    log_weights = -costs - log_q
    log_z, floored, summands = log_mean_controlled(log_weights, controls)
    estimate = LogZEstimate(
        log_z=log_z,
        ess=jnp.where(floored, 0.0, jnp.sum(summands) ** 2 / jnp.sum(summands**2)),
        k_hat=jnp.where(floored, jnp.inf, pareto_k_hat(log_weights)),
        log_weights=log_weights,
        forward=forward,
    )
    return estimate


def _log_mean_sigmoid(logits: jax.Array) -> jax.Array:
    """:math:`\\log \\overline{\\sigma(x)}`, accurate at both ends.

    Near 1 it is computed as :math:`\\log(1 - \\overline{\\sigma(-x)})` with ``log1p``: there the
    direct ``log_mean_exp(log_sigmoid(x))`` keeps only an absolute 1e-16, so a balance between
    two means that are both within 1e-12 of 1 would be flat to rounding (the root off by 0.02
    nats where data and draws barely overlap).
    """
    log_direct = log_mean_exp(log_sigmoid(logits))
    log_complement = log_mean_exp(log_sigmoid(-logits))
    near_one = log_complement < -math.log(2.0)
    safe = jnp.where(near_one, log_complement, -1.0)  # keeps the unused branch's gradient finite
    return jnp.where(near_one, jnp.log1p(-jnp.exp(safe)), log_direct)


def _mean_sigmoid_split(logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    r""":math:`\overline{\sigma(x)}` as ``(k / n, mean s)``: :math:`\sigma(x) = [x > 0] + s(x)` with
    :math:`s = \sigma(x)` for x <= 0 and :math:`-\sigma(-x)` for x > 0, so every s keeps its full
    relative precision however close σ is to 0 or 1."""
    positive = logits > 0
    remainder = jnp.where(positive, -jax.nn.sigmoid(-logits), jax.nn.sigmoid(logits))
    return jnp.mean(positive.astype(logits.dtype)), jnp.mean(remainder)


def _balance(log_z, ratio_data, ratio_samples):
    r""":math:`\bar D_p - (1 - \bar D_q)`, :math:`D = \sigma(r - \log Z)`; zero at the optimum.

    :math:`\partial_{\log Z} L_{disc} = 0 \iff \tfrac12 \bar D_p + \tfrac12 \bar D_q = \tfrac12`, i.e.
    :math:`\bar D_p = 1 - \bar D_q` (:math:`1 - D = \sigma(\log Z - r)`). Each mean is split into the
    share of saturated terms and a remainder (:func:`_mean_sigmoid_split`): the shares cancel exactly
    where they match, and the remainders keep their relative precision, so the balance is accurate
    where terms within 1e-12 of 0 or 1 decide the root (one data point like the draws and one far
    from them: a balance of log-means there was flat to rounding, the root off by 2e-6).
    Strictly decreasing in log Z: the root is unique.
    """
    share_p, rest_p = _mean_sigmoid_split(ratio_data - log_z)
    share_q, rest_q = _mean_sigmoid_split(log_z - ratio_samples)
    return (share_p - share_q) + (rest_p - rest_q)


@jax.custom_jvp
def _mixture_root(ratio_data, ratio_samples):
    """Root of :func:`_balance` by Newton steps safeguarded by bisection.

    The root lies in [min r, max r]: below every r all D > 1/2, above every r all D < 1/2.
    """
    lower = jnp.minimum(ratio_data.min(), ratio_samples.min())
    upper = jnp.maximum(ratio_data.max(), ratio_samples.max())
    tol = 4 * jnp.finfo(ratio_data.dtype).eps
    value_and_slope = jax.value_and_grad(_balance)

    def cond(state):
        _, lower, upper, step, it = state
        scale = 1.0 + jnp.abs(lower) + jnp.abs(upper)
        return (it < 200) & (jnp.abs(step) > tol * scale) & (upper - lower > tol * scale)

    def body(state):
        log_z, lower, upper, _, it = state
        f, slope = value_and_slope(log_z, ratio_data, ratio_samples)
        lower = jnp.where(f > 0, log_z, lower)  # f > 0: log Z still too small
        upper = jnp.where(f > 0, upper, log_z)
        newton = log_z - f / slope
        inside = jnp.isfinite(newton) & (newton > lower) & (newton < upper)
        new = jnp.where(inside, newton, 0.5 * (lower + upper))
        new = jnp.where(f == 0, log_z, new)
        return new, lower, upper, new - log_z, it + 1

    start = 0.5 * (lower + upper)
    state = (start, lower, upper, jnp.asarray(jnp.inf, ratio_data.dtype), 0)
    log_z, *_ = jax.lax.while_loop(cond, body, state)
    return log_z


@_mixture_root.defjvp
def _mixture_root_jvp(primals, tangents):
    # implicit function theorem on balance(log_z*, r) = 0
    ratio_data, ratio_samples = primals
    log_z = _mixture_root(ratio_data, ratio_samples)
    d_log_z, d_data, d_samples = jax.grad(_balance, argnums=(0, 1, 2))(log_z, ratio_data, ratio_samples)
    dr_data, dr_samples = tangents
    return log_z, -(d_data @ dr_data + d_samples @ dr_samples) / d_log_z


_mixture_root_jit = jax.jit(_mixture_root)  # one trace per input shape, not per call


def mixture_log_weights(costs: jax.Array, log_q: jax.Array, log_z: jax.Array) -> jax.Array:
    """:math:`\\log[e^{-c}/\\tilde\\mu]`, :math:`\\tilde\\mu = \\tfrac12 e^{-c}/Z + \\tfrac12 q`.

    Equal to :math:`\\log 2 - \\operatorname{logaddexp}(-\\log Z, \\log q + c)`, so the weight
    is bounded by 2Z: the data half of the mixture makes the weights light-tailed.
    """
    return math.log(2.0) - jnp.logaddexp(-log_z, log_q + costs)


def log_z_mixture(
    cost_data: ArrayLike,
    cost_samples: ArrayLike,
    log_q_data: ArrayLike,
    log_q_samples: ArrayLike,
) -> LogZEstimate:
    """Guided-cost-learning estimate: the fixed point :math:`Z = E_\\mu[e^{-c}/\\tilde\\mu]`.

    :math:`\\mu = \\tfrac12 p + \\tfrac12 q` (data and proposal draws, each half averaged over
    its own count) and :math:`\\tilde\\mu = \\tfrac12 e^{-c}/Z + \\tfrac12 q`.
    The fixed point is the log Z that minimizes ``discriminator_loss`` (claim 1), found as
    the unique root of a monotone function, to machine precision; differentiable by the
    implicit function theorem. It is consistent for log Z when the data come from the
    normalized model itself; otherwise it estimates the normalizer the discriminator sees.

    Args:
        cost_data: (n_data,) costs of the data points.
        cost_samples: (n_samples,) costs of the proposal draws.
        log_q_data: (n_data,) proposal log density at the data points.
        log_q_samples: (n_samples,) proposal log density at its draws.

    Returns:
        ``log_weights`` is (n_data + n_samples,), data first; ``ess`` is Kish's ESS of the
        pooled weights with their design factors 1/(2 n_data) and 1/(2 n_samples);
        ``k_hat`` is the larger of the two halves' k-hats (each half is i.i.d.).
    """
    cost_data, log_q_data = _checked_pair("cost_data", cost_data, "log_q_data", log_q_data)
    cost_samples, log_q_samples = _checked_pair("cost_samples", cost_samples, "log_q_samples", log_q_samples)
    log_z = _mixture_root_jit(-cost_data - log_q_data, -cost_samples - log_q_samples)
    log_weights = jnp.concatenate(
        [mixture_log_weights(cost_data, log_q_data, log_z), mixture_log_weights(cost_samples, log_q_samples, log_z)]
    )
    num_data, num_samples = cost_data.shape[0], cost_samples.shape[0]
    design = jnp.concatenate(
        [jnp.full(num_data, -math.log(2 * num_data)), jnp.full(num_samples, -math.log(2 * num_samples))]
    ).astype(log_weights.dtype)
    # each half is an i.i.d. sample with its own mean: the estimate is as reliable as the worse half
    k_hat = jnp.maximum(pareto_k_hat(log_weights[:num_data]), pareto_k_hat(log_weights[num_data:]))
    estimate = LogZEstimate(
        log_z=log_z,
        ess=effective_sample_size(log_weights + design),
        k_hat=k_hat,
        log_weights=log_weights,
        overlap=2.0 * jnp.exp(_log_mean_sigmoid(log_z - (-cost_data - log_q_data))),
    )
    return estimate


def _bound(log_weights: jax.Array, values: jax.Array) -> BoundEstimate:
    # no k-hat warning here: a bound stays a valid bound; a large k-hat says it is loose
    count = values.shape[0]
    stderr = jnp.std(values, ddof=1) / math.sqrt(count) if count > 1 else jnp.asarray(jnp.inf, values.dtype)
    return BoundEstimate(
        bound=jnp.mean(values),
        stderr=stderr,
        ess=effective_sample_size(log_weights),
        k_hat=pareto_k_hat(log_weights),
        log_weights=log_weights,
    )


def elbo(costs: ArrayLike, log_q: ArrayLike) -> BoundEstimate:
    """Evidence lower bound, :math:`E_q[-c - \\log q] = \\log Z - KL(q\\|p) \\le \\log Z`.

    ``k_hat`` is the PSIS diagnostic of q as an approximation of p (Yao et al. 2018): above
    0.7 the bound is valid but likely loose.
    """
    costs, log_q = _checked_pair("costs", costs, "log_q", log_q)
    log_weights = -costs - log_q
    return _bound(log_weights, log_weights)


def iwae(costs: ArrayLike, log_q: ArrayLike, k: int) -> BoundEstimate:
    """Importance-weighted bound, :math:`E[\\log \\frac1k \\sum_{j\\le k} w_j]`, n/k groups of k.

    ELBO (k = 1) <= IWAE_k <= IWAE_{k'} (k' > k, k | k') <= log Z, in expectation.
    """
    costs, log_q = _checked_pair("costs", costs, "log_q", log_q)
    count = costs.shape[0]
    if not isinstance(k, int) or isinstance(k, bool) or k < 1 or count % k:
        raise ValueError(f"k: expected a positive integer that divides the {count} draws, got {k!r}")
    log_weights = -costs - log_q
    groups = logsumexp(log_weights.reshape(count // k, k), axis=1) - math.log(k)
    return _bound(log_weights, groups)
