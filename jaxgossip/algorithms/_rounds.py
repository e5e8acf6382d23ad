"""Pricing of steps that gossip more than one message: each round is priced, bits and time.

A step that sends k messages to every neighbour (gradient tracking: the model and the tracker) costs the bits of all k
and the network time of all k rounds, ``sum_r busiest (alpha + B_r beta)`` (busiest: the most messages a worker sends
or receives in a round on the step's graph, the degree on a symmetric one), on top of one synchronous computation.
"""

from __future__ import annotations

from jaxgossip.cost import Cost

__all__ = ["gossip_rounds"]


def gossip_rounds(key, ctx, *msg_bits) -> Cost:
    """Cost of one step that runs ``len(msg_bits)`` gossip rounds, round r sending one message of ``msg_bits[r]`` bits
    from every worker to each neighbour: one computation (the slowest worker's batch) plus every round's network time.

    Args:
      key: the step's key (the compute model's speeds derive from it, as in ``ctx.pricing.gossip``).
      ctx: the step's :class:`~jaxgossip.algorithms.Context`.
      *msg_bits: bits of one message of each round (at least one).
    """
    if not msg_bits:
        raise ValueError("gossip_rounds: give the bits of at least one message.")
    pricing = ctx.pricing
    bits, seconds = pricing.gossip(key, msg_bits[0], ctx.problem.batch_size)
    for b in msg_bits[1:]:  # a static loop over the (few) rounds
        bits = bits + pricing.gossip_bits(b)
        seconds = seconds + pricing.gossip_seconds(b)
    return Cost(bits, seconds)
