"""The zhao2022-beer reproduction at size="test": every verdict holds over two seeds; frame and figure."""

import warnings

import pytest

import jaxgossip as jg

pytestmark = pytest.mark.optimized  # execution-bound: compiled with XLA's optimizations (tests/conftest.py)


def test_beer_reproduction_verdicts_hold():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the CHOCO consensus grid stays within the theory module's advice
        rep = jg.reproduce.run("zhao2022-beer", size="test")
    assert rep.holds, rep.verdicts.to_string()
    assert len(rep.verdicts) == 4
    f = rep.frame
    assert set(f.seed) == {0, 1} and f.method.str.startswith("CHOCO").sum() > 0
    assert not f.diverged.any()
    assert rep.figure is not None and len(rep.figure.axes) == 2
