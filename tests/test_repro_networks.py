"""The network reproductions (tang2018-resnet, reisizadeh2019-nn, deepsqueeze-resnet) at size="test" over two seeds;
the paper size's clear error when its data are missing; the CLI's --data-dir; the time estimate."""

import io
import time

import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip import cli
from jaxgossip.reproduce import _networks

NAMES = ("tang2018-resnet", "reisizadeh2019-nn", "deepsqueeze-resnet")


@pytest.fixture(scope="module", params=[pytest.param(n, marks=pytest.mark.optimized) if n == "deepsqueeze-resnet" else n
                                        for n in NAMES])  # deepsqueeze-resnet is execution-bound (tests/conftest.py)
def rep(request):
    return jg.reproduce.run(request.param, size="test", seeds=(0, 1))


def test_claims_hold_at_test_size(rep):
    failed = rep.verdicts[~rep.verdicts["holds"].astype(bool)]
    assert rep.holds, f"{rep.name}: claims that do not hold:\n{failed.to_string()}"


def test_verdict_table_and_frame(rep):
    assert list(rep.verdicts.columns) == ["claim", "measured", "holds"]
    assert len(rep.verdicts) >= 2 and rep.verdicts["holds"].dtype == bool
    curves = rep.frame[rep.frame["kind"] == "curve"] if "kind" in rep.frame else rep.frame
    for col in ("epoch", "sim_time", "loss", "seed", "label"):
        assert col in curves.columns, col
    assert set(curves["seed"]) == {0, 1}
    first = curves[(curves["label"] == curves["label"].iloc[0]) & (curves["seed"] == 0)]
    if "task" in first:
        first = first[first["task"] == first["task"].iloc[0]]
    assert len(first) > 2 and np.all(np.diff(first["epoch"].to_numpy(float)) > 0)
    assert rep.figure is not None


@pytest.mark.parametrize("name", NAMES)
def test_paper_size_without_data_is_a_clear_error_before_compiling(name, tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="data_dir"):
        jg.reproduce.run(name, size="paper", seeds=(0,))
    with pytest.raises(FileNotFoundError, match=r"data_batch_1|train-images-idx3-ubyte"):
        jg.reproduce.run(name, size="paper", seeds=(0,), data_dir=str(tmp_path / "nonexistent"))
    assert time.perf_counter() - t0 < 5.0  # nothing compiled


def test_cli_data_dir_missing_files(capsys):
    code = cli.main(["reproduce", "tang2018-resnet", "--size", "paper", "--data-dir", "/nonexistent"])
    err = capsys.readouterr().err
    assert code != 0
    assert "/nonexistent" in err and "data_batch_1" in err


def test_cli_data_dir_refused_by_a_reproduction_without_it(capsys):
    assert cli.main(["reproduce", "tang2018-fig1", "--size", "test", "--data-dir", "/tmp"]) == 2
    assert "--data-dir is not used" in capsys.readouterr().err


def test_estimate_seconds_prints_and_returns_a_positive_number():
    prob = jg.problems.from_flax(jg.models.MLP(hidden=(4,)), "digits", n_workers=4, batch_size=4)
    out = io.StringIO()
    est = _networks.estimate_seconds(prob, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(4), steps=1000, runs=6,
                                     configurations=3, probe_steps=2, file=out)
    line = out.getvalue()
    assert est > 0 and np.isfinite(est)
    assert "estimated: ~" in line and "on this machine (6 runs of 1000 steps," in line and "s/step" in line
    out = io.StringIO()
    est2 = _networks.estimate_seconds(prob, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(4), steps=1000, runs=6,
                                      evals=50, metrics=["loss", "accuracy"], probe_steps=2, file=out)
    assert est2 > 0 and "per evaluation x 51" in out.getvalue()


def test_reprice_keeps_the_run_network_time():
    prob = jg.problems.from_flax(jg.models.MLP(hidden=(4,)), "digits", n_workers=4, batch_size=4)
    topo = jg.topology.ring(4)
    nets = {"a": jg.Network(latency=1e-3, bandwidth=1e6), "b": jg.Network(latency=2e-2, bandwidth=1e5)}
    frame, _ = _networks.run_grid(prob, topo, [("D-PSGD", jg.algorithms.dpsgd(lr=0.1)),
                                               ("AR", jg.algorithms.cpsgd(lr=0.1))], 20, 5, (0,), network=nets["a"])
    out = _networks.reprice(frame, topo, nets, nets["a"], allreduce_labels=("AR",))
    np.testing.assert_allclose(out["sim_time_a"], out["sim_time"], rtol=1e-5, atol=1e-9)
    for label in ("D-PSGD", "AR"):  # the slower network, priced by simulate itself, gives the same times
        algo = dict(frame_algos())[label]
        r = jg.simulate(prob, algo, topo, steps=20, eval_every=5, seed=0, network=nets["b"])
        np.testing.assert_allclose(out[out["label"] == label]["sim_time_b"], r.metrics["sim_time"], rtol=1e-4)


def frame_algos():
    return [("D-PSGD", jg.algorithms.dpsgd(lr=0.1)), ("AR", jg.algorithms.cpsgd(lr=0.1))]
