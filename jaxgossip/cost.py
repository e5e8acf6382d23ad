"""What a step costs: bits on the wire and simulated seconds (alpha-beta network + compute-time model).

Network (Liu & Zhang, Sec. 1.3; ALGORITHMS.md "Cost of an iteration"), with alpha the latency of one message, beta the
seconds per byte (1 / bandwidth) and B the bytes of one message, each worker sending and receiving one message at a time:

* parameter server (one server):       2 n (alpha + B beta)
* ring AllReduce / multi-server PS:     2 (n - 1) alpha + 2 ((n - 1) / n) B beta
* gossip:                               deg (alpha + B beta) (the busiest worker's degree; ring: 2 alpha + 2 B beta)

Compute: worker i needs b / V_i,t seconds for a batch of b samples at speed V_i,t (samples per second); a synchronous
step waits for the slowest worker it depends on.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

__all__ = ["Network", "ComputeModel", "Cost", "Pricing", "DISTRIBUTIONS"]

DISTRIBUTIONS = ("constant", "uniform", "exponential", "shifted_exponential")


class Cost(NamedTuple):
    """What one step sent and how long it took: total bits over all workers, simulated seconds."""

    bits: jax.Array
    seconds: jax.Array


@struct.dataclass
class Network:
    """Alpha-beta network: ``latency`` seconds per message, ``bandwidth`` bytes per second (both traced).

    Defaults: 1 Gbps (1.25e8 B/s) and 0.1 ms latency.
    """

    latency: float = 1e-4
    bandwidth: float = 1.25e8

    def __post_init__(self):
        for arg in ("latency", "bandwidth"):
            v = getattr(self, arg)
            if isinstance(v, (int, float)) and (not np.isfinite(v) or v < 0 or (arg == "bandwidth" and v == 0)):
                raise ValueError(f"Network: {arg} must be {'> 0' if arg == 'bandwidth' else '>= 0'}, got {v}.")

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


@struct.dataclass
class ComputeModel:
    """Per-worker, per-step computation speeds V_i,t (samples per second).

    Args:
      speed: mean speed (samples per second) for ``"constant"`` / ``"exponential"``; ignored by ``"uniform"``.
      distribution: ``"constant"``, ``"uniform"`` (on [low, high]), ``"exponential"`` (time per sample exponential
        with mean 1 / speed), ``"shifted_exponential"`` (time per sample = shift + Exp(1 / speed)).
      low, high: bounds of the uniform speed (Reisizadeh et al. 2019 use Uniform(10, 90)).
      shift: the minimum time per sample of the shifted exponential.
    """

    speed: float = 1000.0
    low: float = 10.0
    high: float = 90.0
    shift: float = 0.0
    distribution: str = struct.field(pytree_node=False, default="constant")

    def __post_init__(self):
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"ComputeModel: distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}.")
        if isinstance(self.speed, (int, float)) and not self.speed > 0:
            raise ValueError(f"ComputeModel: speed must be > 0, got {self.speed}.")
        if self.distribution == "uniform" and isinstance(self.low, (int, float)) and not 0 < self.low <= self.high:
            raise ValueError(f"ComputeModel: uniform speeds need 0 < low <= high, got low={self.low}, high={self.high}.")

    def speeds(self, key, n):
        """(n,) speeds V_i,t in samples per second."""
        if self.distribution == "constant":
            return jnp.full((n,), self.speed, jnp.float32)
        if self.distribution == "uniform":
            return jax.random.uniform(key, (n,), jnp.float32, self.low, self.high)
        per_sample = jax.random.exponential(key, (n,), jnp.float32) / self.speed
        if self.distribution == "shifted_exponential":
            per_sample = per_sample + self.shift
        return 1.0 / per_sample

    def times(self, key, n, batch):
        """(n,) seconds each worker needs for ``batch`` samples."""
        return batch / self.speeds(key, n)

    def synchronous(self, key, n, batch):
        """Seconds of a synchronous step: the slowest worker's time."""
        return jnp.max(self.times(key, n, batch))


_COMPUTE_TAG = 0x5EED


@struct.dataclass
class Pricing:
    """Prices a step's messages and computation (built by ``simulate`` from the topology, network and compute model)."""

    network: Network
    compute: ComputeModel
    degrees: jax.Array  # (n,) neighbour counts
    n: int = struct.field(pytree_node=False)

    def compute_time(self, key, batch):
        return self.compute.synchronous(jax.random.fold_in(key, _COMPUTE_TAG), self.n, batch)

    def gossip(self, key, msg_bits, batch):
        """Every worker sends one message of ``msg_bits`` to each neighbour."""
        bits = jnp.sum(self.degrees) * msg_bits
        return Cost(bits, self.compute_time(key, batch) + self.network.gossip(jnp.max(self.degrees), msg_bits))

    def allreduce(self, key, msg_bits, batch):
        """Ring AllReduce of one vector of ``msg_bits``: each worker sends 2 (n - 1) / n of it."""
        bits = 2 * (self.n - 1) * msg_bits
        return Cost(bits, self.compute_time(key, batch) + self.network.allreduce(self.n, msg_bits))

    def parameter_server(self, key, up_bits, down_bits, batch):
        """n messages of ``up_bits`` to the server, n of ``down_bits`` back."""
        bits = self.n * (up_bits + down_bits)
        return Cost(bits, self.compute_time(key, batch) + self.network.parameter_server(self.n, up_bits, down_bits))
