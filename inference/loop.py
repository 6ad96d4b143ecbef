"""The one fit loop of the samplers: many optimizer steps per host round-trip (``lax.scan`` chunks),
with the progress bar and the NaN guard per chunk.

``fit_sampler`` (reverse KL to an energy), ``fit_at_anchors`` (one copy per anchor θ) and
``fit_policy_to_demos`` (behaviour cloning by gradient) and the training driver
(``inference.driver.run_training``, one segment between two logged steps at a time) all run
through :func:`fit_in_chunks`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from inference.training import all_finite

__all__ = ["cached_step", "fit_in_chunks"]


@functools.lru_cache(maxsize=128)
def _cached(factory, args, kwargs):
    return factory(*args, **dict(kwargs))


def cached_step(factory: Callable[..., Callable], *args, **kwargs) -> Callable:
    """``factory(*args, **kwargs)``, the same function object for the same (hashable) settings.

    The compiled chunk of :func:`fit_in_chunks` is cached on the step function's identity, so a
    step built afresh per call would recompile every call; built here, repeated fits of the same
    settings and shapes reuse it. Unhashable settings (a cost that is an equinox module holding
    arrays) still work, built afresh.
    """
    try:
        return _cached(factory, args, tuple(sorted(kwargs.items())))
    except TypeError:
        return factory(*args, **kwargs)


def _format(loss: np.ndarray) -> str:
    values = [f"{float(v):.6g}" for v in np.ravel(loss)]
    return values[0] if np.ndim(loss) == 0 else f"[{', '.join(values)}]"


@eqx.filter_jit
def _run_chunk(step, carry, start, length, args):
    arrays, static = eqx.partition(carry, eqx.is_array)

    def body(arrays, i):
        new, loss = step(eqx.combine(arrays, static), start + i, args)
        return eqx.partition(new, eqx.is_array)[0], loss

    arrays, losses = jax.lax.scan(body, arrays, jnp.arange(length))
    return eqx.combine(arrays, static), losses


def fit_in_chunks(
    step: Callable[[Any, jax.Array, Any], tuple[Any, jax.Array]],
    carry: Any,
    steps: int,
    *,
    args: Any = (),
    chunk: int = 50,
    params: Callable[[Any], Any] = lambda carry: carry,
    start: int = 0,
    loss_name: str = "the loss",
    progress: bool = False,
    desc: str = "fit",
) -> tuple[Any, np.ndarray, str | None]:
    """Run ``carry, loss = step(carry, i, args)`` for ``i = 0 .. steps - 1``, ``chunk`` steps per compiled
    ``lax.scan`` (the carry's non-array parts, such as a flow's activation functions, stay outside it).
    Arrays the step reads (the target, the key, the data) go in ``args``, not in its closure: as
    arguments they are traced, so the compiled program does not bake them in as constants and the
    persistent compilation cache serves every call of the same shapes.

    After each chunk the guard checks every loss and the parameters ``params(carry)``; on a non-finite
    value it stops and keeps the carry of the last good chunk. Returns ``(carry, losses, stopped)``:
    the losses of the accepted steps (``(steps_done, ...)``) and ``None``, or the reason it stopped
    (naming the real cause: a non-finite loss, or non-finite parameters under a finite loss).
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps: expected a non-negative integer, got {steps!r}")
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        raise ValueError(f"chunk: expected a positive integer, got {chunk!r}")

    def failure(losses, new) -> str | None:
        finite = np.isfinite(losses.reshape(losses.shape[0], -1)).all(axis=1)
        if not finite.all():
            return f"{loss_name} became {losses[int(np.argmin(finite))].tolist()}"
        if not bool(all_finite(params(new))):
            return (f"the parameters became non-finite ({loss_name}, {_format(losses[-1])}, was finite: "
                    "its gradient was not)")
        return None

    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise ValueError(f"start: expected a non-negative integer, got {start!r}")
    done, end, kept, stopped = start, start + steps, [], None
    bar = tqdm(total=steps, desc=desc, disable=not progress, leave=False)
    while done < end and stopped is None:
        length = min(chunk, end - done)
        new, losses = _run_chunk(step, carry, jnp.asarray(done), length, args)
        losses = np.asarray(losses)
        if failure(losses, new) is not None:
            # replay the chunk one step at a time: keep every good step and name the first bad one
            first = done
            for _ in range(length):
                new, loss = _run_chunk(step, carry, jnp.asarray(done), 1, args)
                cause = failure(np.asarray(loss), new)
                if cause is not None:
                    stopped = f"{cause} at step {done}; returning the state after {done} step(s)"
                    break
                carry, done = new, done + 1
                kept.append(np.asarray(loss))
            bar.update(done - first)
            continue
        carry, done = new, done + length
        kept.append(losses)
        bar.update(length)
        bar.set_postfix(loss=f"{float(np.mean(losses[-1])):.4f}")
    bar.close()
    losses = np.concatenate(kept) if kept else np.zeros((0,))
    return carry, losses, stopped
