"""Threefry-2x32 on CPU with its 20 rounds unrolled: the same bits as jax's lowering, about 4x faster to run.

jax lowers the Threefry hash behind every ``jax.random`` call to a 5-trip ``while`` loop on CPU (an old compile-time
trade). With XLA's thunk runtime each trip is a separate kernel launch over the whole array, so a stochastic quantizer's
64,000 uniforms took ~0.9 ms per step on a 2-core CPU, more than the rest of a DCD-PSGD step. Upstream jax switched
CPU to the unrolled lowering in jax-ml/jax#37872 ("rolled loops ... no longer advantageous either in compilation cost
or runtime cost"); this module applies that change to the installed jax when it still uses the rolled one.

The hash is unchanged (same rounds, rotations and key schedule), so every random number is bit-identical with or
without it (``tests/test_threefry_cpu.py`` checks this against the rolled reference). Set the environment variable
``JAXGOSSIP_ROLLED_THREEFRY=1`` before importing jaxgossip to keep jax's own lowering.

Each round's rotations are two shifts and an OR in 256-bit AVX2 registers, which XLA prefers by default; AVX-512 has a
rotate instruction and twice the lanes. So where the CPU has AVX-512, jaxgossip compiles its run programs with
``xla_cpu_prefer_vector_width=512`` (:func:`compiler_options`): the same integer bits and Threefry 1.1-2.1x faster.
On a 2-core AMD EPYC, steps of DCD-PSGD with a 16-bit quantizer at n = 64, d = 1000 went from 105-108 to 78-81 us and
CHOCO-SGD's from 111-117 to 84-88 us; D-PSGD's did not change (``benchmarks/bench_rng.py`` has the Threefry row).
``JAXGOSSIP_CPU_VECTOR_WIDTH=256`` (or 512) before the import overrides the choice.

The decision reads the ``flags`` line of ``/proc/cpuinfo`` (``avx512f`` present or not) and honours XLA's own cap on
the instruction set: with ``--xla_cpu_max_isa=AVX2`` (or any value below AVX-512) in ``XLA_FLAGS``, no 512-bit vectors
are asked for. ``tests/test_cpu_vector_width.py`` runs this decision against faked ``/proc/cpuinfo`` files of both kinds
of machine (an Intel Xeon with AVX-512, an AMD EPYC with AVX2 only).
"""

from __future__ import annotations

import contextlib
import functools
import os

__all__ = ["install", "installed", "compiler_options", "run_jit"]

_STATE = {"installed": False}


#: Where the CPU's feature flags are read (a test points this at a faked file).
_CPUINFO = "/proc/cpuinfo"

#: ``--xla_cpu_max_isa`` values (XLA's names, upper case) that still allow AVX-512 instructions.
_AVX512_ISAS = ("AVX512", "AMX")


def _cpu_flags(path: str | None = None) -> frozenset:
    """The feature flags of the first ``flags`` line of ``/proc/cpuinfo`` (empty when unreadable: not Linux)."""
    with contextlib.suppress(OSError):  # not Linux: keep XLA's default
        with open(path or _CPUINFO) as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    return frozenset()


def _xla_allows_avx512(xla_flags: str | None = None) -> bool:
    """False when ``XLA_FLAGS`` caps XLA's instruction set below AVX-512 (``--xla_cpu_max_isa=AVX2``, ...)."""
    flags = os.environ.get("XLA_FLAGS", "") if xla_flags is None else xla_flags
    isa = None
    for token in flags.split():
        if token.startswith("--xla_cpu_max_isa="):
            isa = token.partition("=")[2].strip().upper()  # the last one wins, as in XLA's parser
    return isa is None or isa.startswith(_AVX512_ISAS)


def _has_avx512() -> bool:
    """Whether the CPU has AVX-512 (``avx512f``) and XLA may use it."""
    return "avx512f" in _cpu_flags() and _xla_allows_avx512()


@functools.cache
def compiler_options() -> dict:
    """XLA options for jaxgossip's compiled runs (``jax.jit(..., compiler_options=...)``): 512-bit vectors where the CPU
    has AVX-512 (or as ``JAXGOSSIP_CPU_VECTOR_WIDTH`` says), else none. :func:`run_jit` applies them on CPU only."""
    width = os.environ.get("JAXGOSSIP_CPU_VECTOR_WIDTH", "")
    if width not in ("", "256", "512"):
        raise ValueError(f"JAXGOSSIP_CPU_VECTOR_WIDTH must be 256 or 512, got {width!r}.")
    if width == "512" or (not width and _has_avx512()):
        return {"xla_cpu_prefer_vector_width": 512}
    return {}


@functools.cache
def _usable_options() -> dict:
    """:func:`compiler_options` if the default backend is CPU and this XLA knows them (a newer one may have dropped a
    flag: one tiny compile checks), else none. Called at the first run, when jax's backends are up."""
    import jax
    import numpy as np

    options = compiler_options()
    if not options or jax.default_backend() != "cpu":
        return {}
    try:
        jax.jit(lambda x: x + 1, compiler_options=options).lower(np.float32(0)).compile()
    except Exception:  # noqa: BLE001 (jax raises its runtime error: "No such compile option")
        return {}
    return options


def run_jit(fun, **jit_kwargs):
    """``jax.jit(fun, **jit_kwargs)`` compiled with :func:`compiler_options` where they apply, decided at the first call
    (deciding at import would start jax's backends before a user's ``jax.distributed.initialize``)."""

    @functools.cache
    def jitted():
        import jax

        return jax.jit(fun, compiler_options=_usable_options(), **jit_kwargs)

    @functools.wraps(fun)
    def call(*args, **kwargs):
        return jitted()(*args, **kwargs)

    return call


def installed() -> bool:
    """Whether this process lowers Threefry unrolled on CPU because of :func:`install`."""
    return _STATE["installed"]


def install() -> bool:
    """Register the unrolled Threefry lowering for the CPU platform; returns whether it was installed.

    A no-op (returns False) when ``JAXGOSSIP_ROLLED_THREEFRY=1``, or when the installed jax no longer has the rolled
    CPU lowering this replaces.
    """
    if _STATE["installed"]:
        return True
    if os.environ.get("JAXGOSSIP_ROLLED_THREEFRY", "") not in ("", "0"):
        return False
    try:
        from jax._src.random import threefry2x32 as tf
        from jax.interpreters import mlir

        lowering = tf._threefry2x32_lowering
        primitive = tf.threefry2x32_p
    except (ImportError, AttributeError):  # a jax without the rolled CPU rule: nothing to replace
        return False
    rule = mlir.lower_fun(functools.partial(lowering, use_rolled_loops=False), multiple_results=True)
    mlir.register_lowering(primitive, rule, platform="cpu")
    _STATE["installed"] = True
    return True
