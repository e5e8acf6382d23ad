"""Named reproductions of the papers' figures (``jaxgossip reproduce NAME``).

Each reproduction is a module in this package that registers a function with :func:`register`. The function takes
``size`` (``"test"``: seconds, for the test suite; ``"small"``: minutes on a laptop CPU, the CLI default; ``"paper"``:
the paper's sizes) and ``seeds``, and returns a :class:`Reproduction`: the curves as a DataFrame, a matplotlib Figure drawn with :mod:`jaxgossip.plots`,
and a verdict table with one row per claim of the paper (``claim``, ``measured``, ``holds``).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
from typing import Callable

__all__ = ["Reproduction", "register", "get", "names", "run", "REGISTRY", "SIZES"]

SIZES = ("test", "small", "paper")
REGISTRY: dict[str, tuple[Callable, str]] = {}


@dataclasses.dataclass
class Reproduction:
    """What a reproduction returns.

    Attributes:
      name: the registered name.
      frame: the measured curves or numbers, tidy (one row per run x evaluation, or per configuration).
      verdicts: DataFrame with columns ``claim``, ``measured``, ``holds`` (bool).
      figure: a matplotlib Figure.
    """

    name: str
    frame: object
    verdicts: object
    figure: object = None

    @property
    def holds(self) -> bool:
        return bool(self.verdicts["holds"].all())

    def save(self, out_dir: str, format: str = "png") -> dict:
        """Write ``NAME.csv``, ``NAME-verdicts.csv`` and the figure ``NAME.png`` (``format``: png, pdf or svg, through
        :func:`jaxgossip.plots.save`) into out_dir; return the paths, the figure's under the format's name."""
        from jaxgossip.plots import FORMATS
        from jaxgossip.plots import save as save_figure
        from jaxgossip.result import atomic_write

        if format not in FORMATS:
            raise ValueError(f"reproduce: format must be one of {FORMATS}, got {format!r}.")

        os.makedirs(out_dir, exist_ok=True)
        paths = {"csv": os.path.join(out_dir, f"{self.name}.csv"),
                 "verdicts": os.path.join(out_dir, f"{self.name}-verdicts.csv")}
        atomic_write(paths["csv"], self.frame.to_csv(index=False))
        atomic_write(paths["verdicts"], self.verdicts.to_csv(index=False))
        if self.figure is not None:
            paths[format] = save_figure(self.figure, os.path.join(out_dir, f"{self.name}.{format}"), format=format)
        return paths


def register(name: str, description: str):
    """Decorator: register ``fn(size="small", seeds=(0, 1, 2)) -> Reproduction`` under ``name``."""

    def wrap(fn):
        REGISTRY[name] = (fn, description)
        return fn

    return wrap


def _discover():
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def names() -> list[str]:
    _discover()
    return sorted(REGISTRY)


def get(name: str) -> Callable:
    _discover()
    if name not in REGISTRY:
        raise ValueError(f"reproduction must be one of {sorted(REGISTRY)}, got {name!r}.")
    return REGISTRY[name][0]


def run(name: str, size: str = "small", seeds=None, **kwargs) -> Reproduction:
    """Run a reproduction by name."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}.")
    fn = get(name)
    return fn(size=size, **({} if seeds is None else {"seeds": tuple(seeds)}), **kwargs)
