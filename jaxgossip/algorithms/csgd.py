"""CSGD: centralized SGD with lossy compression of every message, no error compensation (survey Sec. 3.1.2).

Two forms of the aggregated gradient (Liu & Zhang, *Distributed Learning Systems with First-order Methods*):

* parameter server (eq. 3.2):  g = Q( (1/N) sum_n Q(g_n) ), both directions compressed. The survey writes it for the
  multi-server parameter server (Sec. 1.3.4, 3.1.2): the vector is cut into N partitions, worker k is the server of
  partition k, and the compressor is applied per partition (``servers="multi"``, the default; it costs
  2 (N - 1) alpha + 2 (N - 1) / N t_transfer, the ring AllReduce's price). ``servers="single"`` is one server
  holding the whole vector, 2 N (alpha + B beta);
* ring AllReduce (eq. 3.3):    the gradient is cut into N chunks and chunk k travels the ring from worker k, every hop
  adding the local chunk and compressing again, Q(...Q(Q(Q(g_k) + g_{k+1}) + g_{k+2})... + g_{k-1}), then divided by N.

Then x_{t+1} = x_t - gamma g. All workers hold the same model. Without error compensation a biased compressor (sign,
top-k) makes g a biased gradient estimate, so CSGD stalls or ends at a worse point (survey Sec. 3.2; slides,
"Naive Compressed C-SGD").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgossip._eager import compiled_when_eager
from jaxgossip.algorithms._base import Algorithm, hyper_at, local_direction, make_algorithm
from jaxgossip.algorithms._base import error_feedback_hint
from jaxgossip.algorithms.dpsgd import LR, SGDState, _init
from jaxgossip.compressors._base import Compressor, compress_rows, worker_keys

__all__ = ["csgd", "FORMS", "SERVERS", "local_directions", "ring_chunks", "ring_compressed_sum", "check_compressor",
           "partition_sizes", "compress_partitions", "partition_message_bits"]

FORMS = ("parameter_server", "allreduce")
SERVERS = ("multi", "single")


def check_compressor(name: str, compressor) -> Compressor:
    if not isinstance(compressor, Compressor):
        raise ValueError(f"{name}: compressor must be a jg.compressors.Compressor (e.g. jg.compressors.quantize(bits=4) "
                         f"or jg.compressors.identity()), got {type(compressor).__name__}." + error_feedback_hint(compressor))
    return compressor


def local_directions(algo, state, key, ctx):
    """(n, d) local directions U at unit step size (the stochastic gradients for plain SGD) and the optimizer state.

    Gradients use ``fold_in(key, 0)``; compressors use ``fold_in(key, 1)`` (workers) and ``fold_in(key, 2)`` (server).
    """
    G, _ = ctx.problem.stochastic_grads(jax.random.fold_in(key, 0), state.x)
    return local_direction(algo.optimizer, G, state.opt, state.x)


# ---- parameter-server form (eq. 3.2), one server ---------------------------------------------------------------------
def _step_ps(algo, state, key, ctx):
    comp = algo.hyper["compressor"]
    U, opt = local_directions(algo, state, key, ctx)
    up = jnp.mean(compress_rows(comp, jax.random.fold_in(key, 1), U), axis=0)
    g = comp.compress(jax.random.fold_in(key, 2), up)
    d = state.x.shape[1]
    cost = ctx.pricing.parameter_server(key, comp.bits(d), comp.bits(d), ctx.problem.batch_size)
    return SGDState(state.x - hyper_at(algo, "lr", ctx.t) * g[None, :], opt), cost


# ---- parameter-server form (eq. 3.2), multi-server: worker k serves partition k --------------------------------------
def partition_sizes(d: int, n: int) -> tuple[int, ...]:
    """The lengths of the n partitions of a d-vector, as even as possible (``numpy.array_split``): the first d mod n
    hold ceil(d / n) coordinates, the others floor(d / n) (empty when d < n)."""
    q, r = divmod(d, n)
    return tuple(q + 1 if k < r else q for k in range(n))


def compress_partitions(comp: Compressor, key, x, n: int):
    """Cut a d-vector into n partitions (:func:`partition_sizes`) and compress each separately, partition k with key
    ``fold_in(key, k)``, at its true length (Liu & Zhang, Sec. 3.1.2: the multi-server parameter server applies the
    compressor per partition). Partitions of equal length are compressed by one vmap: no Python loop over them.

    Args:
      comp: the compressor Q.
      key: this vector's key.
      x: (d,) the vector.
      n: number of partitions (servers), static.

    Returns:
      (d,) the decoded partitions, concatenated.
    """
    return _compress_partitions(comp, key, x, n)


@compiled_when_eager(static_argnames=("n",))
def _compress_partitions(comp: Compressor, key, x, n: int):
    d = x.shape[0]
    q, r = divmod(d, n)
    head = r * (q + 1)
    parts = []
    if r:
        keys = jax.vmap(lambda k: jax.random.fold_in(key, k))(jnp.arange(r))
        parts.append(jax.vmap(comp.compress)(keys, x[:head].reshape(r, q + 1)).reshape(-1))
    if q:
        keys = jax.vmap(lambda k: jax.random.fold_in(key, k))(jnp.arange(r, n))
        parts.append(jax.vmap(comp.compress)(keys, x[head:].reshape(n - r, q)).reshape(-1))
    return jnp.concatenate(parts) if len(parts) > 1 else parts[0]


def partition_message_bits(comp: Compressor, d: int, n: int):
    """Bits of one d-vector sent as n separately compressed partitions (each counted at its true length; empty
    partitions send nothing)."""
    q, r = divmod(d, n)
    bits = 0
    if r:
        bits = bits + r * comp.bits(q + 1)
    if q:
        bits = bits + (n - r) * comp.bits(q)
    return bits


def _step_ps_multi(algo, state, key, ctx):
    """Each worker i sends Q(g_i[partition k]) to worker k (its own slice included, as eq. 3.2 is written), worker k
    averages them and sends Q(mean) back to everyone. Keys: worker i's partition k uses
    ``fold_in(fold_in(fold_in(key, 1), i), k)``, the server of partition k ``fold_in(fold_in(key, 2), k)``."""
    comp = algo.hyper["compressor"]
    U, opt = local_directions(algo, state, key, ctx)
    n, d = state.x.shape
    up = jax.vmap(lambda k, u: _compress_partitions(comp, k, u, n))(worker_keys(jax.random.fold_in(key, 1), n), U)
    g = _compress_partitions(comp, jax.random.fold_in(key, 2), jnp.mean(up, axis=0), n)
    # n - 1 partitions up and n - 1 down per worker: the ring AllReduce's 2 (n - 1) alpha + 2 (n - 1) / n B beta
    cost = ctx.pricing.allreduce(key, partition_message_bits(comp, d, n), ctx.problem.batch_size)
    return SGDState(state.x - hyper_at(algo, "lr", ctx.t) * g[None, :], opt), cost


# ---- ring-AllReduce form (eq. 3.3) -----------------------------------------------------------------------------------
def ring_chunks(d: int, n: int) -> tuple[int, tuple[int, ...]]:
    """Chunk length c = ceil(d / n) and the true length of each of the n chunks (the last ones may be short or empty)."""
    c = -(-d // n)
    return c, tuple(max(0, min(c, d - k * c)) for k in range(n))


def ring_compressed_sum(comp: Compressor, key, U):
    """The nested ring sum of eq. 3.3 for all n chunks at once: a ``lax.scan`` over the n hops.

    Chunk k starts at worker k; at hop h it sits on worker (k + h) mod n, which adds its own part of chunk k and
    compresses: A_k <- Q(A_k + U[(k + h) mod n, chunk k]), with A_k = 0 before hop 0. After n hops every chunk holds
    Q(...Q(Q(u_k) + u_{k+1})... + u_{k-1}) (n compressions), which phase 2 of the ring relays unchanged. Chunk k at hop h
    is compressed with key ``fold_in(fold_in(key, h), k)``. The parameter vector is zero-padded to n * ceil(d / n).

    Args:
      comp: the compressor Q.
      key: the step's worker-compression key.
      U: (n, d) local vectors.

    Returns:
      (d,) the compressed sum over workers (not yet divided by n).
    """
    n, d = U.shape
    c, _ = ring_chunks(d, n)
    parts = jnp.pad(U, ((0, 0), (0, n * c - d))).reshape(n, n, c)  # [worker, chunk, :]
    chunk = jnp.arange(n)

    def hop(acc, h):
        acc = compress_rows(comp, jax.random.fold_in(key, h), acc + parts[(chunk + h) % n, chunk])
        return acc, None

    acc, _ = jax.lax.scan(hop, jnp.zeros((n, c), U.dtype), jnp.arange(n))
    return acc.reshape(-1)[:d]


def ring_message_bits(comp: Compressor, d: int, n: int):
    """Bits of the n compressed chunks of one vector (each chunk counted at its true length)."""
    _, sizes = ring_chunks(d, n)
    return sum(comp.bits(s) for s in sizes if s > 0)


def _step_allreduce(algo, state, key, ctx):
    comp = algo.hyper["compressor"]
    U, opt = local_directions(algo, state, key, ctx)
    n, d = state.x.shape
    g = ring_compressed_sum(comp, jax.random.fold_in(key, 1), U) / n
    cost = ctx.pricing.allreduce(key, ring_message_bits(comp, d, n), ctx.problem.batch_size)
    return SGDState(state.x - hyper_at(algo, "lr", ctx.t) * g[None, :], opt), cost


def csgd(lr=0.1, compressor: Compressor | None = None, form: str = "parameter_server", optimizer=None,
         servers: str = "multi") -> Algorithm:
    """CSGD: compressed centralized SGD without error compensation (Liu & Zhang, Sec. 3.1.2, eq. 3.2 and 3.3).

    ``form="parameter_server"`` (eq. 3.2), g = Q(mean_i Q(g_i)):

    * ``servers="multi"`` (default; the survey's setting, Sec. 1.3.4 and 3.1.2): the vector is cut into n partitions
      (:func:`partition_sizes`), worker k is the server of partition k; each worker compresses each partition of its
      g_i separately and sends it to its server, which averages and sends back Q of the average, again per partition
      (:func:`compress_partitions`). Priced as 2 (n - 1) alpha + 2 (n - 1) / n t_transfer, the ring AllReduce's
      formula (``Pricing.allreduce``), with t_transfer the time of the n compressed partitions of one vector
      (:func:`partition_message_bits`: bits summed over the partitions, each at its true length).
    * ``servers="single"``: one server holds the whole vector; each worker sends Q(g_i), the server sends back
      Q(mean_i Q(g_i)); priced as one parameter server, 2 n (alpha + B beta).

    ``form="allreduce"`` (eq. 3.3): ring AllReduce where chunk k travels the ring from worker k and is compressed again
    at every hop (n compressions in all); priced as a ring AllReduce whose vector is the n compressed chunks.
    In all forms x_{t+1} = x_t - lr * g.

    With the identity compressor all equal C-PSGD (:func:`jaxgossip.algorithms.cpsgd`). Convergence needs an unbiased
    compressor (survey Assumption 3); biased ones (sign, top-k) make it stall.

    Args:
      lr: step size gamma (traced).
      compressor: the compressor Q (a :class:`jaxgossip.compressors.Compressor`; its parameters are traced).
      form: ``"parameter_server"`` or ``"allreduce"`` (static).
      optimizer: optional optax transformation applied by each worker to its gradient before compression (the
        compressed quantity is then the local direction); None for plain SGD.
      servers: for ``form="parameter_server"``: ``"multi"`` (default) or ``"single"`` (static).
    """
    if form not in FORMS:
        raise ValueError(f"csgd: form must be one of {FORMS}, got {form!r}.")
    if servers not in SERVERS:
        raise ValueError(f"csgd: servers must be one of {SERVERS}, got {servers!r}.")
    check_compressor("csgd", compressor)
    if form == "allreduce":
        step = _step_allreduce
    else:
        step = _step_ps_multi if servers == "multi" else _step_ps
    return make_algorithm("csgd", _init, step, {"lr": lr, "compressor": compressor}, specs=(LR,), kind="centralized",
                          optimizer=optimizer)
