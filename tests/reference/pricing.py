"""The cost of one step in NumPy: bits on the wire (all workers) and simulated seconds (alpha-beta network).

With alpha the latency of a message, beta = 1 / bandwidth seconds per byte and B the bytes of one message
(Liu & Zhang, Sec. 1.3, 3.1.2, 5.1; ALGORITHMS.md "Cost of an iteration"; Reisizadeh et al. 2019, Sec. 3):

* compute: worker i needs b / V_i,t seconds for its batch; a synchronous step waits for the slowest worker;
* gossip round on the step's own graph: worker j sends one message to each of its out-neighbours, and sends and
  receives one message at a time, so the round lasts max_i max(out_i, in_i) (alpha + B beta) and carries
  sum_j out_j B bits (a ring: 2 alpha + 2 B beta);
* ring AllReduce (or n servers): 2 (n - 1) alpha + 2 ((n - 1) / n) B beta, 2 (n - 1) B bits;
* one parameter server: n messages up and n down, one at a time: n (alpha + B_up beta) + n (alpha + B_down beta);
* a star whose uploads have their own sizes: sum_i (alpha + B_i beta) + n (alpha + B_down beta).
"""

from __future__ import annotations

import numpy as np

from reference.common import Graph, Network

__all__ = ["gossip", "allreduce", "parameter_server", "star"]


def gossip(graph: Graph, network: Network, round_bits, compute_seconds: float):
    """(bits, seconds) of rounds of gossip on ``graph``, round r sending one message of ``round_bits[r]`` bits on
    every edge, after a computation of ``compute_seconds``."""
    out, inn = graph.out_degree, graph.in_degree
    busiest = max(max(int(out[i]), int(inn[i])) for i in range(graph.n))
    bits = sum(int(out.sum()) * b for b in round_bits)
    seconds = compute_seconds + sum(busiest * network.message(b) for b in round_bits)
    return bits, seconds


def allreduce(n: int, network: Network, msg_bits: float, compute_seconds: float):
    bits = 2 * (n - 1) * msg_bits
    seconds = compute_seconds + 2 * (n - 1) * network.latency + 2 * ((n - 1) / n) * msg_bits / 8.0 / network.bandwidth
    return bits, seconds


def parameter_server(n: int, network: Network, up_bits: float, down_bits: float, compute_seconds: float):
    return n * (up_bits + down_bits), compute_seconds + n * network.message(up_bits) + n * network.message(down_bits)


def star(network: Network, up_bits, down_bits: float, compute_seconds: float):
    up = np.asarray(up_bits, np.float64)
    n = up.size
    seconds = compute_seconds + sum(network.message(b) for b in up) + n * network.message(down_bits)
    return float(up.sum()) + n * down_bits, seconds
