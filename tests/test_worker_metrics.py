"""Per-worker metrics: (evaluations x n) arrays that average to the existing means, a long pandas form with a worker
column, a band over workers in the plots, sweeps, and save/load of the 2-D arrays."""

import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip.result import Result

N = 4
METRICS = ["loss", "accuracy", "worker_loss", "worker_accuracy"]


@pytest.fixture(scope="module")
def problem():
    return jg.problems.logistic_regression("digits", n_workers=N, partition="dirichlet", alpha=0.5, batch_size=8,
                                           seed=0, reg=1e-3, solve_optimum=False)


@pytest.fixture(scope="module")
def res(problem):
    return jg.simulate(problem, jg.algorithms.dpsgd(lr=0.3), jg.topology.ring(N), steps=30, eval_every=10,
                       shard=False, metrics=METRICS)


def _numpy_objective(problem, x):
    """f(x) = (1/n) sum_j (1/m_j) sum_s CE(softmax([a_s, 1] W), y_s) + reg/2 ||x||^2 in float64 NumPy (x is the
    (p + 1, k) matrix W, bias row last, row-major)."""
    data_x, data_y, counts = (np.asarray(a) for a in (problem.data_x, problem.data_y, problem.counts))
    W = np.asarray(x, np.float64).reshape(data_x.shape[-1], -1)
    total = 0.0
    for j in range(problem.n):
        z = data_x[j, : counts[j]].astype(np.float64) @ W
        z = z - z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        total += -np.mean(logp[np.arange(counts[j]), data_y[j, : counts[j]]])
    return total / problem.n + 0.5 * float(problem.reg) * float(np.dot(np.ravel(x), np.ravel(x)))


def test_shapes_and_means(res):
    evals = len(res.metrics["step"])
    assert res.metrics["worker_loss"].shape == (evals, N) and res.metrics["worker_accuracy"].shape == (evals, N)
    acc = res.metrics["worker_accuracy"]
    np.testing.assert_allclose(acc.mean(1), res.metrics["worker_accuracy_mean"], rtol=1e-6)  # float32 mean on device
    np.testing.assert_array_equal(acc.min(1), res.metrics["worker_accuracy_min"])
    wl = res.metrics["worker_loss"]
    np.testing.assert_allclose(wl[0], res.metrics["loss"][0], rtol=1e-6)  # step 0: every worker at x0 = xbar
    assert np.all(wl.mean(1) >= res.metrics["loss"] * (1 - 1e-6))  # Jensen: mean_i f(x_i) >= f(xbar), f convex
    assert np.ptp(wl[-1]) > 0  # the workers differ after steps on a heterogeneous split


def test_worker_loss_is_the_global_objective_at_each_workers_model(problem, res):
    X = np.asarray(res.state.x)
    want = np.array([_numpy_objective(problem, X[i]) for i in range(N)])
    np.testing.assert_allclose(res.metrics["worker_loss"][-1], want, rtol=2e-5)
    np.testing.assert_allclose(res.metrics["worker_loss"][-1].mean(), want.mean(), rtol=2e-5)
    np.testing.assert_allclose(res.metrics["loss"][-1], _numpy_objective(problem, X.mean(0)), rtol=2e-5)


def test_default_runs_keep_their_columns(problem):
    """Without naming them, a run reports worker_accuracy's mean and minimum only, as before (no 2-D arrays)."""
    r = jg.simulate(problem, jg.algorithms.dpsgd(lr=0.3), jg.topology.ring(N), steps=10, eval_every=10, shard=False)
    assert "worker_accuracy_mean" in r.metrics and "worker_accuracy" not in r.metrics
    assert "worker_loss" not in r.metrics
    assert all(np.ndim(v) == 1 for v in r.metrics.values())


def test_long_pandas_form(res):
    wide = res.to_pandas()
    assert "worker_loss" not in wide and len(wide) == len(res.metrics["step"])
    df = res.to_pandas(long=True)
    evals = len(res.metrics["step"])
    assert len(df) == evals * N
    assert {"label", "seed", "step", "worker", "worker_loss", "worker_accuracy", "bits", "sim_time"} <= set(df)
    row = df[(df["step"] == res.metrics["step"][-1]) & (df["worker"] == 2)]
    assert row["worker_loss"].item() == res.metrics["worker_loss"][-1, 2]
    assert df.groupby("step")["worker_accuracy"].min().to_numpy().tolist() == \
        res.metrics["worker_accuracy_min"].tolist()
    with pytest.raises(ValueError, match="no per-worker metrics"):
        Result({"step": np.arange(2), "loss": np.ones(2)}, {}).to_pandas(long=True)
    with pytest.raises(ValueError, match="one value per worker"):
        res.final("worker_loss")


def test_save_and_load_roundtrip_the_2d_arrays(res, tmp_path):
    res.save(tmp_path / "r.json")
    back = Result.load(tmp_path / "r.json")
    for k, v in res.metrics.items():
        assert back.metrics[k].shape == np.shape(v)
        np.testing.assert_array_equal(back.metrics[k], v)


def test_band_over_workers(res):
    import matplotlib.pyplot as plt

    ax = res.plot(y="worker_loss", band="workers")
    assert len(ax.collections) == 1  # the band
    np.testing.assert_allclose(ax.lines[0].get_ydata(), res.metrics["worker_loss"].mean(1))
    verts = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert np.isclose(verts.min(), res.metrics["worker_loss"].min()) and np.isclose(
        verts.max(), res.metrics["worker_loss"].max())
    with pytest.raises(ValueError, match="band='workers' needs a per-worker metric"):
        res.plot(y="loss", band="workers")
    with pytest.raises(ValueError, match="band='workers'"):
        res.plot(y="worker_loss")
    plt.close("all")


def test_sweep_with_per_worker_metrics(problem, res):
    df = jg.sweep(problem, jg.algorithms.dpsgd(lr=0.3), jg.topology.ring(N), steps=30, eval_every=10,
                  metrics=METRICS, grid={"lr": [0.3, 0.1]})
    cols = [f"worker_loss[{i}]" for i in range(N)]
    assert set(cols) <= set(df) and f"worker_accuracy[{N - 1}]" in df and "worker_loss" not in df
    mine = df[df["hp.lr"] == 0.3]
    np.testing.assert_allclose(mine[cols].to_numpy(), res.metrics["worker_loss"], rtol=1e-5)  # sweep: float32 rounding
    with pytest.raises(ValueError, match="sweep: unknown metrics"):
        jg.sweep(problem, jg.algorithms.dpsgd(lr=0.3), jg.topology.ring(N), steps=30, metrics=["worker_los"])
