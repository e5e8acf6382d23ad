"""Every hyperparameter acts or is refused (issue 22, item 1): no argument or swept key is accepted and then ignored.

The cases: every algorithm of ``jg.algorithms.REGISTRY`` (with a compressor where it takes one; the star-network
methods also in the configurations where some constants only check others), and every factory that takes an optimizer
once more with an optax optimizer of each convention (one that holds its learning rate, where ``lr`` multiplies its
update, and a direction transform). Their keys: every traced hyperparameter in ``algo.hyper``, every compressor
parameter (``compressor.<p>``) and ``topology``.

* :func:`test_every_key_reaches_the_run_or_is_refused` (every case): the models, states, bits and seconds of a few
  steps, traced as a function of the keys' values, depend on every key (jax's dead-code elimination of the traced
  program: a value the steps never read is dropped), or ``jg.sweep`` refuses the key with a ValueError before
  compiling, and then the run indeed does not depend on it. Tracing only (no compilation), so every case is checked
  in a few seconds, and a random draw that happens to coincide for two values (AD-PSGD's neighbour choices over three
  steps on ring(4) and complete(4)) cannot hide or fake an effect.
* :func:`test_two_values_give_two_trajectories` (one compiled ``jg.sweep`` per case, on a subset that runs every kind
  of key: lr under both optax conventions, consensus, every compressor family's parameters, QuanTimed's deadline, the
  constants of the star methods, the topology): the two values of every key give different runs, compared between
  grid points that differ in that key alone, in every combination of the others.
* the issue's example: ``dpsgd(optimizer=optax.sgd(0.05, momentum=0.9))`` and ``optax.adam(1e-2)`` swept over lr give
  three different losses, and lr is recorded as a multiplier of the optimizer's update.

A new algorithm, hyperparameter or compressor without values here fails the coverage test until it is added.
"""

from __future__ import annotations

import importlib
import inspect
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax._src.interpreters import partial_eval as pe

import jaxgossip as jg
from jaxgossip.algorithms._base import DIRECTIONS_ONLY, Context, local_update
from jaxgossip.simulate import initial_models, prepare

sweep_module = importlib.import_module("jaxgossip.sweep")  # the module (jg.sweep is the function)
A, C = jg.algorithms, jg.compressors
N, D, STEPS = 4, 6, 3
L, MU = 1.3, 0.07  # constants passed to the star-network methods (0 < mu < L; the problem's are ~1.29 and 0.072)

#: two valid values of every traced hyperparameter (a sweep's grid is the product over its keys)
VALUES = {
    "lr": (0.05, 0.2),
    "consensus": (0.4, 0.9),
    "alpha": (0.05, 0.2),
    "eps": (0.3, 0.8),
    "deadline": (0.002, 0.006),  # 2 and 6 samples at the default 1000 samples / s
    "s": (0.5, 2.0),
    "e": (0.01, 0.05),
    "rho": (1.0, 2.0),
    "L": (1.3, 1.0),
    "mu": (0.07, 0.2),
    "eta": (0.5, 1.0),
    "c_prime": (0.98, 0.99),
    "H": (2.0, 3.0),  # local_sgd: step 1 averages at H = 2, not at H = 3
}
#: two valid values of every compressor parameter
COMPRESSOR_VALUES = {
    "bits": (4.0, 8.0),
    "levels": (2.0, 8.0),
    "p": (0.3, 0.7),
    "k": (2.0, 4.0),
    "fraction": (0.2, 1.0),
    "e": (0.05, 0.3),
    "radius": (0.5, 2.0),
    "scale": (2.0**-4, 2.0**-8),
    "low_bits": (8.0, 20.0),
}
UPDATES_LR = (0.5, 2.0)  # lr multiplies the update of an optimizer in the "updates" convention


def _lazy_self_weighted(topo):
    return jg.topology.Topology((np.eye(N) + np.asarray(topo.W)) / 2, f"lazy {topo.name}")


TOPOLOGIES = (jg.topology.ring(N), jg.topology.complete(N))
#: D² needs W's smallest eigenvalue above -1/3 (ring(4) has -1/3): its graphs get more self weight
LAZY_TOPOLOGIES = tuple(_lazy_self_weighted(t) for t in TOPOLOGIES)

#: every compressor of the registry, in each form that has its own traced parameters
COMPRESSOR_FORMS = [C.bounded(), C.identity(), C.quantize(bits=4), C.sign(), C.sparsify(p=0.5), C.random_k(k=3),
                    C.random_k(fraction=0.5), C.top_k(k=3), C.top_k(fraction=0.5), C.qsgd(levels=4),
                    C.low_precision(), C.terngrad(), C.clip_low_bits(low_bits=16)]

#: (id, factory name, kwargs, keys that must be refused as having no effect)
BASE = [
    ("iade", "iade", dict(L=L, mu=MU), ()),
    ("iade-eta", "iade", dict(eta=1.0, L=L, mu=MU), ("L",)),
    ("iade-eta-cprime", "iade", dict(eta=1.0, c_prime=0.97, L=L, mu=MU), ("L", "mu")),
    ("aiade", "aiade", dict(L=L, mu=MU), ()),
    ("iade_sgd", "iade_sgd", dict(L=L, mu=MU), ()),
    ("iade_sgd-cprime", "iade_sgd", dict(c_prime=0.98, L=L, mu=MU), ("mu",)),
    ("star_gd", "star_gd", dict(L=L, mu=MU), ()),
    ("star_gd-eta", "star_gd", dict(eta=1.0), ()),
    ("star_nesterov", "star_nesterov", dict(L=L, mu=MU), ()),
    ("star_qgd", "star_qgd", dict(e=0.01, L=L, mu=MU), ()),
    ("star_qgd-eta", "star_qgd", dict(e=0.01, eta=1.0), ()),
    ("async_dsgd", "async_dsgd", {}, ()),
    ("asgd", "asgd", {}, ()),
    ("csgd", "csgd", dict(compressor=C.random_k(fraction=0.5)), ()),
    ("ec_sgd", "ec_sgd", dict(compressor=C.random_k(k=3)), ()),
    ("doublesqueeze", "doublesqueeze", dict(compressor=C.bounded(e=0.1, radius=1.0)), ()),
    ("cpsgd", "cpsgd", {}, ()),
    ("dpsgd", "dpsgd", {}, ()),
    ("naive_compressed", "naive_compressed", dict(compressor=C.quantize(bits=4)), ()),
    ("dcd_psgd", "dcd_psgd", dict(compressor=C.qsgd(levels=4)), ()),
    ("ecd_psgd", "ecd_psgd", dict(compressor=C.sparsify(p=0.5)), ()),
    ("choco_sgd", "choco_sgd", dict(compressor=C.top_k(k=3), consensus=0.5), ()),
    ("deepsqueeze", "deepsqueeze", dict(compressor=C.top_k(fraction=0.5), consensus=0.5), ()),
    ("q_dsgd", "q_dsgd", {}, ()),
    ("quantimed_dsgd", "quantimed_dsgd", dict(compressor=C.clip_low_bits(low_bits=16)), ()),
    ("gradient_tracking", "gradient_tracking", {}, ()),
    ("exact_diffusion", "exact_diffusion", {}, ()),
    ("d2", "d2", {}, ()),
    ("ef21", "ef21", dict(compressor=C.top_k(k=3)), ()),
    ("beer", "beer", dict(compressor=C.top_k(k=3), consensus=0.5), ()),
    ("sgp", "sgp", {}, ()),
    ("powergossip", "powergossip", {}, ()),
    ("ad_psgd", "ad_psgd", {}, ()),
    ("local_sgd", "local_sgd", dict(H=2), ()),
]


def _takes_optimizer(factory):
    return "optimizer" in inspect.signature(A.REGISTRY[factory]).parameters


def _optax_cases():
    """Every factory that takes an optimizer, once per convention: an optax optimizer with its own learning rate
    (``lr`` then multiplies its update; the DIRECTIONS_ONLY algorithms refuse it) and a direction transform."""
    out = []
    for cid, factory, kwargs, refused in BASE:
        if cid != factory or not _takes_optimizer(factory):
            continue
        if factory not in DIRECTIONS_ONLY:
            out.append((f"{cid}+updates", factory, {**kwargs, "optimizer": optax.sgd(0.05, momentum=0.9)}, refused))
        out.append((f"{cid}+direction", factory, {**kwargs, "optimizer": optax.trace(0.9)}, refused))
    return out


CASES = BASE + _optax_cases()
BY_ID = {c[0]: c for c in CASES}
#: the cases also run as compiled sweeps, one program each: lr under both conventions (and with plain SGD in the
#: issue's test below), consensus, the topology, alpha / eps / deadline, the star methods' constants, and the
#: parameters of top-k, random-k, the bounded-error, low-precision and mantissa-clipping compressors
SWEPT = ["choco_sgd+updates", "ec_sgd+direction", "doublesqueeze", "q_dsgd", "quantimed_dsgd", "iade-eta-cprime",
         "iade_sgd", "star_qgd-eta"]


@pytest.fixture(scope="module")
def problem():
    return jg.problems.quadratic(n_workers=N, dim=D, samples_per_worker=8, batch_size=2, seed=0)


def _topologies(factory):
    return LAZY_TOPOLOGIES if factory == "d2" else TOPOLOGIES


def _keys(algo, factory):
    """``{grid key: (v1, v2)}``: every hyperparameter with a value (a None one, a default resolved from the problem,
    is set in another case of the same algorithm), every compressor parameter, and the topology."""
    keys = {}
    for name, value in algo.hyper.items():
        if value is None:
            continue
        if hasattr(value, "params") and hasattr(value, "name"):  # a compressor
            keys.update({f"{name}.{p}": COMPRESSOR_VALUES[p] for p in value.params})
        elif name == "lr" and getattr(algo.optimizer, "convention", None) == "updates":
            keys[name] = UPDATES_LR
        else:
            keys[name] = VALUES[name]
    keys["topology"] = _topologies(factory)
    return keys


def _build(factory, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return A.REGISTRY[factory](**kwargs)


class _WouldCompile(Exception):
    pass


def _sweep_refuses(monkeypatch, problem, algo, key, values):
    """``jg.sweep`` over ``key`` alone raises its "would not change the run" ValueError before any configuration
    runs (a run would raise _WouldCompile); returns the message."""

    def no_run(*args, **kwargs):
        raise _WouldCompile(key)

    with monkeypatch.context() as m:
        m.setattr(sweep_module, "_run_batch_of", no_run)
        with pytest.raises(ValueError, match="would not change the run") as err:
            jg.sweep(problem, algo, values[0], steps=STEPS, eval_every=STEPS, grid={key: list(values)})
    assert key in str(err.value)
    return str(err.value)


def _with_values(algo, values):
    """``algo`` with the hyperparameters and compressor parameters in ``values`` (traced values allowed)."""
    hyper = dict(algo.hyper)
    for key, v in values.items():
        if "." in key:
            outer, inner = key.split(".", 1)
            hyper[outer] = hyper[outer].replace(params={**hyper[outer].params, inner: v})
        else:
            hyper[key] = v
    return algo.replace(hyper=hyper)


def _used_keys(problem, algo, topology):
    """``{key: bool}``: whether STEPS steps (every state leaf, the bits and the seconds) depend on each traced
    hyperparameter and compressor parameter of ``algo`` and, as ``"topology"``, on the mixing matrix."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prep = prepare(problem, algo.replace(check_fn=None), topology, steps=STEPS, shard=False)  # no warnings
    algo = prep.algorithm
    names = [k for k in _keys(algo, "") if k != "topology"]
    values = {}
    for k in names:
        outer, _, inner = k.partition(".")
        values[k] = jnp.asarray(algo.hyper[outer].params[inner] if inner else algo.hyper[outer], jnp.float32)
    X0 = jnp.asarray(initial_models(prep.problem))

    def run(vals, mixing):
        a = _with_values(algo, vals)
        pricing = prep.pricing.on(mixing) if hasattr(prep.pricing, "on") else prep.pricing
        state = a.init(X0, Context(prep.problem, mixing, pricing, jnp.zeros((), jnp.int32)))
        bits = seconds = jnp.zeros((), jnp.float32)
        for t in range(STEPS):
            ctx = Context(prep.problem, mixing, pricing, jnp.asarray(t, jnp.int32))
            state, cost = a.step(state, jax.random.fold_in(jax.random.key(0), t), ctx)
            bits, seconds = bits + cost.bits, seconds + cost.seconds
        return jax.tree.leaves(state), bits, seconds

    closed = jax.make_jaxpr(run)(values, prep.mixing)
    _, used = pe.dce_jaxpr(closed.jaxpr, [True] * len(closed.jaxpr.outvars))
    order = sorted(values)  # a dict argument is flattened in key order; the mixing's leaves follow
    out = dict(zip(order, used[: len(order)]))
    out["topology"] = any(used[len(order):])
    return out


def test_coverage():
    """Every built-in algorithm and every compressor of the registries is here, in every form with its own traced keys
    (a user's algorithm added by jg.algorithms.register is not a built-in one)."""
    assert {c[1] for c in BASE} == set(A.BUILTINS)
    assert {c.name for c in COMPRESSOR_FORMS} == set(C.REGISTRY)
    used = set()
    for cid, factory, kwargs, _ in BASE:
        comp = kwargs.get("compressor") or _build(factory, kwargs).hyper.get("compressor")
        if comp is not None:
            used |= {(comp.name, p) for p in comp.params}
    wanted = {(c.name, p) for c in COMPRESSOR_FORMS for p in c.params}
    assert wanted <= used, f"compressor parameters never swept: {sorted(wanted - used)}"
    for factory in A.BUILTINS:
        if _takes_optimizer(factory):
            assert f"{factory}+direction" in BY_ID
            if factory in DIRECTIONS_ONLY:  # an optimizer holding its own learning rate is refused there
                with pytest.raises(ValueError, match="direction transform"):
                    _build(factory, {**BY_ID[factory][2], "optimizer": optax.sgd(0.05)})
            else:
                assert f"{factory}+updates" in BY_ID
    assert set(SWEPT) <= set(BY_ID)


@pytest.mark.parametrize("cid", list(BY_ID))
def test_every_key_reaches_the_run_or_is_refused(monkeypatch, problem, cid):
    _, factory, kwargs, refused = BY_ID[cid]
    algo = _build(factory, kwargs)
    keys = _keys(algo, factory)
    topologies = keys["topology"]
    if algo.kind != "decentralized":
        refused = (*refused, "topology")  # an exact average never mixes over a graph
    used = _used_keys(problem, algo, topologies[0] if algo.kind == "decentralized" else None)
    assert set(used) == set(keys)
    for key in refused:
        _sweep_refuses(monkeypatch, problem, algo, key, keys[key] if key != "topology" else topologies)
        assert not used[key], f"{cid}: {key} is refused by jg.sweep but the run depends on it"
    ignored = [k for k in keys if k not in refused and not used[k]]
    assert not ignored, f"{cid}: {ignored} are accepted by jg.sweep and never reach the run"


def _point(g, keys):
    return tuple(g[f"hp.{k}"].iloc[0] for k in keys)


def _label(v):
    return v.name if hasattr(v, "W") else float(v)


@pytest.mark.parametrize("cid", SWEPT)
def test_two_values_give_two_trajectories(problem, cid):
    _, factory, kwargs, refused = BY_ID[cid]
    algo = _build(factory, kwargs).replace(check_fn=None)  # the theory warnings' estimates are not what is tested
    keys = {k: v for k, v in _keys(algo, factory).items() if k not in refused}
    if algo.kind != "decentralized":
        keys.pop("topology")
    topo = _topologies(factory)[0] if algo.kind == "decentralized" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = jg.sweep(problem, algo, topo, steps=STEPS, eval_every=STEPS, grid={k: list(v) for k, v in keys.items()})
    assert not df["diverged"].any()
    metrics = [c for c in ("loss", "consensus", "bits", "sim_time") if c in df]
    runs = {_point(g, keys): g.sort_values("step")[metrics].to_numpy(np.float64)
            for _, g in df.groupby("config_key", sort=False)}
    assert len(runs) == 2 ** len(keys)
    names = list(keys)
    for j, key in enumerate(names):
        v1, v2 = (_label(v) for v in keys[key])
        for point, a in runs.items():
            if point[j] != v1:
                continue
            b = runs[point[:j] + (v2,) + point[j + 1:]]
            changed = np.abs(a - b) > 1e-6 * np.maximum(1.0, np.abs(a))  # per metric, beyond float32 rounding
            assert changed.any(), (f"{cid}: {key} = {v1} and {v2} give the same run (the others at "
                                   f"{dict((n, p) for n, p in zip(names, point) if n != key)})")


def test_lr_multiplies_an_optax_optimizers_update(problem):
    """The issue's example: with an optimizer holding its own learning rate, sweeping lr sweeps the effective step
    (it used to give the same loss in every row), and the configuration says what lr is."""
    topo = jg.topology.ring(N)
    for tx in (optax.sgd(0.05, momentum=0.9), optax.adam(1e-2)):
        algo = A.dpsgd(optimizer=tx)
        assert float(algo.hyper["lr"]) == 1.0  # default: the optimizer's own step
        df = jg.sweep(problem, algo, topo, steps=5, eval_every=5, grid={"lr": [0.5, 1.0, 2.0]})
        final = df[df["step"] == 5].sort_values("hp.lr")["loss"].to_numpy()
        assert len(np.unique(final)) == 3 and np.all(np.diff(final) < 0), final  # a larger step descends faster
        config = prepare(problem, algo, topo, steps=5).config["algorithm"]
        assert config["lr"] == "1.0 (multiplier of the optimizer's update)"
        assert "multiplier" in repr(A.dpsgd(lr=5.0, optimizer=tx))
    # lr scales the update exactly: a worker subtracts -lr u for optax's update u (lr u' for a direction u')
    u = jnp.asarray([[-0.5, 0.25, 1.0]], jnp.float32)
    for tx, sign in ((optax.sgd(0.1), -1.0), (optax.trace(0.9), 1.0)):
        np.testing.assert_array_equal(local_update(A.dpsgd(lr=5.0, optimizer=tx), u, 0), sign * 5.0 * u)
    # plain SGD and direction transforms keep lr as the step size, with the factories' defaults
    for algo in (A.dpsgd(), A.dpsgd(optimizer=optax.trace(0.9))):
        assert prepare(problem, algo, topo, steps=1).config["algorithm"]["lr"] == pytest.approx(0.1)
    for factory in A.BUILTINS:  # every factory with an optimizer: lr defaults to 1 exactly for "updates" ones
        if not _takes_optimizer(factory):
            continue
        kwargs = BY_ID[factory][2]
        sgd = float(_build(factory, kwargs).hyper["lr"])
        assert float(_build(factory, {**kwargs, "optimizer": optax.trace(0.9)}).hyper["lr"]) == sgd > 0
        if f"{factory}+updates" in BY_ID:
            assert float(_build(factory, {**kwargs, "optimizer": optax.sgd(0.05)}).hyper["lr"]) == 1.0


def test_compare_tunes_lr_of_an_optax_optimizer(problem):
    """jg.compare over lr with an optimizer holding its learning rate picks among different runs and records lr as a
    multiplier."""
    res = jg.compare(problem, {"adam": (A.dpsgd(optimizer=optax.adam(1e-2)), {"lr": [0.5, 2.0]})},
                     jg.topology.ring(N), steps=5, eval_every=5, seeds=[0], metric="loss")
    assert res.tuning["score"].nunique() == 2
    assert res.best["adam"]["grid_point"] == {"lr": 2.0}
    assert res.best["adam"]["hyper"]["lr"] == "2.0 (multiplier of the optimizer's update)"
    assert "[updates]" in res.config["algorithms"]["adam"]["optimizer"]


def test_star_step_size_and_constants_are_not_both_taken():
    """L and mu only set star_gd's / star_qgd's default step: beside an explicit eta they would be ignored."""
    for factory in (A.star_gd, A.star_qgd):
        with pytest.raises(ValueError, match="would be ignored"):
            factory(eta=0.5, L=L, mu=MU)
        factory(eta=0.5)
        factory(L=L, mu=MU)


def test_a_swept_topology_is_priced_on_its_own_graph(problem):
    """Sweeping the topology prices each row on its graph, as simulate does (not on the first graph's degrees)."""
    algo = A.dpsgd(lr=0.05)
    df = jg.sweep(problem, algo, None, steps=STEPS, eval_every=STEPS, grid={"topology": list(TOPOLOGIES)},
                  backend="dense")
    for topo in TOPOLOGIES:
        row = df[(df["hp.topology"] == topo.name) & (df["step"] == STEPS)]
        one = jg.simulate(problem, algo, topo, steps=STEPS, eval_every=STEPS, backend="dense")
        assert float(row["bits"].iloc[0]) == one.metrics["bits"][-1]
        assert float(row["sim_time"].iloc[0]) == pytest.approx(one.metrics["sim_time"][-1], rel=1e-6)
