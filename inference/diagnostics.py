"""Diagnostics of importance weights: effective sample size, Pareto k-hat (PSIS), the forward
check, and the one rule that calls an estimate unreliable.

Vehtari et al., *Pareto smoothed importance sampling*: k-hat < 0.5 good, 0.5-0.7 usable,
> 0.7 unreliable. ArviZ (``az.psislw``) fits the tail; this module only adapts it to JAX.

**The rule** (:func:`unreliable_reasons`; every output and warning of the library uses it). An
importance estimate of log Z is *unreliable* when any of these holds:

1. the reverse check (weights :math:`\\tilde p/q` of q's own draws): k-hat > 0.7, or k-hat could
   not be fitted;
2. its ESS is below ``min(100, n/10)`` of its n draws (a few draws carry the estimate even when
   the tail PSIS fits looks light: ESS 7 of 10 000 with k-hat 0.53 was a 0.26-nat error);
3. the forward check, where data or exact draws exist (:func:`forward_check`): the same
   log-ratio :math:`\\log\\tilde p(x) - \\log q(x)` over points that come from the target. A
   proposal that misses mass has huge ratios exactly there, which q's own draws never visit:
   forward ESS below ``min(100, m/10)`` of its m points, or forward k-hat above
   :math:`0.7/(1 - 0.7) = 2.33`, flags it. (Under p the ratio's tail is heavier than under q:
   a tail of index k for q's weights is one of index k/(1 - k) for the data's ratios, so 2.33 is
   the reverse 0.7 seen from the data side.) Measured on 8gaussians with one mode of q dropped
   (components widened 1.3x, seeds 0-4, ``benchmarks/forward_check.py``): error -0.124 to -0.133
   nats, reverse k-hat 0.21-0.35 and ESS 4810-8326 of 10 000 (passes), forward ESS 25-43 of 2000
   (flagged).

Where neither data nor exact draws exist, only the reverse check is possible, and outputs say so.

**The rule for a posterior** (:func:`posterior_reasons`; ``sample_posterior`` and ``compare``). A
posterior sampled with importance-estimated :math:`\\log\\hat Z(\\theta)` is judged by what moves it,
not by how many of its draws pass points 1-3 alone. It is *unreliable* when

4. the forward check (point 3) fails at more than 5 % of its draws: there q misses mass of
   :math:`p_\\theta` that the data visit, an error every set of proposal draws shares, which point 5
   cannot see; or
5. its set of proposal draws moves it: the posterior's draws are reweighted by
   :math:`e^{\\ell_r(\\theta) - \\ell(\\theta)}` to ``DRAW_SETS`` = 3 other, independent sets of as
   many draws (:math:`\\ell_r`: the log joint under set r; :func:`draw_set_error`), and the spread
   of the posterior means over the sets puts more than ``DRAW_SET_ERROR`` = 0.1 posterior sd
   (twice the estimated sd, about a 95 % bound) on a mean, or a reweighting leaves an ESS below
   ``min(100, n/10)`` of the n posterior draws. Points 1-3 judge
   :math:`\\hat Z(\\theta)` at each θ alone; the posterior follows the error's *slope* across θ,
   times the number of observations, which every draw can pass while the posterior moves.
   Measured on the gridworld (100 demonstrations, 16 000 draws): the θ-following GAN-form
   posterior was 0.24 sd off with 4 % of its draws breaking points 1-3 (``compare``, seed 0); on a
   conjugate Gaussian family, 200 data points and 300 draws, posteriors 0.4-0.5 sd off had 0 % of
   their draws breaking points 1-3.
   The check sees the draws' random error (what an independent set changes), not a bias that
   every set shares: that is what point 4 is for.

The share of draws whose reverse check (points 1-2) fails is reported, with where those draws lie
(``unreliable_in_tails``: the share of them beyond 2 posterior sd), but does not flag a posterior by
itself: a heavy tail of the weights at a θ is an error of :math:`\\log\\hat Z(\\theta)` that another set of
draws changes, so point 5 measures what it does to the posterior. Measured over compare's rows
(``benchmarks/results/verdict.md``; the shift the estimate causes computed from the exact log Z at every
draw; 55 rows, seeds 0-4): the θ-following gridworld posteriors had 2-10 % of their draws failing
points 1-2 (a quarter of them beyond 2 sd on seed 0), and sat 0.00-0.01 sd from the exact posterior, with a draw-set error
of 0.01-0.02 sd; every row more than 0.1 sd off had a draw-set error of 0.20 sd or more. Counting those
draws flagged 11 of the 26 right rows; this rule flags 4 of them, and no wrong row passes either.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from maxent_gan.models._jit import compiled_when_eager

__all__ = [
    "DRAW_SETS",
    "DRAW_SET_ERROR",
    "K_HAT_FORWARD",
    "K_HAT_UNRELIABLE",
    "MIN_ESS",
    "ForwardCheck",
    "UnreliableEstimateWarning",
    "effective_sample_size",
    "forward_check",
    "forward_reasons",
    "min_ess",
    "pareto_k_hat",
    "posterior_reasons",
    "UNRELIABLE_FRACTION",
    "DrawSetError",
    "draw_set_error",
    "unreliable_reasons",
    "warn_if_unreliable",
]

K_HAT_UNRELIABLE = 0.7
K_HAT_FORWARD = K_HAT_UNRELIABLE / (1 - K_HAT_UNRELIABLE)  # the same tail seen under p (module docstring)
MIN_ESS = 100  # and at most a tenth of the draws: see min_ess
UNRELIABLE_FRACTION = 0.05  # point 4: a posterior with more draws than this failing the forward check (point 3)
DRAW_SET_ERROR = 0.1  # point 5: posterior sd that the set of proposal draws may put on a posterior mean
DRAW_SETS = 3  # point 5: the other, independent draw sets the posterior is reweighted to
CONSTANT_WEIGHTS_NATS = 1e-9  # log weights spread less than this count as constant


class UnreliableEstimateWarning(UserWarning):
    """An importance-sampling estimate whose weights have a heavy tail (k-hat > 0.7)."""


@compiled_when_eager
def effective_sample_size(log_weights: jax.Array) -> jax.Array:
    """Kish's ESS, :math:`(\\sum w)^2 / \\sum w^2`, computed in log space over the last axis (one ESS
    per row of a batch, e.g. per posterior draw); in [1, n]."""
    return jnp.exp(2.0 * logsumexp(log_weights, axis=-1) - logsumexp(2.0 * log_weights, axis=-1))


def _k_hat_numpy(log_weights: np.ndarray) -> np.ndarray:
    """Pareto k-hat of each row of ``(..., n)`` log weights, shape ``(...)``: ArviZ's ``psislw`` on the
    weights with their ties spread (:func:`_spread_ties`); ``-inf`` for a row constant up to rounding, ``inf``
    for ``n < 2``.

    The fit reads only the right tail, so it is handed only that: the largest weights (whole groups of ties)
    and, below them, the level under the lowest of those groups repeated to a short row, with ``reff`` set so
    that ``psislw`` cuts the same number of tail draws from the short row as from the full one. The same k-hat
    (same values, same tail, same fit) from a row of a few thousand instead of every draw: a sort of 16 000
    log weights per posterior draw was most of a comparison's diagnostics.
    """
    log_weights = np.asarray(log_weights)
    batch, n = log_weights.shape[:-1], log_weights.shape[-1]
    rows = log_weights.reshape(-1, n)
    if n < 2:
        return np.full(batch, np.inf)
    # rounding of the weights' own dtype also counts as constant (float32 costs of size 1e3)
    rounding = 64 * np.finfo(rows.dtype).eps * np.maximum(1.0, np.max(np.abs(rows), axis=-1))
    rows = rows.astype(np.float64)
    # weights equal up to rounding: the proposal is exact; ArviZ would report inf (ties leave no tail to fit)
    k_hat = np.full(rows.shape[0], -np.inf)
    fit = np.flatnonzero(np.ptp(rows, axis=-1) > np.maximum(CONSTANT_WEIGHTS_NATS, rounding))
    if fit.size:
        k_hat[fit] = _tail_k_hat(rows[fit])
    return k_hat.reshape(batch)


def _tail_k_hat(rows: np.ndarray) -> np.ndarray:
    # psislw's tail at reff 1: the `tail` largest weights above the (tail + 1)-th, the cutoff
    n = rows.shape[-1]
    tail = int(np.ceil(min(n / 5.0, 3 * n**0.5)))
    tails = [_spread_tail(row, tail + 1) for row in rows]
    length = max(5 * tail, *(len(t) + 1 for t in tails))
    import arviz as az  # here, not at the top: importing it (a second) is most of a command's start-up

    with np.errstate(over="ignore"):  # ArviZ's GPD profile likelihood overflows to weight 0: harmless
        if length >= n:  # nothing to leave out
            return np.asarray(az.psislw(_spread_ties(rows))[1], dtype=np.float64)
        # each tail ascending after its floor (t[0]), the floor repeated to the common length
        short = np.stack([np.concatenate([np.full(length - len(t), t[0]), t]) for t in tails])
        # psislw cuts ceil(min(length / 5, 3 sqrt(length / reff))) tail draws; this reff makes that `tail`
        # (length / 5 >= tail), half a draw clear of ceil's rounding
        reff = length / ((tail - 0.5) / 3) ** 2
        return np.asarray(az.psislw(short, reff=reff)[1], dtype=np.float64)


def _spread_tail(row: np.ndarray, keep: int) -> np.ndarray:
    """The ``keep`` largest of ``row`` with every group of ties they touch, spread as :func:`_spread_ties`
    spreads them in the whole row, ascending, after one more value (their floor: the level of the group
    just below, or, with nothing below, the whole row spread)."""
    grid = _tie_grid(row)
    keys = np.round(row / grid)
    inside = keys >= np.round(np.partition(row, row.size - keep)[row.size - keep] / grid)
    if inside.all():
        return np.sort(_spread_row(row, grid))
    floor = row[~inside].max()  # the level of the next group down: the gap the lowest group spreads over
    return np.sort(_spread_row(np.concatenate([[floor], row[inside]]), grid))


def _tie_grid(values: np.ndarray, tolerance: float = 1e-9) -> float:
    # values within `tolerance` nats (or the dtype's rounding) of each other count as tied
    return max(tolerance, 64 * np.finfo(values.dtype).eps * float(np.max(np.abs(values))))


def _spread_ties(log_weights: np.ndarray, tolerance: float = 1e-9) -> np.ndarray:
    """Tied log weights spread evenly over the gap below their value (for the tail fit only).

    Where the weight depends on a draw only through a discrete statistic (tabular trajectories:
    feature counts), thousands of draws share a handful of weight values. The generalized Pareto
    fit behind k-hat is a continuous model; on such a staircase it reports k-hat of 10-20 for
    weights whose largest is within 4 % of the rest (ESS 15 816 of 16 000, log Z off by 1e-4:
    the gridworld at the exact sampler of a nearby θ). Each group of ``c`` ties at level
    :math:`u_i` becomes ``c`` evenly spaced values in :math:`(u_{i-1}, u_i]`: the largest value
    and the order are kept, a wide gap (a real heavy tail) stays wide, a narrow one stays narrow
    (the deterministic form of jittering discrete extremes). Leaves untied weights as they are;
    values within ``tolerance`` nats (or the dtype's rounding) of each other count as tied.
    """
    flat = log_weights.reshape(-1, log_weights.shape[-1])
    out = np.stack([_spread_row(values, _tie_grid(values, tolerance)) for values in flat])
    return out.reshape(log_weights.shape)


def _spread_row(values: np.ndarray, grid: float) -> np.ndarray:
    _, inverse, counts = np.unique(np.round(values / grid), return_inverse=True, return_counts=True)
    if counts.size == values.size or counts.size < 2:
        return values.copy()
    levels = np.full(counts.size, -np.inf)
    np.maximum.at(levels, inverse, values)  # a group's level: its largest member
    gaps = np.diff(levels, prepend=levels[0] - (levels[1] - levels[0]))  # below the lowest: the next gap
    order = np.lexsort((values, inverse))  # by group, then by value
    rank_in_group = np.empty(values.size, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank_in_group[order] = np.arange(values.size) - np.repeat(starts, counts)
    # within a group, ranks 0..c-1 ascending: value = level - gap * (c - 1 - rank) / c
    c = counts[inverse]
    return levels[inverse] - gaps[inverse] * (c - 1 - rank_in_group) / c


def pareto_k_hat(log_weights: jax.Array) -> jax.Array:
    """Pareto k-hat of the weights' right tail, via ArviZ's ``psislw``.

    Works under ``jit``/``vmap``/``grad`` (a host callback on ``stop_gradient`` of the
    weights: a diagnostic, not a differentiable quantity). Returns ``+inf`` when there
    are too few draws to fit the tail (ArviZ needs more than 4 tail draws, about
    n >= 25) and ``-inf`` when all weights are equal to within 1e-9 nats (the proposal
    is exact up to rounding).
    """
    if not isinstance(log_weights, jax.core.Tracer):  # eager: no program to compile for one NumPy call
        log_weights = jnp.asarray(log_weights)
        return jnp.asarray(_k_hat_callback(np.asarray(log_weights)), log_weights.dtype)
    log_weights = jax.lax.stop_gradient(log_weights)
    return jax.pure_callback(
        _k_hat_callback, jax.ShapeDtypeStruct((), log_weights.dtype), log_weights, vmap_method="sequential"
    )


def _k_hat_callback(log_weights: np.ndarray) -> np.ndarray:
    # one function object, so traced calls of one shape share their compiled program
    return _k_hat_numpy(log_weights).astype(log_weights.dtype)


class ForwardCheck(NamedTuple):
    """The forward check: :math:`\\log\\tilde p(x_i) - \\log q(x_i)` over points x_i from the target.

    ``log_z_upper`` is :math:`-\\log \\frac1m\\sum_i q(x_i)/\\tilde p(x_i)`, consistent for log Z when
    the x_i are exact draws (:math:`E_p[q/\\tilde p] = 1/Z` for a normalized q) and biased *high*
    (Jensen), so with the reverse estimate, biased low, it brackets log Z in expectation
    (bidirectional Monte Carlo, Grosse et al. 2015). With data in place of exact draws it is a
    reading, not a bound.
    """

    log_z_upper: jax.Array
    ess: jax.Array
    k_hat: jax.Array
    log_ratios: jax.Array


def forward_check(costs: jax.Array, log_q: jax.Array) -> ForwardCheck:
    """:class:`ForwardCheck` of points from the target (data or exact draws).

    Args:
        costs: (m,) costs :math:`c(x_i)` (minus the log base density, if any) of the points.
        log_q: (m,) proposal log densities at the same points.
    """
    log_ratios = -costs - log_q
    count = log_ratios.shape[0]
    return ForwardCheck(
        log_z_upper=-(logsumexp(-log_ratios) - np.log(count)),
        ess=effective_sample_size(log_ratios),
        k_hat=pareto_k_hat(log_ratios),
        log_ratios=log_ratios,
    )


def summand_ess_numpy(summands: np.ndarray) -> np.ndarray:
    """:math:`(\\sum_j s_j)^2 / \\sum_j s_j^2` of each row: Kish's ESS of the summands of a mean (the
    weights themselves for plain importance sampling; the controlled weights for ``"mis-cv"``); 0 where
    their sum is not positive (an estimate of Z that is no estimate: the rule then flags it)."""
    summands = np.asarray(summands, np.float64)
    total = np.sum(summands, -1)
    return np.where(total > 0, total**2 / np.sum(summands**2, -1), 0.0)


def min_ess(num: int) -> float:
    """The smallest ESS the rule accepts from ``num`` draws: ``min(MIN_ESS, num / 10)``."""
    return min(float(MIN_ESS), num / 10)


def _check_reasons(label: str, k_hat: float, ess: float, num: int, limit: float = K_HAT_UNRELIABLE) -> list[str]:
    reasons = []
    if k_hat == np.inf or np.isnan(k_hat):
        cause = ("too few to fit the weights' tail" if num < 25 else
                 "the weights' tail could not be fitted, e.g. a few draws carry all the weight")
        reasons.append(f"{label}Pareto k-hat could not be estimated from {num} draws ({cause})")
    elif k_hat > limit:
        reasons.append(f"{label}Pareto k-hat = {k_hat:.2f} > {limit:.3g}")
    if ess < min_ess(num):
        reasons.append(f"{label}ESS {ess:.1f} of {num} < {min_ess(num):g}")
    return reasons


def unreliable_reasons(k_hat, ess, num: int, *, forward: ForwardCheck | None = None) -> list[str]:
    """The rule of this module's docstring: why an estimate is unreliable (empty: reliable).

    ``k_hat`` and ``ess`` are those of q's own ``num`` draws; ``forward`` the forward check, if any.
    """
    reasons = _check_reasons("", float(k_hat), float(ess), num)
    if forward is not None:
        reasons += forward_reasons(forward)
    return reasons


def forward_reasons(forward: ForwardCheck) -> list[str]:
    """Point 3 of the rule alone: why the forward check says q misses mass (empty: it does not)."""
    return _check_reasons("forward check: ", float(forward.k_hat), float(forward.ess), forward.log_ratios.shape[0],
                          K_HAT_FORWARD)


def warn_if_unreliable(name: str, k_hat: jax.Array, ess: jax.Array, num: int, *,
                       forward: ForwardCheck | None = None) -> None:
    """Warn (:class:`UnreliableEstimateWarning`) when :func:`unreliable_reasons` finds any (concrete values only)."""
    if any(isinstance(v, jax.core.Tracer) for v in (k_hat, ess, None if forward is None else forward.k_hat)):
        return
    reasons = unreliable_reasons(k_hat, ess, num, forward=forward)
    if reasons:
        warnings.warn(f"{name}: the estimate is unreliable: {'; '.join(reasons)}; use a proposal closer to the "
                      "target", UnreliableEstimateWarning, stacklevel=3)


class DrawSetError(NamedTuple):
    """Point 5 of the rule: how much a posterior's means depend on its set of proposal draws.

    ``error``: twice the estimated sd of a posterior mean over independent draw sets, in posterior
    sd, at the worst scalar of every site (about a 95 % bound on the error the draws put there);
    ``site``: which (``"name[i]"``); ``ess``: the smallest ESS of the reweightings, of ``num``
    posterior draws; ``sets``: how many other draw sets were compared.
    """

    error: float
    site: str
    ess: float
    num: int
    sets: int


def draw_set_error(samples: dict, log_ratios) -> DrawSetError:
    """Reweight posterior draws to other, independent sets of proposal draws and measure how far
    the posterior means move (host side, NumPy).

    ``log_ratios``: ``(..., R)``, per posterior draw and other draw set r, the log joint under set
    r minus the one sampled. The reweighted mean :math:`m_r` of each scalar is the posterior mean
    under set r, so :math:`(m_r - m)^2` estimates twice the variance of a posterior mean over
    draw sets (both carry their own draws' error); the error is :math:`2\\sqrt{\\overline{(m_r-m)^2}/2}`
    over the R sets, divided by the posterior sd. ``samples`` maps site names to arrays whose
    leading shape is ``log_ratios``'s but the last.
    """
    log_ratios = np.asarray(log_ratios, np.float64)
    sets = log_ratios.shape[-1]
    log_ratios = log_ratios.reshape(-1, sets)
    num = log_ratios.shape[0]
    if not np.all(np.isfinite(log_ratios)):
        return DrawSetError(np.inf, "the log joint", 0.0, num, sets)
    weights = np.exp(log_ratios - log_ratios.max(0))
    weights /= weights.sum(0)
    ess = float(np.min(1.0 / np.sum(weights**2, 0)))
    worst, where = 0.0, ""
    for name, values in samples.items():
        values = np.asarray(values, np.float64).reshape(num, -1)
        sd = values.std(0)
        moved = weights.T @ values - values.mean(0)  # (R, k)
        with np.errstate(divide="ignore", invalid="ignore"):
            error = np.where(sd > 0, 2 * np.sqrt(np.mean(moved**2, 0) / 2) / sd, 0.0)
        if error.size and error.max() > worst:
            worst, index = float(error.max()), int(error.argmax())
            where = name if values.shape[1] == 1 else f"{name}[{index}]"
    return DrawSetError(worst, where, ess, num, sets)


def posterior_reasons(draw_set: DrawSetError | None, forward_fraction: float | None = None) -> list[str]:
    """Points 4 and 5 of the rule: why a posterior is unreliable (empty: reliable, as far as the
    checks see). ``forward_fraction``: the share of its draws whose forward check fails; ``None`` for a
    check that was not run (the exact normalizer has no draws to judge; no data for the forward check)."""
    reasons = []
    if forward_fraction is not None and forward_fraction > UNRELIABLE_FRACTION:
        reasons.append(f"the proposal misses mass of p_θ that the data visit at {100 * forward_fraction:.0f}% of the "
                       "draws (the forward check: an error every set of proposal draws shares)")
    if draw_set is not None:
        if not draw_set.error <= DRAW_SET_ERROR:
            reasons.append(f"its set of proposal draws alone moves {draw_set.site or 'it'} by up to "
                           f"{draw_set.error:.2f} sd > {DRAW_SET_ERROR:g} (from {draw_set.sets} other sets)")
        if draw_set.ess < min_ess(draw_set.num):
            reasons.append(f"another set of proposal draws reweights the posterior to ESS {draw_set.ess:.1f} of "
                           f"{draw_set.num} < {min_ess(draw_set.num):g}")
    return reasons
