"""log Z error, ESS and k-hat against dimension, per proposal, on the Gaussian energy.

Run: ``python benchmarks/logz_gaussian.py`` (writes benchmarks/results/logz_gaussian.{md,png}).
One run, one seed per row; times include jit compilation and the reverse-KL fit.
"""

import sys
import time
import warnings
from pathlib import Path

import jax
import matplotlib.pyplot as plt

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maxent_gan.inference.app.recipes import make_proposal  # noqa: E402
from maxent_gan.inference.diagnostics import UnreliableEstimateWarning  # noqa: E402
from maxent_gan.inference.estimators import log_z_importance  # noqa: E402
from maxent_gan.inference.io import save_figure, write_atomic  # noqa: E402
from maxent_gan.models import make_problem  # noqa: E402

DIMS = (2, 5, 10, 25, 50)
PROPOSALS = ("exact-sampler", "broad", "diag-gaussian", "gaussian", "defensive")
SAMPLES = 10_000


def main():
    rows = []
    for dim in DIMS:
        target = make_problem("gaussian", dim=dim).target
        for name in PROPOSALS:
            start = time.perf_counter()
            proposal = make_proposal(name, jax.random.key(1), target, steps=2000)
            x, log_q = proposal.sample_and_log_prob(jax.random.key(2), SAMPLES)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnreliableEstimateWarning)
                est = log_z_importance(-target.unnormalized_log_prob(x), log_q)
            seconds = time.perf_counter() - start
            rows.append((dim, name, float(est.log_z - target.log_normalizer), float(est.ess), float(est.k_hat), seconds))
            print(rows[-1], flush=True)
    out = Path(__file__).parent / "results"
    lines = [f"# log Z on the Gaussian energy, {SAMPLES} draws, seed 2 (proposal fit: 2000 reverse-KL steps)", "",
             "| d | proposal | error (nats) | ESS | k-hat | seconds |", "|---|---|---|---|---|---|"]
    lines += [f"| {d} | {n} | {e:+.2e} | {s:.0f} | {k:.2f} | {t:.2f} |" for d, n, e, s, k, t in rows]
    write_atomic(out / "logz_gaussian.md", "\n".join(lines) + "\n")
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for name in PROPOSALS:
        sel = [r for r in rows if r[1] == name]
        axes[0].semilogy([r[0] for r in sel], [max(abs(r[2]), 1e-16) for r in sel], "o-", label=name)
        axes[1].plot([r[0] for r in sel], [r[4] if r[4] > -1 else -1 for r in sel], "o-", label=name)
    axes[0].set(xlabel="dimension", ylabel="|log Z error| (nats)", title="error")
    axes[1].axhline(0.7, color="k", ls=":")
    axes[1].set(xlabel="dimension", ylabel="Pareto k-hat (-inf shown at -1)", title="k-hat (> 0.7 unreliable)")
    axes[0].legend(fontsize=8)
    save_figure(figure, out / "logz_gaussian.png")


if __name__ == "__main__":
    main()
