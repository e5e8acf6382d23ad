"""Local steps as a topology in time: H - 1 steps on the identity (no messages), then one gossip step.

Decentralized local SGD (Koloskova, Loizou, Boreiri, Jaggi, Stich, ICML 2020, "A Unified Theory of Decentralized SGD
with Changing Topology and Local Updates", Alg. 1 and Sec. 3 "Local SGD"): every worker takes a local step at every
iteration, ``x_i^{t+1/2} = x_i^t - lr g_i(x_i^t)``, and mixes ``x^{t+1} = W^(t) x^{t+1/2}`` with ``W^(t) = I`` unless
``(t + 1) mod H == 0``, when ``W^(t) = W``: H - 1 local steps, then a gossip step. Since jaxgossip mixes step t with
``topologies[t mod K]`` and prices every step on its own graph (:func:`jaxgossip.gossip.select`,
:meth:`jaxgossip.cost.Pricing.on`), the sequence ``(I, ..., I, W)`` of length H turns a gossip algorithm (D-PSGD,
naive compressed D-PSGD, Q-DSGD, gradient tracking, exact diffusion, D², push-sum) into its local-step version, and a
step on the identity sends nothing: zero bits, zero communication seconds, only its computation. The methods that keep
copies of their neighbours' models or an error memory of their messages (DCD-PSGD, ECD-PSGD, CHOCO-SGD, DeepSqueeze,
BEER) would update them on steps that send nothing, and AD-PSGD would pay for messages to itself: they are refused
(:data:`REFUSED`, checked by ``simulate``); PowerGossip refuses every time-varying graph.

The identity is not a valid :class:`~jaxgossip.topology.Topology` on its own (it is disconnected; ``Topology(np.eye(n))``
is still refused): it is built as a :class:`~jaxgossip.topology.PeerGraph`, the record for one graph of a sequence
(checked non-negative and doubly stochastic), and the sequence's communicating graphs are checked to join every worker.
"""

from __future__ import annotations

import numpy as np

from jaxgossip.topology._matrix import TimeVarying, Topology
from jaxgossip.topology._one_peer import PeerGraph

__all__ = ["local_steps", "identity", "check_local_steps", "REFUSED"]

_COPIES = ("keeps copies of its neighbours' models (or compressed states) that every step updates as if the step's "
           "compressed message had been received; on a local step nothing is sent, so the copies would move without a "
           "message (free communication)")
#: Algorithms refused on a sequence with local steps, and why. Their honest local-step versions would skip the
#: compression and the replica updates on the steps that send nothing; not implemented.
REFUSED = {
    "dcd_psgd": _COPIES,
    "ecd_psgd": _COPIES,
    "choco_sgd": _COPIES,
    "deepsqueeze": "applies error feedback to a compressed message every step; on a local step nothing is sent, so "
                   "its error memory would record a compression that never happened",
    "beer": _COPIES,
    "ad_psgd": "is event-driven (one pairwise average per event, a neighbour drawn from the step's row of W): on the "
               "identity a worker would draw itself and pay for a message to itself",
}


def identity(n: int) -> PeerGraph:
    """The identity mixing matrix on n workers, ``W = I``: a step on it sends no message (degrees 0). A
    :class:`PeerGraph` (one graph of a time-varying sequence), since on its own it connects nobody."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"identity: n must be an integer >= 1, got {n!r}.")
    idx = np.arange(int(n))
    eye = PeerGraph._from_entries(int(n), idx, idx, np.ones(int(n)), f"identity({int(n)})", (1.0, ()))
    eye.local_step = True  # a step on it sends nothing (check_local_steps)
    return eye


def check_local_steps(algorithm, topology) -> None:
    """Refuse, before compiling, an algorithm of :data:`REFUSED` on a sequence holding local steps (identity graphs
    from :func:`identity` / :func:`local_steps`); ``simulate`` calls it with the graph contract.

    Raises:
      ValueError: naming the algorithm, the topology and the reason.
    """
    reason = REFUSED.get(getattr(algorithm, "name", None))
    if reason is None:
        return
    if any(getattr(g, "local_step", False) for g in getattr(topology, "topologies", (topology,))):
        raise ValueError(f"simulate: {algorithm.name} {reason}. It is refused on {getattr(topology, 'name', 'this')}'s "
                         f"local steps; use dpsgd, naive_compressed, q_dsgd, gradient_tracking, exact_diffusion, d2 "
                         f"or sgp there.")


def _check_union_connected(graphs, name: str) -> None:
    """Raise unless the union of the graphs' edges (directed: i receives from j when W_ij != 0) is strongly connected."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    n = graphs[0].n
    rows = np.concatenate([g.entries[0] for g in graphs])
    cols = np.concatenate([g.entries[1] for g in graphs])
    A = csr_matrix((np.ones(len(rows), bool), (rows, cols)), shape=(n, n))
    if n > 1 and connected_components(A, directed=True, connection="strong")[0] > 1:
        raise ValueError(f"local_steps: the graphs of {name} together do not join every worker (their union is not "
                         f"connected), so the workers can never reach consensus.")


def local_steps(topology, H: int):
    """Communicate every H steps, train locally in between: the topology in time ``(I, ..., I, W)`` of length H.

    Step t mixes with the identity (a purely local step: no messages, priced as computation only) unless
    ``(t + 1) mod H == 0``, when it gossips on ``topology``: H - 1 local steps, then one gossip step, as in
    Koloskova et al. (2020), Alg. 1 with ``W^(t) = W`` if ``(t + 1) mod H = 0`` and ``I`` otherwise (their Sec. 3,
    "Local SGD"). A gossip algorithm run on it is its local-step version (except those of :data:`REFUSED`):
    ``jg.algorithms.dpsgd`` is decentralized local SGD, ``jg.algorithms.gradient_tracking`` tracks the average
    gradient across the local steps (its tracker still corrects each worker's direction by the last communicated
    estimate, so label-skewed workers drift far less).
    The centralized counterpart, local SGD / FedAvg with an exact average every H steps, is
    :func:`jaxgossip.algorithms.local_sgd`.

    The sequence's ``rho`` is that of one period's product, ``W`` itself, per step: ``rho(W) ** (1 / H)``.

    Args:
      topology: the graph of the communicating steps: a :class:`Topology` (any symmetric or directed graph), or a
        :class:`TimeVarying` sequence ``(W_0, ..., W_{K-1})``, whose k-th communicating step uses ``W_k``
        (the result then has period H K: ``(I, ..., I, W_0, I, ..., I, W_1, ...)``).
      H: the number of steps per communication round, an integer >= 1 (static: it sets the period). ``H = 1``
        returns ``topology`` unchanged (every step communicates).

    Returns:
      A :class:`TimeVarying` sequence of H (or H K) graphs, named ``"local_steps(<name>, H=<H>)"``; ``topology`` itself
      for H = 1.

    Raises:
      ValueError: for an H that is not an integer >= 1, a topology that is not a Topology or TimeVarying, or a
        sequence whose graphs together do not join every worker.
    """
    if isinstance(H, bool) or not isinstance(H, (int, np.integer)) or H < 1:
        raise ValueError(f"local_steps: H must be an integer >= 1 (steps per communication round), got {H!r}.")
    H = int(H)
    if isinstance(topology, TimeVarying):
        graphs = topology.topologies
    elif isinstance(topology, Topology):
        graphs = (topology,)
    else:
        raise ValueError(f"local_steps: topology must be a jg.topology.Topology or TimeVarying, got "
                         f"{type(topology).__name__}.")
    name = getattr(topology, "name", "custom")
    _check_union_connected(graphs, name)
    if H == 1:
        return topology
    eye = identity(topology.n)
    sequence = []
    for g in graphs:
        sequence += [eye] * (H - 1) + [g]
    return TimeVarying(tuple(sequence), name=f"local_steps({name}, H={H})")
