# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 — An energy on 64-D digits, where only the sampler knows Z
#
# scikit-learn's bundled 8x8 digits (1797 images; nothing is downloaded), dequantized
# (pixel + U(0, 1), divided by 17) and standardized, are a real 64-dimensional data set. No
# grid can integrate $e^{-c_\theta}$ in 64 dimensions, so the exact method is out of reach and
# says so. GCL and the GAN form need only a sampler: a spline coupling flow, which is also how
# we draw digits from the learned model and estimate $\log Z(\theta)$ by importance sampling.
# Set `MAXENT_GAN_QUICK=1` for a short run.

# %%
import os

import jax
import matplotlib.pyplot as plt
import numpy as np
from maxent_gan.inference.driver import trace_column
from maxent_gan.inference.ebm import ebm_summary, train_ebm
from maxent_gan.models.digits import load_digits_data, to_pixels
from maxent_gan.models.problems import make_problem

QUICK = os.environ.get("MAXENT_GAN_QUICK") == "1"
STEPS = 20 if QUICK else 3000
SETTINGS = dict(steps=STEPS, key=jax.random.key(0), flow_epochs=1 if QUICK else 100, eval_every=STEPS if QUICK else 250,
                batch_size=128, num_draws=128, progress=False)
problem = make_problem("digits")

# %% [markdown]
# The exact method needs quadrature, which exists only in 2D; the library refuses before any
# work rather than silently doing something else:

# %%
try:
    train_ebm(problem, "exact", steps=1)
except ValueError as error:
    print(error)

# %%
runs = [train_ebm(problem, method, **SETTINGS) for method in ("gcl", "gan")]
for run in runs:
    s = ebm_summary(run)
    print(f"{s['method']:>4}: held-out NLL with IS log Z {s['held_out_nll_is']:.2f} nats "
          f"(64 dims), log Z used {s['log_z_learned']:.2f}, IS estimate {s['log_z_is']:.2f}, "
          f"k-hat {s['k_hat']:.2f}, {s['seconds']:.0f} s")

# %% [markdown]
# ## Digits drawn from the learned samplers
# Top row: held-out data. Then draws from the GCL sampler and from the GAN form's generator,
# each trained to match its own learned energy $p_\theta$ (reverse KL). In a full run they
# look like digits: blurry strokes, the typical look of a flow on 64 dimensions; in quick mode
# they are close to the warm start.

# %%
digits = load_digits_data(jax.random.key(0))
rows = [("held-out data", to_pixels(digits.test[:10], digits.loc, digits.scale))]
for run in runs:
    draws = run.result.state.proposal.sample(jax.random.key(7), 10)
    rows.append((f"{run.method} sampler", to_pixels(draws, digits.loc, digits.scale)))
figure, axes = plt.subplots(len(rows), 10, figsize=(10, 1.1 * len(rows)))
for (label, images), ax_row in zip(rows, axes, strict=True):
    for image, ax in zip(images, ax_row, strict=True):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    ax_row[0].set_ylabel(label, rotation=0, ha="right", fontsize=8)
plt.show()

# %% [markdown]
# ## log Z over training, and how far to trust it
# Left: the $\log Z$ each method uses (GCL: the mixture estimate; GAN form: the learned
# scalar) against an independent importance estimate from 10⁴ fresh sampler draws. Right:
# Pareto $\hat k$ of those weights. In 64 dimensions $\hat k$ is the only honest statement of
# how much the estimate can be trusted: above 0.7 (dashed), treat $\log Z$ as a lower bound.

# %%
figure, (ax_z, ax_k) = plt.subplots(1, 2, figsize=(10, 3.4))
for run in runs:
    ax_z.plot(*trace_column(run.result.trace, "log_z"), label=f"{run.method}: log Z used")
    ax_z.plot(*trace_column(run.result.trace, "log_z_is"), "o:", ms=3, label=f"{run.method}: IS, 10⁴ draws")
    ax_k.plot(*trace_column(run.result.trace, "k_hat_eval"), "o-", ms=3, label=run.method)
ax_z.set(xlabel="training step", ylabel="log Z")
ax_k.axhline(0.7, color="r", ls="--", lw=0.8)
ax_k.set(xlabel="training step", ylabel="Pareto k-hat")
ax_z.legend(fontsize=7)
ax_k.legend(fontsize=7)
plt.show()
print("final k-hat:", {run.method: np.round(trace_column(run.result.trace, "k_hat_eval")[1][-1], 2) for run in runs})
