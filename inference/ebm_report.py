"""The outputs of ``maxent-gan train``: figures and JSON, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import equinox as eqx
import matplotlib.pyplot as plt

from inference.ebm import EBMRun, ebm_summary
from inference.io import save_figure, write_json
from inference.plots import plot_density, plot_grid_costs, plot_log_z_trace, plot_points, plot_proposal_quality
from models.energy import energy_cost
from models.quadrature import grid_log_density

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
        log_density, grid_axes, _ = eqx.filter_jit(grid_log_density)(
            lambda x, e=energy: energy_cost(e, x), problem.bounds, resolution
        )
        plot_density(ax, log_density, grid_axes, title=f"learned: {run.method}")
    figure.tight_layout()
    return figure


def cost_figure(runs: list[EBMRun]):
    """Gridworld heat maps: the demonstrations' state visits, the true cost, each run's learned
    cost (per state, averaged over actions, centered)."""
    import numpy as np

    problem = runs[0].problem
    spec = problem.irl
    shape = spec.system.shape
    states, _ = spec.layout.unpack(runs[0].train)
    visits = np.bincount(np.asarray(states).ravel(), minlength=spec.system.num_states)
    panels = 2 + len(runs)
    figure, axes = plt.subplots(1, panels, figsize=(3.0 * panels, 2.8), squeeze=False)
    axes = list(axes[0])
    plot_grid_costs(axes.pop(0), -np.log1p(visits), shape, title="demonstrations: -log(1 + visits)")
    plot_grid_costs(axes.pop(0), spec.cost_table(problem.true_params).mean(1), shape, title="true cost")
    for ax, run in zip(axes, runs, strict=True):
        plot_grid_costs(ax, spec.cost_table(run.result.state.energy).mean(1), shape, title=f"learned: {run.method}")
    figure.tight_layout()
    return figure


def paths_figure(run: EBMRun, *, num_paths: int = 60, seed: int = 5):
    """Point mass: demonstration paths and the learned sampler's, with the obstacles and the goal."""
    import jax
    import matplotlib.patches as patches
    import numpy as np

    task = run.problem.irl.system
    demo_states, _ = task.layout.unpack(run.train[:num_paths])
    draw_states, _ = task.layout.unpack(run.result.state.proposal.sample(jax.random.key(seed), num_paths))
    figure, axes = plt.subplots(1, 2, figsize=(9, 4), sharex=True, sharey=True)
    for ax, paths, title in [(axes[0], demo_states, "demonstrations (NUTS)"),
                             (axes[1], draw_states, f"learned sampler ({run.method})")]:
        for path in np.asarray(paths[:, :, :2]):
            ax.plot(path[:, 0], path[:, 1], color="C0", alpha=0.3, lw=0.8)
        for centre in task.obstacles:
            ax.add_patch(patches.Circle(centre, task.radius, color="C3", alpha=0.4))
        ax.plot(*task.goal, "k*", ms=12)
        ax.set(title=title, aspect="equal")
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


def write_training_outputs(run: EBMRun, out: str | Path) -> dict[str, Any]:
    """``summary.json``, ``trace.json`` and ``figures/training.png`` in ``out``, plus
    ``figures/density.png`` (2D energies), ``figures/costs.png`` (gridworlds) or
    ``figures/paths.png`` (the point mass)."""
    out = Path(out)
    summary = ebm_summary(run)
    if run.problem.bounds is not None:
        figure = density_figure([run])
        save_figure(figure, out / "figures" / "density.png")
        plt.close(figure)
    irl = run.problem.irl
    if irl is not None and irl.kind == "tabular" and irl.system.shape is not None:
        figure = cost_figure([run])
        save_figure(figure, out / "figures" / "costs.png")
        plt.close(figure)
    if irl is not None and irl.kind == "pointmass":
        figure = paths_figure(run)
        save_figure(figure, out / "figures" / "paths.png")
        plt.close(figure)
    figure = training_figure([run])
    save_figure(figure, out / "figures" / "training.png")
    plt.close(figure)
    write_json(out / "trace.json", run.result.trace)
    write_json(out / "summary.json", summary)
    return summary
