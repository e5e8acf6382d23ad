"""Links of different speeds and workers that are offline, in the cost model (issue 23, "Links of different speeds").

Before: ``jg.Network`` took one latency and one bandwidth for every link, and ``Pricing`` waited for every worker's
computation and priced every worker in AllReduce, parameter server and star, whether or not it was online.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip.cost import Cost, Pricing

ALPHA, BW = 2e-3, 3e6  # seconds per message, bytes per second
NET = jg.Network(latency=ALPHA, bandwidth=BW)
BITS = 8e5
N = 6


def _msg(bits, alpha=ALPHA, bw=BW):
    return alpha + bits / 8 / bw


def _bitwise(a, b):
    """Two Costs (or arrays) equal bit for bit."""
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape, (x, y)
        assert x.tobytes() == y.tobytes(), (x, y)


def _ring_pricing(net=NET, compute=None):
    degrees = jnp.asarray(jg.topology.ring(N).degrees, jnp.float32)
    return Pricing(net, compute or jg.ComputeModel.given(np.arange(1, N + 1) * 100.0), degrees, N)


# ---- workers online (the interface for the fault models) ------------------------------------------------------------
def test_everybody_online_is_bit_identical_to_no_mask():
    pr = _ring_pricing()
    on = pr.with_online(jnp.ones(N, bool))
    key, up = jax.random.key(1), jnp.arange(1, N + 1, dtype=jnp.float32) * 1e4
    bits = jnp.float32(BITS)  # as inside simulate: a message's bits are a float32 array

    def every(p):
        return [p.gossip(key, bits, 4), p.allreduce(key, bits, 4), p.parameter_server(key, bits, bits / 2, 4),
                p.star(key, up, bits, 4), p.compute_time(key, 4), p.allreduce_cost(bits), p.worker_times(key, 4)]

    _bitwise(jax.jit(every)(on), jax.jit(every)(pr))  # as inside simulate's compiled step
    _bitwise(every(on), every(pr))


def test_offline_workers_compute_nothing_and_are_not_priced():
    """Speeds 100..600 samples/s: worker 0 is the slowest (4 / 100 s); with workers 0 and 3 offline the step waits for
    worker 1 (4 / 200 s); the m = 4 online workers run the AllReduce, the parameter server and the star."""
    pr = _ring_pricing()
    mask = np.array([0, 1, 1, 0, 1, 1], bool)
    off = pr.with_online(mask)
    key, b, m = jax.random.key(0), 4, 4
    assert float(pr.compute_time(key, b)) == pytest.approx(b / 100.0)
    assert float(off.compute_time(key, b)) == pytest.approx(b / 200.0)
    np.testing.assert_allclose(off.worker_times(key, b), np.where(mask, b / (np.arange(1, N + 1) * 100.0), 0.0),
                               rtol=1e-6)
    comp = b / 200.0
    c = off.allreduce(key, BITS, b)
    np.testing.assert_allclose([c.bits, c.seconds], [2 * (m - 1) * BITS,
                                                     comp + 2 * (m - 1) * ALPHA + 2 * (m - 1) / m * BITS / 8 / BW],
                               rtol=1e-6)
    c = off.parameter_server(key, BITS, BITS / 2, b)
    np.testing.assert_allclose([c.bits, c.seconds], [m * 1.5 * BITS, comp + m * _msg(BITS) + m * _msg(BITS / 2)],
                               rtol=1e-6)
    up = np.arange(1, N + 1, dtype=np.float32) * 1e4
    c = off.star(key, up, BITS, b)
    np.testing.assert_allclose([c.bits, c.seconds], [up[mask].sum() + m * BITS,
                                                     comp + sum(_msg(u) for u in up[mask]) + m * _msg(BITS)], rtol=1e-6)
    # the gossip round reads its counts from the step's mixing, not from the mask
    c = off.gossip(key, BITS, b)
    np.testing.assert_allclose([c.bits, c.seconds], [2 * N * BITS, comp + 2 * _msg(BITS)], rtol=1e-6)
    # one worker or none: nothing to exchange, no computation to wait for
    lone = pr.with_online(np.eye(N, dtype=bool)[2])
    assert float(lone.allreduce_cost(BITS).bits) == 0 and float(lone.allreduce_cost(BITS).seconds) == 0
    nobody = pr.with_online(np.zeros(N, bool))
    assert float(nobody.compute_time(key, b)) == 0
    c = nobody.parameter_server(key, BITS, BITS, b)
    assert float(c.bits) == 0 and float(c.seconds) == 0


def test_online_mask_is_traced_and_checked():
    pr = _ring_pricing()
    times = jax.jit(lambda p, mask: p.with_online(mask).compute_time(jax.random.key(0), 4))
    masks = jnp.asarray([[1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1]], jnp.float32)
    np.testing.assert_allclose(jax.vmap(lambda m: times(pr, m))(masks), [4 / 100, 4 / 200, 4 / 600], rtol=1e-6)
    with pytest.raises(ValueError, match="mask must have shape"):
        pr.with_online(np.ones(N + 1))


# ---- the step's active links ----------------------------------------------------------------------------------------
def _digraph():
    """Worker 0 pushes to everybody; the cycle 0 -> 1 -> ... -> 5 -> 0 closes it (out-degrees 5 and 1)."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_edges_from([(0, i) for i in range(1, N)] + [(i, i + 1) for i in range(1, N - 1)] + [(N - 1, 0)])
    return jg.topology.from_digraph(g, name="hub_and_cycle(6)")


def _pattern(W):
    W = np.asarray(W)
    return ((W != 0) & ~np.eye(W.shape[0], dtype=bool)).astype(np.float32)


@pytest.mark.parametrize("backend", ["dense", "gather", "shift", "sparse"])
def test_links_read_the_nonzero_weights_of_every_backend(backend):
    from jaxgossip import gossip

    topos = [jg.topology.ring(N), jg.topology.star(N), jg.topology.hypercube(8)] if backend == "shift" else \
        [jg.topology.ring(N), jg.topology.star(N), _digraph(), jg.topology.erdos_renyi(N, 0.5, seed=1)]
    for topo in topos:
        if backend == "shift" and topo.permutations is None:
            continue
        mix = gossip.make_mixing(topo, backend)
        links = np.asarray(mix.links())
        np.testing.assert_array_equal(links, _pattern(topo.W), err_msg=topo.name)
        np.testing.assert_array_equal(links.sum(0), np.asarray(mix.sends))  # column j: j's messages out
        np.testing.assert_array_equal(links.sum(1), np.asarray(mix.receives))
    # a time-varying stack (padded tables) through select
    tv = jg.topology.time_varying([jg.topology.ring(N), jg.topology.star(N), jg.topology.complete(N)])
    mix = gossip.make_mixing(tv, backend if backend != "shift" else "auto")
    with pytest.raises(ValueError, match="select"):
        mix.links()
    for t, topo in enumerate(tv.topologies):
        one = gossip.select(mix, t, 3)
        np.testing.assert_array_equal(np.asarray(jax.jit(lambda m: m.links())(one)), _pattern(topo.W))


def test_a_zero_weight_slot_is_no_link():
    from jaxgossip import gossip

    ring = jg.topology.ring(N)
    for backend in ("dense", "gather", "sparse"):
        mix = gossip.make_mixing(ring, backend)
        if backend == "dense":
            mix = mix.replace(weights=mix.weights.at[2, 3].set(0.0))
        elif backend == "gather":
            k = int(np.nonzero(np.asarray(mix.index[2]) == 3)[0][0])
            mix = mix.replace(weights=mix.weights.at[2, k].set(0.0))
        else:
            e = int(np.nonzero((np.asarray(mix.index[0]) == 2) & (np.asarray(mix.index[1]) == 3))[0][0])
            mix = mix.replace(weights=mix.weights.at[e].set(0.0))
        want = _pattern(ring.W)
        want[2, 3] = 0
        np.testing.assert_array_equal(np.asarray(mix.links()), want, err_msg=backend)


# ---- equal links: today's costs -------------------------------------------------------------------------------------
NL, DL, BATCH = 6, 9, 2
KW = dict(eval_every=1, seed=0, compute=jg.ComputeModel.constant(1000.0), shard=False, progress=False)
EQUAL = {"scalar": NET, "clusters": jg.Network.clusters([2, 4], inside=(ALPHA, BW), between=(ALPHA, BW))}


@pytest.fixture(scope="module")
def problem():
    return jg.problems.quadratic(n_workers=NL, dim=DL, samples_per_worker=8, batch_size=BATCH, seed=0)


def per_step(res):
    m = res.metrics
    return np.diff(np.asarray(m["bits"], np.float64)), np.diff(np.asarray(m["sim_time"], np.float64))


@pytest.mark.parametrize("case", ["ring", "digraph", "time_varying"])
def test_equal_links_cost_what_one_link_costs(problem, case):
    """Two clusters joined by the same link (a constant matrix) cost what the scalar network costs in simulate: the
    bits exactly, the seconds to float32 rounding (sums of equal terms instead of a product); the scalar network keeps
    its closed form (checked against the hand formula; bit for bit against the code before links of different speeds,
    checked once by hand). A constant vector, and AllReduce, parameter server and star: below, on the pricing."""
    T, A = jg.topology, jg.algorithms
    topo, algo = {"ring": (T.ring(NL), A.dpsgd(lr=0.05)), "digraph": (_digraph(), A.sgp(lr=0.05)),
                  "time_varying": (T.time_varying([T.ring(NL), T.complete(NL)]), A.gradient_tracking(lr=0.05))}[case]
    runs = {k: per_step(jg.simulate(problem, algo, topo, steps=4, network=net, **KW)) for k, net in EQUAL.items()}
    bits, secs = runs["scalar"]
    comp = BATCH / 1000.0
    msg = 32 * DL
    want = {"ring": comp + 2 * _msg(msg), "digraph": comp + 5 * _msg(32 * (DL + 1)),
            "time_varying": np.array([comp + 4 * _msg(msg), comp + 10 * _msg(msg)] * 2)}[case]
    np.testing.assert_allclose(secs, want * np.ones(4), rtol=1e-6)
    for k in ("clusters",):
        np.testing.assert_array_equal(runs[k][0], bits, err_msg=k)
        np.testing.assert_allclose(runs[k][1], secs, rtol=1e-6, err_msg=k)


def test_equal_link_pricing_of_every_pattern():
    """Pricing of every pattern on equal links, the scalar network against a constant vector, a constant matrix and
    equal clusters, on the ring, the hub digraph and each graph of a time-varying sequence (the step's mixing, as
    simulate prices it), with and without workers offline."""
    from jaxgossip import gossip

    T = jg.topology
    tv = gossip.make_mixing(T.time_varying([T.ring(N), T.complete(N), T.star(N)]))
    mixes = [gossip.make_mixing(T.ring(N)), gossip.make_mixing(_digraph(), "gather")] + \
        [gossip.select(tv, t, 3) for t in range(3)]
    key, up = jax.random.key(0), jnp.arange(1, N + 1, dtype=jnp.float32) * 1e4
    bits = jnp.float32(BITS)
    nets = [NET, jg.Network(latency=np.full(N, ALPHA), bandwidth=BW),
            jg.Network(latency=np.full((N, N), ALPHA), bandwidth=np.full((N, N), BW)),
            jg.Network.clusters([3, 3], inside=(ALPHA, BW), between=(ALPHA, BW))]

    @jax.jit
    def prices(pr, mix, mask):
        pr = pr.on(mix)
        pr = pr if mask is None else pr.with_online(mask)
        return [pr.gossip(key, bits, 4), pr.allreduce(key, bits, 4), pr.parameter_server(key, bits, bits / 2, 4),
                pr.star(key, up, bits, 4), pr.gossip_deadline(0.5, bits)]

    for mask in (None, np.array([1, 0, 1, 1, 0, 1], bool)):
        for mix in mixes if mask is None else mixes[1:2]:
            costs = [prices(_ring_pricing(net), mix, mask) for net in nets]
            for other in costs[1:]:
                for a, b in zip(costs[0], other):
                    np.testing.assert_array_equal(a.bits, b.bits)
                    np.testing.assert_allclose(a.seconds, b.seconds, rtol=1e-6)


# ---- links of different speeds: hand computations -------------------------------------------------------------------
FAST, SLOW = (1e-4, 1.25e9), (5e-2, 1.25e7)  # 0.1 ms / 10 Gbps inside, 50 ms / 100 Mbps between
TWO = jg.Network.clusters([3, 3], inside=FAST, between=SLOW)


def _f32_msg(bits, link):
    return float(np.float32(link[0]) + np.float32(bits) / np.float32(8) / np.float32(link[1]))


def _ring_through(order):
    adj = np.zeros((NL, NL))
    for a, b in zip(order, order[1:] + order[:1]):
        adj[a, b] = adj[b, a] = 1
    return jg.topology.from_adjacency(adj, name=f"ring{order}")


def test_two_clusters_price_the_slow_links_hand_computed(problem):
    """Clusters {0, 1, 2} and {3, 4, 5}. D-PSGD, one d-float message per neighbour:

    * the ring 0-1-2-3-4-5-0 crosses the slow link twice (2-3, 5-0): workers 0, 2, 3, 5 each send one message over a
      slow link and one over a fast link: a round lasts slow + fast;
    * the ring 0-3-1-4-2-5-0 crosses at every link: every worker sends two slow messages, 2 x slow;
    * two triangles joined by one crossing pair 2-3: worker 2 sends two fast messages and a slow one;
    * ring AllReduce 0 -> 1 -> ... -> 5 -> 0 of the d floats (C-PSGD): 10 phases of a chunk of d / 6 floats, each
      waiting for a slow ring link (2 -> 3, 5 -> 0);
    * one parameter server beside worker 0: workers 0, 1, 2 reach it over inside links, 3, 4, 5 over slow ones, one
      message at a time, up and down: 6 (fast + slow)."""
    msg = 32 * DL
    comp = BATCH / 1000.0
    fast, slow = _f32_msg(msg, FAST), _f32_msg(msg, SLOW)
    T, A = jg.topology, jg.algorithms
    tri = np.zeros((NL, NL))
    for a, b in [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)]:
        tri[a, b] = tri[b, a] = 1
    cases = [(T.ring(NL), A.dpsgd(lr=0.05), slow + fast),
             (_ring_through([0, 3, 1, 4, 2, 5]), A.dpsgd(lr=0.05), 2 * slow),
             (T.from_adjacency(tri, name="two_triangles"), A.dpsgd(lr=0.05), slow + 2 * fast),
             (None, A.cpsgd(lr=0.05), 2 * (NL - 1) * _f32_msg(msg / NL, SLOW)),
             (None, A.cpsgd(lr=0.05, pattern="parameter_server"), 6 * fast + 6 * slow)]
    for topo, algo, comm in cases:
        res = jg.simulate(problem, algo, topo, steps=2, network=TWO, **KW)
        bits, secs = per_step(res)
        np.testing.assert_allclose(secs, comp + comm, rtol=1e-6, err_msg=str(topo and topo.name))
        assert res.config["network"] == TWO.describe()
    assert 2 * slow > slow + 2 * fast > slow + fast  # the ring crossing at every link is the slowest
    # a time-varying sequence: each step on its own graph's links (select, then Pricing.on, inside the step)
    tv = T.time_varying([T.ring(NL), _ring_through([0, 3, 1, 4, 2, 5])])
    bits, secs = per_step(jg.simulate(problem, A.dpsgd(lr=0.05), tv, steps=4, network=TWO, **KW))
    np.testing.assert_allclose(secs, comp + np.array([slow + fast, 2 * slow] * 2), rtol=1e-6)


def test_per_link_centralized_patterns_hand_computed():
    """Pricing on a 4-worker matrix with distinct links: AllReduce waits for the slowest ring link per phase; the
    parameter server / star sum each worker's link to and from worker 0 (worker 0: its fastest link); offline
    workers leave the ring (the next online worker takes over) and the server's queue."""
    n, bits = 4, jnp.float32(8e4)  # 10 kB messages
    lat = np.array([[0, 1, 2, 3], [4, 0, 5, 6], [7, 8, 0, 9], [10, 11, 12, 0]], np.float64) * 1e-3
    bw = np.array([[1, 2, 3, 4], [5, 1, 6, 7], [8, 9, 1, 10], [11, 12, 13, 1]], np.float64) * 1e6
    net = jg.Network(latency=lat, bandwidth=bw)
    c = lambda i, j, b: float(np.float32(lat[i, j]) + np.float32(b / 8) / np.float32(bw[i, j]))  # noqa: E731
    pr = Pricing(net, jg.ComputeModel.constant(1e12), jnp.ones(n, jnp.float32), n)
    key = jax.random.key(0)
    ring = max(c(0, 1, 2e4), c(1, 2, 2e4), c(2, 3, 2e4), c(3, 0, 2e4))  # chunks of 80 kbit / 4
    np.testing.assert_allclose(pr.allreduce_cost(bits).seconds, 6 * ring, rtol=1e-6)
    own_up, own_down = min(c(0, 1, 8e4), c(0, 2, 8e4), c(0, 3, 8e4)), min(c(1, 0, 4e4), c(2, 0, 4e4), c(3, 0, 4e4))
    ps = own_up + c(1, 0, 8e4) + c(2, 0, 8e4) + c(3, 0, 8e4) + own_down + c(0, 1, 4e4) + c(0, 2, 4e4) + c(0, 3, 4e4)
    np.testing.assert_allclose(pr.parameter_server(key, bits, bits / 2, 1).seconds, ps, rtol=1e-6)
    up = jnp.asarray([8e4, 1.6e5, 2.4e5, 3.2e5], jnp.float32)
    star = min(c(0, j, 8e4) for j in (1, 2, 3)) + c(1, 0, 1.6e5) + c(2, 0, 2.4e5) + c(3, 0, 3.2e5) \
        + min(c(j, 0, 8e4) for j in (1, 2, 3)) + c(0, 1, 8e4) + c(0, 2, 8e4) + c(0, 3, 8e4)
    np.testing.assert_allclose(pr.star(key, up, bits, 1).seconds, star, rtol=1e-6)
    off = pr.with_online(np.array([1, 0, 1, 1], bool))  # ring 0 -> 2 -> 3 -> 0 of chunks 80 kbit / 3
    ring3 = max(c(0, 2, 8e4 / 3), c(2, 3, 8e4 / 3), c(3, 0, 8e4 / 3))
    np.testing.assert_allclose(off.allreduce_cost(bits).seconds, 4 * ring3, rtol=1e-6)
    np.testing.assert_allclose(off.allreduce_cost(bits).bits, 4 * 8e4)
    ps3 = own_up + c(2, 0, 8e4) + c(3, 0, 8e4) + own_down + c(0, 2, 4e4) + c(0, 3, 4e4)
    np.testing.assert_allclose(off.parameter_server(key, bits, bits / 2, 1).seconds, ps3, rtol=1e-6)


def test_per_worker_links_hand_computed():
    """A vector network: worker i's own link; a worker's round lasts max(sent, received) of its own messages. On the
    hub digraph (hub 0 sends 5, workers 2..5 receive 2) with a fast hub and a slow worker 3, and on the ring; the
    centralized patterns: AllReduce waits for the slowest worker's chunk, the server (worker 0's link) for its queue
    or the slowest worker."""
    from jaxgossip import gossip

    lat = np.array([1e-4, 1e-3, 1e-3, 2e-2, 1e-3, 1e-3])
    bw = np.array([1e9, 1e7, 1e7, 1e6, 1e7, 1e7])
    net = jg.Network(latency=lat, bandwidth=bw)
    own = lambda i, b: float(np.float32(lat[i]) + np.float32(b / 8) / np.float32(bw[i]))  # noqa: E731
    pr = _ring_pricing(net, jg.ComputeModel.constant(1e12))
    b = jnp.float32(8e4)
    hub = pr.on(gossip.make_mixing(_digraph()))
    assert hub.links is None  # a vector network reads the counts only
    np.testing.assert_allclose(hub.gossip_seconds(b), max(5 * own(0, 8e4), 2 * own(3, 8e4)), rtol=1e-6)
    ring = pr.on(gossip.make_mixing(jg.topology.ring(N)))
    np.testing.assert_allclose(ring.gossip_seconds(b), 2 * own(3, 8e4), rtol=1e-6)
    np.testing.assert_allclose(ring.allreduce_cost(b).seconds, 10 * own(3, 8e4 / N), rtol=1e-6)
    up = max(N * own(0, 8e4), own(3, 8e4))
    np.testing.assert_allclose(ring.parameter_server(jax.random.key(0), b, b, 1).seconds, 2 * up + 1e-12, rtol=1e-6)


# ---- validation, records, sweeps ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, match", [
    (dict(latency=[[1e-3, 1e-3, 1e-3], [1e-3, 1e-3, 1e-3]]), ValueError, "square"),
    (dict(latency=np.ones((2, 2, 2))), ValueError, "shape"),
    (dict(latency=[]), ValueError, "shape"),
    (dict(bandwidth=[1e6, 0.0, 1e6]), ValueError, "bandwidth must be finite and > 0"),
    (dict(bandwidth=[[1.0, -1.0], [1.0, 1.0]]), ValueError, "bandwidth must be finite and > 0"),
    (dict(latency=[1e-3, np.nan]), ValueError, "latency must be finite"),
    (dict(latency=[1e-3, np.inf]), ValueError, "latency must be finite"),
    (dict(latency=[-1e-3, 1e-3]), ValueError, "latency must be finite and >= 0"),
    (dict(latency=[1e-3] * 3, bandwidth=np.ones((3, 3))), ValueError, "same shape"),
    (dict(latency=[1e-3] * 3, bandwidth=[1e6] * 4), ValueError, "same shape"),
    (dict(latency=["a", "b"]), TypeError, "latency"),
    (dict(latency=np.array([True, False])), TypeError, "latency"),
])
def test_bad_links_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        jg.Network(**kwargs)


def test_matrix_diagonal_is_ignored_and_clusters_are_checked():
    net = jg.Network(latency=[[np.nan, 1e-3], [1e-3, -5.0]], bandwidth=[[0.0, 1e6], [1e6, np.inf]])
    assert net.kind == "matrix" and np.all(np.isfinite(np.asarray(net.latency)))
    two = jg.Network.clusters([1, 2], inside=(1e-4, 1e9), between=(1e-2, 1e6))
    np.testing.assert_allclose(np.asarray(two.latency), [[0, 1e-2, 1e-2], [1e-2, 0, 1e-4], [1e-2, 1e-4, 0]],
                               rtol=1e-6)  # the diagonal (no link) is stored as 0 s
    for sizes in ([], [2, 0], "ab", [1.5], None):
        with pytest.raises(ValueError, match="sizes"):
            jg.Network.clusters(sizes)
    with pytest.raises(ValueError, match="inside"):
        jg.Network.clusters([2, 2], inside=(1e-4,))
    with pytest.raises(ValueError, match="bandwidth"):
        jg.Network.clusters([2, 2], between=(1e-4, 0.0))


def test_simulate_checks_the_network_against_n(problem):
    T, A = jg.topology, jg.algorithms
    for net, match in [(jg.Network(latency=[1e-3] * (NL - 1)), "simulate: network: latency has shape"),
                       (jg.Network.clusters([2, 2]), "simulate: network: latency has shape"),
                       (jg.Network(bandwidth=jnp.asarray([1e6] * (NL - 1) + [-1.0])), "bandwidth must be finite")]:
        with pytest.raises(ValueError, match=match):
            jg.simulate(problem, A.dpsgd(lr=0.05), T.ring(NL), steps=2, network=net, **KW)
    with pytest.raises(ValueError, match="event-driven"):
        jg.simulate(problem, A.ad_psgd(lr=0.05), T.ring(NL), steps=2, network=TWO, **KW)


def test_config_records_the_links():
    assert NET.describe() == {"latency": ALPHA, "bandwidth": BW}  # scalar: as before
    other = jg.Network.clusters([3, 3], inside=FAST, between=(4e-2, SLOW[1]))
    a, b = TWO.describe(), other.describe()
    assert a != b and a["latency"]["digest"] != b["latency"]["digest"] and a["bandwidth"] == b["bandwidth"]
    assert a["latency"]["min"] == pytest.approx(FAST[0]) and a["latency"]["max"] == pytest.approx(SLOW[0])


def test_sweep_with_a_per_link_network(problem):
    """jg.sweep over a traced hyperparameter with the two-cluster network: every configuration priced on the links."""
    df = jg.sweep(problem, jg.algorithms.dpsgd(lr=0.05), jg.topology.ring(NL), grid={"lr": [0.01, 0.05]}, steps=2,
                  eval_every=1, network=TWO, compute=KW["compute"])
    comm = _f32_msg(32 * DL, SLOW) + _f32_msg(32 * DL, FAST)
    assert df["config_key"].nunique() == 2
    for _, g in df.groupby("config_key", sort=False):
        np.testing.assert_allclose(np.diff(g.sort_values("step")["sim_time"].to_numpy(np.float64)),
                                   BATCH / 1000.0 + comm, rtol=1e-6)
