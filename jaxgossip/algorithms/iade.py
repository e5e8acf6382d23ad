"""Increasing accuracy and double encoding on a star network: IADE, AIADE, IADE-SGD (Ye, Xiao, Sun 2020, Alg. 1-3).

N workers and one server. Worker i keeps ``s^i`` (the server's running estimate of its gradient), the server keeps ``s``
(the average of those) and everyone keeps ``v`` (the broadcast estimate of the full gradient). Every iteration k:

    d^i_k = Q(g^i_k - s^i_{k-1}, e_k);  s^i_k = s^i_{k-1} + d^i_k          (worker i sends d^i_k)
    s_k = mean_i d^i_k + s_{k-1};       u_k = Q(s_k - v_{k-1}, e_k)          (the server broadcasts u_k)
    v_k = v_{k-1} + u_k                                                      (everyone)

so only gradient *differences* are encoded, twice (worker -> server, server -> workers), with a radius e_k that shrinks
geometrically: the encoded vectors shrink at the same rate, so every message costs a bounded number of bits
(Thm. 3.1, 4.1) while ``||v_k - grad f|| <= 2 e_k`` (Appendix 7.1). The step is then GD (IADE), Nesterov (AIADE) or
SGD under the weak growth condition (IADE-SGD). Q is :func:`jaxgossip.compressors.bounded.encode` (deterministic) or
:func:`~jaxgossip.compressors.bounded.encode_random` (unbiased, IADE-SGD); the bits of each message are Lemma 2.1's
count for the vector actually encoded (:func:`~jaxgossip.compressors.bounded.bits_for`), priced as a parameter server.

L and mu come from the factory's arguments, else from the problem (``problem.L`` / ``problem.mu``, known for
``jg.problems.quadratic`` and ``logistic_regression``). All arithmetic follows the models' dtype (float64 runs reach
``||x - x*|| = 1e-8``). All workers hold the same model, so ``state.x`` has n equal rows.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgossip.algorithms._base import INERT, Algorithm, as_float
from jaxgossip.compressors.bounded import bits_for, encode, encode_random
from jaxgossip.compressors._base import worker_keys

__all__ = ["iade", "aiade", "iade_sgd", "StarState", "resolve_constants", "double_encode", "star_cost"]


class StarState(NamedTuple):
    """State of a star algorithm. ``y`` is AIADE's extrapolated point (equal to ``x`` for the others)."""

    x: jax.Array  # (n, d) models (equal rows)
    y: jax.Array  # (n, d) where the gradients are taken
    s_w: jax.Array  # (n, d) worker memories s^i_{k-1}
    s: jax.Array  # (d,) server memory s_{k-1}
    v: jax.Array  # (d,) shared gradient estimate v_{k-1}
    up_bits: jax.Array  # bits sent to the server at the last iteration (all workers)
    down_bits: jax.Array  # bits of the last broadcast (one message)


def _init(algo, X0, ctx):
    zeros = jnp.zeros_like(X0[0])
    nothing = jnp.zeros((), X0.dtype)
    return StarState(X0, X0, jnp.zeros_like(X0), zeros, zeros, nothing, nothing)


# ---- constants ---------------------------------------------------------------------------------------------------------
def _optional(name, arg, value, low=0.0, high=None, low_open=True, high_open=False):
    return None if value is None else as_float(name, arg, value, low, high, low_open, high_open)


def _concrete(v):
    try:
        return float(v)
    except (TypeError, jax.errors.ConcretizationTypeError):
        return None


def resolve_constants(name, hyper, problem):
    """(L, mu) from the hyperparameters, else from the problem; ValueError when neither knows them."""
    L = hyper["L"] if hyper.get("L") is not None else getattr(problem, "L", None)
    mu = hyper["mu"] if hyper.get("mu") is not None else getattr(problem, "mu", None)
    if L is None or mu is None:
        raise ValueError(f"{name}: the problem does not know its smoothness L and strong convexity mu; "
                         "pass L=... and mu=... to the factory (0 < mu < L).")
    check_mu_L(name, mu, L)
    return L, mu


def check_mu_L(name, mu, L):
    """Raise unless 0 < mu < L (when both are concrete numbers)."""
    m, l = _concrete(mu), _concrete(L)
    if m is not None and l is not None and not (0 < m < l):
        raise ValueError(f"{name}: need 0 < mu < L (strongly convex, condition number > 1), got mu={m:g}, L={l:g}.")


def _check_rate(name, arg, c_prime, c):
    cp, cc = _concrete(c_prime), _concrete(c)
    if cp is not None and cc is not None and not (cc < cp < 1):
        raise ValueError(f"{name}: {arg} must lie in (c, 1) = ({cc:.6g}, 1) for these L and mu, got {cp:g}.")


def _cast(value, dtype):
    return jnp.asarray(value, dtype)


def _power(base, k, dtype):
    """base^(k+1) in dtype, for the traced iteration counter k."""
    return jnp.exp((k + 1).astype(dtype) * jnp.log(_cast(base, dtype)))


# ---- the double encoding (shared by the three algorithms) --------------------------------------------------------------
def double_encode(state, G, err, key=None):
    """One round of Alg. 1's double encoding of gradient differences.

    Args:
      state: the :class:`StarState` (uses s_w, s, v).
      G: (n, d) local gradients g^i_k.
      err: the radius e_k (2-norm error of every Q).
      key: None for the deterministic Q; a key for the unbiased Q (workers ``fold_in(key, i)``, the server
        ``fold_in(key, n)``).

    Returns:
      ``(s_w, s, v, up_bits, down_bits)``: the new memories, the total upload bits and the bits of the broadcast.
    """
    n = G.shape[0]
    delta = G - state.s_w
    if key is None:
        D = jax.vmap(encode, (0, None))(delta, err)
        bits_err = err
    else:
        D = jax.vmap(encode_random, (0, 0, None))(worker_keys(key, n), delta, err)
        bits_err = err / 2  # the unbiased grid is that of the deterministic encoder at radius e / 2
    s_w = state.s_w + D
    s = jnp.mean(D, axis=0) + state.s
    diff = s - state.v
    u = encode(diff, err) if key is None else encode_random(jax.random.fold_in(key, n), diff, err)
    up = jnp.sum(jax.vmap(bits_for, (0, None))(delta, bits_err))
    down = bits_for(diff, bits_err)
    return s_w, s, state.v + u, up, down


def star_cost(key, ctx, up_total, down, batch):
    """Parameter-server pricing of n uploads (``up_total`` bits together) and n copies of a ``down``-bit broadcast."""
    n = ctx.pricing.n
    return ctx.pricing.parameter_server(key, up_total / n, down, batch, up_total=up_total)


def _full_batch(ctx):
    return ctx.problem.data_x.shape[1]


def _algorithm(hyper, name, step, check):
    extra = {"check_fn": check} if "check_fn" in Algorithm.__dataclass_fields__ else {}
    return Algorithm(hyper, name, _init, step, "star", None, **extra)


# ---- IADE (Alg. 1) -----------------------------------------------------------------------------------------------------
def _iade_rates(hyper, problem, dtype=None):
    L, mu = resolve_constants("iade", hyper, problem)
    eta = hyper["eta"] if hyper["eta"] is not None else 2.0 / (L + mu)
    c = 1.0 - eta * mu
    c_prime = hyper["c_prime"] if hyper["c_prime"] is not None else (1.0 + c) / 2.0
    if dtype is not None:
        eta, c, c_prime = _cast(eta, dtype), _cast(c, dtype), _cast(c_prime, dtype)
    return eta, c, c_prime


def _iade_step(algo, state, key, ctx):
    dtype = state.x.dtype
    eta, _, c_prime = _iade_rates(algo.hyper, ctx.problem, dtype)
    err = _cast(algo.hyper["s"], dtype) * _power(c_prime, ctx.t, dtype) / 2
    s_w, s, v, up, down = double_encode(state, ctx.problem.full_grads(state.x), err)
    x = state.x - eta * v[None, :]
    new = StarState(x, x, s_w, s, v, up.astype(dtype), down.astype(dtype))
    return new, star_cost(key, ctx, up, down, _full_batch(ctx))


def _iade_inert(hyper):
    """With ``eta`` given, L enters only the check of eta's range; with ``c_prime`` given too, so does mu."""
    out = {}
    if hyper["eta"] is not None:
        out["L"] = "with eta given, L only checks eta <= 2 / (L + mu); the steps use eta"
        if hyper["c_prime"] is not None:
            out["mu"] = "with eta and c_prime given, mu only checks c_prime > 1 - eta mu; the steps use eta and c_prime"
    return out


INERT["iade"] = _iade_inert


def _iade_check(algo, problem, topology):
    eta, c, c_prime = _iade_rates(algo.hyper, problem)
    L, mu = resolve_constants("iade", algo.hyper, problem)
    e = _concrete(eta)
    if e is not None and not (0 < e <= 2.0 / (float(L) + float(mu)) * (1 + 1e-6)):
        raise ValueError(f"iade: eta must lie in (0, 2 / (L + mu)] = (0, {2 / (float(L) + float(mu)):.6g}], got {e:g}.")
    _check_rate("iade", "c_prime", c_prime, c)


def iade(s=1.0, c_prime=None, eta=None, L=None, mu=None) -> Algorithm:
    """IADE (Ye et al. 2020, Alg. 1): GD with doubly encoded gradient differences at radius e_k = s c'^(k+1) / 2.

        x_{k+1} = x_k - eta v_k,   ||v_k - grad f(x_k)|| <= s c'^(k+1),   c = 1 - eta mu,   c < c' < 1.

    Thm. 3.1: ``||x_k - x*|| <= c'^k (max(0, ||x_0 - x*|| - c s / (c' - c)) + c' s / (c' - c))`` with O(N d) bits per
    iteration.

    Args:
      s: the quantization level s > 0 (scale of the error radii; traced).
      c_prime: the contraction c' in (c, 1) of the radii (traced); default (1 + c) / 2.
      eta: step size in (0, 2 / (L + mu)] (traced); default 2 / (L + mu). Alg. 1 writes the open interval; its
        Lemma 7.2 allows the end point, which gives the best c = (L - mu) / (L + mu).
      L, mu: smoothness and strong convexity (traced); default: the problem's ``L`` and ``mu``. With ``eta`` given, L
        only checks eta's range (and with ``c_prime`` given too, so does mu): ``jg.sweep`` refuses to sweep them then.
    """
    hyper = {"s": as_float("iade", "s", s, 0), "c_prime": _optional("iade", "c_prime", c_prime, 0, 1, True, True),
             "eta": _optional("iade", "eta", eta), "L": _optional("iade", "L", L), "mu": _optional("iade", "mu", mu)}
    if L is not None and mu is not None:
        _iade_check(Algorithm(hyper, "iade", _init, _iade_step, "star"), None, None)
    return _algorithm(hyper, "iade", _iade_step, _iade_check)


# ---- AIADE (Alg. 2) ----------------------------------------------------------------------------------------------------
def aiade_rates(L, mu):
    """AIADE's (eta, tau, c): eta = 1 / L, tau = (sqrt L - sqrt mu) / (sqrt L + sqrt mu), c = sqrt(1 - sqrt(mu / L))."""
    sL, smu = jnp.sqrt(L), jnp.sqrt(mu)
    return 1.0 / L, (sL - smu) / (sL + smu), jnp.sqrt(1.0 - smu / sL)


def _aiade_step(algo, state, key, ctx):
    dtype = state.x.dtype
    L, mu = resolve_constants("aiade", algo.hyper, ctx.problem)
    eta, tau, c = (_cast(v, dtype) for v in aiade_rates(_cast(L, dtype), _cast(mu, dtype)))
    k = ctx.t
    err = _cast(algo.hyper["e"], dtype) * _power(c, k, dtype) / (2 * (k + 1).astype(dtype))
    s_w, s, v, up, down = double_encode(state, ctx.problem.full_grads(state.y), err)
    x = state.y - eta * v[None, :]
    y = x + tau * (x - state.x)
    new = StarState(x, y, s_w, s, v, up.astype(dtype), down.astype(dtype))
    return new, star_cost(key, ctx, up, down, _full_batch(ctx))


def _aiade_check(algo, problem, topology):
    resolve_constants("aiade", algo.hyper, problem)


def aiade(e=1.0, L=None, mu=None) -> Algorithm:
    """AIADE (Ye et al. 2020, Alg. 2): Nesterov's method with doubly encoded gradient differences.

        x_{k+1} = y_k - v_k / L,   y_{k+1} = x_{k+1} + tau (x_{k+1} - x_k),   radius e_k = e c^(k+1) / (2k + 2),

    with tau = (sqrt L - sqrt mu) / (sqrt L + sqrt mu) and c = sqrt(1 - sqrt(mu / L)). Thm. 4.1:
    ``||x_k - x*|| <= c^k G(k)`` with G(k) = O(ln k), and O(N d ln(k ln k)) bits per iteration.

    Args:
      e: the error scale epsilon > 0 of the radii (traced).
      L, mu: smoothness and strong convexity (traced); default: the problem's.
    """
    hyper = {"e": as_float("aiade", "e", e, 0), "L": _optional("aiade", "L", L), "mu": _optional("aiade", "mu", mu)}
    if L is not None and mu is not None:
        check_mu_L("aiade", hyper["mu"], hyper["L"])
    return _algorithm(hyper, "aiade", _aiade_step, _aiade_check)


# ---- IADE-SGD (Alg. 3) -------------------------------------------------------------------------------------------------
def _sgd_rates(hyper, problem, dtype=None):
    L, mu = resolve_constants("iade_sgd", hyper, problem)
    rhoL = hyper["rho"] * L
    eta = 1.0 / rhoL
    c = 1.0 - mu / rhoL
    c_prime = hyper["c_prime"] if hyper["c_prime"] is not None else (1.0 + c) / 2.0
    if dtype is not None:
        rhoL, eta, c, c_prime = (_cast(v, dtype) for v in (rhoL, eta, c, c_prime))
    return rhoL, eta, c, c_prime


def _iade_sgd_step(algo, state, key, ctx):
    dtype = state.x.dtype
    rhoL, eta, _, c_prime = _sgd_rates(algo.hyper, ctx.problem, dtype)
    G, _ = ctx.problem.stochastic_grads(jax.random.fold_in(key, 0), state.x)
    # squared error of each Q at most rho^2 L^2 s c'^(k+1) / 2 (Alg. 3), i.e. a 2-norm radius of its square root
    err = rhoL * jnp.sqrt(_cast(algo.hyper["s"], dtype) * _power(c_prime, ctx.t, dtype) / 2)
    s_w, s, v, up, down = double_encode(state, G.astype(dtype), err, jax.random.fold_in(key, 1))
    x = state.x - eta * v[None, :]
    new = StarState(x, x, s_w, s, v, up.astype(dtype), down.astype(dtype))
    return new, star_cost(key, ctx, up, down, ctx.problem.batch_size)


def _iade_sgd_inert(hyper):
    """With ``c_prime`` given, mu enters only the check c < c_prime (the step uses rho L and c_prime)."""
    if hyper["c_prime"] is not None:
        return {"mu": "with c_prime given, mu only checks c_prime > 1 - mu / (rho L); the steps use rho, L and c_prime"}
    return {}


INERT["iade_sgd"] = _iade_sgd_inert


def _iade_sgd_check(algo, problem, topology):
    _, _, c, c_prime = _sgd_rates(algo.hyper, problem)
    _check_rate("iade_sgd", "c_prime", c_prime, c)


def iade_sgd(rho=1.0, s=1.0, c_prime=None, L=None, mu=None) -> Algorithm:
    """IADE-SGD (Ye et al. 2020, Alg. 3): stochastic gradients, unbiased doubly encoded differences.

        x_{k+1} = x_k - v_k / (rho L),   c = 1 - mu / (rho L),   c < c' < 1,

    where rho is the weak growth constant (Assumption 5.1: mean_i E||grad_i||^2 <= 2 rho L (f(x) - f*)) and each Q is
    unbiased with squared error at most rho^2 L^2 s c'^(k+1) / 2. Thm. 5.2: ``E||x_k - x*||^2 <= c'^k (...)``: linear
    convergence under interpolation (every sample's loss minimized at x*), O(N d) bits per iteration in expectation.

    Args:
      rho: the weak growth constant, >= 1 (traced). rho = 1 is the exact-gradient case; for minibatch gradients
        of least squares that interpolate, rho L = max sample ||a||^2 is safe.
      s: the quantization level s > 0 (traced).
      c_prime: the contraction c' in (c, 1) (traced); default (1 + c) / 2.
      L, mu: smoothness and strong convexity (traced); default: the problem's. With ``c_prime`` given, mu only checks
        its range: ``jg.sweep`` refuses to sweep mu then.
    """
    hyper = {"rho": as_float("iade_sgd", "rho", rho, 1, low_open=False), "s": as_float("iade_sgd", "s", s, 0),
             "c_prime": _optional("iade_sgd", "c_prime", c_prime, 0, 1, True, True),
             "L": _optional("iade_sgd", "L", L), "mu": _optional("iade_sgd", "mu", mu)}
    if L is not None and mu is not None:
        _iade_sgd_check(Algorithm(hyper, "iade_sgd", _init, _iade_sgd_step, "star"), None, None)
    return _algorithm(hyper, "iade_sgd", _iade_sgd_step, _iade_sgd_check)
