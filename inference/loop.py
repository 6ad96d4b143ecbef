"""The one fit loop of the samplers: many optimizer steps per host round-trip (``lax.scan`` chunks),
with the progress bar and the NaN guard per chunk.

``fit_sampler`` (reverse KL to an energy), ``fit_at_anchors`` (one copy per anchor θ),
``fit_conditional`` (a θ-conditional sampler), ``fit_to_data`` (maximum likelihood: a flow's warm
start, behaviour cloning by gradient) and the training driver
(``maxent_gan.inference.driver.run_training``, one segment between two logged steps at a time) all run
through :func:`fit_in_chunks`, and every fit returns a :class:`FitResult`.

Steps are equinox modules whose fields are their settings (the optimizer, the number of draws, the
cost function): ``fit_in_chunks`` compiles through ``eqx.filter_jit``, which keys its cache on those
fields, so two fits with equal settings and shapes share one compiled program, and nothing is kept
alive by a process-wide cache.

Precision is decided once, at the fit's entry (``dtype``): ``"float32"`` casts the carry and the
arguments, runs every step under ``jax.enable_x64(False)`` and hands the result back in the dtypes
it was given, so everything after the fit (importance weights, log-sum-exps, the identities) stays
in float64. Training a proposal in float32 cannot bias an estimate: the weights are computed
afterwards, in float64, for the proposal that was fitted; only how good that proposal is depends
on the fit's precision. It is opt-in (:data:`FIT_DTYPE` is ``None``: the inputs' own precision)
because it made the fits worse where they are fragile and bought nothing measurable: on 2026-12-07
(``benchmarks/fit_step.py``, one run) the 10-D funnel flow fit ran 92 steps/s in float32 against 88 in
float64, and on 2026-12-02 the 40-mode mixture's float32 fit turned its loss NaN at step 3 (float64:
400 steps, 2 skipped) and the θ-conditional flow of ``tests/test_conditional.py`` came out with k-hat
0.72 at a held-out θ (float64: below 0.7).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from maxent_gan.inference.training import all_finite
from maxent_gan.models._validation import check_positive_int
from tqdm.auto import tqdm

__all__ = ["FIT_DTYPE", "FitResult", "fit_in_chunks", "in_precision"]

FIT_DTYPE: str | None = None
"""The default ``dtype`` of the samplers' fits (``fit_sampler``, ``fit_at_anchors``,
``fit_conditional``, behaviour cloning): ``None``, the inputs' own precision; pass
``dtype="float32"`` to train faster (see the module docstring for what it costs)."""


class FitResult(NamedTuple):
    """What every fit returns: the fitted ``proposal`` (a flow, a policy, an anchor mixture, a
    conditional flow), the ``losses`` of the steps it took (``(steps_done, ...)``), why it ``stopped``
    early (``None``: it ran every step; else the guard's reason, naming the step) and how many steps
    the optimizer ``skipped`` for a non-finite gradient (:func:`maxent_gan.inference.sampler.skipped_steps`)."""

    proposal: Any
    losses: np.ndarray
    stopped: str | None
    skipped: int


def _cast(tree, dtype):
    # floating arrays to `dtype`; for float32 also 64-bit integers to 32 bits (keys, non-arrays untouched);
    # None: the tree as it is
    if dtype is None:
        return tree

    def one(x):
        if not eqx.is_array(x) or jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return x
        if jnp.issubdtype(x.dtype, jnp.floating):
            return x.astype(dtype)
        if dtype == "float32" and jnp.issubdtype(x.dtype, jnp.integer) and x.dtype.itemsize == 8:
            return x.astype(jnp.uint32 if jnp.issubdtype(x.dtype, jnp.unsignedinteger) else jnp.int32)
        return x

    return jax.tree.map(one, tree)


def _restore(tree, like):
    # back to the dtypes the caller gave (the arrays of `tree` and `like` correspond one to one)
    return jax.tree.map(lambda x, old: x.astype(old.dtype) if eqx.is_array(x) and eqx.is_array(old) else x,
                        tree, like)


def in_precision(dtype: str | None):
    """The context a fit of precision ``dtype`` runs in: ``jax.enable_x64(False)`` for float32 (so
    every constant and intermediate is float32 too, not promoted by a float64 closure), nothing
    for ``None``. The argument is checked here, before any work."""
    if dtype is None:
        return contextlib.nullcontext()
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype: expected 'float32', 'float64' or None, got {dtype!r}")
    if dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("dtype: 'float64' needs jax_enable_x64 (jax.config.update('jax_enable_x64', True))")
    return _scope(x64=dtype == "float64")


@contextlib.contextmanager
def _scope(*, x64: bool):
    with jax.enable_x64(x64), warnings.catch_warnings():
        # a float64 request inside a float32 fit truncates to float32 by design (flowjax's coupling layers
        # unravel their parameters to the dtypes they were built in): the fit chose float32, not silently
        warnings.filterwarnings("ignore", message="Explicitly requested dtype float64")
        yield


def _format(loss: np.ndarray) -> str:
    values = [f"{float(v):.6g}" for v in np.ravel(loss)]
    return values[0] if np.ndim(loss) == 0 else f"[{', '.join(values)}]"


@eqx.filter_jit
def _run_chunk(step, carry, start, length, args, size):
    """``length`` (traced, at most ``size``) steps from step ``start``: a ``lax.scan`` of ``size`` whose
    steps past ``length`` keep the carry (their losses are zeros the caller drops). One compiled program
    serves a fit's every chunk, its last, shorter one and the one-step replays of a failed chunk included."""
    arrays, static = eqx.partition(carry, eqx.is_array)

    def advance(arrays, i):
        new, loss = step(eqx.combine(arrays, static), start + i, args)
        return eqx.partition(new, eqx.is_array)[0], loss

    loss = jax.eval_shape(advance, arrays, jnp.asarray(0))[1]

    def body(arrays, i):
        return jax.lax.cond(i < length, advance, lambda arrays, _: (arrays, jnp.zeros(loss.shape, loss.dtype)),
                            arrays, i)

    arrays, losses = jax.lax.scan(body, arrays, jnp.arange(size))
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
    dtype: str | None = None,
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

    ``dtype="float32"`` runs every step in float32 (the carry's and the args' floating arrays cast,
    under ``jax.enable_x64(False)``) and returns the carry in the dtypes it came in; ``None`` runs
    in the inputs' own precision.
    """
    check_positive_int("steps", steps, minimum=0)
    check_positive_int("chunk", chunk)

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
    with in_precision(dtype):
        result, losses, stopped = _loop(step, _cast(carry, dtype), steps, _cast(args, dtype), min(chunk, steps),
                                        failure, start, progress, desc)
    return (result if dtype is None else _restore(result, carry)), losses, stopped


def _loop(step, carry, steps, args, chunk, failure, start, progress, desc):
    done, end, kept, stopped = start, start + steps, [], None
    bar = tqdm(total=steps, desc=desc, disable=not progress, leave=False)
    while done < end and stopped is None:
        length = min(chunk, end - done)
        new, losses = _run_chunk(step, carry, jnp.asarray(done), jnp.asarray(length), args, chunk)
        losses = np.asarray(losses)[:length]
        if failure(losses, new) is not None:
            # replay the chunk one step at a time: keep every good step and name the first bad one
            first = done
            for _ in range(length):
                new, loss = _run_chunk(step, carry, jnp.asarray(done), jnp.asarray(1), args, chunk)
                loss = np.asarray(loss)[:1]
                cause = failure(loss, new)
                if cause is not None:
                    stopped = f"{cause} at step {done}; returning the state after {done} step(s)"
                    break
                carry, done = new, done + 1
                kept.append(loss)
            bar.update(done - first)
            continue
        carry, done = new, done + length
        kept.append(losses)
        bar.update(length)
        bar.set_postfix(loss=f"{float(np.mean(losses[-1])):.4f}")
    bar.close()
    losses = np.concatenate(kept) if kept else np.zeros((0,))
    return carry, losses, stopped
