"""One-peer exponential graphs (Ying, Yuan, Chen, Hu, Pan, Yin, NeurIPS 2021): one message per worker per step.

At step t every worker i averages with one peer, ``x_i <- (x_i + x_{(i + 2^k) mod n}) / 2`` with
``k = t mod tau``, ``tau = ceil(log2 n)``. Each W^(k) = (I + P_k) / 2 (P_k the cyclic shift by 2^k) is doubly
stochastic but neither symmetric (worker i receives from i + 2^k and sends to i - 2^k) nor connected on its own, so
the graphs are :class:`PeerGraph` records, checked only for what one step needs (non-negative, doubly stochastic);
the sequence as a whole mixes. When n is a power of two, the product of one period is exactly the average,
W^(tau-1) ... W^(0) = 1 1^T / n (Ying et al. 2021, Sec. 3), so ``rho`` of the sequence is 0. Other n are
accepted (the shifts 2^k mod n, shift 1 among them, still join everybody) but mix only asymptotically.
"""

from __future__ import annotations

import functools

import numpy as np

from jaxgossip.topology._matrix import TimeVarying, Topology, _canonical

__all__ = ["PeerGraph", "one_peer_exponential"]


class PeerGraph(Topology):
    """One graph of a time-varying sequence: W non-negative and doubly stochastic, possibly asymmetric (directed)
    and disconnected on its own. ``symmetric`` says whether W == W^T (algorithms that need it, such as D², check)."""

    def _set(self, n, rows, cols, vals, name, permutations):
        self._n, self._rows, self._cols, self._vals = int(n), rows, cols, vals
        self.name, self.permutations = name, permutations
        if np.any(vals < -1e-12) or not np.all(np.isfinite(vals)):
            raise ValueError(f"{name}: W must be finite and non-negative.")
        for axis, sums in (("row", np.bincount(rows, vals, n)), ("column", np.bincount(cols, vals, n))):
            if not np.allclose(sums, 1.0, atol=1e-9):
                raise ValueError(f"{name}: W must be doubly stochastic; {axis} sums range over "
                                 f"[{sums.min():.6g}, {sums.max():.6g}].")
        *_, asym = _canonical(n, np.concatenate([rows, cols]), np.concatenate([cols, rows]),
                              np.concatenate([vals, -vals]))
        self.symmetric = bool(np.max(np.abs(asym), initial=0.0) <= 1e-12)

    @functools.cached_property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of W (complex when W is not symmetric), by decreasing real part."""
        lam = np.linalg.eigvalsh(self.W) if self.symmetric else np.linalg.eigvals(self.W)
        return lam[np.argsort(-np.real(lam), kind="stable")]

    @functools.cached_property
    def extreme_eigenvalues(self) -> tuple[float, float]:
        """``(lambda_2, lambda_n)`` by real part."""
        lam = np.real(self.eigenvalues)
        return (float(lam[1]), float(lam[-1])) if self.n > 1 else (1.0, 1.0)

    @property
    def rho(self) -> float:
        """||W - 1 1^T / n||_2: one step's contraction of the disagreement (1 for a graph disconnected on its own)."""
        if self.n == 1:
            return 0.0
        return float(np.linalg.norm(self.W - 1.0 / self.n, 2))


def _check_n(n) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 2:
        raise ValueError(f"one_peer_exponential: n must be an integer >= 2, got {n!r}.")
    return int(n)


def one_peer_exponential(n: int) -> TimeVarying:
    """The one-peer exponential graph of Ying et al. (2021), Sec. 3: tau = ceil(log2 n) graphs, used cyclically.

    Graph k: ``w_ii = w_{i, (i + 2^k) mod n} = 1/2`` (their eq. for W^(k)); every worker sends one message per step
    (to i - 2^k) and receives one. For n a power of two the period's product is exactly 1 1^T / n (exact averaging
    after tau steps); other n are accepted and mix asymptotically (no finite-time exact averaging).

    Args:
      n: number of workers, >= 2.

    Returns:
      A :class:`TimeVarying` sequence of :class:`PeerGraph` (step t uses graph ``t mod tau``).
    """
    n = _check_n(n)
    tau = max(1, (n - 1).bit_length())
    idx = np.arange(n)
    graphs = []
    for k in range(tau):
        peer = (idx + (1 << k)) % n
        rows = np.concatenate([idx, idx])
        cols = np.concatenate([idx, peer])
        topo = PeerGraph._from_entries(n, rows, cols, np.full(2 * n, 0.5), f"one_peer_exponential({n})[{k}]",
                                       (0.5, ((peer.astype(np.int32), 0.5),)))
        graphs.append(topo)
    return TimeVarying(tuple(graphs), name=f"one_peer_exponential({n})")
