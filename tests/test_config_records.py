"""What made the numbers is recorded (issue 22, item 3): ``Result.config`` changes with every problem builder
argument, with the numbers inside schedules and optimizers, with the graph's weights, the initial models and the
divergence limits; a checkpoint made with other inputs is refused naming the key; ``compare``'s JSON carries each
run's problem."""

import importlib
import inspect
import json

import numpy as np
import optax
import pytest
from flax import linen as nn

import jaxgossip as jg
from jaxgossip.result import Result

sim_mod = importlib.import_module("jaxgossip.simulate")
compare_mod = importlib.import_module("jaxgossip.compare")
N = 4


def config_of(problem, algorithm=None, topology=None):
    algorithm = algorithm or jg.algorithms.dpsgd(lr=0.1)
    return sim_mod.prepare(problem, algorithm, topology or jg.topology.ring(problem.n), steps=1, shard=False).config


# ---- every builder argument changes the config --------------------------------------------------------------------------
class Dense(nn.Module):
    width: int = 3

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.width)(x.reshape(x.shape[0], -1))


def my_loss(out, y):
    return jg.problems.losses.cross_entropy(out, y)


def apply(params, X):
    return X.reshape(X.shape[0], -1) @ params["w"]


def apply_scaled(params, X):
    return 2.0 * X.reshape(X.shape[0], -1) @ params["w"]


def apply_with_state(params, state, X):
    return X.reshape(X.shape[0], -1) @ params["w"] + state["b"], state


def init_params(key):
    return {"w": np.zeros((20, 2), np.float32)}


PARAMS = {"w": np.zeros((20, 2), np.float32)}
_rng = np.random.default_rng(0)
ARRAYS = (_rng.standard_normal((400, 20)).astype(np.float32), np.arange(400) % 2)  # 20 features, as "synthetic"
DIRICHLET = dict(partition="dirichlet", alpha=0.5)
TO_IID = {"partition": "iid", "alpha": None}  # alpha only acts with the Dirichlet partition

#: builder -> (base arguments, {argument: the arguments that change it}); every argument of every builder is listed
#: (a test checks it), so a new argument is recorded or this file fails.
BUILDERS = {
    jg.problems.quadratic: (
        dict(n_workers=N, dim=3, samples_per_worker=6),
        {"n_workers": dict(n_workers=5), "dim": dict(dim=4), "samples_per_worker": dict(samples_per_worker=7),
         "heterogeneity": dict(heterogeneity=2.0), "noise": dict(noise=0.2),
         "condition_number": dict(condition_number=5.0), "reg": dict(reg=0.1), "batch_size": dict(batch_size=2),
         "grad_noise": dict(grad_noise=0.1), "seed": dict(seed=1), "solve_optimum": dict(solve_optimum=False)}),
    jg.problems.logistic_regression: (
        dict(data="synthetic", n_workers=N, batch_size=2, solve_optimum=False, **DIRICHLET),
        {"data": dict(data="breast_cancer"), "n_workers": dict(n_workers=5), "partition": TO_IID,
         "batch_size": dict(batch_size=3), "reg": dict(reg=0.01), "alpha": dict(alpha=0.2), "seed": dict(seed=1),
         "solve_optimum": dict(solve_optimum=True), "num_samples": dict(num_samples=300),
         "standardize": dict(standardize=False)}),
    jg.problems.mlp: (
        dict(data="synthetic", n_workers=N, hidden=(3,), batch_size=2, **DIRICHLET),
        {"data": dict(data="breast_cancer"), "n_workers": dict(n_workers=5), "hidden": dict(hidden=(4,)),
         "partition": TO_IID, "batch_size": dict(batch_size=3), "reg": dict(reg=0.01), "alpha": dict(alpha=0.2),
         "seed": dict(seed=1), "num_samples": dict(num_samples=300), "standardize": dict(standardize=False)}),
    jg.problems.from_flax: (
        dict(module=Dense(), data="synthetic", n_workers=N, batch_size=2, eval_batch=None, **DIRICHLET),
        {"module": dict(module=Dense(width=4)), "data": dict(data="breast_cancer"), "loss": dict(loss=my_loss),
         "n_workers": dict(n_workers=5), "partition": TO_IID, "alpha": dict(alpha=0.2),
         "batch_size": dict(batch_size=3), "reg": dict(reg=0.01), "seed": dict(seed=1), "init_seed": dict(init_seed=3),
         "test_fraction": dict(test_fraction=0.3), "num_samples": dict(num_samples=300),
         "standardize": dict(standardize=True), "normalize": dict(normalize=(0.0, 2.0)),
         "augment": dict(augment=jg.data.identity()), "train_arg": dict(train_arg=None),
         "rng_names": dict(rng_names=()), "share_model_state": dict(share_model_state=True),
         "eval_batch": dict(eval_batch=64), "worker_map": dict(worker_map="vmap"), "conv": dict(conv="xla"),
         "classification": dict(classification=False), "name": dict(name="mine")}),
    jg.problems.from_function: (
        dict(params=PARAMS, apply_fn=apply, data="synthetic", n_workers=N, batch_size=2, eval_batch=None, **DIRICHLET),
        {"params": dict(params={"w": np.ones((20, 2), np.float32)}), "apply_fn": dict(apply_fn=apply_scaled),
         "data": dict(data=ARRAYS), "loss": dict(loss=my_loss),
         "state": dict(state={"b": np.zeros(2, np.float32)}, apply_fn=apply_with_state),
         "n_workers": dict(n_workers=5), "partition": TO_IID, "alpha": dict(alpha=0.2),
         "batch_size": dict(batch_size=3), "reg": dict(reg=0.01), "seed": dict(seed=1),
         "init_seed": dict(params=init_params, init_seed=3), "test_fraction": dict(test_fraction=0.3),
         "num_samples": dict(num_samples=300), "standardize": dict(standardize=True),
         "normalize": dict(normalize=(0.0, 2.0)), "augment": dict(augment=jg.data.identity()),
         "share_model_state": dict(share_model_state=True), "eval_batch": dict(eval_batch=64),
         "worker_map": dict(worker_map="vmap"), "classification": dict(classification=False),
         "name": dict(name="mine")}),
}


def _build(builder, kwargs):
    kwargs = dict(kwargs)
    if builder is jg.problems.from_flax:
        return builder(kwargs.pop("module"), **kwargs)
    if builder is jg.problems.from_function:
        return builder(kwargs.pop("params"), kwargs.pop("apply_fn"), **kwargs)
    return builder(**kwargs)


def test_the_property_covers_every_argument_of_every_builder():
    assert set(BUILDERS) >= set(jg.problems.REGISTRY.values())
    for builder, (_, changes) in BUILDERS.items():
        assert set(changes) == set(inspect.signature(builder).parameters), builder.__name__


@pytest.mark.parametrize("builder", list(BUILDERS), ids=lambda b: b.__name__)
def test_changing_any_one_builder_argument_changes_the_config(builder):
    base_kwargs, changes = BUILDERS[builder]
    base = config_of(_build(builder, base_kwargs))
    assert base["problem_spec"]["builder"] == builder.__name__
    json.dumps(base)  # plain JSON
    for arg, change in changes.items():
        config = config_of(_build(builder, {**base_kwargs, **change}))
        assert config != base, arg
        assert config["problem_spec"][arg] != base["problem_spec"][arg], arg  # recorded under its own name


def test_a_problem_changed_after_it_was_built_shows_in_its_data_record():
    p = jg.problems.quadratic(n_workers=N, dim=3, samples_per_worker=6)
    base = config_of(p)
    assert config_of(p.replace(reg=np.float32(0.5)))["problem_data"]["reg"] == 0.5 != base["problem_data"]["reg"]
    moved = config_of(p.replace(x0=p.x0 + 1.0))
    assert moved["problem_data"]["x0"] != base["problem_data"]["x0"]


# ---- schedules, optimizers, graphs ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quad():
    return jg.problems.quadratic(n_workers=N, dim=3, samples_per_worker=6)


def test_schedules_and_optimizers_with_other_numbers_give_other_configs(quad):
    D = jg.algorithms.dpsgd
    pairs = [
        (D(optimizer=optax.adam(optax.cosine_decay_schedule(1e-3, 100))),
         D(optimizer=optax.adam(optax.cosine_decay_schedule(1e-1, 100)))),
        (D(optimizer=optax.adam(optax.cosine_decay_schedule(1e-3, 100))),
         D(optimizer=optax.adam(optax.cosine_decay_schedule(1e-3, 200)))),
        (D(optimizer=optax.sgd(0.1, momentum=0.9)), D(optimizer=optax.sgd(0.1, momentum=0.8))),
        (D(optimizer=optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)),
         D(optimizer=optax.inject_hyperparams(optax.sgd)(learning_rate=0.2))),
        (D(lr=optax.cosine_decay_schedule(1e-3, 100)), D(lr=optax.cosine_decay_schedule(1e-1, 100))),
        (D(lr=optax.piecewise_constant_schedule(0.1, {10: 0.1})), D(lr=optax.piecewise_constant_schedule(0.1, {20: 0.1}))),
        (D(lr=jg.schedules.step_decay(0.1, [10], 0.1)), D(lr=jg.schedules.step_decay(0.1, [10], 0.5))),
        (D(lr=jg.schedules.step_decay(0.1, [10], 0.1)), D(lr=jg.schedules.step_decay(0.1, [20], 0.1))),
        (D(lr=jg.schedules.warmup_cosine(0.1, 5, 50)), D(lr=jg.schedules.warmup_cosine(0.1, 5, 50, end_value=0.01))),
        (D(lr=0.1), D(lr=0.1000001)),
        (jg.algorithms.dpsgd(lr=0.1, order="paper"), jg.algorithms.dpsgd(lr=0.1, order="survey")),
    ]
    for a, b in pairs:
        ca, cb = config_of(quad, a)["algorithm"], config_of(quad, b)["algorithm"]
        assert ca != cb, (ca, cb)


def test_a_schedule_that_reads_a_global_is_told_apart_by_its_values():
    global PEAK
    PEAK = 0.1
    one = repr(jg.schedules.from_callable(lambda t: PEAK * 0.5 ** (t // 100)))
    PEAK = 0.2
    two = repr(jg.schedules.from_callable(lambda t: PEAK * 0.5 ** (t // 100)))
    assert one != two and "0.2" in two


def test_graph_weights_initial_models_and_divergence_limits_are_recorded(quad):
    ring = jg.topology.ring(N)
    adjacency = ring.adjacency
    metropolis = jg.topology.from_adjacency(adjacency, weights="metropolis")
    laplacian = jg.topology.from_adjacency(adjacency, weights="laplacian", kappa=4.0)
    assert metropolis.name == laplacian.name
    assert config_of(quad, topology=metropolis)["topology_weights"] != config_of(quad, topology=laplacian)["topology_weights"]
    seq = jg.topology.time_varying([ring, jg.topology.complete(N)])
    rev = jg.topology.time_varying([jg.topology.complete(N), ring])
    assert config_of(quad, topology=seq)["topology_weights"] != config_of(quad, topology=rev)["topology_weights"]

    def recorded(**kwargs):
        prep = sim_mod.prepare(quad, jg.algorithms.dpsgd(lr=0.1), ring, steps=1, shard=False)
        sim_mod.record_run_inputs(prep, **kwargs)
        return prep.config

    plain, x0a, x0b = recorded(), recorded(x0=np.zeros(3)), recorded(x0=np.ones(3))
    assert "x0" not in plain and x0a["x0"] != x0b["x0"]
    stack = recorded(x0=np.arange(N * 3.0).reshape(N, 3))
    assert stack["x0"]["shape"] == [N, 3] and "digest" in stack["x0"]
    assert plain["divergence"] == {"loss": 100.0, "consensus": 100.0}
    off = recorded(divergence_threshold=10.0, consensus_threshold=float("inf"))
    assert off["divergence"] == {"loss": 10.0, "consensus": "inf"}
    compute = config_of(quad)["compute"]
    other = sim_mod.prepare(quad, jg.algorithms.dpsgd(lr=0.1), ring, steps=1, shard=False,
                            compute=jg.ComputeModel.given([1.0, 2.0, 3.0, 4.0])).config["compute"]
    assert other != compute and other["values"] == [1.0, 2.0, 3.0, 4.0]


def test_the_config_survives_a_json_round_trip(quad, tmp_path):
    prep = sim_mod.prepare(quad, jg.algorithms.dpsgd(lr=jg.schedules.warmup_cosine(0.1, 2, 8)), jg.topology.ring(N),
                           steps=1, shard=False)
    sim_mod.record_run_inputs(prep, x0=np.ones(3), consensus_threshold=float("inf"))
    r = Result({"step": np.array([0, 1]), "loss": np.array([1.0, 0.5])}, prep.config)
    r.save(str(tmp_path / "r.json"))
    assert Result.load(str(tmp_path / "r.json")).config == prep.config


# ---- checkpoints refuse other inputs, naming the key ---------------------------------------------------------------------
def test_a_checkpoint_resumed_with_another_problem_or_schedule_is_refused_naming_the_key(tmp_path):
    def problem(**kw):
        return jg.problems.quadratic(**{**dict(n_workers=N, dim=3, samples_per_worker=6, seed=0), **kw})

    algo = jg.algorithms.dpsgd(lr=jg.schedules.step_decay(0.1, [4], 0.5))
    kw = dict(steps=8, eval_every=2, every=4, shard=False)
    path = str(tmp_path / "run.npz")
    jg.checkpoint.simulate(problem(), algo, jg.topology.ring(N), path=path, stop_at=4, **kw)
    before = sim_mod.TRACE_COUNT["chunk"]
    cases = [
        (dict(problem=problem(seed=1)), r"problem_spec\.seed: saved 0, now 1"),
        (dict(problem=problem(heterogeneity=3.0)), r"problem_spec\.heterogeneity: saved 1\.0, now 3\.0"),
        (dict(problem=problem(noise=0.0)), r"problem_spec\.noise"),
        (dict(algo=jg.algorithms.dpsgd(lr=jg.schedules.step_decay(0.1, [4], 0.1))), r"algorithm\.lr: saved .*factor=0\.5"),
        (dict(algo=jg.algorithms.dpsgd(lr=optax.cosine_decay_schedule(0.1, 8))), r"algorithm\.lr"),
        (dict(topology=jg.topology.from_adjacency(jg.topology.ring(N).adjacency, weights="laplacian", kappa=4.0)),
         r"topology_weights"),
        (dict(x0=np.ones(3)), r"x0: saved '<missing>'"),
        (dict(divergence_threshold=10.0), r"divergence\.loss: saved 100\.0, now 10\.0"),
    ]
    for change, match in cases:
        args = dict(problem=problem(), algo=algo, topology=jg.topology.ring(N))
        extra = {k: v for k, v in change.items() if k not in args}
        args.update({k: v for k, v in change.items() if k in args})
        with pytest.raises(ValueError, match=r"another configuration.*" + match):
            jg.checkpoint.simulate(args["problem"], args["algo"], args["topology"], path=path, **kw, **extra)
    assert sim_mod.TRACE_COUNT["chunk"] == before  # refused before compiling
    done = jg.checkpoint.simulate(problem(), algo, jg.topology.ring(N), path=path, **kw)  # the same inputs resume
    assert np.isfinite(done.metrics["loss"][-1])


# ---- compare's JSON carries each run's problem ------------------------------------------------------------------------
def test_compare_json_carries_each_runs_problem(tmp_path):
    def factory(seed):
        return jg.problems.quadratic(n_workers=N, dim=3, samples_per_worker=6, seed=seed)

    result = compare_mod.compare(factory, {"D": (jg.algorithms.dpsgd(lr=0.05), {"lr": [0.05, 0.1]})},
                                 jg.topology.ring(N), steps=4, eval_every=2, seeds=[0, 1])
    runs = result.run_configs
    assert len(runs) == 4
    for run in runs:
        assert run["problem_spec"]["seed"] == run["data_seed"] == run["seed"]
        assert run["problem_data"] == config_of(factory(run["data_seed"]))["problem_data"]
        assert run["algorithm"]["lr"] == pytest.approx(run["grid_point"]["lr"])
        assert run["divergence"] == {"loss": 100.0, "consensus": 100.0}
    assert runs[0]["problem_data"]["train"] != [r for r in runs if r["seed"] == 1][0]["problem_data"]["train"]
    assert set(result.config["problems"]) == {"0", "1"} and "problem_spec" not in result.config
    saved = json.load(open(result.save(str(tmp_path), formats=())["json"]))
    assert [r["problem_spec"]["seed"] for r in saved["runs"]] == [r["problem_spec"]["seed"] for r in runs]


def test_a_sweep_resumed_with_other_inputs_is_refused_naming_the_key(tmp_path):
    path = str(tmp_path / "sweep.csv")
    quad = jg.problems.quadratic(n_workers=N, dim=3, samples_per_worker=6, seed=0)
    kw = dict(steps=2, eval_every=1, grid={"lr": [0.05, 0.1]})
    jg.sweep(quad, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(N), resume=path, **kw)
    before = sim_mod.TRACE_COUNT["chunk"]
    other = jg.problems.quadratic(n_workers=N, dim=3, samples_per_worker=6, seed=1)
    with pytest.raises(ValueError, match=r"resume .* holds rows made with other inputs \(dpsgd: .*problem_spec\.seed"):
        jg.sweep(other, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(N), resume=path, **kw)
    with pytest.raises(ValueError, match=r"other inputs \(dpsgd: .*network\.latency"):
        jg.sweep(quad, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(N), resume=path, network=jg.Network(latency=1.0),
                 **kw)
    assert sim_mod.TRACE_COUNT["chunk"] == before
    again = jg.sweep(quad, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(N), resume=path, **kw)  # same inputs: resumes
    assert sim_mod.TRACE_COUNT["chunk"] == before and len(again) == 2 * 3
