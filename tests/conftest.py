"""Tests run on 8 fake CPU devices (set before jax is imported), small n, d and T.

Most tests are compile-bound (the arrays are tiny), so XLA compiles with few optimizations
(``jax_disable_most_optimizations``: backend optimization level 0, no expensive LLVM passes), which halves the suite's
time, and with its older CPU code generator (``--xla_cpu_use_fusion_emitters=false``), which takes another quarter off
the compile time. A test marked ``optimized`` is execution-bound (reproductions, runs of a thousand steps): its programs
are compiled with XLA's optimizations, which ran such tests in up to half the time (see :func:`pytest_runtest_setup`).
Tests check properties and identities between runs, never golden numbers, so neither choice changes what they assert;
benchmarks and notebooks outside the suite use XLA's defaults. The exception: a test of bit-for-bit equality between two
different compiled programs (one device against eight, ``ppermute`` against a shift, a closed form against a run) holds
for the code a user's XLA generates, not for every code generator, so such a test is marked ``default_codegen`` and runs
in a separate pytest process with XLA's default code generator (see :func:`pytest_pyfunc_call`).
"""

import os
import subprocess
import sys

#: Set in the separate process that runs the ``default_codegen`` tests.
DEFAULT_CODEGEN_ENV = "JAXGOSSIP_TEST_DEFAULT_CODEGEN"
DEFAULT_CODEGEN = os.environ.get(DEFAULT_CODEGEN_ENV) == "1"
#: The XLA flags the user started pytest with: kept in the environment, since pytest-xdist's workers inherit the
#: flags that this file sets in the controlling process.
USER_XLA_FLAGS = os.environ.setdefault("JAXGOSSIP_TEST_USER_XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
#: XLA:CPU's older code generator, and each program's code generated as one module rather than split into parts
#: compiled in parallel (the suite's two workers keep both cores busy; a part is a fixed cost for a small program).
FAST_CODEGEN = "--xla_cpu_use_fusion_emitters=false --xla_cpu_parallel_codegen_split_count=1"
os.environ["XLA_FLAGS"] = " ".join(
    [USER_XLA_FLAGS, "--xla_force_host_platform_device_count=8"] + ([] if DEFAULT_CODEGEN else [FAST_CODEGEN])
).strip()
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["JAXGOSSIP_LOWERING"] = "platform"  # "auto" lowerings take the platform rule: no test times anything

import jax  # noqa: E402
import pytest  # noqa: E402

#: Compile with few optimizations unless a test is marked ``optimized``; read by XLA at each compilation.
FAST_COMPILE = "jax_disable_most_optimizations"
jax.config.update(FAST_COMPILE, True)


def pytest_runtest_setup(item):
    """Before the test's fixtures (a module's shared runs included) are set up: its programs compile with XLA's
    optimizations if it is marked ``optimized``, with few otherwise. jax's in-memory cache does not key on this, so a
    program a file compiled already is reused as it was compiled; mark a file's tests alike where they share runs."""
    jax.config.update(FAST_COMPILE, item.get_closest_marker("optimized") is None)


@pytest.fixture(scope="session")
def devices():
    return jax.devices()


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs_after_each_file():
    """Drop every compiled program when a test file ends. A worker runs hundreds of files in one process, and the
    executables jax keeps alive (several GiB by the end of the suite) are never reused by the next file; two fresh-clone
    runs crashed inside XLA's compiler late in such long-lived workers. The programs a file shares between its own
    tests stay cached while it runs."""
    yield
    import gc

    jax.clear_caches()
    gc.collect()


@pytest.fixture(autouse=True)
def _no_persistent_cache_after_the_test():
    """A test that runs the CLI in-process turns JAX's persistent compilation cache on (``jaxgossip run`` does, as
    users want); switch it off again so the next tests of this worker do not write into the user's cache folder (a
    write into a cache filled by other XLA flags crashed a worker once)."""
    from jax.experimental.compilation_cache import compilation_cache

    before = jax.config.jax_compilation_cache_dir
    yield
    if jax.config.jax_compilation_cache_dir != before:
        jax.config.update("jax_compilation_cache_dir", before)
        compilation_cache.reset_cache()


#: The longest test files of the last full run (tens of seconds to minutes each), longest first, started first:
#: `make test` hands whole files to two workers (``--dist loadfile --no-loadscope-reorder``: in this order, not by
#: number of tests, which put the one-test notebooks last), so a long file started last would keep one worker busy
#: while the other idles. Every other file keeps its place after these.
LONG_FILES_FIRST = ("test_networks", "test_reference_matrix", "test_faults", "test_repro_networks",
                    "test_compressor_contracts", "test_powergossip", "test_notebook_07", "test_sweep",
                    "test_repro_tang2018", "test_simulate", "test_conv_lowering", "test_notebook_08",
                    "test_repro_deepsqueeze", "test_notebook_04", "test_models", "test_repro_time", "test_hyper_effect",
                    "test_notebook_02", "test_centralized_compressed", "test_notebook_10", "test_cpu_vector_width",
                    "test_distributed")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: the order inside a file is kept


#: Outcomes of the default_codegen tests, per test file: {nodeid: (outcome, the separate process's output)}.
_DEFAULT_CODEGEN_RUNS: dict = {}


def _run_default_codegen(config, path) -> dict:
    """Run the ``default_codegen`` tests of one file in one separate pytest process with XLA's default code generator;
    returns each test's outcome (``PASSED`` / ``FAILED`` / ``ERROR`` / ``SKIPPED``) by node id."""
    env = dict(os.environ, **{DEFAULT_CODEGEN_ENV: "1", "XLA_FLAGS": USER_XLA_FLAGS})
    rel = os.path.relpath(str(path), str(config.rootpath))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-m", "default_codegen", rel], cwd=str(config.rootpath), env=env, capture_output=True,
                          text=True)
    outcomes = {}
    for line in proc.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "ERROR", "SKIPPED") and "::" in rest:
            outcomes[rest.split(" - ")[0].strip()] = word
    return {"outcomes": outcomes, "output": proc.stdout[-6000:] + proc.stderr[-2000:]}


def pytest_pyfunc_call(pyfuncitem):
    """A ``default_codegen`` test, in the suite's processes, is run by a separate pytest process with XLA's default
    code generator (one process per test file, started by the file's first such test) and passes or fails as it did
    there."""
    if DEFAULT_CODEGEN or pyfuncitem.get_closest_marker("default_codegen") is None:
        return None
    key = str(pyfuncitem.path)
    if key not in _DEFAULT_CODEGEN_RUNS:
        _DEFAULT_CODEGEN_RUNS[key] = _run_default_codegen(pyfuncitem.config, pyfuncitem.path)
    run = _DEFAULT_CODEGEN_RUNS[key]
    outcome = run["outcomes"].get(pyfuncitem.nodeid)
    if outcome != "PASSED":
        import pytest

        pytest.fail(f"{pyfuncitem.nodeid}: {outcome or 'not run'} in the separate process with XLA's default code "
                    f"generator:\n{run['output']}")
    return True
