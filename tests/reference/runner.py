"""The reference of each registered algorithm, by name: ``run(name, setup, steps, **kwargs) -> Trace``."""

from __future__ import annotations

from reference import asynchronous, centralized, decentralized, star
from reference.common import Setup, Trace

__all__ = ["ALGORITHMS", "run"]

ALGORITHMS = {
    **{name: getattr(decentralized, name) for name in decentralized.__all__},
    **{name: getattr(asynchronous, name) for name in asynchronous.__all__},
    **{name: getattr(centralized, name) for name in centralized.__all__},
    **{name: getattr(star, name) for name in star.__all__},
}


def run(name: str, setup: Setup, steps: int, **kwargs) -> Trace:
    """The reference run of algorithm ``name`` (``jg.algorithms.REGISTRY``'s names) for ``steps`` steps."""
    return ALGORITHMS[name](setup, steps, **kwargs)
