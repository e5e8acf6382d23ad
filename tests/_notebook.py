"""Run a notebook top to bottom in a fresh kernel (the test suite executes every notebook in notebooks/)."""

import os

import nbformat
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_notebook(name: str, timeout: int = 600, optimized: bool = False):
    """Execute ``notebooks/name``; ``optimized``: an execution-bound notebook (sweeps, long runs), compiled with XLA's
    optimizations rather than the suite's fast compiles (see tests/conftest.py)."""
    path = os.path.join(ROOT, "notebooks", name)
    nb = nbformat.read(path, as_version=4)
    env_flags = os.environ.get("XLA_FLAGS")
    # the notebook sees the machine's own devices, as a user would (keep only conftest's fast-compile flags)
    os.environ["XLA_FLAGS"] = " ".join((() if optimized else ("--xla_backend_optimization_level=0",))
                                       + ("--xla_cpu_use_fusion_emitters=false",))
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}}).execute()
    finally:
        if env_flags is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = env_flags
    return nb
