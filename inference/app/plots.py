"""Figures: the identities (notebook 01) and the main job's report (forest, k-hat, cost maps)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from maxent_gan.inference.diagnostics import K_HAT_UNRELIABLE
from maxent_gan.inference.objectives import discriminator_loss
from maxent_gan.models.problem import CostFamily
from maxent_gan.models.spaces import TabularTrajectories

__all__ = ["cost_maps", "forest_figure", "k_hat_figure", "new_figure", "proposal_colors", "plot_discriminator_loss", "plot_gradients", "plot_generator_and_sampler"]


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


def proposal_colors(names, order=()) -> dict[str, Any]:
    """One colour per proposal, the same in every figure when ``order`` (every known name) is given;
    exact is black."""
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    others = [n for n in order if n != "exact"] + [n for n in names if n not in order]
    return {name: "black" if name == "exact" else palette[others.index(name) % len(palette)] for name in names}


def forest_figure(family: CostFamily, summary: dict, idatas: dict, *, order=()):
    """Per weight, each proposal's posterior mean and 94% interval; θ* a star on its own row; posteriors
    beyond the axis (set by the exact posterior) named in the figure instead of flattening the rest."""
    from matplotlib.figure import Figure

    names, weights = list(idatas), summary["theta_names"]
    colors = proposal_colors(names, order)
    figure = Figure(figsize=(7, 1.0 + 0.32 * len(weights) * (len(names) + 1)))
    ax = figure.subplots()
    reference = summary["proposals"].get("exact")
    limits = None
    if reference is not None:
        mean, sd = np.asarray(reference["posterior_mean"]), np.asarray(reference["posterior_sd"])
        points = np.concatenate([mean - 8 * sd, mean + 8 * sd, summary["theta_true"] or []])
        limits = (points.min(), points.max())
    off_scale = []
    rows = _forest_rows(len(names), truth=summary["theta_true"] is not None)
    for j, weight in enumerate(weights):
        base = len(weights) - 1 - j
        if summary["theta_true"] is not None:
            ax.plot(summary["theta_true"][j], base + rows.truth, marker="*", color="gold", markeredgecolor="k",
                    ms=12, zorder=3, label="θ* (truth)" if j == 0 else None)
        for i, name in enumerate(names):
            draws = family.flatten(idatas[name].posterior)[..., j].ravel()
            low, high = np.quantile(draws, [0.03, 0.97])
            y = base + rows.proposals[i]
            if limits is not None and (draws.mean() < limits[0] or draws.mean() > limits[1]):
                off_scale.append(f"{name} on {weight}: {draws.mean():.4g}")
                continue
            ax.plot([low, high], [y, y], color=colors[name], lw=2)
            ax.plot(draws.mean(), y, "o", color=colors[name], ms=4, label=name if j == 0 else None)
    ax.set_yticks([len(weights) - 1 - j + 0.5 for j in range(len(weights))], weights)
    if limits is not None:
        ax.set_xlim(*limits)
    ax.set_title(f"{summary['problem']}: posterior mean and 94% interval of each weight, per proposal")
    ax.set_xlabel("weight value" + ("" if not off_scale else "\noff the scale (mean): " + "; ".join(off_scale)))
    ax.legend(loc="best", fontsize=7)
    figure.tight_layout()
    return figure


class _ForestRows(NamedTuple):
    truth: float  # θ*'s offset within a weight's band of height 1
    proposals: tuple[float, ...]  # each proposal's offset, in order


def _forest_rows(num_proposals: int, *, truth: bool) -> _ForestRows:
    """Offsets within a weight's band: θ* (when known) on the top row of its own, the proposals below it,
    every row a distinct height (a proposal sharing θ*'s row would hide its marker under the star)."""
    slots = num_proposals + (1 if truth else 0)
    offsets = [1 - (k + 1) / (slots + 1) for k in range(slots)]
    return _ForestRows(offsets[0] if truth else float("nan"), tuple(offsets[1:] if truth else offsets))


def k_hat_figure(summary: dict, idatas: dict):
    """What the per-draw rule reads, per posterior draw and proposal: the reverse k-hat of the proposal's
    weights (left) and the forward k-hat over the data (right), each draw red where the rule calls its
    log Ẑ(θ) unreliable (by either, or by an ESS); under each proposal the share of such draws and the
    draw-set error, the posterior-level check. Axes cover every value; proposals without draws left out."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    names = [n for n in idatas if np.isfinite(idatas[n].sample_stats["log_z_k_hat"].values).any()]
    figure = Figure(figsize=(max(6.0, 1.6 * len(names) + 3), 3.6))
    axes = figure.subplots(1, 2, sharey=True)
    rng = np.random.default_rng(0)
    labels = []
    for i, name in enumerate(names):
        stats = idatas[name].sample_stats
        reliable = stats["log_z_reliable"].values.ravel() if "log_z_reliable" in stats else None
        row = summary["proposals"].get(name, {})
        label = name
        if row.get("unreliable_fraction") is not None:
            label += f"\n{100 * row['unreliable_fraction']:.0f}% unreliable"
        if row.get("draw_set_error") is not None:
            label += f"\ndraw-set {row['draw_set_error']:.2f} sd"
        labels.append(label)
        for ax, variable in zip(axes, ("log_z_k_hat", "log_z_forward_k_hat"), strict=True):
            if variable not in stats:
                continue
            values = stats[variable].values.ravel()
            keep = np.isfinite(values)
            bad = np.zeros_like(keep) if reliable is None else ~reliable.astype(bool)
            x = i + 0.12 * rng.standard_normal(values.size)
            for mask, color in ((keep & ~bad, "tab:blue"), (keep & bad, "tab:red")):
                ax.scatter(x[mask], values[mask], s=3, alpha=0.35, color=color)
    values = np.concatenate([idatas[n].sample_stats[v].values.ravel() for n in names
                             for v in ("log_z_k_hat", "log_z_forward_k_hat") if v in idatas[n].sample_stats]
                            or [np.zeros(1)])
    values = values[np.isfinite(values)]
    low, high = _k_hat_limits(values)
    for ax, title in zip(axes, ("reverse k-hat (the proposal's weights)", "forward k-hat (over the data)"),
                         strict=True):
        ax.axhline(K_HAT_UNRELIABLE, color="r", ls="--", lw=1)
        ax.set_yscale("symlog", linthresh=1.0)  # linear in [-1, 1] where the thresholds are, logarithmic beyond
        ax.set_ylim(low, high)
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(range(len(names)), labels, fontsize=7)
        ax.set_title(title, fontsize=9)
    axes[0].set_ylabel(f"per posterior draw (dashed: {K_HAT_UNRELIABLE})")
    figure.suptitle(f"{summary['problem']}: how far to trust log Ẑ(θ) at each posterior draw "
                    "(red: the rule calls that draw unreliable)", fontsize=9)
    figure.tight_layout()
    return figure


def _k_hat_limits(values: np.ndarray) -> tuple[float, float]:
    """y-limits holding every value and the 0.7 threshold, with a margin (symlog: linear within ±1)."""
    low = min(float(values.min(initial=0.0)), 0.0)
    high = max(float(values.max(initial=0.0)), K_HAT_UNRELIABLE)
    margin = 0.1 * (high - low) if high <= 1.0 else 0.0
    return low - 0.1 - margin if low < 0 else -0.1, high * 1.3 if high > 1.0 else high + 0.1 + margin


def cost_maps(space: TabularTrajectories, summary: dict):
    """Posterior-mean cost minus the true cost per state (gauge removed), one shared diverging scale;
    sparse binary state features (goal, walls) marked by their initials."""
    from matplotlib.figure import Figure

    shape = space.grid_shape
    rows = {name: row for name, row in summary["proposals"].items()}
    true = np.asarray(space.cost_table(jnp.asarray(summary["theta_true"])).mean(1))
    true = true - true.mean()
    diffs = {}
    for name, row in rows.items():
        cost = np.asarray(space.cost_table(jnp.asarray(row["posterior_mean"])).mean(1))
        diffs[name] = (cost - cost.mean()) - true
    # one scale for every difference, set by the posteriors within 5 sd of exact (a far-off one saturates)
    near = [diffs[n] for n, row in rows.items() if (row.get("shift_max_sd") or 0.0) <= 5.0] or [true]
    scale = max(float(np.abs(np.concatenate(near)).max()), 1e-12)
    marks = _feature_marks(space)
    panels = 1 + len(diffs)
    figure = Figure(figsize=(2.7 * panels, 3.0))
    axes = figure.subplots(1, panels, squeeze=False)
    axes = list(axes[0])
    image = axes[0].imshow(true.reshape(shape), cmap="magma_r")
    figure.colorbar(image, ax=axes[0], fraction=0.046, pad=0.04)
    axes[0].set(title="true cost (centred)", xticks=[], yticks=[])
    for ax, (name, diff) in zip(axes[1:], diffs.items(), strict=True):
        image = ax.imshow(diff.reshape(shape), cmap="RdBu_r", vmin=-scale, vmax=scale)
        ax.set(title=f"{name} − truth", xticks=[], yticks=[])
    figure.colorbar(image, ax=axes[1:], fraction=0.046, pad=0.04, label="posterior-mean cost − true cost")
    for ax in axes:
        for label, cells in marks.items():
            for row, column in cells:
                ax.text(column, row, label, ha="center", va="center", color="lime", fontsize=8, weight="bold")
    figure.suptitle(f"{summary['problem']}: cost per state, averaged over actions (same colour scale for every "
                    "difference; letters mark sparse features)", fontsize=9)
    return figure


def _feature_marks(space: TabularTrajectories) -> dict[str, list[tuple[int, int]]]:
    """Cells of each sparse binary state feature (at most a quarter of the states), by the feature's initial."""
    features = np.asarray(space.mdp.features)  # (S, A, F)
    shape = space.grid_shape
    marks = {}
    for f, name in enumerate(space.mdp.feature_names):
        values = features[:, :, f].max(1)
        on = np.flatnonzero(values)
        if np.isin(values, (0.0, 1.0)).all() and 0 < on.size <= values.size // 4:
            marks[name[0].upper()] = [divmod(int(i), shape[1]) for i in on]
    return marks
