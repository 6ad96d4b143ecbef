# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 — MaxEnt IRL on a gridworld: an energy-based model over trajectories
#
# In the paper, MaxEnt IRL *is* an EBM: a trajectory $\tau = (s_0, a_0, \dots, s_T)$ has density
# $p_\theta(\tau) = \nu(\tau)\, e^{-c_\theta(\tau)} / Z(\theta)$ relative to the dynamics
# $\nu(\tau) = p_0(s_0)\prod_t P(s_{t+1}|s_t,a_t)$, with $c_\theta(\tau) = \sum_t \theta\cdot\phi(s_t,a_t)$.
# On a grid, $\log Z(\theta)$ and exact samples come from a backward recursion, so every
# estimate below can be scored against the truth.
#
# The grid: 8 x 8, start top-left, goal bottom-right, a costly wall across the middle with gaps
# at both ends, moves that slip with probability 0.1. Features: at the goal, on the wall,
# distance to the goal, and moving (effort). Demonstrations are exact draws at a known θ*.
# Set `MAXENT_GAN_QUICK=1` for a short run (the test suite does).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from maxent_gan.inference.app.logz import compare_proposals
from maxent_gan.inference.app.train_outputs import cost_figure, training_figure
from maxent_gan.inference.ebm import ebm_summary, train_ebm
from maxent_gan.inference.training import METHODS
from maxent_gan.models.problems import make_problem

QUICK = os.environ.get("MAXENT_GAN_QUICK") == "1"
STEPS = 40 if QUICK else 1500
DEMOS = 100
problem = make_problem("gridworld")
mdp = problem.space.mdp  # a tabular sample space: the MDP, its features and its horizon
print(f"θ* = {dict(zip(problem.family.theta_names, np.asarray(problem.true_params).round(2), strict=True))}")
print(f"exact log Z(θ*) = {float(problem.target.log_normalizer):.4f} over {mdp.num_states} states, "
      f"T = {mdp.horizon}")

# %% [markdown]
# ## Which proposal can stand in for Z?
# Importance sampling needs $\log q(\tau)$ relative to the same $\nu$: for a policy that is
# $\sum_t \log\pi(a_t|s_t)$, and the dynamics cancel. Four proposals at θ*, $10^4$ draws each:
# the exact sampler (the oracle: every weight equals $Z$), the uniform policy, the *soft-optimal*
# policy (the exact action conditional of $p_{\theta^*}$), and a tabular policy fitted by
# reverse KL with the score-function gradient.
#
# The soft-optimal policy is not exact here: under stochastic dynamics the trajectory MaxEnt
# model also *tilts the transitions* toward good outcomes (it behaves as if it could choose its
# slips), which no policy can do. Pareto $\hat k$ says how much that costs: above 0.7 the
# estimate is not to be trusted, whatever its value happens to be.

# %%
rows = compare_proposals(problem, samples=2_000 if QUICK else 10_000, fit_steps=30 if QUICK else 1000)
for row in rows:
    k_hat = "-inf (equal weights)" if row["k_hat"] == float("-inf") else f"{row['k_hat']:.2f}"
    print(f"{row['proposal']:>12}: log Z error {row['error']:+.4f}, ESS {row['ess']:8.1f}, k-hat {k_hat}")
figure, ax = plt.subplots(figsize=(5, 2.6))
# the oracle's weights are all equal (k-hat = -inf): drawn at 0
ax.bar([r["proposal"] for r in rows], np.clip([r["k_hat"] for r in rows], 0.0, 3.0), color="C0")
ax.axhline(0.7, color="k", ls="--", lw=0.8)
ax.set(ylabel="Pareto k-hat", title="proposals for Z(θ*) (dashed: 0.7)")
plt.show()

# %% [markdown]
# ## Learn the cost three ways from 100 demonstrations
# Exact MaxEnt IRL (the recursion gives $\log Z$ and its gradient, the expected feature counts),
# GCL (the mixture importance estimate from a learned policy), and the GAN form (a learned
# scalar $\log Z$). All start from θ = 0 and a policy cloned from the demonstrations.

# %%
runs = [train_ebm(problem, method, steps=STEPS, num_train=DEMOS, num_test=1000, batch_size=DEMOS,
                  eval_every=20 if QUICK else 100, progress=False) for method in METHODS]
for run in runs:
    s = ebm_summary(run)
    print(f"{s['method']:>5}: EPIC {s['epic']:.3f}, cost correlation {s['cost_correlation']:.3f}, "
          f"EVD {s['evd']:.3f}, held-out NLL {s['held_out_nll']:.3f} (true {s['true_nll']:.3f}), "
          f"log Z used {s['log_z_learned']:.3f} vs exact {s['log_z_exact']:.3f}")

# %% [markdown]
# ## Learned against true cost
# Left: where the demonstrations went. Then the true per-state cost (averaged over actions,
# centered: the additive gauge is not identified) and each method's learned cost. The wall and
# the pull toward the goal are recovered by all three; EPIC (0 = equal up to shaping and
# scale) and EVD (the true cost paid by acting optimally for the learned cost, minus the best)
# above put numbers on it.

# %%
figure = cost_figure(runs)
plt.show()

# %% [markdown]
# ## log Z and the sampler over training
# Left: the $\log Z$ each method uses (solid) against the exact $\log Z(\theta)$ at the same step
# (dotted). Right: the learned policy's $\hat k$ against the current cost. Under slip the policy
# cannot match the tilted transitions, so $\hat k$ stays high: GCL and the GAN form still learn
# the cost (their gradients only need the weights' *ratios* on a mixture that contains the data),
# but a reported $\log Z$ from such a sampler alone would deserve the warning it gets.

# %%
figure = training_figure(runs)
plt.show()
