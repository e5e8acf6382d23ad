"""Run a snippet in fresh Python processes, one per value of an environment variable read at import."""

import os
import subprocess
import sys


def outputs_per_value(code: str, variable: str, values) -> list[list[str]]:
    """The whitespace-split stdout of ``python -c code`` with ``variable`` set to each value (the suite's XLA_FLAGS
    dropped, so each process compiles as a user's would)."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    outs = []
    for value in values:
        env[variable] = value
        outs.append(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                   check=True).stdout.split())
    return outs
