"""jg.theory.link_failure_rate / link_failure_gram (issue 23, theory helper): E[W_t^T W_t] under i.i.d. link failures,
exact formula against a Monte-Carlo average of W_t^T W_t drawn in NumPy (no dependency on jg.faults), and the static
graph's rho^2 at p = 0."""

import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip import theory

DRAWS = 20000


def _links(W):
    i, j = np.nonzero(np.triu(W, 1))
    return i, j, W[i, j]


def _draw_W(W, up):
    """W_t = I - sum_e u_e w_e (e_i - e_j)(e_i - e_j)^T: a down link's weight moves to both ends' self weights."""
    i, j, w = _links(W)
    Wt = W.copy()
    down = ~up
    Wt[i[down], j[down]] = Wt[j[down], i[down]] = 0.0
    np.add.at(Wt, (i[down], i[down]), w[down])
    np.add.at(Wt, (j[down], j[down]), w[down])
    return Wt


def _grams(W, up):
    """W_t^T W_t for each row of ``up`` (draws x links), vectorized: W_t = W + sum_{e down} w_e b_e b_e^T."""
    i, j, w = _links(W)
    n = W.shape[0]
    B = np.zeros((len(w), n, n))
    k = np.arange(len(w))
    B[k, i, i] = B[k, j, j] = w
    B[k, i, j] = B[k, j, i] = -w
    Wt = W[None] + np.einsum("se,eab->sab", (~up).astype(np.float64), B)
    for s in range(0, len(up), 997):  # spot-check the vectorized draws against the explicit construction
        np.testing.assert_allclose(Wt[s], _draw_W(W, up[s]), atol=1e-15)
    return np.einsum("sba,sbc->sac", Wt, Wt)


@pytest.mark.parametrize("topo", [jg.topology.ring(6), jg.topology.from_adjacency(
    np.array([[0, 1, 1, 0, 0], [1, 0, 1, 1, 0], [1, 1, 0, 0, 1], [0, 1, 0, 0, 1], [0, 0, 1, 1, 0]]))],
    ids=["ring6-uniform", "graph5-metropolis"])
def test_exact_gram_matches_monte_carlo(topo):
    W = np.asarray(topo.W)
    n = W.shape[0]
    rng = np.random.default_rng(0)
    E = len(_links(W)[0])
    for p in (0.2, 0.5):
        samples = _grams(W, rng.random((DRAWS, E)) >= p)
        mc, se = samples.mean(axis=0), samples.std(axis=0) / np.sqrt(DRAWS)
        exact = theory.link_failure_gram(topo, p)
        assert np.all(np.abs(mc - exact) <= 5 * se + 1e-12), np.max(np.abs(mc - exact) / (se + 1e-12))
        # the rate: the largest eigenvalue on the complement of the ones vector, also from the Monte-Carlo matrix
        P = np.eye(n) - np.ones((n, n)) / n
        lam_mc = np.max(np.linalg.eigvalsh(P @ mc @ P))
        assert theory.link_failure_rate(topo, p) == pytest.approx(lam_mc, abs=5e-3)
        # every draw is doubly stochastic and symmetric (the model the formula assumes)
        Wt = _draw_W(W, rng.random(E) >= p)
        np.testing.assert_allclose(Wt.sum(axis=1), 1.0)
        np.testing.assert_array_equal(Wt, Wt.T)


def test_p_zero_is_the_static_rho_squared_and_p_one_is_one():
    for topo in (jg.topology.ring(16), jg.topology.torus(4, 4), jg.topology.complete(5), jg.topology.star(7)):
        assert theory.link_failure_rate(topo, 0.0) == pytest.approx(topo.rho ** 2, abs=1e-12)
        np.testing.assert_allclose(theory.link_failure_gram(topo, 0.0), np.asarray(topo.W) @ np.asarray(topo.W),
                                   atol=1e-12)
        assert theory.link_failure_rate(topo, 1.0) == pytest.approx(1.0, abs=1e-12)
        rates = [theory.link_failure_rate(topo, p) for p in (0.0, 0.1, 0.3, 0.5, 0.9)]
        assert np.all(np.diff(rates) > 0), rates
    assert theory.link_failure_rate(np.asarray(jg.topology.ring(8).W), 0.3) == \
        theory.link_failure_rate(jg.topology.ring(8), 0.3)


def test_refusals():
    ring = jg.topology.ring(6)
    for bad in (-0.1, 1.5, float("nan"), True, "0.1", None):
        with pytest.raises(ValueError, match="p \\(the probability"):
            theory.link_failure_rate(ring, bad)
    with pytest.raises(ValueError, match="time-varying"):
        theory.link_failure_rate(jg.topology.one_peer_exponential(8), 0.1)
    with pytest.raises(ValueError, match="directed"):
        theory.link_failure_rate(jg.topology.directed_ring(6), 0.1)
