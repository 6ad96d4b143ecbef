"""A user's own problem, from Python: a tabular MDP with demonstrations, a differentiable simulator with
demonstrations, or an energy family with data.

Both return a :class:`~maxent_gan.models.problem.Problem` that ``compare``, ``train_ebm``, ``estimate_log_z``
and ``sample_posterior`` (through ``problem.model``) take like a built-in one. Every argument is
checked before any work; the errors name the argument.

    >>> problem = tabular_problem(features, transitions, initial, horizon, states, actions)
    >>> summary = compare(problem)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from maxent_gan.models.demonstrations import load_demonstrations
from maxent_gan.models.dynamics import Dynamics, dynamics_demonstrations, linear_feature_cost
from maxent_gan.models.gridworld import MDP
from maxent_gan.models.irl_problems import PRIOR_SCALE, _with_model, tabular_family
from maxent_gan.models.problem import CostFamily, Problem, draws_data
from maxent_gan.models.spaces import Points, SimulatorTrajectories
from maxent_gan.models.tabular import check_positive_int, check_trajectories

__all__ = ["energy_problem", "fixed_data", "simulator_problem", "tabular_problem"]


def fixed_data(train: jax.Array, test: jax.Array | None = None, *, test_fraction: float = 0.2):
    """A fixed data set as a problem's ``data(key, n_train, n_test)``: the counts are ignored. Without
    ``test``, a share ``test_fraction`` of the rows (picked by ``key``) is held out."""
    train = jnp.asarray(train)
    if test is None and train.shape[0] < 4:
        raise ValueError(f"data: expected at least 4 rows (2 to hold out, 2 to train on), got {train.shape[0]}")

    def data(key, n_train, n_test):
        if test is not None:
            return train, jnp.asarray(test)
        order = jax.random.permutation(key, train.shape[0])
        cut = min(max(2, int(round(test_fraction * train.shape[0]))), train.shape[0] - 2)
        return train[order[cut:]], train[order[:cut]]

    return data


def tabular_problem(
    features,
    transitions,
    initial,
    horizon: int,
    states=None,
    actions=None,
    *,
    theta_names: tuple[str, ...] | None = None,
    theta_true=None,
    prior_scale: float = PRIOR_SCALE,
    name: str = "tabular",
    grid_shape: tuple[int, int] | None = None,
    feature_descriptions: tuple[str, ...] | None = None,
    test_fraction: float = 0.2,
) -> Problem:
    """MaxEnt IRL on your own tabular MDP with linear costs :math:`c_\\theta(s, a) = \\theta\\cdot\\phi(s, a)`.

    ``features`` ``(S, A, K)`` or ``(S, K)`` (the same for every action); ``transitions`` dense
    ``(S, A, S)`` or a sparse :class:`maxent_gan.models.tabular.Transitions`; ``initial`` ``(S,)``; ``horizon``
    T. Demonstrations ``states`` ``(n, T+1)`` and ``actions`` ``(n, T)`` (integers); without them,
    ``theta_true`` is required and the data are exact draws of :math:`p_{\\theta^*}`. ``theta_names``
    defaults to ``feature_0, …``; the prior is θ ~ N(0, ``prior_scale``² I). The exact log Z(θ) and
    exact draws of every :math:`p_\\theta` come with the problem (the soft-Bellman recursion).
    """
    features = np.asarray(features, dtype=float)
    if features.ndim not in (2, 3):
        raise ValueError(f"features: expected shape (S, A, K) or (S, K), got {features.shape}")
    if features.ndim == 2:
        num_actions = np.shape(transitions)[1] if not hasattr(transitions, "successors") else \
            transitions.successors.shape[1]
        features = np.broadcast_to(features[:, None, :], (features.shape[0], num_actions, features.shape[1]))
    num_features = features.shape[-1]
    if num_features == 0 or features.shape[0] == 0:
        raise ValueError(f"features: expected at least one state and one feature, got shape {features.shape}")
    horizon = check_positive_int("horizon", horizon)
    _check_cost_range(features, horizon, prior_scale)
    if states is not None and actions is not None:  # their shapes, before anything is built for this horizon
        try:
            states, actions = check_trajectories(states, actions, features.shape[0], features.shape[1], horizon)
        except ValueError as error:  # name the arguments (the .npz keys) the demonstrations came in
            raise ValueError(f"states, actions: {error}") from None
        if np.shape(states)[0] < MIN_DEMONSTRATIONS:
            raise ValueError(f"states, actions: {np.shape(states)[0]} demonstration(s); expected at least "
                             f"{MIN_DEMONSTRATIONS} (2 held out to test on, 2 to train on)")
    theta_names = tuple(f"feature_{k}" for k in range(num_features)) if theta_names is None else tuple(theta_names)
    if len(theta_names) != num_features:
        raise ValueError(f"theta_names: expected {num_features} names (one per feature), got {len(theta_names)}")
    if theta_true is not None and np.shape(theta_true) != (num_features,):
        raise ValueError(f"theta_true: expected shape ({num_features},), got {np.shape(theta_true)}")
    if not (isinstance(prior_scale, int | float) and prior_scale > 0):
        raise ValueError(f"prior_scale: expected a positive number, got {prior_scale!r}")
    if (states is None) != (actions is None):
        raise ValueError("states, actions: give both demonstrations arrays or neither")
    if states is None and theta_true is None:
        raise ValueError("states: no demonstrations and no theta_true to draw them from; give one")
    if grid_shape is not None and (len(grid_shape) != 2 or grid_shape[0] * grid_shape[1] != features.shape[0]):
        raise ValueError(f"grid_shape: expected (rows, columns) with rows x columns = {features.shape[0]} states, "
                         f"got {grid_shape}")
    if feature_descriptions is not None and len(feature_descriptions) != num_features:
        raise ValueError(f"feature_descriptions: expected {num_features} (one per feature), "
                         f"got {len(feature_descriptions)}")
    dtype = jnp.zeros(()).dtype
    mdp = MDP(transitions, jnp.asarray(initial, dtype), horizon, jnp.asarray(features, dtype), theta_names,
              grid_shape, feature_descriptions)
    space, family = tabular_family(mdp, theta_true=theta_true, prior_scale=prior_scale)
    target = None if theta_true is None else family.target(family.theta_true, space)
    if states is None:
        return Problem(name, space, target, family.theta_true, draws_data(target), family)
    mdp = space.mdp
    _check_feasible(np.asarray(states), np.asarray(actions), mdp)
    demos = space.layout.pack(jnp.asarray(states), jnp.asarray(actions))
    return Problem(name, space, target, family.theta_true, fixed_data(demos, test_fraction=test_fraction), family,
                   data_fixed=True)


MIN_DEMONSTRATIONS = 4
COST_LIMIT = 1e30  # float32 (training's precision) overflows at 3.4e38


def _check_cost_range(features: np.ndarray, horizon: int, prior_scale: float) -> None:
    """Features whose trajectory costs θ·Σ_t φ could overflow within the prior's reach (|θ_k| up to 10 prior
    sd) are refused now, naming them, rather than as a non-finite cost after the work."""
    largest = float(np.abs(features[np.isfinite(features)]).max(initial=0.0))  # non-finite ones: check_mdp names them
    if horizon * features.shape[-1] * largest * 10 * prior_scale > COST_LIMIT:
        raise ValueError(f"features: values up to {largest:.3g} make the trajectory cost θ·Σφ overflow (horizon "
                         f"{horizon} x {features.shape[-1]} features x |θ| up to {10 * prior_scale:g}); rescale them")


def _check_feasible(states: np.ndarray, actions: np.ndarray, mdp: MDP) -> None:
    """Every demonstration must have positive probability under the dynamics: a start state of the
    initial distribution and, at each step, a successor the transitions can reach. The exact normalizer
    ignores impossible trajectories, while every proposal gives them log q = -inf."""
    initial = np.asarray(mdp.initial)
    bad = np.flatnonzero(initial[states[:, 0]] <= 0)
    if bad.size:
        raise ValueError(f"states: trajectory {bad[0]} starts in state {states[bad[0], 0]}, which the initial "
                         "distribution gives probability 0")
    successors = np.asarray(mdp.transitions.successors)[states[:, :-1], actions]  # (n, T, K)
    reachable = np.isfinite(np.asarray(mdp.transitions.log_probs))[states[:, :-1], actions]
    possible = ((successors == states[:, 1:, None]) & reachable).any(-1)
    if not possible.all():
        i, t = np.argwhere(~possible)[0]
        raise ValueError(f"states, actions: trajectory {i} moves from state {states[i, t]} by action "
                         f"{actions[i, t]} to state {states[i, t + 1]} at t={t}, which the transitions give "
                         "probability 0")


def _normal_prior(init, scale: float) -> dict[str, Any]:
    return {site: dist.Normal(jnp.zeros(jnp.shape(value)), scale).to_event(jnp.ndim(value))
            for site, value in init.items()}


def energy_problem(
    cost_fn: Callable[[Any, jax.Array], jax.Array],
    theta0,
    data,
    *,
    test_data=None,
    theta_names: tuple[str, ...] | None = None,
    prior: dict[str, dist.Distribution] | None = None,
    prior_scale: float = 1.0,
    log_partition_fn: Callable[[Any], jax.Array] | None = None,
    sampler: Callable[[jax.Array, Any, int], jax.Array] | None = None,
    theta_true=None,
    bounds: tuple[tuple[float, float], tuple[float, float]] | None = None,
    learning_rate: float = 0.05,
    name: str = "energy",
) -> Problem:
    """Your own energy family on points in R^d: :math:`p_\\theta(x) \\propto e^{-c_\\theta(x)}`.

    ``cost_fn(θ, x) -> (n,)`` for ``x`` ``(n, d)``; ``theta0`` is where training starts: one array
    (the NumPyro site ``"theta"``) or a dict of arrays (one site each). ``data`` ``(n, d)``; without
    ``test_data`` a fifth is held out. ``prior`` maps each site to a NumPyro distribution (default
    N(0, ``prior_scale``²) per entry). ``log_partition_fn`` and ``sampler`` are exact references when
    you have them (an ``exact`` row in ``compare``); ``bounds``: a 2-D quadrature box.
    """
    if not callable(cost_fn):
        raise ValueError(f"cost_fn: expected a function (theta, x) -> costs, got {type(cost_fn).__name__}")
    data = jnp.asarray(data, jnp.zeros(()).dtype)
    if data.ndim != 2 or data.shape[0] < 2:
        raise ValueError(f"data: expected points of shape (n, d) with n >= 2, got {data.shape}")
    if not bool(jnp.all(jnp.isfinite(data))):
        raise ValueError("data: contains non-finite values")
    dim = data.shape[1]
    if test_data is not None:
        test_data = jnp.asarray(test_data, data.dtype)
        if test_data.ndim != 2 or test_data.shape[1] != dim:
            raise ValueError(f"test_data: expected shape (m, {dim}), got {test_data.shape}")
    dict_valued = isinstance(theta0, dict)
    init = {k: jnp.asarray(v, data.dtype) for k, v in theta0.items()} if dict_valued else \
        {"theta": jnp.asarray(theta0, data.dtype)}
    sites = tuple(init)
    size = sum(int(np.prod(np.shape(v))) for v in init.values())
    if theta_names is None:
        theta_names = tuple(f"{s}[{i}]" if np.ndim(v) else s for s, v in init.items()
                            for i in (range(int(np.prod(np.shape(v)))) if np.ndim(v) else [0]))
    theta_names = tuple(theta_names)
    if len(theta_names) != size:
        raise ValueError(f"theta_names: expected {size} names (one per entry of theta0), got {len(theta_names)}")
    prior = _normal_prior(init, prior_scale) if prior is None else dict(prior)
    if set(prior) != set(sites):
        raise ValueError(f"prior: expected one distribution per site {sites}, got {tuple(prior)}")
    costs = cost_fn(theta0 if dict_valued else init["theta"], data[:2])
    if jnp.shape(costs) != (2,):
        raise ValueError(f"cost_fn: expected costs of shape (n,) for x of shape (n, {dim}), got {jnp.shape(costs)}")
    if theta_true is not None:
        true_leaves = jax.tree.map(jnp.asarray, theta_true if dict_valued else {"theta": theta_true})
        if jax.tree.structure(true_leaves) != jax.tree.structure(init) or any(
                jnp.shape(a) != jnp.shape(b) for a, b in zip(jax.tree.leaves(true_leaves), jax.tree.leaves(init),
                                                               strict=True)):
            raise ValueError("theta_true: expected the structure and shapes of theta0")
        theta_true = true_leaves if dict_valued else true_leaves["theta"]
    space = Points(dim, bounds)

    def model(data=None, *, num_data=None):
        values = {site: numpyro.sample(site, prior[site]) for site in sites}
        theta = values if dict_valued else values["theta"]
        with numpyro.plate("data", num_data if data is None else data.shape[0]):
            numpyro.sample("x", family.target(theta, space), obs=data)

    family = CostFamily(cost_fn, model, init if dict_valued else init["theta"], theta_names, sites=sites,
                        theta_true=theta_true, log_partition_fn=log_partition_fn, sampler=sampler,
                        learning_rate=learning_rate)
    target = None if theta_true is None else family.target(theta_true, space)
    return Problem(name, space, target, theta_true, fixed_data(data, test_data), family, data_fixed=True,
                   trains_family=True)  # the user's family is the model to fit


def simulator_problem(
    dynamics: Dynamics,
    features: Callable[[jax.Array, jax.Array], jax.Array],
    theta_names: tuple[str, ...],
    *,
    demonstrations=None,
    test_demonstrations=None,
    to_states: Callable[[jax.Array], jax.Array] | None = None,
    theta_true=None,
    theta_descriptions: tuple[str, ...] | None = None,
    prior_scale: float = PRIOR_SCALE,
    decorate: Callable[[Any], None] | None = None,
    sampler: Callable[[jax.Array, Any, int], jax.Array] | None = None,
    name: str = "simulator",
) -> Problem:
    """Your own continuous-control problem: trajectories of ``dynamics`` (a
    :class:`~maxent_gan.models.dynamics.Dynamics`) with the cost :math:`c_\\theta(\\tau) = \\sum_t \\theta \\cdot
    \\phi(s_t, a_t)`, ``features(states (..., ds), actions (..., da)) -> (..., k)``, one name per weight, and
    θ ~ N(0, ``prior_scale``² I).

    ``demonstrations``: anything :func:`~maxent_gan.models.demonstrations.load_demonstrations` reads (imitation's
    rollouts or trajectories, arrays), ``to_states`` mapping its observations to states; without
    ``test_demonstrations`` a fifth is held out. Without demonstrations, ``theta_true`` is required and the
    data are draws of :math:`p_{\\theta^*}` by ``sampler(key, θ, n)`` (default NUTS,
    :func:`~maxent_gan.models.dynamics.dynamics_demonstrations`).
    No exact log Z(θ) exists: ``compare`` cross-checks the learned one against tempered SMC.
    """
    if not isinstance(dynamics, Dynamics):
        raise TypeError(f"dynamics: expected a maxent_gan.models.dynamics.Dynamics, got {type(dynamics).__name__}")
    if not callable(features):
        raise TypeError(f"features: expected a function (states, actions) -> (..., k), got {type(features).__name__}")
    theta_names = tuple(theta_names)
    dtype = jnp.zeros(()).dtype
    probe = jax.eval_shape(features, jax.ShapeDtypeStruct((1, dynamics.state_dim), dtype),
                           jax.ShapeDtypeStruct((1, dynamics.action_dim), dtype))
    if probe.shape != (1, len(theta_names)):
        raise ValueError(f"features: expected (..., {len(theta_names)}) values (one per name in theta_names) for "
                         f"states (1, {dynamics.state_dim}) and actions (1, {dynamics.action_dim}), got {probe.shape}")
    if theta_true is not None:
        theta_true = jnp.asarray(theta_true, dtype)
        if theta_true.shape != (len(theta_names),):
            raise ValueError(f"theta_true: expected {len(theta_names)} weights, got shape {theta_true.shape}")
    if demonstrations is None and theta_true is None:
        raise ValueError("demonstrations: give demonstrations, or theta_true to draw them from p_theta*")
    space = SimulatorTrajectories(dynamics, decorate, features)
    cost_fn = linear_feature_cost(features, dynamics.layout)
    family = _with_model(CostFamily(cost_fn, None, jnp.zeros(len(theta_names), dtype), theta_names,
                                    theta_true=theta_true, theta_descriptions=theta_descriptions), space, prior_scale)
    target = None if theta_true is None else family.target(theta_true, space)
    if demonstrations is not None:
        train = load_demonstrations(demonstrations, dynamics, to_states=to_states)
        test = None if test_demonstrations is None else load_demonstrations(test_demonstrations, dynamics,
                                                                           to_states=to_states)
        return Problem(name, space, target, theta_true, fixed_data(train, test), family, data_fixed=True)

    def nuts(key, theta, n):
        return dynamics_demonstrations(key, dynamics, cost_fn, theta, n)

    draw = nuts if sampler is None else sampler

    def data(key, n_train, n_test):
        # NUTS draws (a simulator has no exact sampler), split into training and held-out demonstrations;
        # NUTS is the cost here, so at most 500 are held out
        n_test = min(n_test, 500)
        demos = draw(key, theta_true, n_train + n_test)
        return demos[:n_train], demos[n_train:]

    return Problem(name, space, target, theta_true, data, family)
