"""The ``maxent-gan`` command line.

``maxent-gan`` alone runs the main job (``compare`` on its defaults: posterior cost estimates on the
gridworld under each proposal against the exact normalizer). Errors exit with
code 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import warnings

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2 (argparse prints usage too)
        raise _UsageError(message)


class _UsageError(Exception):
    pass


MAX_DIM = 1000  # --dim (the Gaussian's): a d x d covariance, fitted and drawn from
MAX_DEMOS = 100_000  # compare --demos: every NUTS step evaluates the cost of every demonstration
MAX_CHAINS = 256  # compare --chains: NUTS runs the chains side by side, each with its own copy of the work
MAX_SCALE = 1e6  # logz --scale: draws further out overflow the energies (x^4 of 1e100 is inf in float64)
SEED_LIMIT = 2**63


def _int_at_least(minimum: int):
    """An argparse type: an integer of at least ``minimum`` (1: positive, 0: non-negative)."""
    kind = "positive" if minimum == 1 else "non-negative" if minimum == 0 else f"at least {minimum}"

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a {kind} integer, got {text}")
        return value

    parse.__name__ = "integer"  # argparse's "invalid integer value: 'x'"
    return parse


_positive_int = _int_at_least(1)
_count = _int_at_least(0)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**63), got {text}")  # "argument --seed: ..."
    return value


def _check_dim(dim: int) -> None:
    if dim > MAX_DIM:
        raise ValueError(f"dim: expected at most {MAX_DIM}, got {dim}")


def _check_finite_positive(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a finite positive number, got {value}")


def build_parser() -> argparse.ArgumentParser:
    from maxent_gan.inference.app.recipes import RECIPES, proposal_names
    from maxent_gan.models.problems import PROBLEMS

    parser = _Parser(prog="maxent-gan", description="GANs, IRL and EBMs as one estimator of log Z (Finn et al. 2016).")
    commands = parser.add_subparsers(dest="command")

    ident = commands.add_parser("identities", help="check the paper's three identities; write a report")
    ident.add_argument("--problem", default="gaussian", help=f"one of: {', '.join(PROBLEMS)}; or your tabular problem as a .npz file (maxent_gan.models.files)")
    ident.add_argument("--dim", type=_positive_int, default=5, help=f"the Gaussian's dimension (at most {MAX_DIM})")
    ident.add_argument("--samples", type=_positive_int, default=4000, help="data points and proposal draws")
    ident.add_argument("--seed", type=_seed, default=0)
    ident.add_argument("--fit-steps", type=_positive_int, default=1000, help="reverse-KL steps of the fitted proposal")
    ident.add_argument("--out", default="maxent-gan-report", help="output folder (default: %(default)s)")
    ident.add_argument("--force", action="store_true", help="overwrite a non-empty output folder")
    ident.add_argument("--json", action="store_true", help="print the summary as JSON instead of the report")

    logz = commands.add_parser("logz", help="estimate log Z of a problem with a proposal")
    logz.add_argument("--problem", default="gaussian", help=f"one of: {', '.join(PROBLEMS)}; or your tabular problem as a .npz file (maxent_gan.models.files)")
    logz.add_argument("--dim", type=_positive_int, default=2, help=f"the Gaussian's dimension (at most {MAX_DIM})")
    logz.add_argument("--proposal", default=None,
                      help=f"one of {', '.join(n for n in RECIPES if RECIPES[n].proposal is not None)}, where the "
                           f"problem allows it (points: {', '.join(proposal_names())}, default broad; trajectories "
                           "default policy)")
    logz.add_argument("--samples", type=_positive_int, default=10_000, help="proposal draws (annealed: particles)")
    logz.add_argument("--estimator", choices=("auto", "importance", "annealed"), default="auto",
                      help="importance: weights of the proposal's draws; annealed: tempered SMC from the proposal "
                           "to the target (points only; maxent_gan.inference.annealed); auto (default): importance, "
                           "then annealed from the same proposal where the first is unreliable (points)")
    logz.add_argument("--seed", type=_seed, default=0)
    logz.add_argument("--scale", type=float, default=None,
                      help="standard deviation of the broad Gaussian (default: the problem's own: 25 for gmm40, 3 "
                           "for funnel10, a quarter of a 2-D toy's box, else 2)")
    logz.add_argument("--fit-steps", type=_positive_int, default=None,
                      help="fit steps of learned proposals (default: 1000 Gaussian, flow 1000 in 2-D and 4000 above, "
                           "100 epochs flow-data)")
    logz.add_argument("--json", action="store_true", help="print one JSON object")

    from maxent_gan.inference.app.settings import CROSS_CHECK_PARTICLES
    from maxent_gan.inference.training import METHODS

    train = commands.add_parser("train", help="train an energy on a problem's data: exact, gcl or gan")
    train.add_argument("--problem", default="rings", help=f"one of: {', '.join(PROBLEMS)}; or your tabular problem as a .npz file (maxent_gan.models.files)")
    train.add_argument("--method", default="gcl", help=f"one of: {', '.join(METHODS)}")
    train.add_argument("--steps", type=_positive_int, default=None,
                       help="default: 6000 for energy networks, 3000 for IRL cost weights")
    train.add_argument("--seed", type=_seed, default=0)
    train.add_argument("--out", default="maxent-gan-train", help="output folder (default: %(default)s)")
    train.add_argument("--force", action="store_true", help="overwrite a non-empty output folder")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    train.add_argument("--batch-size", type=_positive_int, default=256)
    train.add_argument("--samples", type=_positive_int, default=256, help="proposal draws per step")
    train.add_argument("--train-size", type=_positive_int, default=5000, help="training points (toys)")
    train.add_argument("--test-size", type=_positive_int, default=5000,
                       help="held-out points (the point mass keeps at most 500: its demonstrations come from NUTS)")
    train.add_argument("--learning-rate", type=float, default=None,
                       help="default: 3e-3 for energy networks on 2-D problems, 1e-3 above, 0.05 for IRL cost "
                            "weights")
    train.add_argument("--flow-epochs", type=_positive_int, default=100, help="epochs of the sampler's warm start")
    train.add_argument("--eval-every", type=_positive_int, default=250)
    train.add_argument("--checkpoint-every", type=_positive_int, default=500)
    train.add_argument("--check-particles", type=_count, default=CROSS_CHECK_PARTICLES,
                       help="particles of the tempered SMC that cross-checks the final log Z where no exact one "
                            "exists (default: %(default)s; 0 skips it)")
    train.add_argument("--json", action="store_true", help="print the summary as JSON")

    from maxent_gan.inference.app.settings import COMPARE_PROBLEMS, CompareSettings

    defaults = CompareSettings()
    comp = commands.add_parser("compare", help="posterior cost estimates under several proposals vs the exact normalizer (the main job, default)")
    comp.add_argument("--problem", default="gridworld",
                      help=f"one of: {', '.join(COMPARE_PROBLEMS)}; or your tabular problem as a .npz file (maxent_gan.models.files)")
    comp.add_argument("--proposals", default=None,
                      help=f"comma-separated: {', '.join(n for n in RECIPES if RECIPES[n].row is not None)} "
                           "(exact: the exact normalizer; θ-following: the sampler refitted over its pilot "
                           "posterior) (default: exact,gcl,gan,gcl-follow,gan-follow, less exact where the problem "
                           "has no exact log Z)")
    comp.add_argument("--demos", type=_positive_int, default=None,
                      help=f"demonstrations (data points) drawn from θ* (default {defaults.demos}, at most {MAX_DEMOS})")
    comp.add_argument("--train-steps", type=_positive_int, default=None,
                      help=f"training steps of the gcl and gan samplers (default {defaults.train_steps}, quick 300)")
    comp.add_argument("--draws", type=_positive_int, default=None,
                      help=f"fixed proposal draws behind each log Z(θ), at least 2 "
                           f"(default {defaults.num_draws}, quick 4000)")
    comp.add_argument("--anchor-steps", type=_positive_int, default=None,
                      help=f"refit steps at each anchor of the θ-following samplers (default {defaults.anchor_steps}, "
                           "quick 150)")
    comp.add_argument("--chains", type=_positive_int, default=None, help=f"NUTS chains (default {defaults.num_chains})")
    comp.add_argument("--samples", type=_positive_int, default=None,
                      help=f"NUTS draws per chain (default {defaults.num_samples}; warm-up the same)")
    comp.add_argument("--quick", action="store_true", help="a short run (under 3 minutes on 2 CPU cores)")
    comp.add_argument("--seed", type=_seed, default=0)
    comp.add_argument("--out", default="maxent-gan-compare", help="output folder (default: %(default)s)")
    comp.add_argument("--force", action="store_true", help="overwrite a non-empty output folder")
    comp.add_argument("--json", action="store_true", help="print the summary as JSON instead of the report")
    return parser


def run_compare(args) -> dict:
    """The settings from the flags (``--quick`` first, then explicit sizes), then :func:`maxent_gan.inference.app.compare.compare`."""
    from dataclasses import replace

    import jax
    from maxent_gan.inference.app.compare import CompareSettings, compare
    from maxent_gan.models.problems import make_problem

    # the sizes the library would report under its own names (num_samples), or only after the work
    if args.demos is not None and args.demos > MAX_DEMOS:
        raise ValueError(f"demos: expected at most {MAX_DEMOS}, got {args.demos}")
    if args.chains is not None and args.chains > MAX_CHAINS:
        raise ValueError(f"chains: expected at most {MAX_CHAINS}, got {args.chains}")
    if args.draws is not None and args.draws < 2:
        raise ValueError(f"draws: expected at least 2 proposal draws, got {args.draws}")
    settings = CompareSettings.quick() if args.quick else CompareSettings()
    changes = {"demos": args.demos, "train_steps": args.train_steps, "num_draws": args.draws,
               "num_chains": args.chains, "num_samples": args.samples, "num_warmup": args.samples,
               "anchor_steps": args.anchor_steps}
    settings = replace(settings, **{k: v for k, v in changes.items() if v is not None})
    proposals = (None if args.proposals is None  # the default set the problem supports
                 else tuple(name.strip() for name in args.proposals.split(",") if name.strip()))
    problem = make_problem(args.problem)  # a name, or a .npz file read and checked before any work
    return compare(problem, proposals, settings=settings, key=jax.random.key(args.seed), out=args.out, force=args.force,
                   progress=sys.stderr.isatty())


def run_train(args) -> dict:
    """Train, then write checkpoints, figures and the summary into ``args.out``."""
    from pathlib import Path

    import jax
    from maxent_gan.inference.app.train_outputs import write_training_outputs
    from maxent_gan.inference.driver import CHECKPOINT
    from maxent_gan.inference.ebm import check_method, train_ebm
    from maxent_gan.inference.io import find_staged, staged_out_dir
    from maxent_gan.models.problems import make_problem

    problem = make_problem(args.problem)  # names and arguments are checked before any work
    check_method(args.method, problem)
    _check_finite_positive("learning-rate", args.learning_rate)
    if args.seed >= 2**32:  # training runs in float32, where jax.random.key keeps the low 32 bits only
        raise ValueError(f"seed: expected an integer in [0, 2**32) for train (float32), got {args.seed}")

    def train(out: Path) -> dict:  # train_ebm checks a resumed checkpoint before any work
        run = train_ebm(
            problem, args.method, steps=args.steps, key=jax.random.key(args.seed), num_train=args.train_size,
            num_test=args.test_size, batch_size=args.batch_size, num_draws=args.samples,
            learning_rate=args.learning_rate, flow_epochs=args.flow_epochs, eval_every=args.eval_every,
            checkpoint_dir=out / "checkpoints", checkpoint_every=args.checkpoint_every, resume=args.resume,
            progress=sys.stderr.isatty(),
        )
        return write_training_outputs(run, out, check_particles=args.check_particles)

    out = Path(args.out)
    keep_if = f"checkpoints/{CHECKPOINT}"
    if args.resume:
        # a run killed outright (SIGKILL) left its checkpoints in its staging folder: continue there, and
        # swap it in at the end as the unbroken run would have
        staged = find_staged(out, keep_if)
        if staged is not None:
            with staged_out_dir(out, force=True, keep_if=keep_if, staging=staged) as staging:
                return train(staging)
        if not (out / keep_if).is_file():  # in place: the checkpoint is there
            raise ValueError(f"resume: no checkpoint in {out / 'checkpoints'}; run without --resume first")
        return train(out)
    # a fresh folder swapped in at the end; one stopped after a checkpoint is kept, for --resume
    with staged_out_dir(out, force=args.force, keep_if=keep_if) as staging:
        return train(staging)


def run_logz(args) -> tuple[dict, float]:
    """The estimate as a JSON-able dict (non-finite k-hat as null), and the raw k-hat."""
    import jax
    from maxent_gan.inference.app.logz import ImportanceThenAnnealed, estimate_log_z
    from maxent_gan.inference.io import finite_or_none
    from maxent_gan.inference.normalizers import Annealed, Importance
    from maxent_gan.models.problems import make_problem
    from maxent_gan.models.spaces import Points

    _check_dim(args.dim)
    _check_finite_positive("scale", args.scale)
    if args.scale is not None and args.scale > MAX_SCALE:
        raise ValueError(f"scale: expected at most {MAX_SCALE:g} (draws further out overflow the energy), got "
                         f"{args.scale:g}")
    problem = make_problem(args.problem, dim=args.dim)  # names are checked before any work
    if args.proposal is None:
        args.proposal = "broad" if isinstance(problem.space, Points) else "policy"
    args.dim = problem.dim
    estimator = {"importance": Importance, "annealed": Annealed, "auto": ImportanceThenAnnealed}[args.estimator]()
    result = estimate_log_z(problem, args.proposal, key=jax.random.key(args.seed), samples=args.samples,
                            scale=args.scale, fit_steps=args.fit_steps, estimator=estimator,
                            progress=not args.json and sys.stderr.isatty())
    k_hat = result["k_hat"]
    result["k_hat"] = finite_or_none(k_hat)
    for name in ("forward_k_hat", "forward_ess", "log_z_upper"):
        result[name] = finite_or_none(result[name])
    del result["error"]
    result.update(problem=args.problem, dim=args.dim, samples=args.samples, seed=args.seed)
    return result, k_hat


def _print_logz_table(result: dict, k_hat: float) -> None:
    from maxent_gan.inference.app.identities import verdict

    exact = result["log_z_exact"]
    rows = [
        ("problem", f"{result['problem']} (d = {result['dim']})"),
        ("proposal", f"{result['proposal']}, {result['samples']} draws, seed {result['seed']}"),
        *([] if result["escalated_from"] is None else [
            ("importance sampling first", f"{result['escalated_from']['log_z']:.6f}, unreliable: "
                                          + "; ".join(result["escalated_from"]["unreliable_reasons"]))]),
        ("log Z (importance sampling)" if result["estimator"] == "importance" else
         f"log Z (tempered SMC, {result['num_temperatures']} temperatures)", f"{result['log_z']:.6f}"),
        ("log Z exact", "unknown" if exact is None else f"{exact:.6f}"),
        ("error", "n/a" if exact is None else f"{result['log_z'] - exact:+.6f}"),
        ("ESS" if result["estimator"] == "importance" else "ESS of the start", f"{result['ess']:.1f} of {result['samples']}"),
        ("Pareto k-hat" if result["estimator"] == "importance" else "Pareto k-hat of the start",
         f"{k_hat:.3f} ({verdict(k_hat)})"),
    ]
    if result["forward_source"] is None:
        rows.append(("forward check", "not possible: no data and no exact sampler; checks run: "
                     + result["checks_run"]))
    else:
        forward_k = result["forward_k_hat"]
        rows += [
            ("forward check", f"over {result['forward_points']} {result['forward_source']} of the target"),
            ("  forward ESS", f"{result['forward_ess']:.1f} of {result['forward_points']}"),
            ("  forward k-hat", "n/a (constant ratios, or too few to fit)" if forward_k is None else f"{forward_k:.3f}"),
            ("  forward log Z", "n/a" if result["log_z_upper"] is None else f"{result['log_z_upper']:.6f}"),
        ]
    reasons = result["unreliable_reasons"]
    rows += [("reliable", "yes" if not reasons else "NO: " + "; ".join(reasons)),
             ("seconds", f"{result['seconds']:.2f}")]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


class _Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, a scheduler's time limit), raised as an interrupt so that every
    temporary folder is removed on the way out, as for Ctrl-C."""


def _terminate(signum, frame):
    # a second signal must not interrupt the clean-up this one starts
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise _Terminated


def _redeliver(unraisable, previous_hook=sys.unraisablehook):
    """An interrupt raised where Python can only print it and go on (a garbage-collection callback, a
    finalizer: JAX registers some) is sent again, to land in the main flow, instead of being lost."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        terminated = isinstance(unraisable.exc_value, _Terminated)
        if terminated:
            signal.signal(signal.SIGTERM, _terminate)
        # from another thread: raised here, inside the hook, it would be swallowed again
        threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGTERM if terminated else signal.SIGINT)).start()
        return
    previous_hook(unraisable)


_HELD: list[int] = []  # signals received while the libraries load


def _hold(signum, frame):
    _HELD.append(signum)


def _act_on_signals() -> None:
    """From here on an interrupt stops the run; one held during start-up does so now. An interrupt inside
    the first import of NumPy or JAX leaves them half-loaded (a traceback from a later import, or an
    abort in a C++ extension), so start-up holds it until the libraries are in."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    if _HELD:
        terminated = _HELD[0] == signal.SIGTERM
        _HELD.clear()
        raise _Terminated if terminated else KeyboardInterrupt


COMPILATION_CACHE_ENV = "MAXENT_GAN_COMPILATION_CACHE"  # a folder, or "0" for none
COMPILATION_CACHE_BYTES = 2**30  # the cache folder's bound


def prune_compilation_cache(folder: str | os.PathLike, max_bytes: int = COMPILATION_CACHE_BYTES) -> int:
    """Bound a compilation cache folder once, before a run: past ``max_bytes``, delete the oldest-written
    files until it holds at most three quarters of it. Returns the number of files deleted.

    Done here rather than by JAX's own bound (``jax_compilation_cache_max_size``), which lists the whole
    folder on every program it writes: with the test suite's 12 000 programs in one folder that made a
    run several times slower than no cache at all (2026-12-07)."""
    try:
        stats = [(entry.path, entry.stat()) for entry in os.scandir(folder)
                 if entry.is_file() and not entry.name.startswith(".")]
    except FileNotFoundError:
        return 0
    entries = [(stat.st_mtime, stat.st_size, path) for path, stat in stats]
    total = sum(size for _, size, _ in entries)
    if total <= max_bytes:
        return 0
    deleted = 0
    for _, size, path in sorted(entries):
        if total <= 3 * max_bytes // 4:
            break
        try:
            os.remove(path)
        except FileNotFoundError:  # another process pruned it first
            pass
        total -= size
        deleted += 1
    return deleted


def _use_compilation_cache(jax) -> None:
    """JAX's persistent compilation cache, under the user's cache folder: a second run of a command
    loads its compiled programs instead of compiling them again (most of a small problem's time).

    Every program is kept, however quick to compile: a command compiles about a hundred small ones at
    15-50 ms each, and on CliffWorld (``train --method exact``, one A/B run on 2026-12-07) keeping only those
    over 0.1 s made a second run 7.4 s against 5.5 s with all of them (``benchmarks/compile_times.py`` times
    the commands cold and warm). The folder is bounded once per run (:func:`prune_compilation_cache`,
    :data:`COMPILATION_CACHE_BYTES`)."""
    setting = os.environ.get(COMPILATION_CACHE_ENV, "")
    if setting == "0":
        return
    folder = setting or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                                     "maxent-gan", "jax")
    jax.config.update("jax_compilation_cache_dir", folder)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # JAX's own setting wins
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    prune_compilation_cache(folder)


# the modules each command runs on, imported while SIGINT/SIGTERM are held (an import cut halfway leaves
# a module half-initialised); only the command's own: a start-up is mostly imports
_COMMAND_MODULES = {
    "compare": ("maxent_gan.inference.app.compare",),
    "train": ("maxent_gan.inference.ebm", "maxent_gan.inference.app.train_outputs"),
    "logz": ("maxent_gan.inference.app.logz", "maxent_gan.inference.app.identities"),
    "identities": ("maxent_gan.inference.app.identities",),
}


def _load_libraries(command: str) -> None:
    import importlib

    import jax  # noqa: F401

    for module in _COMMAND_MODULES[command]:
        importlib.import_module(module)


def main(argv: list[str] | None = None) -> int:
    # Python acts on the signal between bytecodes, so inside one long compiled program it waits for it
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) if on_main_thread else ()
    if on_main_thread:
        _HELD.clear()
        signal.signal(signal.SIGINT, _hold)
        signal.signal(signal.SIGTERM, _hold)
    previous_hook, sys.unraisablehook = sys.unraisablehook, _redeliver
    try:
        return _main(argv)
    finally:
        sys.unraisablehook = previous_hook
        # None: a handler installed outside Python; the default is the nearest
        for number, handler in zip((signal.SIGINT, signal.SIGTERM), previous, strict=False):
            signal.signal(number, signal.SIG_DFL if handler is None else handler)


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["compare", *argv]  # the main job is the default command
    try:
        try:
            args = build_parser().parse_args(argv)
            _load_libraries(args.command)
        finally:
            _act_on_signals()
        import jax

        # estimates are cheap and exactness is their point; training runs in float32
        jax.config.update("jax_enable_x64", args.command != "train")
        _use_compilation_cache(jax)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if args.command == "train":
                result = run_train(args)
            elif args.command == "logz":
                result, k_hat = run_logz(args)
            elif args.command == "compare":
                result = run_compare(args)
            else:
                from maxent_gan.inference.app.identities import render_markdown, run_identities

                _check_dim(args.dim)
                result = run_identities(problem=args.problem, dim=args.dim, samples=args.samples, seed=args.seed,
                                        fit_steps=args.fit_steps, out=args.out, force=args.force,
                                        progress=sys.stderr.isatty())
    except (_UsageError, ValueError) as error:
        print(f"maxent-gan: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:  # the run's temporary folder is already removed: --out is as it was
        terminated = isinstance(interrupt, _Terminated)
        print(f"maxent-gan: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130
    except OSError as error:  # a full disk, a folder without write permission: the run failed, nothing half-written
        where = f"{error.filename}: " if error.filename else ""
        print(f"maxent-gan: error: {where}{error.strerror or error}", file=sys.stderr)
        return 1
    from maxent_gan.inference.app.cross_check import CROSS_CHECK_TOLERANCE
    from maxent_gan.inference.diagnostics import UnreliableEstimateWarning
    from maxent_gan.inference.driver import TrainingDivergedWarning

    for warning in caught:
        if issubclass(warning.category, UnreliableEstimateWarning | TrainingDivergedWarning):
            print(f"maxent-gan: warning: {warning.message}", file=sys.stderr)
    if args.command == "train":
        if result.get("log_z_is_reliable") is False:  # the estimator reports; the command line says it
            print(f"maxent-gan: warning: the final importance estimate of log Z ({result['log_z_is']:.4g}, k-hat "
                  f"{result['k_hat']:.2f}) is unreliable under the library's rule", file=sys.stderr)
        difference = result.get("log_z_smc_difference")
        if "log_z_smc" in result and (difference is None or abs(difference) > CROSS_CHECK_TOLERANCE):
            print(f"maxent-gan: warning: the final importance estimate of log Z disagrees with tempered SMC started "
                  f"at the learned sampler ({result['log_z_smc']}) by "
                  f"{'a non-finite amount' if difference is None else f'{difference:+.3f} nats'} "
                  f"(> {CROSS_CHECK_TOLERANCE})", file=sys.stderr)
        if args.json:
            print(json.dumps(result, allow_nan=False))
        else:
            for name, value in result.items():
                print(f"{name:<16} {value}")
            print(f"\nWritten to {args.out}/ (summary.json, trace.json, figures/, checkpoints/)", file=sys.stderr)
        return 1 if result["stopped"] else 0
    if args.command == "compare":
        from maxent_gan.inference.app.report import render_report
        from maxent_gan.inference.io import json_safe

        print(json.dumps(json_safe(result), allow_nan=False) if args.json else render_report(result), end="\n")
        print(f"\nWritten to {args.out}/ (report.md, summary.json, figures/, posterior_<proposal>.nc)", file=sys.stderr)
        return 0
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


def run() -> None:
    """The console script: :func:`main`, then an exit that skips the interpreter's teardown after an
    interrupt (JAX's threads, stopped mid-work, could crash it after "interrupted" was printed)."""
    code = main()
    if code in (130, 143):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
