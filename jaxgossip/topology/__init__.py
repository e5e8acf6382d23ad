"""Communication graphs and their mixing matrices.

A :class:`Topology` is data plus static structure, computed once in NumPy: the mixing matrix ``W`` (n x n, symmetric,
doubly stochastic, ``W_ij = 0`` unless i and j are neighbours) stored as its nonzero entries (O(n + edges) memory), the
neighbour lists, the degrees, the spectrum (``rho = max(|lambda_2|, |lambda_n|)``, the spectral gap ``1 - rho``), and,
for shift-structured graphs (ring, torus, hypercube, exponential), a decomposition ``W = w_0 I + sum_k w_k P_k`` into
permutations that the ``ppermute`` gossip backend uses. ``_matrix.py`` holds the two classes and their checks,
``_graphs.py`` the builders.

Weights:
  * ``"uniform"``: ``W_ij = 1 / (deg_max + 1)`` on every edge, the rest on the diagonal (1/3 on a ring).
  * ``"metropolis"``: Metropolis-Hastings, ``W_ij = 1 / (1 + max(deg_i, deg_j))``.
  * ``"laplacian"``: ``W = I - L / kappa`` (Reisizadeh et al. 2019, Sec. 5), ``kappa > lambda_max(L) / 2``;
    the default ``kappa = deg_max + 1`` also keeps every weight non-negative.

References:
  Tang et al. (2018), Sec. 3 (W symmetric, doubly stochastic, rho); Liu & Zhang, Sec. 5 (spectral gap).
"""

from jaxgossip.topology._graphs import (BUILDERS, WEIGHTS, complete, erdos_renyi, exponential, from_adjacency, get,
                                        hypercube, ring, ring_rho, star, time_varying, torus)
from jaxgossip.topology._matrix import DISCONNECTED, EIGEN_CHECK_MAX, MINUS_ONE, TimeVarying, Topology, step_degrees
from jaxgossip.topology._one_peer import PeerGraph, one_peer_exponential
from jaxgossip.topology._directed import DirectedGraph, as_given, directed_exponential, directed_ring, from_digraph
from jaxgossip.topology._local import identity, local_steps

BUILDERS["one_peer_exponential"] = one_peer_exponential  # a TimeVarying sequence (jg.topology.get takes it by name)
BUILDERS["directed_ring"] = directed_ring  # column-stochastic, for push-sum (jg.algorithms.sgp)
BUILDERS["directed_exponential"] = directed_exponential

__all__ = [
    "Topology",
    "TimeVarying",
    "ring",
    "torus",
    "complete",
    "star",
    "hypercube",
    "exponential",
    "erdos_renyi",
    "from_adjacency",
    "time_varying",
    "ring_rho",
    "BUILDERS",
    "get",
    "WEIGHTS",
    "EIGEN_CHECK_MAX",
    "PeerGraph",
    "one_peer_exponential",
    "DirectedGraph",
    "directed_ring",
    "directed_exponential",
    "from_digraph",
    "as_given",
    "step_degrees",
    "local_steps",
    "identity",
]
