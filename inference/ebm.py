"""Training an EBM on a registered problem by one of the three methods: the set-up the CLI,
notebooks and benchmarks share (problem -> energy, proposal, algorithm, evaluation)."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from inference.driver import TrainResult, check_checkpoint, check_data, run_training
from inference.estimators import log_mean_exp, log_z_importance
from inference.irl import IRL_LEARNING_RATE, irl_metrics, irl_setup
from inference.proposals.flow import Flow, fit_flow_to_data
from inference.training import METHODS, TrainingAlgorithm, exact_maxent, gan_form, guided_cost_learning
from models.energy import MLPEnergy, energy_cost
from models.problems import Problem, make_problem
from models.quadrature import log_partition_grid
from models.tabular import check_trajectories

__all__ = ["EBMRun", "build_training", "ebm_summary", "train_ebm"]

TRAIN_RESOLUTION = 96  # quadrature grid of the exact method's loss, per axis
EVAL_RESOLUTION = 400  # quadrature grid of the reported log Z and held-out NLL


class EBMRun(NamedTuple):
    problem: Problem
    method: str
    result: TrainResult
    train: jax.Array
    test: jax.Array
    seconds: float


def check_method(method: str, problem: Problem | None = None) -> str:
    """A known method name, and one the problem supports (exact needs quadrature: 2D)."""
    if method not in METHODS:
        raise ValueError(f"method: unknown name {method!r}; valid: {', '.join(METHODS)}")
    if method == "exact" and problem is not None and _exact_log_partition(problem) is None:
        raise ValueError(f"method: 'exact' needs an exact log Z (quadrature in 2D, or a tractable IRL problem); "
                         f"{problem.name} has none, use gcl or gan")
    return method


def _schedule(learning_rate: float, steps: int):
    # a cosine decay to 5%: the last steps average out minibatch noise
    return optax.cosine_decay_schedule(learning_rate, max(steps, 1), alpha=0.05)


def proposal_optimizer(learning_rate: float, steps: int) -> optax.GradientTransformation:
    """The samplers' optimizer everywhere: global-norm clipping at 10, then Adam on the cosine schedule."""
    return optax.chain(optax.clip_by_global_norm(10.0), optax.adam(_schedule(learning_rate, steps)))


def _energy_optimizer(learning_rate: float, steps: int) -> optax.GradientTransformation:
    # the learned log Z is one scalar that must follow the energy's drifts: a 10x step
    def labels(params):
        energy, _ = params
        return jax.tree.map(lambda _: "energy", energy), "log_z"

    return optax.multi_transform(
        {"energy": optax.adam(_schedule(learning_rate, steps)), "log_z": optax.adam(_schedule(10 * learning_rate, steps))},
        labels,
    )


def grid_log_z(problem: Problem, energy, resolution: int) -> jax.Array:
    """log Z of the energy by quadrature on the problem's box (2D problems only)."""
    return log_partition_grid(lambda x: energy_cost(energy, x), problem.bounds, resolution)


def _cost_fn(problem: Problem):
    return energy_cost if problem.irl is None else problem.irl.cost_fn


def _exact_log_partition(problem: Problem, resolution: int = TRAIN_RESOLUTION):
    """θ -> exact log Z (quadrature for 2D energies, the problem's recursion for IRL), or None."""
    if problem.irl is not None:
        return problem.irl.log_partition_fn
    if problem.bounds is not None:
        return lambda energy: grid_log_z(problem, energy, resolution)
    return None


def data_flow(key_init: jax.Array, key_fit: jax.Array, data: jax.Array, *, max_epochs: int = 100,
              progress: bool = False) -> Flow:
    """A spline coupling flow fitted to ``data`` by maximum likelihood: the sampler's warm start."""
    dim = data.shape[-1]
    interval = float(jnp.max(jnp.abs(data))) + 1.0
    flow = Flow.coupling(key_init, dim, interval=interval, layers=8 if dim == 2 else 6)
    flow, _ = fit_flow_to_data(key_fit, flow, data, max_epochs=max_epochs, progress=progress)
    return flow


def build_training(
    problem: Problem,
    method: str,
    key: jax.Array,
    train: jax.Array,
    *,
    steps: int = 2000,
    learning_rate: float = 1e-3,
    num_samples: int = 256,
    flow_epochs: int = 100,
    tilted: bool = False,
    progress: bool = False,
) -> tuple[TrainingAlgorithm, Any]:
    """The algorithm and its initial state. EBMs: an MLP energy and a spline flow fitted to the
    training data by maximum likelihood (a warm start for the sampler). IRL: θ = 0 and a
    policy cloned from the demonstrations (:func:`inference.irl.irl_setup`)."""
    check_method(method, problem)
    key_energy, key_flow, key_fit = jax.random.split(key, 3)
    if problem.irl is not None:
        energy, proposal = irl_setup(problem, train, key_energy, tilted=tilted)
    else:
        energy = MLPEnergy(key_energy, problem.dim)
        proposal = data_flow(key_flow, key_fit, train, max_epochs=flow_epochs, progress=progress)
    cost_fn = _cost_fn(problem)
    energy_opt = _energy_optimizer(learning_rate, steps)
    proposal_opt = proposal_optimizer(learning_rate, steps)
    if method == "exact":
        algorithm = exact_maxent(cost_fn, _exact_log_partition(problem), energy_opt, proposal_opt,
                                 num_samples=num_samples)
    elif method == "gcl":
        algorithm = guided_cost_learning(cost_fn, energy_opt, proposal_opt, num_samples=num_samples)
    else:
        # start the learned log Z at the warm-started sampler's estimate, not at an arbitrary 0
        x, log_q = proposal.sample_and_log_prob(key_fit, 4096)
        log_z0 = float(log_mean_exp(-cost_fn(energy, x) - log_q))
        algorithm = gan_form(cost_fn, energy_opt, proposal_opt, num_samples=num_samples, log_z0=log_z0)
    return algorithm, algorithm.init(energy, proposal)


def _evaluator(problem: Problem, test: jax.Array, key: jax.Array, num_draws: int):
    cost_fn = _cost_fn(problem)
    exact_log_partition = _exact_log_partition(problem, EVAL_RESOLUTION)

    @eqx.filter_jit
    def exact(state):
        log_z = exact_log_partition(state.energy)
        return log_z, jnp.mean(cost_fn(state.energy, test)) + log_z

    @eqx.filter_jit
    def importance(state):
        x, log_q = state.proposal.sample_and_log_prob(key, num_draws)
        return cost_fn(state.energy, x), log_q

    def evaluate(state) -> dict[str, float]:
        costs, log_q = importance(state)
        estimate = log_z_importance(costs, log_q)
        row = {"log_z_is": float(estimate.log_z), "k_hat_eval": float(estimate.k_hat)}
        if problem.irl is not None:
            row.update(irl_metrics(problem, state.energy, test))
        if exact_log_partition is not None:
            log_z, nll = exact(state)
            row.update(log_z_exact=float(log_z), held_out_nll=float(nll))
        else:  # no quadrature: the NLL with the importance estimate of log Z
            row["held_out_nll_is"] = float(jnp.mean(cost_fn(state.energy, test)) + estimate.log_z)
        return row

    return evaluate


def train_ebm(
    problem: str | Problem,
    method: str,
    *,
    steps: int = 2000,
    seed: int = 0,
    num_train: int = 5000,
    num_test: int = 5000,
    batch_size: int = 256,
    num_samples: int = 256,
    learning_rate: float | None = None,
    flow_epochs: int = 100,
    eval_every: int = 250,
    checkpoint_dir=None,
    checkpoint_every: int = 500,
    resume: bool = False,
    progress: bool = True,
    data: tuple[jax.Array, jax.Array] | None = None,
    tilted: bool = False,
) -> EBMRun:
    """Train the MLP energy (EBMs) or the linear cost (IRL) on ``problem``'s data by ``method``
    (exact, gcl, gan). ``learning_rate=None`` picks 1e-3 for networks, 0.05 for IRL weights.

    ``data=(train, test)`` trains on your own points instead (each ``(n, problem.dim)``).
    ``tilted`` (tabular IRL): the sampler also learns transition tilts, so it can reach :math:`p_\\theta`.
    Names and data are checked before any training starts.
    """
    problem = make_problem(problem) if isinstance(problem, str) else problem
    check_method(method, problem)
    if problem.data is None and data is None:
        raise ValueError(f"problem: {problem.name} has no data to train on; pass data=(train, test)")
    if learning_rate is None:
        learning_rate = IRL_LEARNING_RATE if problem.irl is not None else 1e-3
    # what changes the numbers: a checkpoint of another run is refused (``steps`` may grow on resume)
    run = {"problem": problem.name, "method": method, "seed": seed, "num_train": num_train, "num_test": num_test,
           "batch_size": batch_size, "num_samples": num_samples, "learning_rate": float(learning_rate),
           "flow_epochs": flow_epochs, "tilted": tilted, "data": "problem" if data is None else "given",
           "float64": bool(jax.config.jax_enable_x64)}
    if resume:  # the checkpoint's files and settings, before the data, the warm start and the compilation
        if checkpoint_dir is None:
            raise ValueError("resume: needs checkpoint_dir")
        check_checkpoint(checkpoint_dir, run=run, steps=steps)
    key = jax.random.key(seed)
    key_data, key_build, key_train, key_eval = jax.random.split(key, 4)
    train, test = problem.data(key_data, num_train, num_test) if data is None else data
    train, test = check_data(train, problem.dim), check_data(test, problem.dim, "test data")
    if problem.irl is not None and problem.irl.cost_table is not None:
        mdp = problem.irl.system
        for name, demos in (("data", train), ("test data", test)):
            try:
                check_trajectories(*problem.irl.layout.unpack(demos), mdp.num_states, mdp.num_actions, mdp.horizon)
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None
    start = time.perf_counter()
    algorithm, state = build_training(
        problem, method, key_build, train, steps=steps, learning_rate=learning_rate, num_samples=num_samples,
        flow_epochs=flow_epochs, tilted=tilted, progress=progress,
    )
    result = run_training(
        key_train, algorithm, state, train, steps=steps, batch_size=batch_size,
        evaluate=_evaluator(problem, test, key_eval, 10_000), eval_every=eval_every,
        checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, resume=resume, run=run,
        progress=progress, desc=f"{method} on {problem.name}",
    )
    return EBMRun(problem, method, result, train, test, time.perf_counter() - start)


def ebm_summary(run: EBMRun) -> dict[str, Any]:
    """The JSON summary: held-out NLL (quadrature, 2D), true NLL, learned and exact log Z."""
    from inference.io import finite_or_none

    last = {k: v for row in run.result.trace for k, v in row.items()}  # latest value of each key
    summary = {
        "problem": run.problem.name,
        "method": run.method,
        "steps": run.result.steps_done,
        "held_out_nll": last.get("held_out_nll"),
        "held_out_nll_is": last.get("held_out_nll_is"),
        "true_nll": None,
        "log_z_learned": finite_or_none(run.result.state.log_z),
        "log_z_exact": last.get("log_z_exact"),
        "log_z_is": last.get("log_z_is"),
        "k_hat": last.get("k_hat_eval"),
        "seconds": run.seconds,
        "stopped": run.result.stopped,
    }
    if run.problem.irl is not None:
        summary.update({key: last.get(key) for key in ("epic", "cost_correlation", "evd", "theta_error")})
        summary["theta"] = [float(v) for v in run.result.state.energy]
        summary["theta_true"] = [float(v) for v in run.problem.true_params]
    target = run.problem.target
    if target is not None and target.log_normalizer is not None:
        summary["true_nll"] = float(jnp.mean(-target.normalized_log_prob(run.test)))
    return summary
