"""imitation's own tabular problems, side by side with imitation's MCE IRL.

seals' CliffWorld (7 x 4, horizon 8, imitation's MCE IRL tutorial environment) and seals' random MDP
(RandomTransitionEnv: 16 states, 3 actions, branch factor 2, horizon 10), both as a user exports them
(``maxent_gan.models.files.from_seals_env``: dense transitions full of zeros, one-hot state features). Demonstrations
(200 per run) from two sources: the trajectory-level MaxEnt model of the true reward (this library's
exact sampler), and imitation's causal MCE model (``mce_partition_fh``'s policy rolled out through the
dynamics). Each demonstration set is handed to both libraries as imitation ``Trajectory`` objects.

Scored on the states the demonstrations visit: the Pearson correlation of the learned reward with the
true one (a state-only reward is recovered up to a constant on them). Timed: this library's exact fit
(``train_ebm(..., "exact")``, float32 as the CLI runs it), its exact-normalizer posterior (NUTS, 2 chains,
float64) and imitation's ``MCEIRL.train`` with a linear reward (one-hot observations: a tabular reward,
like ours). Seeds 0-2.

Run (a venv with ``.[bench,formats]`` and torch 2.13.0 CPU): ``python benchmarks/seals_tabular.py``; writes
``benchmarks/results/seals_tabular.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from maxent_gan.inference.ebm import train_ebm
from maxent_gan.inference.io import write_atomic
from maxent_gan.inference.normalizers import Exact
from maxent_gan.inference.posterior import sample_posterior
from maxent_gan.models.builders import tabular_problem
from maxent_gan.models.files import from_imitation_trajectories, from_seals_env
from maxent_gan.models.tabular import as_transitions, sample_trajectories, simulate

RESULTS = Path(__file__).resolve().parent / "results"
NUM_DEMOS = 200


def environments(seed: int) -> dict:
    from seals.diagnostics.cliff_world import CliffWorldEnv
    from seals.diagnostics.random_trans import RandomTransitionEnv

    return {
        "cliffworld": CliffWorldEnv(width=7, height=4, horizon=8, use_xy_obs=False),
        "random_mdp": RandomTransitionEnv(n_states=16, n_actions=3, branch_factor=2, horizon=10, random_obs=False,
                                          generator_seed=seed),
    }


def demonstrations(env, source: str, key) -> list:
    """imitation ``Trajectory`` objects (observations are state indices, as MCEIRL reads them) from ``source``."""
    from imitation.algorithms.mce_irl import mce_partition_fh
    from imitation.data.types import Trajectory

    reward = np.asarray(env.reward_matrix, dtype=float)
    transitions = as_transitions(np.asarray(env.transition_matrix))
    initial = np.asarray(env.initial_state_dist, dtype=float)
    costs = -np.broadcast_to(reward[:, None], transitions.successors.shape[:2])
    if source == "trajectory-maxent":
        states, actions = sample_trajectories(key, costs, transitions, initial, env.horizon, NUM_DEMOS)
    else:  # imitation's causal MCE policy, rolled out through the same dynamics
        _, _, pi = mce_partition_fh(env)
        with np.errstate(divide="ignore"):
            log_pi, log_initial = jnp.asarray(np.log(pi)), jnp.asarray(np.log(initial))
        states, actions = simulate(key, transitions, log_initial, log_pi, NUM_DEMOS)
    return [Trajectory(obs=np.asarray(s), acts=np.asarray(a), infos=None, terminal=True)
            for s, a in zip(states, actions, strict=True)]


def correlation(learned: np.ndarray, true: np.ndarray, visited: np.ndarray) -> float:
    return float(np.corrcoef(learned[visited], true[visited])[0, 1])


def ours(env, trajectories, seed: int) -> dict:
    states, actions = from_imitation_trajectories(trajectories)
    jax.config.update("jax_enable_x64", False)  # as `maxent-gan train` runs (the problem built in its precision)
    problem = tabular_problem(**from_seals_env(env), states=states, actions=actions, name="seals")
    start = time.perf_counter()
    run = train_ebm(problem, "exact", key=jax.random.key(seed), progress=False, evaluate=False, checkpoint_every=10**6)
    theta = np.asarray(run.result.state.energy)
    fit_seconds = time.perf_counter() - start
    jax.config.update("jax_enable_x64", True)
    problem = tabular_problem(**from_seals_env(env), states=states, actions=actions, name="seals")
    start = time.perf_counter()
    idata = sample_posterior(problem.family.model, _all_demos(problem), key=jax.random.key(seed), estimator=Exact(),
                             num_warmup=300, num_samples=300, num_chains=2)
    posterior_seconds = time.perf_counter() - start
    mean = idata.posterior["theta"].mean(("chain", "draw")).values
    return {"theta": theta, "posterior_mean": mean, "fit_seconds": fit_seconds, "posterior_seconds": posterior_seconds,
            "states": states}


def _all_demos(problem) -> jax.Array:
    train, test = problem.data(jax.random.key(0), 0, 0)
    return jnp.concatenate([train, test])


def theirs(env, trajectories, seed: int) -> dict:
    import torch
    from imitation.algorithms.mce_irl import MCEIRL
    from imitation.rewards import reward_nets

    torch.manual_seed(seed)
    net = reward_nets.BasicRewardNet(env.observation_space, env.action_space, hid_sizes=[], use_action=False,
                                     use_done=False, use_next_state=False)
    start = time.perf_counter()
    algorithm = MCEIRL(trajectories, env, net, rng=np.random.default_rng(seed), log_interval=None)
    algorithm.train()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        obs = torch.as_tensor(env.observation_matrix, dtype=torch.float32)
        reward = net(obs, None, None, None).numpy()
    return {"reward": reward, "seconds": seconds}


def run(seeds: list[int]) -> list[dict]:
    rows = []
    for seed in seeds:
        for name, env in environments(seed).items():
            true = np.asarray(env.reward_matrix, dtype=float)
            for source in ("trajectory-maxent", "imitation-mce"):
                trajectories = demonstrations(env, source, jax.random.key(100 + seed))
                mine = ours(env, trajectories, seed)
                other = theirs(env, trajectories, seed)
                visited = np.unique(mine["states"])
                row = {"env": name, "source": source, "seed": seed, "visited_states": int(visited.size),
                       "ours_fit_corr": correlation(-mine["theta"], true, visited),
                       "ours_posterior_corr": correlation(-mine["posterior_mean"], true, visited),
                       "imitation_corr": correlation(other["reward"], true, visited),
                       "ours_fit_seconds": mine["fit_seconds"], "ours_posterior_seconds": mine["posterior_seconds"],
                       "imitation_seconds": other["seconds"]}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def render(rows: list[dict]) -> str:
    lines = ["# imitation's tabular problems: reward recovery and time against imitation's MCE IRL", "",
             "`python benchmarks/seals_tabular.py` (2 CPU cores; 200 demonstrations; correlation of the learned "
             "reward with the true one on the visited states; seeds 0-2). Ours: exact fit (float32, CLI defaults) "
             "and the exact-normalizer posterior mean (NUTS 2 x 300, float64); times include compilation. imitation "
             "1.0.1: `MCEIRL.train()` at its defaults (Adam lr 0.01, up to 1000 iterations, stopping at an "
             "occupancy gap of 1e-3), linear reward on one-hot observations, demonstrations as its own "
             "`Trajectory` objects.", "",
             "| env | demonstrations | seed | states visited | ours fit | ours posterior | imitation | ours fit (s) "
             "| ours posterior (s) | imitation (s) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['env']} | {r['source']} | {r['seed']} | {r['visited_states']} | {r['ours_fit_corr']:.3f} "
                     f"| {r['ours_posterior_corr']:.3f} | {r['imitation_corr']:.3f} | {r['ours_fit_seconds']:.1f} "
                     f"| {r['ours_posterior_seconds']:.1f} | {r['imitation_seconds']:.1f} |")
    lines += ["", "Median over seeds:", "", "| env | demonstrations | ours fit | ours posterior | imitation |",
              "|---|---|---|---|---|"]
    for env in sorted({r["env"] for r in rows}):
        for source in ("trajectory-maxent", "imitation-mce"):
            group = [r for r in rows if r["env"] == env and r["source"] == source]
            if group:
                med = {k: float(np.median([r[k] for r in group]))
                       for k in ("ours_fit_corr", "ours_posterior_corr", "imitation_corr")}
                lines.append(f"| {env} | {source} | {med['ours_fit_corr']:.3f} | {med['ours_posterior_corr']:.3f} "
                             f"| {med['imitation_corr']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    rows = run([int(s) for s in args.seeds.split(",")])
    write_atomic(RESULTS / "seals_tabular.json", json.dumps(rows, indent=2) + "\n")
    write_atomic(RESULTS / "seals_tabular.md", render(rows))


if __name__ == "__main__":
    main()
