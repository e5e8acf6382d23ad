"""Tests run on 8 fake CPU devices (set before jax is imported), small n, d and T.

XLA's backend optimization level 0 halves the suite's time (compiling dominates; the arrays are tiny). Tests check
properties and identities between runs, never golden numbers, so the optimization level does not change what they
assert; benchmarks and notebooks outside the suite use the default level.
"""

import os

FAST_COMPILE = "--xla_backend_optimization_level=0"
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=8", FAST_COMPILE]
).strip()
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def devices():
    return jax.devices()
