"""The one training assembly: problem -> cost, sampler, algorithm, evaluation, for one of the three
methods (exact, GCL, the GAN form). The CLI's ``train`` and ``compare``, the notebooks and the
benchmarks all train through :func:`build_training` (:func:`train_ebm` adds data, evaluation and
checkpoints). The cost is an MLP energy on points or the problem's parametric cost family (IRL
weights; the Gaussian's and the toys' families); the sampler's warm start, its learning rate and the
metrics are chosen by the problem's sample space (``maxent_gan.inference.spaces``)."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from maxent_gan.inference._validation import check_key
from maxent_gan.inference.driver import TrainResult, check_checkpoint, check_data, run_training
from maxent_gan.inference.estimators import log_mean_exp, log_z_importance
from maxent_gan.inference.io import finite_or_none
from maxent_gan.inference.sampler import proposal_optimizer
from maxent_gan.inference.spaces import check_in_space, cost_metrics, sampler_rates, warm_start
from maxent_gan.inference.training import METHODS, TrainingAlgorithm, exact_maxent, gan_form, guided_cost_learning
from maxent_gan.models.energy import MLPEnergy, energy_cost
from maxent_gan.models.problems import Problem, make_problem
from maxent_gan.models.quadrature import log_partition_grid
from maxent_gan.models.spaces import Points
from maxent_gan.models.unnormalized import Unnormalized

__all__ = ["FAMILY_STEPS", "NETWORK_RATE", "NETWORK_RATE_HIGH_DIM", "NETWORK_STEPS", "EBMRun", "build_training", "ebm_summary", "learned_target", "parametric_default", "proposal_optimizer",
           "train_ebm"]

TRAIN_RESOLUTION = 96  # quadrature grid of the exact method's loss, per axis
EVAL_RESOLUTION = 400  # quadrature grid of the reported log Z and held-out NLL


class EBMRun(NamedTuple):
    problem: Problem
    method: str
    result: TrainResult
    train: jax.Array
    test: jax.Array
    seconds: float
    parametric: bool = True  # the problem's cost family was trained (else an MLP energy)


def parametric_default(problem: Problem) -> bool:
    """What the problem says it trains (a user's energy family: that family); otherwise points train an MLP
    energy and trajectory spaces their cost family (IRL weights)."""
    if problem.trains_family is not None:
        return problem.trains_family
    return not isinstance(problem.space, Points)


def check_parametric(problem: Problem, *, parametric: bool | None) -> bool:
    """Resolve ``parametric`` (``None``: :func:`parametric_default`) and check the problem supports it."""
    parametric = parametric_default(problem) if parametric is None else bool(parametric)
    if parametric and problem.family is None:
        raise ValueError(f"parametric: {problem.name} has no cost family to train; train an MLP energy "
                         "(parametric=False)")
    if not parametric and not isinstance(problem.space, Points):
        raise ValueError(f"parametric: an MLP energy needs points in R^d; {problem.name} has "
                         f"{type(problem.space).__name__}, train its cost family")
    return parametric


def check_method(method: str, problem: Problem | None = None, *, parametric: bool | None = None) -> str:
    """A known method name, and one the problem supports (exact needs an exact log Z: quadrature in 2D
    for an MLP energy, the family's own for a cost family)."""
    if method not in METHODS:
        raise ValueError(f"method: unknown name {method!r}; valid: {', '.join(METHODS)}")
    if method == "exact" and problem is not None:
        parametric = check_parametric(problem, parametric=parametric)
        if _exact_log_partition(problem, parametric=parametric) is None:
            raise ValueError(f"method: 'exact' needs an exact log Z (quadrature in 2D, or a family with one); "
                             f"{problem.name} has none, use gcl or gan")
    return method


def _schedule(learning_rate: float, steps: int):
    # a cosine decay to 5%: the last steps average out minibatch noise
    return optax.cosine_decay_schedule(learning_rate, max(steps, 1), alpha=0.05)



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


def _cost_fn(problem: Problem, *, parametric: bool):
    return problem.family.cost_fn if parametric else energy_cost


def learned_target(run: EBMRun) -> Unnormalized:
    """The energy a run learned as a target :math:`e^{-c_{\\hat\\theta}}` over the problem's space (no exact log Z)."""
    space = run.problem.space
    return Unnormalized(_cost_fn(run.problem, parametric=run.parametric), run.result.state.energy,
                        event_shape=(space.size,), base_measure=space.base_measure, support=space.support)


def _exact_log_partition(problem: Problem, *, parametric: bool, resolution: int = TRAIN_RESOLUTION):
    """θ -> exact log Z (the family's own, or quadrature for an MLP energy on a 2-D box), or None."""
    if parametric:
        return problem.family.log_partition_fn
    if problem.bounds is not None:
        return lambda energy: grid_log_z(problem, energy, resolution)
    return None


def build_training(
    problem: Problem,
    method: str,
    key: jax.Array,
    train: jax.Array,
    *,
    steps: int = 2000,
    learning_rate: float = 1e-3,
    num_draws: int = 256,
    flow_epochs: int = 100,
    tilted: bool = False,
    progress: bool = False,
    parametric: bool | None = None,
) -> tuple[TrainingAlgorithm, Any]:
    """The algorithm and its initial state. The cost: an MLP energy, or (``parametric``; the default on
    trajectory spaces) the problem's cost family from its ``init``. The sampler: the space's warm start
    fitted to ``train`` (:func:`maxent_gan.inference.spaces.warm_start`: a spline flow on points, behaviour cloning
    on trajectories), trained at the space's rate (:func:`maxent_gan.inference.spaces.sampler_rates`)."""
    parametric = check_parametric(problem, parametric=parametric)
    check_method(method, problem, parametric=parametric)
    key_energy, key_start, key_fit = jax.random.split(key, 3)
    energy = problem.family.init if parametric else MLPEnergy(key_energy, problem.dim)
    proposal = warm_start(problem.space, key_start, train, tilted=tilted, epochs=flow_epochs, progress=progress)
    cost_fn = _cost_fn(problem, parametric=parametric)
    energy_opt = _energy_optimizer(learning_rate, steps)
    proposal_opt = proposal_optimizer(sampler_rates(problem.space).train or learning_rate, steps)
    if method == "exact":
        algorithm = exact_maxent(cost_fn, _exact_log_partition(problem, parametric=parametric), energy_opt, proposal_opt,
                                 num_draws=num_draws)
    elif method == "gcl":
        algorithm = guided_cost_learning(cost_fn, energy_opt, proposal_opt, num_draws=num_draws)
    else:
        # start the learned log Z at the warm-started sampler's estimate, not at an arbitrary 0
        x, log_q = proposal.sample_and_log_prob(key_fit, 4096)
        log_z0 = float(log_mean_exp(-cost_fn(energy, x) - log_q))
        algorithm = gan_form(cost_fn, energy_opt, proposal_opt, num_draws=num_draws, log_z0=log_z0)
    return algorithm, algorithm.init(energy, proposal)


def _evaluator(problem: Problem, test: jax.Array, key: jax.Array, num_draws: int, *, parametric: bool):
    cost_fn = _cost_fn(problem, parametric=parametric)
    exact_log_partition = _exact_log_partition(problem, parametric=parametric, resolution=EVAL_RESOLUTION)
    family = problem.family

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
        row = {"log_z_is": float(estimate.log_z), "k_hat_eval": float(estimate.k_hat),
               "log_z_is_reliable": float(estimate.reliable)}  # 1.0 or 0.0: the trace holds numbers
        if parametric and family.theta_true is not None:
            error = family.flatten(family.to_sites(state.energy)) - family.flatten(family.to_sites(family.theta_true))
            row["theta_error"] = float(jnp.linalg.norm(error))
            row.update(cost_metrics(problem.space, problem, state.energy, test))
        if exact_log_partition is not None:
            log_z, nll = exact(state)
            row.update(log_z_exact=float(log_z), held_out_nll=float(nll))
        else:  # no quadrature: the NLL with the importance estimate of log Z
            row["held_out_nll_is"] = float(jnp.mean(cost_fn(state.energy, test)) + estimate.log_z)
        return row

    return evaluate


# The defaults of an energy network's training (the command line's too). Measured on 2026-12-04 with
# `maxent-gan train --method gan` on rings, seed 1: 3000 steps at 1e-3 (the earlier defaults) ended 0.62
# nats above the true held-out NLL (0.59-0.64 over seeds 0-4, and 0.63 on 8gaussians); 3000 steps at
# 3e-3, 0.22; 6000 steps at 3e-3, 0.03 (benchmarks/train_defaults.py checks every toy and seed). On
# the 64-D digits the faster rate was worse (3000 steps, seed 0, one run each: held-out NLL by
# importance sampling 68.72 at 1e-3 with k-hat 0.63, 70.47 at 3e-3 with k-hat 1.04), so problems
# above 2-D keep 1e-3.
NETWORK_RATE = 3e-3  # on 2-D problems
NETWORK_RATE_HIGH_DIM = 1e-3  # above 2-D
NETWORK_STEPS = 6000
FAMILY_STEPS = 3000  # a cost family's few weights (IRL) learn at their own rate


def _key_record(key: jax.Array) -> list[int]:
    # what a checkpoint records of the run's key (JSON): its raw data
    return np.asarray(jax.random.key_data(key)).ravel().tolist()


def train_ebm(
    problem: str | Problem,
    method: str,
    *,
    steps: int | None = None,
    key: jax.Array | None = None,
    num_train: int = 5000,
    num_test: int = 5000,
    batch_size: int = 256,
    num_draws: int = 256,
    learning_rate: float | None = None,
    flow_epochs: int = 100,
    eval_every: int = 250,
    checkpoint_dir=None,
    checkpoint_every: int = 500,
    resume: bool = False,
    progress: bool = True,
    data: tuple[jax.Array, jax.Array] | None = None,
    tilted: bool = False,
    parametric: bool | None = None,
    evaluate: bool = True,
) -> EBMRun:
    """Train an MLP energy or (``parametric``; the default on trajectory spaces and for a user's
    :func:`~maxent_gan.models.builders.energy_problem`) the problem's cost family on its data by ``method`` (exact, gcl, gan). ``learning_rate=None`` picks :data:`NETWORK_RATE` for
    networks on 2-D problems (:data:`NETWORK_RATE_HIGH_DIM` above), the family's own rate (0.05 for IRL weights) otherwise; ``steps=None`` picks
    :data:`NETWORK_STEPS` for networks, :data:`FAMILY_STEPS` for cost families.

    ``data=(train, test)`` trains on your own points instead (each ``(n, problem.dim)``).
    ``tilted`` (tabular IRL): the sampler also learns transition tilts, so it can reach :math:`p_\\theta`.
    ``evaluate=False`` skips the held-out evaluation (``compare`` needs only θ̂ and the sampler).
    Names and data are checked before any training starts.
    """
    problem = make_problem(problem) if isinstance(problem, str) else problem
    parametric = check_parametric(problem, parametric=parametric)
    check_method(method, problem, parametric=parametric)
    if problem.data is None and data is None:
        raise ValueError(f"problem: {problem.name} has no data to train on; pass data=(train, test)")
    if learning_rate is None:
        learning_rate = (problem.family.learning_rate if parametric
                         else NETWORK_RATE if problem.dim <= 2 else NETWORK_RATE_HIGH_DIM)
    if steps is None:
        steps = FAMILY_STEPS if parametric else NETWORK_STEPS
    # what changes the numbers: a checkpoint of another run is refused (``steps`` too: the learning rate's
    # schedule spans them, so only the same total resumes into the numbers of an unbroken run)
    key = check_key(key)
    run = {"problem": problem.name, "method": method, "steps": steps, "key": _key_record(key), "num_train": num_train,
           "num_test": num_test,
           "batch_size": batch_size, "num_draws": num_draws, "learning_rate": float(learning_rate),
           "flow_epochs": flow_epochs, "tilted": tilted, "parametric": parametric, "data": "problem" if data is None else "given",
           "float64": bool(jax.config.jax_enable_x64)}
    if resume:  # the checkpoint's files and settings, before the data, the warm start and the compilation
        if checkpoint_dir is None:
            raise ValueError("resume: needs checkpoint_dir")
        check_checkpoint(checkpoint_dir, run=run, steps=steps)
    key_data, key_build, key_train, key_eval = jax.random.split(key, 4)
    train, test = problem.data(key_data, num_train, num_test) if data is None else data
    train, test = check_data(train, problem.dim), check_data(test, problem.dim, "test data")
    for name, points in (("data", train), ("test data", test)):
        check_in_space(problem.space, name, points)
    start = time.perf_counter()
    algorithm, state = build_training(
        problem, method, key_build, train, steps=steps, learning_rate=learning_rate, num_draws=num_draws,
        flow_epochs=flow_epochs, tilted=tilted, progress=progress, parametric=parametric,
    )
    result = run_training(
        key_train, algorithm, state, train, steps=steps, batch_size=batch_size,
        evaluate=_evaluator(problem, test, key_eval, 10_000, parametric=parametric) if evaluate else None, eval_every=eval_every,
        checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, resume=resume, run=run,
        progress=progress, desc=f"{method} on {problem.name}",
    )
    return EBMRun(problem, method, result, train, test, time.perf_counter() - start, parametric)


def ebm_summary(run: EBMRun) -> dict[str, Any]:
    """The JSON summary: held-out NLL (quadrature, 2D), true NLL, learned and exact log Z; for a cost
    family also θ (flattened in the order of ``theta_names``), θ* and the cost metrics."""
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
        "log_z_is_reliable": None if last.get("log_z_is_reliable") is None else bool(last["log_z_is_reliable"]),
        "seconds": run.seconds,
        "stopped": run.result.stopped,
    }
    family = run.problem.family
    if run.parametric:
        summary.update({key: last.get(key) for key in ("epic", "cost_correlation", "evd", "theta_error")})
        summary["theta_names"] = list(family.theta_names)
        summary["theta"] = family.flatten(family.to_sites(run.result.state.energy)).tolist()
        summary["theta_true"] = (None if family.theta_true is None
                                 else family.flatten(family.to_sites(family.theta_true)).tolist())
    target = run.problem.target
    if target is not None and target.log_normalizer is not None:
        summary["true_nll"] = float(jnp.mean(-target.normalized_log_prob(run.test)))
    return summary
