"""jg.compare: each algorithm tuned on its own grid over seeds, diverged settings never chosen, a table with mean and
std over seeds, curves of the best settings, CSV + JSON with every run's configuration; the compare CLI."""

import argparse
import importlib
import json
import os

import numpy as np
import pytest

import jaxgossip as jg

compare_mod = importlib.import_module("jaxgossip.compare")
cli_compare = importlib.import_module("jaxgossip.cli_compare")


def factory(seed):
    return jg.problems.logistic_regression("digits", n_workers=4, batch_size=4, seed=seed)


@pytest.fixture(scope="module")
def result():
    q = jg.compressors.quantize(bits=4)
    algorithms = {
        "D-PSGD": (jg.algorithms.dpsgd(lr=0.1), {"lr": [0.1, 0.5, 500.0]}),
        "CHOCO": (jg.algorithms.choco_sgd(lr=0.1, compressor=q, consensus=0.5), {"lr": [0.1, 0.5], "consensus": [0.3, 0.9]}),
    }
    return compare_mod.compare(factory, algorithms, jg.topology.ring(4), steps=40, eval_every=10, seeds=[0, 1, 2])


def test_each_algorithm_is_tuned_on_its_own_grid_and_diverged_settings_are_never_best(result):
    tuning = result.tuning
    assert len(tuning[tuning.label == "D-PSGD"]) == 3 and len(tuning[tuning.label == "CHOCO"]) == 4
    dpsgd = tuning[tuning.label == "D-PSGD"].set_index("hp.lr")
    assert dpsgd.loc[500.0, "diverged"] and not dpsgd.loc[500.0, "best"]
    for label, g in tuning.groupby("label"):
        ok = g[~g.diverged]
        assert g.best.sum() == 1 and g[g.best].score.iloc[0] == ok.score.min()  # the best mean over seeds
    assert result.best["D-PSGD"]["grid_point"]["lr"] in (0.1, 0.5)
    assert set(result.best["CHOCO"]["grid_point"]) == {"lr", "consensus"}
    assert result.best["CHOCO"]["hyper"]["compressor"].startswith("quantize")


def test_table_reports_mean_and_std_over_seeds_at_the_best_setting(result):
    t = result.table.set_index("label")
    for label in ("D-PSGD", "CHOCO"):
        point = result.best[label]["grid_point"]
        rows = result.curves[(result.curves.label == label) & (result.curves.step == 40)]
        assert len(rows) == 3 and rows.seed.nunique() == 3  # the best configuration, every seed
        for k, v in point.items():
            assert (rows[f"hp.{k}"] == v).all()
        np.testing.assert_allclose(t.loc[label, "suboptimality_mean"], rows.suboptimality.mean(), rtol=1e-6)
        np.testing.assert_allclose(t.loc[label, "suboptimality_std"], rows.suboptimality.std(ddof=1), rtol=1e-6)
        for k in ("steps", "bits", "sim_time"):
            assert f"{k}_to_target_mean" in t and f"{k}_to_target_std" in t
    assert t.loc["CHOCO", "bits_to_target_mean"] < t.loc["D-PSGD", "bits_to_target_mean"]  # 4 bits vs 32
    assert result.config["target"] == pytest.approx(max(t.suboptimality_mean))  # the level both reach on average
    assert list(result.curves.data_seed.unique()) == [0, 1, 2]  # the factory redrew the data per seed


def test_save_writes_csv_json_with_every_runs_configuration_and_figures(result, tmp_path):
    paths = result.save(str(tmp_path / "cmp"), formats=("png", "svg"))
    for name in ("table.csv", "tuning.csv", "curves.csv", "runs.csv", "comparison.json", "comparison.png",
                 "comparison.svg"):
        assert os.path.getsize(tmp_path / "cmp" / name) > 0
    record = json.load(open(paths["json"]))
    assert len(record["runs"]) == (3 + 4) * 3  # every configuration x seed
    run = record["runs"][0]
    for key in ("label", "seed", "data_seed", "algorithm", "grid_point", "topology", "steps", "problem", "network",
                "compute", "diverged", "final"):
        assert key in run
    assert record["config"]["criterion"] == "final" and record["config"]["grids"]["CHOCO"]["consensus"] == [0.3, 0.9]
    fig = result.plot()
    assert [ax.get_xscale() for ax in fig.axes[:3]] == ["linear", "log", "linear"]


def test_time_criteria_need_a_target_and_pick_the_fastest():
    algorithms = {"D-PSGD": (jg.algorithms.dpsgd(lr=0.1), {"lr": [0.05, 0.5]})}
    kw = dict(steps=40, eval_every=10, seeds=[0, 1])
    with pytest.raises(ValueError, match="target"):
        compare_mod.compare(factory, algorithms, jg.topology.ring(4), criterion="steps", **kw)
    with pytest.raises(ValueError, match="criterion"):
        compare_mod.compare(factory, algorithms, jg.topology.ring(4), criterion="fastest", **kw)
    r = compare_mod.compare(factory, algorithms, jg.topology.ring(4), criterion="steps", target=0.5, **kw)
    assert r.best["D-PSGD"]["grid_point"]["lr"] == 0.5 and r.table.reached.iloc[0] == "2/2"


def test_cli_compare_runs_a_config(tmp_path, capsys):
    cfg = tmp_path / "cmp.toml"
    cfg.write_text('''
steps = 20
eval_every = 10
seeds = [0, 1]
[problem]
name = "logistic_regression"
data = "digits"
n_workers = 4
batch_size = 4
[topology]
name = "ring"
[[run]]
label = "D-PSGD"
algorithm = "dpsgd"
lr = 0.1
grid = { lr = [0.1, 0.3] }
[[run]]
label = "CHOCO"
algorithm = "choco_sgd"
lr = 0.1
compressor = { name = "quantize", bits = 4 }
grid = { consensus = [0.3, 0.9] }
''')
    parser = argparse.ArgumentParser()
    cli_compare.add_parser(parser.add_subparsers())
    args = parser.parse_args(["compare", "--config", str(cfg), "--out", str(tmp_path / "out")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "D-PSGD" in out and "CHOCO" in out and "lr=" in out
    assert os.path.exists(tmp_path / "out" / "comparison.json") and os.path.exists(tmp_path / "out" / "table.csv")
    bad = tmp_path / "bad.toml"
    bad.write_text('steps = 10\nwhatever = 1\n[[run]]\nalgorithm = "dpsgd"\n')
    with pytest.raises(ValueError, match="whatever"):
        cli_compare.load(str(bad))
