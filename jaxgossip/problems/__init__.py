"""Problems: per-worker data, a loss, and a stochastic-gradient oracle for the whole stack (``jg.problems``)."""

from jaxgossip._registry import build
from jaxgossip.problems import losses
from jaxgossip.problems._base import METRICS, Problem, ProblemSpec
from jaxgossip.problems.data import DATASETS, PARTITIONS, load, partition
from jaxgossip.problems.layout import Layout, Segment
from jaxgossip.problems.models import MLP, Linear, logistic_regression, mlp, quadratic
from jaxgossip.problems.networks import check_problem, from_flax, from_function
from jaxgossip.problems.precision import as_float64

REGISTRY = {
    "quadratic": quadratic,
    "logistic_regression": logistic_regression,
    "mlp": mlp,
}


def get(name: str, **kwargs) -> Problem:
    """Build a problem by name (for the CLI and config files)."""
    return build("problem", REGISTRY, name, kwargs)


__all__ = ["Problem", "ProblemSpec", "METRICS", "Layout", "Segment", "losses", "from_flax", "from_function",
           "check_problem", "as_float64", "DATASETS", "PARTITIONS", "load", "partition", "Linear", "MLP", "get",
           "REGISTRY", *REGISTRY]
