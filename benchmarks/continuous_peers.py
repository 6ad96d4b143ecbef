"""Peer baselines for the continuous Pendulum benchmark: imitation's AIRL and GAIL with an SB3 SAC learner.

    python benchmarks/continuous_peers.py --smoke     # ~20 CPU-seconds of GAIL and of AIRL on the shipped demos

``make_env(kind, *, max_torque=2.0)`` builds the evaluation environment. ``kind="pendulum-v1"`` is gymnasium's
Pendulum-v1 unchanged (200-step time limit, uniform random start). ``kind="swing-up"`` is the same pendulum started
hanging still at exactly theta = pi, theta_dot = 0 (observation [cos, sin, theta_dot] = [-1, ~0, 0]) with a 40-step
time limit. ``max_torque`` changes the pendulum's torque limit and widens its action space to match; the benchmark
uses ``max_torque=10`` as "shifted dynamics".

``run_peer(method, trajectories, kind, *, seed, cpu_seconds)`` trains AIRL (``method="airl"``, a
``BasicShapedRewardNet``) or GAIL (``method="gail"``, a ``BasicRewardNet``), both with running input normalisation,
against ``trajectories`` (imitation ``TrajectoryWithRew`` objects with observations (T+1, 3) and actions (T, 1)) in
the training version of ``kind`` (always ``max_torque=2``). Training runs in chunks of 2000 environment steps on one
trainer, so nothing trained is thrown away, and stops at the end of the first chunk after which the process CPU time
spent inside training reaches ``cpu_seconds`` (so it overshoots by at most one chunk). CPU time counts every thread
of the process: call ``torch.set_num_threads`` first for comparable budgets. It returns a dict with

- ``method``, ``kind``, ``seed``: the arguments;
- ``cpu_seconds``, ``wall_seconds``: CPU and wall-clock time spent inside training;
- ``timesteps``: environment steps taken by the SAC learner;
- ``reward``: ``reward(obs (n, 3), acts (n, 1), next_obs (n, 3)) -> (n,)``, the learned reward the learner was
  trained on (AIRL: the shaped reward net; GAIL: -log(1 - D) of the discriminator), evaluated with done=False;
- ``policy``: ``act(obs (n, 3)) -> acts (n, 1)``, the trained SAC policy, deterministic;
- ``return``, ``return_shifted``: mean true return of ``policy`` over 20 episodes of ``make_env(kind)`` and of
  ``make_env(kind, max_torque=10.0)``. SAC's actions stay within the training limit of 2, and below its limit the
  torque acts the same in both environments, so the two returns are equal; the shifted environment only tells
  methods apart when a policy is re-trained in it (for instance on the learned reward).

Demonstration lengths are not checked against the horizon of ``kind``; pass demonstrations recorded in that
environment.

``evaluate_return(act, kind, *, episodes=20, seed=0, max_torque=2.0)`` is the mean undiscounted environment return of
the deterministic policy ``act`` over ``episodes`` episodes of ``make_env(kind, max_torque=max_torque)``; the first
reset is seeded with ``seed`` and later resets continue the same random stream.

Unknown methods or kinds, invalid budgets and malformed trajectories raise ``ValueError`` naming the argument
before any training starts.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import gymnasium
import numpy as np
import torch
from imitation.algorithms.adversarial.airl import AIRL
from imitation.algorithms.adversarial.gail import GAIL
from imitation.data import serialize
from imitation.data.types import TrajectoryWithRew
from imitation.rewards.reward_nets import BasicRewardNet, BasicShapedRewardNet
from imitation.util import logger as imit_logger
from imitation.util.networks import RunningNorm
from imitation.util.util import make_vec_env
from stable_baselines3 import SAC

HORIZONS = {"pendulum-v1": 200, "swing-up": 40}
METHODS = ("airl", "gail")
SHIFTED_MAX_TORQUE = 10.0
GEN_TRAIN_TIMESTEPS = 1000  # SAC steps per adversarial round (imitation's off-policy default is one step per round)
CHUNK_TIMESTEPS = 2 * GEN_TRAIN_TIMESTEPS  # steps per trainer.train call between CPU-budget checks
SMOKE_DEMOS = Path(__file__).resolve().parent.parent / "tests" / "data" / "imitation_pendulum_rollouts.npz"


class _HangingStart(gymnasium.Wrapper):
    """Resets the wrapped Pendulum to hang still: theta = pi, theta_dot = 0."""

    def reset(self, **kwargs) -> tuple[np.ndarray, dict]:
        _, info = self.env.reset(**kwargs)
        self.unwrapped.state = np.array([np.pi, 0.0])
        return np.array([np.cos(np.pi), np.sin(np.pi), 0.0], dtype=np.float32), info


def _check_kind(kind: str) -> None:
    if kind not in HORIZONS:
        raise ValueError(f"kind={kind!r}: expected one of {sorted(HORIZONS)}")


def make_env(kind: str, *, max_torque: float = 2.0) -> gymnasium.Env:
    """Pendulum-v1 (``kind="pendulum-v1"``) or its 40-step hanging start (``kind="swing-up"``) with ``max_torque``."""
    _check_kind(kind)
    if not max_torque > 0:
        raise ValueError(f"max_torque={max_torque!r}: must be positive")
    env = gymnasium.make("Pendulum-v1", max_episode_steps=HORIZONS[kind])
    env.unwrapped.max_torque = float(max_torque)
    env.unwrapped.action_space = gymnasium.spaces.Box(-max_torque, max_torque, (1,), np.float32)
    return _HangingStart(env) if kind == "swing-up" else env


def evaluate_return(
    act: Callable[[np.ndarray], np.ndarray], kind: str, *, episodes: int = 20, seed: int = 0, max_torque: float = 2.0
) -> float:
    """Mean undiscounted true return of the deterministic policy ``act`` over ``episodes`` seeded episodes."""
    if episodes < 1:
        raise ValueError(f"episodes={episodes!r}: must be at least 1")
    env = make_env(kind, max_torque=max_torque)
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        total, done = 0.0, False
        while not done:
            action = np.asarray(act(obs[None, :]), dtype=np.float32).reshape(env.action_space.shape)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def _check_trajectories(trajectories: Sequence[TrajectoryWithRew]) -> int:
    """Number of transitions in ``trajectories`` after checking their shapes."""
    if len(trajectories) == 0:
        raise ValueError("trajectories: empty")
    for i, traj in enumerate(trajectories):
        if traj.obs.ndim != 2 or traj.obs.shape[1] != 3 or traj.acts.shape != (len(traj.obs) - 1, 1):
            raise ValueError(f"trajectories[{i}]: obs {traj.obs.shape}, acts {traj.acts.shape}; "
                             "expected obs (T+1, 3) and acts (T, 1)")
    return sum(len(traj.acts) for traj in trajectories)


def run_peer(
    method: str, trajectories: Sequence[TrajectoryWithRew], kind: str, *, seed: int, cpu_seconds: float
) -> dict:
    """Train imitation's AIRL or GAIL with SAC on ``trajectories`` for ``cpu_seconds`` of training CPU time.

    See the module docstring for the returned dict.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}: expected one of {list(METHODS)}")
    _check_kind(kind)
    if not cpu_seconds > 0:
        raise ValueError(f"cpu_seconds={cpu_seconds!r}: must be positive")
    n_demo = _check_trajectories(trajectories)

    post_wrappers = [lambda env, _: _HangingStart(env)] if kind == "swing-up" else None
    venv = make_vec_env("Pendulum-v1", rng=np.random.default_rng(seed), n_envs=1,
                        max_episode_steps=HORIZONS[kind], post_wrappers=post_wrappers)
    learner = SAC("MlpPolicy", venv, seed=seed, device="cpu", learning_rate=1e-3, buffer_size=200_000,
                  learning_starts=1000, batch_size=256, policy_kwargs={"net_arch": [64, 64]})
    net_cls, trainer_cls = (BasicShapedRewardNet, AIRL) if method == "airl" else (BasicRewardNet, GAIL)
    reward_net = net_cls(venv.observation_space, venv.action_space, normalize_input_layer=RunningNorm)
    with tempfile.TemporaryDirectory() as log_dir:  # imitation's logger needs a folder; nothing is written to it
        trainer = trainer_cls(
            demonstrations=trajectories,
            demo_batch_size=min(256, n_demo),
            venv=venv,
            gen_algo=learner,
            reward_net=reward_net,
            n_disc_updates_per_round=16,
            gen_train_timesteps=GEN_TRAIN_TIMESTEPS,
            gen_replay_buffer_capacity=2 * GEN_TRAIN_TIMESTEPS,
            log_dir=log_dir,
            custom_logger=imit_logger.configure(log_dir, format_strs=[]),
        )
        cpu_spent = wall_spent = 0.0
        while cpu_spent < cpu_seconds:
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            trainer.train(total_timesteps=CHUNK_TIMESTEPS)
            cpu_spent += time.process_time() - cpu_start
            wall_spent += time.perf_counter() - wall_start
    venv.close()

    learned = trainer.reward_train

    def reward(obs: np.ndarray, acts: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        """Learned reward of the transitions (obs, acts, next_obs), taken as non-terminal."""
        obs = np.asarray(obs, dtype=np.float32)
        return learned.predict(obs, np.asarray(acts, dtype=np.float32), np.asarray(next_obs, dtype=np.float32),
                               np.zeros(len(obs), dtype=bool))

    def act(obs: np.ndarray) -> np.ndarray:
        """Deterministic SAC action for each row of ``obs``."""
        actions, _ = learner.predict(np.asarray(obs, dtype=np.float32), deterministic=True)
        return actions.reshape(len(obs), 1)

    return {
        "method": method, "kind": kind, "seed": seed, "cpu_seconds": cpu_spent, "wall_seconds": wall_spent,
        "timesteps": int(learner.num_timesteps), "reward": reward, "policy": act,
        "return": evaluate_return(act, kind),
        "return_shifted": evaluate_return(act, kind, max_torque=SHIFTED_MAX_TORQUE),
    }


def _smoke() -> None:
    """Run GAIL and AIRL for ~20 CPU-seconds each on the four shipped Pendulum-v1 demos and print the results."""
    torch.set_num_threads(1)
    trajectories = serialize.load(SMOKE_DEMOS)
    demo = trajectories[0]
    for method in ("gail", "airl"):
        result = run_peer(method, trajectories, "pendulum-v1", seed=0, cpu_seconds=20.0)
        print({k: v for k, v in result.items() if not callable(v)})
        rewards = result["reward"](demo.obs[:5].astype(np.float64), demo.acts[:5], demo.obs[1:6])
        print(f"  reward on 5 transitions: shape {rewards.shape}, values {np.round(rewards, 3)}; "
              f"policy on 5 observations: shape {result['policy'](demo.obs[:5]).shape}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="run GAIL and AIRL briefly on the shipped demos")
    if parser.parse_args().smoke:
        _smoke()
    else:
        parser.print_help()
