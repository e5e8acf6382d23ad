"""The TOML configs of the command-line tests (tests/test_cli.py, tests/test_toolkit.py): one small problem, a
quadratic over 8 workers on ring(8), between each config's top-level keys and its ``[[run]]`` tables."""

#: the ``[problem]`` and ``[topology]`` tables every config shares (TOML text)
QUADRATIC_ON_RING = """[problem]
name = "quadratic"
n_workers = 8
dim = 5
samples_per_worker = 10
batch_size = 2
[topology]
name = "ring"
"""


def config(top: str, runs: str) -> str:
    """A config's text: ``top`` (the top-level keys: ``steps``, ``eval_every``, ...), :data:`QUADRATIC_ON_RING`, then
    ``runs`` (the ``[[run]]`` tables), each part ending in a newline."""
    return top + QUADRATIC_ON_RING + runs
