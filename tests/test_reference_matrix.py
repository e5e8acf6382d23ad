"""Every algorithm of ``jg.algorithms.REGISTRY`` against the independent NumPy reference of ``tests/reference``.

A covering design over algorithm x compressor family x topology kind x optimizer kind (the full product would compile
hundreds of programs):

* every algorithm that takes a compressor, on the static ring (centralized: no topology) with plain SGD, with each
  compressor family: the identity, a deterministic top-k (half the coordinates), a stochastic quantizer (QSGD, 4
  levels) whose uniforms the reference draws from the library's own keys (step t: ``fold_in(key(seed), t)``, worker
  i's message: ``fold_in(fold_in(step key, 1), i)``) and rounds itself;
* every algorithm on every topology kind it accepts (static ring; the time-varying sequence [ring, complete]; for SGP a
  directed hub-and-cycle graph), at the identity or its default compressor (Q-DSGD / QuanTimed-DSGD: their
  low-precision quantizer, stochastic too); centralized and star methods with no topology;
* every algorithm that takes a local optimizer with an optax direction (``direction(optax.trace(0.9))``, lr the step
  size; on the time-varying graph where the algorithm takes one) and, where accepted, an optax optimizer with its own
  learning rate (``optax.sgd(0.1, momentum=0.9)``, lr = 0.5 multiplying its update), at the identity.

Each case runs ``STEPS`` steps from the same seed and compares the final models (rtol = atol = 1e-5), the loss at the
average model after every step (rtol 1e-5), the bits of every step (exactly) and the cumulative simulated seconds
(rtol 1e-6). The problem is a full-batch least squares (n = 5 workers, d = 6, 4 samples each: exact gradients, no
sampler to reproduce; QuanTimed-DSGD, whose deadline draws a random subset of samples, runs on the same data without
full batches and the reference feeds the library's sampler draws), with per-worker initial models for the
decentralized methods; the network is slow enough (1 ms, 10 kB/s) and the speeds varied enough (500-1500 samples/s)
that latency, bytes and the slowest worker all show in the seconds.

About 88 compiled programs (one per case; a case whose static configuration equals an earlier one reuses it). Before
issue 22's fixes 33 of the cases failed: the "updates" optimizer ignored lr, time-varying and directed graphs were priced
on the wrong degrees, PowerGossip, BEER and EF21 deviated from their authors' code, and CHOCO-SGD, DeepSqueeze and BEER
used QSGD unscaled.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import networkx as nx
import numpy as np
import optax
import pytest

import jaxgossip as jg
from jaxgossip.simulate import NEIGHBOUR_COPIES
import reference as ref
from reference import compressors as rc
from reference.common import Compute, Graph, LeastSquares, LocalOptimizer, Network, Setup

N, D, M = 5, 6, 4
STEPS, SEED = 4, 7
LR, UPDATES_LR = 0.1, 0.5
CONSENSUS = 0.6
DEADLINE = 2.0**-9  # QuanTimed's T_d: floor(V T_d) is exact in float32 (a power of two)

PROBLEM = jg.problems.quadratic(n_workers=N, dim=D, samples_per_worker=M, batch_size="full", reg=0.05, seed=3)
#: The same data for QuanTimed-DSGD, without full_batch: its deadline picks a random subset of each worker's samples
#: (paper 001, eq. 6), drawn by the library's sampler, fed to the reference.
SAMPLED = jg.problems.quadratic(n_workers=N, dim=D, samples_per_worker=M, batch_size=M, reg=0.05, seed=3)
SAMPLED_ALGORITHMS = ("quantimed_dsgd",)
NETWORK = jg.Network(latency=1e-3, bandwidth=1e4)
#: Speeds: drawn per step and worker (Uniform(500, 1500) samples/s, from the step key's compute stream) for the
#: methods that read them (QuanTimed's sample counts, the event-driven methods' event order) and for D-PSGD, C-PSGD and
#: the star's GD (the draws behind every synchronous price); fixed per worker elsewhere (no Threefry in the step: each
#: case compiles ~20 % faster).
COMPUTE = jg.ComputeModel.uniform(500.0, 1500.0)
SPEEDS = (517.0, 1499.0, 733.0, 1231.0, 1009.0)
COMPUTE_GIVEN = jg.ComputeModel.given(SPEEDS)
DRAWN_SPEEDS = ("quantimed_dsgd", "async_dsgd", "asgd", "ad_psgd", "dpsgd", "cpsgd", "star_gd")
_RNG = np.random.default_rng(11)
X0_WORKERS = _RNG.normal(0.0, 0.5, (N, D)).astype(np.float32)  # decentralized: one model per worker
X0_SHARED = _RNG.normal(0.0, 0.5, D).astype(np.float32)  # centralized and star: one model


def _hub_and_cycle():
    """The cycle 0 -> 1 -> ... -> 4 -> 0 plus hub 0 pushing to everyone: out-degrees 4, 1, 1, 1, 1, in-degrees at
    most 2, so the hub is the busiest sender (the step is priced by it, not by the largest in-degree)."""
    g = nx.DiGraph()
    g.add_edges_from([(k, (k + 1) % N) for k in range(N)] + [(0, k) for k in range(2, N)])
    return jg.topology.from_digraph(g, name="hub_and_cycle(5)")


TOPOLOGIES = {
    "ring": jg.topology.ring(N),
    "time_varying": jg.topology.time_varying([jg.topology.ring(N), jg.topology.complete(N)]),
    "directed": _hub_and_cycle(),
    "none": None,
}


def _graphs(kind):
    topo = TOPOLOGIES[kind]
    if topo is None:
        return lambda t: Graph(np.ones((N, N)) / N)
    seq = getattr(topo, "topologies", (topo,))
    Ws = [np.asarray(s.W, np.float64) for s in seq]
    return lambda t: Graph(Ws[t % len(Ws)])


# ---- the matrix ------------------------------------------------------------------------------------------------------
COMPRESSED = ("naive_compressed", "dcd_psgd", "ecd_psgd", "choco_sgd", "deepsqueeze", "q_dsgd", "quantimed_dsgd",
              "beer", "csgd", "ec_sgd", "doublesqueeze", "ef21")
CENTRALIZED = ("cpsgd", "csgd", "ec_sgd", "doublesqueeze", "ef21", "asgd", "local_sgd")
STAR = ("iade", "aiade", "iade_sgd", "star_gd", "star_nesterov", "star_qgd")
#: Decentralized algorithms and the topology kinds they accept besides the ring.
OTHER_TOPOLOGIES = {
    "dpsgd": ("time_varying",), "naive_compressed": ("time_varying",), "dcd_psgd": ("time_varying",),
    "ecd_psgd": ("time_varying",), "choco_sgd": ("time_varying",), "deepsqueeze": ("time_varying",),
    "q_dsgd": ("time_varying",), "quantimed_dsgd": ("time_varying",), "gradient_tracking": ("time_varying",),
    "exact_diffusion": ("time_varying",), "d2": ("time_varying",), "beer": ("time_varying",),
    "sgp": ("time_varying", "directed"), "ad_psgd": ("time_varying",), "async_dsgd": ("time_varying",),
    "powergossip": (),  # warm-started factors per edge: refused on a time-varying graph (test below)
}
#: Algorithms with a local optimizer, and whether they take an optax optimizer holding its own learning rate.
OPTIMIZERS = {"dpsgd": True, "naive_compressed": True, "dcd_psgd": True, "ecd_psgd": True, "choco_sgd": True,
              "deepsqueeze": True, "powergossip": True, "cpsgd": True, "async_dsgd": False, "csgd": False,
              "ec_sgd": False, "doublesqueeze": False, "asgd": False, "local_sgd": True}
#: Static options of an algorithm's cases (ec_sgd's default, double compression, is doublesqueeze: run the other).
VARIANT = {"ec_sgd": (("compression", "single"),)}
#: Default compressor of the methods whose own default is not the identity.
DEFAULT_COMPRESSOR = {"q_dsgd": "low_precision", "quantimed_dsgd": "low_precision"}


@dataclasses.dataclass(frozen=True)
class Case:
    algo: str
    compressor: str = "none"  # identity, top_k, qsgd, low_precision; "none": the algorithm takes none
    topology: str = "ring"  # ring, time_varying, directed, none
    optimizer: str = "sgd"  # sgd, direction, updates
    variant: tuple = ()  # static options, e.g. (("order", "survey"),)

    @property
    def id(self) -> str:
        parts = [self.algo, *(f"{k}={v}" for k, v in self.variant), self.compressor, self.topology, self.optimizer]
        return "-".join(p for p in parts if p != "none")


def _home(algo):
    """The topology kind an algorithm runs on by default: none for the centralized and star methods."""
    return "none" if algo in CENTRALIZED or algo in STAR else "ring"


def _plain(algo):
    return DEFAULT_COMPRESSOR.get(algo, "identity") if algo in COMPRESSED else "none"


def cases() -> list[Case]:
    """The covering design (one compile each). Per algorithm: each compressor family it takes on its home topology
    (the ring; none for centralized and star methods) with SGD; each other topology kind it accepts at its default
    compressor, with the optax direction when it takes optimizers (so that run also covers the direction) else SGD;
    the direction on the home topology where no other topology is accepted; the optax "updates" optimizer on the home
    topology where accepted. Then each other static order / form once."""
    out = []
    for algo in jg.algorithms.REGISTRY:
        home, plain, v = _home(algo), _plain(algo), VARIANT.get(algo, ())
        if algo in COMPRESSED:  # every compressor family, home topology, SGD
            out += [Case(algo, c, home, "sgd", v) for c in ("identity", "top_k", "qsgd")]
        else:
            out.append(Case(algo, "none", home, "sgd", v))
        others = OTHER_TOPOLOGIES.get(algo, ())
        opt = "direction" if algo in OPTIMIZERS else "sgd"
        out += [Case(algo, plain, kind, opt, v) for kind in others]
        if algo in OPTIMIZERS:
            if not others:
                out.append(Case(algo, plain, home, "direction", v))
            if OPTIMIZERS[algo]:
                out.append(Case(algo, plain, home, "updates", v))
    # static variants: the other orders and forms, each once
    out += [Case("dpsgd", "none", "ring", "sgd", (("order", "survey"),)),
            Case("choco_sgd", "qsgd", "ring", "sgd", (("order", "survey"),)),
            Case("gradient_tracking", "none", "ring", "sgd", (("order", "atc"),)),
            Case("cpsgd", "none", "none", "sgd", (("pattern", "parameter_server"),)),
            Case("csgd", "top_k", "none", "sgd", (("servers", "single"),)),
            Case("csgd", "qsgd", "none", "sgd", (("form", "allreduce"),))]
    return out


def _params():
    params = []
    for case in cases():
        params.append(pytest.param(case, id=case.id))
    return params


# ---- building both sides ---------------------------------------------------------------------------------------------
def _lib_compressor(name):
    return {"identity": jg.compressors.identity, "top_k": lambda: jg.compressors.top_k(fraction=0.5),
            "qsgd": lambda: jg.compressors.qsgd(levels=4), "low_precision": lambda: jg.compressors.low_precision(
                scale=2.0**-6, bits=8)}[name]()


def _ref_compressor(name, contraction=False):
    comp = {"identity": rc.Identity, "top_k": lambda: rc.TopK(0.5), "qsgd": lambda: rc.QSGD(4),
            "low_precision": lambda: rc.LowPrecision(2.0**-6, 8)}[name]()
    return rc.Rescaled(comp) if contraction and name == "qsgd" else comp


def _lib_optimizer(kind):
    if kind == "sgd":
        return None
    if kind == "direction":
        from jaxgossip.algorithms import _base

        return getattr(jg.algorithms, "direction", _base.direction)(optax.trace(0.9))
    return optax.sgd(0.1, momentum=0.9)


#: Algorithms that need a contractive compressor: an unbiased one of variance omega is rescaled by 1 / (1 + omega)
#: (Koloskova et al. 2019, Sec. 3, for CHOCO-SGD and DeepSqueeze; BEER's and EF21's analyses assume a contraction too:
#: Zhao et al. 2022, Def. 1; Richtarik et al. 2021, Def. 1).
CONTRACTIONS = ("choco_sgd", "deepsqueeze", "beer", "ef21")
#: Hyperparameters of each algorithm (library and reference alike), besides lr / compressor / optimizer.
HYPER = {"choco_sgd": {"consensus": CONSENSUS}, "deepsqueeze": {"consensus": CONSENSUS},
         "beer": {"consensus": CONSENSUS}, "q_dsgd": {"alpha": 0.3, "eps": 0.5},
         "quantimed_dsgd": {"alpha": 0.3, "eps": 0.5, "deadline": DEADLINE},
         "iade": {"s": 1.0}, "aiade": {"e": 1.0}, "iade_sgd": {"rho": 1.0, "s": 1.0}, "star_qgd": {"e": 0.01},
         "local_sgd": {"H": 3}}  # STEPS = 4: local steps, an average at step 2, a local step after it
NO_LR = ("q_dsgd", "quantimed_dsgd") + STAR
#: Algorithms whose ``check_fn`` only warns (DCD's Thm. 1 condition, CHOCO's / DeepSqueeze's consensus step): skipped.
WARN_ONLY_CHECKS = ("dcd_psgd", "choco_sgd", "deepsqueeze")


def build(case: Case):
    """(library algorithm, reference kwargs, topology, x0, backend, compute model)."""
    lib, refk = dict(HYPER.get(case.algo, {})), dict(HYPER.get(case.algo, {}))
    lib.update(case.variant)
    refk.update(case.variant)
    if case.algo not in NO_LR:
        lr = UPDATES_LR if case.optimizer == "updates" else LR
        lib["lr"] = refk["lr"] = lr
    if case.compressor != "none":
        lib["compressor"] = _lib_compressor(case.compressor)
        refk["compressor"] = _ref_compressor(case.compressor, case.algo in CONTRACTIONS)
    if case.algo in OPTIMIZERS:
        lib["optimizer"] = _lib_optimizer(case.optimizer)
        refk["optimizer"] = LocalOptimizer(case.optimizer)
    algorithm = jg.algorithms.get(case.algo, **lib)
    if case.algo in WARN_ONLY_CHECKS:  # their checks only warn, after estimating alpha / omega over 16 keys (~0.3-2 s)
        algorithm = algorithm.replace(check_fn=None)
    # one shared model where per-worker ones are refused: centralized and star methods keep one model, and DCD / ECD /
    # CHOCO start their copies of the neighbours' models from it (simulate.NEIGHBOUR_COPIES)
    shared = case.algo in CENTRALIZED or case.algo in STAR or case.algo in NEIGHBOUR_COPIES
    x0 = X0_SHARED if shared else X0_WORKERS
    backend = "dense" if case.algo == "ad_psgd" else "auto"  # the neighbour draw is fed over the dense row of W
    compute = COMPUTE if case.algo in DRAWN_SPEEDS else COMPUTE_GIVEN
    return algorithm, refk, TOPOLOGIES[case.topology], x0, backend, compute


def setup(case: Case, x0) -> Setup:
    problem = LeastSquares(np.asarray(PROBLEM.data_x, np.float64), np.asarray(PROBLEM.data_y, np.float64),
                           float(PROBLEM.reg), PROBLEM.L, PROBLEM.mu)
    X0 = np.broadcast_to(np.asarray(x0, np.float64), (N, D)).copy()
    compute = Compute("uniform", low=COMPUTE.low, high=COMPUTE.high) if case.algo in DRAWN_SPEEDS else \
        Compute("given", values=SPEEDS)
    return Setup(problem, X0, _graphs(case.topology), Network(NETWORK.latency, NETWORK.bandwidth), compute, SEED,
                 PROBLEM.batch_size)


@pytest.mark.parametrize("case", _params())
def test_matches_reference(case):
    algorithm, refk, topology, x0, backend, compute = build(case)
    problem = SAMPLED if case.algo in SAMPLED_ALGORITHMS else PROBLEM
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # theory warnings (DCD's Thm. 1, large consensus steps)
        res = jg.simulate(problem, algorithm, topology, steps=STEPS, seed=SEED, eval_every=1, network=NETWORK,
                          compute=compute, x0=x0, metrics=("loss",), backend=backend)
    trace = ref.run(case.algo, setup(case, x0), STEPS, **refk)
    assert not res.diverged
    np.testing.assert_allclose(np.asarray(res.state.x), trace.x, rtol=1e-5, atol=1e-5, err_msg="models")
    np.testing.assert_allclose(res.metrics["loss"][1:], trace.loss, rtol=1e-5, err_msg="loss at the average model")
    np.testing.assert_array_equal(np.diff(res.metrics["bits"]), trace.bits, err_msg="bits of each step")
    np.testing.assert_allclose(res.metrics["sim_time"][1:], np.cumsum(trace.seconds), rtol=1e-6,
                               err_msg="cumulative simulated seconds")


def test_sampled_problem_has_the_same_data():
    for a, b in ((PROBLEM.data_x, SAMPLED.data_x), (PROBLEM.data_y, SAMPLED.data_y)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not SAMPLED.full_batch and SAMPLED.batch_size == M


def test_every_algorithm_is_covered():
    """Each registered algorithm has a reference and runs in the matrix with every compressor family it takes."""
    covered = {c.algo for c in cases()}
    assert covered == set(jg.algorithms.REGISTRY) == set(ref.ALGORITHMS)
    for algo in COMPRESSED:
        assert {c.compressor for c in cases() if c.algo == algo} >= {"identity", "top_k", "qsgd"}


def test_powergossip_refuses_a_time_varying_graph():
    with pytest.raises(ValueError, match="static topology"):
        jg.simulate(PROBLEM, jg.algorithms.powergossip(lr=LR), TOPOLOGIES["time_varying"], steps=1)


# ---- the reference's own identities (NumPy only: no compile) ---------------------------------------------------------
def _ref_setup(kind="ring", x0=X0_WORKERS):
    return setup(Case("dpsgd", topology=kind), x0)


@pytest.mark.parametrize("kind", ["ring", "time_varying"])
def test_reference_reductions(kind):
    """With the identity compressor and consensus 1 the compressed methods are D-PSGD (ALGORITHMS.md)."""
    s = _ref_setup(kind)
    paper = ref.run("dpsgd", s, STEPS, lr=LR).x
    survey = ref.run("dpsgd", s, STEPS, lr=LR, order="survey").x
    for algo, kw, want in [("dcd_psgd", {}, paper), ("ecd_psgd", {}, paper), ("naive_compressed", {}, paper),
                           ("choco_sgd", {"consensus": 1.0}, paper), ("deepsqueeze", {"consensus": 1.0}, survey),
                           ("choco_sgd", {"consensus": 1.0, "order": "survey"}, survey)]:
        np.testing.assert_allclose(ref.run(algo, s, STEPS, lr=LR, compressor=rc.Identity(), **kw).x, want,
                                   rtol=1e-12, atol=1e-12, err_msg=algo)
    np.testing.assert_allclose(ref.run("sgp", s, STEPS, lr=LR).x, survey, rtol=1e-12, atol=1e-12)
    c = _ref_setup("none", X0_SHARED)
    mb = ref.run("cpsgd", c, STEPS, lr=LR).x
    for algo, kw in [("csgd", {}), ("csgd", {"form": "allreduce"}), ("csgd", {"servers": "single"}), ("ec_sgd", {}),
                     ("ef21", {})]:
        np.testing.assert_allclose(ref.run(algo, c, STEPS, lr=LR, compressor=rc.Identity(), **kw).x, mb,
                                   rtol=1e-12, atol=1e-12, err_msg=f"{algo} {kw}")


def test_reference_powergossip_at_full_rank_is_dpsgd_after_step_0():
    """At rank min(rows, cols) the projection is exact (up to the authors' eps = 1e-8 in the normalization): every step
    after step 0 mixes like W X (a 2 x 2 matrix)."""
    s = dataclasses.replace(_ref_setup(), X0=X0_WORKERS[:, :4].astype(np.float64))
    s.problem = LeastSquares(s.problem.A[:, :, :4], s.problem.b, s.problem.reg)
    pg = ref.run("powergossip", s, 3, lr=LR, rank=2).x
    x1 = s.X0 - LR * s.problem.grads(s.X0)  # step 0: no gossip
    s1 = dataclasses.replace(s, X0=x1, graph_at=lambda t: s.graph_at(t + 1))
    np.testing.assert_allclose(pg, ref.run("dpsgd", s1, 2, lr=LR).x, rtol=1e-6, atol=1e-7)


def test_reference_pricing_of_the_hub():
    """The hub of the hub-and-cycle digraph sends 4 messages: the step lasts 4 messages, bits count out-edges."""
    s = _ref_setup("directed")
    g = s.graph_at(0)
    assert list(g.out_degree) == [4, 1, 1, 1, 1] and max(g.in_degree) == 2
    trace = ref.run("sgp", s, 1, lr=LR)
    b = 32 * (D + 1)
    assert trace.bits[0] == 8 * b
    assert math.isclose(trace.seconds[0], s.compute_seconds(0) + 4 * (NETWORK.latency + b / 8 / NETWORK.bandwidth))
