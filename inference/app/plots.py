"""Figures of the identities (notebook 01 and the main job's report)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from maxent_gan.inference.objectives import discriminator_loss

__all__ = ["new_figure", "plot_discriminator_loss", "plot_gradients", "plot_generator_and_sampler"]


def plot_discriminator_loss(ax, cost_data, cost_samples, log_q_data, log_q_samples, *, log_z_estimate,
                            log_z_exact=None, width=4.0):
    """L_disc against log Z, with the mixture (IS) estimate and the exact log Z marked."""
    grid = np.linspace(float(log_z_estimate) - width, float(log_z_estimate) + width, 201)
    losses = [float(discriminator_loss(cost_data, cost_samples, log_q_data, log_q_samples, z)) for z in grid]
    ax.plot(grid, losses, color="C0", label=r"$L_{disc}(\log Z)$")
    ax.axvline(float(log_z_estimate), color="C1", ls="--", label=f"mixture IS estimate {float(log_z_estimate):.4f}")
    if log_z_exact is not None:
        ax.axvline(float(log_z_exact), color="k", ls=":", label=f"exact log Z {float(log_z_exact):.4f}")
    ax.set_xlabel("log Z (the discriminator's learned scalar)")
    ax.set_ylabel("discriminator loss")
    ax.legend(fontsize=8)
    return ax


def plot_gradients(ax, grad_discriminator, grad_cost, *, labels=None):
    """The θ-gradients of L_disc and L_cost side by side, one pair of bars per parameter."""
    index = np.arange(len(grad_discriminator))
    ax.bar(index - 0.2, np.asarray(grad_discriminator), 0.4, label=r"$\nabla_\theta L_{disc}$")
    ax.bar(index + 0.2, np.asarray(grad_cost), 0.4, label=r"$\nabla_\theta L_{cost}$ (GCL)")
    ax.set_xticks(index, labels if labels is not None else [str(i) for i in index], rotation=45, fontsize=7)
    ax.axhline(0.0, color="k", lw=0.5)
    ax.legend(fontsize=8)
    return ax


def plot_generator_and_sampler(ax, steps, generator, sampler, *, log_z):
    """L_gen and L_sampler over training; their gap is the constant log Z (claim 3)."""
    ax.plot(steps, generator, label=r"$L_{gen}$ (GAN form)")
    ax.plot(steps, sampler, label=r"$L_{sampler}$ = -ELBO")
    ax.plot(steps, np.asarray(generator) - np.asarray(sampler), ls="--", label=r"$L_{gen} - L_{sampler}$")
    ax.axhline(float(log_z), color="k", ls=":", label=f"log Z = {float(log_z):.3f}")
    ax.set_xlabel("sampler training step")
    ax.legend(fontsize=8)
    return ax


def new_figure(ncols=1, size=(5.0, 3.6)):
    figure, axes = plt.subplots(1, ncols, figsize=(size[0] * ncols, size[1]), squeeze=False)
    return figure, axes[0]


def plot_density(ax, log_density, axes, *, title=""):
    """A normalized log density on a grid (``grid_log_density``), shown as a density."""
    xs, ys = (np.asarray(a) for a in axes)
    # exp of a *normalized* log density (finite, <= a few), only for display
    ax.imshow(np.exp(np.asarray(log_density)), origin="lower", extent=(xs[0], xs[-1], ys[0], ys[-1]),
              cmap="viridis", aspect="equal")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def plot_points(ax, x, bounds, *, title="", bins=120):
    """Points in 2D as a histogram on the same box as :func:`plot_density`."""
    x = np.asarray(x)
    ax.hist2d(x[:, 0], x[:, 1], bins=bins, range=[list(bounds[0]), list(bounds[1])], cmap="viridis")
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def plot_log_z_trace(ax, trace, *, label=""):
    """The method's log Z (learned scalar, mixture estimate, or exact) against quadrature."""
    from maxent_gan.inference.driver import trace_column

    steps, log_z = trace_column(trace, "log_z")
    ax.plot(steps, log_z, label=f"{label} log Z used in training".strip())
    steps, exact = trace_column(trace, "log_z_exact")
    if len(steps):
        ax.plot(steps, exact, "k:", marker="o", ms=3, label=f"{label} log Z by quadrature".strip())
    ax.set_xlabel("training step")
    ax.set_ylabel("log Z")
    ax.legend(fontsize=7)
    return ax


def plot_proposal_quality(ax, trace, *, label=""):
    """The proposal's Pareto k-hat against the current energy over training (ESS on a twin axis)."""
    from maxent_gan.inference.diagnostics import K_HAT_UNRELIABLE
    from maxent_gan.inference.driver import trace_column

    steps, k_hat = trace_column(trace, "k_hat")
    ax.plot(steps, k_hat, label=f"{label} k-hat".strip())
    ax.axhline(K_HAT_UNRELIABLE, color="r", ls="--", lw=0.8)
    ax.set_xlabel("training step")
    ax.set_ylabel("Pareto k-hat (dashed: 0.7)")
    ax.legend(fontsize=7)
    return ax


def plot_grid_costs(ax, state_costs, shape, *, title="", marks=None):
    """A heat map of per-state costs on a grid (centered: the gauge is removed), with optional
    ``marks``: ``{"label": (row, column)}`` drawn as letters."""
    import numpy as np

    values = np.asarray(state_costs).reshape(shape)
    values = values - values.mean()
    image = ax.imshow(values, cmap="magma_r", origin="upper")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    for label, (row, column) in (marks or {}).items():
        ax.text(column, row, label, ha="center", va="center", color="cyan", fontsize=9, weight="bold")
    ax.set(title=title, xticks=[], yticks=[])
