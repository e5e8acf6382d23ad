"""Run a notebook top to bottom in a fresh kernel (the test suite executes every notebook in notebooks/)."""

import os

import nbformat
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_notebook(name: str, timeout: int = 600):
    path = os.path.join(ROOT, "notebooks", name)
    nb = nbformat.read(path, as_version=4)
    env_flags = os.environ.get("XLA_FLAGS")
    os.environ.pop("XLA_FLAGS", None)  # the notebook runs as a user would: the machine's own devices
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}}).execute()
    finally:
        if env_flags is not None:
            os.environ["XLA_FLAGS"] = env_flags
    return nb
