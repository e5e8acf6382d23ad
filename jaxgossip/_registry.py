"""Build a registered object by name, with errors that list the names and parameters a config file may use."""

from __future__ import annotations

import inspect
from typing import Any, Callable


def build(kind: str, registry: dict[str, Callable], name: str, kwargs: dict[str, Any]):
    """``registry[name](**kwargs)``, after checking ``name`` and the keyword names (a ValueError naming both)."""
    if name not in registry:
        raise ValueError(f"{kind} must be one of {sorted(registry)}, got {name!r}.")
    builder = registry[name]
    params = inspect.signature(builder).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise ValueError(f"{kind} {name!r} has no parameter {', '.join(map(repr, unknown))}; it takes "
                             f"{', '.join(params) or 'no parameters'}.")
    return builder(**kwargs)
