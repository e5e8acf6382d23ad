"""The public toolkit for writing a step (jg.algorithms, README section "Your own algorithm"): a user's D-PSGD built
from public names only equals the built-in one bit for bit, a user's CHOCO-SGD equals choco_sgd to float rounding, and
both run under jg.sweep, jg.compare, checkpoints, 8 fake devices and the command line by their registered names."""

import os
import re
import sys
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip import algorithms as A
from jaxgossip import checkpoint, cli

from _cli_config import config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _readme_section() -> str:
    text = open(os.path.join(ROOT, "README.md")).read()
    start = text.index("\n## Your own algorithm\n")
    end = text.index("\n## ", start + 5)
    return text[start:end]


def _readme_code() -> str:
    return re.search(r"```python\n(.*?)```", _readme_section(), re.S).group(1)


@pytest.fixture
def readme_module(tmp_path, monkeypatch):
    """The README's example as a module ``mymethods`` (it registers ``my_dpsgd`` on import); unregistered after."""
    (tmp_path / "mymethods.py").write_text(_readme_code())
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("mymethods", None)
    yield tmp_path
    sys.modules.pop("mymethods", None)
    if "my_dpsgd" in A.REGISTRY:
        A.unregister("my_dpsgd")


# ---- a user's CHOCO-SGD, from public names only ----------------------------------------------------------------------
class ChocoState(NamedTuple):
    x: jax.Array
    xhat: jax.Array


def _choco_init(algo, X0, ctx):
    return ChocoState(X0, X0)


def _choco_step(algo, state, key, ctx):
    comp = algo.hyper["compressor"]
    G = A.stochastic_gradients(key, ctx, state.x)
    x = state.x - A.hyper_at(algo, "lr", ctx.t) * G + algo.hyper["consensus"] * ctx.mixing.minus_identity(state.xhat)
    xhat = state.xhat + A.compress_rows(comp, jax.random.fold_in(key, 1), x - state.xhat)
    return ChocoState(x, xhat), ctx.pricing.gossip(key, comp.bits(state.x.shape[1]), ctx.problem.batch_size)


def my_choco(lr=0.1, compressor=None, consensus=0.5):
    specs = (A.hyperparameter("lr", 0), A.hyperparameter("consensus", 0, 1))
    return A.make_algorithm("my_choco", _choco_init, _choco_step,
                            {"lr": lr, "compressor": compressor, "consensus": consensus}, specs=specs)


@pytest.fixture(scope="module")
def problem():
    return jg.problems.quadratic(n_workers=8, dim=6, samples_per_worker=10, batch_size=2, seed=0)


KW = dict(steps=12, eval_every=4, seed=3, shard=False)


def _assert_same(a, b, keys=("loss", "bits", "sim_time", "consensus")):
    for k in keys:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k], err_msg=k)
    np.testing.assert_array_equal(np.asarray(a.state.x), np.asarray(b.state.x))


def test_readme_dpsgd_equals_builtin_bit_for_bit(readme_module, problem):
    import mymethods

    topo = jg.topology.ring(8)
    mine = jg.simulate(problem, mymethods.my_dpsgd(lr=0.2), topo, **KW)
    builtin = jg.simulate(problem, A.dpsgd(lr=0.2), topo, **KW)
    _assert_same(mine, builtin)
    assert mine.metrics["bits"][-1] > 0 and mine.metrics["sim_time"][-1] > 0
    # a schedule for lr, as the built-in one takes
    sched = jg.schedules.step_decay(0.3, boundaries=(6,), factor=0.5)
    _assert_same(jg.simulate(problem, mymethods.my_dpsgd(lr=sched), topo, **KW),
                 jg.simulate(problem, A.dpsgd(lr=sched), topo, **KW))


def test_user_choco_equals_choco_sgd(problem):
    topo = jg.topology.ring(8)
    comp = jg.compressors.top_k(k=2)
    mine = jg.simulate(problem, my_choco(0.1, comp, 0.3), topo, **KW)
    builtin = jg.simulate(problem, A.choco_sgd(0.1, comp, consensus=0.3), topo, **KW)
    for k in ("loss", "consensus"):
        np.testing.assert_allclose(mine.metrics[k], builtin.metrics[k], rtol=1e-5, err_msg=k)
    np.testing.assert_allclose(np.asarray(mine.state.x), np.asarray(builtin.state.x), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(mine.metrics["bits"], builtin.metrics["bits"])
    np.testing.assert_array_equal(mine.metrics["sim_time"], builtin.metrics["sim_time"])


def test_sweep_compare_checkpoint_and_eight_devices(readme_module, problem, tmp_path):
    import mymethods

    topo = jg.topology.ring(8)
    grid = {"lr": [0.05, 0.2]}
    mine = jg.sweep(problem, mymethods.my_dpsgd(), topo, steps=8, grid=grid, seeds=[0, 1], eval_every=4)
    builtin = jg.sweep(problem, A.dpsgd(), topo, steps=8, grid=grid, seeds=[0, 1], eval_every=4)
    np.testing.assert_array_equal(mine.loss.to_numpy(), builtin.loss.to_numpy())
    assert len(set(mine.loss.round(7))) > 2  # the two lr values give two trajectories
    # refused before compiling, by the declared range
    with pytest.raises(ValueError, match=r"my_dpsgd: lr must be a number in \[0, inf\), got -1"):
        mymethods.my_dpsgd(lr=-1)
    with pytest.raises(ValueError, match="my_dpsgd: lr must be"):
        mymethods.my_dpsgd().replace_hyper(lr=-1.0)
    with pytest.raises(ValueError, match=r"value -1 is not allowed: my_dpsgd: lr must be"):
        jg.sweep(problem, mymethods.my_dpsgd(), topo, steps=4, grid={"lr": [0.1, -1]}, seeds=[0])
    # the user's CHOCO too: its declared consensus range reaches replace_hyper (it is not registered)
    with pytest.raises(ValueError, match=r"my_choco: consensus must be a number in \(0, 1\], got 2"):
        my_choco(0.1, jg.compressors.top_k(k=2)).replace_hyper(consensus=2.0)

    cmp = jg.compare(problem, {"mine": (mymethods.my_dpsgd(), grid), "D-PSGD": (A.dpsgd(), grid)}, topo, steps=8,
                     seeds=[0, 1], eval_every=4)
    table = cmp.table.set_index("label")
    means = [c for c in table.columns if c.endswith("_mean")]
    assert means and table.loc["mine", means].tolist() == table.loc["D-PSGD", means].tolist()
    assert cmp.best["mine"]["grid_point"] == cmp.best["D-PSGD"]["grid_point"]

    full = jg.simulate(problem, mymethods.my_dpsgd(0.1), topo, **KW)
    path = str(tmp_path / "run.npz")
    checkpoint.simulate(problem, mymethods.my_dpsgd(0.1), topo, path=path, every=4, stop_at=4, **KW)
    resumed = checkpoint.simulate(problem, mymethods.my_dpsgd(0.1), topo, path=path, every=4, **KW)
    _assert_same(resumed, full)

    eight = jg.simulate(problem, mymethods.my_dpsgd(0.1), topo, **{**KW, "shard": True})
    assert eight.config["devices"] == 8
    _assert_same(eight, jg.simulate(problem, A.dpsgd(0.1), topo, **{**KW, "shard": True}))
    np.testing.assert_array_equal(eight.metrics["bits"], full.metrics["bits"])
    np.testing.assert_allclose(np.asarray(eight.state.x), np.asarray(full.state.x), rtol=1e-5, atol=1e-6)


CFG = config("""
steps = 8
eval_every = 4
imports = ["mymethods"]
""", """[[run]]
algorithm = "my_dpsgd"
lr = 0.05
[[run]]
algorithm = "dpsgd"
lr = 0.05
""")


def test_cli_runs_a_registered_algorithm(readme_module, capsys):
    out = readme_module / "out"
    assert cli.main(["run", "--import", "mymethods", "--problem", "quadratic", "--n", "8", "--algorithm", "my_dpsgd",
                     "dpsgd", "--lr", "0.05", "--steps", "8", "--no-progress", "--out", str(out)]) == 0
    import json

    runs = json.loads((out / "results.json").read_text())
    assert [r["config"]["label"] for r in runs] == ["my_dpsgd", "dpsgd"]
    assert runs[0]["metrics"]["loss"] == runs[1]["metrics"]["loss"]  # bit for bit, through the CLI
    capsys.readouterr()
    cfg = readme_module / "c.toml"
    cfg.write_text(CFG)
    assert cli.main(["run", "--config", str(cfg), "--no-progress"]) == 0
    assert "my_dpsgd" in capsys.readouterr().out
    # a misspelled parameter of the user's algorithm is a clear error naming it
    cfg.write_text(CFG.replace("lr = 0.05", "lrr = 0.05", 1))
    assert cli.main(["run", "--config", str(cfg), "--no-progress"]) == 2
    assert "algorithm 'my_dpsgd' has no parameter 'lrr'" in capsys.readouterr().err
    # a module that cannot be imported is a clear error
    assert cli.main(["run", "--import", "no_such_module_xyz", "--algorithm", "dpsgd", "--steps", "2"]) == 2
    assert "--import: cannot import 'no_such_module_xyz'" in capsys.readouterr().err


COMPARE_CFG = config("""
steps = 8
eval_every = 4
seeds = [0, 1]
imports = ["mymethods"]
""", """[[run]]
label = "mine"
algorithm = "my_dpsgd"
grid = { lr = [0.02, 0.05] }
[[run]]
label = "D-PSGD"
algorithm = "dpsgd"
grid = { lr = [0.02, 0.05] }
""")


def test_compare_reads_the_run_layout_and_the_old_one_with_a_warning(readme_module, capsys):
    from jaxgossip import cli_compare

    cfg = readme_module / "cmp.toml"
    cfg.write_text(COMPARE_CFG)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        loaded = cli_compare.load(str(cfg))
    kw = cli_compare.build(loaded)
    assert kw["algorithms"]["mine"][0].name == "my_dpsgd" and kw["algorithms"]["mine"][1] == {"lr": [0.02, 0.05]}
    assert cli.main(["compare", "--config", str(cfg)]) == 0
    text = capsys.readouterr().out
    assert "mine" in text and "D-PSGD" in text
    old = COMPARE_CFG.replace("[[run]]", "[[algorithm]]").replace('algorithm = "', 'name = "')
    cfg.write_text(old)
    with pytest.warns(DeprecationWarning, match=r"\[\[algorithm\]\] tables with name = \.\.\. are deprecated"):
        converted = cli_compare.load(str(cfg))
    assert [r["algorithm"] for r in converted["run"]] == ["my_dpsgd", "dpsgd"]
    cfg.write_text(COMPARE_CFG.replace("grid = { lr", "lrr = 1\ngrid = { lr", 1))
    with pytest.raises(ValueError, match="algorithm 'my_dpsgd' has no parameter 'lrr'"):
        cli_compare.load(str(cfg))
    # the help shows an example file inline
    import argparse

    parser = argparse.ArgumentParser()
    cli_compare.add_parser(parser.add_subparsers())
    with pytest.raises(SystemExit):
        parser.parse_args(["compare", "--help"])
    assert '[[run]]' in capsys.readouterr().out


def test_register_errors_and_replace():
    def f(lr=0.1):
        return A.dpsgd(lr)

    with pytest.raises(ValueError, match="'dpsgd' is a built-in algorithm; pass replace=True"):
        A.register("dpsgd", f)
    with pytest.raises(ValueError, match="name must be an identifier"):
        A.register("my method", f)
    with pytest.raises(ValueError, match="factory must be a function"):
        A.register("mine", A.dpsgd())
    try:
        assert A.register("mine_x", f) is f
        assert A.register("mine_x", f) is f  # the same factory again (a module imported twice)
        with pytest.raises(ValueError, match="'mine_x' is already registered"):
            A.register("mine_x", lambda: A.dpsgd())
        assert float(A.get("mine_x", lr=0.3).hyper["lr"]) == pytest.approx(0.3)
        with pytest.raises(ValueError, match="has no parameter 'consensus'"):
            A.get("mine_x", consensus=0.3)
        assert "mine_x" not in A.BUILTINS
        A.register("dpsgd", f, replace=True)
        assert A.REGISTRY["dpsgd"] is f
    finally:
        A.unregister("dpsgd")
        A.unregister("mine_x")
    assert A.REGISTRY["dpsgd"] is A.dpsgd and "mine_x" not in A.REGISTRY
    with pytest.raises(ValueError, match="'mine_x' is not registered"):
        A.unregister("mine_x")
    with pytest.raises(ValueError, match="kind must be one of"):
        A.make_algorithm("m", _choco_init, _choco_step, {"lr": 0.1}, kind="ring")
    with pytest.raises(ValueError, match="'momentum' is declared but not in hyper"):
        A.make_algorithm("m", _choco_init, _choco_step, {"lr": 0.1}, specs=(A.hyperparameter("momentum", 0, 1),))
    with pytest.raises(ValueError, match="m: hyperparameter flag must be a number"):
        A.make_algorithm("m", _choco_init, _choco_step, {"flag": True})
    with pytest.raises(ValueError, match=r"m: k must be an integer in \[1, inf\), got 2.5"):
        A.make_algorithm("m", _choco_init, _choco_step, {"k": 2.5},
                         specs=(A.hyperparameter("k", 1, low_open=False, integer=True),))


def test_make_algorithm_values_are_traced_float32():
    algo = my_choco(0.1, jg.compressors.top_k(k=2), 0.5)
    assert algo.hyper["lr"].dtype == jnp.float32 and algo.hyper["consensus"].dtype == jnp.float32
    leaves = jax.tree.leaves(algo)
    assert any(leaf is algo.hyper["consensus"] for leaf in leaves)
    assert [s.name for s in algo.specs] == ["lr", "consensus"]


def test_every_name_of_the_readme_section_is_public_and_documented():
    section = _readme_section()
    used = set(re.findall(r"\bA\.([A-Za-z_]\w*)", _readme_code()))
    used |= {n for n in re.findall(r"`([A-Za-z_]\w*)(?:\(|`)", section) if hasattr(A, n)}
    assert {"stochastic_gradients", "hyper_at", "hyperparameter", "make_algorithm", "register", "FLOAT_BITS",
            "compress_rows", "peer_message", "gossip_rounds", "local_update", "split_key"} <= used
    for name in sorted(used):
        assert name in A.__all__, name
        obj = getattr(A, name)
        if not isinstance(obj, (int, float)):
            assert (obj.__doc__ or "").strip(), f"{name} has no docstring"
    for name in A.TOOLKIT:
        assert name in A.__all__
    assert "Writing your own algorithm" in A.__doc__


def test_peer_message_prices_one_message_per_worker(problem):
    """peer_message equals gossip on a graph where every worker sends and receives one message."""
    from jaxgossip.algorithms._base import Context
    from jaxgossip.simulate import prepare

    prep = prepare(problem, A.dpsgd(0.1), jg.topology.ring(8), steps=1)
    pricing = prep.pricing if hasattr(prep, "pricing") else None
    if pricing is None:
        pytest.skip("prepare does not expose the pricing")
    one = pricing.replace(degrees=jnp.ones(8, jnp.float32), receives=jnp.ones(8, jnp.float32))
    ctx = Context(problem, None, one, jnp.asarray(0))
    key = jax.random.key(0)
    a, b = A.peer_message(key, ctx, 640.0), one.gossip(key, 640.0, problem.batch_size)
    assert float(a.bits) == float(b.bits) == 8 * 640.0
    assert float(a.seconds) == pytest.approx(float(b.seconds), rel=1e-6)
