"""Figures of the identities (notebook 01 and the main job's report)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from inference.objectives import discriminator_loss

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
