"""Result: clear errors for a metric it does not have."""

import numpy as np
import pytest

from jaxgossip.result import Result


def _result():
    return Result({"step": np.array([0, 10]), "loss": np.array([1.0, np.nan]), "suboptimality": np.array([0.5, 0.2])},
                  {"algorithm": {"name": "dpsgd"}})


def test_final_of_an_unknown_metric_lists_the_available_ones():
    """Result.final("subopt") raised a bare KeyError('subopt'); now a ValueError that names the metrics it has."""
    with pytest.raises(ValueError, match=r"no metric 'subopt'.*\['loss', 'step', 'suboptimality'\]"):
        _result().final("subopt")


def test_final_is_the_last_finite_value():
    r = _result()
    assert r.final("suboptimality") == 0.2 and r.final("loss") == 1.0 and r.final() == 1.0
