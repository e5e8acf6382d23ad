"""Algorithms: one factory each, returning an :class:`Algorithm` (``jg.algorithms``); ``get(name, **kw)`` by name.

Writing your own algorithm
==========================
An algorithm is two pure functions plus its hyperparameters. Written with the names below (all in ``__all__``), it
gets what the built-in ones get: pricing, ``jg.sweep``, ``jg.compare``, checkpoints, worker sharding over devices and
the command line (after :func:`register`). README section "Your own algorithm" has a complete example.

The rules
  * ``init(algo, X0, ctx) -> state``: ``X0`` is the (n, d) stack of initial models (row i is worker i). The state is a
    ``typing.NamedTuple`` with a field ``x``, the (n, d) models the metrics read; its other fields are (n, ...) arrays
    or pytrees of them (per-worker memories, estimates, optimizer states).
  * ``step(algo, state, key, ctx) -> (state, Cost)``: one iteration of all n workers at once, in array operations
    (no Python loop over workers or steps). It returns the new state (same structure, shapes and dtypes) and a
    :class:`Cost`: the bits all workers sent and the simulated seconds the step took (``ctx.pricing`` prices them).
    Both are module-level functions, so algorithms with other hyperparameter values share one compiled program.
  * Hyperparameters live in ``algo.hyper`` as float32 arrays, traced (``jg.sweep`` vmaps over them): use them in
    ``jnp`` arithmetic only, never in a Python ``if``, ``int()`` or a shape. Read the learning rate through
    :func:`hyper_at` (``hyper_at(algo, "lr", ctx.t)``) so that it may be a schedule. A static choice (an order, a
    pattern) picks the step function in the factory.
  * Declare each hyperparameter's range once with :func:`hyperparameter` and build the algorithm with
    :func:`make_algorithm`: values are checked before anything compiles, by ``replace_hyper`` and by ``jg.sweep``'s
    grid check too. :func:`register` makes the factory available to :func:`get`, ``jg.compare`` configs and the CLI
    (``jaxgossip run --import mymodule --algorithm my_method``, or ``imports = ["mymodule"]`` in a TOML file).

What a step reads (``ctx``, a :class:`Context`)
  * gradients: :func:`stochastic_gradients` ``(key, ctx, X)`` -> (n, d), each worker's stochastic gradient at its
    own model, with the built-in steps' key ``fold_in(key, 0)``; the full call ``ctx.problem.stochastic_grads(key,
    X)`` returns the pair ``(G, losses)``.
  * mixing with this step's graph (a time-varying or one-peer sequence gives the step's own): ``ctx.mixing(X)`` is
    ``W X``; ``ctx.mixing.minus_identity(X)`` is ``(W - I) X``; ``ctx.mixing.delta(X)`` is ``(W - I) X`` in
    difference form (exactly 0 on a consensus stack) and ``ctx.mixing.difference(X)`` ``W X`` in that form;
    ``ctx.mixing.diag`` the self weights ``W_ii``.
  * compression: :func:`compress_rows` ``(compressor, key, X)`` compresses row i with worker key ``fold_in(key, i)``;
    ``compressor.bits(d)`` is the size of one message (``jg.compressors``; a compressor in ``algo.hyper`` is a pytree
    whose parameters are traced too). A method that assumes a contraction (CHOCO-SGD, BEER) takes its compressor
    through :func:`contraction`, which rescales an unbiased one by ``1 / (1 + omega)`` and refuses others.
  * pricing (each returns a :class:`Cost`; ``batch`` is ``ctx.problem.batch_size`` for one minibatch per step):
    ``ctx.pricing.gossip(key, bits, batch)`` one gossip round (every worker sends one message of ``bits`` to each
    neighbour); :func:`gossip_rounds` ``(key, ctx, *bits)`` several rounds in one step;
    ``ctx.pricing.allreduce(key, bits, batch)`` a ring AllReduce; ``ctx.pricing.parameter_server(key, up_bits,
    down_bits, batch)`` (``up_total=``: the uploads' exact sum where they differ by worker, ``up_bits`` their mean); ``ctx.pricing.star(key, up_bits, down_bits, batch)`` per-worker upload sizes;
    :func:`peer_message` ``(key, ctx, bits)`` one message to one chosen peer. :data:`FLOAT_BITS` is 32.
  * ``ctx.t``: the 0-based step counter (traced).

The step's keys
  ``key`` is this step's key. The built-in steps draw gradients with ``fold_in(key, 0)``, compressors with
  ``fold_in(key, 1)`` (and 2, 3, ... for more), per-worker keys as ``fold_in(k, i)`` (:func:`worker_keys`), and
  ``ctx.pricing`` reads the compute speeds from ``key`` itself; :func:`split_key` splits a key.

A local optimizer
  ``algo.optimizer`` is None (plain SGD) or a :class:`LocalOptimizer` (an optax transformation, declared with
  :func:`updates` or :func:`direction`). :func:`init_optimizer` gives the per-worker optimizer state,
  :func:`local_direction` the direction U and the new state, and :func:`local_update` ``(algo, U, t)`` what a worker
  subtracts from its model (``lr(t) * U``, sign and convention handled).

Checking a new method
  Reduce it to a built-in one (no compression, momentum 0, ...) and compare the losses of ``jg.simulate``: the same
  operations in the same order give the same numbers bit for bit, a reordered sum to float rounding.
"""

from jaxgossip._registry import build
from jaxgossip.algorithms._base import (FLOAT_BITS, Algorithm, Context, Cost, Hyperparameter, LocalOptimizer,
                                        compress_rows, direction, hyper_at, hyperparameter, init_optimizer,
                                        local_direction, local_update, make_algorithm, peer_message, split_key,
                                        stochastic_gradients, updates, worker_keys)
from jaxgossip.algorithms._rounds import gossip_rounds
from jaxgossip.algorithms.dpsgd import cpsgd, dpsgd, naive_compressed
from jaxgossip.algorithms.iade import aiade, iade, iade_sgd
from jaxgossip.algorithms.star_baselines import star_gd, star_nesterov, star_qgd
from jaxgossip.algorithms.choco import choco_sgd, contraction
from jaxgossip.algorithms.dcd import dcd_psgd
from jaxgossip.algorithms.deepsqueeze import deepsqueeze
from jaxgossip.algorithms.ecd import ecd_psgd
from jaxgossip.algorithms.csgd import csgd
from jaxgossip.algorithms.ecsgd import doublesqueeze, ec_sgd
from jaxgossip.algorithms.traffic import slides_vectors, vectors_exchanged
from jaxgossip.algorithms.quantimed import q_dsgd, quantimed_dsgd
from jaxgossip.algorithms.asynchronous import asgd, async_dsgd
from jaxgossip.algorithms.tracking import gradient_tracking
from jaxgossip.algorithms.exact_diffusion import d2, exact_diffusion
from jaxgossip.algorithms.ef21 import ef21
from jaxgossip.algorithms.beer import beer
from jaxgossip.algorithms.pushsum import sgp
from jaxgossip.algorithms.powergossip import powergossip
from jaxgossip.algorithms.adpsgd import ad_psgd
from jaxgossip.algorithms.local_sgd import local_sgd

REGISTRY = {
    "iade": iade,
    "aiade": aiade,
    "iade_sgd": iade_sgd,
    "star_gd": star_gd,
    "star_nesterov": star_nesterov,
    "star_qgd": star_qgd,
    "async_dsgd": async_dsgd,
    "asgd": asgd,
    "csgd": csgd,
    "ec_sgd": ec_sgd,
    "doublesqueeze": doublesqueeze,
    "cpsgd": cpsgd,
    "dpsgd": dpsgd,
    "naive_compressed": naive_compressed,
    "dcd_psgd": dcd_psgd,
    "ecd_psgd": ecd_psgd,
    "choco_sgd": choco_sgd,
    "deepsqueeze": deepsqueeze,
    "q_dsgd": q_dsgd,
    "quantimed_dsgd": quantimed_dsgd,
    "gradient_tracking": gradient_tracking,
    "exact_diffusion": exact_diffusion,
    "d2": d2,
    "ef21": ef21,
    "beer": beer,
    "sgp": sgp,
    "powergossip": powergossip,
    "ad_psgd": ad_psgd,
    "local_sgd": local_sgd,
}


#: The names of the built-in algorithms (``REGISTRY`` also holds the ones added by :func:`register`).
BUILTINS = frozenset(REGISTRY)


def get(name: str, **kwargs) -> Algorithm:
    """Build an algorithm by name, e.g. ``get("dpsgd", lr=0.05)`` (a built-in one or one added by :func:`register`)."""
    return build("algorithm", REGISTRY, name, kwargs)


def register(name: str, factory=None, *, replace: bool = False):
    """Make a factory available by name: to :func:`get`, to ``jg.compare`` / ``jaxgossip compare`` configs and to
    ``jaxgossip run --algorithm NAME`` (with ``--import MODULE``, or ``imports = ["MODULE"]`` in a TOML file, naming
    the module that calls ``register``). ``Algorithm.replace_hyper`` then checks new values by calling the factory
    again, as for the built-in ones.

    Usable as a decorator: ``@jg.algorithms.register("my_method")`` above ``def my_method(lr=0.1, ...)``.

    Args:
      name: the name (an identifier); the algorithm the factory builds should carry the same name.
      factory: a function of keyword arguments returning an :class:`Algorithm` (None: return a decorator).
      replace: allow replacing a name already taken (a built-in one included). Without it, a name already taken by
        another factory (a built-in one, or one registered before) is a ValueError; registering the same factory
        again (a module imported twice) is allowed.

    Returns:
      The factory (so the decorator leaves the function as it is).
    """
    if factory is None:
        return lambda f: register(name, f, replace=replace)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"register: name must be an identifier string (e.g. 'my_method'), got {name!r}.")
    if not callable(factory) or isinstance(factory, Algorithm):
        raise ValueError(f"register {name!r}: factory must be a function returning a jg.algorithms.Algorithm "
                         f"(called with the config's keywords), got {type(factory).__name__}.")
    old = REGISTRY.get(name)
    if old is not None and old is not factory and not replace:
        what = "a built-in algorithm" if name in BUILTINS else "already registered"
        raise ValueError(f"register: {name!r} is {what}; pass replace=True to replace it, or choose another name.")
    REGISTRY[name] = factory
    return factory


def unregister(name: str) -> None:
    """Remove a name added by :func:`register` (a built-in one is restored to its own factory)."""
    if name in BUILTINS:
        REGISTRY[name] = _BUILTIN_FACTORIES[name]
        return
    if name not in REGISTRY:
        raise ValueError(f"unregister: {name!r} is not registered (registered: {sorted(set(REGISTRY) - BUILTINS)}).")
    del REGISTRY[name]


_BUILTIN_FACTORIES = dict(REGISTRY)

#: The toolkit of a step (see the module docstring).
TOOLKIT = ["Algorithm", "Context", "Cost", "FLOAT_BITS", "Hyperparameter", "LocalOptimizer", "compress_rows",
           "contraction", "direction", "gossip_rounds", "hyper_at", "hyperparameter", "init_optimizer", "local_direction",
           "local_update", "make_algorithm", "peer_message", "split_key", "stochastic_gradients", "updates",
           "worker_keys"]

__all__ = [*TOOLKIT, "get", "register", "unregister", "REGISTRY", "BUILTINS", *REGISTRY]
