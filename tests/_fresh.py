"""Run a snippet in fresh Python processes, one per value of an environment variable read at import."""

import os
import subprocess
import sys


#: The XLA flags tests/conftest.py adds for the suite's own process (8 fake devices, fast compiles).
SUITE_XLA_FLAGS = ("--xla_force_host_platform_device_count", "--xla_backend_optimization_level")


def user_xla_flags() -> str:
    """``XLA_FLAGS`` without the suite's additions: the flags the suite was started with (e.g.
    ``--xla_cpu_max_isa=AVX2``, to run it as on a CPU without AVX-512), for the fresh processes to keep."""
    return " ".join(t for t in os.environ.get("XLA_FLAGS", "").split() if not t.startswith(SUITE_XLA_FLAGS))


def outputs_per_value(code: str, variable: str, values) -> list[list[str]]:
    """The whitespace-split stdout of ``python -c code`` with ``variable`` set to each value (the suite's XLA_FLAGS
    dropped, the user's kept, so each process compiles as a user's would)."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if user_xla_flags():
        env["XLA_FLAGS"] = user_xla_flags()
    outs = []
    for value in values:
        env[variable] = value
        outs.append(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                   check=True).stdout.split())
    return outs
