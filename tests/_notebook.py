"""Run a notebook top to bottom in a fresh kernel (the test suite executes every notebook in notebooks/)."""

import os

import nbformat
from nbclient import NotebookClient

#: The code-generation flags of tests/conftest.py's FAST_CODEGEN, kept for the notebook's kernel.
FAST_CODEGEN_FLAGS = ("--xla_cpu_use_fusion_emitters", "--xla_cpu_parallel_codegen_split_count")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_notebook(name: str, timeout: int = 600, optimized: bool = False):
    """Execute ``notebooks/name``; ``optimized``: an execution-bound notebook (sweeps, long runs), compiled with XLA's
    optimizations rather than the suite's fast compiles (see tests/conftest.py)."""
    path = os.path.join(ROOT, "notebooks", name)
    nb = nbformat.read(path, as_version=4)
    env_flags = os.environ.get("XLA_FLAGS")
    # the notebook sees the machine's own devices, as a user would: the flags the suite was started with, and of
    # those conftest adds only the fast-compile ones
    fast = [t for t in (env_flags or "").split() if t.startswith(FAST_CODEGEN_FLAGS)]
    user = os.environ.get("JAXGOSSIP_TEST_USER_XLA_FLAGS", "").split()
    os.environ["XLA_FLAGS"] = " ".join(user + ([] if optimized else ["--xla_backend_optimization_level=0"]) + fast)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}}).execute()
    finally:
        if env_flags is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = env_flags
    return nb
