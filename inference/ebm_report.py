"""The outputs of ``maxent-gan train``: figures and JSON, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import equinox as eqx
import matplotlib.pyplot as plt

from inference.ebm import EBMRun, ebm_summary
from inference.io import save_figure, write_json
from inference.plots import plot_density, plot_log_z_trace, plot_points, plot_proposal_quality
from models.energy import energy_cost
from models.quadrature import grid_log_density

__all__ = ["density_figure", "training_figure", "write_training_outputs"]


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


def training_figure(runs: list[EBMRun]):
    """log Z used in training against quadrature, and the proposal's k-hat, per run."""
    figure, (ax_z, ax_k) = plt.subplots(1, 2, figsize=(10, 3.4))
    for run in runs:
        plot_log_z_trace(ax_z, run.result.trace, label=run.method)
        plot_proposal_quality(ax_k, run.result.trace, label=run.method)
    figure.tight_layout()
    return figure


def write_training_outputs(run: EBMRun, out: str | Path) -> dict[str, Any]:
    """``summary.json``, ``trace.json`` and ``figures/{density,training}.png`` in ``out``."""
    out = Path(out)
    summary = ebm_summary(run)
    if run.problem.bounds is not None:
        figure = density_figure([run])
        save_figure(figure, out / "figures" / "density.png")
        plt.close(figure)
    figure = training_figure([run])
    save_figure(figure, out / "figures" / "training.png")
    plt.close(figure)
    write_json(out / "trace.json", run.result.trace)
    write_json(out / "summary.json", summary)
    return summary
