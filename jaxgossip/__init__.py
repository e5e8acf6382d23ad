"""jaxgossip: a JAX simulator of decentralized and communication-compressed distributed training.

All n workers are one stacked (n, d) array; gossip is ``W @ X``; compressors are pure functions with explicit keys;
a run is compiled ``lax.scan`` chunks. See DESIGN.md for the architecture and ALGORITHMS.md for the update rules.
"""

from jaxgossip import _threefry_cpu

_threefry_cpu.install()  # same random bits, ~4x faster on CPU (jax-ml/jax#37872); see jaxgossip/_threefry_cpu.py

from jaxgossip import (algorithms, checkpoint, compressors, distributed, gossip, plots, problems, reproduce, theory,
                       topology)
from jaxgossip.cache import enable_compilation_cache
from jaxgossip.cost import ComputeModel, Cost, Network
from jaxgossip.plots import plot_grid, plot_results
from jaxgossip.result import Result
from jaxgossip.simulate import simulate
from jaxgossip.sweep import sweep

__version__ = "0.1.0"

__all__ = [
    "algorithms",
    "checkpoint",
    "compressors",
    "distributed",
    "gossip",
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
    "sweep",
    "plot_results",
    "plot_grid",
    "enable_compilation_cache",
    "__version__",
]
