"""Run a snippet in fresh Python processes, one per value of an environment variable read at import."""

import os
import subprocess
import sys


def user_xla_flags() -> str:
    """The ``XLA_FLAGS`` the suite was started with (e.g. ``--xla_cpu_max_isa=AVX2``, to run it as on a CPU without
    AVX-512), without the suite's additions (8 fake devices, fast compiles): tests/conftest.py keeps them in
    ``JAXGOSSIP_TEST_USER_XLA_FLAGS``, for the fresh processes to compile as a user's would."""
    return os.environ.get("JAXGOSSIP_TEST_USER_XLA_FLAGS", "")


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
