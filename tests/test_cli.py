import json
import os

import pytest

from jaxgossip import cli

CFG = """
steps = 40
eval_every = 20
[problem]
name = "quadratic"
n_workers = 8
dim = 5
samples_per_worker = 10
batch_size = 2
[topology]
name = "ring"
[[run]]
algorithm = "dpsgd"
lr = 0.05
[[run]]
algorithm = "naive_compressed"
lr = 0.05
compressor = { name = "quantize", bits = 4 }
label = "naive 4-bit"
"""


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
