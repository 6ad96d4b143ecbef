"""log Z error against wall-clock: naive IS, learned-flow IS, and blackjax adaptive tempered SMC.

Run: ``python benchmarks/logz.py [--quick]`` (writes benchmarks/results/logz.{md,json,png}).
Energies: the five 2D toy mixtures and the Gaussian energy for d = 2..50, all with exact log Z.
Rows:
* ``broad``: IS with N(0, 2² I), 10⁴ draws;
* ``flow``: a spline coupling flow fitted by annealed reverse KL to the energy alone, then IS
  with 10⁴ draws; ``flow-data``: the same flow fitted by maximum likelihood to 2·10⁴ exact
  draws (the EBM setting, where data exist), then IS. ``seconds`` = fit + draws (compilation
  included); ``is_seconds`` = the draws and weights alone, what a trained sampler costs;
* ``smc-N``: blackjax adaptive tempered SMC from N(0, 2² I) with N particles, HMC moves
  (10 per temperature), target ESS 0.5; warm time (second call; compilation excluded).
One run, one seed per row, float64, CPU (2 cores) unless the device column says otherwise.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import blackjax  # noqa: E402
from blackjax.smc import extend_params, resampling  # noqa: E402
from maxent_gan.inference.app.recipes import make_proposal  # noqa: E402
from maxent_gan.inference.diagnostics import UnreliableEstimateWarning  # noqa: E402
from maxent_gan.inference.estimators import log_z_importance  # noqa: E402
from maxent_gan.inference.io import save_figure, write_atomic  # noqa: E402
from maxent_gan.models.problems import make_problem  # noqa: E402
from maxent_gan.models.toys import TOYS  # noqa: E402

SAMPLES = 10_000
SCALE = 2.0


def smc_log_z(key, target, num_particles, step_size):
    """log Z by adaptive tempered SMC from the prior N(0, SCALE² I): Σ of the log-likelihood increments."""
    dim = target.event_shape[0]

    def log_prior(x):
        return jnp.sum(jax.scipy.stats.norm.logpdf(x, 0.0, SCALE))

    def log_likelihood(x):
        return -target.cost(x) - log_prior(x)

    params = extend_params({"step_size": step_size, "inverse_mass_matrix": jnp.ones(dim),
                            "num_integration_steps": 10})
    smc = blackjax.adaptive_tempered_smc(log_prior, log_likelihood, blackjax.hmc.build_kernel(), blackjax.hmc.init,
                                         params, resampling.systematic, 0.5, num_mcmc_steps=10)

    @jax.jit
    def run(key):
        key_init, key_loop = jax.random.split(key)
        state = smc.init(SCALE * jax.random.normal(key_init, (num_particles, dim)))

        def body(carry):
            i, state, log_z = carry
            state, info = smc.step(jax.random.fold_in(key_loop, i), state)
            return i + 1, state, log_z + info.log_likelihood_increment

        _, state, log_z = jax.lax.while_loop(lambda c: c[1].tempering_param < 1, body, (0, state, 0.0))
        return log_z

    run(key).block_until_ready()  # compile
    start = time.perf_counter()
    log_z = float(run(jax.random.fold_in(key, 1)))
    return log_z, time.perf_counter() - start


def importance_row(name, target, proposal_name, fit_steps):
    start = time.perf_counter()
    proposal = make_proposal(proposal_name, jax.random.key(1), target, scale=SCALE, steps=fit_steps)
    fitted = time.perf_counter()
    x, log_q = proposal.sample_and_log_prob(jax.random.key(2), SAMPLES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreliableEstimateWarning)
        estimate = log_z_importance(target.cost(x), log_q)
    estimate.log_z.block_until_ready()
    end = time.perf_counter()
    return {"energy": name, "method": proposal_name, "error": float(estimate.log_z - target.log_normalizer),
            "ess": float(estimate.ess), "k_hat": float(estimate.k_hat), "seconds": end - start,
            "is_seconds": end - fitted}


def energies(quick):
    for toy in TOYS:
        yield toy, make_problem(toy).target, 0.05
    for dim in (2, 10) if quick else (2, 5, 10, 25, 50):
        yield f"gaussian-{dim}d", make_problem("gaussian", dim=dim).target, 0.2


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer steps and energies (a smoke run)")
    args = parser.parse_args()
    particles = (256, 1024) if args.quick else (256, 1024, 4096, 16384)
    rows = []
    for name, target, step_size in energies(args.quick):
        for proposal, steps in [("broad", None), ("flow", 300 if args.quick else 4000),
                                ("flow-data", 5 if args.quick else 100)]:
            rows.append(importance_row(name, target, proposal, steps))
            print(json.dumps(rows[-1]), flush=True)
        for n in particles:
            log_z, seconds = smc_log_z(jax.random.key(3), target, n, step_size)
            rows.append({"energy": name, "method": f"smc-{n}", "error": log_z - float(target.log_normalizer),
                         "ess": None, "k_hat": None, "seconds": seconds, "is_seconds": None})
            print(json.dumps(rows[-1]), flush=True)
    out = Path(__file__).parent / "results" / ("logz-quick" if args.quick else "logz")
    write_atomic(out.with_suffix(".json"), json.dumps(rows, indent=1) + "\n")
    lines = [f"# log Z error against wall-clock ({SAMPLES} IS draws; one seed; float64; 2 CPU cores)", "",
             "| energy | method | error (nats) | ESS | k-hat | seconds (total) | seconds (draws + weights) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ess = "" if r["ess"] is None else f"{r['ess']:.0f}"
        k_hat = "" if r["k_hat"] is None else f"{r['k_hat']:.2f}"
        is_seconds = "" if r["is_seconds"] is None else f"{r['is_seconds']:.3f}"
        lines.append(f"| {r['energy']} | {r['method']} | {r['error']:+.4f} | {ess} | {k_hat} | "
                     f"{r['seconds']:.2f} | {is_seconds} |")
    write_atomic(out.with_suffix(".md"), "\n".join(lines) + "\n")
    names = list(dict.fromkeys(r["energy"] for r in rows))
    figure, axes = plt.subplots(2, (len(names) + 1) // 2, figsize=(3.2 * ((len(names) + 1) // 2), 6.4), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        sel = [r for r in rows if r["energy"] == name]
        smc = [r for r in sel if r["method"].startswith("smc")]
        ax.loglog([r["seconds"] for r in smc], [abs(r["error"]) for r in smc], "o-", color="k", label="tempered SMC")
        for r, color in zip([r for r in sel if not r["method"].startswith("smc")], ["C3", "C0", "C2"], strict=True):
            ax.loglog(r["seconds"], abs(r["error"]), "s", color=color, label=f"{r['method']} (fit + IS)")
            ax.loglog(r["is_seconds"], abs(r["error"]), "^", color=color, mfc="none", label=f"{r['method']} (IS only)")
        ax.axhline(0.01, color="grey", ls=":", lw=0.8)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("seconds")
    axes.flat[0].set_ylabel("|log Z error| (nats)")
    axes.flat[0].legend(fontsize=6)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    figure.tight_layout()
    save_figure(figure, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
