"""Opt-in persistent compilation cache: a second process that runs the same configuration skips XLA compilation.

``jaxgossip`` never changes JAX's global configuration on import; the CLI turns this on (``--no-cache`` turns it off),
and Python users call :func:`enable_compilation_cache` once.
"""

from __future__ import annotations

import os

import jax

__all__ = ["enable_compilation_cache", "default_cache_dir", "lowering_cache_path"]

#: The file of measured lowering choices (see :mod:`jaxgossip.lowering`), beside the compilation cache's folder.
LOWERING_FILE = "jaxgossip-lowering.json"


def default_cache_dir() -> str:
    """``$JAXGOSSIP_CACHE`` if set, else ``$XDG_CACHE_HOME/jaxgossip/xla`` (``~/.cache/jaxgossip/xla``)."""
    if os.environ.get("JAXGOSSIP_CACHE"):
        return os.environ["JAXGOSSIP_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxgossip", "xla")


def enable_compilation_cache(path: str | None = None, min_compile_seconds: float = 0.2) -> str:
    """Store compiled programs under ``path`` (default :func:`default_cache_dir`) and reuse them across processes.

    Returns the folder used.
    """
    path = path or default_cache_dir()
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def lowering_cache_path() -> str:
    """Where ``"auto"`` lowerings measured on this machine are kept (:mod:`jaxgossip.lowering`):
    ``$JAXGOSSIP_LOWERING_CACHE`` if set, else ``jaxgossip-lowering.json`` beside the compilation cache's folder (the
    one :func:`enable_compilation_cache` turned on in this process, else :func:`default_cache_dir`): by default
    ``~/.cache/jaxgossip/jaxgossip-lowering.json``."""
    if os.environ.get("JAXGOSSIP_LOWERING_CACHE"):
        return os.environ["JAXGOSSIP_LOWERING_CACHE"]
    folder = jax.config.jax_compilation_cache_dir or default_cache_dir()
    return os.path.join(os.path.dirname(os.path.abspath(folder).rstrip(os.sep)), LOWERING_FILE)
