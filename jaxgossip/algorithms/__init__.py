"""Algorithms: one factory each, returning an :class:`Algorithm` (``jg.algorithms``); ``get(name, **kw)`` by name."""

from jaxgossip.algorithms._base import Algorithm, Context
from jaxgossip.algorithms.dpsgd import cpsgd, dpsgd, naive_compressed

REGISTRY = {
    "cpsgd": cpsgd,
    "dpsgd": dpsgd,
    "naive_compressed": naive_compressed,
}


def get(name: str, **kwargs) -> Algorithm:
    """Build an algorithm by name, e.g. ``get("dpsgd", lr=0.05)``."""
    if name not in REGISTRY:
        raise ValueError(f"algorithm must be one of {sorted(REGISTRY)}, got {name!r}.")
    return REGISTRY[name](**kwargs)


__all__ = ["Algorithm", "Context", "get", "REGISTRY", *REGISTRY]
