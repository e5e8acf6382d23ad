"""Event-driven methods in NumPy: AD-PSGD, asynchronous DSGD, ASGD.

One library step is one event. The random draws are fed from the library's key streams (documented in
``jaxgossip/algorithms/asynchronous.py`` and ``adpsgd.py``): each step, the workers that have just started a gradient
draw its duration b / V with V = uniform(keys(t)(2), (n,), low, high) (the compute model's speeds); AD-PSGD draws the
neighbour with ``jax.random.categorical(keys(t)(3), log W_i.)`` over row i of W (self excluded). Everything else (who
finishes first, what each worker holds at that time, the models) is computed here.

References:
  X. Lian, W. Zhang, C. Zhang, J. Liu, "Asynchronous decentralized parallel stochastic gradient descent", ICML 2018,
  Alg. 1 (AD-PSGD). Reisizadeh et al. 2019, Sec. 5 (asynchronous DSGD). Liu & Zhang, Sec. 4.1-4.2 (ASGD).
"""

from __future__ import annotations

import numpy as np

from reference.common import FLOAT_BITS, LocalOptimizer, Recorder, Setup

__all__ = ["ad_psgd", "async_dsgd", "asgd"]


def _durations(setup: Setup, t: int) -> np.ndarray:
    """Seconds each worker would need for a gradient that starts at event t: b / V_i with V drawn from stream 2."""
    return setup.batch / setup.compute.speeds(setup.keys(t)(2), setup.n)


def _start_pending(setup: Setup, t: int, clock: np.ndarray, pending: np.ndarray) -> None:
    """Every worker that starts a gradient at event t (``pending``) finishes it at its clock plus its duration."""
    dur = _durations(setup, t)
    for k in range(setup.n):  # one worker at a time
        if pending[k]:
            clock[k] += dur[k]


def ad_psgd(setup: Setup, steps: int, lr: float):
    """AD-PSGD: when worker i finishes the gradient it started at its read model xhat_i, it averages with a random
    neighbour j (probability W_ij / sum_{k != i} W_ik): x_i, x_j <- (x_i + x_j) / 2, then x_i <- x_i - lr g_i(xhat_i);
    it reads xhat_i <- x_i and starts its next gradient after the exchange (two d-float messages: 2 (alpha + 32 d beta)
    seconds). An event costs 2 x 32 d bits; its duration is the time from the previous event."""
    n, d = setup.n, setup.d
    rec = Recorder(setup)
    X, read = setup.X0.copy(), setup.X0.copy()
    clock, pending = np.zeros(n), np.ones(n, bool)
    exchange = 2 * setup.network.message(FLOAT_BITS * d)
    for t in range(steps):
        _start_pending(setup, t, clock, pending)
        i = int(np.argmin(clock))
        dt = clock[i]
        W = setup.graph_at(t).W
        w = np.asarray(W[i], np.float32).copy()
        w[i] = 0.0
        with np.errstate(divide="ignore"):
            logits = np.where(w > 0, np.log(np.maximum(w, np.float32(1e-30))), -np.inf).astype(np.float32)
        j = setup.keys(t)(3).categorical(logits)
        g = setup.problem.grad(i, read[i])
        avg = 0.5 * (X[i] + X[j])
        X[j] = avg
        X[i] = avg - lr * g
        read[i] = X[i]
        for k in range(n):
            clock[k] = exchange if k == i else clock[k] - dt
            pending[k] = k == i
        rec.add(X, 2 * FLOAT_BITS * d, dt)
    return rec.trace(X)


def async_dsgd(setup: Setup, steps: int, lr: float, optimizer=None):
    """Asynchronous DSGD: when worker i finishes its gradient (taken at its current model), it mixes with the latest
    neighbour models that have reached it, x_i <- W_ii x_i + sum_j W_ij x_j^latest - lr u_i, then sends its new model
    to its deg_i neighbours one at a time (deg_i (alpha + 32 d beta) seconds; 32 d deg_i bits) and starts its next
    gradient once the sends are over; a neighbour holds the new model from the end of those sends, the previous one
    until then. Every worker first sends its initial model. deg_i: the event's graph (the initial sends: graph 0's)."""
    n, d = setup.n, setup.d
    opt = LocalOptimizer("sgd") if optimizer is None else optimizer
    rec = Recorder(setup)

    def send_seconds(t, i):
        return setup.graph_at(t).out_degree[i] * setup.network.message(FLOAT_BITS * d)

    X, prev = setup.X0.copy(), setup.X0.copy()
    arrives = np.array([send_seconds(0, i) for i in range(n)])
    clock, pending = arrives.copy(), np.ones(n, bool)
    for t in range(steps):
        _start_pending(setup, t, clock, pending)
        dt = float(np.min(clock))
        active = [k for k in range(n) if clock[k] == dt]
        assert len(active) == 1, "the reference handles one worker per event (random speeds)"
        i = active[0]
        G = setup.graph_at(t)
        seen = {j: (X[j] if arrives[j] <= dt else prev[j]) for j in G.neighbours(i)}
        new_i = G.W[i, i] * X[i] - opt.step(i, setup.problem.grad(i, X[i]), lr)
        for j, xj in seen.items():
            new_i = new_i + G.W[i, j] * xj
        send = send_seconds(t, i)
        prev[i] = X[i]
        X[i] = new_i
        for k in range(n):
            arrives[k] = send if k == i else arrives[k] - dt
            clock[k] = send if k == i else clock[k] - dt
            pending[k] = k == i
        rec.add(X, G.out_degree[i] * FLOAT_BITS * d, dt)
    return rec.trace(X)


def asgd(setup: Setup, steps: int, lr: float, optimizer=None):
    """ASGD on one parameter server: x_{t+1} = x_t - lr g(x_{D(t)}). The server first sends the initial model to the
    workers one at a time; then each worker computes a gradient at the model it pulled, pushes it (one message up),
    and the server applies pushes in arrival order and replies on its one send link (one message down, after the
    previous reply); the worker starts its next gradient on receiving it. Event t: the server applies a push; its
    duration is the time from the previous application to this receipt; 2 x 32 d bits."""
    n, d = setup.n, setup.d
    opt = LocalOptimizer("sgd") if optimizer is None else optimizer
    rec = Recorder(setup)
    msg = setup.network.message(FLOAT_BITS * d)
    x = setup.X0[0].copy()
    pulled = np.stack([x] * n)
    clock = np.array([(k + 1) * msg for k in range(n)])
    pending, send_free = np.ones(n, bool), n * msg
    for t in range(steps):
        _start_pending(setup, t, clock, pending)
        i = int(np.argmin(clock))
        received = max(clock[i], 0.0) + msg
        replied = max(received, send_free) + msg
        x = x - opt.step(0, setup.problem.grad(i, pulled[i]), lr)
        pulled[i] = x
        for k in range(n):
            clock[k] = replied - received if k == i else clock[k] - received
            pending[k] = k == i
        send_free = replied - received
        rec.add(np.stack([x] * n), 2 * FLOAT_BITS * d, received)
    return rec.trace(np.stack([x] * n))
