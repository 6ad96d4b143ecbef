"""Continuous control side by side: this library's GCL and GAN form against imitation's AIRL and GAIL on
Pendulum-v1 demonstrations, at the same CPU budget.

Two demonstration sets:

- ``swing-up``: the built-in problem (``maxent_gan.models.pendulum.pendulum_problem``): 40 steps from rest
  hanging down, 100 demonstrations drawn from p_θ* at the environment's reward by NUTS (the model this
  library fits, so its posterior can be scored against θ*); 200 more held out.
- ``imitation``: the 56 expert rollouts of Pendulum-v1 (200 steps, uniform starts) that ship inside
  imitation's source distribution (``benchmarks/fetch_pendulum_demos.py``), a fifth held out; here the
  trajectory model reweights starts by how cheap the task is from them, which the recorded starts do not
  follow (the documentation's continuous-control page).

Per (data, method, seed): the CPU seconds of training (``time.process_time``; the peers get as many as this
library's GCL used on the same data and seed), wall seconds; EPIC distance of the learned cost to the
environment's (held-out transitions, ``maxent_gan.inference.spaces.simulator_epic``; the peers' learned
reward enters negated); the true return (−θ*·φ summed) of the learned policy from the environment's resets: for this library the trained
sampler's actions, drawn (a MaxEnt policy is stochastic; on the swing-up its mean action is 0 at the symmetric
start, so acting by the mean never swings; its learned start is not used), for the peers SAC acting
deterministically; with max torque 10
("shifted"), a policy re-optimised on the learned cost, for this library on the swing-up only (at 200 steps
the refit is too slow for this budget; a peer's fixed policy acts the same with max torque 10, its torques
staying within ±2, and re-training SAC on its learned reward is beyond the budget); on the swing-up, the
posterior over θ under the GCL sampler with its verdict.

    python benchmarks/continuous_irl.py [--data swing-up imitation] [--methods gcl gan airl gail] [--seeds 0 1 2]
        # resumable: every finished row is kept in benchmarks/runs/continuous_irl/rows.json and skipped on a
        # rerun; benchmarks/results/continuous_irl.{md,json} are rewritten after every row
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from maxent_gan.inference.ebm import ebm_summary, train_ebm  # noqa: E402
from maxent_gan.inference.io import write_atomic  # noqa: E402
from maxent_gan.inference.posterior import sample_posterior  # noqa: E402
from maxent_gan.inference.spaces import simulator_epic  # noqa: E402
from maxent_gan.models.pendulum import (  # noqa: E402
    PENDULUM_FEATURE_NAMES,
    PENDULUM_THETA,
    Pendulum,
    observations,
    pendulum_features,
    pendulum_problem,
)

HERE = Path(__file__).parent
RUNS = HERE / "runs" / "continuous_irl"
STEPS = {"swing-up": 1500, "imitation": 1000}  # this library's training steps (its budget; the peers match it)
HORIZON = {"swing-up": 40, "imitation": 200}
ENV_KIND = {"swing-up": "swing-up", "imitation": "pendulum-v1"}
THETA_STAR = jnp.asarray(PENDULUM_THETA)


def load(data: str, seed: int):
    """The problem and its (train, test) demonstrations."""
    if data == "swing-up":
        problem = pendulum_problem()
        train, test = problem.data(jax.random.key(seed), 100, 200)
    else:
        from fetch_pendulum_demos import fetch

        problem = pendulum_problem(horizon=200, demonstrations=fetch())
        train, test = problem.data(jax.random.key(seed), 0, 0)
    return problem, train, test


def as_imitation(problem, rows: jax.Array) -> list:
    """Packed rows as imitation ``TrajectoryWithRew`` objects (observations, torques, the true rewards)."""
    from imitation.data.types import TrajectoryWithRew

    states, actions = problem.space.layout.unpack(rows)
    rewards = -(pendulum_features(states[:, :-1], actions) @ THETA_STAR)
    return [TrajectoryWithRew(obs=np.asarray(observations(s), np.float32), acts=np.asarray(a, np.float32), infos=None,
                              terminal=True, rews=np.asarray(r, np.float32))
            for s, a, r in zip(states, actions, rewards, strict=True)]


def true_return(rows: jax.Array, problem) -> float:
    """Mean true return (−θ*·φ summed) of packed trajectories."""
    states, actions = problem.space.layout.unpack(rows)
    return float(jnp.mean(-(pendulum_features(states[:, :-1], actions) @ THETA_STAR).sum(-1)))


def policy_return(policy, dynamics, *, key: jax.Array, episodes: int = 1000) -> float:
    """Mean true return of ``policy``'s actions (drawn, squashed into its box) from the environment's own resets
    (``dynamics``' start distribution, not the start the sampler learned), on ``dynamics``."""
    key_start, key_actions = jax.random.split(key)
    x = dynamics.start_sample(key_start, episodes)
    total = jnp.zeros(episodes, x.dtype)
    for t in range(dynamics.horizon):
        u = policy.act(jax.random.fold_in(key_actions, t), x, t)
        total = total - pendulum_features(x, u) @ THETA_STAR
        x = dynamics.step(x, u)
    return float(total.mean())


def reoptimized_return(theta, dynamics, *, seed: int, steps: int = 1000) -> float:
    """A policy fitted afresh (reverse KL from the broad policy, pathwise through ``dynamics``) to the learned cost
    ``theta``, then scored by the true cost: does the learned cost teach the task on other dynamics?"""
    from maxent_gan.inference.sampler import fit_sampler, proposal_optimizer
    from maxent_gan.inference.spaces import broad_proposal, sampler_rates
    from maxent_gan.models.builders import simulator_problem

    problem = simulator_problem(dynamics, pendulum_features, PENDULUM_FEATURE_NAMES, theta_true=theta,
                                name="reoptimized")
    optimizer = proposal_optimizer(sampler_rates(problem.space).fit, steps)
    fit = fit_sampler(jax.random.key(seed), broad_proposal(problem.space, jax.random.key(seed + 1)), problem.target,
                      steps=steps, num_draws=256, optimizer=optimizer, progress=False)
    return true_return(fit.proposal.sample(jax.random.key(seed + 2), 1000), problem)


def ours(method: str, data: str, seed: int) -> dict:
    problem, train, test = load(data, seed)
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    run = train_ebm(problem, method, steps=STEPS[data], key=jax.random.key(seed), data=(train, test), progress=False,
                    eval_every=10_000)
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    summary = ebm_summary(run)
    policy = run.result.state.proposal
    row = {"data": data, "method": method, "seed": seed, "cpu_seconds": cpu, "wall_seconds": wall,
           "epic": summary["epic"], "theta": summary["theta"],
           "return": policy_return(policy, problem.space.dynamics, key=jax.random.key(seed + 1)),
           "return_shifted": None, "return_demos": true_return(test, problem)}
    if data == "swing-up":  # a policy re-optimised on the learned cost with max torque 10 (200 steps: too slow)
        row["return_shifted"] = reoptimized_return(jnp.asarray(summary["theta"]),
                                                   Pendulum(max_torque=10.0, horizon=HORIZON[data]).swing_up, seed=seed)
    if data == "swing-up" and method == "gcl":
        idata = sample_posterior(problem.model, train, key=jax.random.key(seed + 2), proposal=policy, num_draws=8000,
                                 num_warmup=300, num_samples=300, num_chains=2)
        theta = np.asarray(idata.posterior["theta"].values).reshape(-1, 3)
        attrs = idata.posterior.attrs
        row.update(posterior_mean=theta.mean(0).tolist(), posterior_sd=theta.std(0).tolist(),
                   posterior_shift_sd=float(np.max(np.abs(theta.mean(0) - np.asarray(PENDULUM_THETA)) / theta.std(0))),
                   reliable=bool(attrs["reliable"]), reasons=attrs["unreliable_reasons"])
    return row


def peer(method: str, data: str, seed: int, cpu_seconds: float) -> dict:
    import torch
    from continuous_peers import run_peer

    # one thread: torch's thread pool spinning against this library's JAX threads burns CPU seconds without
    # steps (a contended run reached 2000 environment steps in 176 CPU s, an uncontended one 12 000 in 98)
    torch.set_num_threads(1)

    problem, train, test = load(data, seed)
    result = run_peer(method, as_imitation(problem, train), ENV_KIND[data], seed=seed, cpu_seconds=cpu_seconds)
    reward = result["reward"]

    def cost(states, actions, following):
        return -jnp.asarray(reward(np.asarray(observations(states), np.float64), np.asarray(actions, np.float64),
                                   np.asarray(observations(following), np.float64)))

    def true_cost(states, actions, _):
        return pendulum_features(states, actions) @ THETA_STAR

    return {"data": data, "method": method, "seed": seed, "cpu_seconds": result["cpu_seconds"],
            "wall_seconds": result["wall_seconds"], "timesteps": result["timesteps"],
            "epic": simulator_epic(problem.space, cost, true_cost, test),
            # a fixed policy acts the same with max torque 10 as with 2 (its torques stay within ±2): only a
            # policy re-trained on the learned reward would show the shift, beyond this budget
            "return": result["return"], "return_shifted": None,
            "return_demos": true_return(test, problem)}


def _fmt(value, digits=3):
    return "–" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def write_tables(rows: list[dict]) -> None:
    write_atomic(HERE / "results" / "continuous_irl.json", json.dumps(rows, indent=1))
    lines = ["# Continuous control: GCL and the GAN form against imitation's AIRL and GAIL (Pendulum-v1)", "",
             "Written by `python benchmarks/continuous_irl.py` (2 CPU cores; see its docstring). EPIC: the learned "
             "cost's distance to the environment's (0 = the same up to shaping and scale); returns are true "
             "(−θ*·φ summed) from the environment's resets: this library's trained sampler's actions (drawn), the peers' SAC policy acting "
             "deterministically; `shifted`: max torque 10 (this library: a policy re-optimised on the learned cost). "
             "The peers train for as many CPU seconds as this library's GCL used on the same data and seed.", "",
             "| data | method | seed | CPU s | wall s | EPIC | return | return (shifted) | demos' return | "
             "posterior (mean ± sd) | verdict |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: (r["data"], r["method"], r["seed"])):
        posterior = "–"
        if "posterior_mean" in row:
            posterior = ", ".join(f"{m:.3f} ± {s:.3f}" for m, s in zip(row["posterior_mean"], row["posterior_sd"],
                                                                          strict=True))
        verdict = "–" if "reliable" not in row else ("reliable" if row["reliable"] else "flagged")
        lines.append(f"| {row['data']} | {row['method']} | {row['seed']} | {row['cpu_seconds']:.0f} | "
                     f"{row['wall_seconds']:.0f} | {_fmt(row['epic'])} | {row['return']:.1f} | "
                     f"{_fmt(row['return_shifted'], 1)} | {row['return_demos']:.1f} | {posterior} | {verdict} |")
    write_atomic(HERE / "results" / "continuous_irl.md", "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["swing-up", "imitation"], choices=["swing-up", "imitation"])
    parser.add_argument("--methods", nargs="+", default=["gcl", "gan", "airl", "gail"],
                        choices=["gcl", "gan", "airl", "gail"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args()
    RUNS.mkdir(parents=True, exist_ok=True)
    store = RUNS / "rows.json"
    rows = json.loads(store.read_text()) if store.exists() else []
    done = {(r["data"], r["method"], r["seed"]) for r in rows}
    for data in args.data:
        for seed in args.seeds:
            # this library's GCL first: its CPU seconds are the peers' budget
            for method in sorted(args.methods, key=lambda m: m != "gcl"):
                if (data, method, seed) in done:
                    continue
                if method in ("gcl", "gan"):
                    row = ours(method, data, seed)
                else:
                    budget = next((r["cpu_seconds"] for r in rows
                                   if (r["data"], r["method"], r["seed"]) == (data, "gcl", seed)), None)
                    if budget is None:
                        raise SystemExit(f"methods: the peers' budget is GCL's CPU time on {data}, seed {seed}; "
                                         "run gcl first")
                    row = peer(method, data, seed, budget)
                rows.append(row)
                write_atomic(store, json.dumps(rows, indent=1))
                write_tables(rows)
                print({k: v for k, v in row.items() if k not in ("reasons",)}, flush=True)


if __name__ == "__main__":
    main()
