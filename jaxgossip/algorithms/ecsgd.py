"""EC-SGD / DoubleSqueeze: error-compensated compressed centralized SGD (survey Sec. 3.3; Tang et al. 2019b; slides).

Every worker n and the parameter server keep the error its last compression left behind (Liu & Zhang, eq. 3.8-3.12):

    v_t^(n) = g_t^(n) + delta_{t-1}^(n),        delta_t^(n) = v_t^(n) - Q(v_t^(n))          (workers, 3.8-3.9)
    v_t     = (1/N) sum_n Q(v_t^(n)) + delta_{t-1},  delta_t = v_t - Q(v_t)                  (server, 3.10-3.11)
    x_{t+1} = x_t - gamma Q(v_t)                                                             (3.12)

The single-compression variant compresses only the workers' messages and the server sends v_t in full
(x_{t+1} = x_t - gamma v_t, delta_t = 0). Lemma 3.4.1: with x~_t = x_t - gamma Omega_{t-1},
Omega_t = delta_t + (1/N) sum_n delta_t^(n), the auxiliary sequence follows plain SGD,
x~_{t+1} = x~_t - gamma (1/N) sum_n g_t^(n), so any compressor works, biased ones (sign, top-k, clipping) included.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgossip.algorithms._base import Algorithm, init_optimizer, make_algorithm
from jaxgossip.algorithms.dpsgd import LR
from jaxgossip.algorithms._base import hyper_at
from jaxgossip.algorithms.csgd import check_compressor, local_directions
from jaxgossip.compressors._base import FLOAT_BITS, Compressor, compress_rows

__all__ = ["ec_sgd", "doublesqueeze", "ECState", "COMPRESSIONS", "auxiliary_iterate"]

COMPRESSIONS = ("double", "single")


class ECState(NamedTuple):
    x: jax.Array  # (n, d) models, all rows equal
    opt: tuple  # per-worker optax state (empty for plain SGD)
    worker_error: jax.Array  # (n, d) delta^(n), the workers' compression errors
    server_error: jax.Array  # (d,) delta, the server's compression error (zero for single compression)


def _init(algo, X0, ctx):
    return ECState(X0, init_optimizer(algo.optimizer, X0), jnp.zeros_like(X0), jnp.zeros_like(X0[0]))


def auxiliary_iterate(state: ECState, lr):
    """x~ = x - lr * Omega with Omega = delta + mean_n delta^(n) (survey Lemma 3.4.1), (n, d)."""
    omega = state.server_error + jnp.mean(state.worker_error, axis=0)
    return state.x - lr * omega[None, :]


def _workers(algo, state, key, ctx):
    """Worker side (eq. 3.8-3.9): the compressed messages Q(v^(n)) (n, d) and the new errors."""
    comp = algo.hyper["compressor"]
    U, opt = local_directions(algo, state, key, ctx)
    V = U + state.worker_error
    QV = compress_rows(comp, jax.random.fold_in(key, 1), V)
    return QV, V - QV, opt


def _step_double(algo, state, key, ctx):
    comp = algo.hyper["compressor"]
    QV, worker_error, opt = _workers(algo, state, key, ctx)
    v = jnp.mean(QV, axis=0) + state.server_error
    qv = comp.compress(jax.random.fold_in(key, 2), v)
    d = state.x.shape[1]
    cost = ctx.pricing.parameter_server(key, comp.bits(d), comp.bits(d), ctx.problem.batch_size)
    x = state.x - hyper_at(algo, "lr", ctx.t) * qv[None, :]
    return ECState(x, opt, worker_error, v - qv), cost


def _step_single(algo, state, key, ctx):
    comp = algo.hyper["compressor"]
    QV, worker_error, opt = _workers(algo, state, key, ctx)
    v = jnp.mean(QV, axis=0)
    d = state.x.shape[1]
    cost = ctx.pricing.parameter_server(key, comp.bits(d), FLOAT_BITS * d, ctx.problem.batch_size)
    x = state.x - hyper_at(algo, "lr", ctx.t) * v[None, :]
    return ECState(x, opt, worker_error, state.server_error), cost


def ec_sgd(lr=0.1, compressor: Compressor | None = None, compression: str = "double", optimizer=None,
           name: str = "ec_sgd") -> Algorithm:
    """EC-SGD: error-compensated compressed SGD on a parameter server (Liu & Zhang, Sec. 3.3, eq. 3.8-3.12).

    ``compression="double"`` is DoubleSqueeze (Tang et al. 2019b): workers and server both compress with error
    compensation, 2cN full vectors' worth of traffic per iteration (slides), c = compressor.ratio(d).
    ``compression="single"``: workers compress with error compensation, the server replies in full precision,
    N(1 + c) vectors. Works with any compressor, biased ones included. With the identity compressor it equals C-PSGD.

    Args:
      lr: step size gamma (traced).
      compressor: the compressor Q (its parameters are traced).
      compression: ``"double"`` or ``"single"`` (static).
      optimizer: optional optax transformation applied by each worker to its gradient before error compensation;
        None for plain SGD (the survey's algorithm).
      name: the algorithm's name in results.
    """
    if compression not in COMPRESSIONS:
        raise ValueError(f"ec_sgd: compression must be one of {COMPRESSIONS}, got {compression!r}.")
    check_compressor(name, compressor)
    step = _step_double if compression == "double" else _step_single
    return make_algorithm(name, _init, step, {"lr": lr, "compressor": compressor}, specs=(LR,), kind="centralized",
                          optimizer=optimizer)


def doublesqueeze(lr=0.1, compressor: Compressor | None = None, optimizer=None) -> Algorithm:
    """DoubleSqueeze (Tang et al. 2019b; survey Sec. 3.3): :func:`ec_sgd` with ``compression="double"``."""
    return ec_sgd(lr, compressor, "double", optimizer, name="doublesqueeze")
