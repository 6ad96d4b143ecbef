"""One Python driver for every training algorithm (STYLE.md §4).

``run_training`` calls a jitted ``step`` in a loop and adds what jit cannot: minibatches,
a tqdm bar with the current losses, log Z and k-hat, a NaN guard that stops on the last
good state, checkpoints written atomically (no pickle: equinox's leaf serialisation plus
JSON), and resumption. The step's key is ``fold_in(key, step)``, so a resumed run gives
the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from inference.diagnostics import effective_sample_size, pareto_k_hat
from inference.io import finite_or_none, write_atomic, write_json
from inference.training import TrainingAlgorithm, TrainState, all_finite

__all__ = ["TrainingDivergedWarning", "TrainResult", "check_data", "load_checkpoint", "run_training", "trace_column"]

CHECKPOINT = "checkpoint.json"


class TrainingDivergedWarning(UserWarning):
    """A loss or parameter became NaN/inf; training stopped on the last good state."""


class TrainResult(NamedTuple):
    state: TrainState
    trace: list[dict]  # one row per logged step: step, losses, log_z, k_hat, ess, evaluate()'s keys
    steps_done: int
    stopped: str | None  # why training stopped early, else None


def check_data(data: Any, dim: int, name: str = "data") -> jax.Array:
    """Training data ``(n, dim)``, finite; a clear error before any training starts."""
    data = jnp.asarray(data)
    if data.ndim != 2 or data.shape[1] != dim:
        raise ValueError(f"{name}: expected points of shape (n, {dim}), got {data.shape}")
    if data.shape[0] < 2:
        raise ValueError(f"{name}: expected at least 2 points, got {data.shape[0]}")
    bad = ~jnp.all(jnp.isfinite(data), axis=1)
    if bool(jnp.any(bad)):
        rows = np.flatnonzero(np.asarray(bad))
        raise ValueError(f"{name}: {rows.size} point(s) with NaN or inf, first at row {rows[0]}")
    return data


def trace_column(trace: list[dict], name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` of the rows that have ``name`` (evaluations are sparser than logs)."""
    rows = [(row["step"], row[name]) for row in trace if row.get(name) is not None]
    steps, values = zip(*rows, strict=True) if rows else ((), ())
    return np.asarray(steps, dtype=int), np.asarray(values, dtype=float)


def _save(directory: Path, state: TrainState, step: int, trace: list[dict]) -> None:
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, state)
    name = f"state-{step:08d}.eqx"
    write_atomic(directory / name, buffer.getvalue())
    # the JSON names the state file it goes with, so the pair is never out of step
    write_json(directory / CHECKPOINT, {"step": step, "state": name, "trace": trace})
    for old in directory.glob("state-*.eqx"):
        if old.name != name:
            old.unlink(missing_ok=True)


def load_checkpoint(directory: str | Path, like: TrainState) -> tuple[TrainState, int, list[dict]]:
    """The last checkpoint in ``directory``: ``(state, step, trace)``; ``like`` gives the structure."""
    directory = Path(directory)
    meta_path = directory / CHECKPOINT
    if not meta_path.is_file():
        raise ValueError(f"resume: no checkpoint in {directory} (expected {CHECKPOINT})")
    meta = json.loads(meta_path.read_text())
    try:
        state = eqx.tree_deserialise_leaves(directory / meta["state"], like)
    except (OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"resume: the checkpoint {directory / meta['state']} does not match this run's model: {err}") from err
    return state, int(meta["step"]), meta["trace"]


def _log_row(step: int, info, evaluation: dict) -> dict[str, float | None]:
    k_hat = float(pareto_k_hat(info.log_weights))
    row = {
        "step": step,
        "energy_loss": float(info.energy_loss),
        "proposal_loss": float(info.proposal_loss),
        "log_z": float(info.log_z),
        "ess": float(effective_sample_size(info.log_weights)),
        "k_hat": k_hat if np.isfinite(k_hat) else None,
    }
    row.update({key: finite_or_none(value) for key, value in evaluation.items()})
    return row


def run_training(
    key: jax.Array,
    algorithm: TrainingAlgorithm,
    state: TrainState,
    data: jax.Array,
    *,
    steps: int,
    batch_size: int = 256,
    log_every: int = 10,
    evaluate: Callable[[TrainState], dict[str, float]] | None = None,
    eval_every: int = 100,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 500,
    resume: bool = False,
    progress: bool = True,
    desc: str = "train",
) -> TrainResult:
    """Run ``steps`` steps of ``algorithm`` from ``state`` on minibatches of ``data``.

    ``evaluate(state)`` (e.g. quadrature log Z, held-out NLL) is called every ``eval_every``
    steps and at the end; its values join the trace. With ``resume=True`` the run restarts
    from the checkpoint in ``checkpoint_dir`` (same key: same numbers as an unbroken run).
    """
    for name, value in [("steps", steps), ("batch_size", batch_size), ("log_every", log_every),
                        ("eval_every", eval_every), ("checkpoint_every", checkpoint_every)]:
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "steps" else 1):
            raise ValueError(f"{name}: expected a {'non-negative' if name == 'steps' else 'positive'} integer, got {value!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume: needs checkpoint_dir")
    directory = None if checkpoint_dir is None else Path(checkpoint_dir)
    start, trace = 0, []
    if resume:
        state, start, trace = load_checkpoint(directory, state)
    # data is an array of points or a pytree of arrays with a shared first axis (trajectories)
    num_data = jax.tree.leaves(data)[0].shape[0]
    batch_size = min(batch_size, num_data)
    stopped, done = None, start
    bar = tqdm(range(start, steps), desc=desc, disable=not progress, leave=False, initial=start, total=steps)
    for step in bar:
        key_step = jax.random.fold_in(key, step)
        key_batch, key_train = jax.random.split(key_step)
        rows = jax.random.choice(key_batch, num_data, (batch_size,), replace=False)
        batch = jax.tree.map(lambda leaf, rows=rows: leaf[rows], data)
        new_state, info = algorithm.step(key_train, state, batch)
        losses_finite = np.isfinite([float(info.energy_loss), float(info.proposal_loss), float(info.log_z)]).all()
        if not (losses_finite and bool(all_finite(new_state))):
            stopped = (f"training stopped at step {step}: a loss or parameter became NaN/inf "
                       f"(energy loss {float(info.energy_loss)}, proposal loss {float(info.proposal_loss)}); "
                       f"kept the state after {done} step(s)")
            warnings.warn(stopped, TrainingDivergedWarning, stacklevel=2)
            break
        state = new_state
        done = step + 1
        is_eval = evaluate is not None and (done % eval_every == 0 or done == steps)
        if done % log_every == 0 or is_eval or done == steps:
            row = _log_row(done, info, evaluate(state) if is_eval else {})
            trace.append(row)
            bar.set_postfix({k: f"{v:.3g}" for k, v in row.items()
                             if k in ("energy_loss", "proposal_loss", "log_z", "k_hat") and v is not None})
        if directory is not None and (done % checkpoint_every == 0 or done == steps):
            _save(directory, state, done, trace)
    if stopped and directory is not None:
        _save(directory, state, done, trace)
    return TrainResult(state, trace, done, stopped)
