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
# # 05 — MaxEnt IRL on a linear-quadratic system
#
# A double integrator (position, velocity; a force as action), started near position 2 at rest,
# with Gaussian process noise. The cost is
# $c_\theta(x, u) = \tfrac12(x^\top Q_\theta x + u^\top R_\theta u)$ with
# $\theta = (\log Q_{11}, \log Q_{22}, \log R)$, so $Z(\theta)$ is finite for every θ. The
# trajectory model is Gaussian: a backward Riccati recursion gives $\log Z(\theta)$ exactly and
# exact samples, and the demonstrations are drawn from it at a known θ*.
# Set `MAXENT_GAN_QUICK=1` for a short run (the test suite does).

# %%
import os

import jax
import matplotlib.pyplot as plt
import numpy as np
from maxent_gan.inference.app.logz import compare_proposals
from maxent_gan.inference.app.train_outputs import paths_figure, training_figure
from maxent_gan.inference.ebm import ebm_summary, train_ebm
from maxent_gan.inference.training import METHODS
from maxent_gan.models.problems import make_problem

QUICK = os.environ.get("MAXENT_GAN_QUICK") == "1"
STEPS = 40 if QUICK else 1000
problem = make_problem("lqr")
demos, test = problem.data(jax.random.key(0), 300, 1000)
states, actions = problem.space.layout.unpack(demos)
print(f"θ* = {np.asarray(problem.true_params)}, exact log Z(θ*) = {float(problem.target.log_normalizer):.4f}")

figure, (ax_x, ax_u) = plt.subplots(1, 2, figsize=(9, 2.8))
ax_x.plot(np.asarray(states[:30, :, 0]).T, color="C0", alpha=0.4)
ax_x.set(xlabel="t", ylabel="position", title="30 demonstrations")
ax_u.plot(np.asarray(actions[:30, :, 0]).T, color="C1", alpha=0.4)
ax_u.set(xlabel="t", ylabel="force")
plt.show()

# %% [markdown]
# The demonstrations drift toward the origin, noisily: MaxEnt trades cost against entropy.
#
# ## Proposals for Z(θ*)
# The *soft-optimal* policy here is linear-Gaussian, $u_t \sim N(-H_t^{-1}G_t x_t, H_t^{-1})$
# from the same recursion, with its own start $x_0 \sim N(\cdot)$ tilted by $\beta_0$. Without
# noise it is the exact model; with noise the exact model also tilts each transition, and the
# weights pay for what the policy cannot do (a policy with transition tilts,
# `soft_optimal(..., tilted=True)`, is the exact model; the samplers `compare` trains learn them). Note the broad proposal (zero gain, unit force
# noise): in 62 dimensions its weights degenerate completely.

# %%
rows = compare_proposals(problem, samples=2_000 if QUICK else 10_000, fit_steps=30 if QUICK else 1000)
for row in rows:
    k_hat = "-inf (equal weights)" if row["k_hat"] == float("-inf") else f"{row['k_hat']:.2f}"
    print(f"{row['proposal']:>12}: log Z error {row['error']:+.4f}, ESS {row['ess']:8.1f}, k-hat {k_hat}")

# %% [markdown]
# ## Learn θ three ways from 300 demonstrations
# All three start from θ = 0 (identity Q and R) and a linear-Gaussian policy fitted to the
# demonstrations by least squares. The policy is trained through the dynamics (a pathwise
# gradient), and the learned θ is compared with θ*.

# %%
runs = [train_ebm(problem, method, steps=STEPS, data=(demos, test), batch_size=300,
                  eval_every=STEPS if QUICK else 100, progress=False) for method in METHODS]
for run in runs:
    s = ebm_summary(run)
    print(f"{s['method']:>5}: θ = {np.round(s['theta'], 3)}, |θ - θ*| = {s['theta_error']:.3f}, "
          f"held-out NLL {s['held_out_nll']:.3f} (true {s['true_nll']:.3f}), "
          f"log Z used {s['log_z_learned']:.3f} vs exact {s['log_z_exact']:.3f}")

# %% [markdown]
# ## log Z and the sampler over training
# Left: the $\log Z$ each method uses against the exact one at the same step. Right: the
# policy's $\hat k$: around 0.5 (usable, not good): the policy cannot follow the tilted transitions,
# and GCL's mixture estimate of log Z ends within a tenth of a nat of the exact one.

# %%
figure = training_figure(runs)
plt.show()

# %% [markdown]
# ## When no recursion gives Z: the point mass
# Add quadratic drag to the dynamics and three round obstacles to the cost, and the model is no
# longer Gaussian: there is no exact $\log Z(\theta)$ and no exact sampler. The demonstrations
# are NUTS draws on the trajectory's free variables (start, forces, noise); the library checks
# that sampler against the exact LQR in the case where the task reduces to one. The exact method
# is refused; GCL learns θ with an MLP Gaussian policy as its sampler, and that policy's
# importance estimate (with its $\hat k$) is the only $\log Z$ there is.

# %%
pointmass = make_problem("pointmass")
pm_run = train_ebm(pointmass, "gcl", steps=STEPS if QUICK else 1500, num_train=50 if QUICK else 300,
                   num_test=25 if QUICK else 1000, batch_size=50 if QUICK else 300,
                   eval_every=STEPS if QUICK else 100, progress=False)
s = ebm_summary(pm_run)
print(f"θ* = {np.asarray(pointmass.true_params)}, learned θ = {np.round(s['theta'], 3)}; "
      f"log Z by the policy: {s['log_z_is']:.3f} (k-hat {s['k_hat']:.2f}); held-out NLL (IS) {s['held_out_nll_is']:.3f}")

figure = paths_figure(pm_run)
plt.show()

# %% [markdown]
# Left, the demonstrations thread between the obstacles (red) toward the goal (star); right,
# trajectories of the learned sampler. Where it matches the demonstrations' spread, its $\hat k$
# is low and its $\log Z$ can be trusted; where $\hat k$ exceeds 0.7, the number above is printed
# with a warning rather than trusted.
