"""The verdict of ``compare``: each posterior's shift from the exact-normalizer posterior, graded, and
whether the library's rule flags it (or its sampler was never trained as asked), said in words."""

from __future__ import annotations

import numpy as np
from maxent_gan.inference.app.cross_check import cross_check_reading

__all__ = ["SHIFT_OK", "add_verdicts", "stop_text"]


SHIFT_OK = 0.2  # |posterior mean - exact posterior mean| in exact-posterior sd: 'agrees' up to this


def add_verdicts(summary: dict) -> None:
    """Shift of each posterior mean from the exact-normalizer posterior (in its sd), and a verdict in words."""
    rows = summary["proposals"]
    exact = rows.get("exact")
    for name, row in rows.items():
        if exact is not None:
            shift = np.abs(np.subtract(row["posterior_mean"], exact["posterior_mean"])) / np.asarray(exact["posterior_sd"])
            row["shift_max_sd"] = float(shift.max())
        row["verdict"] = _verdict(name, row, have_exact=exact is not None)


def _grade(shift: float) -> str:
    if shift <= SHIFT_OK:
        return "agrees"
    if shift <= 1.0:
        return "slightly off"
    if shift <= 5.0:
        return "off"
    return "far off"


def _flag(row: dict) -> tuple[bool, str]:
    """Whether the rule for a posterior (maxent_gan.inference.diagnostics) flags this row, and what it saw,
    in words: its reasons when flagged; else where the per-draw estimate breaks and how far the set of
    proposal draws moves the posterior."""
    reasons = row.get("unreliable_reasons") or ""
    if reasons:
        return True, reasons
    parts = []
    fraction, tails = row.get("unreliable_fraction"), row.get("unreliable_in_tails")
    if fraction:
        where = "" if tails is None else f", {100 * tails:.0f}% of them in its tails (beyond 2 sd)"
        parts.append(f"log Ẑ(θ) fails the per-draw checks at {100 * fraction:.0f}% of the draws{where}")
    if row.get("draw_set_error") is not None:
        parts.append(f"its set of proposal draws moves it up to {row['draw_set_error']:.2f} sd")
    check = row.get("cross_check")
    if cross_check_reading(check) == "inconclusive":
        parts.append(f"the SMC cross-check differs by up to {check['spread']:.3f} nats, within what its own "
                     f"run-to-run variation ({check['smc_noise']:.3f} nats) explains: inconclusive")
    return False, "; ".join(parts) or "every check passed"


def stop_text(method: str, training: dict) -> str:
    return (f"its {method} sampler's training stopped at step {training['steps']} of {training['requested']} "
            f"({training['stopped'].removeprefix('training stopped: ')})")


def _verdict(name: str, row: dict, *, have_exact: bool) -> str:
    if name == "exact":
        return "the gold standard: the exact log Z(θ) at every step"
    flagged, flag_text = _flag(row)
    if row.get("training_stopped"):  # a sampler that was never trained as asked: its row is not a result
        flagged, flag_text = True, row["training_stopped"] + (f"; {flag_text}" if flag_text else "")
    if not have_exact:
        return f"{flag_text}: " + ("flagged, do not trust this posterior" if flagged else
                                   "not flagged, as far as the diagnostics can see")
    shift = row["shift_max_sd"]
    grade = f"{_grade(shift)} ({shift:.2f} sd)"
    if shift <= SHIFT_OK:
        return f"{grade}; " + (f"flagged: {flag_text}" if flagged else flag_text)
    if flagged:
        return f"{grade}, and flagged: {flag_text}"
    return (f"{grade}, NOT flagged ({flag_text}): an error every set of draws shares, which neither the "
            "per-draw checks nor a second set of draws can see")
