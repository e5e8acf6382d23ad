"""``"auto"`` lowerings chosen by measurement (jaxgossip.lowering): the choice logic with a fake clock, the cache file,
the record in Result.config and the verbose report. Nothing here times anything real: every candidate advances a
fake clock by a scripted cost."""

import json

import numpy as np
import pytest
from flax import linen as nn

import jaxgossip as jg
from jaxgossip import lowering


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.calls = []

    def __call__(self):
        return self.now

    def runner(self, name, costs):
        """A candidate that costs ``costs[k]`` seconds on its k-th call (the last one after that)."""
        count = [0]

        def run():
            self.now += costs[min(count[0], len(costs) - 1)]
            self.calls.append(name)
            count[0] += 1

        return run


def test_measure_interleaves_takes_minima_and_prunes():
    clock = FakeClock()
    fns = {"a": clock.runner("a", [3.5, 3.0, 4.0]), "b": clock.runner("b", [2.0, 2.5, 1.0]),
           "c": clock.runner("c", [9.0])}
    times = lowering.measure(fns, timer=clock, repeats=3, warmup=False, prune=2.0)
    # round 1: a 3.5, b 2, c 9 -> c (> 2 x 2) is dropped; round 2: a 3, b 2.5; round 3: a 4, b 1
    assert clock.calls == ["a", "b", "c", "a", "b", "a", "b"]
    assert times == {"a": 3.0, "b": 1.0, "c": 9.0}
    assert lowering.choose(times) == "b"


def test_measure_warmup_is_untimed():
    clock = FakeClock()
    fns = {"a": clock.runner("a", [100.0, 1.0]), "b": clock.runner("b", [0.5, 2.0])}
    times = lowering.measure(fns, timer=clock, repeats=1)
    assert clock.calls == ["a", "b", "a", "b"] and times == {"a": 1.0, "b": 2.0}


def test_choose_ties_keep_the_given_order():
    assert lowering.choose({"x": 1.0, "y": 1.0}) == "x"
    assert lowering.choose({"y": 1.0, "x": 1.0}) == "y"


def _candidates(clock, costs, built):
    def build(name):
        built.append(name)
        return clock.runner(name, [costs[name]])

    return {name: (lambda name=name: build(name)) for name in costs}


def test_resolve_measures_once_then_reads_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JAXGOSSIP_LOWERING", "measure")
    monkeypatch.setenv("JAXGOSSIP_VERBOSE", "1")
    path = str(tmp_path / "choices.json")
    clock, built = FakeClock(), []
    sig = {"model": "m", "samples": [2, 3]}
    rec = lowering.resolve(_candidates(clock, {"fast": 1.0, "slow": 3.0}, built), sig, "slow", what="p",
                           timer=clock, path=path)
    assert rec == {"choice": "fast", "by": "measurement", "ms": {"fast": 1000.0, "slow": 3000.0}}
    assert sorted(built) == ["fast", "slow"]
    err = capsys.readouterr().err
    assert "lowering fast (measured" in err and path in err
    saved = json.load(open(path))
    (key, entry), = saved.items()
    assert entry["choice"] == "fast" and entry["key"]["problem"] == sig
    for field in ("platform", "device_kind", "jax", "jaxlib"):
        assert field in entry["key"]
    assert key == lowering.signature_key(sig)[0]
    # second time: from the file, nothing built or timed
    built.clear()
    rec = lowering.resolve(_candidates(clock, {"fast": 9.0, "slow": 0.1}, built), sig, "slow", what="p",
                           timer=clock, path=path)
    assert rec["choice"] == "fast" and rec["by"] == "cache" and built == []
    assert "lowering fast (cached" in capsys.readouterr().err
    # another signature is measured again, and both stay in the file
    rec = lowering.resolve(_candidates(clock, {"fast": 9.0, "slow": 0.1}, built), {**sig, "samples": [4, 3]},
                           "fast", what="p", timer=clock, path=path)
    assert rec["choice"] == "slow" and rec["by"] == "measurement" and len(json.load(open(path))) == 2


def test_resolve_platform_mode_never_times(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JAXGOSSIP_LOWERING", "platform")
    monkeypatch.setenv("JAXGOSSIP_VERBOSE", "0")
    built, path = [], str(tmp_path / "c.json")
    rec = lowering.resolve(_candidates(FakeClock(), {"a": 1.0, "b": 0.1}, built), {}, "a", what="p", path=path)
    assert rec == {"choice": "a", "by": "platform"} and built == []
    assert not (tmp_path / "c.json").exists() and capsys.readouterr().err == ""


def test_mode_refuses_unknown_values(monkeypatch):
    monkeypatch.setenv("JAXGOSSIP_LOWERING", "fastest")
    with pytest.raises(ValueError, match="JAXGOSSIP_LOWERING"):
        lowering.mode()


def test_cache_path_sits_beside_the_compilation_cache(monkeypatch, tmp_path):
    from jaxgossip.cache import lowering_cache_path

    monkeypatch.delenv("JAXGOSSIP_LOWERING_CACHE", raising=False)
    monkeypatch.setenv("JAXGOSSIP_CACHE", str(tmp_path / "xla"))
    import jax

    if jax.config.jax_compilation_cache_dir:
        pytest.skip("a compilation cache is on in this process")
    assert lowering_cache_path() == str(tmp_path / "jaxgossip-lowering.json")
    monkeypatch.setenv("JAXGOSSIP_LOWERING_CACHE", str(tmp_path / "x.json"))
    assert lowering_cache_path() == str(tmp_path / "x.json")


class TinyConv(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(2, (3, 3), padding="SAME")(x))
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


class TinyMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


def _data(shape=(8, 8, 1), n=2, per_worker=4):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n * per_worker + 4,) + shape).astype(np.float32)
    y = rng.integers(0, 10, len(X))
    return X, y, X[:4], y[:4]


def _conv_of(problem):
    module_conv = getattr(problem.model.module, "conv", None)
    return module_conv if module_conv in ("im2col", "xla") else problem.model.conv


@pytest.fixture
def fake_device(monkeypatch, tmp_path):
    """Measure mode with a fake clock: candidate (conv, worker_map) costs what ``costs`` says."""
    clock, costs = FakeClock(), {}
    monkeypatch.setenv("JAXGOSSIP_LOWERING", "measure")
    monkeypatch.setenv("JAXGOSSIP_LOWERING_CACHE", str(tmp_path / "choices.json"))
    monkeypatch.setattr(lowering, "clock", clock)
    monkeypatch.setattr(lowering, "gradient_runner",
                        lambda p: clock.runner((_conv_of(p), p.worker_map), [costs[(_conv_of(p), p.worker_map)]]))
    return clock, costs


def test_from_flax_takes_the_measured_fastest_and_records_it(fake_device):
    clock, costs = fake_device
    costs.update({("im2col", "vmap"): 3.0, ("im2col", "map"): 2.0, ("xla", "vmap"): 1.0, ("xla", "map"): 4.0})
    p = jg.problems.from_flax(TinyConv(), _data(), n_workers=2, batch_size=2, eval_batch=None)
    assert (_conv_of(p), p.worker_map) == ("xla", "vmap")  # not the CPU platform rule (im2col, map)
    assert set(clock.calls) == set(costs)
    fixed = jg.problems.from_flax(TinyConv(), _data(), n_workers=2, batch_size=2, eval_batch=None, conv="xla",
                                  worker_map="vmap")
    assert p.model == fixed.model and p.worker_map == fixed.worker_map  # the same program as the fixed choice
    res = jg.simulate(p, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(2), steps=1, eval_every=1, shard=False,
                      metrics=["loss"])
    assert res.config["model"]["lowering"] == {"conv": "xla", "worker_map": "vmap", "by": "measurement"}
    assert lowering.lowering_record(fixed)["conv"] == "xla"  # equal nets share the record
    # a second build reads the file: nothing timed
    clock.calls.clear()
    costs.update({("xla", "vmap"): 9.0})
    q = jg.problems.from_flax(TinyConv(), _data(), n_workers=2, batch_size=2, eval_batch=None)
    assert clock.calls == [] and (_conv_of(q), q.worker_map) == ("xla", "vmap")


def test_zoo_model_auto_conv_is_chosen(fake_device):
    clock, costs = fake_device
    costs.update({("im2col", "vmap"): 2.0, ("im2col", "map"): 1.0, ("xla", "vmap"): 3.0, ("xla", "map"): 4.0})
    p = jg.problems.from_flax(jg.models.LeNet5(), _data((28, 28, 1)), n_workers=2, batch_size=2, eval_batch=None)
    assert p.model.module.conv == "im2col" and p.worker_map == "map"
    costs.update({("im2col", "vmap"): 5.0, ("im2col", "map"): 5.0, ("xla", "vmap"): 3.0, ("xla", "map"): 4.0})
    p = jg.problems.from_flax(jg.models.LeNet5(), _data((28, 28, 1)), n_workers=2, batch_size=4, eval_batch=None)
    assert p.model.module.conv == "xla" and p.worker_map == "vmap"  # another batch: another signature


def test_no_convolution_only_the_worker_map_is_measured(fake_device):
    clock, costs = fake_device
    costs.update({("im2col", "vmap"): 2.0, ("im2col", "map"): 1.0})
    p = jg.problems.from_flax(TinyMLP(), _data(), n_workers=2, batch_size=2, eval_batch=None)
    assert sorted(set(clock.calls)) == [("im2col", "map"), ("im2col", "vmap")] and p.worker_map == "map"


def test_given_lowerings_are_not_measured(fake_device):
    clock, _ = fake_device
    p = jg.problems.from_flax(TinyConv(), _data(), n_workers=2, batch_size=2, eval_batch=None, conv="xla",
                              worker_map="vmap")
    assert clock.calls == [] and (_conv_of(p), p.worker_map) == ("xla", "vmap")
    from jaxgossip.lowering import lowering_record

    assert lowering_record(p)["conv"] == "xla" and lowering_record(p)["worker_map"] == "vmap"


def test_suite_runs_auto_on_the_platform_rule():
    """conftest sets JAXGOSSIP_LOWERING=platform: "auto" is the fixed CPU rule here (im2col, lax.map)."""
    p = jg.problems.from_flax(TinyConv(), _data(), n_workers=2, batch_size=2, eval_batch=None)
    assert (_conv_of(p), p.worker_map) == ("im2col", "map")
    assert lowering.lowering_record(p)["by"] == "platform"


def test_a_model_that_names_its_convolution_keeps_it(fake_device):
    """LeNet5(conv="xla") passes XLA's convolution to its layers: from_flax's conv="auto" cannot change it, so only the
    worker map is measured."""
    clock, costs = fake_device
    costs.update({("xla", "vmap"): 1.0, ("xla", "map"): 2.0})
    p = jg.problems.from_flax(jg.models.LeNet5(conv="xla"), _data((28, 28, 1)), n_workers=2, batch_size=2,
                              eval_batch=None)
    assert sorted(set(clock.calls)) == [("xla", "map"), ("xla", "vmap")]
    assert p.model.module.conv == "xla" and p.worker_map == "vmap"
    assert lowering.lowering_record(p) == {"conv": "xla", "worker_map": "vmap", "by": "measurement"}


def test_each_problem_keeps_its_own_record(fake_device):
    """The record travels with the problem: building an equal model with a given lowering afterwards does not turn a
    measured choice into a given one (it did while the record was kept per model in a process-wide table), and a
    problem whose worker map is changed afterwards is recorded as given."""
    clock, costs = fake_device
    costs.update({("im2col", "vmap"): 2.0, ("im2col", "map"): 1.0, ("xla", "vmap"): 3.0, ("xla", "map"): 4.0})
    p = jg.problems.from_flax(jg.models.LeNet5(), _data((28, 28, 1)), n_workers=2, batch_size=2, eval_batch=None)
    assert lowering.lowering_record(p) == {"conv": "im2col", "worker_map": "map", "by": "measurement"}
    fixed = jg.problems.from_flax(jg.models.LeNet5(conv="im2col"), _data((28, 28, 1)), n_workers=2, batch_size=2,
                                  eval_batch=None, worker_map="map")
    assert lowering.lowering_record(fixed) == {"conv": "im2col", "worker_map": "map", "by": "given"}
    assert lowering.lowering_record(p)["by"] == "measurement"
    assert lowering.lowering_record(p.replace(worker_map="vmap"))["by"] == "given"


def test_probes_drop_slow_candidates_before_they_are_built(tmp_path, monkeypatch):
    """Each candidate is timed once on the probe first; one over PROBE_PRUNE x the fastest probe is never built for
    the real batch, the others are measured as before; the record keeps both sets of times."""
    monkeypatch.setenv("JAXGOSSIP_LOWERING", "measure")
    clock, built, probed = FakeClock(), [], []
    probes = _candidates(clock, {"a": 1.0, "b": 2.0, "c": 4.5}, probed)
    rec = lowering.resolve(_candidates(clock, {"a": 3.0, "b": 2.0, "c": 0.1}, built), {"k": 1}, "a", what="p",
                           timer=clock, path=str(tmp_path / "c.json"), probes=probes)
    assert probed == ["a", "b", "c"] and built == ["a", "b"]  # c: 4.5 > 4 x 1.0 on the probe
    assert rec["choice"] == "b" and set(rec["ms"]) == {"a", "b"} and rec["probe_ms"] == {"a": 1e3, "b": 2e3, "c": 4.5e3}
    # a single survivor is taken as it is: nothing built at the real batch
    built.clear()
    rec = lowering.resolve(_candidates(clock, {"a": 3.0, "b": 2.0}, built), {"k": 2}, "a", what="p", timer=clock,
                           path=str(tmp_path / "c.json"), probes=_candidates(clock, {"a": 9.0, "b": 2.0}, []))
    assert built == [] and rec["choice"] == "b" and rec["ms"] == {}


def test_from_flax_probes_a_large_batch_only(fake_device, monkeypatch):
    """A batch of 64 is probed at 64 / 16 = 4 (XLA's convolution, 10x slower there, is never compiled at 64); a batch
    of 32 (probe 2 < PROBE_MIN_BATCH) is timed as it is."""
    clock, costs = fake_device
    batches = []

    def runner(p):  # XLA's convolution: 10x slower on the probe's batch than its real-batch cost says
        conv = _conv_of(p)
        batches.append((conv, p.batch_size))
        slow = 10.0 if conv == "xla" and p.batch_size == 4 else 1.0
        return clock.runner((conv, p.worker_map), [costs[(conv, p.worker_map)] * slow])

    monkeypatch.setattr(lowering, "gradient_runner", runner)
    costs.update({("im2col", "vmap"): 2.0, ("im2col", "map"): 1.0, ("xla", "vmap"): 0.5, ("xla", "map"): 0.6})
    p = jg.problems.from_flax(TinyConv(), _data(n=2, per_worker=64), n_workers=2, batch_size=64, eval_batch=None)
    assert sorted(set(b for _, b in batches)) == [4, 64]
    assert [c for c, b in batches if b == 64] == ["im2col", "im2col"]  # the XLA candidates: dropped by the probe
    assert (_conv_of(p), p.worker_map) == ("im2col", "map")
    batches.clear()
    jg.problems.from_flax(TinyConv(), _data(n=2, per_worker=64), n_workers=2, batch_size=32, eval_batch=None)
    assert sorted(set(b for _, b in batches)) == [32]
