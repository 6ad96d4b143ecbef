"""IRL benchmark: exact log Z + gradient time against grid size, side by side
with the ``imitation`` package's MCE IRL partition; recovery against the number of demonstrations.

Run: ``python benchmarks/irl.py [--quick]`` (writes benchmarks/results/irl.{md,json,png}).

* Timing: deterministic N x N gridworlds (N = 8, 16, 32, 64), T = 50, start top-left, a
  state-only reward (imitation's ``mce_partition_fh`` takes rewards on states), where trajectory
  MaxEnt and MCE IRL coincide. Ours: ``jit(value_and_grad)`` of ``maxent_gan.models.tabular.log_partition``
  in the reward (log Z and the expected visit counts). imitation: ``mce_partition_fh`` then
  ``mce_occupancy_measures`` (the same two quantities), NumPy on a dense (S, A, S) array. Warm
  times, median of 5; float64 for both; the same log Z is checked.
* Recovery: the default gridworld (8 x 8, slip 0.1, T = 20), 10 / 30 / 100 / 300
  demonstrations, the three methods, 1500 steps, EPIC / cost correlation / EVD at the end.
Targets: >= 20x faster than imitation at 32 x 32; EPIC < 0.05 with 100 demonstrations for exact
and GCL; the GAN form within 2x of GCL's EPIC. One run, one seed, 2 CPU cores.
"""

import argparse
import json
import statistics
import sys
import time
import types
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maxent_gan.inference.diagnostics import UnreliableEstimateWarning  # noqa: E402
from maxent_gan.inference.ebm import ebm_summary, train_ebm  # noqa: E402
from maxent_gan.inference.io import save_figure, write_atomic  # noqa: E402
from maxent_gan.inference.training import METHODS  # noqa: E402
from maxent_gan.models.gridworld import gridworld  # noqa: E402
from maxent_gan.models.problems import make_problem  # noqa: E402
from maxent_gan.models.tabular import log_partition  # noqa: E402

HORIZON = 50


def _median_time(fn, repeats=5):
    fn()  # warm: compilation and caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timing_row(size: int) -> dict:
    mdp = gridworld(size, horizon=HORIZON, slip=0.0)
    reward = -jnp.asarray(mdp.features[:, 0, :3] @ jnp.array([-1.0, 4.0, 3.0]))  # state-only
    num_actions = mdp.num_actions

    @jax.jit
    def ours(reward):
        return jax.value_and_grad(
            lambda r: log_partition(jnp.broadcast_to(-r[:, None], (r.shape[0], num_actions)), mdp.transitions,
                                    mdp.initial, HORIZON))(reward)

    log_z, _ = ours(reward)
    row = {"size": size, "states": size * size, "log_z": float(log_z),
           "ours_seconds": _median_time(lambda: jax.block_until_ready(ours(reward)))}
    try:
        from imitation.algorithms import mce_irl
    except ImportError:
        row.update(imitation_seconds=None, imitation_log_z=None)
        return row
    # imitation reads only these attributes of its env: a plain namespace stands in for one
    env = types.SimpleNamespace(
        horizon=HORIZON, n_states=size * size, n_actions=num_actions, state_dim=size * size, action_dim=num_actions,
        transition_matrix=np.asarray(mdp.transitions.dense()), reward_matrix=np.asarray(reward),
        initial_state_dist=np.asarray(mdp.initial),
    )

    def theirs():
        values, _, pi = mce_irl.mce_partition_fh(env)
        mce_irl.mce_occupancy_measures(env, pi=pi)
        return values

    values = theirs()
    row.update(imitation_log_z=float(values[0] @ env.initial_state_dist),
               imitation_seconds=_median_time(theirs, repeats=3 if size >= 64 else 5))
    return row


def recovery_rows(demos: tuple[int, ...], steps: int) -> list[dict]:
    problem = make_problem("gridworld")
    rows = []
    for n in demos:
        for method in METHODS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnreliableEstimateWarning)
                run = train_ebm(problem, method, steps=steps, key=jax.random.key(0), num_train=n, num_test=1000, batch_size=min(n, 256),
                                eval_every=steps, progress=False)
            summary = ebm_summary(run)
            summary["demos"] = n
            rows.append(summary)
            print(json.dumps({k: summary[k] for k in ("demos", "method", "epic", "evd", "cost_correlation",
                                                      "seconds")}), flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small grids, few steps (a smoke run)")
    args = parser.parse_args()
    sizes = (8, 16) if args.quick else (8, 16, 32, 64)
    timing = []
    for size in sizes:
        timing.append(timing_row(size))
        print(json.dumps(timing[-1]), flush=True)
    recovery = recovery_rows((10, 30) if args.quick else (10, 30, 100, 300), 50 if args.quick else 1500)
    out = Path(__file__).parent / "results" / ("irl-quick" if args.quick else "irl")
    write_atomic(out.with_suffix(".json"), json.dumps({"timing": timing, "recovery": recovery}, indent=1) + "\n")
    write_atomic(out.with_suffix(".md"), "\n".join(_table(timing, recovery)) + "\n")
    _figure(timing, recovery, out.with_suffix(".png"))


def _table(timing, recovery):
    lines = [f"# IRL: exact log Z + gradient time (T = {HORIZON}), and recovery vs demonstrations", "",
             "## Time of log Z and its gradient (warm, median; float64; 2 CPU cores)", "",
             "| grid | states | ours (s) | imitation (s) | speed-up | log Z ours | log Z imitation |",
             "|---|---|---|---|---|---|---|"]
    for r in timing:
        if r["imitation_seconds"] is None:
            theirs, ratio, their_z = "not installed", "", ""
        else:
            theirs = f"{r['imitation_seconds']:.4f}"
            ratio = f"{r['imitation_seconds'] / r['ours_seconds']:.0f}x"
            their_z = f"{r['imitation_log_z']:.6f}"
        lines.append(f"| {r['size']}x{r['size']} | {r['states']} | {r['ours_seconds']:.4f} | {theirs} | {ratio} | "
                     f"{r['log_z']:.6f} | {their_z} |")
    lines += ["", "## Recovery on the default gridworld (8x8, slip 0.1, T = 20), by number of demonstrations", "",
              "| demos | method | EPIC | cost correlation | EVD | held-out NLL | true NLL | seconds |",
              "|---|---|---|---|---|---|---|---|"]
    for r in recovery:
        lines.append(f"| {r['demos']} | {r['method']} | {r['epic']:.4f} | {r['cost_correlation']:.4f} | "
                     f"{r['evd']:.4f} | {r['held_out_nll']:.3f} | {r['true_nll']:.3f} | {r['seconds']:.0f} |")
    return lines


def _figure(timing, recovery, path):
    figure, (ax_t, ax_e) = plt.subplots(1, 2, figsize=(10, 3.6))
    states = [r["states"] for r in timing]
    ax_t.loglog(states, [r["ours_seconds"] for r in timing], "o-", label="maxent-gan (jit, sparse)")
    if all(r["imitation_seconds"] is not None for r in timing):
        ax_t.loglog(states, [r["imitation_seconds"] for r in timing], "s-", label="imitation (NumPy, dense)")
    ax_t.set(xlabel="states", ylabel="seconds (log Z + gradient)", title=f"exact tabular log Z, T = {HORIZON}")
    ax_t.legend()
    for method in METHODS:
        rows = [r for r in recovery if r["method"] == method]
        ax_e.loglog([r["demos"] for r in rows], [r["epic"] for r in rows], "o-", label=method)
    ax_e.axhline(0.05, color="grey", ls=":", lw=0.8)
    ax_e.set(xlabel="demonstrations", ylabel="EPIC distance", title="recovery (8x8, slip 0.1)")
    ax_e.legend()
    figure.tight_layout()
    save_figure(figure, path)


if __name__ == "__main__":
    main()
