"""jaxgossip: a JAX simulator of decentralized and communication-compressed distributed training.

All n workers are one stacked (n, d) array; gossip is ``W @ X``; compressors are pure functions with explicit keys;
a run is compiled ``lax.scan`` chunks. See DESIGN.md for the architecture and ALGORITHMS.md for the update rules.
"""

from jaxgossip import algorithms, compressors, gossip, plots, problems, reproduce, topology
from jaxgossip.cost import ComputeModel, Cost, Network
from jaxgossip.plots import plot_grid, plot_results
from jaxgossip.result import Result
from jaxgossip.simulate import simulate
from jaxgossip import checkpoint, distributed  # noqa: E402  (checkpointed runs, jax.distributed)
from jaxgossip.sweep import sweep  # noqa: E402  (grid x seeds as one vmapped program)
from jaxgossip import theory  # noqa: E402  (DCD condition, alpha, rho, mu)

__version__ = "0.1.0"

__all__ = [
    "algorithms",
    "compressors",
    "gossip",
    "plots",
    "problems",
    "reproduce",
    "topology",
    "theory",
    "ComputeModel",
    "Cost",
    "Network",
    "Result",
    "simulate",
    "sweep",
    "checkpoint",
    "distributed",
    "plot_results",
    "plot_grid",
    "__version__",
]
