"""Defaults that work (the target): ``maxent-gan train --problem P --method gan`` at its default
settings on every 2D toy for seeds 0-4, held-out NLL (quadrature) within 0.15 nats of the true NLL.

    python benchmarks/train_defaults.py [--method gan] [--seeds 0 1 2 3 4] [--toys rings,...]
    # writes results/train_defaults_<method>.{md,json} after every run

Runs the command line itself (in this process, into a temporary folder), so what is measured is what a
user gets. One run per cell, 2 CPU cores.
"""

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maxent_gan.inference.app.cli import main as cli  # noqa: E402
from maxent_gan.inference.ebm import NETWORK_RATE, NETWORK_STEPS  # noqa: E402
from maxent_gan.inference.io import write_atomic, write_json  # noqa: E402
from maxent_gan.models.toys import TOYS  # noqa: E402

TARGET = 0.15  # nats between the held-out NLL and the true NLL


def run(toy: str, method: str, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        printed = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(printed), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = cli(["train", "--problem", toy, "--method", method, "--seed", str(seed),
                        "--out", str(Path(folder) / "run"), "--json"])
        seconds = time.perf_counter() - start
    if code != 0:
        return {"toy": toy, "method": method, "seed": seed, "exit": code, "seconds": seconds}
    summary = json.loads(printed.getvalue())
    gap = summary["held_out_nll"] - summary["true_nll"]
    return {"toy": toy, "method": method, "seed": seed, "exit": 0, "steps": summary["steps"],
            "stopped": summary["stopped"], "held_out_nll": summary["held_out_nll"], "true_nll": summary["true_nll"],
            "gap": gap, "met": bool(gap <= TARGET), "k_hat": summary["k_hat"], "seconds": seconds}


def write(rows: list, args) -> None:
    out = Path(__file__).parent / "results"
    write_json(out / f"train_defaults_{args.method}.json", rows)
    met = sum(row.get("met", False) for row in rows)
    lines = [f"# `maxent-gan train --method {args.method}` at its defaults on the 2D toys", "",
             f"`python benchmarks/train_defaults.py --method {args.method} --seeds {' '.join(map(str, args.seeds))}`: "
             f"the command line's defaults ({NETWORK_STEPS} steps at learning rate {NETWORK_RATE:g} for an energy network), "
             "one run per cell, "
             "2 CPU cores. Gap: held-out NLL "
             f"(quadrature) minus the true NLL; target <= {TARGET} nats. **{met} of {len(rows)} met.**", "",
             "| toy | seed | steps | held-out NLL | true NLL | gap | target | k-hat | s |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if row["exit"] != 0:
            lines.append(f"| {row['toy']} | {row['seed']} | exit {row['exit']} | | | | missed | | {row['seconds']:.0f} |")
            continue
        steps = f"{row['steps']}" + (f" (stopped: {row['stopped']})" if row["stopped"] else "")
        k_hat = "" if row["k_hat"] is None else f"{row['k_hat']:.2f}"
        lines.append(f"| {row['toy']} | {row['seed']} | {steps} | {row['held_out_nll']:.4f} | {row['true_nll']:.4f} | "
                     f"{row['gap']:+.4f} | {'met' if row['met'] else '**missed**'} | {k_hat} | {row['seconds']:.0f} |")
    write_atomic(out / f"train_defaults_{args.method}.md", "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", default="gan")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--toys", default=",".join(TOYS))
    args = parser.parse_args()
    rows = []
    for toy in args.toys.split(","):
        for seed in args.seeds:
            rows.append(run(toy, args.method, seed))
            print(json.dumps(rows[-1]), flush=True)
            write(rows, args)


if __name__ == "__main__":
    main()
