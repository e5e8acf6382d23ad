"""jaxgossip: a JAX simulator of decentralized and communication-compressed distributed training.

All n workers are one stacked (n, d) array; gossip is ``W @ X``; compressors are pure functions with explicit keys;
a run is compiled ``lax.scan`` chunks. The README's "What is inside" table maps the modules, and every algorithm's docstring gives its update rule with the
paper and equation it comes from.
"""

from jaxgossip import _threefry_cpu

_threefry_cpu.install()  # same random bits, ~4x faster on CPU (jax-ml/jax#37872); see jaxgossip/_threefry_cpu.py

from jaxgossip import (algorithms, checkpoint, compressors, data, distributed, gossip, models, plots, problems,
                       reproduce, schedules, theory, topology)
from jaxgossip import loggers
from jaxgossip import faults
from jaxgossip.cache import enable_compilation_cache
from jaxgossip.compare import Comparison, compare
from jaxgossip.cost import ComputeModel, Cost, Network
from jaxgossip.plots import plot_grid, plot_results
from jaxgossip.result import Result
from jaxgossip.simulate import memory_estimate, simulate
from jaxgossip.sweep import sweep

__version__ = "0.1.0"

__all__ = [
    "algorithms",
    "checkpoint",
    "faults",
    "compressors",
    "data",
    "models",
    "schedules",
    "distributed",
    "gossip",
    "loggers",
    "plots",
    "problems",
    "reproduce",
    "theory",
    "topology",
    "ComputeModel",
    "Cost",
    "Network",
    "Result",
    "simulate",
    "memory_estimate",
    "sweep",
    "compare",
    "Comparison",
    "plot_results",
    "plot_grid",
    "enable_compilation_cache",
    "__version__",
]
