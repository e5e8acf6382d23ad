"""How many full vectors a centralized iteration exchanges, counted as the DoubleSqueeze slides count them.

The slides compare three parameter-server schemes over N workers, c being the compressed size as a fraction of a
float32 message (``compressor.ratio(d)``): standard SGD exchanges 2N full vectors per iteration (N up, N down), single
compression N(1 + c), double compression (DoubleSqueeze, CSGD eq. 3.2) 2cN. A ring AllReduce moves 2(N - 1) vector
messages' worth of traffic (each worker sends 2 (N - 1) / N of its vector). These counts are the simulated ``bits``
metric divided by 32 d, so a test can hold the two against each other.
"""

from __future__ import annotations

from jaxgossip.algorithms.csgd import _step_allreduce as _csgd_ring
from jaxgossip.algorithms.csgd import _step_ps as _csgd_ps
from jaxgossip.algorithms.csgd import _step_ps_multi as _csgd_ps_multi
from jaxgossip.algorithms.csgd import partition_message_bits, ring_message_bits
from jaxgossip.algorithms.dpsgd import _cpsgd_step_allreduce, _cpsgd_step_ps
from jaxgossip.algorithms.ecsgd import _step_double, _step_single
from jaxgossip.algorithms._base import Algorithm
from jaxgossip.compressors._base import FLOAT_BITS

__all__ = ["vectors_exchanged", "slides_vectors", "SCHEMES"]

SCHEMES = ("standard", "single", "double")


def slides_vectors(scheme: str, n: int, c: float) -> float:
    """The slides' count of full vectors per iteration: 2N, N(1 + c) or 2cN."""
    if scheme not in SCHEMES:
        raise ValueError(f"slides_vectors: scheme must be one of {SCHEMES}, got {scheme!r}.")
    return {"standard": 2.0 * n, "single": n * (1.0 + c), "double": 2.0 * c * n}[scheme]


def _ratio(algo: Algorithm, d: int) -> float:
    return float(algo.hyper["compressor"].ratio(d))


def vectors_exchanged(algo: Algorithm, n: int, d: int) -> float:
    """Full d-vectors' worth of traffic one iteration of ``algo`` sends over n workers (its bits / (32 d)).

    Args:
      algo: a centralized algorithm: ``cpsgd``, ``csgd`` (any form), ``ec_sgd`` / ``doublesqueeze``.
      n: number of workers N.
      d: number of parameters.

    Returns:
      2N (C-PSGD on a parameter server), N(1 + c) (single compression), 2cN (double compression; CSGD with
      ``servers="single"``), 2(N - 1) times the vector's compressed fraction for the ring-AllReduce forms and the
      multi-server parameter server (CSGD's default for eq. 3.2).
    """
    step = algo.step_fn
    if step is _cpsgd_step_ps:
        return slides_vectors("standard", n, 1.0)
    if step is _cpsgd_step_allreduce:
        return 2.0 * (n - 1)
    if step in (_csgd_ps, _step_double):
        return slides_vectors("double", n, _ratio(algo, d))
    if step is _step_single:
        return slides_vectors("single", n, _ratio(algo, d))
    if step is _csgd_ring:
        comp = algo.hyper["compressor"]
        return 2.0 * (n - 1) * float(ring_message_bits(comp, d, n)) / (FLOAT_BITS * d)
    if step is _csgd_ps_multi:  # multi-server PS: n - 1 compressed partitions up and n - 1 down per worker
        comp = algo.hyper["compressor"]
        return 2.0 * (n - 1) * float(partition_message_bits(comp, d, n)) / (FLOAT_BITS * d)
    raise ValueError(f"vectors_exchanged: algo must be cpsgd, csgd, ec_sgd or doublesqueeze, got {algo.name!r}.")
