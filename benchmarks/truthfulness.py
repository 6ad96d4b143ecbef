"""Does ``maxent-gan logz`` ever hand out a wrong log Z unflagged? The 2D toys × seeds × proposals.

Issue 12's truthfulness target: over the five 2D toys and seeds 0-4, no log Z estimate more than
0.1 nats off may leave ``logz`` unflagged. Each row is the CLI's own code path
(:func:`maxent_gan.inference.app.logz.estimate_log_z`, what ``maxent-gan logz --problem TOY --proposal P
--seed S`` runs) at its defaults: 10 000 importance draws, the forward check on 2000 exact draws,
each proposal's default fit. An estimate counts as flagged when the rule of
:mod:`maxent_gan.inference.diagnostics` calls it unreliable (``reliable`` is False: the CLI then warns).

    python benchmarks/truthfulness.py                        # every proposal, seeds 0-4
    python benchmarks/truthfulness.py --proposals broad gaussian --seeds 2
    # writes benchmarks/results/truthfulness.{md,json}; the json after every row, so a stopped run
    # keeps what it measured (--resume skips the rows already there)

``compare`` on the toys is not run here: its posteriors are the slow half and its log Ẑ(θ) go
through the same rule per draw.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import jax
from tqdm import tqdm

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maxent_gan.inference.app.logz import estimate_log_z  # noqa: E402
from maxent_gan.inference.diagnostics import UnreliableEstimateWarning  # noqa: E402
from maxent_gan.inference.io import write_atomic  # noqa: E402
from maxent_gan.models.problems import make_problem  # noqa: E402
from maxent_gan.models.toys import TOYS  # noqa: E402

PROPOSALS = ("broad", "gaussian", "defensive", "flow-data", "flow")
OFF = 0.1  # nats: the target's threshold
RESULTS = Path(__file__).resolve().parent / "results"


def run(toys, proposals, seeds, rows: list[dict], json_path: Path) -> list[dict]:
    done = {(row["toy"], row["proposal"], row["seed"]) for row in rows}
    todo = [(toy, proposal, seed) for proposal in proposals for toy in toys for seed in seeds
            if (toy, proposal, seed) not in done]
    for toy, proposal, seed in tqdm(todo, desc="logz rows"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnreliableEstimateWarning)
            result = estimate_log_z(make_problem(toy), proposal, key=jax.random.key(seed))
        rows.append({"toy": toy, "seed": seed, **{key: result[key] for key in (
            "proposal", "error", "ess", "k_hat", "forward_k_hat", "forward_ess", "reliable",
            "unreliable_reasons", "seconds")}})
        write_atomic(json_path, json.dumps(rows, indent=1, default=float))
    return rows


def table(rows: list[dict]) -> str:
    def cell(value, fmt):
        return "–" if value is None else format(value, fmt)

    lines = ["| toy | proposal | seed | error (nats) | k-hat | ESS | forward k-hat | forward ESS | flagged | s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['toy']} | {row['proposal']} | {row['seed']} | {row['error']:+.3f} | "
                     f"{cell(row['k_hat'], '.2f')} | {row['ess']:.0f} | {cell(row['forward_k_hat'], '.2f')} | "
                     f"{cell(row['forward_ess'], '.0f')} | {'yes' if not row['reliable'] else 'no'} | "
                     f"{row['seconds']:.1f} |")
    off = [row for row in rows if abs(row["error"]) > OFF]
    missed = [row for row in off if row["reliable"]]
    within = [row for row in rows if abs(row["error"]) <= OFF]
    false = [row for row in within if not row["reliable"]]
    lines += ["", f"Estimates more than {OFF} nats off: {len(off)} of {len(rows)}, of which unflagged: "
              f"{len(missed)}" + ("".join(f"\n- unflagged: {r['toy']} / {r['proposal']} / seed {r['seed']}: "
                                          f"{r['error']:+.3f} nats" for r in missed)),
              f"Flagged although within {OFF} nats: {len(false)} of {len(within)}."]
    return "\n".join(lines) + "\n"


def _seeds(rows: list[dict]) -> str:
    """Each proposal's seeds, as run (a --resume run may add a proposal at fewer seeds)."""
    seeds: dict[str, set] = {}
    for row in rows:
        seeds.setdefault(row["proposal"], set()).add(row["seed"])
    return "; ".join(f"{name}: {min(s)}-{max(s)}" for name, s in seeds.items())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proposals", nargs="+", default=list(PROPOSALS), choices=PROPOSALS)
    parser.add_argument("--toys", nargs="+", default=list(TOYS), choices=list(TOYS))
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1")
    parser.add_argument("--resume", action="store_true", help="keep the rows of an earlier run's json")
    args = parser.parse_args(argv)
    json_path = RESULTS / "truthfulness.json"
    rows = json.loads(json_path.read_text()) if args.resume and json_path.exists() else []
    rows = run(args.toys, args.proposals, range(args.seeds), rows, json_path)
    header = (f"# Truthfulness of `maxent-gan logz` on the 2D toys (defaults: 10 000 draws, forward check on "
              "2000 exact draws; float64; 2 CPU cores)\n\n"
              f"`python benchmarks/truthfulness.py` (one run; seeds {_seeds(rows)}). flagged: the rule of maxent_gan.inference.diagnostics "
              "calls the estimate unreliable.\n\n")
    text = table(rows)
    write_atomic(RESULTS / "truthfulness.md", header + text)
    print(text)


if __name__ == "__main__":
    main()
