"""The ``maxent-gan`` command line.

``maxent-gan`` alone runs the main job (``identities`` on its defaults). Errors exit with
code 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2 (argparse prints usage too)
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from inference.proposals import PROPOSALS
    from models.problems import PROBLEMS

    parser = _Parser(prog="maxent-gan", description="GANs, IRL and EBMs as one estimator of log Z (Finn et al. 2016).")
    commands = parser.add_subparsers(dest="command")

    ident = commands.add_parser("identities", help="check the paper's three identities; write a report (default)")
    ident.add_argument("--problem", default="gaussian", help=f"one of: {', '.join(PROBLEMS)}")
    ident.add_argument("--dim", type=_positive_int, default=5)
    ident.add_argument("--samples", type=_positive_int, default=4000, help="data points and proposal draws")
    ident.add_argument("--seed", type=int, default=0)
    ident.add_argument("--fit-steps", type=_positive_int, default=1000, help="reverse-KL steps of the fitted proposal")
    ident.add_argument("--out", default="maxent-gan-report", help="output folder (default: %(default)s)")
    ident.add_argument("--force", action="store_true", help="overwrite a non-empty output folder")
    ident.add_argument("--json", action="store_true", help="print the summary as JSON instead of the report")

    logz = commands.add_parser("logz", help="estimate log Z of a problem with a proposal")
    logz.add_argument("--problem", default="gaussian", help=f"one of: {', '.join(PROBLEMS)}")
    logz.add_argument("--dim", type=_positive_int, default=2)
    logz.add_argument("--proposal", default="gaussian", help=f"one of: {', '.join(PROPOSALS)}")
    logz.add_argument("--samples", type=_positive_int, default=10_000)
    logz.add_argument("--seed", type=int, default=0)
    logz.add_argument("--scale", type=float, default=2.0, help="standard deviation of the broad Gaussian")
    logz.add_argument("--fit-steps", type=_positive_int, default=1000, help="reverse-KL steps for fitted proposals")
    logz.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def run_logz(args) -> tuple[dict, float]:
    """The estimate as a JSON-able dict (non-finite k-hat as null), and the raw k-hat."""
    import jax

    from inference.estimators import log_z_importance
    from inference.io import finite_or_none
    from inference.proposals import make_proposal
    from models.problems import make_problem

    target = make_problem(args.problem, dim=args.dim).target  # names are checked before any work

    key_fit, key_draw = jax.random.split(jax.random.key(args.seed))
    start = time.perf_counter()
    proposal = make_proposal(args.proposal, key_fit, target, scale=args.scale, steps=args.fit_steps,
                             progress=not args.json and sys.stderr.isatty())
    x, log_q = proposal.sample_and_log_prob(key_draw, args.samples)
    estimate = log_z_importance(-target.log_prob(x), log_q)
    seconds = time.perf_counter() - start
    return {
        "log_z": float(estimate.log_z),
        "log_z_exact": None if target.log_normalizer is None else float(target.log_normalizer),
        "ess": float(estimate.ess),
        "k_hat": finite_or_none(estimate.k_hat),
        "seconds": seconds,
        "problem": args.problem, "dim": args.dim, "proposal": args.proposal,
        "samples": args.samples, "seed": args.seed,
    }, float(estimate.k_hat)


def _print_logz_table(result: dict, k_hat: float) -> None:
    from inference.report import verdict

    exact = result["log_z_exact"]
    rows = [
        ("problem", f"{result['problem']} (d = {result['dim']})"),
        ("proposal", f"{result['proposal']}, {result['samples']} draws, seed {result['seed']}"),
        ("log Z (importance sampling)", f"{result['log_z']:.6f}"),
        ("log Z exact", "unknown" if exact is None else f"{exact:.6f}"),
        ("error", "n/a" if exact is None else f"{result['log_z'] - exact:+.6f}"),
        ("ESS", f"{result['ess']:.1f} of {result['samples']}"),
        ("Pareto k-hat", f"{k_hat:.3f} ({verdict(k_hat)})"),
        ("seconds", f"{result['seconds']:.2f}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["identities", *argv]  # the main job is the default command
    try:
        args = build_parser().parse_args(argv)
        import jax

        jax.config.update("jax_enable_x64", True)  # estimates are cheap; exactness is the point
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if args.command == "logz":
                result, k_hat = run_logz(args)
            else:
                from inference.report import render_markdown, run_identities

                result = run_identities(problem=args.problem, dim=args.dim, samples=args.samples, seed=args.seed,
                                        fit_steps=args.fit_steps, out=args.out, force=args.force,
                                        progress=sys.stderr.isatty())
    except (_UsageError, ValueError) as error:
        print(f"maxent-gan: error: {error}", file=sys.stderr)
        return 2
    from inference.diagnostics import UnreliableEstimateWarning

    for warning in caught:
        if issubclass(warning.category, UnreliableEstimateWarning):
            print(f"maxent-gan: warning: {warning.message}", file=sys.stderr)
    if args.command == "logz":
        if args.json:
            print(json.dumps(result, allow_nan=False))
        else:
            _print_logz_table(result, k_hat)
    elif args.json:
        print(json.dumps(result, allow_nan=False))
    else:
        print(render_markdown(result), end="")
        print(f"\nWritten to {args.out}/ (report.md, summary.json, figures/identities.png)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
