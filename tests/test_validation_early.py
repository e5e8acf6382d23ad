"""Inputs accepted that should not be, or refused too late (issue 22, item 8): every bad argument of simulate, sweep,
compare, the checkpoint functions and the problem builders raises a ValueError that names it, before anything compiles
(``simulate.TRACE_COUNT["chunk"]`` unchanged). Each case was accepted (or failed only after compiling, or with another
error) before this file."""

import importlib
import os

import numpy as np
import pytest

import jaxgossip as jg

sim_mod = importlib.import_module("jaxgossip.simulate")
compare_mod = importlib.import_module("jaxgossip.compare")
N = 4


@pytest.fixture(scope="module")
def quad():
    return jg.problems.quadratic(n_workers=N, dim=3, samples_per_worker=6, batch_size=2, seed=0)


@pytest.fixture
def nothing_compiles():
    """Asserts, after the test, that no run's chunk was traced (every refusal came before compiling)."""
    before = sim_mod.TRACE_COUNT["chunk"]
    yield
    assert sim_mod.TRACE_COUNT["chunk"] == before, "something compiled before the input was refused"


def _refused(match, fn, *args, **kwargs):
    with pytest.raises(ValueError, match=match):
        fn(*args, **kwargs)


# ---- initial models --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, algorithm, match", [
    (lambda p: np.full(p.d, np.nan), "dpsgd", r"x0 holds 3 NaN or infinite"),
    (lambda p: np.full((N, p.d), np.inf), "dpsgd", r"x0 holds 12 NaN or infinite"),
    (lambda p: np.array(["a"] * p.d), "dpsgd", r"x0 must hold real numbers"),
    (lambda p: np.zeros((N, p.d)), "cpsgd", r"x0 of shape \(n, d\).*cpsgd is centralized and keeps one model"),
    (lambda p: np.zeros((N, p.d)), "ef21", r"x0 of shape \(n, d\).*ef21 is centralized"),
    (lambda p: np.zeros((N, p.d)), "star_gd", r"x0 of shape \(n, d\).*star_gd is star"),
])
def test_initial_models_are_checked(quad, nothing_compiles, make, algorithm, match):
    kwargs = {"dpsgd": dict(lr=0.1), "cpsgd": dict(lr=0.1), "star_gd": {},
              "ef21": dict(compressor=jg.compressors.top_k(k=1))}[algorithm]
    algo = jg.algorithms.get(algorithm, **kwargs)
    topo = jg.topology.ring(N) if algo.kind == "decentralized" else None
    _refused(match, jg.simulate, quad, algo, topo, steps=2, eval_every=1, x0=make(quad))


def test_checkpoint_checks_initial_models_too(quad, nothing_compiles, tmp_path):
    _refused(r"x0 of shape \(n, d\)", jg.checkpoint.simulate, quad, jg.algorithms.cpsgd(lr=0.1), steps=2,
             eval_every=1, path=str(tmp_path / "c.npz"), every=1, x0=np.zeros((N, quad.d)))


def test_progress_must_be_a_flag(quad, nothing_compiles):
    _refused("progress must be True, False or None", jg.simulate, quad, jg.algorithms.dpsgd(lr=0.1),
             jg.topology.ring(N), steps=2, eval_every=1, progress="yes")


# ---- problem builders -------------------------------------------------------------------------------------------------
def _flax_dense():
    from flax import linen as nn

    class Dense(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(2)(x.reshape(x.shape[0], -1))

    return Dense()


def _nnx_linear():
    from flax import nnx

    class Linear(nnx.Module):
        def __init__(self, rngs):
            self.lin = nnx.Linear(30, 2, rngs=rngs)

        def __call__(self, x):
            return self.lin(x)

    return Linear(nnx.Rngs(0))


Q = jg.problems.quadratic
LR = jg.problems.logistic_regression
BUILDER_CASES = [
    (Q, dict(noise=-1.0), "quadratic: noise must be a finite number >= 0"),
    (Q, dict(heterogeneity=float("nan")), "quadratic: heterogeneity must be a finite number"),
    (Q, dict(reg=float("nan")), "quadratic: reg must be a finite number"),
    (Q, dict(dim=0), "quadratic: dim must be an integer >= 1"),
    (Q, dict(n_workers=True), "quadratic: n_workers must be an integer >= 1"),
    (Q, dict(seed=-1), "quadratic: seed must be an integer >= 0"),
    (Q, dict(seed=1.5), "quadratic: seed must be an integer >= 0"),
    (Q, dict(condition_number=float("inf")), "quadratic: condition_number must be a finite number >= 1"),
    (LR, dict(alpha=0.3), "logistic_regression: alpha=0.3 only acts with partition='dirichlet'"),
    (LR, dict(partition="dirichlet", alpha=float("inf")), "logistic_regression: alpha must be a finite number > 0"),
    (LR, dict(num_samples=100), "logistic_regression: num_samples sets the size of a generated set"),
    (LR, dict(standardize="yes"), "logistic_regression: standardize must be True or False"),
    (LR, dict(reg=float("inf")), "logistic_regression: reg must be a finite number"),
    (LR, dict(seed=-2), "logistic_regression: seed must be an integer >= 0"),
    (LR, dict(n_workers=True), "logistic_regression: n_workers must be an integer >= 1"),
    (jg.problems.mlp, dict(hidden=(0,)), "mlp: hidden must be positive integers"),
    (jg.problems.mlp, dict(data="digits", alpha=1.0), "mlp: alpha=1.0 only acts with partition='dirichlet'"),
]


@pytest.mark.parametrize("builder, kwargs, match", BUILDER_CASES)
def test_problem_builders_check_their_ranges(builder, kwargs, match):
    base = dict(n_workers=N, solve_optimum=False) if builder is not jg.problems.mlp else dict(n_workers=N)
    _refused(match, builder, **{**base, **kwargs})


def test_network_builders_check_their_ranges():
    dense = _flax_dense()
    _refused("from_flax: test_fraction must be a finite number >= 0", jg.problems.from_flax, dense, "breast_cancer",
             n_workers=N, test_fraction=-0.2)
    _refused("from_flax: alpha=0.1 only acts with partition='dirichlet'", jg.problems.from_flax, dense,
             "breast_cancer", n_workers=N, alpha=0.1)
    _refused("from_flax: init_seed initializes a linen module; an nnx module", jg.problems.from_flax, _nnx_linear(),
             "breast_cancer", n_workers=N, init_seed=3)
    params = {"w": np.zeros((30, 2), np.float32)}
    _refused("from_function: init_seed is the key of an init function", jg.problems.from_function, params,
             lambda p, X: X @ p["w"], "breast_cancer", n_workers=N, init_seed=1)
    _refused("from_function: share_model_state must be True or False", jg.problems.from_function, params,
             lambda p, X: X @ p["w"], "breast_cancer", n_workers=N, share_model_state="no")


# ---- a problem factory whose shapes change with the seed -------------------------------------------------------------
def test_a_factory_whose_shapes_change_with_the_seed_is_refused(nothing_compiles):
    def grows(seed):  # one more worker per seed: the topology and pricing are built for one n
        return jg.problems.quadratic(n_workers=N + seed, dim=3, samples_per_worker=6, seed=seed)

    _refused(r"problem: the factory's problems differ in shape \(n: 4 for data seed 0, 5 for data seed 1\)",
             jg.sweep, grows, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(N), steps=2, eval_every=1, seeds=[0, 1])

    def wider(seed):  # d changes: the grid's checks and the compressors are bound to one d
        return jg.problems.quadratic(n_workers=N, dim=3 + seed, samples_per_worker=6, seed=seed)

    _refused(r"d: 3 for data seed 0, 4 for data seed 1", jg.compare, wider,
             {"D": (jg.algorithms.dpsgd(lr=0.1), {"lr": [0.1]})}, jg.topology.ring(N), steps=2, eval_every=1,
             seeds=[0, 1])


# ---- compute models ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compute, match", [
    (jg.ComputeModel.given([10.0, 20.0, 30.0]), r"compute: ComputeModel: given speeds \(values\) must have shape"),
    (jg.ComputeModel().with_stragglers((9,)), r"compute: ComputeModel: straggler indices must be < n = 4"),
])
def test_compute_model_arrays_must_fit_n_before_compiling(quad, nothing_compiles, compute, match):
    _refused(match, jg.simulate, quad, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(N), steps=2, eval_every=1,
             compute=compute)
    _refused(match, jg.sweep, quad, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(N), steps=2, eval_every=1,
             compute=compute, grid={"lr": [0.1]})


# ---- sweeps and comparisons ---------------------------------------------------------------------------------------------
def test_grid_values_must_be_lists(quad, nothing_compiles):
    _refused(r"grid\['lr'\] must be a list of values, got 0.1", jg.sweep, quad, jg.algorithms.dpsgd(lr=0.1),
             jg.topology.ring(N), steps=2, eval_every=1, grid={"lr": 0.1})
    _refused(r"grid\['lr'\] must be a list of values", compare_mod.compare, quad,
             {"D": (jg.algorithms.dpsgd(lr=0.1), {"lr": 0.1})}, jg.topology.ring(N), steps=2, eval_every=1, seeds=[0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(seeds=[0, 1.5]), r"seeds must be non-negative integers.*1.5"),
    (dict(seeds=[True]), r"seeds must be non-negative integers"),
    (dict(memory_limit=-5), r"memory_limit must be a positive number of bytes"),
    (dict(shard_sweep="yes"), r"shard_sweep must be True or False"),
])
def test_sweep_arguments_are_checked(quad, nothing_compiles, kwargs, match):
    _refused(match, jg.sweep, quad, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(N), steps=2, eval_every=1,
             grid={"lr": [0.1]}, **kwargs)


def test_data_seeds_must_be_integers(nothing_compiles):
    factory = lambda s: jg.problems.quadratic(n_workers=N, dim=3, samples_per_worker=6, seed=s)  # noqa: E731
    _refused(r"data_seeds must be non-negative integers", jg.sweep, factory, jg.algorithms.dpsgd(lr=0.1),
             jg.topology.ring(N), steps=2, eval_every=1, seeds=[0], data_seeds=[0.5])


def test_every_algorithm_of_a_sweep_is_checked_before_the_first_runs(quad, nothing_compiles):
    algos = {"centralized": jg.algorithms.cpsgd(lr=0.1), "gossip": jg.algorithms.dpsgd(lr=0.1)}
    _refused(r"dpsgd is decentralized and needs a topology", jg.sweep, quad, algos, None, steps=2, eval_every=1,
             grid={"lr": [0.1]})
    bad_grid = {"A": (jg.algorithms.dpsgd(lr=0.1), {"lr": [0.1]}), "B": (jg.algorithms.dpsgd(lr=0.1), {"lr": [-1.0]})}
    _refused(r"grid\['hp.lr'\] value -1.0", compare_mod.compare, quad, bad_grid, jg.topology.ring(N), steps=2,
             eval_every=1, seeds=[0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(metric="accuracy"), r"metric must be one of the metrics .* reports"),
    (dict(target=float("nan")), r"target must be a finite number"),
    (dict(seeds=[0.5]), r"seeds must be non-negative integers"),
])
def test_compare_arguments_are_checked_before_any_sweep(quad, nothing_compiles, kwargs, match):
    _refused(match, compare_mod.compare, quad, {"D": (jg.algorithms.dpsgd(lr=0.1), {"lr": [0.05, 0.1]})},
             jg.topology.ring(N), steps=2, eval_every=1, **{"seeds": [0], **kwargs})


# ---- checkpoint and resume paths --------------------------------------------------------------------------------------
def _unwritable(tmp_path):
    """A checkpoint path this process cannot write (root ignores permissions: a folder under /proc then)."""
    if os.geteuid() == 0:
        if not os.path.isdir("/proc/self"):
            pytest.skip("no /proc to make an unwritable path as root")
        return "/proc/jaxgossip-cannot-write/run.npz"
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    return str(folder / "run.npz")


def test_checkpoint_paths_are_checked_before_any_step(quad, nothing_compiles, tmp_path):
    (tmp_path / "file.txt").write_text("not a folder")
    (tmp_path / "notes.npz").write_text("not a checkpoint")
    cases = [
        (str(tmp_path), r"checkpoint: path .* is a directory"),
        (str(tmp_path / "file.txt" / "run.npz"), r"checkpoint: path .* lies below .*file.txt.*which is a file"),
        (_unwritable(tmp_path), r"checkpoint: path .*cannot write in"),
        (str(tmp_path / "notes.npz"), r"checkpoint: path .* is not a jaxgossip checkpoint"),
        (42, r"checkpoint: path must be a file path"),
    ]
    for path, match in cases:
        _refused(match, jg.checkpoint.simulate, quad, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(N), steps=2,
                 eval_every=1, path=path, every=1)
    _refused(r"checkpoint: path .* is not a checkpoint file", jg.checkpoint.load, str(tmp_path / "none.npz"), {})


def test_sweep_resume_paths_are_checked_before_any_configuration(quad, nothing_compiles, tmp_path):
    (tmp_path / "file.txt").write_text("not a folder")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    cases = [
        (str(tmp_path), r"sweep: resume: path .* is a directory"),
        (str(tmp_path / "file.txt" / "s.csv"), r"sweep: resume: path .* lies below"),
        (str(tmp_path / "other.csv"), r"sweep: resume .* is not a sweep's CSV"),
    ]
    for path, match in cases:
        _refused(match, jg.sweep, quad, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(N), steps=2, eval_every=1,
                 grid={"lr": [0.1]}, resume=path)
