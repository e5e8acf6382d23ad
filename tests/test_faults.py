"""jg.faults: links that fail, workers that come and go (issue 23). Small runs: n = 8, d = 4, a few steps."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip import faults as F

sim_mod = importlib.import_module("jaxgossip.simulate")

N = 8
KEYS = ("loss", "consensus", "bits", "sim_time")


@pytest.fixture(scope="module")
def quad():
    return jg.problems.quadratic(n_workers=N, dim=4, samples_per_worker=6, batch_size=2, heterogeneity=1.0, seed=0)


def _run(prob, alg=None, topo=None, **kw):
    kw.setdefault("steps", 12)
    kw.setdefault("eval_every", 4)
    return jg.simulate(prob, alg or jg.algorithms.dpsgd(lr=0.05), topo or jg.topology.ring(N), **kw)


def _same(a, b, keys=KEYS):
    return all(np.array_equal(a.metrics[k], b.metrics[k], equal_nan=True) for k in keys)


@pytest.mark.parametrize("backend, shard", [("gather", "auto"), ("dense", False), ("sparse", False)])
def test_no_fault_is_the_fault_free_run_bit_for_bit(quad, backend, shard):
    free = _run(quad, backend=backend, shard=shard)
    assert free.config["backend"] == backend
    for faults in ([F.link_failures(0.0), F.churn(0.0, 0.5)],
                   [F.link_failures(0.0, burst=3.0), F.availability(np.ones((12, N), bool))]):
        r = _run(quad, backend=backend, shard=shard, faults=faults)
        assert _same(free, r), (faults, {k: (free.metrics[k], r.metrics[k]) for k in KEYS})
        assert np.all(r.metrics["links_up"][1:] == 1.0) and np.all(r.metrics["workers_online"][1:] == 1.0)
        assert np.isnan(r.metrics["links_up"][0])
        np.testing.assert_array_equal(np.asarray(r.state.x), np.asarray(free.state.x))


_SHIFT_SNIPPET = """
import numpy as np, jax, jaxgossip as jg
from jaxgossip import faults as F
assert len(jax.devices()) == 8
q = jg.problems.quadratic(n_workers=8, dim=4, samples_per_worker=6, batch_size=2, heterogeneity=1.0, seed=0)
run = lambda shard, faults=None: jg.simulate(q, jg.algorithms.dpsgd(lr=0.05), jg.topology.ring(8), steps=12,
                                             eval_every=4, backend="shift", shard=shard, faults=faults)
keys = ("loss", "consensus", "bits", "sim_time")
same = lambda a, b, ks=keys: all(np.array_equal(a.metrics[k], b.metrics[k], equal_nan=True) for k in ks) and (
    np.array_equal(np.asarray(a.state.x), np.asarray(b.state.x)))
free = {s: run(s) for s in (False, True)}
print(free[True].config["devices"], same(free[False], free[True]))
for s in (False, True):
    for f in ([F.link_failures(0.0), F.churn(0.0, 0.5)], [F.link_failures(0.0, burst=3.0),
                                                          F.availability(np.ones((12, 8), bool))]):
        print(same(free[s], run(s, f)))
f = [F.link_failures(0.3, burst=2.0), F.churn(0.2, 0.4)]
one, eight = run(False, f), run(True, f)
print(same(one, eight, keys + ("links_up", "workers_online")), bool(np.all(one.metrics["links_up"][1:] < 1)))
"""


def test_shift_no_fault_bit_for_bit_and_same_on_one_and_eight_devices():
    """On a ring's shift (ppermute when sharded) backend, p = 0 and an always-true mask give the fault-free run bit for
    bit on 1 and 8 devices, and a faulty run has the same numbers on 1 and 8 devices. Run in a fresh process with XLA's
    default CPU code generator, as a user's run compiles, and the suite's fast compiles (XLA:CPU's legacy emitters,
    ``--xla_cpu_use_fusion_emitters=false``, contract sums into FMAs differently in two programs: 1-ulp differences that
    break the fault-free 1-vs-8-device identity of tests/test_sharding.py too)."""
    import os
    import subprocess
    import sys

    from _fresh import user_xla_flags

    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["XLA_FLAGS"] = " ".join(user_xla_flags().split() + ["--xla_force_host_platform_device_count=8"])
    env["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"  # as the default_codegen tests (tests/conftest.py)
    out = subprocess.run([sys.executable, "-c", _SHIFT_SNIPPET], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["8", "True"] + ["True"] * 4 + ["True", "True"], out.stdout


def test_bits_scale_with_links_up(quad):
    free = _run(quad, backend="shift")
    per_window = np.diff(free.metrics["bits"])
    assert np.all(per_window == per_window[0]) and per_window[0] > 0
    for faults in (F.link_failures(0.4), F.link_failures(0.4, burst=4.0), F.churn(0.3, 0.3)):
        r = _run(quad, backend="shift", faults=faults)
        got = np.diff(r.metrics["bits"])
        np.testing.assert_allclose(got, r.metrics["links_up"][1:] * per_window[0], rtol=1e-6)
        assert np.all(got < per_window[0])


def _masked_W(topo, backend, faults, t=0, seed=3):
    """W_t of step t, read by applying the step's masked mixing to the identity."""
    mixing = jg.gossip.make_mixing(topo, backend)
    faults = F.as_faults(faults)
    fplan = F.plan(faults, mixing, 0, topo.n)
    st = jax.tree.map(jnp.asarray, F.init_state(fplan))
    _, online, mix, links_up, _ = F.step(fplan, F.params(faults), st, jax.random.key(seed), jnp.int32(t), mixing)
    return np.asarray(mix(jnp.eye(topo.n, dtype=jnp.float32))), mix, float(links_up), online


@pytest.mark.parametrize("backend", ["shift", "gather", "dense", "sparse"])
def test_masked_W_symmetric_doubly_stochastic(backend):
    topo = jg.topology.torus(4, 4) if backend != "dense" else jg.topology.ring(8)
    n = topo.n
    W = topo.W if isinstance(topo.W, np.ndarray) else topo.W.toarray()
    for seed in range(3):
        Wt, mix, links_up, _ = _masked_W(topo, backend, F.link_failures(0.5), seed=seed)
        np.testing.assert_allclose(Wt, Wt.T, atol=1e-7)
        np.testing.assert_allclose(Wt.sum(0), 1.0, atol=1e-6)
        np.testing.assert_allclose(Wt.sum(1), 1.0, atol=1e-6)
        off = ~np.eye(n, dtype=bool)
        kept = (Wt != 0) & off
        assert np.all((Wt[off] == 0) | np.isclose(Wt[off], W[off]))  # a link carries its weight or nothing
        assert 0 < kept.sum() < ((W != 0) & off).sum()
        np.testing.assert_allclose(np.diag(Wt), np.diag(W) + (W * off * ~kept).sum(1), atol=1e-6)
        np.testing.assert_array_equal(np.asarray(mix.sends), kept.sum(0))  # sends / receives: the live links
        np.testing.assert_array_equal(np.asarray(mix.receives), kept.sum(1))
        assert links_up == pytest.approx(kept.sum() / ((W != 0) & off).sum())


def test_offline_worker_model_does_not_move(quad):
    mask = np.ones((20, N), bool)
    mask[:10, 3] = False
    for alg in (jg.algorithms.dpsgd(lr=0.05), jg.algorithms.gradient_tracking(lr=0.05)):
        x0 = np.asarray(sim_mod.initial_models(quad))
        r = _run(quad, alg, steps=10, eval_every=5, backend="shift", faults=F.availability(mask))
        x = np.asarray(r.state.x)
        np.testing.assert_array_equal(x[3], x0[3])
        assert not np.allclose(x[[2, 4]], x0[[2, 4]])
        np.testing.assert_allclose(r.metrics["workers_online"][1:], 7 / 8)
        np.testing.assert_allclose(r.metrics["links_up"][1:], 6 / 8)  # ring(8): worker 3's two links are down
        r20 = _run(quad, alg, steps=20, eval_every=5, backend="shift", faults=F.availability(mask))
        assert not np.array_equal(np.asarray(r20.state.x)[3], x0[3])  # it returns at step 10 and moves again


def test_churn_stationary_fraction(quad):
    r = _run(quad, steps=3000, eval_every=3000, backend="shift", faults=F.churn(0.1, 0.3))
    assert r.metrics["workers_online"][-1] == pytest.approx(0.3 / 0.4, abs=0.04)
    assert r.config["faults"] == [{"kind": "churn", "p_leave": 0.1, "p_return": 0.3}]


def test_burst_mean_run_length():
    topo = jg.topology.ring(8)
    mixing = jg.gossip.make_mixing(topo, "shift")
    faults = (F.link_failures(0.2, burst=5.0),)
    fplan = F.plan(faults, mixing, 0, 8)
    prm = F.params(faults)

    def body(st, t):
        st2, _, _, _, _ = F.step(fplan, prm, st, jax.random.fold_in(jax.random.key(0), t), t, mixing)
        return st2, st2[0]

    _, down = jax.lax.scan(body, jax.tree.map(jnp.asarray, F.init_state(fplan)), jnp.arange(6000))
    down = np.asarray(down)  # (steps, links)
    assert down.mean() == pytest.approx(0.2, abs=0.03)
    starts = (down[1:] & ~down[:-1]).sum()
    assert down[1:].sum() / starts == pytest.approx(5.0, rel=0.15)


def test_sweep_over_p_is_one_program(quad):
    before = sim_mod.TRACE_COUNT["chunk"]
    df = jg.sweep(quad, jg.algorithms.dpsgd(lr=0.05), jg.topology.ring(N), steps=12, eval_every=4,
                  grid={"faults.p": [0.0, 0.3, 0.6]}, faults=F.link_failures(0.1))
    assert sim_mod.TRACE_COUNT["chunk"] - before == 1
    last = df[df.step == 12].sort_values("hp.faults.p")
    assert list(last["hp.faults.p"]) == [0.0, 0.3, 0.6]
    up = last["links_up"].to_numpy()
    assert up[0] == 1.0 and up[0] > up[1] > up[2]
    free = _run(quad, backend="dense")
    np.testing.assert_allclose(last["bits"].iloc[0], free.metrics["bits"][-1])
    # a list with two p's: faults.0.p / faults.1.p; the bare name is ambiguous
    two = [F.link_failures(0.1), F.link_failures(0.1, burst=2.0)]
    df = jg.sweep(quad, jg.algorithms.dpsgd(lr=0.05), jg.topology.ring(N), steps=4, eval_every=4,
                  grid={"faults.1.burst": [2.0, 4.0]}, faults=two)
    assert sorted(df["hp.faults.1.burst"].unique()) == [2.0, 4.0]
    with pytest.raises(ValueError, match="faults.p"):
        jg.sweep(quad, jg.algorithms.dpsgd(lr=0.05), jg.topology.ring(N), steps=4, eval_every=4,
                 grid={"faults.p": [0.1]}, faults=two)
    with pytest.raises(ValueError, match="faults.p"):
        jg.sweep(quad, jg.algorithms.dpsgd(lr=0.05), jg.topology.ring(N), steps=4, eval_every=4,
                 grid={"faults.p": [1.5]}, faults=F.link_failures(0.1))
    with pytest.raises(ValueError, match="burst"):
        jg.sweep(quad, jg.algorithms.dpsgd(lr=0.05), jg.topology.ring(N), steps=4, eval_every=4,
                 grid={"faults.burst": [2.0]}, faults=F.link_failures(0.1))


def _algorithm(name):
    c = jg.compressors.quantize(bits=4) if hasattr(jg.compressors, "quantize") else None
    kw = {"naive_compressed": dict(compressor=c), "q_dsgd": dict(compressor=c), "quantimed_dsgd": dict(compressor=c)}
    return jg.algorithms.get(name, **kw.get(name, {}))


def test_every_algorithm_runs_with_faults_or_refuses(quad):
    ring = jg.topology.ring(N)
    lazy = jg.topology.Topology((np.eye(N) + ring.W) / 2)  # D² needs W's eigenvalues above -1/3
    for name in jg.algorithms.REGISTRY:
        if name in F.REFUSED:
            continue
        r = _run(quad, _algorithm(name), lazy, steps=2, eval_every=2, faults=[F.link_failures(0.3), F.churn(0.2, 0.5)])
        assert np.all(np.isfinite(r.metrics["loss"])), name
        assert r.config["faults"][0] == {"kind": "link_failures", "p": 0.3, "burst": None}


@pytest.mark.parametrize("name", sorted(F.REFUSED))
def test_refused_algorithms_say_why(quad, name):
    from jaxgossip.compressors import top_k

    kw = {"compressor": top_k(2)} if name in ("dcd_psgd", "ecd_psgd", "choco_sgd", "deepsqueeze", "beer", "csgd",
                                               "ec_sgd", "doublesqueeze", "ef21", "star_qgd") else {}
    try:
        alg = jg.algorithms.get(name, **kw)
    except (TypeError, ValueError):
        alg = jg.algorithms.get(name)
    with pytest.raises(ValueError, match=f"faults are not supported by {name}"):
        _run(quad, alg, jg.topology.ring(N), steps=4, eval_every=2, faults=F.link_failures(0.1))


def test_validation_errors(quad):
    for bad in (-0.1, 1.5, "0.1", True, [0.1]):
        with pytest.raises(ValueError, match="p must"):
            F.link_failures(bad)
    with pytest.raises(ValueError, match="burst"):
        F.link_failures(0.1, burst=0.5)
    with pytest.raises(ValueError, match="burst"):
        F.link_failures(0.9, burst=2.0)  # needs burst >= p / (1 - p) = 9
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        F.link_failures(1.0, burst=2.0)
    with pytest.raises(ValueError, match="p_return"):
        F.churn(0.1, 1.2)
    with pytest.raises(ValueError, match="p_return=0"):
        F.churn(0.1, 0.0)
    with pytest.raises(ValueError, match="mask"):
        F.availability(np.ones(8, bool))
    with pytest.raises(ValueError, match="booleans"):
        F.availability(np.full((12, 8), 0.5))
    with pytest.raises(ValueError, match=r"T >= steps = 12"):
        _run(quad, faults=F.availability(np.ones((11, N), bool)))
    with pytest.raises(ValueError, match="n = 8"):
        _run(quad, faults=F.availability(np.ones((12, N + 1), bool)))
    with pytest.raises(ValueError, match="faults must be"):
        _run(quad, faults=0.1)
    directed = jg.topology.directed_exponential(N) if hasattr(jg.topology, "directed_exponential") else None
    if directed is not None:
        with pytest.raises(ValueError, match="undirected"):
            _run(quad, jg.algorithms.sgp(lr=0.05), directed, faults=F.link_failures(0.1))


def test_availability_recorded_by_digest(quad):
    mask = np.ones((12, N), bool)
    mask[2:5, 1] = False
    r = _run(quad, faults=F.availability(mask))
    rec = r.config["faults"][0]
    assert rec["kind"] == "availability" and rec["shape"] == [12, N] and len(rec["mask"]) == 16
    mask2 = mask.copy()
    mask2[6, 2] = False
    assert F.availability(mask2).record()["mask"] != rec["mask"]


def test_checkpoint_resumes_fault_chains(quad, tmp_path):
    faults = [F.link_failures(0.3, burst=3.0), F.churn(0.2, 0.4)]
    whole = _run(quad, steps=16, eval_every=4, backend="shift", faults=faults, shard=False)
    path = str(tmp_path / "ck.npz")
    jg.checkpoint.simulate(quad, jg.algorithms.dpsgd(lr=0.05), jg.topology.ring(N), steps=16, eval_every=4,
                           backend="shift", faults=faults, shard=False, path=path, every=8, stop_at=8)
    rest = jg.checkpoint.simulate(quad, jg.algorithms.dpsgd(lr=0.05), jg.topology.ring(N), steps=16, eval_every=4,
                                  backend="shift", faults=faults, shard=False, path=path, every=8)
    assert _same(whole, rest, KEYS + ("links_up", "workers_online"))
