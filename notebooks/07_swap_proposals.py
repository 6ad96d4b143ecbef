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
# # 07 — Swap the proposal, watch k-hat
#
# In the posterior of notebook 06 the proposal is the only approximation: it stands in for the
# intractable $Z(\theta)$ through one fixed set of importance draws. Which proposal, then? Here
# we swap it in one argument and score every posterior against the exact-normalizer one, on
# the gridworld (100 demonstrations from a known θ*):
#
# - `broad`: every action equally likely (the broad proposal);
# - `cloned`: a policy fitted to the demonstrations by counting (behaviour cloning);
# - `soft-optimal at θ*`: the exact action conditional of the *true* cost, an oracle a user
#   would not have, and still not $p_{\theta}$ (it cannot tilt the slips);
# - `gcl`: the sampler guided cost learning trains alongside the cost, with transition tilts.
#
# The question for each: is the posterior right, and does Pareto $\hat k$ tell us when it is not?
# Set `MAXENT_GAN_QUICK=1` for a short run (the test suite does).

# %%
import os
import warnings

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from maxent_gan.inference.app.compare import CompareSettings, compare, render_report
from maxent_gan.inference.diagnostics import UnreliableEstimateWarning
from maxent_gan.inference.ebm import train_ebm
from maxent_gan.inference.normalizers import Exact, MISControlVariates
from maxent_gan.inference.posterior import sample_posterior
from maxent_gan.inference.spaces import broad_proposal, follow_theta, sampler_rates, soft_optimal, warm_start
from maxent_gan.models.problems import make_problem

jax.config.update("jax_enable_x64", True)
warnings.simplefilter("ignore", UnreliableEstimateWarning)  # k-hat is reported below instead
QUICK = os.environ.get("MAXENT_GAN_QUICK") == "1"
NUTS_SETTINGS = dict(num_warmup=50 if QUICK else 500, num_samples=50 if QUICK else 500, num_chains=2)
DRAWS = 1000 if QUICK else 16_000
problem = make_problem("gridworld")
demos, test = problem.data(jax.random.key(0), 100, 1000)
gcl = train_ebm(problem, "gcl", steps=150 if QUICK else 1500, data=(demos, test), tilted=True, progress=False,
                eval_every=10_000)
proposals = {
    "broad": broad_proposal(problem.space, jax.random.key(2)),
    "cloned": warm_start(problem.space, jax.random.key(2), demos),
    "soft-optimal at θ*": soft_optimal(problem.space, problem, problem.true_params),
    "gcl": gcl.result.state.proposal,
}

# %% [markdown]
# ## One line per proposal
# The exact posterior first, then the same call with `proposal=` swapped:

# %%
exact = sample_posterior(problem.model, demos, key=jax.random.key(1), estimator=Exact(), **NUTS_SETTINGS)
posteriors = {name: sample_posterior(problem.model, demos, key=jax.random.key(1), proposal=q, num_draws=DRAWS,
                                     **NUTS_SETTINGS)
              for name, q in proposals.items()}

# a proposal that follows θ (the library's recipe, maxent_gan.inference.spaces.follow_theta): the gcl sampler refitted
# at the corners of a box over its own (pilot) posterior, by the exact gradient of the reverse KL (the
# dynamics are known), mixed with the balance heuristic; its components are also control variates of the
# estimate ("mis-cv"). The cost table at a θ is all it needs; no exact log Z is used to build it
pilot = posteriors["gcl"].posterior["theta"].values.reshape(-1, 4)
family, space = problem.family, problem.space
proposals["gcl-follow"] = follow_theta(space, jax.random.key(3), gcl.result.state.proposal,
                                       lambda sites, x: family.cost_fn(family.from_sites(sites), x), jnp.asarray(pilot),
                                       unflatten=family.unflatten, steps=50 if QUICK else 500,
                                       rate=sampler_rates(space).refit,
                                       cost_table=lambda sites: space.cost_table(family.from_sites(sites)))
posteriors["gcl-follow"] = sample_posterior(problem.model, demos, key=jax.random.key(1), estimator=MISControlVariates(),
                                            proposal=proposals["gcl-follow"], num_draws=DRAWS, **NUTS_SETTINGS)


def mean_sd(idata):
    theta = idata.posterior["theta"].values.reshape(-1, 4)
    return theta.mean(0), theta.std(0)


exact_mean, exact_sd = mean_sd(exact)
rows = []
for name, idata in posteriors.items():
    mean, _ = mean_sd(idata)
    shift = float(np.max(np.abs(mean - exact_mean) / exact_sd))
    k_hat = float(np.nanmedian(idata.sample_stats["log_z_k_hat"].values))
    ess = float(np.nanmedian(idata.sample_stats["log_z_ess"].values))
    attrs = idata.posterior.attrs
    flagged = not attrs["reliable"]  # the library's rule for a posterior (maxent_gan.inference.diagnostics)
    rows.append((name, shift, k_hat, ess, flagged))
    print(f"{name:>20}: largest shift {shift:10.2f} sd   median k-hat {k_hat:7.2f}   median ESS {ess:7.0f} of {DRAWS}"
          f"   per-draw checks fail at {100 * attrs['unreliable_fraction']:3.0f}% of draws   "
          f"draw-set error {attrs['draw_set_error']:.2f} sd   {'FLAGGED' if flagged else 'not flagged'}")

# %% [markdown]
# ## Does k-hat catch a bad proposal?
# Each point is one proposal: how far its posterior mean moved from the exact one (in
# exact-posterior sd, log scale) against its median $\hat k$ over the posterior draws.

# %%
figure, ax = plt.subplots(figsize=(5.5, 3.5))
for name, shift, k_hat, _, _ in rows:
    ax.scatter(k_hat, shift, s=40)
    ax.annotate(name, (k_hat, shift), textcoords="offset points", xytext=(5, 4), fontsize=8)
ax.axvline(0.7, color="r", ls="--", lw=1)
ax.axhline(0.2, color="gray", ls=":", lw=1)
ax.set_xscale("symlog", linthresh=1.0)
ax.set_yscale("log")
ax.set_xlabel("median Pareto k-hat (red: 0.7)")
ax.set_ylabel("largest shift from exact (sd)")
figure.tight_layout()

# %% [markdown]
# The broad proposal's $\hat k$ is far above 0.7 and its posterior is off by orders of
# magnitude: with $10^3$ to $10^4$ random trajectories, almost none look like a demonstration,
# so $\hat Z(\theta)$ is a sum over a few draws and NUTS exploits it. The other proposals land
# much closer. $\hat k$ does not rank them exactly by their damage (a median over draws is a
# coarse summary). The library's rule for a posterior judges what moves it instead: the draw-set
# error (the posterior reweighted to other, independent sets of proposal draws) and the forward
# check (the demonstrations' own weights, which see mass the proposal misses). It flags every
# posterior here that is more than 1 sd off: a user without the exact posterior is warned. The cell
# below checks both statements on this run's numbers.

# %%
table = {name: (shift, k_hat, flagged) for name, shift, k_hat, _, flagged in rows}
assert table["broad"][0] > 5 and table["broad"][1] > 0.7 and table["broad"][2], table["broad"]
for name, (shift, _, flagged) in table.items():
    assert shift <= 1 or flagged, (name, shift, flagged)  # more than 1 sd off: flagged

# %% [markdown]
# ## A fixed sampler and one that follows θ
# The gcl sampler was trained at one θ, the end of its training run, and NUTS then moves θ over
# the whole posterior with the same draws. Its θ-following version refits a copy of it at each
# anchor and mixes them: left, $\hat k$ at every posterior draw for both; right, how far each
# posterior mean sits from the exact one, per cost weight.

# %%
figure, (ax_k, ax_s) = plt.subplots(1, 2, figsize=(10, 3.2))
bins = np.linspace(-0.5, 2.0, 41)
exact_theta = exact.posterior["theta"].values.reshape(-1, 4)
for name, colour in (("gcl", "C0"), ("gcl-follow", "C1")):
    k_draws = posteriors[name].sample_stats["log_z_k_hat"].values.ravel()
    ax_k.hist(np.clip(k_draws, bins[0], bins[-1]), bins=bins, alpha=0.6, color=colour,
              label=f"{name}: k-hat < 0.7 at {100 * np.mean(k_draws < 0.7):.0f}% of draws")
    theta = posteriors[name].posterior["theta"].values.reshape(-1, 4)
    shifts = (theta.mean(0) - exact_theta.mean(0)) / exact_theta.std(0)
    ax_s.bar(np.arange(4) + (0.2 if name == "gcl-follow" else -0.2), shifts, width=0.4, color=colour, label=name)
    print(f"{name:>10}: shift from exact {np.round(shifts, 2)} sd, median k-hat {np.median(k_draws):.2f}")
ax_k.axvline(0.7, color="r", ls="--", lw=1)
ax_k.set(xlabel="k-hat at each posterior draw (clipped to [-0.5, 2])", ylabel="draws")
ax_k.legend(fontsize=8)
ax_s.axhline(0, color="k", lw=0.8)
ax_s.set_xticks(range(4), problem.family.theta_names)
ax_s.set(ylabel="posterior mean − exact (exact sd)")
ax_s.legend(fontsize=8)
figure.tight_layout()

# %% [markdown]
# In the full run (`maxent-gan compare`, 16 000 draws, 4 chains) the θ-following samplers land within
# 0.02–0.04 sd of the exact posterior on seeds 0–2, against 0.20–0.63 sd for the fixed ones, and the
# set of proposal draws alone moves them by 0.01–0.02 sd (`benchmarks/results/follow.md`). Three things
# do it: the refit at each anchor follows the exact gradient of the reverse KL (a score-function
# estimate from draws leaves the states they rarely visit untrained, and those states make the tails);
# the anchors are the corners of a box of ±3 pilot sd, so every θ inside has bounded weights; and the
# components double as control variates, which absorb the weights' smooth change between anchors.
# The per-draw checks ($\hat k$, ESS) still fail at 4–9 % of the draws there, more of them out in the
# posterior's tails than the draws as a whole; the rule reports where, but flags a posterior only for what moves it and for mass the proposal
# misses (next section). The short
# run here uses 2 000 draws and 100 refit steps, so its numbers are rougher.
#
# ## Does the verdict read right?
# `benchmarks/verdict.py` runs `compare` over a grid of problems with an exact $\log Z(\theta)$, seeds and
# proposals, and scores each row's verdict against the truth: wrong when the posterior mean is more than
# 0.1 exact-posterior sd off. It measures the shift the estimate *causes*: the handler's posterior is the
# exact one times $e^{-N(\log\hat Z(\theta) - \log Z(\theta))}$, so its own draws reweighted by
# $e^{N\epsilon(\theta)}$ give the exact posterior's means, free of the two NUTS runs' noise. Each point
# below is one row of that benchmark (committed in `benchmarks/results/verdict.json`): the caused shift
# against the draw-set error, red when the rule flags it.

# %%
import json  # noqa: E402
from pathlib import Path  # noqa: E402

verdict_rows = json.loads(Path("../benchmarks/results/verdict.json").read_text())
figure, ax = plt.subplots(figsize=(5.5, 3.8))
for row in verdict_rows:
    ax.scatter(max(row["draw_set_error"], 1e-3), max(row["shift_reweighted"], 1e-3), s=25,
               color="C3" if row["flagged"] else "C2", marker="o" if row["shift_reweighted"] <= 0.1 else "x")
ax.axhline(0.1, color="gray", ls=":", lw=1)
ax.axvline(0.1, color="r", ls="--", lw=1)
ax.set(xscale="log", yscale="log", xlabel="draw-set error (posterior sd)",
       ylabel="shift the estimate causes (exact sd)")
figure.tight_layout()
wrong = [r for r in verdict_rows if r["shift_reweighted"] > 0.1]
right = [r for r in verdict_rows if r["shift_reweighted"] <= 0.1]
print(f"{len(verdict_rows)} rows: {sum(not r['flagged'] for r in wrong)} of {len(wrong)} wrong rows unflagged, "
      f"{sum(not r['flagged'] for r in right)} of {len(right)} right rows unflagged")
good = min((r for r in right if not r["flagged"]), key=lambda r: r["shift_reweighted"])
bad = max((r for r in wrong if r["flagged"] and r["shift_reweighted"] < 5), key=lambda r: r["shift_reweighted"])
for label, r in (("unflagged, right", good), ("flagged, wrong", bad)):
    print(f"{label:>17}: {r['problem']} seed {r['seed']} {r['proposal']:>10}: caused shift {r['shift_reweighted']:.2f} sd, "
          f"per-draw checks fail at {100 * r['unreliable_fraction']:.0f}% of draws, draw-set error "
          f"{r['draw_set_error']:.2f} sd; {r['reasons'] or 'no reason to flag'}")

# %% [markdown]
# Circles are right rows, crosses wrong ones. No wrong row is left unflagged: every posterior the
# estimate moves by more than 0.1 sd has a draw-set error above 0.1 sd, or its forward check fails. The
# θ-following gridworld rows are among the unflagged right ones: 2–10 % of their draws fail the per-draw
# checks, and the posterior sits within 0.01 sd of the exact one. The rule before
# this one flagged a posterior for any 5 % of such draws, and so flagged 11 of the 26 right rows
# (`benchmarks/results/verdict_rules.md` scores both rules and three others on the same rows).
#
# ## The whole comparison in one call
# `maxent_gan.inference.app.compare.compare` (the CLI's `maxent-gan compare`) does all of the above: it trains
# the GCL and GAN-form samplers, samples every posterior, and renders the report. Here on the
# LQR, whose $\log Z(\theta)$ comes from a Riccati recursion:

# %%
if QUICK:
    settings = CompareSettings.quick(num_draws=2000, num_warmup=50, num_samples=50)
    summary = compare("lqr", ("cloned",), settings=settings, key=jax.random.key(0))  # no exact run: verdicts from k-hat
else:
    summary = compare("lqr", ("exact", "broad", "cloned", "gcl", "gan"), settings=CompareSettings(), key=jax.random.key(0))
print(render_report(summary))

# %% [markdown]
# On the LQR, linear-Gaussian policies come close to $p_\theta$ (it also tilts the noise: the
# cloned policy does not, the learned samplers learn those tilts too), so the cloned and learned
# policies keep $\hat k$ below 0.7, while the broad
# N(0, I) forces, in the full run, are flagged (the short run keeps only the cloned policy, and
# without an exact run the verdict rests on $\hat k$ alone). A low $\hat k$ is necessary, not sufficient: with few draws the
# posterior can still move by a fraction of an sd (the fixed draws' error, multiplied by the
# number of demonstrations), and the verdict column says so and asks for more draws.
# `maxent-gan compare --problem lqr` writes the same report with its figures and one netCDF file
# per proposal.
