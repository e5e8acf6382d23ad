"""Compressors: pure functions with explicit keys and honest bit counts (``jg.compressors``)."""

from jaxgossip.compressors._base import Compressor, compress_rows, worker_keys
from jaxgossip.compressors.quantize import identity, quantize

REGISTRY = {
    "identity": identity,
    "quantize": quantize,
}


def get(name: str, **kwargs) -> Compressor:
    """Build a compressor by name (for the CLI and config files)."""
    if name not in REGISTRY:
        raise ValueError(f"compressor must be one of {sorted(REGISTRY)}, got {name!r}.")
    return REGISTRY[name](**kwargs)


__all__ = ["Compressor", "compress_rows", "worker_keys", "get", "REGISTRY", *REGISTRY]
