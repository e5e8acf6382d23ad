"""Live logging: callbacks see every evaluation with the values Result.metrics holds, without changing the numbers;
the CSV and TensorBoard loggers hold the curves; sweep and compare pass callbacks through; clear errors."""

import numpy as np
import pandas as pd
import pytest

import jaxgossip as jg
from jaxgossip.simulate import TRACE_COUNT, prepare, record_run_inputs, run_prepared

N = 4


@pytest.fixture(scope="module")
def problem():
    return jg.problems.logistic_regression("digits", n_workers=N, batch_size=8, seed=0, solve_optimum=False)


def _run(problem, **kw):
    return jg.simulate(problem, jg.algorithms.dpsgd(lr=0.2), jg.topology.ring(N), steps=40, eval_every=5,
                       shard=False, **kw)


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, step, metrics):
        self.calls.append((step, metrics))


def _check_seen(rec, res):
    steps = [s for s, _ in rec.calls]
    np.testing.assert_array_equal(steps, res.metrics["step"])  # every evaluation, in order, step 0 included
    for j, (_, m) in enumerate(rec.calls):
        assert set(m) == set(res.metrics) - {"step"}
        for k, v in m.items():
            np.testing.assert_array_equal(v, res.metrics[k][j])  # exactly: float64 values, NaN where NaN


def test_callback_sees_every_evaluation_and_the_numbers_do_not_change(problem):
    rec = Recorder()
    res = _run(problem, callbacks=[rec], metrics=["loss", "consensus", "accuracy", "worker_loss"])
    _check_seen(rec, res)
    assert rec.calls[0][1]["worker_loss"].shape == (N,)
    traced = TRACE_COUNT["chunk"]
    plain = _run(problem, metrics=["loss", "consensus", "accuracy", "worker_loss"])
    assert TRACE_COUNT["chunk"] == traced  # the same compiled program with and without callbacks
    for k in plain.metrics:
        np.testing.assert_array_equal(plain.metrics[k], res.metrics[k])


def test_callbacks_see_each_chunk_as_it_returns(problem):
    """Several compiled chunks (two evaluations each): the calls after each chunk, the last ones before the run
    returns; the numbers equal a run in one chunk."""
    order = []
    rec = Recorder()
    prep = prepare(problem, jg.algorithms.dpsgd(lr=0.2), jg.topology.ring(N), steps=40, eval_every=5, shard=False)
    record_run_inputs(prep)
    res = run_prepared(prep, chunk_evals=2, callbacks=[rec],
                       on_chunk=lambda carry, m0, chunks: order.append(len(rec.calls)))
    _check_seen(rec, res)
    assert order == [0, 3, 5, 7]  # before each chunk's calls: 1 + 2 evaluations after the first chunk, 2 after each
    one = _run(problem)
    for k in one.metrics:
        np.testing.assert_array_equal(one.metrics[k], res.metrics[k])


def test_a_diverged_run_calls_until_it_stops(problem):
    rec = Recorder()
    res = jg.simulate(problem, jg.algorithms.dpsgd(lr=1e4), jg.topology.ring(N), steps=40, eval_every=5,
                      shard=False, callbacks=rec)
    assert res.diverged
    assert len(rec.calls) >= 2
    for j, (step, m) in enumerate(rec.calls):
        assert step == res.metrics["step"][j]
        np.testing.assert_array_equal(m["loss"], res.metrics["loss"][j])


def test_a_raising_callback_names_itself_and_the_step(problem):
    def broken(step, metrics):
        if step == 10:
            raise KeyError("no such panel")

    with pytest.raises(RuntimeError, match=r"callback .*broken.* raised KeyError at step 10: 'no such panel'"):
        _run(problem, callbacks=[broken])


@pytest.mark.parametrize("bad", ["loss", [print, 3], {"a": print}])
def test_callbacks_that_are_not_callables_are_refused_before_compiling(problem, bad):
    before = TRACE_COUNT["chunk"]
    with pytest.raises(ValueError, match="callbacks"):
        _run(problem, callbacks=bad)
    assert TRACE_COUNT["chunk"] == before


def test_csv_logger_holds_the_values(problem, tmp_path):
    path = tmp_path / "logs" / "run.csv"
    res = _run(problem, callbacks=[jg.loggers.CSV(path)], metrics=["loss", "worker_loss"])
    df = pd.read_csv(path)
    assert list(df.columns) == ["step", "metric", "value"]
    wide = df.pivot(index="step", columns="metric", values="value")
    np.testing.assert_array_equal(wide.index, res.metrics["step"])
    np.testing.assert_array_equal(wide["loss"], res.metrics["loss"])
    np.testing.assert_array_equal(wide["bits"], res.metrics["bits"])
    for i in range(N):
        np.testing.assert_array_equal(wide[f"worker_loss[{i}]"], res.metrics["worker_loss"][:, i])


def test_tensorboard_event_files_hold_the_curves(problem, tmp_path):
    with jg.loggers.TensorBoard(tmp_path / "tb") as tb:
        res = _run(problem, callbacks=[tb], metrics=["loss", "consensus", "worker_loss"])
    curves = jg.loggers.read_tensorboard(tmp_path / "tb")
    for k in ("loss", "consensus", "bits", "sim_time"):
        steps, values = curves[k]
        np.testing.assert_array_equal(steps, res.metrics["step"])
        np.testing.assert_array_equal(values, res.metrics[k].astype(np.float32))  # TensorBoard stores float32
    steps, values = curves[f"worker_loss/{N - 1}"]
    np.testing.assert_array_equal(values, res.metrics["worker_loss"][:, N - 1].astype(np.float32))


def test_sweep_and_compare_pass_callbacks_through(problem):
    rec = Recorder()
    df = jg.sweep(problem, {"dpsgd": jg.algorithms.dpsgd(lr=0.2)}, jg.topology.ring(N), steps=20, eval_every=5,
                  grid={"lr": [0.1, 0.2]}, seeds=[0, 1], callbacks=[rec])
    steps = sorted(df["step"].unique())
    assert [s for s, _ in rec.calls] == steps  # one batch: one call per evaluation with all four configurations
    names = {k.rsplit("/", 1)[0] for k in rec.calls[-1][1]}
    assert names == {f"dpsgd/lr={lr}/seed={s}" for lr in (0.1, 0.2) for s in (0, 1)}
    for step, m in rec.calls:
        for _, row in df[df["step"] == step].iterrows():
            name = f"dpsgd/lr={row['hp.lr']}/seed={row['seed']}"
            assert m[f"{name}/loss"] == row["loss"] and m[f"{name}/bits"] == row["bits"]
    rec = Recorder()
    jg.compare(problem, {"D-PSGD": (jg.algorithms.dpsgd(lr=0.2), {"lr": [0.1, 0.2]})}, jg.topology.ring(N),
               steps=20, eval_every=5, seeds=[0, 1], callbacks=[rec])  # the sweep's batch: its compiled program
    assert [s for s, _ in rec.calls] == steps and "D-PSGD/lr=0.1/seed=1/loss" in rec.calls[0][1]
    with pytest.raises(ValueError, match="compare: callbacks"):
        jg.compare(problem, {"D-PSGD": jg.algorithms.dpsgd(lr=0.2)}, jg.topology.ring(N), steps=20, seeds=[0],
                   callbacks=3)
