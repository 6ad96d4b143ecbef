"""One compiled program for a function called outside any trace, shared by every layer."""

from __future__ import annotations

import functools

import equinox as eqx
import jax

__all__ = ["compiled_when_eager"]


def compiled_when_eager(fun):
    """``fun`` (a function, or a method of an equinox module) run as one compiled program when it is
    called outside any trace.

    Called eagerly (a user's script, a report, a test), a function of a few dozen operations would
    otherwise run operation by operation, each compiled on its own for every new shape: a flow's
    density of 64 points from Python compiled 22 small programs. Under :func:`equinox.filter_jit` the arrays
    among the arguments (a module's own included) are traced and everything else (counts, horizons,
    static fields) is static. Inside a trace (a jitted fit, a vmap over components, a gradient, NUTS)
    ``fun`` runs as written, so the programs that contain it are the same as without this wrapper.
    Checks of argument *values* belong outside it: under the compiled path they would see tracers."""
    compiled = eqx.filter_jit(fun)

    @functools.wraps(fun)
    def dispatch(*args, **kwargs):
        traced = any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((args, kwargs)))
        return (fun if traced else compiled)(*args, **kwargs)

    return dispatch
