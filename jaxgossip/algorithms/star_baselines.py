"""Baselines on the star network of Ye, Xiao, Sun (2020): full-precision GD, Nesterov's AGD, constant-error quantized GD.

Every worker sends its full local gradient to the server, which broadcasts the average (or, for the quantized baseline,
both directions go through the bounded-error encoder Q(., e) with a *constant* radius e: the "trivial algorithm" of
Sec. 3, whose error floor does not shrink). Full-precision messages cost ``d`` values of the models' dtype
(32 bits in float32, 64 in float64: an accuracy of 1e-8 needs float64 on the wire too).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgossip.algorithms._base import as_float
from jaxgossip.algorithms.iade import (_algorithm, _cast, _full_batch, _optional, aiade_rates, check_mu_L,
                                      resolve_constants, star_cost)
from jaxgossip.compressors.bounded import bits_for, encode

__all__ = ["star_gd", "star_nesterov", "star_qgd"]


def _float_bits(X):
    return jnp.asarray(X.dtype.itemsize * 8 * X.shape[1], X.dtype)


def _gd_eta(name, hyper, problem, dtype):
    if hyper["eta"] is not None:
        return _cast(hyper["eta"], dtype)
    L, mu = resolve_constants(name, hyper, problem)
    return _cast(2.0 / (L + mu), dtype)


def _check_eta_or_constants(name, eta, L, mu):
    """L and mu only set the default step 2 / (L + mu): refuse them beside an explicit eta (they would be ignored)."""
    if eta is not None and (L is not None or mu is not None):
        raise ValueError(f"{name}: L and mu only set the default step size eta = 2 / (L + mu); with eta={eta!r} given "
                         "they would be ignored. Pass eta, or L and mu, not both.")


def _gd_check(name):
    def check(algo, problem, topology):
        if algo.hyper["eta"] is None:
            resolve_constants(name, algo.hyper, problem)
    return check


def _mean_grad(ctx, Y):
    return jnp.mean(ctx.problem.full_grads(Y), axis=0)


# ---- full-precision GD -------------------------------------------------------------------------------------------------
def _gd_step(algo, state, key, ctx):
    dtype = state.x.dtype
    eta = _gd_eta("star_gd", algo.hyper, ctx.problem, dtype)
    g = _mean_grad(ctx, state.x)
    x = state.x - eta * g[None, :]
    bits = _float_bits(state.x)
    new = state._replace(x=x, y=x, v=g, up_bits=ctx.pricing.n * bits, down_bits=bits)
    return new, star_cost(key, ctx, ctx.pricing.n * bits, bits, _full_batch(ctx))


def star_gd(eta=None, L=None, mu=None):
    """Full-precision gradient descent on the star: x_{k+1} = x_k - eta mean_i grad f_i(x_k) (Lemma 7.2: rate 1 - eta mu).

    Args:
      eta: step size (traced); default 2 / (L + mu) from the given or the problem's L and mu.
      L, mu: used only for the default step size; refused together with ``eta``.
    """
    _check_eta_or_constants("star_gd", eta, L, mu)
    hyper = {"eta": _optional("star_gd", "eta", eta), "L": _optional("star_gd", "L", L),
             "mu": _optional("star_gd", "mu", mu)}
    if L is not None and mu is not None:
        check_mu_L("star_gd", hyper["mu"], hyper["L"])
    return _algorithm(hyper, "star_gd", _gd_step, _gd_check("star_gd"))


# ---- Nesterov ----------------------------------------------------------------------------------------------------------
def _nesterov_step(algo, state, key, ctx):
    dtype = state.x.dtype
    L, mu = resolve_constants("star_nesterov", algo.hyper, ctx.problem)
    eta, tau, _ = (_cast(v, dtype) for v in aiade_rates(_cast(L, dtype), _cast(mu, dtype)))
    g = _mean_grad(ctx, state.y)
    x = state.y - eta * g[None, :]
    y = x + tau * (x - state.x)
    bits = _float_bits(state.x)
    new = state._replace(x=x, y=y, v=g, up_bits=ctx.pricing.n * bits, down_bits=bits)
    return new, star_cost(key, ctx, ctx.pricing.n * bits, bits, _full_batch(ctx))


def _nesterov_check(algo, problem, topology):
    resolve_constants("star_nesterov", algo.hyper, problem)


def star_nesterov(L=None, mu=None):
    """Nesterov's accelerated GD on the star (constant momentum, as AIADE without quantization; Ye et al. Lemma 8.1):
    x_{k+1} = y_k - grad f(y_k) / L, y_{k+1} = x_{k+1} + tau (x_{k+1} - x_k), tau = (sqrt L - sqrt mu) / (sqrt L + sqrt mu).

    Args:
      L, mu: smoothness and strong convexity (traced); default: the problem's.
    """
    hyper = {"L": _optional("star_nesterov", "L", L), "mu": _optional("star_nesterov", "mu", mu)}
    if L is not None and mu is not None:
        check_mu_L("star_nesterov", hyper["mu"], hyper["L"])
    return _algorithm(hyper, "star_nesterov", _nesterov_step, _nesterov_check)


# ---- quantized GD with a constant error ---------------------------------------------------------------------------------
def _qgd_step(algo, state, key, ctx):
    dtype = state.x.dtype
    eta = _gd_eta("star_qgd", algo.hyper, ctx.problem, dtype)
    e = _cast(algo.hyper["e"], dtype)
    G = ctx.problem.full_grads(state.x)
    D = jax.vmap(encode, (0, None))(G, e)
    mean = jnp.mean(D, axis=0)
    v = encode(mean, e)
    x = state.x - eta * v[None, :]
    up = jnp.sum(jax.vmap(bits_for, (0, None))(G, e))
    down = bits_for(mean, e)
    new = state._replace(x=x, y=x, v=v, up_bits=up.astype(dtype), down_bits=down.astype(dtype))
    return new, star_cost(key, ctx, up, down, _full_batch(ctx))


def star_qgd(e=0.01, eta=None, L=None, mu=None):
    """Quantized GD with a constant-error quantizer (Ye et al. 2020, Sec. 3's "trivial algorithm"):

        x_{k+1} = x_k - eta Q(mean_i Q(grad f_i(x_k), e), e),   ||Q(v, e) - v|| <= e.

    The gradient error stays of order e, so ``||x_k - x*||`` stalls at a floor of order ``eta e / (1 - c)`` instead
    of converging linearly to 0.

    Args:
      e: the constant error radius > 0 (traced).
      eta: step size (traced); default 2 / (L + mu).
      L, mu: used only for the default step size; refused together with ``eta``.
    """
    _check_eta_or_constants("star_qgd", eta, L, mu)
    hyper = {"e": as_float("star_qgd", "e", e, 0), "eta": _optional("star_qgd", "eta", eta),
             "L": _optional("star_qgd", "L", L), "mu": _optional("star_qgd", "mu", mu)}
    if L is not None and mu is not None:
        check_mu_L("star_qgd", hyper["mu"], hyper["L"])
    return _algorithm(hyper, "star_qgd", _qgd_step, _gd_check("star_qgd"))
