"""Models you can take away: the average model and every worker's as the user's own parameter pytree (with the
BatchNorm statistics), reproducing the run's accuracy under module.apply; saved beside the JSON and loaded back."""

import jax
import numpy as np
import pytest
from flax import linen as nn

import jaxgossip as jg
from jaxgossip.result import Result, models_path

N = 4


class TinyBN(nn.Module):
    """Dense -> BatchNorm -> ReLU -> Dense on the flattened digits: the smallest model with running statistics."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.reshape(x.shape[0], -1)
        x = nn.BatchNorm(use_running_average=not train)(nn.Dense(16)(x))
        return nn.Dense(10)(nn.relu(x))


@pytest.fixture(scope="module")
def problem():
    return jg.problems.from_flax(TinyBN(), "digits", n_workers=N, batch_size=8, standardize=True, seed=0)


@pytest.fixture(scope="module")
def res(problem):
    return jg.simulate(problem, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(N), steps=20, eval_every=10,
                       shard=False, metrics=["loss", "accuracy", "worker_accuracy"])


def _accuracy(params, state, problem):
    out = TinyBN().apply({"params": params, **state}, np.asarray(problem.test_x))
    return float(np.mean(np.argmax(np.asarray(out), -1) == np.asarray(problem.test_y)))


def test_average_model_reproduces_the_runs_accuracy(problem, res):
    params, state = res.average_model(), res.average_model_state()
    assert set(params) == {"Dense_0", "Dense_1", "BatchNorm_0"} and params["Dense_0"]["kernel"].shape == (64, 16)
    assert set(state) == {"batch_stats"} and state["batch_stats"]["BatchNorm_0"]["mean"].shape == (16,)
    assert isinstance(params["Dense_1"]["bias"], np.ndarray)  # host arrays, the user's own
    acc = _accuracy(params, state, problem)
    assert abs(acc - res.final("accuracy")) < 1e-6
    assert res.evaluate(problem)["accuracy"] == res.final("accuracy")  # still works
    # the run's statistics matter: the initial ones give another accuracy
    assert abs(_accuracy(params, {"batch_stats": problem.model_state["batch_stats"]}, problem) - acc) > 1e-3


def test_worker_models(problem, res):
    stacked = res.worker_models()
    leaves = jax.tree.leaves(stacked)
    assert all(a.shape[0] == N for a in leaves)
    mean = jax.tree.map(lambda a: a.mean(0), stacked)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), mean, res.average_model())
    for i in (0, N - 1):  # worker i's model with its own statistics: the run's per-worker accuracy
        params = jax.tree.map(lambda a: a[i], stacked)
        state = jax.tree.map(lambda a: np.asarray(a)[i], res.model_state)
        assert abs(_accuracy(params, state, problem) - res.metrics["worker_accuracy"][-1, i]) < 1e-6


def test_save_with_models_and_load(problem, res, tmp_path):
    path = str(tmp_path / "run.json")
    res.save(path, models=True)
    assert models_path(path) == str(tmp_path / "run.models.npz")
    back = Result.load(path)
    jax.tree.map(np.testing.assert_array_equal, back.average_model(), res.average_model())
    jax.tree.map(np.testing.assert_array_equal, back.model_state, jax.device_get(res.model_state))
    np.testing.assert_array_equal(back.state.x, np.asarray(res.state.x))
    assert back.evaluate(problem) == res.evaluate(problem)
    assert _accuracy(back.average_model(), back.average_model_state(), problem) == \
        _accuracy(res.average_model(), res.average_model_state(), problem)
    res.save(str(tmp_path / "plain.json"))  # without models: the metrics only, as before
    plain = Result.load(str(tmp_path / "plain.json"))
    assert plain.state is None and not (tmp_path / "plain.models.npz").exists()
    with pytest.raises(ValueError, match="no final models"):
        plain.average_model()
    with pytest.raises(ValueError, match="no final models"):
        plain.save(str(tmp_path / "again.json"), models=True)


def test_flat_models_come_back_as_vectors(tmp_path):
    problem = jg.problems.quadratic(n_workers=N, dim=5, seed=0)
    res = jg.simulate(problem, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(N), steps=10, eval_every=5, shard=False)
    X = np.asarray(res.state.x)
    np.testing.assert_allclose(res.average_model(), X.mean(0), rtol=1e-6)
    np.testing.assert_array_equal(res.worker_models(), X)
    assert res.average_model_state() is None
    res.save(str(tmp_path / "q.json"), models=True)
    np.testing.assert_array_equal(Result.load(str(tmp_path / "q.json")).worker_models(), X)


def test_nnx_models_load_with_the_problem(tmp_path):
    """flax nnx: the average model is the module's own Param state (nnx.merge reproduces the accuracy); a saved
    result restores that structure when given the problem."""
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.l1, self.bn = nnx.Linear(64, 8, rngs=rngs), nnx.BatchNorm(8, rngs=rngs)
            self.l2 = nnx.Linear(8, 10, rngs=rngs)

        def __call__(self, x):
            return self.l2(nnx.relu(self.bn(self.l1(x.reshape(x.shape[0], -1)))))

    module = Net(nnx.Rngs(0))
    problem = jg.problems.from_flax(module, "digits", n_workers=N, batch_size=8, standardize=True, seed=0)
    res = jg.simulate(problem, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(N), steps=5, eval_every=5, shard=False)
    graphdef, _, _ = nnx.split(module, nnx.Param, ...)
    model = nnx.merge(graphdef, res.average_model(), res.average_model_state())
    model.eval()
    out = np.asarray(model(np.asarray(problem.test_x)))
    assert abs(np.mean(np.argmax(out, -1) == np.asarray(problem.test_y)) - res.final("accuracy")) < 1e-6
    res.save(str(tmp_path / "nnx.json"), models=True)
    back = Result.load(str(tmp_path / "nnx.json"), problem=problem)
    assert jax.tree.structure(back.average_model()) == jax.tree.structure(res.average_model())
    assert back.evaluate(problem)["accuracy"] == res.evaluate(problem)["accuracy"]
