"""Algorithms: one factory each, returning an :class:`Algorithm` (``jg.algorithms``); ``get(name, **kw)`` by name."""

from jaxgossip._registry import build
from jaxgossip.algorithms._base import Algorithm, Context, LocalOptimizer, direction, updates
from jaxgossip.algorithms.dpsgd import cpsgd, dpsgd, naive_compressed
from jaxgossip.algorithms.iade import aiade, iade, iade_sgd
from jaxgossip.algorithms.star_baselines import star_gd, star_nesterov, star_qgd
from jaxgossip.algorithms.choco import choco_sgd
from jaxgossip.algorithms.dcd import dcd_psgd
from jaxgossip.algorithms.deepsqueeze import deepsqueeze
from jaxgossip.algorithms.ecd import ecd_psgd
from jaxgossip.algorithms.csgd import csgd
from jaxgossip.algorithms.ecsgd import doublesqueeze, ec_sgd
from jaxgossip.algorithms.traffic import slides_vectors, vectors_exchanged
from jaxgossip.algorithms.quantimed import q_dsgd, quantimed_dsgd
from jaxgossip.algorithms.asynchronous import asgd, async_dsgd
from jaxgossip.algorithms.tracking import gradient_tracking
from jaxgossip.algorithms.exact_diffusion import d2, exact_diffusion
from jaxgossip.algorithms.ef21 import ef21
from jaxgossip.algorithms.beer import beer
from jaxgossip.algorithms.pushsum import sgp
from jaxgossip.algorithms.powergossip import powergossip
from jaxgossip.algorithms.adpsgd import ad_psgd

REGISTRY = {
    "iade": iade,
    "aiade": aiade,
    "iade_sgd": iade_sgd,
    "star_gd": star_gd,
    "star_nesterov": star_nesterov,
    "star_qgd": star_qgd,
    "async_dsgd": async_dsgd,
    "asgd": asgd,
    "csgd": csgd,
    "ec_sgd": ec_sgd,
    "doublesqueeze": doublesqueeze,
    "cpsgd": cpsgd,
    "dpsgd": dpsgd,
    "naive_compressed": naive_compressed,
    "dcd_psgd": dcd_psgd,
    "ecd_psgd": ecd_psgd,
    "choco_sgd": choco_sgd,
    "deepsqueeze": deepsqueeze,
    "q_dsgd": q_dsgd,
    "quantimed_dsgd": quantimed_dsgd,
    "gradient_tracking": gradient_tracking,
    "exact_diffusion": exact_diffusion,
    "d2": d2,
    "ef21": ef21,
    "beer": beer,
    "sgp": sgp,
    "powergossip": powergossip,
    "ad_psgd": ad_psgd,
}


def get(name: str, **kwargs) -> Algorithm:
    """Build an algorithm by name, e.g. ``get("dpsgd", lr=0.05)``."""
    return build("algorithm", REGISTRY, name, kwargs)


__all__ = ["Algorithm", "Context", "LocalOptimizer", "direction", "updates", "get", "REGISTRY", *REGISTRY]
