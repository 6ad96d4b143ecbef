"""A θ-conditional flow inside the posterior, with no exact quantity used to build it.

Per problem and seed, the workflow a user without Z(θ) would run:

1. fit a ConditionalFlow q(x|θ) by reverse KL over θ drawn from the model's prior;
2. a pilot posterior (NUTS through the handler, common random numbers in the base space);
3. the library's θ-following proposal from the pilot's draws (``maxent_gan.inference.spaces.follow_theta``, what
   compare's ``gcl-follow``/``gan-follow`` rows use on points): a fresh flow reading θ standardized by
   the pool and bounded (``ConditionalFlow.bounded_to``), fitted over the pilot's draws spread 1.5x
   about their mean, mixed with the broad proposal at weight 0.1 (``DefensiveConditional``);
4. posteriors with it ("follow"), with its flow alone ("flow alone"), and with that flow fixed at the
   pilot mean (``q.at(θ̂)``, what a sampler trained at one θ gives), against the exact posterior.

Reports the largest shift of each posterior mean from the exact one (in exact-posterior sd), k-hat
over the posterior draws (median, 95th percentile), the share of draws the library's rule calls
unreliable, the draw-set error and whether the posterior was flagged, and seconds.

    python benchmarks/conditional.py [problem ...] [--seeds 0 1 2] [--draws 4000]   # results/conditional.{md,json}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np
import optax

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maxent_gan.inference.io import write_atomic, write_json  # noqa: E402
from maxent_gan.inference.normalizers import Exact  # noqa: E402
from maxent_gan.inference.posterior import sample_posterior  # noqa: E402
from maxent_gan.inference.proposals.conditional import ConditionalFlow  # noqa: E402
from maxent_gan.inference.sampler import fit_conditional  # noqa: E402
from maxent_gan.inference.spaces import follow_theta  # noqa: E402
from maxent_gan.models.problems import make_problem  # noqa: E402
from numpyro.infer import Predictive  # noqa: E402

DRAWS = 4000
FOLLOW_STEPS = 500  # compare's anchor_steps
NUTS = dict(num_warmup=300, num_samples=300, num_chains=2)
PILOT = dict(num_warmup=150, num_samples=150, num_chains=2)


def _flat(family, idata):
    return family.flatten(idata.posterior).reshape(
        -1, len(family.theta_names))


def _row(family, idata, exact_flat, seconds):
    theta = _flat(family, idata)
    shift = (theta.mean(0) - exact_flat.mean(0)) / exact_flat.std(0)
    k_hat = idata.sample_stats["log_z_k_hat"].values.ravel()
    return {"shift_max_sd": float(np.max(np.abs(shift))), "shift_sd": np.round(shift, 3).tolist(),
            "k_hat_median": float(np.nanmedian(k_hat)), "k_hat_p95": float(np.nanpercentile(k_hat, 95)),
            "unreliable_fraction": float(idata.posterior.attrs["unreliable_fraction"]),
            "draw_set_error": float(idata.posterior.attrs.get("draw_set_error", np.nan)),
            "flagged": not idata.posterior.attrs["reliable"], "seconds": seconds}


def run(name: str, seed: int, draws: int) -> dict:
    problem = make_problem(name)
    family = problem.family
    key = jax.random.key(seed)
    data, _ = problem.data(jax.random.fold_in(key, 0), 100, 2)
    size = len(family.theta_names)
    prior = Predictive(family.model, num_samples=1024)(jax.random.fold_in(key, 1), data)  # x observed: θ from the prior
    prior = {site: prior[site] for site in family.sites}
    start = time.perf_counter()
    proposal = ConditionalFlow.coupling(jax.random.fold_in(key, 2), problem.dim, size, layers=4, width=32, knots=6)
    proposal = fit_conditional(jax.random.fold_in(key, 3), proposal, family.cost_fn, family.from_sites(prior),
                               steps=600, num_draws=128, optimizer=optax.adam(3e-3), progress=False).proposal
    pilot = sample_posterior(family.model, data, key=jax.random.fold_in(key, 4), proposal=proposal, num_draws=draws,
                             **PILOT)
    pilot_flat = _flat(family, pilot)
    follow = follow_theta(problem.space, jax.random.fold_in(key, 5), None,
                          lambda sites, x: family.cost_fn(family.from_sites(sites), x), pilot_flat,
                          unflatten=family.unflatten, steps=FOLLOW_STEPS, rate=None)
    build_seconds = time.perf_counter() - start
    settings = dict(key=jax.random.fold_in(key, 6), **NUTS)
    exact = sample_posterior(family.model, data, estimator=Exact(), **settings)
    exact_flat = _flat(family, exact)
    theta_hat = family.unflatten(pilot_flat.mean(0))
    row = {"problem": name, "seed": seed, "draws": draws, "build_seconds": build_seconds}
    for label, q in (("follow", follow), ("flow alone", follow.proposal), ("fixed at pilot mean", follow.proposal.at(theta_hat))):
        start = time.perf_counter()
        idata = sample_posterior(family.model, data, proposal=q, num_draws=draws, **settings)
        row[label] = _row(family, idata, exact_flat, time.perf_counter() - start)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("problems", nargs="*", default=["rings", "gaussian"])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--draws", type=int, default=DRAWS)
    parser.add_argument("--name", default="conditional", help="results/<name>.{md,json}")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the rule's verdicts are in the rows
    rows = []
    for name in args.problems:
        for seed in args.seeds:
            rows.append(run(name, seed, args.draws))
            print(json.dumps(rows[-1]), flush=True)
            _write(rows, args)  # after every row: a long run stopped early keeps what it measured


def _write(rows: list, args) -> None:
    out = Path(__file__).parent / "results"
    write_json(out / f"{args.name}.json", rows)
    lines = ["# A θ-conditional flow inside the posterior (no exact quantity used to build it)", "",
             f"`python benchmarks/conditional.py {' '.join(args.problems)} --seeds {' '.join(map(str, args.seeds))} "
             f"--draws {args.draws} --name {args.name}`: 100 data points, {args.draws} fixed base draws (common random numbers), NUTS {NUTS['num_chains']} chains x "
             f"{NUTS['num_samples']} after {NUTS['num_warmup']} warm-up; one run, float64, CPU.", "",
             "| problem | seed | proposal | largest shift (exact sd) | k-hat median / 95% | draws unreliable | "
             "draw-set error (sd) | flagged | NUTS s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for proposal in ("follow", "flow alone", "fixed at pilot mean"):
            r = row[proposal]
            lines.append(f"| {row['problem']} | {row['seed']} | {proposal} | {r['shift_max_sd']:.3f} | "
                         f"{r['k_hat_median']:.2f} / {r['k_hat_p95']:.2f} | {100 * r['unreliable_fraction']:.0f}% | "
                         f"{r['draw_set_error']:.2f} | {'yes' if r['flagged'] else '**no**'} | {r['seconds']:.0f} |")
    write_atomic(out / f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
