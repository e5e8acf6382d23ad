"""Centralized algorithms in NumPy: every worker holds the same model, the average is exact (AllReduce or a server).

Keys: worker i's message uses stream 1 (``keys(t)(1)(i)``; a partition k of it ``keys(t)(1)(i)(k)``; the ring's hop h,
chunk k ``keys(t)(1)(h)(k)``), the server's stream 2 (partition k: ``keys(t)(2)(k)``).

References:
  Liu & Zhang (survey): C-PSGD / mb-SGD (Sec. 2), CSGD eq. 3.2 (parameter server, multi-server partitions of Sec. 1.3.4
  and 3.1.2) and eq. 3.3 (ring AllReduce), EC-SGD / DoubleSqueeze eq. 3.8-3.12 (Sec. 3.3).
  EF21: Richtarik, Sokolov, Fatkhullin 2021, Alg. 1, started as the authors' experiments start it
  (IgorSokoloff/ef21_experiments_source_code, ``biased_diana_top_k_gd``: g_ar = compute_full_grads(x_0), uncompressed).
"""

from __future__ import annotations

import numpy as np

from reference import pricing
from reference.common import FLOAT_BITS, LocalOptimizer, Recorder, Setup

__all__ = ["cpsgd", "csgd", "ec_sgd", "doublesqueeze", "ef21", "local_sgd"]


def _directions(setup, opt, x):
    """Every worker's local direction at unit step size at the shared model x."""
    U = np.zeros((setup.n, setup.d))
    for i in range(setup.n):
        U[i] = opt.direction(i, setup.problem.grad(i, x))
    return U


def _opt(optimizer):
    return LocalOptimizer("sgd") if optimizer is None else optimizer


def _rows(setup, x):
    return np.stack([x] * setup.n)


def cpsgd(setup: Setup, steps: int, lr: float, pattern: str = "allreduce", optimizer=None):
    """x <- x - (1/n) sum_i lr u_i, the average exact; priced as a ring AllReduce or one parameter server of float32
    d-vectors."""
    opt, rec, x = _opt(optimizer), Recorder(setup), setup.X0[0].copy()
    b = FLOAT_BITS * setup.d
    for t in range(steps):
        x = x - lr * np.mean(_directions(setup, opt, x), axis=0)
        c = setup.compute_seconds(t)
        cost = pricing.allreduce(setup.n, setup.network, b, c) if pattern == "allreduce" else \
            pricing.parameter_server(setup.n, setup.network, b, b, c)
        rec.add(_rows(setup, x), *cost)
    return rec.trace(_rows(setup, x))


def _partitions(d, n):
    """The n partitions of a d-vector as even as possible: the first d mod n hold one more coordinate."""
    q, r = divmod(d, n)
    sizes = [q + 1 if k < r else q for k in range(n)]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    return [(int(starts[k]), sizes[k]) for k in range(n)]


def csgd(setup: Setup, steps: int, lr: float, compressor, form: str = "parameter_server", servers: str = "multi",
         optimizer=None):
    """CSGD without error compensation: g = Q(mean_i Q(u_i)) on a parameter server (eq. 3.2; ``multi``: worker k
    serves partition k, every partition compressed separately, priced as AllReduce; ``single``: one server), or the
    nested ring sum of eq. 3.3 (chunk k starts at worker k; every hop adds the local chunk and compresses again),
    divided by n; x <- x - lr g."""
    n, d = setup.n, setup.d
    opt, rec, x = _opt(optimizer), Recorder(setup), setup.X0[0].copy()
    for t in range(steps):
        U = _directions(setup, opt, x)
        key = setup.keys(t)
        c = setup.compute_seconds(t)
        if form == "parameter_server" and servers == "single":
            up = np.mean([compressor(U[i], key(1)(i)) for i in range(n)], axis=0)
            g = compressor(up, key(2))
            cost = pricing.parameter_server(n, setup.network, compressor.bits(d), compressor.bits(d), c)
        elif form == "parameter_server":
            parts = _partitions(d, n)
            up = np.zeros(d)
            for i in range(n):
                for k, (s, size) in enumerate(parts):
                    if size:
                        up[s:s + size] += compressor(U[i, s:s + size], key(1)(i)(k)) / n
            g = np.zeros(d)
            for k, (s, size) in enumerate(parts):
                if size:
                    g[s:s + size] = compressor(up[s:s + size], key(2)(k))
            msg = sum(compressor.bits(size) for _, size in parts if size)
            cost = pricing.allreduce(n, setup.network, msg, c)
        else:
            width = -(-d // n)
            padded = np.zeros((n, n * width))
            padded[:, :d] = U
            acc = np.zeros((n, width))
            for h in range(n):
                for k in range(n):
                    w = (k + h) % n
                    acc[k] = compressor(acc[k] + padded[w, k * width:(k + 1) * width], key(1)(h)(k))
            g = acc.reshape(-1)[:d] / n
            sizes = [max(0, min(width, d - k * width)) for k in range(n)]
            cost = pricing.allreduce(n, setup.network, sum(compressor.bits(s) for s in sizes if s), c)
        x = x - lr * g
        rec.add(_rows(setup, x), *cost)
    return rec.trace(_rows(setup, x))


def ec_sgd(setup: Setup, steps: int, lr: float, compressor, compression: str = "double", optimizer=None):
    """EC-SGD (survey eq. 3.8-3.12): worker v_i = u_i + delta_i, delta_i <- v_i - Q(v_i); server v = mean_i Q(v_i) +
    delta, delta <- v - Q(v), x <- x - lr Q(v) (``double``, DoubleSqueeze); ``single``: the server replies v in full
    precision, x <- x - lr mean_i Q(v_i)."""
    n, d = setup.n, setup.d
    opt, rec, x = _opt(optimizer), Recorder(setup), setup.X0[0].copy()
    worker_err, server_err = np.zeros((n, d)), np.zeros(d)
    for t in range(steps):
        U = _directions(setup, opt, x)
        key = setup.keys(t)
        QV = np.zeros((n, d))
        for i in range(n):
            v = U[i] + worker_err[i]
            QV[i] = compressor(v, key(1)(i))
            worker_err[i] = v - QV[i]
        v = np.mean(QV, axis=0)
        c = setup.compute_seconds(t)
        if compression == "double":
            v = v + server_err
            qv = compressor(v, key(2))
            server_err = v - qv
            x = x - lr * qv
            cost = pricing.parameter_server(n, setup.network, compressor.bits(d), compressor.bits(d), c)
        else:
            x = x - lr * v
            cost = pricing.parameter_server(n, setup.network, compressor.bits(d), FLOAT_BITS * d, c)
        rec.add(_rows(setup, x), *cost)
    return rec.trace(_rows(setup, x))


def doublesqueeze(setup: Setup, steps: int, lr: float, compressor, optimizer=None):
    return ec_sgd(setup, steps, lr, compressor, "double", optimizer)


def ef21(setup: Setup, steps: int, lr: float, compressor):
    """EF21 on a parameter server: x^{t+1} = x^t - lr mean_i g_i^t; g_i^{t+1} = g_i^t + C(grad f_i(x^{t+1}) - g_i^t),
    with g_i^0 = grad f_i(x^0) uncompressed (the authors' experiments). A simulator step computes the gradients at
    x^t: step 0 uploads g_i^0 in full (32 d bits each), step t >= 1 uploads C(grad f_i(x^t) - g_i^{t-1}); the server
    broadcasts the new model in full."""
    n, d = setup.n, setup.d
    rec, x = Recorder(setup), setup.X0[0].copy()
    g = np.zeros((n, d))
    for t in range(steps):
        key = setup.keys(t)
        for i in range(n):
            grad = setup.problem.grad(i, x)
            g[i] = grad if t == 0 else g[i] + compressor(grad - g[i], key(1)(i))
        x = x - lr * np.mean(g, axis=0)
        up = FLOAT_BITS * d if t == 0 else compressor.bits(d)
        rec.add(_rows(setup, x), *pricing.parameter_server(n, setup.network, up, FLOAT_BITS * d,
                                                           setup.compute_seconds(t)))
    return rec.trace(_rows(setup, x))


def local_sgd(setup: Setup, steps: int, lr: float, H: int, optimizer=None):
    """Local SGD / FedAvg with full participation (Stich 2019, Alg. 1; McMahan et al. 2017): every worker steps on its
    own model, x_i <- x_i - lr u_i; after every H-th step (t + 1 = H, 2H, ...) the models are replaced by their exact
    average, priced as a ring AllReduce of a float32 d-vector; the other steps send nothing and last the slowest
    worker's computation."""
    opt, rec, X = _opt(optimizer), Recorder(setup), setup.X0.copy()
    b = FLOAT_BITS * setup.d
    for t in range(steps):
        for i in range(setup.n):
            X[i] = X[i] - lr * opt.direction(i, setup.problem.grad(i, X[i]))
        c = setup.compute_seconds(t)
        if (t + 1) % H == 0:
            X[:] = np.mean(X, axis=0)
            rec.add(X, *pricing.allreduce(setup.n, setup.network, b, c))
        else:
            rec.add(X, 0.0, c)
    return rec.trace(X)
