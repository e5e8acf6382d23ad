"""Compressors: pure functions with explicit keys and honest bit counts (``jg.compressors``)."""

from jaxgossip._registry import build
from jaxgossip.compressors._base import Compressor, as_given, compress_rows, worker_keys
from jaxgossip.compressors.bounded import bounded
from jaxgossip.compressors.quantize import identity, quantize
from jaxgossip.compressors.sign import sign
from jaxgossip.compressors.sparse import random_k, sparsify, top_k
from jaxgossip.compressors.clip import clip_low_bits
from jaxgossip.compressors.error_feedback import ErrorFeedback, with_error_feedback
from jaxgossip.compressors.layerwise import Layerwise, layerwise
from jaxgossip.compressors.low_precision import low_precision
from jaxgossip.compressors.qsgd import qsgd
from jaxgossip.compressors.terngrad import terngrad

REGISTRY = {
    "bounded": bounded,
    "identity": identity,
    "quantize": quantize,
    "sign": sign,
    "sparsify": sparsify,
    "random_k": random_k,
    "top_k": top_k,
    "qsgd": qsgd,
    "low_precision": low_precision,
    "terngrad": terngrad,
    "clip_low_bits": clip_low_bits,
}
# with_error_feedback is not in REGISTRY: it returns an ErrorFeedback (a stateful combinator), not a Compressor, and no
# algorithm takes one as its compressor; the error-compensated algorithms (ec_sgd, doublesqueeze, deepsqueeze) apply
# error feedback themselves to the plain compressor they are given.


def get(name: str, **kwargs) -> Compressor:
    """Build a compressor by name (for the CLI and config files)."""
    return build("compressor", REGISTRY, name, kwargs)


__all__ = ["Compressor", "as_given", "compress_rows", "worker_keys", "get", "REGISTRY", *REGISTRY, "layerwise", "Layerwise",
           "ErrorFeedback",
           "with_error_feedback"]
