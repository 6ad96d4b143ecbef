"""One Python driver for every training algorithm.

``run_training`` runs a jitted ``step`` through the one fit loop (``maxent_gan.inference.loop.fit_in_chunks``:
every stretch of steps between two logged steps is one compiled ``lax.scan``, minibatches drawn
inside it) and adds between stretches what jit cannot:
a tqdm bar with the current losses, log Z and k-hat, a NaN guard that stops on the last
good state, checkpoints written atomically (no pickle: equinox's leaf serialisation plus
JSON), and resumption. The step's key is ``fold_in(key, step)``, so a resumed run gives
the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
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
from maxent_gan.inference.diagnostics import effective_sample_size, pareto_k_hat
from maxent_gan.inference.io import finite_or_none, write_atomic, write_json
from maxent_gan.inference.loop import fit_in_chunks
from maxent_gan.inference.training import TrainingAlgorithm, TrainState
from tqdm.auto import tqdm

__all__ = ["TrainingDivergedWarning", "TrainResult", "check_checkpoint", "check_data", "load_checkpoint", "run_training",
           "trace_column"]

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


def _save(directory: Path, state: TrainState, step: int, trace: list[dict], run: dict | None) -> None:
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, state)
    data = buffer.getvalue()
    name = f"state-{step:08d}.eqx"
    write_atomic(directory / name, data)
    # the JSON names the state file it goes with (and its size and hash), so the pair is never out of
    # step and a truncated state file is caught before any work; ``run`` is what a resume must match
    meta = {"step": step, "state": name, "state_bytes": len(data), "state_sha256": hashlib.sha256(data).hexdigest(),
            "run": run, "trace": trace}
    write_json(directory / CHECKPOINT, {**meta, "checksum": _checksum(meta)})
    for old in directory.glob("state-*.eqx"):
        if old.name != name:
            old.unlink(missing_ok=True)


def _checksum(meta: dict) -> str:
    # SHA-256 of the JSON itself (less this field), over a canonical form: an edited step, run or trace
    # is caught as surely as a damaged state file (whose size and hash the JSON carries)
    body = {key: value for key, value in meta.items() if key != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=False).encode()).hexdigest()


def check_checkpoint(directory: str | Path, *, run: dict | None = None, steps: int | None = None) -> dict:
    """The checkpoint's JSON, checked without the model (cheap: before any model building or warm-up).

    Refuses, naming the file and what is wrong: JSON that is unreadable or lacks ``step``,
    ``state`` or ``trace``; a state file that is missing, truncated or altered (its size and
    SHA-256 are in the JSON); ``steps`` fewer than the checkpoint's step; and a ``run`` (the
    settings that define the run: problem, method, seed, ...) other than the recorded one,
    naming the first differing setting.
    """
    directory = Path(directory)
    meta_path = directory / CHECKPOINT
    if not meta_path.is_file():
        raise ValueError(f"resume: no checkpoint in {directory} (expected {CHECKPOINT})")

    def damaged(why: str) -> ValueError:
        return ValueError(f"resume: the checkpoint {meta_path} {why}; train afresh without --resume")

    try:
        meta = json.loads(meta_path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise damaged(f"is not readable JSON (truncated or damaged: {err})") from None
    if not isinstance(meta, dict):
        raise damaged(f"holds a JSON {type(meta).__name__}, not an object with step, state and trace")
    missing = [key for key in ("step", "state", "state_bytes", "state_sha256", "trace", "checksum") if key not in meta]
    if missing:
        raise damaged(f"lacks the key(s) {', '.join(map(repr, missing))} (incomplete, edited, or written by an "
                      "older version)")
    try:
        intact = meta["checksum"] == _checksum(meta)
    except (TypeError, ValueError):
        intact = False
    if not intact:
        raise damaged("does not match its own checksum (it was edited or damaged)")
    step, name = meta["step"], meta["state"]
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise damaged(f"has step {step!r}, not a non-negative integer")
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise damaged(f"names the state file {name!r}, not a file name in {directory}")
    if not isinstance(meta["trace"], list):
        raise damaged("has a trace that is not a list")
    _check_state_file(meta_path, directory / name, meta)
    if steps is not None and steps < step:
        raise ValueError(f"steps: {steps} is fewer than the {step} steps already in the checkpoint {meta_path}; "
                         f"pass {step} or more")
    if run is not None:
        _check_same_run(meta_path, meta.get("run"), run)
    return meta


def _check_state_file(meta_path: Path, state_path: Path, meta: dict) -> None:
    if not state_path.is_file():
        raise ValueError(f"resume: the state file {state_path} that {meta_path} names is missing")
    data = state_path.read_bytes()
    size, digest = meta["state_bytes"], meta["state_sha256"]
    if len(data) != size:
        raise ValueError(f"resume: the state file {state_path} has {len(data)} bytes, {meta_path.name} says {size}: "
                         "it is truncated or damaged")
    if hashlib.sha256(data).hexdigest() != digest:
        raise ValueError(f"resume: the state file {state_path} does not match the SHA-256 in {meta_path.name}: "
                         "it is damaged")


def _check_same_run(meta_path: Path, recorded: Any, run: dict) -> None:
    if not isinstance(recorded, dict):
        raise ValueError(f"resume: the checkpoint {meta_path} does not record the settings of its run (an older "
                         "version wrote it), so it cannot be checked against this one; train afresh without --resume")
    for key in [*run, *(key for key in recorded if key not in run)]:
        old, new = recorded.get(key, "unrecorded"), run.get(key, "unset")
        if old != new:
            why = _WHY_SAME.get(key, "")
            raise ValueError(f"{key}: the checkpoint {meta_path} was written with {key}={old!r}, this run has "
                             f"{key}={new!r}{why}; resume with the same {key}, or train afresh in another --out")


# settings whose change on resume would not be obvious to a user
_WHY_SAME = {"steps": " (the learning rate's schedule spans the run's total steps, so a resumed run with more "
                      "steps would not give the numbers of an unbroken one)",
             "key": " (the run's key, from --seed)"}


def load_checkpoint(directory: str | Path, like: TrainState, *, run: dict | None = None,
                    steps: int | None = None) -> tuple[TrainState, int, list[dict]]:
    """The last checkpoint in ``directory``: ``(state, step, trace)``; ``like`` gives the structure.

    The files are checked first (:func:`check_checkpoint`, with ``run`` and ``steps``).
    """
    directory = Path(directory)
    meta = check_checkpoint(directory, run=run, steps=steps)
    state_path = directory / meta["state"]
    try:
        state = eqx.tree_deserialise_leaves(state_path, like)
    except (OSError, ValueError, RuntimeError, EOFError) as err:
        raise ValueError(f"resume: the checkpoint {state_path} does not match this run's model: {err}") from err
    return state, meta["step"], meta["trace"]


def _next(done: int, every: int) -> int:
    return (done // every + 1) * every


class _DriverStep(eqx.Module):
    # one training step on a minibatch of the data; its fields are its settings (the compiled segment is
    # keyed on them: every segment of one run shares one program)
    algorithm_step: Callable = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    num_data: int = eqx.field(static=True)

    def __call__(self, carry, i, args):
        key, data = args
        key_batch, key_train = jax.random.split(jax.random.fold_in(key, i))
        rows = jax.random.choice(key_batch, self.num_data, (self.batch_size,), replace=False)
        state, info = self.algorithm_step(key_train, carry[0], jax.tree.map(lambda leaf: leaf[rows], data))
        return (state, info.log_weights), jnp.stack([info.energy_loss, info.proposal_loss, info.log_z])


def _log_row(step: int, losses: np.ndarray, log_weights: jax.Array, evaluation: dict) -> dict[str, float | None]:
    k_hat = float(pareto_k_hat(log_weights))
    energy_loss, proposal_loss, log_z = (float(value) for value in losses)
    row = {
        "step": step,
        "energy_loss": energy_loss,
        "proposal_loss": proposal_loss,
        "log_z": log_z,
        "ess": float(effective_sample_size(log_weights)),
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
    run: dict | None = None,
    progress: bool = True,
    desc: str = "train",
) -> TrainResult:
    """Run ``steps`` steps of ``algorithm`` from ``state`` on minibatches of ``data``.

    ``evaluate(state)`` (e.g. quadrature log Z, held-out NLL) is called every ``eval_every``
    steps and at the end; its values join the trace. With ``resume=True`` the run restarts
    from the checkpoint in ``checkpoint_dir`` (same key: same numbers as an unbroken run).
    ``run`` (JSON: the settings that define the run) is recorded in each checkpoint, and a
    resume refuses a checkpoint recorded with other settings, or with more than ``steps`` steps.
    """
    for name, value in [("steps", steps), ("batch_size", batch_size), ("log_every", log_every),
                        ("eval_every", eval_every), ("checkpoint_every", checkpoint_every)]:
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "steps" else 1):
            raise ValueError(f"{name}: expected a {'non-negative' if name == 'steps' else 'positive'} integer, got {value!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume: needs checkpoint_dir")
    if run is not None:
        try:  # now, not at the first checkpoint after the work
            json.dumps(run, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ValueError(f"run: expected JSON-able settings, got {run!r} ({err})") from None
    directory = None if checkpoint_dir is None else Path(checkpoint_dir)
    start, trace = 0, []
    if resume:
        state, start, trace = load_checkpoint(directory, state, run=run, steps=steps)
    # data is an array of points or a pytree of arrays with a shared first axis (trajectories)
    num_data = jax.tree.leaves(data)[0].shape[0]
    batch_size = min(batch_size, num_data)
    step_fn = _DriverStep(algorithm.step, batch_size, num_data)
    # the carry holds the last step's log weights too (the k-hat and ESS of a logged row)
    shapes = eqx.filter_eval_shape(algorithm.step, key, state, jax.tree.map(lambda leaf: leaf[:batch_size], data))[1]
    carry = (state, jnp.zeros(shapes.log_weights.shape, shapes.log_weights.dtype))
    stopped, done = None, start
    bar = tqdm(desc=desc, disable=not progress, leave=False, initial=start, total=steps)
    while done < steps:
        # one compiled lax.scan from here to the next log, evaluation or checkpoint step: no host
        # round-trip in between (the NaN guard runs per segment and replays a bad one step by step)
        end = min(steps, _next(done, log_every), _next(done, checkpoint_every),
                  _next(done, eval_every) if evaluate is not None else steps)
        carry, losses, why = fit_in_chunks(step_fn, carry, end - done, args=(key, data), chunk=end - done,
                                           start=done, params=lambda carry: carry[0],
                                           loss_name="the (energy loss, proposal loss, log Z)")
        done += len(losses)
        bar.update(len(losses))
        if why is not None:
            stopped = f"training stopped: {why}"
            warnings.warn(stopped, TrainingDivergedWarning, stacklevel=2)
            break
        state = carry[0]
        is_eval = evaluate is not None and (done % eval_every == 0 or done == steps)
        if done % log_every == 0 or is_eval or done == steps:
            row = _log_row(done, losses[-1], carry[1], evaluate(state) if is_eval else {})
            trace.append(row)
            bar.set_postfix({k: f"{v:.3g}" for k, v in row.items()
                             if k in ("energy_loss", "proposal_loss", "log_z", "k_hat") and v is not None})
        if directory is not None and (done % checkpoint_every == 0 or done == steps):
            _save(directory, state, done, trace, run)
    bar.close()
    state = carry[0]
    if stopped and directory is not None:
        _save(directory, state, done, trace, run)
    return TrainResult(state, trace, done, stopped)
