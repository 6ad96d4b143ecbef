"""How the normalizing handler estimates :math:`\\log\\hat Z(\\theta)`: strategies as objects, passed in as
NumPyro passes a kernel to ``MCMC`` (``normalized(model, proposal, estimator=MISControlVariates())``).

Each strategy says what it needs (draws of a proposal, a mixture of fixed components, the site's exact
normalizer), prepares what is fixed with the draws, and turns one site's draws into
:math:`\\log\\hat Z(\\theta)`; the handler and ``sample_posterior`` ask these questions, never its name.
A new estimator is one class with these members.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol, runtime_checkable

import jax
from maxent_gan.inference.estimators import log_mean_controlled, log_mean_exp, log_z_mixture, mixture_controls
from maxent_gan.inference.proposals.conditional import is_conditional
from maxent_gan.models.unnormalized import Unnormalized

__all__ = ["Annealed", "Estimator", "Exact", "Importance", "MISControlVariates", "Mixture", "as_estimator"]


@runtime_checkable
class Estimator(Protocol):
    """The strategy behind :math:`\\log\\hat Z(\\theta)` of one observed site.

    ``name`` labels results; ``uses_draws`` is false for the exact normalizer (no proposal, nothing to
    judge); ``in_posterior`` is false where the estimator cannot serve inside a posterior, and
    ``why_not_in_posterior`` then says why.
    """

    name: ClassVar[str]
    uses_draws: ClassVar[bool]
    in_posterior: ClassVar[bool]
    why_not_in_posterior: ClassVar[str]

    def check(self, proposal, *, shard: bool) -> None:
        """Raise a ``ValueError`` naming the argument when ``proposal`` (or sharding) does not suit it."""

    def prepare(self, proposal, draws: jax.Array, log_q: jax.Array) -> Any:
        """What is fixed with the draws (``None`` when nothing is)."""

    def log_normalizer(self, site: Unnormalized, draws: jax.Array, log_q: jax.Array, prepared: Any,
                       data: jax.Array, log_q_at: Callable[[jax.Array], jax.Array]) -> jax.Array:
        """:math:`\\log\\hat Z(\\theta)` of ``site`` from its draws (``data``: the observed points)."""

    def summands(self, log_weights: jax.Array, prepared: Any) -> tuple[jax.Array, jax.Array] | None:
        """``(floored, summands)`` whose ESS judges the estimate, or ``None``: the weights' own."""


class _Draws:
    uses_draws: ClassVar[bool] = True
    in_posterior: ClassVar[bool] = True
    why_not_in_posterior: ClassVar[str] = ""

    def check(self, proposal, *, shard: bool) -> None:
        if proposal is None:
            raise ValueError(f"proposal: the {self.name!r} estimator needs a proposal")

    def prepare(self, proposal, draws, log_q):
        return None

    def summands(self, log_weights, prepared):
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class Importance(_Draws):
    """Plain importance sampling: :math:`\\hat Z = \\frac1n\\sum_j e^{-c(x_j)}/q(x_j)`, x ~ q."""

    name: ClassVar[str] = "importance"

    def log_normalizer(self, site, draws, log_q, prepared, data, log_q_at):
        return log_mean_exp(-site.cost(draws) - log_q)


class MISControlVariates(_Draws):
    """Multiple importance sampling over a mixture of fixed components with the components as control
    variates (Owen & Zhou 2000): exact where :math:`p_\\theta` is a combination of them."""

    name: ClassVar[str] = "mis-cv"

    def check(self, proposal, *, shard: bool) -> None:
        super().check(proposal, shard=shard)
        if is_conditional(proposal) or not hasattr(proposal, "component_log_probs"):
            raise ValueError(f"estimator: MISControlVariates needs a mixture of fixed components (an AnchorMixture), "
                             f"got a {type(proposal).__name__}; use Importance()")
        if shard:
            raise ValueError("shard: MISControlVariates does not shard its controls yet; use shard=False")

    def prepare(self, proposal, draws, log_q):
        return mixture_controls(log_q, proposal.component_log_probs(draws))

    def log_normalizer(self, site, draws, log_q, prepared, data, log_q_at):
        return log_mean_controlled(-site.cost(draws) - log_q, prepared)[0]  # floored: see CV_FLOOR

    def summands(self, log_weights, prepared):
        # the estimate's own summands, the controlled weights, carry its ESS (a floored one gets 0)
        _, floored, summands = log_mean_controlled(log_weights, prepared)
        return floored, summands


class Mixture(_Draws):
    """Importance sampling from the ½ data + ½ proposal mixture (the discriminator's fixed point).
    Consistent for one :math:`\\theta`, but biased inside a posterior: the data enter their own normalizer."""

    name: ClassVar[str] = "mixture"
    in_posterior: ClassVar[bool] = False
    why_not_in_posterior: ClassVar[str] = ("it is biased there: the data enter their own normalizer, so the "
                                           "likelihood grows as the costs separate data from draws")

    def log_normalizer(self, site, draws, log_q, prepared, data, log_q_at):
        points = data.reshape((-1,) + site.event_shape)
        return log_z_mixture(site.cost(points), site.cost(draws), log_q_at(points), log_q).log_z


class Annealed(_Draws):
    """Adaptive tempered SMC from the proposal's draws to the target
    (:func:`maxent_gan.inference.annealed.log_z_annealed`, blackjax's kernels), at one θ: the estimator
    ``estimate_log_z`` runs with ``estimator=Annealed()``. ``options`` go to ``log_z_annealed``
    (``target_ess``, ``num_mcmc_steps``, ...)."""

    name: ClassVar[str] = "annealed"
    in_posterior: ClassVar[bool] = False
    why_not_in_posterior: ClassVar[str] = ("its particles move toward each θ, so log Ẑ(θ) is not a function of θ at "
                                           "fixed draws that NUTS could differentiate")

    def __init__(self, **options):
        self.options = options

    def log_normalizer(self, site, draws, log_q, prepared, data, log_q_at):
        raise ValueError(f"estimator: Annealed() estimates log Z at one θ; {self.why_not_in_posterior}; "
                         "use Importance()")

    def __repr__(self) -> str:
        return f"Annealed({', '.join(f'{k}={v!r}' for k, v in self.options.items())})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.options == other.options

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(self.options.items()))))


class Exact:
    """The site's own exact normalizer (no proposal, no draws): the gold standard."""

    name: ClassVar[str] = "exact"
    uses_draws: ClassVar[bool] = False
    in_posterior: ClassVar[bool] = True
    why_not_in_posterior: ClassVar[str] = ""

    def check(self, proposal, *, shard: bool) -> None:
        return None

    def prepare(self, proposal, draws, log_q):
        return None

    def log_normalizer(self, site, draws, log_q, prepared, data, log_q_at):
        if site.log_normalizer is None:
            raise ValueError("estimator: Exact() needs an exact log_normalizer, and this site has none")
        return site.log_normalizer

    def summands(self, log_weights, prepared):
        return None

    def __repr__(self) -> str:
        return "Exact()"

    def __eq__(self, other) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


def as_estimator(estimator) -> Estimator:
    """``estimator`` if it is one; a name is refused, saying which instance to pass (names are the command
    line's)."""
    if isinstance(estimator, Estimator):
        return estimator
    by_name = {cls.name: cls for cls in (Importance, MISControlVariates, Mixture, Exact, Annealed)}
    hint = f"pass {by_name[estimator].__name__}()" if isinstance(estimator, str) and estimator in by_name else \
        f"pass one of {', '.join(f'{cls.__name__}()' for cls in by_name.values())}"
    raise ValueError(f"estimator: expected an Estimator (maxent_gan.inference.normalizers), got {estimator!r}; {hint}")
