"""Decentralized algorithms in NumPy, one worker at a time.

Conventions shared with the library (they are the experiment's definition, not its arithmetic): step t's gradient is
taken at the models before the step (full local gradients here); a worker's message is compressed with its key of
stream 1 (``keys(t)(1)(i)``; BEER's second message stream 2); step t mixes with step t's graph; a step is priced once
(the slowest worker's batch) plus its gossip rounds on that graph (:mod:`reference.pricing`).

References (per function): Tang et al. 2018 (paper 000: D-PSGD, naive, DCD Alg. 1, ECD Alg. 2), Liu & Zhang (survey
eq. 5.2), Koloskova, Stich, Jaggi 2019 and epfml/ChocoSGD convex_code/logistic.py (CHOCO-SGD), Tang et al. 2019
(DeepSqueeze), Reisizadeh et al. 2019 (paper 001: Q-DSGD, QuanTimed-DSGD, eq. 6-8), Nedic, Olshevsky, Shi 2017 (DIGing)
and Pu & Nedic 2021 (DSGT), Yuan et al. 2019 (exact diffusion, Alg. 1), Tang et al. ICML 2018 (D²), Zhao et al. 2022
and liboyue/beer experiments/BEER.py (BEER), Assran et al. 2019 (SGP), Vogels, Karimireddy, Jaggi 2020 and
epfml/powergossip algorithms.py ``PowerGossip`` (PowerGossip).
"""

from __future__ import annotations

import math

import numpy as np

from reference import pricing
from reference.common import FLOAT_BITS, Keys, LocalOptimizer, Recorder, Setup, mix

__all__ = ["dpsgd", "naive_compressed", "dcd_psgd", "ecd_psgd", "choco_sgd", "deepsqueeze", "q_dsgd",
           "quantimed_dsgd", "gradient_tracking", "exact_diffusion", "d2", "beer", "sgp", "powergossip"]


def _opt(optimizer):
    return LocalOptimizer("sgd") if optimizer is None else optimizer


def _gossip_cost(setup: Setup, t: int, *round_bits):
    return pricing.gossip(setup.graph_at(t), setup.network, round_bits, setup.compute_seconds(t))


def _compress_each(comp, X, key: Keys):
    """Worker i's message C(x_i) with its own key ``key(i)``."""
    out = np.zeros_like(X)
    for i in range(X.shape[0]):
        out[i] = comp(X[i], key(i))
    return out


def _local_steps(setup, opt, X, lr):
    """Every worker's local step (lr g_i, or its optimizer's), at its own model."""
    S = np.zeros_like(X)
    for i in range(setup.n):
        S[i] = opt.step(i, setup.problem.grad(i, X[i]), lr)
    return S


# ---- D-PSGD and the compressed variants of paper 000 -----------------------------------------------------------------
def dpsgd(setup: Setup, steps: int, lr: float, order: str = "paper", optimizer=None):
    """paper: x_i <- sum_j W_ij x_j - lr g_i (Tang et al. 2018, Sec. 3); survey: x_i <- sum_j W_ij (x_j - lr g_j)
    (Liu & Zhang, eq. 5.2). One float32 d-vector per edge."""
    opt, rec, X = _opt(optimizer), Recorder(setup), setup.X0.copy()
    for t in range(steps):
        S = _local_steps(setup, opt, X, lr)
        G = setup.graph_at(t)
        X = mix(G, X) - S if order == "paper" else mix(G, X - S)
        rec.add(X, *_gossip_cost(setup, t, FLOAT_BITS * setup.d))
    return rec.trace(X)


def naive_compressed(setup: Setup, steps: int, lr: float, compressor, optimizer=None):
    """x_i <- W_ii x_i + sum_{j != i} W_ij C(x_j) - lr g_i (paper 000, Sec. 3, Fig. 1)."""
    opt, rec, X = _opt(optimizer), Recorder(setup), setup.X0.copy()
    for t in range(steps):
        S = _local_steps(setup, opt, X, lr)
        C = _compress_each(compressor, X, setup.keys(t)(1))
        G = setup.graph_at(t)
        new = np.zeros_like(X)
        for i in range(setup.n):
            new[i] = G.W[i, i] * X[i] - S[i]
            for j in G.neighbours(i):
                new[i] += G.W[i, j] * C[j]
        X = new
        rec.add(X, *_gossip_cost(setup, t, compressor.bits(setup.d)))
    return rec.trace(X)


def dcd_psgd(setup: Setup, steps: int, lr: float, compressor, optimizer=None):
    """DCD-PSGD (paper 000, Alg. 1): z_i = sum_j W_ij x_j - lr g_i - x_i; every replica of x_i moves by C(z_i)."""
    opt, rec, X = _opt(optimizer), Recorder(setup), setup.X0.copy()
    for t in range(steps):
        S = _local_steps(setup, opt, X, lr)
        Z = mix(setup.graph_at(t), X) - S - X
        X = X + _compress_each(compressor, Z, setup.keys(t)(1))
        rec.add(X, *_gossip_cost(setup, t, compressor.bits(setup.d)))
    return rec.trace(X)


def ecd_psgd(setup: Setup, steps: int, lr: float, compressor, optimizer=None):
    """ECD-PSGD (paper 000, Alg. 2), s = t + 1: x_i <- sum_j W_ij xhat_j - lr g_i(x_i); z_i = (1 - s/2) x_i^old +
    (s/2) x_i; xhat_i <- (1 - 2/s) xhat_i + (2/s) C(z_i). The estimates start at the initial models (as the authors'
    convex code, epfml/ChocoSGD convex_code/logistic.py, ``x_hat = copy(x)``)."""
    opt, rec = _opt(optimizer), Recorder(setup)
    X, Xhat = setup.X0.copy(), setup.X0.copy()
    for t in range(steps):
        s = t + 1.0
        S = _local_steps(setup, opt, X, lr)
        new = mix(setup.graph_at(t), Xhat) - S
        Z = (1 - s / 2) * X + (s / 2) * new
        CZ = _compress_each(compressor, Z, setup.keys(t)(1))
        Xhat = (1 - 2 / s) * Xhat + (2 / s) * CZ
        X = new
        rec.add(X, *_gossip_cost(setup, t, compressor.bits(setup.d)))
    return rec.trace(X)


def choco_sgd(setup: Setup, steps: int, lr: float, compressor, consensus: float, order: str = "paper",
              optimizer=None):
    """CHOCO-SGD. ``paper`` (the authors' convex code's order): x_i <- x_i - lr g_i + c sum_j W_ij (xhat_j - xhat_i);
    xhat_i <- xhat_i + C(x_i - xhat_i). ``survey`` (Koloskova et al. 2019, Alg. 2): xhat_i <- xhat_i + C(x_i^half -
    xhat_i) first, then x_i <- x_i^half + c sum_j W_ij (xhat_j - xhat_i). xhat starts at the initial models (convex
    code). ``compressor`` must be a contraction: an unbiased one is passed already rescaled (compressors.Rescaled)."""
    opt, rec = _opt(optimizer), Recorder(setup)
    X, Xhat = setup.X0.copy(), setup.X0.copy()
    for t in range(steps):
        G = setup.graph_at(t)
        half = X - _local_steps(setup, opt, X, lr)
        key = setup.keys(t)(1)
        if order == "survey":
            Xhat = Xhat + _compress_each(compressor, half - Xhat, key)
        new = half.copy()
        for i in range(setup.n):
            for j in G.neighbours(i):
                new[i] += consensus * G.W[i, j] * (Xhat[j] - Xhat[i])
        X = new
        if order == "paper":
            Xhat = Xhat + _compress_each(compressor, X - Xhat, key)
        rec.add(X, *_gossip_cost(setup, t, compressor.bits(setup.d)))
    return rec.trace(X)


def deepsqueeze(setup: Setup, steps: int, lr: float, compressor, consensus: float, optimizer=None):
    """DeepSqueeze (Tang et al. 2019, Alg. 1): v_i = x_i^half + delta_i; delta_i <- v_i - C(v_i);
    x_i <- x_i^half + c sum_j W_ij (C(v_j) - C(v_i))."""
    opt, rec = _opt(optimizer), Recorder(setup)
    X, delta = setup.X0.copy(), np.zeros_like(setup.X0)
    for t in range(steps):
        G = setup.graph_at(t)
        half = X - _local_steps(setup, opt, X, lr)
        V = half + delta
        CV = _compress_each(compressor, V, setup.keys(t)(1))
        delta = V - CV
        X = half.copy()
        for i in range(setup.n):
            for j in G.neighbours(i):
                X[i] += consensus * G.W[i, j] * (CV[j] - CV[i])
        rec.add(X, *_gossip_cost(setup, t, compressor.bits(setup.d)))
    return rec.trace(X)


# ---- paper 001 -------------------------------------------------------------------------------------------------------
def _eq8(setup, G, X, Z, grads, alpha, eps):
    """Eq. 8: x_i <- (1 - eps + eps w_ii) x_i + eps sum_{j in N_i} w_ij z_j - alpha eps g_i."""
    new = np.zeros_like(X)
    for i in range(setup.n):
        new[i] = (1 - eps + eps * G.W[i, i]) * X[i] - alpha * eps * grads[i]
        for j in G.neighbours(i):
            new[i] += eps * G.W[i, j] * Z[j]
    return new


def q_dsgd(setup: Setup, steps: int, alpha: float, eps: float, compressor):
    """Q-DSGD (paper 001, eq. 8 with the fixed batch): a step waits for the slowest worker."""
    rec, X = Recorder(setup), setup.X0.copy()
    for t in range(steps):
        grads = setup.problem.grads(X)
        Z = _compress_each(compressor, X, setup.keys(t)(1))
        G = setup.graph_at(t)
        X = _eq8(setup, G, X, Z, grads, alpha, eps)
        rec.add(X, *_gossip_cost(setup, t, compressor.bits(setup.d)))
    return rec.trace(X)


def quantimed_dsgd(setup: Setup, steps: int, alpha: float, eps: float, deadline: float, compressor):
    """QuanTimed-DSGD (paper 001, Alg. 1, eq. 6): worker i averages the gradients of the |S_i,t| = min(m, floor(V_i,t
    T_d)) samples it reaches by the deadline, S_i,t a random subset of its m samples (none: a zero gradient); an
    iteration costs T_d plus its gossip. Fed draws: V_i,t, the step's speeds (the compute stream), and the order in
    which worker i visits its samples, the argsort of uniform(keys(t)(0), (n, m)) row i (the library's sampler without
    replacement)."""
    rec, X = Recorder(setup), setup.X0.copy()
    n, m = setup.n, setup.problem.m
    for t in range(steps):
        V = setup.speeds(t)
        order = setup.keys(t)(0).uniform((n, m))
        grads = np.zeros_like(X)
        for i in range(n):
            size = min(m, math.floor(V[i] * deadline))
            grads[i] = setup.problem.grad(i, X[i], np.argsort(order[i], kind="stable")[:size])
        Z = _compress_each(compressor, X, setup.keys(t)(1))
        G = setup.graph_at(t)
        X = _eq8(setup, G, X, Z, grads, alpha, eps)
        rec.add(X, *pricing.gossip(G, setup.network, [compressor.bits(setup.d)], deadline))
    return rec.trace(X)


# ---- bias-corrected methods ------------------------------------------------------------------------------------------
def gradient_tracking(setup: Setup, steps: int, lr: float, order: str = "diging"):
    """DIGing (Nedic, Olshevsky, Shi 2017) over time-varying graphs: x_{t+1} = W_t x_t - lr y_t,
    y_{t+1} = W_t y_t + g_{t+1} - g_t, y_0 = g_0; ``atc``: x_{t+1} = W_t (x_t - lr y_t) (Pu & Nedic 2021). Two
    float32 d-vectors per edge and step (x and y), two gossip rounds."""
    rec, X = Recorder(setup), setup.X0.copy()
    Y, WY, Gprev = None, None, None
    for t in range(steps):
        grads = setup.problem.grads(X)
        Y = grads.copy() if t == 0 else WY + grads - Gprev
        G = setup.graph_at(t)
        X = mix(G, X) - lr * Y if order == "diging" else mix(G, X - lr * Y)
        WY, Gprev = mix(G, Y), grads
        rec.add(X, *_gossip_cost(setup, t, FLOAT_BITS * setup.d, FLOAT_BITS * setup.d))
    return rec.trace(X)


def _diffusion(setup, steps, lr, half):
    """Adapt psi = x - lr g, correct phi = psi + x - psi_prev (psi_prev = x_0 at the first step), combine with
    (1 - half) I + half W in the difference form phi_i + half sum_j W_ij (phi_j - phi_i)."""
    rec, X = Recorder(setup), setup.X0.copy()
    psi_prev = setup.X0.copy()
    for t in range(steps):
        psi = X - lr * setup.problem.grads(X)
        phi = psi + X - psi_prev
        G = setup.graph_at(t)
        X = phi.copy()
        for i in range(setup.n):
            for j in G.neighbours(i):
                X[i] += half * G.W[i, j] * (phi[j] - phi[i])
        psi_prev = psi
        rec.add(X, *_gossip_cost(setup, t, FLOAT_BITS * setup.d))
    return rec.trace(X)


def exact_diffusion(setup: Setup, steps: int, lr: float):
    """Exact diffusion (Yuan, Ying, Zhao, Sayed 2019, Part I, Alg. 1), combining with W_bar = (I + W) / 2."""
    return _diffusion(setup, steps, lr, 0.5)


def d2(setup: Setup, steps: int, lr: float):
    """D² (Tang, Lian, Yan, Zhang, Liu 2018, Alg. 1): X_1 = W (X_0 - lr G_0); X_{t+1} = W (2 X_t - X_{t-1} - lr G_t +
    lr G_{t-1}), i.e. exact diffusion's adapt / correct combined with W itself."""
    return _diffusion(setup, steps, lr, 1.0)


def beer(setup: Setup, steps: int, lr: float, compressor, consensus: float):
    """BEER as the authors run it (liboyue/beer, experiments/BEER.py): H^0 = 0, G^0 = 0, V^0 = grad F(X^0); update k:

        X^k = X^{k-1} + gamma (W - I) H^{k-1} - eta V^{k-1};   H^k = H^{k-1} + C(X^k - H^{k-1})
        V^k = V^{k-1} + gamma (W - I) G^{k-1} + grad F(X^k) - grad F(X^{k-1});   G^k = G^{k-1} + C(V^k - G^{k-1}).

    A simulator step computes one gradient, at X^t: step 0 makes X^1 and sends C(X^1 - H^0) (one round); step t >= 1
    finishes update t (V^t, sends C(V^t - G^{t-1})) and makes X^{t+1} (sends C(X^{t+1} - H^t)): two rounds. The
    tracker's message uses stream 1 of the step's key, the model's stream 2."""
    rec, X = Recorder(setup), setup.X0.copy()
    H, Gs = np.zeros_like(X), np.zeros_like(X)
    V, grad_prev = None, None
    b = compressor.bits(setup.d)
    for t in range(steps):
        grads = setup.problem.grads(X)
        G = setup.graph_at(t)
        if t == 0:
            V = grads.copy()
        else:
            WG = mix(G, Gs)
            V = V + consensus * (WG - Gs) + grads - grad_prev
            Gs = Gs + _compress_each(compressor, V - Gs, setup.keys(t)(1))
        grad_prev = grads
        WH = mix(G, H)
        X = X + consensus * (WH - H) - lr * V
        H = H + _compress_each(compressor, X - H, setup.keys(t)(2))
        rec.add(X, *_gossip_cost(setup, t, *((b,) if t == 0 else (b, b))))
    return rec.trace(X)


# ---- push-sum --------------------------------------------------------------------------------------------------------
def sgp(setup: Setup, steps: int, lr: float):
    """SGP (Assran, Loizou, Ballas, Rabbat 2019, Alg. 1): u_i <- sum_j P_ij (u_j - lr grad f_j(z_j)),
    w_i <- sum_j P_ij w_j, z_i = u_i / w_i, with P column stochastic; u_0 = z_0 = x_0, w_0 = 1. A message is the
    numerator and the weight, d + 1 float32 values, on every out-edge."""
    rec = Recorder(setup)
    U, Z, w = setup.X0.copy(), setup.X0.copy(), np.ones(setup.n)
    for t in range(steps):
        half = U - lr * setup.problem.grads(Z)
        G = setup.graph_at(t)
        U = mix(G, half)
        w = mix(G, w[:, None])[:, 0]
        Z = U / w[:, None]
        rec.add(Z, *_gossip_cost(setup, t, FLOAT_BITS * (setup.d + 1)))
    return rec.trace(Z)


# ---- PowerGossip -----------------------------------------------------------------------------------------------------
#: The library's fixed seed of the initial factors (both ends of an edge draw the same Q from the edge's pair index).
POWERGOSSIP_INIT_SEED = 20200803


def _orthonormalize(P, eps=1e-8):
    """The authors' ``orthogonalize``: Gram-Schmidt, each column divided by (its norm + eps)."""
    P = P.copy()
    for c in range(P.shape[1]):
        P[:, c] = P[:, c] / (np.sqrt(np.sum(P[:, c] ** 2)) + eps)
        for c2 in range(c + 1, P.shape[1]):
            P[:, c2] = P[:, c2] - np.sum(P[:, c] * P[:, c2]) * P[:, c]
    return P


def powergossip(setup: Setup, steps: int, lr: float, rank: int = 1, optimizer=None):
    """PowerGossip with the authors' schedule (epfml/powergossip algorithms.py ``PowerGossip.step``,
    ``num_iterations=1``, run by ``DPSGD(overlapping=True)``: x_{t+1} = gossip(x_t) - lr g(x_t)):

    step 0 sends nothing (no disagreement yet); at odd steps, per edge (lo, hi) and parameter matrix M,
    q <- orthonormalize(q), p <- (M_hi - M_lo) q (each end sends M q: rows r floats) and M_i <- M_i - sum_j W_ij
    (M_i - M_j) q q^T; at even steps p <- orthonormalize(p), q <- (M_hi - M_lo)^T p (each end sends M^T p: cols r
    floats) and M_i <- M_i - sum_j W_ij p p^T (M_i - M_j). Both ends hold the same p, q (warm started across steps).

    A problem without a layout is one ceil(sqrt(d)) x ceil(d / ceil(sqrt(d))) matrix, zero padded, row-major (the
    library's split). The initial q of edge (i, j) is the library's draw: normal(fold_in(fold_in(key(20200803), 0),
    min(i, j) n + max(i, j)), (cols, rank)), fed.
    """
    import jax

    n, d = setup.n, setup.d
    rows = max(1, math.ceil(math.sqrt(d)))
    cols = max(1, math.ceil(d / rows))
    r = min(rank, rows, cols)
    opt, rec, X = _opt(optimizer), Recorder(setup), setup.X0.copy()
    base = jax.random.fold_in(jax.random.key(POWERGOSSIP_INIT_SEED), 0)
    p, q = {}, {}

    def matrix(x):
        return np.concatenate([x, np.zeros(rows * cols - d)]).reshape(rows, cols)

    for t in range(steps):
        S = _local_steps(setup, opt, X, lr)
        G = setup.graph_at(t)
        edges = [(i, j) for i in range(n) for j in range(i + 1, n) if G.edge(i, j) or G.edge(j, i)]
        for e in edges:
            if e not in q:
                q[e] = _orthonormalize(Keys(jax.random.fold_in(base, e[0] * n + e[1])).normal((cols, r)))
        M = [matrix(X[i]) for i in range(n)]
        new = [m.copy() for m in M]
        floats = 0
        if t % 2 == 1:
            for lo, hi in edges:
                q[lo, hi] = _orthonormalize(q[lo, hi])
                p[lo, hi] = (M[hi] - M[lo]) @ q[lo, hi]  # each end sends M q
                approx = p[lo, hi] @ q[lo, hi].T  # ~ M_hi - M_lo
                new[hi] -= G.W[hi, lo] * approx
                new[lo] += G.W[lo, hi] * approx
            floats = rows * r
        elif t > 0:
            for lo, hi in edges:
                p[lo, hi] = _orthonormalize(p[lo, hi])
                q[lo, hi] = (M[hi] - M[lo]).T @ p[lo, hi]  # each end sends M^T p
                approx = p[lo, hi] @ q[lo, hi].T
                new[hi] -= G.W[hi, lo] * approx
                new[lo] += G.W[lo, hi] * approx
            floats = cols * r
        mixed = np.stack([m.reshape(-1)[:d] for m in new])
        X = mixed - S
        rounds = (FLOAT_BITS * floats,) if floats else ()
        rec.add(X, *_gossip_cost(setup, t, *rounds))
    return rec.trace(X)

