"""Issue 22, item 6: PowerGossip, BEER and EF21 follow their authors' released code, checked against plain NumPy
transcriptions of that code (one worker and one edge at a time, explicit loops) for the first steps of a tiny problem.

* PowerGossip: epfml/powergossip ``algorithms.PowerGossip.step`` (half a power iteration per step, P and Q alternating,
  nothing at step 0, the low-rank update after every half) inside ``algorithms.DPSGD.step`` (gossip on x^t, then the
  gradient step of x^t).
* BEER: liboyue/beer ``experiments/BEER.py`` (H^0 = 0, G^0 = 0, V^0 = grad F(X^0)).
* EF21: IgorSokoloff/ef21_experiments_source_code ``biased_diana_top_k_gd`` (g_i^0 = grad f_i(x^0), uncompressed).

The gradient oracle is the problem's (exact local gradients, ``full_grads``); everything else is NumPy. Each test fails
on the code before issue 22 (PowerGossip ran a whole power iteration per step, BEER started from H^0 = X^0 and
G^0 = C(V^0), EF21 from g^0 = C(grad f(x^0))).
"""

import jax.numpy as jnp
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip import gossip
from jaxgossip.algorithms._base import Context
from jaxgossip.cost import ComputeModel, Network, Pricing

from _full_batch import full_quadratic
from test_tracking import trajectory

A, C = jg.algorithms, jg.compressors
N = 4


@pytest.fixture(scope="module")
def quad():
    """Exact local gradients; d = 6 (PowerGossip: one 3 x 2 matrix, no layout)."""
    return full_quadratic(n_workers=N, dim=6, samples_per_worker=10, heterogeneity=2.0, reg=0.1, seed=3)


def spread(prob, scale=0.5, seed=11):
    """Distinct per-worker initial models."""
    return np.asarray(prob.x0)[None, :] + scale * np.random.default_rng(seed).standard_normal((prob.n, prob.d))


def grads(prob, X):
    return np.asarray(prob.full_grads(jnp.asarray(X, jnp.float32)), np.float64)


def top_k(x, k):
    """The authors' top-k (numpy argsort of |x|, largest k kept)."""
    out = np.zeros_like(x)
    idx = np.argsort(-np.abs(x), kind="stable")[:k]
    out[idx] = x[idx]
    return out


def step_bits(prob, algo, topo, steps):
    res = jg.simulate(prob, algo, topo, steps=steps, eval_every=1, shard=False, progress=False)
    return np.diff(np.asarray(res.metrics["bits"], np.float64))


# ---- PowerGossip ---------------------------------------------------------------------------------------------------
def orthogonalize(matrix, eps=1e-8):
    """epfml/powergossip ``orthogonalize``: Gram-Schmidt, column / (norm + eps), in place (here on a copy)."""
    m = matrix.copy()
    for i in range(m.shape[1]):
        m[:, i] /= np.sqrt(np.sum(m[:, i] ** 2)) + eps
        if i + 1 < m.shape[1]:
            m[:, i + 1:] -= np.sum(m[:, i:i + 1] * m[:, i + 1:], axis=0) * m[:, i:i + 1]
    return m


def authors_powergossip(X0, W, grad_fn, lr, steps, p0, q0, rows, cols, num_iterations):
    """``DPSGD(overlapping=True)`` around ``PowerGossip(rank=r, num_iterations)``: gradient at x^t, gossip of x^t,
    then x^{t+1} = gossiped - lr g. p0[(a, b)], q0[(a, b)] (a < b): the edge's initial buffers, identical on both
    ends; p holds (M_hi - M_lo) q, q holds (M_hi - M_lo)^T p (the authors' ``my_rank > neighbor`` convention)."""
    n = X0.shape[0]
    p, q = {e: v.copy() for e, v in p0.items()}, {e: v.copy() for e, v in q0.items()}
    X, out, iteration_number = X0.copy(), [], 0
    for _ in range(steps):
        g = grad_fn(X)
        M = [X[i].reshape(rows, cols).copy() for i in range(n)]
        for iteration in range(iteration_number, iteration_number + num_iterations):
            if iteration == 0:
                break  # "no disagreement between the neighbours yet"
            new = [m.copy() for m in M]
            for (a, b) in p:  # a < b; hi = b
                if iteration % 2 == 1:  # left multiplications: orthogonalize q, p = (M_hi - M_lo) q
                    q[(a, b)] = orthogonalize(q[(a, b)])
                    p[(a, b)] = M[b] @ q[(a, b)] - M[a] @ q[(a, b)]
                else:  # orthogonalize p, q = (M_hi - M_lo)^T p
                    p[(a, b)] = orthogonalize(p[(a, b)])
                    q[(a, b)] = M[b].T @ p[(a, b)] - M[a].T @ p[(a, b)]
                approx = p[(a, b)] @ q[(a, b)].T  # ~ M_hi - M_lo
                new[b] -= W[b, a] * approx  # sign -1 for my_rank > neighbor
                new[a] += W[a, b] * approx
            M = new
        iteration_number += num_iterations
        X = np.stack([m.reshape(-1) for m in M]) - lr * g
        out.append(X.copy())
    return np.stack(out)


def powergossip_init(prob, algo, topo, X0):
    mixing = gossip.make_mixing(topo, "dense")
    pricing = Pricing(Network(), ComputeModel(), jnp.asarray(topo.degrees, jnp.float32), prob.n)
    return algo.init(jnp.asarray(X0, jnp.float32), Context(prob, mixing, pricing, jnp.zeros((), jnp.int32)))


@pytest.mark.parametrize("num_iterations", [1, 2])
def test_powergossip_is_the_authors_alternating_half_iterations(quad, num_iterations):
    """Rank 1 on the 3 x 2 reshape of d = 6, a ring of 4, lr 0.05: 5 steps equal the authors' loop (with 1 half per
    step: nothing at step 0, P halves at odd steps, Q halves at even ones). The old full iteration per step moved the
    matrices at step 0 already."""
    topo = jg.topology.ring(N)
    X0 = spread(quad)
    algo = A.powergossip(lr=0.05, rank=1, iterations=num_iterations)
    state = powergossip_init(quad, algo, topo, X0)
    p_slots, q_slots = np.asarray(state.p[0], np.float64), np.asarray(state.q[0], np.float64)
    edges = [(a, b) for a in range(N) for b in range(a + 1, N) if topo.W[a, b] > 0]
    # the shared initial buffers (dense slots: slot k of worker i is worker k); P is stored as seen from the slot's
    # worker (M_i - M_j), so the authors' (M_hi - M_lo) buffer is the high end's
    p0 = {(a, b): p_slots[b, a] for a, b in edges}
    q0 = {(a, b): q_slots[a, b] for a, b in edges}
    lo, hi = edges[0]
    np.testing.assert_allclose(p_slots[lo, hi], -p0[lo, hi])  # the low end holds -P
    steps = 5
    want = authors_powergossip(X0, np.asarray(topo.W), lambda X: grads(quad, X), 0.05, steps, p0, q0, 3, 2,
                               num_iterations)
    got = np.asarray(trajectory(algo, quad, topo, steps, X0=jnp.asarray(X0, jnp.float32)).x, np.float64)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    # step 0 is the gradient step alone
    np.testing.assert_allclose(got[0], X0 - 0.05 * grads(quad, X0), rtol=0, atol=1e-5)
    assert np.abs(want[-1] - want[0]).max() > 0.05  # the gossip moved the models


def test_powergossip_full_schedule_differs_at_equal_traffic(quad):
    """The former schedule (one whole power iteration per step) is kept as ``schedule="full"``; at the same bits per
    step (alternating with 2 halves) the models differ."""
    topo = jg.topology.ring(N)
    X0 = jnp.asarray(spread(quad), jnp.float32)
    alt = trajectory(A.powergossip(lr=0.05, iterations=2), quad, topo, 6, X0=X0).x
    full = trajectory(A.powergossip(lr=0.05, schedule="full"), quad, topo, 6, X0=X0).x
    assert float(jnp.abs(alt[-1] - full[-1]).max()) > 1e-3
    with pytest.raises(ValueError, match="schedule must be one of"):
        A.powergossip(lr=0.1, schedule="half")


# ---- BEER ----------------------------------------------------------------------------------------------------------
def authors_beer(X0, W, grad_fn, eta, gamma, k, steps):
    """liboyue/beer ``experiments/BEER.py`` (models as rows: ``H.dot(W_shifted)`` with models as columns is
    (W - I) H here). Returns per update k = 1..steps: X^k, H^k, V^k, G^k."""
    n = X0.shape[0]
    C = lambda Z: np.stack([top_k(z, k) for z in Z])  # noqa: E731
    Ws = W - np.eye(n)
    x, H, G = X0.copy(), np.zeros_like(X0), np.zeros_like(X0)
    V = grad_fn(x)
    grad_previous = V.copy()
    out = []
    for _ in range(steps):
        x = x + gamma * Ws @ H - eta * V
        H = H + C(x - H)
        grad = grad_fn(x)
        V = V + gamma * Ws @ G + grad - grad_previous
        grad_previous = grad
        G = G + C(V - G)
        out.append((x.copy(), H.copy(), V.copy(), G.copy()))
    return out


def test_beer_starts_as_the_authors_from_zero_surrogates(quad):
    """Our step t holds X^{t+1}, H^{t+1} and V^t, G^t of the authors' update t + 1 (shifted by one for V and G:
    step 0 forms V^0 = grad F(X^0) and keeps G^0 = 0). Before: H^0 = X^0, so X^1 mixed the initial models."""
    topo = jg.topology.ring(N)
    X0 = spread(quad)
    eta, gamma, k, steps = 0.05, 0.3, 2, 4
    algo = A.beer(lr=eta, compressor=C.top_k(k=k), consensus=gamma)
    states = trajectory(algo, quad, topo, steps + 1, X0=jnp.asarray(X0, jnp.float32))
    ref = authors_beer(X0, np.asarray(topo.W, np.float64), lambda X: grads(quad, X), eta, gamma, k, steps + 1)
    for t in range(steps):
        x, H, _, _ = ref[t]
        np.testing.assert_allclose(np.asarray(states.x[t]), x, rtol=0, atol=2e-5, err_msg=f"X at step {t}")
        np.testing.assert_allclose(np.asarray(states.h[t]), H, rtol=0, atol=2e-5, err_msg=f"H at step {t}")
        if t >= 1:  # the authors' V^t, G^t come out of their update t, ours out of step t
            _, _, V, G = ref[t - 1]
            np.testing.assert_allclose(np.asarray(states.v[t]), V, rtol=0, atol=2e-5, err_msg=f"V at step {t}")
            np.testing.assert_allclose(np.asarray(states.gs[t]), G, rtol=0, atol=2e-5, err_msg=f"G at step {t}")
    np.testing.assert_allclose(np.asarray(states.gs[0]), 0.0)  # G^0 = 0: no tracker message at step 0
    np.testing.assert_allclose(np.asarray(states.x[0]), X0 - eta * grads(quad, X0), rtol=0, atol=1e-5)
    # bits: step 0 sends C(X^1 - H^0) only, every later step two compressed messages per edge
    per_msg = float(C.top_k(k=k).bits(quad.d)) * float(np.sum(topo.degrees))
    np.testing.assert_allclose(step_bits(quad, algo, topo, 3), [per_msg, 2 * per_msg, 2 * per_msg], rtol=1e-6)


# ---- EF21 ----------------------------------------------------------------------------------------------------------
def authors_ef21(x0, grad_fn, stepsize, k, steps):
    """IgorSokoloff/ef21_experiments_source_code ``biased_diana_top_k_gd``: g_i = grad f_i(x_0), then
    x <- x - stepsize g; g_i <- g_i + top_k(grad f_i(x) - g_i). Returns x after each update."""
    g_ar = grad_fn(x0)
    g = g_ar.mean(axis=0)
    x, out = x0.copy(), []
    for _ in range(steps):
        x = x - stepsize * g
        out.append(x.copy())
        delta = grad_fn(x) - g_ar
        g_ar = g_ar + np.stack([top_k(row, k) for row in delta])
        g = g_ar.mean(axis=0)
    return np.stack(out)


def test_ef21_starts_uncompressed_as_the_authors(quad):
    """x^1 = x^0 - lr mean_i grad f_i(x^0) (before: - lr mean_i top_k(grad f_i(x^0))); step 0's upload is the full
    gradient (32 d bits per worker), priced as such."""
    n, d, k, lr, steps = quad.n, quad.d, 2, 0.1, 5
    x0 = np.asarray(quad.x0, np.float64)
    grad_fn = lambda x: grads(quad, np.broadcast_to(x, (n, d)))  # noqa: E731
    want = authors_ef21(x0, grad_fn, lr, k, steps)
    algo = A.ef21(lr=lr, compressor=C.top_k(k=k))
    got = np.asarray(trajectory(algo, quad, jg.topology.complete(n), steps).x, np.float64)
    np.testing.assert_allclose(got, np.broadcast_to(want[:, None, :], got.shape), rtol=0, atol=2e-6)
    up = float(C.top_k(k=k).bits(d))
    np.testing.assert_allclose(step_bits(quad, algo, None, 3), [n * (32 * d + 32 * d)] + [n * (up + 32 * d)] * 2,
                               rtol=1e-6)
