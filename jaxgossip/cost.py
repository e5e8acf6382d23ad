"""What a step costs: bits on the wire and simulated seconds (alpha-beta network + compute-time model).

Network (Liu & Zhang, Sec. 1.3, 5.1; ALGORITHMS.md "Cost of an iteration"), with alpha the latency of one message, beta
the seconds per byte (1 / bandwidth) and B the bytes of one message, each worker sending one message and receiving one
message at a time:

* parameter server (one server):       2 n (alpha + B beta)
* ring AllReduce / multi-server PS:     2 (n - 1) alpha + 2 ((n - 1) / n) B beta
* gossip:                               max(max_i out_i, max_i in_i) (alpha + B beta), where out_i / in_i are the
  messages worker i sends / receives on the step's graph (the busiest sender and the busiest receiver; the degree on a
  symmetric graph, ring: 2 alpha + 2 B beta); bits on the wire: sum_i out_i B. Every step is priced on its own graph
  (a time-varying sequence, a directed graph: :meth:`Pricing.on`)
* star (one server, per-worker sizes):  sum_i (alpha + B_i beta) + n (alpha + B_down beta) (Ye et al. 2020's star, where
  each worker's upload has its own size; equal sizes give the parameter server's 2 n (alpha + B beta))

Links of different speeds (issue 23): ``latency`` and ``bandwidth`` may be per worker ((n,): worker i's own link) or
per link ((n, n): entry [i, j], the link from i to j). A synchronous step is then the slowest online worker's
computation plus a communication phase that lasts until the slowest worker has sent and received its messages over
its own links, max_i max(sum_{i -> j active} (alpha_ij + B beta_ij), sum_{j -> i active} (alpha_ji + B beta_ji)),
with the step's active links read from its mixing (:meth:`jaxgossip.gossip.Mixing.links`); equal links give the
formulas above. See :class:`Network` for the vector rule and the AllReduce / server patterns on per-link networks.

Compute (Reisizadeh et al. 2019, Sec. 3 "Computation Model"): worker i needs b / V_i,t seconds for a batch of b samples
at speed V_i,t (samples per second, i.i.d. over workers and steps, or fixed per worker); a synchronous step waits for
the slowest worker it depends on; a deadline method (QuanTimed-DSGD) always spends its deadline T_d. Persistent
stragglers are a fixed set of workers ``slowdown`` times slower at every step.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxgossip import _pytree as struct
from jaxgossip._host import to_device

__all__ = ["Network", "ComputeModel", "Cost", "Pricing", "DISTRIBUTIONS", "NETWORK_PRESETS", "HIGH_LATENCY"]

DISTRIBUTIONS = ("constant", "uniform", "exponential", "shifted_exponential", "given", "empirical")

#: The "high latency" of our paper-000 presets. Tang et al. (2018, Sec. 5.2-5.3) vary latency with ``tc`` but the text
#: gives no number for the high setting; 20 ms is our choice (a cross-region round trip), not the paper's.
HIGH_LATENCY = 20e-3

#: Named network conditions, ``name -> (latency seconds, bandwidth bytes per second)``. Tang et al. (2018), Sec. 5.2-5.3:
#: 1.4 Gbps and 0.13 ms is the best their cluster gives; bandwidth goes down to 5 Mbps; latency up to "high".
NETWORK_PRESETS = {
    "best": (0.13e-3, 1.4e9 / 8),
    "low_bandwidth": (0.13e-3, 5e6 / 8),
    "high_latency": (HIGH_LATENCY, 1.4e9 / 8),
    "high_latency_low_bandwidth": (HIGH_LATENCY, 5e6 / 8),
}


class Cost(NamedTuple):
    """What one step sent and how long it took: total bits over all workers, simulated seconds."""

    bits: jax.Array
    seconds: jax.Array


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)


def _check_value(owner: str, arg: str, v, low: float = 0.0, strict: bool = False) -> None:
    """Raise unless ``v`` is a finite real number (or NumPy array of them) ``>= low`` (``> low`` when ``strict``).

    A string, bool or complex value is a TypeError; a NaN, an infinity or a value out of range a ValueError. Traced
    values (and jax arrays, which jax itself rebuilds these records with) pass unchecked: they are checked where the
    user built the record, before anything compiles.
    """
    if isinstance(v, (str, bytes, bool, np.bool_, complex)):
        raise TypeError(f"{owner}: {arg} must be a real number, got {v!r} ({type(v).__name__}).")
    if not isinstance(v, (int, float, np.integer, np.floating, np.ndarray)):
        return
    a = np.asarray(v)
    if a.dtype.kind not in "iuf":
        raise TypeError(f"{owner}: {arg} must be a real number, got {v!r} (dtype {a.dtype}).")
    bound = f"> {low:g}" if strict else f">= {low:g}"
    if not np.all(np.isfinite(a)) or not np.all(a > low if strict else a >= low):
        raise ValueError(f"{owner}: {arg} must be a finite number {bound}, got {v!r}.")


def _link_values(arg: str, v, strict: bool):
    """``v`` as the network stores it: a number as it is (checked as before), a list / tuple / NumPy array of one or
    two axes as a float32 device array, checked here (finite; latency >= 0, bandwidth > 0; a matrix square, its
    diagonal ignored and set to 0 s / 1 B/s). Other values (jax arrays, tracers, jax's rebuild placeholders) pass
    unchecked: :meth:`Network.check` checks concrete arrays against n before anything compiles."""
    if isinstance(v, (list, tuple)) or (isinstance(v, np.ndarray) and v.ndim > 0):
        try:
            a = np.array(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"Network: {arg} must be a number, an (n,) vector or an (n, n) matrix of real numbers, "
                            f"got {v!r}.") from None
        if isinstance(v, np.ndarray) and v.dtype.kind not in "iuf":
            raise TypeError(f"Network: {arg} must hold real numbers, got dtype {v.dtype}.")
        _check_link_array(arg, a, strict)
        if a.ndim == 2:
            np.fill_diagonal(a, 1.0 if strict else 0.0)  # the diagonal is ignored: no worker messages itself
        return to_device(a, np.float32)
    _check_value("Network", arg, v, strict=strict)
    return v


def _check_link_array(arg: str, a: np.ndarray, strict: bool) -> None:
    """Shape and values of a per-worker vector or per-link matrix (the diagonal of a matrix is not read)."""
    if a.ndim not in (1, 2) or a.size == 0:
        raise ValueError(f"Network: {arg} must be a number, an (n,) vector (one link per worker) or an (n, n) matrix "
                         f"(entry i, j: the link from i to j), got shape {a.shape}.")
    if a.ndim == 2 and a.shape[0] != a.shape[1]:
        raise ValueError(f"Network: a per-link {arg} matrix must be square (n, n), got shape {a.shape}.")
    vals = a[~np.eye(a.shape[0], dtype=bool)] if a.ndim == 2 else a
    ok = np.isfinite(vals) & ((vals > 0) if strict else (vals >= 0))
    if not np.all(ok):
        bad = np.argwhere(~ok.reshape(-1))[0, 0] if a.ndim == 1 else None
        where = f" (entry {bad}: {vals[bad]!r})" if bad is not None else f" (off-diagonal value {vals[~ok][0]!r})"
        bound = "> 0" if strict else ">= 0"
        raise ValueError(f"Network: {arg} must be finite and {bound} on every link{where}.")


@struct.dataclass
class Network:
    """Alpha-beta network: ``latency`` seconds per message, ``bandwidth`` bytes per second (both traced).

    Defaults: 1 Gbps (1.25e8 B/s) and 0.1 ms latency. ``Network.preset(name)`` gives paper 000's conditions
    (:data:`NETWORK_PRESETS`); ``Network.from_rates(gbps=..., latency_ms=...)`` builds one from network units.

    Links of different speeds. Each of ``latency`` and ``bandwidth`` is

    * a number: every link is the same (the classic model, priced exactly as before);
    * an (n,) vector: worker i's own link (its access link, full duplex), alpha_i and beta_i = 1 / bandwidth_i. Every
      message i sends or receives occupies i's link for alpha_i + B beta_i; a message between i and j occupies i's
      link for i's time and j's link for j's, and the round waits for both ends, so the slower end bounds it;
    * an (n, n) matrix: entry [i, j] is the link from i to j (alpha_ij, beta_ij); the diagonal is ignored.
      :meth:`clusters` builds the common case, clusters joined by slower links.

    A number broadcasts against a vector or a matrix; a vector and a matrix do not mix (a ValueError).

    The cost of a synchronous step (:class:`Pricing`): the slowest online worker's computation, then a communication
    phase that lasts until the slowest worker has sent and received its messages over its own links, one at a time:
    ``comm_i = max(sum over i's active out-links i -> j of (alpha_ij + B beta_ij), sum over its active in-links
    j -> i of (alpha_ji + B beta_ji))`` and the phase lasts ``max_i comm_i`` (:meth:`gossip_round`). With a vector,
    ``alpha_ij + B beta_ij`` is worker i's own link on i's side (``comm_i = max(out_i, in_i) (alpha_i + B beta_i)``,
    from the message counts alone, O(n)); a matrix reads the step's n x n active links (O(n^2)). With equal links this
    is ``max(max out-degree, max in-degree) (alpha + B beta)``, the classic formula. The centralized patterns on a
    per-link network are in :meth:`allreduce`, :meth:`parameter_server` and :meth:`star`.
    """

    latency: float = 1e-4
    bandwidth: float = 1.25e8

    def __post_init__(self):
        object.__setattr__(self, "latency", _link_values("latency", self.latency, strict=False))
        object.__setattr__(self, "bandwidth", _link_values("bandwidth", self.bandwidth, strict=True))
        shapes = {np.shape(v) for v in (self.latency, self.bandwidth) if _is_array_like(v) and np.ndim(v) > 0}
        if len(shapes) > 1:
            raise ValueError(f"Network: latency and bandwidth must have the same shape when both are per-worker "
                             f"(n,) or per-link (n, n) (a number goes with either), got shapes {sorted(shapes)}.")

    # ---- shape ------------------------------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """``"scalar"`` (one link for all), ``"vector"`` (one link per worker) or ``"matrix"`` (one per pair)."""
        nd = max(np.ndim(self.latency), np.ndim(self.bandwidth))
        return ("scalar", "vector", "matrix")[min(nd, 2)]

    @property
    def size(self) -> int | None:
        """The n of a per-worker or per-link network, None for a scalar one."""
        for v in (self.latency, self.bandwidth):
            if np.ndim(v) > 0:
                return int(np.shape(v)[0])
        return None

    def check(self, n: int) -> None:
        """Check a per-worker / per-link network against ``n`` workers before anything compiles (``simulate`` calls
        it): shapes (n,) or (n, n), and concrete jax arrays' values (finite, latency >= 0, bandwidth > 0).

        Raises:
          ValueError: naming the field.
        """
        for arg, v, strict in (("latency", self.latency, False), ("bandwidth", self.bandwidth, True)):
            if np.ndim(v) == 0:
                continue
            if np.shape(v) not in ((n,), (n, n)):
                raise ValueError(f"Network: {arg} has shape {np.shape(v)}, but the run has n = {n} workers: give a "
                                 f"number, an ({n},) vector (one link per worker) or an ({n}, {n}) matrix (entry i, j: "
                                 f"the link from i to j).")
            if not isinstance(v, jax.core.Tracer):
                _check_link_array(arg, np.asarray(jax.device_get(v), np.float64), strict)

    def describe(self) -> dict:
        """A JSON-friendly record (for a run's config): the two numbers of a scalar network; for a per-worker or
        per-link one, each array's shape, digest and smallest and largest link (off-diagonal entries)."""
        if self.kind == "scalar":
            return {"latency": float(self.latency), "bandwidth": float(self.bandwidth)}
        from jaxgossip._record import digest

        out = {"kind": self.kind}
        for arg in ("latency", "bandwidth"):
            v = getattr(self, arg)
            if np.ndim(v) == 0:
                out[arg] = float(v)
                continue
            a = np.asarray(jax.device_get(v), np.float64)
            vals = a[~np.eye(a.shape[0], dtype=bool)] if a.ndim == 2 and a.shape[0] > 1 else a.reshape(-1)
            out[arg] = {"shape": list(a.shape), "digest": digest(a), "min": float(vals.min()), "max": float(vals.max())}
        return out

    def _pair(self, bits):
        """(alpha, beta B) arrays in the network's shape (a number broadcast), for a message of ``bits`` bits."""
        shape = np.shape(self.latency) if np.ndim(self.latency) else np.shape(self.bandwidth)
        alpha = jnp.broadcast_to(jnp.asarray(self.latency, jnp.float32), shape)
        return alpha, jnp.broadcast_to(bits / 8.0 / jnp.asarray(self.bandwidth, jnp.float32), shape)

    def link_seconds(self, bits):
        """alpha + B beta of one message of ``bits`` bits on every link: a number (scalar network), (n,) (worker i's
        link) or (n, n) (entry [i, j]: the link from i to j)."""
        if self.kind == "scalar":
            return self.message(bits)
        alpha, transfer = self._pair(bits)
        return alpha + transfer

    # ---- named constructors ----------------------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str) -> "Network":
        """A named condition of Tang et al. (2018), Sec. 5: ``"best"`` (1.4 Gbps, 0.13 ms), ``"low_bandwidth"``
        (5 Mbps, 0.13 ms), ``"high_latency"`` (1.4 Gbps, :data:`HIGH_LATENCY`), ``"high_latency_low_bandwidth"``."""
        if name not in NETWORK_PRESETS:
            raise ValueError(f"Network.preset: name must be one of {sorted(NETWORK_PRESETS)}, got {name!r}.")
        latency, bandwidth = NETWORK_PRESETS[name]
        return cls(latency=latency, bandwidth=bandwidth)

    @classmethod
    def from_rates(cls, gbps: float = 1.0, latency_ms: float = 0.1) -> "Network":
        """A network of ``gbps`` gigabits per second and ``latency_ms`` milliseconds per message."""
        if not _is_number(gbps):
            raise TypeError(f"Network.from_rates: gbps must be a real number, got {gbps!r}.")
        if not _is_number(latency_ms):
            raise TypeError(f"Network.from_rates: latency_ms must be a real number, got {latency_ms!r}.")
        _check_value("Network.from_rates", "gbps", gbps, strict=True)
        _check_value("Network.from_rates", "latency_ms", latency_ms)
        return cls(latency=latency_ms * 1e-3, bandwidth=gbps * 1e9 / 8)

    @classmethod
    def clusters(cls, sizes, inside=(1e-4, 1.25e9), between=(50e-3, 1.25e7)) -> "Network":
        """Clusters joined by slower links: workers ``0 .. sizes[0] - 1`` form cluster 0, the next ``sizes[1]``
        cluster 1, and so on; a link inside a cluster has ``inside = (latency s, bandwidth B/s)``, a link between
        two clusters ``between``. Defaults: 0.1 ms / 10 Gbps inside, 50 ms / 100 Mbps between (issue 23's
        two-cluster claim).

        Returns:
          A per-link (n, n) :class:`Network`, n = sum(sizes).
        """
        ok = not isinstance(sizes, (str, bytes))
        try:
            sizes = [int(s) for s in sizes] if ok and all(_is_number(s) and float(s) == int(s) for s in sizes) else []
        except TypeError:
            sizes = []
        if not ok or not sizes or not all(s >= 1 for s in sizes):
            raise ValueError(f"Network.clusters: sizes must be a non-empty sequence of ints >= 1, got {sizes!r}.")
        for arg, pair in (("inside", inside), ("between", between)):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(_is_number(p) for p in pair):
                raise ValueError(f"Network.clusters: {arg} must be a pair (latency seconds, bandwidth bytes/s) of "
                                 f"numbers, got {pair!r}.")
            _check_value(f"Network.clusters {arg}", "latency", pair[0])
            _check_value(f"Network.clusters {arg}", "bandwidth", pair[1], strict=True)
        label = np.repeat(np.arange(len(sizes)), sizes)
        same = label[:, None] == label[None, :]
        return cls(latency=np.where(same, float(inside[0]), float(between[0])),
                   bandwidth=np.where(same, float(inside[1]), float(between[1])))

    # ---- prices -----------------------------------------------------------------------------------------------------
    def message(self, bits):
        """alpha + B beta for one message of ``bits`` bits (per worker or per link on a per-link network:
        :meth:`link_seconds`)."""
        return self.latency + bits / 8.0 / self.bandwidth

    def gossip_round(self, sends, receives, bits, links=None):
        """Seconds of one gossip round of ``bits``-bit messages on a per-worker or per-link network.

        Args:
          sends, receives: (n,) messages each worker sends / receives (a vector network reads only these).
          bits: bits of one message.
          links: (n, n) active links, entry [i, j] = 1 when j's message reaches i (:meth:`Mixing.links`); needed by
            a matrix network.

        Returns:
          ``max_i max(sum_out (alpha_ij + B beta_ij), sum_in (alpha_ji + B beta_ji))``: vector
          ``max_i max(sends_i, receives_i) (alpha_i + B beta_i)``; matrix, with C[i, j] the link i -> j,
          ``out_i = sum_j links[j, i] C[i, j]`` and ``in_i = sum_j links[i, j] C[j, i]``.
        """
        if self.kind == "scalar":
            return self.gossip(jnp.maximum(jnp.max(sends), jnp.max(receives)), bits)
        cost = self.link_seconds(bits)
        if self.kind == "vector":
            return jnp.max(jnp.maximum(sends, receives) * cost)
        if links is None:
            raise ValueError("Network.gossip_round: a per-link (n, n) network prices a round on the step's active "
                             "links; pass links (Pricing.on(mixing) does).")
        links = jnp.asarray(links, jnp.float32)
        out = jnp.sum(links.T * cost, axis=1)  # i's sends: the links i -> j with j receiving from i
        inn = jnp.sum(links * cost.T, axis=1)  # i's receives: the links j -> i
        return jnp.maximum(jnp.max(out), jnp.max(inn))

    def _server(self, up_bits, down_bits, online):
        """Per-link server rounds (up, then down) over the online workers (see :meth:`parameter_server`)."""
        up_bits = jnp.asarray(up_bits, jnp.float32)
        n = self.size
        on = jnp.ones((n,), bool) if online is None else jnp.asarray(online, bool)
        if self.kind == "vector":
            alpha, _ = self._pair(0.0)
            bw = jnp.broadcast_to(jnp.asarray(self.bandwidth, jnp.float32), (n,))
            ups = jnp.broadcast_to(up_bits, (n,))
            worker_up = alpha + ups / 8.0 / bw  # worker i's upload on its own link
            server_up = alpha[0] + ups / 8.0 / bw[0]  # the same upload on the server's link (worker 0's)
            worker_down = alpha + down_bits / 8.0 / bw
            m = jnp.sum(on.astype(jnp.float32))
            up = jnp.maximum(jnp.sum(jnp.where(on, server_up, 0.0)), jnp.max(jnp.where(on, worker_up, 0.0)))
            down = jnp.maximum(m * worker_down[0], jnp.max(jnp.where(on, worker_down, 0.0)))
            return up + down
        ups = jnp.broadcast_to(up_bits, (n,))
        up_cost = self._link_matrix(ups)  # (n, n): entry [i, j] = alpha_ij + ups[i] beta_ij
        off = ~jnp.eye(n, dtype=bool)
        own_up = jnp.min(jnp.where(off[0], up_cost[0], jnp.inf)) if n > 1 else jnp.float32(0)
        to_server = up_cost[:, 0].at[0].set(own_up)
        down_cost = self.link_seconds(down_bits)
        own_down = jnp.min(jnp.where(off[:, 0], down_cost[:, 0], jnp.inf)) if n > 1 else jnp.float32(0)
        from_server = down_cost[0, :].at[0].set(own_down)
        return jnp.sum(jnp.where(on, to_server, 0.0)) + jnp.sum(jnp.where(on, from_server, 0.0))

    def _link_matrix(self, row_bits):
        """(n, n) seconds of a message of ``row_bits[i]`` bits on the link i -> j."""
        alpha, _ = self._pair(0.0)
        bw = jnp.broadcast_to(jnp.asarray(self.bandwidth, jnp.float32), alpha.shape)
        return alpha + row_bits[:, None] / 8.0 / bw

    def parameter_server(self, n, up_bits, down_bits=None, online=None):
        """One server: n messages up and n down, one at a time: 2 n (alpha + B beta) when both are the same size.

        Per-link networks: the server is a machine beside worker 0. Vector: it has worker 0's link; the upload phase
        lasts until the server has received the n messages on its link (``n (alpha_0 + B beta_0)``) and every
        worker has sent its own (``alpha_i + B beta_i``), whichever is longer, and the same for the broadcast.
        Matrix: worker i != 0 sends over the link i -> 0 and receives over 0 -> i, worker 0 over its fastest link,
        one message at a time at the server: ``sum_i (alpha_i0 + B beta_i0) + sum_i (alpha_0i + B beta_0i)``. Equal
        links give the classic 2 n (alpha + B beta).

        ``online`` ((n,) bool, optional): only these workers take part; ``n`` is then their number m (traced)."""
        down_bits = up_bits if down_bits is None else down_bits
        if self.kind != "scalar":
            return self._server(up_bits, down_bits, online)
        return n * self.message(up_bits) + n * self.message(down_bits)

    def allreduce(self, n, bits, online=None):
        """Ring AllReduce (or n-server PS): 2 (n - 1) alpha + 2 ((n - 1) / n) B beta.

        Per-link networks: the ring runs over the workers in index order, 0 -> 1 -> ... -> n - 1 -> 0 (the online
        ones when ``online`` is given); each of its 2 (n - 1) phases sends a chunk of B / n bytes over every ring link
        at once and waits for the slowest: ``2 (n - 1) max_i (alpha_{i, next(i)} + (B / n) beta_{i, next(i)})``
        (vector: worker i's own link, ``alpha_i + (B / n) beta_i``). Equal links give the classic formula.

        ``online`` ((n,) bool, optional): the ring runs over these workers only; ``n`` is then their number m
        (traced, >= 2 for a meaningful value)."""
        if online is not None:
            n = jnp.maximum(n, 1.0)
        if self.kind == "scalar":
            return 2 * (n - 1) * self.latency + 2 * ((n - 1) / n) * bits / 8.0 / self.bandwidth
        chunk = self.link_seconds(bits / n)
        size = self.size
        on = jnp.ones((size,), bool) if online is None else jnp.asarray(online, bool)
        if self.kind == "vector":
            phase = jnp.max(jnp.where(on, chunk, 0.0))
        else:  # the next online worker after i in index order (cyclically)
            idx = jnp.arange(size)
            ahead = (idx[None, :] - idx[:, None]) % size  # [i, j]: how far j is after i
            ahead = jnp.where(on[None, :] & (ahead > 0), ahead, size)
            nxt = jnp.argmin(ahead, axis=1)
            valid = on & (jnp.min(ahead, axis=1) < size)
            phase = jnp.max(jnp.where(valid, chunk[idx, nxt], 0.0))
        return 2 * (n - 1) * phase

    def gossip(self, degree, bits):
        """Each worker sends its message to each of its ``degree`` neighbours, one at a time."""
        return degree * self.message(bits)

    def star(self, up_bits, down_bits, online=None):
        """One server receives worker i's message of ``up_bits[i]`` bits, one at a time, then sends ``down_bits`` to
        each of the n workers: sum_i (alpha + B_i beta) + n (alpha + B_down beta).

        Per-link networks: as :meth:`parameter_server` (a server beside worker 0), with worker i's upload of
        ``up_bits[i]`` bits.

        Args:
          up_bits: (n,) bits of each worker's upload.
          down_bits: bits of the server's broadcast message (scalar).
          online: optional (n,) bool: only these workers upload and receive the broadcast.
        """
        up_bits = jnp.asarray(up_bits)
        if self.kind != "scalar":
            return self._server(up_bits, down_bits, online)
        if online is None:
            return jnp.sum(self.message(up_bits)) + up_bits.shape[0] * self.message(down_bits)
        m = jnp.sum(online.astype(jnp.float32))
        return jnp.sum(jnp.where(online, self.message(up_bits), 0.0)) + m * self.message(down_bits)


def _is_array_like(v) -> bool:
    return hasattr(v, "shape") and hasattr(v, "ndim")


@struct.dataclass
class ComputeModel:
    """Per-worker, per-step computation speeds V_i,t (samples per second), optionally with persistent stragglers.

    Args:
      speed: mean speed (samples per second) for ``"constant"`` / ``"exponential"`` / ``"shifted_exponential"``.
      distribution: ``"constant"``; ``"uniform"`` (speed on [low, high]; Reisizadeh et al. 2019 use Uniform(10, 90));
        ``"exponential"`` (time per sample Exp with mean 1 / speed); ``"shifted_exponential"`` (time per sample =
        shift + Exp(mean 1 / speed)); ``"given"`` (worker i always runs at ``values[i]``, shape (n,));
        ``"empirical"`` (i.i.d. draws from the sample of speeds ``values``, any length).
      low, high: bounds of the uniform speed.
      shift: the minimum time per sample of the shifted exponential (seconds).
      values: speeds for ``"given"`` / ``"empirical"`` (traced).
      slowdown: how many times slower the stragglers are (traced, >= 1).
      stragglers: static tuple of worker indices that are ``slowdown`` times slower at every step.

    The named constructors read better: ``ComputeModel.uniform(10, 90)``, ``ComputeModel.exponential(50.0)``,
    ``ComputeModel.given([...])``, and ``model.with_stragglers((0, 3), slowdown=5.0)``.
    """

    speed: float = 1000.0
    low: float = 10.0
    high: float = 90.0
    shift: float = 0.0
    distribution: str = struct.field(pytree_node=False, default="constant")
    values: jax.Array | None = None
    slowdown: float = 1.0
    stragglers: tuple = struct.field(pytree_node=False, default=())

    def __post_init__(self):
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"ComputeModel: distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}.")
        if not isinstance(self.distribution, str):
            raise TypeError(f"ComputeModel: distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}.")
        _check_value("ComputeModel", "speed", self.speed, strict=True)
        for arg in ("low", "high"):
            _check_value("ComputeModel", arg, getattr(self, arg), strict=True)
        _check_value("ComputeModel", "shift", self.shift)
        _check_value("ComputeModel", "slowdown", self.slowdown, low=1.0)
        if self.distribution == "uniform" and _is_number(self.low) and _is_number(self.high) and not 0 < self.low <= self.high:
            raise ValueError(f"ComputeModel: uniform speeds need 0 < low <= high, got low={self.low}, high={self.high}.")
        if self.distribution in ("given", "empirical"):
            if self.values is None:
                raise ValueError(f"ComputeModel: distribution {self.distribution!r} needs values (speeds, samples/s).")
            if isinstance(self.values, (list, tuple, np.ndarray)):
                try:
                    v = np.asarray(self.values, dtype=np.float64)
                except (TypeError, ValueError):
                    raise TypeError(f"ComputeModel: values must be a 1-D array of speeds (samples/s), got "
                                    f"{self.values!r}.") from None
                if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)) or not np.all(v > 0):
                    raise ValueError(f"ComputeModel: values must be a non-empty 1-D array of finite speeds > 0, got "
                                     f"{self.values!r}.")
                object.__setattr__(self, "values", to_device(v, np.float32))
            elif isinstance(self.values, (str, bytes)):
                raise TypeError(f"ComputeModel: values must be a 1-D array of speeds (samples/s), got {self.values!r}.")
        if not isinstance(self.stragglers, tuple) or not all(isinstance(i, int) and i >= 0 for i in self.stragglers):
            raise ValueError(f"ComputeModel: stragglers must be a tuple of worker indices >= 0, got {self.stragglers!r}.")

    # ---- named constructors ------------------------------------------------------------------------------------------
    @classmethod
    def constant(cls, speed: float = 1000.0) -> "ComputeModel":
        return cls(speed=speed, distribution="constant")

    @classmethod
    def uniform(cls, low: float = 10.0, high: float = 90.0) -> "ComputeModel":
        """Speeds i.i.d. Uniform(low, high) samples/s (Reisizadeh et al. 2019, Sec. 5: Uniform(10, 90))."""
        return cls(low=low, high=high, distribution="uniform")

    @classmethod
    def exponential(cls, speed: float = 1000.0) -> "ComputeModel":
        """Time per sample i.i.d. exponential with mean 1 / speed."""
        return cls(speed=speed, distribution="exponential")

    @classmethod
    def shifted_exponential(cls, speed: float = 1000.0, shift: float = 1e-3) -> "ComputeModel":
        """Time per sample = shift + Exp(mean 1 / speed): never faster than 1 / shift samples/s."""
        return cls(speed=speed, shift=shift, distribution="shifted_exponential")

    @classmethod
    def given(cls, speeds) -> "ComputeModel":
        """Worker i always runs at ``speeds[i]`` samples/s ((n,) array)."""
        return cls(values=speeds, distribution="given")

    @classmethod
    def empirical(cls, samples) -> "ComputeModel":
        """Speeds drawn i.i.d. (per worker and step) from a sample of measured speeds."""
        return cls(values=samples, distribution="empirical")

    def with_stragglers(self, workers, slowdown: float = 10.0) -> "ComputeModel":
        """A copy in which ``workers`` (an int k: workers 0..k-1; or a sequence of indices) are ``slowdown`` times
        slower at every step (persistent stragglers)."""
        if isinstance(workers, (int, np.integer)) and not isinstance(workers, bool):
            if workers < 0:
                raise ValueError(f"ComputeModel.with_stragglers: workers must be >= 0, got {workers}.")
            idx = tuple(range(int(workers)))
        else:
            try:
                idx = tuple(int(i) for i in workers)
            except (TypeError, ValueError):
                raise ValueError(f"ComputeModel.with_stragglers: workers must be an int or indices, got {workers!r}.") from None
        _check_value("ComputeModel.with_stragglers", "slowdown", slowdown, low=1.0)
        return self.replace(stragglers=tuple(sorted(set(idx))), slowdown=slowdown)

    # ---- sampling ----------------------------------------------------------------------------------------------------
    def _base_speeds(self, key, n):
        if self.distribution == "constant":
            return jnp.full((n,), self.speed, jnp.float32)
        if self.distribution == "uniform":
            return jax.random.uniform(key, (n,), jnp.float32, self.low, self.high)
        if self.distribution == "given":
            if self.values.shape != (n,):
                raise ValueError(f"ComputeModel: given speeds must have shape (n,) = ({n},), got {self.values.shape}.")
            return jnp.asarray(self.values, jnp.float32)
        if self.distribution == "empirical":
            return self.values[jax.random.randint(key, (n,), 0, self.values.shape[0])].astype(jnp.float32)
        per_sample = jax.random.exponential(key, (n,), jnp.float32) / self.speed
        if self.distribution == "shifted_exponential":
            per_sample = per_sample + self.shift
        return 1.0 / per_sample

    def check(self, n: int) -> None:
        """Check the model against ``n`` workers before anything compiles (``simulate`` calls it): ``given`` speeds
        are one per worker, shape (n,), finite and > 0 (also when given as a jax array), and straggler indices are
        < n.

        Raises:
          ValueError: naming the field.
        """
        if self.distribution in ("given", "empirical") and self.values is not None \
                and not isinstance(self.values, jax.core.Tracer):
            v = np.asarray(jax.device_get(self.values))
            if self.distribution == "given" and v.shape != (n,):
                raise ValueError(f"ComputeModel: given speeds (values) must have shape (n,) = ({n},), one per worker, "
                                 f"got shape {v.shape}.")
            if v.dtype.kind not in "iuf" or v.ndim != 1 or not v.size or not np.all(np.isfinite(v)) or not np.all(v > 0):
                raise ValueError(f"ComputeModel: values must be a non-empty 1-D array of finite speeds > 0, got {v!r}.")
        if self.stragglers and max(self.stragglers) >= n:
            raise ValueError(f"ComputeModel: straggler indices must be < n = {n}, got {self.stragglers}.")

    def straggler_mask(self, n):
        """(n,) float32, 1 for the persistent stragglers."""
        if self.stragglers and max(self.stragglers) >= n:
            raise ValueError(f"ComputeModel: straggler indices must be < n = {n}, got {self.stragglers}.")
        mask = np.zeros(n, np.float32)
        mask[list(self.stragglers)] = 1.0
        return jnp.asarray(mask)

    def speeds(self, key, n):
        """(n,) speeds V_i,t in samples per second (stragglers divided by ``slowdown``)."""
        v = self._base_speeds(key, n)
        if not self.stragglers:
            return v
        return v / (1.0 + (self.slowdown - 1.0) * self.straggler_mask(n))

    def times(self, key, n, batch):
        """(n,) seconds each worker needs for ``batch`` samples."""
        return batch / self.speeds(key, n)

    def synchronous(self, key, n, batch):
        """Seconds of a synchronous step: the slowest worker's time."""
        return jnp.max(self.times(key, n, batch))

    def describe(self) -> dict:
        """A JSON-friendly summary (for a run's config)."""
        out = {"distribution": self.distribution}
        for k in ("speed", "low", "high", "shift", "slowdown"):
            try:
                out[k] = float(getattr(self, k))
            except (TypeError, ValueError):
                out[k] = repr(getattr(self, k))
        if self.values is not None:
            out["values"] = [float(v) for v in np.asarray(self.values).reshape(-1)]
        out["stragglers"] = list(self.stragglers)
        return out


_COMPUTE_TAG = 0x5EED


@struct.dataclass
class Pricing:
    """Prices a step's messages and computation (built by ``simulate`` from the topology, network and compute model).

    Every method draws the step's speeds from ``fold_in(key, _COMPUTE_TAG)``, so an algorithm that needs the speeds
    themselves (QuanTimed-DSGD's sample counts) sees the same V_i,t as the price.

    A gossip round is priced on a graph: ``degrees[i]`` messages sent by worker i (its out-degree) and ``receives[i]``
    received (its in-degree; None: the same as ``degrees``, a symmetric graph). The round lasts as long as the busiest
    sender or receiver needs, ``max(max_i degrees_i, max_i receives_i)`` messages one after the other, and puts
    ``sum_i degrees_i`` messages on the wire. Inside ``simulate`` every step reads ``pricing.on(mixing)``, the pricing
    of that step's graph (the one it mixes with), so time-varying and directed graphs are priced step by step.

    Links of different speeds (a per-worker or per-link :class:`Network`): the round lasts until the slowest worker
    has sent and received its messages over its own links, ``max_i max(sum_out (alpha_ij + B beta_ij), sum_in
    (alpha_ji + B beta_ji))`` (:meth:`Network.gossip_round`): a per-worker (vector) network reads the counts
    (O(n)), a per-link (matrix) network the step's (n, n) active links, which :meth:`on` takes from the mixing
    (:meth:`jaxgossip.gossip.Mixing.links`: the nonzero off-diagonal weights). A scalar network keeps the formula
    above, bit for bit.

    Attributes:
      network: the alpha-beta :class:`Network`.
      compute: the :class:`ComputeModel`.
      degrees: (n,) messages each worker sends per gossip round.
      n: static number of workers.
      receives: (n,) messages each worker receives per gossip round, or None (= ``degrees``).
      online: (n,) float32, 1 for the workers online at this step (:meth:`with_online`), or None: every worker is.
      links: (n, n) float32 active links of the step's graph (entry [i, j] = 1: j's message reaches i), set by
        :meth:`on` for a per-link (matrix) network only; None otherwise.

    Workers that are offline (``online`` set): they compute nothing, so the synchronous computation waits for the
    slowest ONLINE worker (:meth:`compute_time`; :meth:`worker_times` gives them 0 s); the centralized patterns price
    the m online workers only: ring AllReduce over the m online workers (2 (m - 1) messages of the vector's bits on the
    wire; 2 (m - 1) alpha + 2 ((m - 1) / m) B beta seconds), the parameter server and the star receive and send
    m messages (an offline worker uploads nothing and gets no broadcast); m <= 1 workers exchange nothing (0 bits,
    0 s). A gossip round reads its message counts from the step's mixing, in which the failed or offline workers'
    links carry zero weight, so ``online`` does not change it. With every worker online the numbers are bit-identical
    to ``online=None``; with ``online=None`` nothing changes.
    """

    network: Network
    compute: ComputeModel
    degrees: jax.Array  # (n,) messages each worker sends per gossip round (out-degrees)
    n: int = struct.field(pytree_node=False)
    receives: jax.Array | None = None  # (n,) messages each worker receives (in-degrees); None: the same as degrees
    online: jax.Array | None = None  # (n,) 1 for the online workers; None: every worker is online
    links: jax.Array | None = None  # (n, n) the step's active links (matrix networks only)

    def with_online(self, mask) -> "Pricing":
        """A copy that prices this step with only the workers of ``mask`` online ((n,) bool or 0/1 float, traced)."""
        mask = jnp.asarray(mask)
        if mask.shape != (self.n,):
            raise ValueError(f"Pricing.with_online: mask must have shape (n,) = ({self.n},), got {mask.shape}.")
        return self.replace(online=mask.astype(jnp.float32))

    def _active(self):
        """(bool (n,) online mask, float32 number m of online workers, bool all online); only when online is set."""
        on = self.online > 0
        return on, jnp.sum(on.astype(jnp.float32)), jnp.all(on)

    def on(self, mixing) -> "Pricing":
        """This pricing on ``mixing``'s graph (its ``sends`` and ``receives``): the step's pricing, read from the same
        value as the step's mixing. A time-varying stack (a leading graph axis) gives its first graph, step 0's; a
        mixing that does not know its message counts leaves the pricing as it is. A per-link (matrix) network also
        keeps the graph's (n, n) active links (:meth:`jaxgossip.gossip.Mixing.links`); other networks the counts only."""
        sends, receives = getattr(mixing, "sends", None), getattr(mixing, "receives", None)
        if sends is None or receives is None:
            return self
        if sends.ndim > 1:
            sends, receives = sends[0], receives[0]
        if self.network.kind != "matrix":
            return self.replace(degrees=sends, receives=receives)
        if mixing.diag.ndim > 1:  # a time-varying stack: step 0's graph
            mixing = jax.tree.map(lambda a: a[0], mixing)
        return self.replace(degrees=sends, receives=receives, links=mixing.links())

    def gossip_bits(self, msg_bits):
        """Bits of one gossip round: every worker sends one message of ``msg_bits`` per out-edge."""
        return jnp.sum(self.degrees) * msg_bits

    def busiest(self):
        """Messages the busiest worker sends or receives in one gossip round: max(max out-degree, max in-degree)."""
        most = jnp.max(self.degrees)
        return most if self.receives is None else jnp.maximum(most, jnp.max(self.receives))

    def gossip_seconds(self, msg_bits):
        """Network seconds of one gossip round of ``msg_bits`` messages: busiest (alpha + B beta) on a scalar network;
        on a per-worker or per-link one the slowest worker's sends and receives over its own links
        (:meth:`Network.gossip_round`)."""
        if self.network.kind == "scalar":
            return self.network.gossip(self.busiest(), msg_bits)
        if self.network.kind == "matrix" and self.links is None:
            raise ValueError("Pricing: a per-link (n, n) network prices a gossip round on the step's links; build the "
                             "pricing with pricing.on(mixing).")
        receives = self.degrees if self.receives is None else self.receives
        return self.network.gossip_round(self.degrees, receives, msg_bits, self.links)

    def speeds(self, key):
        """(n,) speeds V_i,t of this step (samples per second)."""
        return self.compute.speeds(jax.random.fold_in(key, _COMPUTE_TAG), self.n)

    def worker_times(self, key, batch):
        """(n,) seconds each worker needs for ``batch`` samples at this step's speeds (0 for an offline worker)."""
        times = batch / self.speeds(key)
        if self.online is None:
            return times
        return jnp.where(self.online > 0, times, jnp.zeros_like(times))

    def compute_time(self, key, batch):
        """Seconds of a synchronous computation: the slowest (online) worker's; 0 when no worker is online."""
        return jnp.max(self.worker_times(key, batch))

    def gossip(self, key, msg_bits, batch):
        """Every worker sends one message of ``msg_bits`` to each out-neighbour: sum_i out_i messages, and
        busiest (alpha + B beta) seconds after the slowest worker's computation."""
        return Cost(self.gossip_bits(msg_bits), self.compute_time(key, batch) + self.gossip_seconds(msg_bits))

    def gossip_deadline(self, deadline, msg_bits):
        """A gossip step whose computation always lasts ``deadline`` seconds (QuanTimed-DSGD: T_d + communication)."""
        return Cost(self.gossip_bits(msg_bits), deadline + self.gossip_seconds(msg_bits))

    def allreduce_cost(self, msg_bits):
        """Bits and network seconds of one ring AllReduce of ``msg_bits`` (no computation; over the online workers)."""
        bits = 2 * (self.n - 1) * msg_bits
        seconds = self.network.allreduce(self.n, msg_bits)
        if self.online is None:
            return Cost(bits, seconds)
        on, m, full = self._active()
        hops = jnp.maximum(m - 1.0, 0.0)
        part = self.network.allreduce(m, msg_bits, online=on)
        return Cost(jnp.where(full, bits, 2 * hops * msg_bits), jnp.where(full, seconds, jnp.where(m > 1, part, 0.0)))

    def allreduce(self, key, msg_bits, batch):
        """Ring AllReduce of one vector of ``msg_bits``: each worker sends 2 (n - 1) / n of it."""
        c = self.allreduce_cost(msg_bits)
        return Cost(c.bits, self.compute_time(key, batch) + c.seconds)

    def parameter_server(self, key, up_bits, down_bits, batch, up_total=None):
        """n messages of ``up_bits`` to the server, n of ``down_bits`` back (the m online workers' when ``online``).
        ``up_total``: the uploads' exact sum where they differ by worker (``up_bits`` is then their mean, which
        prices the seconds): counted as given, not as ``n * mean``, whose float32 rounding depends on the code XLA
        generates.

        Raises:
          ValueError: ``up_total`` that is not one number (per-worker sizes go to :meth:`star`)."""
        if up_total is not None and jnp.ndim(up_total) != 0:
            raise ValueError(f"parameter_server: up_total is the uploads' sum, one number; got shape "
                             f"{jnp.shape(up_total)} (per-worker upload sizes: ctx.pricing.star).")
        bits = (self.n * up_bits if up_total is None else up_total) + self.n * down_bits
        seconds = self.network.parameter_server(self.n, up_bits, down_bits)
        if self.online is not None:
            on, m, full = self._active()
            part = self.network.parameter_server(m, up_bits, down_bits, online=on)
            bits, seconds = jnp.where(full, bits, m * (up_bits + down_bits)), jnp.where(full, seconds, part)
        return Cost(bits, self.compute_time(key, batch) + seconds)

    def star(self, key, up_bits, down_bits, batch):
        """Star network: worker i uploads ``up_bits[i]`` bits ((n,) or scalar), the server broadcasts ``down_bits``
        (to the online workers, who alone upload, when ``online`` is set)."""
        up = jnp.broadcast_to(jnp.asarray(up_bits, jnp.float32), (self.n,))
        bits = jnp.sum(up) + self.n * down_bits
        seconds = self.network.star(up, down_bits)
        if self.online is not None:
            on, m, full = self._active()
            part_bits = jnp.sum(jnp.where(on, up, 0.0)) + m * down_bits
            bits = jnp.where(full, bits, part_bits)
            seconds = jnp.where(full, seconds, self.network.star(up, down_bits, online=on))
        return Cost(bits, self.compute_time(key, batch) + seconds)
