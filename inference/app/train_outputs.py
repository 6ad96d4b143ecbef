"""The outputs of ``maxent-gan train``: figures and JSON, written atomically."""

from __future__ import annotations

from functools import singledispatch
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import matplotlib.pyplot as plt
from maxent_gan.inference.app.cross_check import CROSS_CHECK_PARTICLES, annealer
from maxent_gan.inference.app.plots import (
    plot_density,
    plot_grid_costs,
    plot_log_z_trace,
    plot_points,
    plot_proposal_quality,
)
from maxent_gan.inference.ebm import EBMRun, ebm_summary, learned_target
from maxent_gan.inference.io import finite_or_none, save_figure, write_json
from maxent_gan.models.energy import energy_cost
from maxent_gan.models.quadrature import grid_log_density
from maxent_gan.models.spaces import Points, SimulatorTrajectories, TabularTrajectories

__all__ = ["cost_figure", "density_figure", "paths_figure", "training_figure", "write_training_outputs"]


def density_figure(runs: list[EBMRun], *, resolution: int = 200):
    """Data, the true density (when known), and each run's learned density, on one box."""
    problem = runs[0].problem
    panels = 1 + (problem.target is not None) + len(runs)
    figure, axes = plt.subplots(1, panels, figsize=(2.6 * panels, 2.8), squeeze=False)
    axes = list(axes[0])
    plot_points(axes.pop(0), runs[0].train, problem.bounds, title=f"{problem.name}: data")
    if problem.target is not None:
        log_density, grid_axes, _ = grid_log_density(problem.target.cost, problem.bounds, resolution)
        plot_density(axes.pop(0), log_density, grid_axes, title="true density")
    for ax, run in zip(axes, runs, strict=True):
        energy = run.result.state.energy
        cost = problem.family.cost_fn if run.parametric else energy_cost
        log_density, grid_axes, _ = eqx.filter_jit(grid_log_density)(
            lambda x, e=energy, cost=cost: cost(e, x), problem.bounds, resolution
        )
        plot_density(ax, log_density, grid_axes, title=f"learned: {run.method}")
    figure.tight_layout()
    return figure


def cost_figure(runs: list[EBMRun]):
    """Gridworld heat maps: the demonstrations' state visits, the true cost, each run's learned
    cost (per state, averaged over actions, centered)."""
    import numpy as np

    problem = runs[0].problem
    space = problem.space
    shape = space.grid_shape
    states, _ = space.layout.unpack(runs[0].train)
    visits = np.bincount(np.asarray(states).ravel(), minlength=space.mdp.num_states)
    panels = 2 + len(runs)
    figure, axes = plt.subplots(1, panels, figsize=(3.0 * panels, 2.8), squeeze=False)
    axes = list(axes[0])
    plot_grid_costs(axes.pop(0), -np.log1p(visits), shape, title="demonstrations: -log(1 + visits)")
    theta_true = problem.family.theta_true
    if theta_true is not None:
        plot_grid_costs(axes.pop(0), space.cost_table(theta_true).mean(1), shape, title="true cost")
    else:
        axes.pop(0).set_axis_off()
    for ax, run in zip(axes, runs, strict=True):
        plot_grid_costs(ax, space.cost_table(run.result.state.energy).mean(1), shape, title=f"learned: {run.method}")
    figure.tight_layout()
    return figure


def paths_figure(run: EBMRun, *, num_paths: int = 60, seed: int = 5):
    """A simulator's trajectories: the first two state coordinates of the demonstrations and of the learned
    sampler's draws (positions for the point mass, angle and velocity for the pendulum), with the task's
    scene where it draws one."""
    import jax
    import numpy as np

    space = run.problem.space
    layout = space.layout
    demo_states, _ = layout.unpack(run.train[:num_paths])
    draw_states, _ = layout.unpack(run.result.state.proposal.sample(jax.random.key(seed), num_paths))
    figure, axes = plt.subplots(1, 2, figsize=(9, 4), sharex=True, sharey=True)
    for ax, paths, title in [(axes[0], demo_states, "demonstrations"),
                             (axes[1], draw_states, f"learned sampler ({run.method})")]:
        for path in np.asarray(paths[:, :, :2]):
            ax.plot(path[:, 0], path[:, 1], color="C0", alpha=0.3, lw=0.8)
        if space.decorate is not None:
            space.decorate(ax)
        ax.set(title=title)
    figure.tight_layout()
    return figure


def training_figure(runs: list[EBMRun]):
    """log Z used in training against quadrature, and the proposal's k-hat, per run."""
    figure, (ax_z, ax_k) = plt.subplots(1, 2, figsize=(10, 3.4))
    for run in runs:
        plot_log_z_trace(ax_z, run.result.trace, label=run.method)
        plot_proposal_quality(ax_k, run.result.trace, label=run.method)
    figure.tight_layout()
    return figure


@singledispatch
def space_figures(space, run: EBMRun) -> dict[str, Any]:
    """The figures a sample space adds to ``train``'s outputs, by file stem: none by default."""
    return {}


@space_figures.register
def _(space: Points, run):
    return {} if space.bounds is None else {"density": density_figure([run])}


@space_figures.register
def _(space: TabularTrajectories, run):
    return {} if space.grid_shape is None else {"costs": cost_figure([run])}


@space_figures.register
def _(space: SimulatorTrajectories, run):
    return {"paths": paths_figure(run)}


def smc_check(run: EBMRun, *, key: jax.Array | None = None, num_particles: int = CROSS_CHECK_PARTICLES) -> dict[str, Any]:
    """Where no exact log Z exists (points in R^d, a simulator's trajectories under its policy), the final
    importance estimate of log Z against adaptive
    tempered SMC with ``num_particles`` particles started at the learned sampler:
    ``log_z_smc``, ``log_z_smc_reliable`` (the bridge's own rule, with the held-out data as its forward
    check) and ``log_z_smc_difference`` (log Z_IS - log Z_SMC). Empty where it does not apply."""
    last = {k: v for row in run.result.trace for k, v in row.items()}
    proposal = run.result.state.proposal
    anneal = annealer(run.problem, proposal)
    if last.get("log_z_exact") is not None or "log_z_is" not in last or anneal is None or num_particles == 0:
        return {}
    estimate = anneal(jax.random.key(0) if key is None else key, learned_target(run), proposal,
                      num_particles=num_particles, data=run.test[:200])
    return {"log_z_smc": finite_or_none(estimate.log_z), "log_z_smc_reliable": estimate.reliable,
            "log_z_smc_difference": finite_or_none(last["log_z_is"] - float(estimate.log_z))}


def write_training_outputs(run: EBMRun, out: str | Path, *,
                           check_particles: int = CROSS_CHECK_PARTICLES) -> dict[str, Any]:
    """``summary.json``, ``trace.json`` and ``figures/training.png`` in ``out``, plus
    the figures of the problem's sample space (:func:`space_figures`: ``density.png`` for 2-D points,
    ``costs.png`` for a gridworld, ``paths.png`` for the point mass). The summary carries :func:`smc_check`'s
    cross-check with ``check_particles`` particles (0: none)."""
    out = Path(out)
    summary = ebm_summary(run)
    summary.update(smc_check(run, num_particles=check_particles))
    for name, figure in space_figures(run.problem.space, run).items():
        save_figure(figure, out / "figures" / f"{name}.png")
        plt.close(figure)
    figure = training_figure([run])
    save_figure(figure, out / "figures" / "training.png")
    plt.close(figure)
    write_json(out / "trace.json", run.result.trace)
    write_json(out / "summary.json", summary)
    return summary
