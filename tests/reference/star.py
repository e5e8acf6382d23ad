"""Star network with increasing accuracy (Ye, Xiao, Sun 2020) and its baselines, in NumPy.

Worker i keeps s_i (the server's copy of its gradient estimate), the server s (their average), everyone v (the shared
estimate of the full gradient); every iteration k (Alg. 1, "double encoding"):

    d_i = Q(g_i - s_i, e_k);  s_i += d_i;  s = mean_i d_i + s_prev;  u = Q(s - v, e_k);  v += u,

each message costing Lemma 2.1's count for the vector it encodes (:func:`reference.compressors.bits_for`), priced as a
star: n uploads of their own sizes, one broadcast to n workers.

References: Ye, Xiao, Sun 2020, Alg. 1 (IADE: e_k = s c'^(k+1) / 2, eta = 2 / (L + mu), c = 1 - eta mu,
c' = (1 + c) / 2), Alg. 2 (AIADE: e_k = e c^(k+1) / (2k + 2), eta = 1 / L, tau = (sqrt L - sqrt mu) / (sqrt L +
sqrt mu), c = sqrt(1 - sqrt(mu / L))), Alg. 3 (IADE-SGD: unbiased Q of squared error rho^2 L^2 s c'^(k+1) / 2,
eta = 1 / (rho L), c = 1 - mu / (rho L)); Sec. 3's constant-error quantized GD; Lemma 8.1's Nesterov method.
"""

from __future__ import annotations

import math

import numpy as np

from reference import pricing
from reference.common import FLOAT_BITS, Recorder, Setup
from reference.compressors import bits_for, encode, encode_random

__all__ = ["iade", "aiade", "iade_sgd", "star_gd", "star_nesterov", "star_qgd"]


class _Memories:
    def __init__(self, n, d):
        self.s_w, self.s, self.v = np.zeros((n, d)), np.zeros(d), np.zeros(d)

    def double_encode(self, G, err, key=None):
        """One round; returns (upload bits per worker, broadcast bits). ``key``: the unbiased Q's (workers key(i),
        the server key(n)), whose grid is the deterministic one's at radius err / 2."""
        n = G.shape[0]
        bits_err = err if key is None else err / 2
        up, D = [], np.zeros_like(G)
        for i in range(n):
            delta = G[i] - self.s_w[i]
            D[i] = encode(delta, err) if key is None else encode_random(delta, err, key(i))
            up.append(bits_for(delta, bits_err))
            self.s_w[i] = self.s_w[i] + D[i]
        self.s = np.mean(D, axis=0) + self.s
        diff = self.s - self.v
        self.v = self.v + (encode(diff, err) if key is None else encode_random(diff, err, key(n)))
        return up, bits_for(diff, bits_err)


def _rows(setup, x):
    return np.stack([x] * setup.n)


def _cost(setup, t, up, down, batch):
    compute = float(np.max(batch / setup.speeds(t)))
    return pricing.star(setup.network, up, down, compute)


def _grads(setup, x):
    return np.stack([setup.problem.grad(i, x) for i in range(setup.n)])


def iade(setup: Setup, steps: int, s: float = 1.0):
    L, mu = setup.problem.L, setup.problem.mu
    eta = 2.0 / (L + mu)
    c_prime = (1.0 + (1.0 - eta * mu)) / 2.0
    rec, x, mem = Recorder(setup), setup.X0[0].copy(), _Memories(setup.n, setup.d)
    for k in range(steps):
        up, down = mem.double_encode(_grads(setup, x), s * c_prime ** (k + 1) / 2)
        x = x - eta * mem.v
        rec.add(_rows(setup, x), *_cost(setup, k, up, down, setup.problem.m))
    return rec.trace(_rows(setup, x))


def aiade(setup: Setup, steps: int, e: float = 1.0):
    L, mu = setup.problem.L, setup.problem.mu
    eta, c = 1.0 / L, math.sqrt(1 - math.sqrt(mu / L))
    tau = (math.sqrt(L) - math.sqrt(mu)) / (math.sqrt(L) + math.sqrt(mu))
    rec, mem = Recorder(setup), _Memories(setup.n, setup.d)
    x, y = setup.X0[0].copy(), setup.X0[0].copy()
    for k in range(steps):
        up, down = mem.double_encode(_grads(setup, y), e * c ** (k + 1) / (2 * (k + 1)))
        x_new = y - eta * mem.v
        y = x_new + tau * (x_new - x)
        x = x_new
        rec.add(_rows(setup, x), *_cost(setup, k, up, down, setup.problem.m))
    return rec.trace(_rows(setup, x))


def iade_sgd(setup: Setup, steps: int, rho: float = 1.0, s: float = 1.0):
    L, mu = setup.problem.L, setup.problem.mu
    rhoL = rho * L
    eta, c = 1.0 / rhoL, 1.0 - mu / rhoL
    c_prime = (1.0 + c) / 2.0
    rec, x, mem = Recorder(setup), setup.X0[0].copy(), _Memories(setup.n, setup.d)
    for k in range(steps):
        err = rhoL * math.sqrt(s * c_prime ** (k + 1) / 2)  # squared error rho^2 L^2 s c'^(k+1) / 2
        up, down = mem.double_encode(_grads(setup, x), err, setup.keys(k)(1))
        x = x - eta * mem.v
        rec.add(_rows(setup, x), *_cost(setup, k, up, down, setup.batch))
    return rec.trace(_rows(setup, x))


def star_gd(setup: Setup, steps: int):
    L, mu = setup.problem.L, setup.problem.mu
    eta = 2.0 / (L + mu)
    rec, x = Recorder(setup), setup.X0[0].copy()
    b = FLOAT_BITS * setup.d
    for k in range(steps):
        x = x - eta * np.mean(_grads(setup, x), axis=0)
        rec.add(_rows(setup, x), *_cost(setup, k, [b] * setup.n, b, setup.problem.m))
    return rec.trace(_rows(setup, x))


def star_nesterov(setup: Setup, steps: int):
    L, mu = setup.problem.L, setup.problem.mu
    tau = (math.sqrt(L) - math.sqrt(mu)) / (math.sqrt(L) + math.sqrt(mu))
    rec, x, y = Recorder(setup), setup.X0[0].copy(), setup.X0[0].copy()
    b = FLOAT_BITS * setup.d
    for k in range(steps):
        x_new = y - np.mean(_grads(setup, y), axis=0) / L
        y = x_new + tau * (x_new - x)
        x = x_new
        rec.add(_rows(setup, x), *_cost(setup, k, [b] * setup.n, b, setup.problem.m))
    return rec.trace(_rows(setup, x))


def star_qgd(setup: Setup, steps: int, e: float = 0.01):
    L, mu = setup.problem.L, setup.problem.mu
    eta = 2.0 / (L + mu)
    rec, x = Recorder(setup), setup.X0[0].copy()
    for k in range(steps):
        G = _grads(setup, x)
        D = np.stack([encode(G[i], e) for i in range(setup.n)])
        mean = np.mean(D, axis=0)
        x = x - eta * encode(mean, e)
        up = [bits_for(G[i], e) for i in range(setup.n)]
        rec.add(_rows(setup, x), *_cost(setup, k, up, bits_for(mean, e), setup.problem.m))
    return rec.trace(_rows(setup, x))
