"""Float64 for the whole suite (identities are checked to 1e-10), set before any test runs; hypothesis profiles."""

import gc
import os

import jax
import pytest
from hypothesis import settings

# CI and ./dev test are deterministic: the same examples on every run (derandomize), no example
# database. The exploratory search is opt-in: HYPOTHESIS_PROFILE=explore ./dev test tests/test_properties.py
settings.register_profile("ci", max_examples=40, derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", max_examples=2000, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The suite is compile-bound (about 16 000 small XLA programs, most run once; of the tests' own time 57 % is
# XLA's backend compile and 20 % tracing and lowering, measured on 2026-12-07). XLA:CPU's older loop
# emitters compile them much faster than its MLIR fusion emitters and run them as fast (measured on
# 2026-12-03, one run each: the compare Gaussian family and a NUTS test 50.5 s at -O0 -> 30.3 s; a
# GCL test 20.4 -> 12.7 s; the gridworld's exact NUTS posterior 13.4 -> 11.7 s; on 2026-12-07 the whole
# suite took 1091 s without them against 760 s with them). They hang on one program: the LQR anchor
# mixture's draws and densities jitted as one (JAX 0.10.2), which the library therefore draws eagerly.
# The backend's -O0 makes the few tests that run long slower (a NUTS run 1.8x, the point-mass train test
# 49 -> 60 s) and compiles everything faster: the whole suite from an empty cache 638 s -> 529 s (one run
# each, 2026-12-07). Set before the backend starts (importing jax does not start it); notebook kernels and
# CLI subprocesses inherit it.
# Three more flags cut compile time, and with two workers on two cores the backend's own threads only
# compete with the other worker (measured on 2026-12-04, two copies of the estimators, handler, LQR and
# anchors modules side by side: 76.2 s -> 70.0 s with single-threaded Eigen and one codegen split;
# alone, 58.6 s -> 54.0 s without LLVM's expensive passes; compare's Gaussian family and the LQR IRL
# tests, which run longer than they compile, 39.2 s -> 38.1 s).
SUITE_XLA_FLAGS = ("--xla_cpu_use_fusion_emitters=false --xla_llvm_disable_expensive_passes=true "
                   "--xla_cpu_multi_thread_eigen=false --xla_cpu_parallel_codegen_split_count=1 "
                   "--xla_backend_optimization_level=0")
if "xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", ""):  # xdist workers inherit it
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " " + SUITE_XLA_FLAGS

# Lowering a program writes a location for every operation; by default each is the whole Python stack, up to 100
# frames, and a test's stack is deep (pytest, the library). One frame (the user's line) lowers faster: the IRL and
# anchor modules 175 s -> 162 s, their lowering 49.6 s -> 42.1 s (one run each, 2026-12-07). Tracebacks on errors
# are unaffected. The kernels and subprocesses read the variable; one set by the user is left to JAX to read.
if "JAX_INCLUDE_FULL_TRACEBACKS_IN_LOCATIONS" not in os.environ:
    os.environ["JAX_INCLUDE_FULL_TRACEBACKS_IN_LOCATIONS"] = "0"
    jax.config.update("jax_include_full_tracebacks_in_locations", False)
jax.config.update("jax_enable_x64", True)
os.environ.setdefault("MAXENT_GAN_QUICK", "1")

# One persistent compilation cache for every process of the run: the two workers, the notebook kernels and the
# CLI subprocesses compile many of the same programs (the small eager ones above all), and each loads what
# another has compiled. A fresh clone's run starts it empty: 797 s -> 677 s for the whole suite (one run
# each, 2026-12-07, 2 cores); a second run loads nearly all its programs: 332 s. Every program is kept,
# however quick to compile (most take 10-50 ms). MAXENT_GAN_SUITE_CACHE=0 turns it off, a folder moves it.
# (Two runs on 2026-12-03 with four workers' caches at a 0.5 s threshold segfaulted in JAX's executable
# serialisation; the crash net below reruns such a test once, and lists it.)
SUITE_CACHE = os.environ.setdefault("MAXENT_GAN_SUITE_CACHE",
                                    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                 ".cache", "jax-suite"))
if SUITE_CACHE != "0":
    # the environment for the kernels and subprocesses (JAX reads it when imported), the config for this process;
    # no JAX bound on the folder (it lists the folder at every write): pytest_sessionstart bounds it once
    os.environ.update(JAX_COMPILATION_CACHE_DIR=SUITE_CACHE, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                      JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    os.environ.setdefault("MAXENT_GAN_COMPILATION_CACHE", SUITE_CACHE)  # the CLI's own setting
    jax.config.update("jax_compilation_cache_dir", SUITE_CACHE)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
else:
    os.environ.setdefault("MAXENT_GAN_COMPILATION_CACHE", "0")


def pytest_sessionstart(session):
    """The suite's cache bounded once, by the controller, before any worker starts."""
    if SUITE_CACHE != "0" and not hasattr(session.config, "workerinput"):
        from maxent_gan.inference.app.cli import prune_compilation_cache

        prune_compilation_cache(SUITE_CACHE)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop every compiled program after each test module. XLA's CPU backend maps each compiled kernel
    into memory (about three mappings each) and JAX's caches keep them alive; a worker that had run a
    few hundred tests held 39 655 mappings and the next one aborted inside a compile on reaching the
    kernel's limit (vm.max_map_count, 65 530): the "worker crashed" failures of earlier runs, each in a
    different test. After jax.clear_caches() a worker is back at its baseline (about 1 500).

    Only past :data:`MAPPINGS_BEFORE_CLEARING`: the modules share programs (a sixth of a module's compiles
    were another module's, measured on 2026-12-07 with the persistent cache as a counter), which a clear
    would make the next module compile again."""
    yield
    if _mappings() > MAPPINGS_BEFORE_CLEARING:
        jax.clear_caches()
        gc.collect()


MAPPINGS_BEFORE_CLEARING = 20_000  # test_compare and test_irl add 7 500 and 8 700 each (2026-12-07); the limit is 65 530


def _mappings() -> int:
    try:
        with open("/proc/self/maps", "rb") as maps:
            return sum(1 for _ in maps)
    except OSError:  # not Linux: no such limit to watch, clear as before
        return MAPPINGS_BEFORE_CLEARING + 1


def pytest_collection_modifyitems(items):
    """Notebooks first, the later (longer: 05-07 run one to two minutes) ones first: with ``-n 2
    --dist worksteal`` the long items then start early instead of leaving one worker busy after the
    other has finished."""
    notebooks = [item for item in items if str(item.path).endswith(".ipynb")]
    items[:] = notebooks[::-1] + [item for item in items if not str(item.path).endswith(".ipynb")]


# The net under _release_compiled_programs: a worker that still dies mid-test (the mapping limit
# reached within one module, or another abort in XLA) fails that test with "worker crashed" although
# no assertion ran. xdist's documented hook reschedules such a test once, on a fresh worker; an
# assertion failure is never rerun, and a test that crashes twice fails. Every crash is listed at
# the end of the run, so none is hidden.
CRASH_RERUNS = 1
_crashes: dict[str, int] = {}


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem, report, sched):
    _crashes[crashitem] = _crashes.get(crashitem, 0) + 1
    if _crashes[crashitem] <= CRASH_RERUNS:
        sched.mark_test_pending(crashitem)
        report.outcome = "rerun"


def pytest_report_teststatus(report):
    if report.outcome == "rerun":
        return "rerun", "R", "RERUN (worker crashed)"
    return None


def pytest_terminal_summary(terminalreporter):
    if _crashes:
        terminalreporter.section("worker crashes (rerun once on a fresh worker; a second crash fails the test)")
        for nodeid, count in _crashes.items():
            terminalreporter.line(f"{nodeid}: crashed {count} time(s)")
