"""Evaluating a stateful model after a run (issue 22, item 4): ``res.evaluate(problem)`` uses the run's final models
and BatchNorm statistics and gives the run's last reported numbers; ``problem.evaluate(X)`` on a model with state and
no bound state refuses instead of using the initial statistics."""

import jax
import numpy as np
import pytest
from flax import linen as nn

import jaxgossip as jg
from jaxgossip.result import Result

N = 4


class TinyBN(nn.Module):
    """Dense -> BatchNorm -> ReLU -> Dense on the flattened digits: the smallest model with running statistics."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Dense(8)(x.reshape(x.shape[0], -1))
        x = nn.BatchNorm(use_running_average=not train, momentum=0.5)(x)
        return nn.Dense(10)(nn.relu(x))


METRICS = ("loss", "test_loss", "accuracy", "consensus")
evaluate = jax.jit(lambda problem, X: problem.evaluate(X))  # one compiled evaluation (op by op is slow for a network)


@pytest.fixture(scope="module")
def run():
    problem = jg.problems.from_flax(TinyBN(), "digits", n_workers=N, batch_size=16, standardize=True, seed=0)
    problem = problem.replace(metrics=METRICS)
    res = jg.simulate(problem, jg.algorithms.dpsgd(lr=0.2), jg.topology.ring(N), steps=20, eval_every=10)
    return problem, res


def test_result_evaluate_gives_the_runs_final_numbers(run):
    problem, res = run
    ev = res.evaluate(problem)
    assert ev["accuracy"] == res.final("accuracy")  # a count over the test set: exact
    for k in ("loss", "test_loss", "consensus"):
        assert ev[k] == pytest.approx(res.final(k), rel=1e-5), k
    # the initial statistics give other numbers: what problem.evaluate(res.state.x) silently returned before
    initial = evaluate(problem.replace(worker_state=problem.stacked_state()), res.state.x)
    assert abs(float(initial["loss"]) - ev["loss"]) > 1e-3
    bound = evaluate(problem.replace(worker_state=res.model_state), res.state.x)  # the documented explicit binding
    assert float(bound["accuracy"]) == ev["accuracy"]


def test_problem_evaluate_refuses_a_stateful_model_without_its_state(run):
    problem, res = run
    with pytest.raises(ValueError, match=r"model state \(BatchNorm statistics\) and none is bound.*res\.evaluate\("
                                         r"problem\)"):
        problem.evaluate(res.state.x)


def test_result_evaluate_refuses_what_it_cannot_evaluate_honestly(run, tmp_path):
    problem, res = run
    other = jg.problems.from_flax(TinyBN(), "digits", n_workers=N, batch_size=16, standardize=True, seed=1)
    with pytest.raises(ValueError, match=r"problem is not the run's \(.*train"):
        res.evaluate(other)
    res.save(str(tmp_path / "r.json"))
    with pytest.raises(ValueError, match="holds no final state"):
        Result.load(str(tmp_path / "r.json")).evaluate(problem)
    with pytest.raises(ValueError, match=r"X must have shape \(n, d\)"):
        res.evaluate(problem, X=np.zeros((N, 3)))


def test_stateless_problems_evaluate_as_before():
    quad = jg.problems.quadratic(n_workers=N, dim=3, samples_per_worker=6)
    res = jg.simulate(quad, jg.algorithms.dpsgd(lr=0.05), jg.topology.ring(N), steps=4, eval_every=2)
    ev = res.evaluate(quad)
    assert ev["loss"] == pytest.approx(res.final("loss"), rel=1e-6)
    assert float(evaluate(quad, res.state.x)["loss"]) == pytest.approx(ev["loss"], rel=1e-6)
