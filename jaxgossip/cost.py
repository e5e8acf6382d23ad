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


@struct.dataclass
class Network:
    """Alpha-beta network: ``latency`` seconds per message, ``bandwidth`` bytes per second (both traced).

    Defaults: 1 Gbps (1.25e8 B/s) and 0.1 ms latency. ``Network.preset(name)`` gives paper 000's conditions
    (:data:`NETWORK_PRESETS`); ``Network.from_rates(gbps=..., latency_ms=...)`` builds one from network units.
    """

    latency: float = 1e-4
    bandwidth: float = 1.25e8

    def __post_init__(self):
        _check_value("Network", "latency", self.latency)
        _check_value("Network", "bandwidth", self.bandwidth, strict=True)

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

    def message(self, bits):
        """alpha + B beta for one message of ``bits`` bits."""
        return self.latency + bits / 8.0 / self.bandwidth

    def parameter_server(self, n, up_bits, down_bits=None):
        """One server: n messages up and n down, one at a time: 2 n (alpha + B beta) when both are the same size."""
        down_bits = up_bits if down_bits is None else down_bits
        return n * self.message(up_bits) + n * self.message(down_bits)

    def allreduce(self, n, bits):
        """Ring AllReduce (or n-server PS): 2 (n - 1) alpha + 2 ((n - 1) / n) B beta."""
        return 2 * (n - 1) * self.latency + 2 * ((n - 1) / n) * bits / 8.0 / self.bandwidth

    def gossip(self, degree, bits):
        """Each worker sends its message to each of its ``degree`` neighbours, one at a time."""
        return degree * self.message(bits)

    def star(self, up_bits, down_bits):
        """One server receives worker i's message of ``up_bits[i]`` bits, one at a time, then sends ``down_bits`` to
        each of the n workers: sum_i (alpha + B_i beta) + n (alpha + B_down beta).

        Args:
          up_bits: (n,) bits of each worker's upload.
          down_bits: bits of the server's broadcast message (scalar).
        """
        up_bits = jnp.asarray(up_bits)
        return jnp.sum(self.message(up_bits)) + up_bits.shape[0] * self.message(down_bits)


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

    Attributes:
      network: the alpha-beta :class:`Network`.
      compute: the :class:`ComputeModel`.
      degrees: (n,) messages each worker sends per gossip round.
      n: static number of workers.
      receives: (n,) messages each worker receives per gossip round, or None (= ``degrees``).
    """

    network: Network
    compute: ComputeModel
    degrees: jax.Array  # (n,) messages each worker sends per gossip round (out-degrees)
    n: int = struct.field(pytree_node=False)
    receives: jax.Array | None = None  # (n,) messages each worker receives (in-degrees); None: the same as degrees

    def on(self, mixing) -> "Pricing":
        """This pricing on ``mixing``'s graph (its ``sends`` and ``receives``): the step's pricing, read from the same
        value as the step's mixing. A time-varying stack (a leading graph axis) gives its first graph, step 0's; a
        mixing that does not know its message counts leaves the pricing as it is."""
        sends, receives = getattr(mixing, "sends", None), getattr(mixing, "receives", None)
        if sends is None or receives is None:
            return self
        if sends.ndim > 1:
            sends, receives = sends[0], receives[0]
        return self.replace(degrees=sends, receives=receives)

    def gossip_bits(self, msg_bits):
        """Bits of one gossip round: every worker sends one message of ``msg_bits`` per out-edge."""
        return jnp.sum(self.degrees) * msg_bits

    def busiest(self):
        """Messages the busiest worker sends or receives in one gossip round: max(max out-degree, max in-degree)."""
        most = jnp.max(self.degrees)
        return most if self.receives is None else jnp.maximum(most, jnp.max(self.receives))

    def gossip_seconds(self, msg_bits):
        """Network seconds of one gossip round of ``msg_bits`` messages: busiest (alpha + B beta)."""
        return self.network.gossip(self.busiest(), msg_bits)

    def speeds(self, key):
        """(n,) speeds V_i,t of this step (samples per second)."""
        return self.compute.speeds(jax.random.fold_in(key, _COMPUTE_TAG), self.n)

    def worker_times(self, key, batch):
        """(n,) seconds each worker needs for ``batch`` samples at this step's speeds."""
        return batch / self.speeds(key)

    def compute_time(self, key, batch):
        """Seconds of a synchronous computation: the slowest worker's."""
        return jnp.max(self.worker_times(key, batch))

    def gossip(self, key, msg_bits, batch):
        """Every worker sends one message of ``msg_bits`` to each out-neighbour: sum_i out_i messages, and
        busiest (alpha + B beta) seconds after the slowest worker's computation."""
        return Cost(self.gossip_bits(msg_bits), self.compute_time(key, batch) + self.gossip_seconds(msg_bits))

    def gossip_deadline(self, deadline, msg_bits):
        """A gossip step whose computation always lasts ``deadline`` seconds (QuanTimed-DSGD: T_d + communication)."""
        return Cost(self.gossip_bits(msg_bits), deadline + self.gossip_seconds(msg_bits))

    def allreduce(self, key, msg_bits, batch):
        """Ring AllReduce of one vector of ``msg_bits``: each worker sends 2 (n - 1) / n of it."""
        bits = 2 * (self.n - 1) * msg_bits
        return Cost(bits, self.compute_time(key, batch) + self.network.allreduce(self.n, msg_bits))

    def parameter_server(self, key, up_bits, down_bits, batch):
        """n messages of ``up_bits`` to the server, n of ``down_bits`` back."""
        bits = self.n * (up_bits + down_bits)
        return Cost(bits, self.compute_time(key, batch) + self.network.parameter_server(self.n, up_bits, down_bits))

    def star(self, key, up_bits, down_bits, batch):
        """Star network: worker i uploads ``up_bits[i]`` bits ((n,) or scalar), the server broadcasts ``down_bits``."""
        up = jnp.broadcast_to(jnp.asarray(up_bits, jnp.float32), (self.n,))
        bits = jnp.sum(up) + self.n * down_bits
        return Cost(bits, self.compute_time(key, batch) + self.network.star(up, down_bits))
