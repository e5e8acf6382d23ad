import json
import os

import pytest

from jaxgossip import cli

from _cli_config import config

CFG = config("""
steps = 40
eval_every = 20
""", """[[run]]
algorithm = "dpsgd"
lr = 0.05
[[run]]
algorithm = "naive_compressed"
lr = 0.05
compressor = { name = "quantize", bits = 4 }
label = "naive 4-bit"
""")


def test_run_from_toml_writes_outputs(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CFG)
    out = tmp_path / "out"
    assert cli.main(["run", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "naive 4-bit" in text and "dpsgd" in text and "sim time" in text and "on ring(8)" in text
    for f in ("results.json", "metrics.csv", "comparison.png"):
        assert os.path.getsize(out / f) > 0
    runs = json.loads((out / "results.json").read_text())
    assert [r["config"]["label"] for r in runs] == ["dpsgd", "naive 4-bit"]
    assert runs[0]["metrics"]["step"] == [0, 20, 40]


def test_flags_override_config(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CFG)
    assert cli.main(["run", "--config", str(cfg), "--algorithm", "cpsgd", "--steps", "20", "--lr", "0.01",
                     "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "cpsgd" in text and "steps=20" in text
    # a centralized run ignores the graph, and the title says so
    assert "on ring" not in text and "no gossip graph" in text and "rho=" not in text


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["run", "--problem", "quadratic", "--n", "8", "--algorithm", "nope", "--steps", "10"]) == 2
    assert "algorithm must be one of" in capsys.readouterr().err


def test_backend_flag_reaches_the_run(tmp_path, capsys):
    out = tmp_path / "o"
    assert cli.main(["run", "--problem", "quadratic", "--n", "16", "--topology", "ring", "--algorithm", "dpsgd",
                     "--steps", "10", "--backend", "sparse", "--out", str(out), "--no-progress"]) == 0
    run = json.loads((out / "results.json").read_text())[0]
    assert run["config"]["backend"] == "sparse"
    assert cli.main(["run", "--problem", "quadratic", "--n", "16", "--steps", "10", "--backend", "csr"]) == 2
    assert "backend must be one of" in capsys.readouterr().err


def test_list_names_everything(capsys):
    assert cli.main(["list"]) == 0
    text = capsys.readouterr().out
    for word in ("dpsgd", "quantize", "ring", "logistic_regression", "mnist1d", "reproductions"):
        assert word in text


def test_unknown_reproduction(capsys):
    assert cli.main(["reproduce", "nope"]) == 2
    assert "reproduction must be one of" in capsys.readouterr().err


@pytest.mark.parametrize("section, line, message", [
    ("run", 'lrr = 0.05', "algorithm 'dpsgd' has no parameter 'lrr'; it takes lr, order, optimizer"),
    ("problem", 'dimm = 3', "problem 'quadratic' has no parameter 'dimm'"),
    ("topology", 'weight = "metropolis"', "topology 'ring' has no parameter 'weight'; it takes weights"),
])
def test_misspelled_config_parameter_is_a_clear_error(tmp_path, capsys, section, line, message):
    text = CFG.replace(f"[{section}]" if section != "run" else "[[run]]",
                       (f"[{section}]" if section != "run" else "[[run]]") + "\n" + line, 1)
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    assert cli.main(["run", "--config", str(cfg), "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_registries_name_unknown_keywords():
    import jaxgossip as jg

    with pytest.raises(ValueError, match=r"compressor 'quantize' has no parameter 'bitz'; it takes bits, bucket"):
        jg.compressors.get("quantize", bitz=3)
    with pytest.raises(ValueError, match=r"algorithm must be one of \["):
        jg.algorithms.get("sgdd")


# ---- issue 17: strict configs and per-algorithm flags -----------------------------------------------------------------
def _write(tmp_path, text):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    return str(cfg)


@pytest.mark.parametrize("old, new, message", [
    ("[[run]]", "[[runs]]", "unknown key 'runs' (did you mean 'run'?); valid keys: steps, eval_every, seed, backend"),
    ("[topology]", "[netwrok]\nlatency = 1e-3\n[topology]", "unknown key 'netwrok' (did you mean 'network'?)"),
    ("steps = 40", "step = 40", "unknown key 'step' (did you mean 'steps'?)"),
    ("[topology]", "[network]\nlatency = 1e-3\nbandwith = 1e6\n[topology]",
     "[network]: unknown key 'bandwith' (did you mean 'bandwidth'?); valid keys: latency, bandwidth"),
    ("[topology]", "[compute]\nsped = 10.0\n[topology]", "[compute]: unknown key 'sped' (did you mean 'speed'?)"),
    ("steps = 40", "steps = 40\nseed = -1", "seed must be an integer >= 0"),
    ("steps = 40", 'steps = "40"', "steps must be an integer >= 1"),
])
def test_unknown_and_misspelled_keys_are_errors_listing_the_valid_ones(tmp_path, capsys, old, new, message):
    """Before: a typo (``[[runs]]``, ``[netwrok]``, ``step``) was ignored and the default run started."""
    path = _write(tmp_path, CFG.replace(old, new, 1))
    assert cli.main(["run", "--config", path, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert path in err  # the message names the file


def test_run_written_as_a_table_is_an_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="run must be a non-empty array of tables"):
        cli.check_config({"run": 3})
    text = CFG.split("[[run]]")[0] + '[run]\nalgorithm = "dpsgd"\n'
    assert cli.main(["run", "--config", _write(tmp_path, text), "--no-progress"]) == 2
    assert "write [[run]] (one per algorithm), not [run]" in capsys.readouterr().err


def test_misspelled_run_key_lists_label_and_suggests(tmp_path, capsys):
    path = _write(tmp_path, CFG.replace('label = "naive 4-bit"', 'lable = "naive 4-bit"'))
    assert cli.main(["run", "--config", path, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "[[run]] number 2: algorithm 'naive_compressed' has no parameter 'lable'" in err
    assert "(did you mean 'label'?)" in err


def test_topology_n_agrees_with_the_problem_or_is_a_clear_error():
    """Before: ``n = 8`` under [topology] crashed with "get() got multiple values for argument 'n'"."""
    cfg = cli.check_config({"problem": {"name": "quadratic", "n_workers": 8, "dim": 3},
                            "topology": {"name": "ring", "n": 8}, "run": [{"algorithm": "dpsgd"}]})
    prob, topo = cli._build_problem_and_topology(cfg)
    assert prob.n == topo.n == 8
    # n only under [topology]: it gives the problem its number of workers
    prob, topo = cli._build_problem_and_topology({"problem": {"name": "quadratic", "dim": 3},
                                                  "topology": {"name": "torus", "n": 9}})
    assert prob.n == topo.n == 9
    with pytest.raises(ValueError, match=r"\[topology\]: n = 6 but the problem has n_workers = 8"):
        cli._build_problem_and_topology({"problem": {"name": "quadratic", "n_workers": 8},
                                         "topology": {"name": "ring", "n": 6}})


def _merged(argv, cfg=None):
    args = cli.build_parser().parse_args(["run", *argv])
    return cli._merge_flags(cfg or {}, args)


def test_compressor_flags_apply_only_to_algorithms_that_take_a_compressor():
    """Before: ``--algorithm dpsgd dcd_psgd --bits 4`` failed: "algorithm 'dpsgd' has no parameter 'compressor'"."""
    runs = _merged(["--algorithm", "dpsgd", "dcd_psgd", "choco_sgd", "--bits", "4", "--lr", "0.05"])["run"]
    assert runs == [{"algorithm": "dpsgd", "lr": 0.05},
                    {"algorithm": "dcd_psgd", "lr": 0.05, "compressor": {"name": "quantize", "bits": 4}},
                    {"algorithm": "choco_sgd", "lr": 0.05, "compressor": {"name": "quantize", "bits": 4}}]
    algos = [cli._build_algorithm(r) for r in runs]
    assert "compressor" not in algos[0].hyper and algos[1].hyper["compressor"].name == "quantize"


def test_top_k_and_other_compressor_parameters_from_flags():
    """Before: ``--compressor top_k`` could not be given its k."""
    run = _merged(["--algorithm", "choco_sgd", "--compressor", "top_k", "--k", "3"])["run"][0]
    assert run["compressor"] == {"name": "top_k", "k": 3}
    comp = cli._build_algorithm(run).hyper["compressor"]
    assert comp.name == "top_k" and float(comp.params["k"]) == 3
    run = _merged(["--algorithm", "deepsqueeze", "--compressor", "random_k", "--fraction", "0.25",
                   "--compressor-arg", "scaled=false"])["run"][0]
    assert run["compressor"] == {"name": "random_k", "fraction": 0.25, "scaled": False}
    run = _merged(["--algorithm", "dcd_psgd", "--compressor", "sign", "--compressor-arg", "bucket=16",
                   "--compressor-arg", "scale=norm"])["run"][0]
    assert run["compressor"] == {"name": "sign", "bucket": 16, "scale": "norm"}
    assert cli._build_algorithm(run).hyper["compressor"].static == ("norm", 16)
    with pytest.raises(ValueError, match="--compressor-arg must look like NAME=VALUE"):
        _merged(["--algorithm", "dcd_psgd", "--compressor-arg", "bucket"])
    # a parameter the default compressor (quantize) lacks: the registry names it and what quantize takes
    run = _merged(["--algorithm", "dcd_psgd", "--k", "3"])["run"][0]
    with pytest.raises(ValueError, match="compressor 'quantize' has no parameter 'k'"):
        cli._build_algorithm(run)


def test_consensus_flag_applies_to_algorithms_with_a_consensus_step():
    runs = _merged(["--algorithm", "dpsgd", "choco_sgd", "deepsqueeze", "--compressor", "sign",
                    "--consensus", "0.3"])["run"]
    assert "consensus" not in runs[0] and runs[1]["consensus"] == runs[2]["consensus"] == 0.3
    assert float(cli._build_algorithm(runs[2]).hyper["consensus"]) == pytest.approx(0.3)
    for argv, flag in ((["--consensus", "0.3"], "--consensus"), (["--bits", "4"], "--bits"),
                       (["--compressor", "sign"], "--compressor")):
        with pytest.raises(ValueError, match=f"{flag} applies to algorithms that take .* none of dpsgd, cpsgd does"):
            _merged(["--algorithm", "dpsgd", "cpsgd", *argv])


def test_flags_without_algorithm_override_the_config_runs(tmp_path):
    cfg = cli.load_config(_write(tmp_path, CFG))
    runs = _merged(["--bits", "2", "--lr", "0.01"], cfg)["run"]
    assert runs[0] == {"algorithm": "dpsgd", "lr": 0.01}
    assert runs[1] == {"algorithm": "naive_compressed", "lr": 0.01, "compressor": {"name": "quantize", "bits": 2},
                       "label": "naive 4-bit"}
    # another compressor replaces the config's (its parameters do not carry over)
    runs = _merged(["--compressor", "sign"], cfg)["run"]
    assert runs[1]["compressor"] == {"name": "sign"}


def test_uncompressed_baseline_beside_compressed_runs_from_flags(tmp_path, capsys):
    out = tmp_path / "o"
    assert cli.main(["run", "--problem", "quadratic", "--n", "8", "--algorithm", "dpsgd", "dcd_psgd", "--bits", "4",
                     "--steps", "10", "--eval-every", "5", "--out", str(out), "--no-progress"]) == 0
    runs = json.loads((out / "results.json").read_text())
    assert [r["config"]["label"] for r in runs] == ["dpsgd", "dcd_psgd"]
    assert runs[0]["metrics"]["bits"][-1] > 4 * runs[1]["metrics"]["bits"][-1]  # 32-bit vs 4-bit messages


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(os.path.dirname(__file__), "..", "configs"))))
def test_shipped_configs_are_valid(name):
    """Every config in configs/ passes the strict key check and builds (no run); ``compare*.toml`` files are
    `jaxgossip compare` configs (the same layout plus seeds and grids)."""
    path = os.path.join(os.path.dirname(__file__), "..", "configs", name)
    if name.startswith("compare"):
        from jaxgossip import cli_compare

        kw = cli_compare.build(cli_compare.load(path))
        assert kw["algorithms"] and all(grid for _, grid in kw["algorithms"].values())
        return
    cfg = cli._merge_flags(cli.load_config(path), cli.build_parser().parse_args(["run", "--config", path]))
    problem, topology = cli._build_problem_and_topology(cfg)
    assert problem.n == topology.n
    assert len([cli._build_algorithm(r, i) for i, r in enumerate(cfg["run"])]) == len(cfg["run"])


def test_sweep_checks_its_config_and_runs(tmp_path, capsys):
    bad = _write(tmp_path, CFG.replace("[topology]", "[sweeep]\nlr = [0.05]\n[topology]"))
    assert cli.main(["sweep", "--config", bad, "--grid", "lr=0.05"]) == 2
    assert "unknown key 'sweeep' (did you mean 'sweep'?)" in capsys.readouterr().err
    good = _write(tmp_path, CFG.replace("[topology]", "[topology]\nn = 8", 1).split("[[run]]")[0]
                  + '[[run]]\nalgorithm = "dpsgd"\nlr = 0.05\n[sweep]\nlr = [0.05, 0.1]\nseeds = [0]\n')
    out = tmp_path / "s.csv"
    assert cli.main(["sweep", "--config", good, "--steps", "10", "--eval-every", "5", "--out", str(out)]) == 0
    assert os.path.getsize(out) > 0
