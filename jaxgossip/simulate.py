"""The driver: a whole run is compiled ``lax.scan`` chunks; Python only loops over chunks (for the progress bar and
the callbacks, which see each chunk's evaluations when it returns).

Inside one compiled chunk an outer scan runs ``evals_per_chunk`` evaluation blocks, each an inner scan of
``eval_every`` steps followed by the metrics of the stack. Step t's key is ``fold_in(key(seed), t)`` and worker i's is
``fold_in(step key, i)``, so the numbers do not depend on how the worker axis is laid out over devices. A non-finite or
exploding loss freezes the state and marks the run diverged instead of raising.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgossip import faults as fault_lib
from jaxgossip import gossip
from jaxgossip._host import to_device
from jaxgossip._record import describe_callable, plain_json
from jaxgossip._threefry_cpu import run_jit
from jaxgossip.algorithms._base import Algorithm, Context
from jaxgossip.cost import ComputeModel, Network, Pricing
from jaxgossip.problems._base import METRICS, Problem, StateSlot
from jaxgossip.memory import check_fits
from jaxgossip.problems.networks import check_problem
from jaxgossip.result import Result
from jaxgossip.shard_gossip import replicate
from jaxgossip.topology import TimeVarying, Topology, complete, step_degrees

__all__ = ["simulate", "prepare", "Prepared", "TRACE_COUNT", "worker_sharding", "memory_estimate"]

#: How many times the chunk function has been traced (a test checks one compile per static configuration).
TRACE_COUNT = {"chunk": 0}


class Carry(NamedTuple):
    state: Any
    t: jax.Array  # int32 step counter
    stopped: jax.Array  # bool: diverged, state frozen
    loss0: jax.Array  # loss at step 0 (divergence reference)
    model: Any = None  # (n, ...) per-worker model state (BatchNorm statistics), None for stateless models
    faults: Any = None  # the fault Markov chains' states (jg.faults), None without faults


@dataclasses.dataclass
class Prepared:
    """Everything a run needs, validated and built (shared by simulate, sweep and checkpointing)."""

    problem: Problem
    algorithm: Algorithm
    mixing: gossip.Mixing
    pricing: Pricing
    period: int
    steps: int
    eval_every: int
    seed: int
    sharding: Any
    config: dict
    faults: Any = None  # jg.faults.FaultPlan, or None
    fault_params: Any = None  # the faults' traced parameters (jg.faults.params)


def _check_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"simulate: {name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def worker_sharding(n: int, shard):
    """A NamedSharding of the worker axis over all devices, or None (one device)."""
    devices = jax.devices()
    if shard is False or len(devices) == 1:
        return None
    if n % len(devices):
        if shard is True:
            raise ValueError(
                f"simulate: n={n} workers cannot be split evenly over {len(devices)} devices; use a multiple of "
                f"{len(devices)} or shard=False."
            )
        return None
    mesh = jax.sharding.Mesh(np.array(devices), ("workers",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("workers"))


#: Algorithms that compute one worker's gradient per event (inside a branch): they refuse models with state.
EVENT_DRIVEN = ("async_dsgd", "asgd", "ad_psgd")


def _with_metrics(problem, metrics):
    """The problem with the metrics to evaluate (None: all it has), names checked against what it can report."""
    if metrics is None:
        return problem
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"simulate: unknown metrics {unknown}; choose from {list(METRICS)}.")
    unavailable = [m for m in metrics if not _has_metric(problem, m)]
    if unavailable:
        raise ValueError(f"simulate: {problem.name} cannot report {unavailable} (no test set, not a classifier, or no "
                         "known optimum).")
    return problem.replace(metrics=metrics)


def reported_metrics(problem) -> list:
    """The metric names a run of ``problem`` reports (its evaluation's outputs, with ``problem.metrics`` applied),
    besides ``step``, ``bits`` and ``sim_time``: ``loss`` always, ``worker_accuracy`` as ``worker_accuracy_mean`` and
    ``worker_accuracy_min`` (and the (evaluations, n) ``worker_accuracy`` itself when named in ``problem.metrics``),
    ``worker_loss`` only when named."""
    from jaxgossip.problems._base import DEFAULT_METRICS

    want = ("loss",) + tuple(problem.metrics) if problem.metrics else DEFAULT_METRICS
    out = []
    for m in METRICS:
        if m in want and _has_metric(problem, m):
            out += ["worker_accuracy_mean", "worker_accuracy_min"] if m == "worker_accuracy" else [m]
            if m == "worker_accuracy" and problem.metrics and m in problem.metrics:
                out.append(m)
    return out


def _has_metric(problem, m):
    if m in ("test_loss",):
        return problem.test_x.shape[0] > 0
    if m in ("accuracy", "worker_accuracy"):
        return problem.test_x.shape[0] > 0 and problem.classification
    if m == "suboptimality":
        return problem.f_star is not None
    if m == "dist_to_opt":
        return problem.x_star is not None
    return True


def bind_compressors(algorithm, problem):
    """Check every compressor of the algorithm against d (``check(d)``: clear errors before compiling) and give
    layerwise compressors the problem's parameter layout."""
    hyper, changed = dict(algorithm.hyper), False
    for k, v in algorithm.hyper.items():
        if hasattr(v, "bind_layout"):
            hyper[k], changed = v.bind_layout(problem), True
            v = hyper[k]
        check = getattr(v, "check", None)
        if check is not None and hasattr(v, "bits"):
            try:
                check(problem.d)
            except ValueError as e:
                raise ValueError(f"simulate: {algorithm.name}'s {k}: {e}") from None
    return algorithm.replace(hyper=hyper) if changed else algorithm


def prepare(problem, algorithm, topology=None, *, steps, seed=0, eval_every=None, network=None, compute=None,
            backend="auto", shard="auto", metrics=None, faults=None) -> Prepared:
    """Validate the inputs (clear errors naming the argument, before anything compiles) and build the pieces."""
    if not isinstance(problem, Problem):
        raise ValueError(f"simulate: problem must be a jg.problems.Problem, got {type(problem).__name__}.")
    if not isinstance(algorithm, Algorithm):
        raise ValueError(f"simulate: algorithm must be a jg.algorithms.Algorithm, got {type(algorithm).__name__}.")
    steps = _check_int("steps", steps)
    eval_every = _check_int("eval_every", eval_every if eval_every is not None else max(1, steps // 100))
    if steps % eval_every:
        raise ValueError(f"simulate: steps ({steps}) must be a multiple of eval_every ({eval_every}).")
    seed = _check_int("seed", seed, 0)
    if shard not in ("auto", True, False):
        raise ValueError(f"simulate: shard must be 'auto', True or False, got {shard!r}.")
    if topology is None:
        if algorithm.kind == "decentralized":
            raise ValueError(f"simulate: {algorithm.name} is decentralized and needs a topology (e.g. jg.topology.ring(n)).")
        topology = complete(problem.n)
    if not isinstance(topology, (Topology, TimeVarying)):
        raise ValueError(f"simulate: topology must be a jg.topology.Topology, got {type(topology).__name__}.")
    if topology.n != problem.n:
        raise ValueError(f"simulate: the topology has n={topology.n} workers but the problem has n={problem.n}.")
    network = Network() if network is None else network
    compute = ComputeModel() if compute is None else compute
    if not isinstance(network, Network):
        raise ValueError(f"simulate: network must be a jg.Network, got {type(network).__name__}.")
    if not isinstance(compute, ComputeModel):
        raise ValueError(f"simulate: compute must be a jg.ComputeModel, got {type(compute).__name__}.")
    try:
        compute.check(problem.n)  # per-worker arrays against n, before compiling (not at trace time)
    except ValueError as e:
        raise ValueError(f"simulate: compute: {e}") from None
    try:
        network.check(problem.n)  # per-worker / per-link arrays against n, before compiling
    except ValueError as e:
        raise ValueError(f"simulate: network: {str(e).removeprefix('Network: ')}") from None
    if network.kind != "scalar" and algorithm.name in EVENT_DRIVEN:
        raise ValueError(f"simulate: network: {algorithm.name} is event-driven and prices its messages on one "
                         f"latency and one bandwidth; give a scalar jg.Network (per-worker or per-link networks "
                         f"price synchronous rounds only).")
    problem = _with_metrics(problem, metrics)
    check_problem(problem, "simulate")
    algorithm = bind_compressors(algorithm, problem)
    if problem.has_model_state and algorithm.name in EVENT_DRIVEN:
        raise ValueError(f"simulate: {algorithm.name} updates one worker per event, which per-worker model state "
                         f"(BatchNorm statistics) does not support yet; use a model without mutable state (GroupNorm, "
                         f"LayerNorm) or a synchronous algorithm.")
    check_graph_contract(algorithm, topology)
    faults = fault_lib.as_faults(faults)
    fault_lib.check(algorithm, topology, faults, steps, problem.n)  # refusals and the mask's shape, before compiling
    if algorithm.check_fn is not None:
        algorithm.check_fn(algorithm, problem, topology)
    sharding = worker_sharding(problem.n, shard)
    mixing = gossip.make_mixing(topology, backend)
    if sharding is not None:  # shift graphs gossip by ppermute inside shard_map (bit-identical to one device)
        mixing = gossip.shard_over(mixing, sharding.mesh)
    period = len(topology.topologies) if isinstance(topology, TimeVarying) else 0
    # every step is priced on its own graph (pricing.on(mix) in the step); this one, step 0's graph, serves the init
    sends, receives = step_degrees(topology)
    pricing = Pricing(network, compute, to_device(sends[0], np.float32), problem.n, to_device(receives[0], np.float32))
    if network.kind == "matrix":  # a per-link network prices a round on the active links of the step's graph
        pricing = pricing.on(mixing)
    config = {
        "algorithm": algorithm_record(algorithm),
        "kind": algorithm.kind,
        "problem": problem.name,
        "problem_spec": problem.spec.record() if problem.spec is not None else None,
        "problem_data": problem_record(problem),
        "n": problem.n,
        "d": problem.d,
        "batch_size": problem.batch_size,
        "topology": getattr(topology, "name", "custom"),
        "topology_weights": topology_record(topology),
        "rho": float(topology.rho),
        "steps": steps,
        "eval_every": eval_every,
        "seed": seed,
        "backend": mixing.backend,
        "network": network.describe(),  # scalar: the two numbers; per-worker / per-link: digests, min and max
        "compute": compute.describe(),
        "devices": 1 if sharding is None else len(jax.devices()),
    }
    if problem.net:
        config["model"] = _model_summary(problem)
    if problem.metrics is not None:
        config["metrics"] = list(problem.metrics)
    if faults:
        config["faults"] = fault_lib.records(faults)
    return Prepared(problem, algorithm, mixing, pricing, period, steps, eval_every, seed, sharding, plain_json(config),
                    fault_lib.plan(faults, mixing, period, problem.n), fault_lib.params(faults) if faults else None)


def algorithm_record(algorithm) -> dict:
    """An algorithm in ``Result.config``: its name, every hyperparameter (schedules and optimizers with their numbers)
    and its step and init functions (static choices such as ``order`` or ``pattern`` pick them)."""
    record = {"name": algorithm.name, **_hyper_summary(algorithm.hyper, algorithm.optimizer)}
    record["functions"] = [_function_name(algorithm.init_fn), _function_name(algorithm.step_fn)]
    return plain_json(record)


def _function_name(fn) -> str:
    if isinstance(fn, functools.partial) or not hasattr(fn, "__qualname__"):
        return describe_callable(fn)
    return f"{getattr(fn, '__module__', '')}.{fn.__qualname__}"


def problem_record(problem) -> dict:
    """What a problem holds, as ``Result.config["problem_data"]``: digests of its training data (features, labels,
    shares), test set, initial model, initial model state and optimum, and the values that change the numbers and are
    not data (L2 coefficient, gradient noise, batch mode, model and loss). With ``problem_spec`` (the builder's
    arguments) it says which data made a run: a problem changed after it was built (``problem.replace(reg=...)``)
    shows here."""
    from jaxgossip._record import digest, jsonable

    return plain_json({
        "train": digest(problem.data_x, problem.data_y, problem.counts),
        "test": digest(problem.test_x, problem.test_y),
        "x0": digest(problem.x0),
        "model_state": digest(problem.model_state) if problem.has_model_state else None,
        "optimum": None if problem.x_star is None else digest(problem.x_star, problem.f_star),
        "samples": list(problem.data_x.shape),
        "reg": jsonable(np.asarray(jax.device_get(problem.reg)).tolist()),
        "grad_noise": problem.grad_noise,
        "full_batch": problem.full_batch,
        "eval_batch": problem.eval_batch,
        "model": type(problem.model).__qualname__ if problem.net else jsonable(problem.model),
        "loss": jsonable(problem.loss),
        "augment": jsonable(problem.augment),
        "L": problem.L,
        "mu": problem.mu,
    })


def topology_record(topology) -> str:
    """A digest of the mixing weights (every graph of a time-varying sequence, in order): two graphs with one name
    and other weights (``ring(n, weights=...)``, ``from_adjacency``) have other records."""
    from jaxgossip._record import digest

    graphs = topology.topologies if isinstance(topology, TimeVarying) else (topology,)
    return digest(*[(np.asarray([t.n, len(graphs)], np.int64), *t.entries) for t in graphs])


def _model_summary(problem) -> dict:
    """How a network problem handles its state, randomness and evaluation (recorded in ``Result.config``)."""
    state = "none"
    if problem.has_model_state:
        state = "averaged with the models every step" if problem.share_model_state else "per worker, not communicated"
    return {
        "parameters": problem.d,
        "tensors": None if problem.layout is None else len(problem.layout.segments),
        "model_state": state,
        "evaluation_state": "the workers' model states averaged" if problem.has_model_state else "none",
        "stochastic": problem.stochastic_model,
        "augment": None if problem.augment is None else repr(problem.augment),
        "batch": "full" if problem.full_batch else problem.batch_size,
        "eval_batch": problem.eval_batch,
        "worker_map": problem.worker_map,
        "lowering": _lowering_record(problem),
    }


def _lowering_record(problem):
    from jaxgossip.lowering import lowering_record  # the conv lowering and worker map, and how they were chosen

    return lowering_record(problem)


def _hyper_summary(hyper: dict, optimizer=None) -> dict:
    """The hyperparameters as plain values for ``Result.config``. With an optimizer in the ``"updates"`` convention
    ``lr`` multiplies the optimizer's own update, and the record says so: ``"0.5 (multiplier of the optimizer's
    update)"`` (see :func:`jaxgossip.algorithms._base.resolve_lr`)."""
    from jaxgossip.algorithms._base import is_updates, lr_role

    out = {}
    if optimizer is not None:
        out["optimizer"] = repr(optimizer)
    for k, v in hyper.items():
        if hasattr(v, "params") and hasattr(v, "name"):  # a Compressor
            out[k] = repr(v)
        else:
            try:
                out[k] = float(v)
            except (TypeError, ValueError):
                out[k] = repr(v)
        if k == "lr" and is_updates(optimizer):
            out[k] = f"{out[k]!s} ({lr_role(optimizer)})"
    return out


LONG_RUN = 2000  # steps from which the inner scan is unrolled twice (see step_unroll)


def step_unroll(steps: int) -> int:
    """How many steps one iteration of the compiled inner loop runs: 2 for runs of at least ``LONG_RUN`` steps, else 1.

    Unrolling twice lets each step write its new models into the buffer the step before last read from: no copy of the
    (n, d) state per step, and half the loop overhead (D-PSGD at n = 64, d = 1000 ran 1.46x more steps per second on a
    2-core CPU). It costs ~0.4 s more compile time, which short runs do not win back.
    """
    return 2 if steps >= LONG_RUN else 1


def _chunk_impl(carry, algo, problem, mixing, pricing, base_key, threshold, *, evals, eval_every, period, unroll=1,
                faults=None, fault_params=None):
    """``evals`` blocks of ``eval_every`` steps, each followed by an evaluation.

    ``faults``: a :class:`jaxgossip.faults.FaultPlan` (None: every link and worker up) and ``fault_params`` its
    traced parameters; the chains' states are ``carry.faults``.

    The metrics have ``evals + 1`` entries: entry 0 evaluates the incoming state with no steps (a run's step-0 metrics
    come from its first chunk, so a run compiles one program, not a second one for its initial evaluation; later
    chunks drop that entry), entry j the state after block j. A NaN ``carry.loss0`` is set from entry 0.
    """
    TRACE_COUNT["chunk"] += 1

    def one_step(c, _):
        key = jax.random.fold_in(base_key, c.t)
        slot = StateSlot() if c.model is not None else None
        mix = gossip.select(mixing, c.t, period)  # the graph of step t: the step mixes with it and is priced on it
        if faults is not None:  # the step's live links (jg.faults): W_t masked, priced on what it carries
            fstate, online, mix, links_up, online_frac = fault_lib.step(faults, fault_params, c.faults, key, c.t, mix)
        priced = pricing.on(mix)
        if faults is not None and online is not None and hasattr(priced, "with_online"):
            priced = priced.with_online(online)  # a synchronous step waits for the slowest online worker
        ctx = Context(problem.replace(worker_state=c.model, slot=slot), mix, priced, c.t)
        new_state, cost = algo.step(c.state, key, ctx)
        state = new_state
        if faults is not None:  # an offline worker keeps its model and every row of its state
            state = fault_lib.hold(online, c.state, new_state, problem.n)
        model = c.model
        if slot is not None and slot.value is not None:
            new_model = slot.value
            if problem.share_model_state:
                new_model, extra = share_model_state(new_model, mix, priced, algo.kind)
                cost = cost._replace(bits=cost.bits + extra.bits, seconds=cost.seconds + extra.seconds)
            model = new_model if faults is None else fault_lib.hold(online, c.model, new_model, problem.n)
        ys = (jnp.float32(cost.bits), jnp.float32(cost.seconds))
        if faults is not None:
            return c._replace(state=state, t=c.t + 1, model=model, faults=fstate), ys + (links_up, online_frac)
        return c._replace(state=state, t=c.t + 1, model=model), ys

    def block(c):
        c, ys = jax.lax.scan(one_step, c, None, length=eval_every, unroll=min(unroll, eval_every))
        # bits and seconds summed over the window; the fault fractions averaged over it
        return (c, jnp.sum(ys[0]), jnp.sum(ys[1])) + tuple(jnp.mean(y) for y in ys[2:])

    def no_block(c):  # entry 0: the incoming state, no step
        return (c, jnp.float32(0.0), jnp.float32(0.0)) + ((jnp.float32(jnp.nan),) * 2 if faults is not None else ())

    def held(c):  # a run that diverged: no step, nothing sent; its clock moves on
        return no_block(c._replace(t=c.t + eval_every))

    def next_block(c):
        # a run that diverged skips its blocks whole (state, model state and fault chains frozen) rather than
        # masking every step: no select over the (n, d) state per step (in a sweep, whose predicate is batched, one
        # select per block)
        return jax.lax.cond(c.stopped, held, block, c)

    def one_eval(c, j):
        c, bits, secs, *fractions = jax.lax.cond(j > 0, next_block, no_block, c)
        m = _evaluate(problem.replace(worker_state=c.model), c.state.x)
        loss0 = jnp.where(jnp.isnan(c.loss0), m["loss"].astype(c.loss0.dtype), c.loss0)
        bad = (j > 0) & _diverging(m, loss0, c.state.x, threshold)
        m = dict(m, step=c.t, bits=bits, sim_time=secs, stopped=c.stopped | bad)
        if faults is not None:
            m.update(zip(fault_lib.METRICS, fractions))
        return c._replace(stopped=c.stopped | bad, loss0=loss0), m

    return jax.lax.scan(one_eval, carry, jnp.arange(evals + 1))


_run_chunk = run_jit(_chunk_impl, static_argnames=("evals", "eval_every", "period", "unroll"))


#: Default loss multiple: a run whose loss at the average model exceeds this many times its step-0 loss diverged.
DIVERGENCE_THRESHOLD = 100.0
#: Default consensus multiple: a run whose consensus distance (1/n) sum ||x_i - xbar||^2 exceeds this many times
#: max(1, ||xbar||^2) (the same evaluation's average model) diverged: the workers disagree by far more than the size
#: of the model they agree on.
CONSENSUS_THRESHOLD = 100.0


def divergence_limits(divergence_threshold=None, consensus_threshold=None):
    """The (2,) float32 ``[loss multiple, consensus multiple]`` the compiled loop compares against (None: the
    defaults; ``consensus_threshold=inf`` turns the consensus test off). Raises a ValueError naming the argument."""
    loss = DIVERGENCE_THRESHOLD if divergence_threshold is None else divergence_threshold
    cons = CONSENSUS_THRESHOLD if consensus_threshold is None else consensus_threshold
    for name, v in (("divergence_threshold", loss), ("consensus_threshold", cons)):
        if isinstance(v, (bool, str)) or not np.ndim(v) == 0 or not float(v) > (1 if name[0] == "d" else 0):
            raise ValueError(f"simulate: {name} must be a number > {1 if name[0] == 'd' else 0} (or None for the "
                             f"default), got {v!r}.")
    return np.asarray([loss, cons], np.float32)


def _diverging(m, loss0, X, limits):
    """True when an evaluation shows divergence: a non-finite loss or consensus distance, a loss above ``limits[0]``
    times the step-0 loss, or a consensus distance above ``limits[1]`` times ``max(1, ||xbar||^2)``. A scalar
    ``limits`` (older callers) is the loss multiple alone."""
    limits = jnp.atleast_1d(limits)
    loss = m["loss"]
    bad = ~jnp.isfinite(loss) | (loss > limits[0] * jnp.maximum(loss0, 1e-12))
    cons = m.get("consensus")
    if cons is not None and limits.shape[0] > 1:
        xbar = jnp.mean(X, axis=0)
        scale = jnp.maximum(jnp.sum(xbar * xbar), 1.0).astype(cons.dtype)
        bad = bad | ~jnp.isfinite(cons) | (cons > limits[1] * scale)
    return bad


_BLOCK_KEYS = ("step", "bits", "sim_time", "stopped", "links_up", "workers_online")


def split_entry0(m):
    """A chunk's metrics -> (entry 0's evaluation: the incoming state's, the rest: one entry per block), along the
    last axis. Per-worker metrics (``jg.problems._base.PER_WORKER``) come from the scan as (..., evals + 1, n); their
    evaluation axis is moved last first, (..., n, evals + 1), so that every metric has its evaluations last."""
    from jaxgossip.problems._base import PER_WORKER

    m = {k: (np.moveaxis(np.asarray(v), -2, -1) if k in PER_WORKER else v) for k, v in m.items()}
    first = {k: v[..., 0] for k, v in m.items() if k not in _BLOCK_KEYS}
    return first, {k: v[..., 1:] for k, v in m.items()}


@jax.jit
def _init_state(algo, problem, mixing, pricing, X0):
    """The algorithm's state at step 0 (its metrics come from the first chunk)."""
    return algo.init(X0, Context(problem, mixing, pricing, jnp.zeros((), jnp.int32)))


def state_shapes(prep: Prepared):
    """The shapes and dtypes of the algorithm's state (no computation). ``eval_shape`` of the jitted function reuses
    its trace for the same shapes; ``jax.eval_shape`` of a new closure would trace again on every call."""
    return _init_state.eval_shape(prep.algorithm, prep.problem, prep.mixing, prep.pricing, initial_models(prep.problem))


def fresh_carry(state, dtype, batch: tuple = (), model=None, faults=None) -> Carry:
    """Step 0's carry (``batch`` leading axes for a sweep): not stopped, no divergence reference yet (NaN: the first
    chunk sets it). Host (NumPy) values: a jnp constructor would compile a small program for every new shape.
    ``model`` is the (n, ...) initial model state (see :func:`initial_model_state`), copied along ``batch``."""
    if model is not None and batch:
        model = jax.tree.map(lambda a: np.broadcast_to(np.asarray(a), batch + np.shape(a)).copy(), model)
    if faults is not None and batch:  # the fault chains' states (jg.faults.init_state), copied along batch
        faults = jax.tree.map(lambda a: np.broadcast_to(np.asarray(a), batch + np.shape(a)).copy(), faults)
    return Carry(state, np.zeros(batch, np.int32), np.zeros(batch, bool), np.full(batch, np.nan, dtype), model,
                 faults)


def initial_model_state(problem):
    """The (n, ...) per-worker model state at step 0: the problem's initial state on every worker (host arrays), or
    None for a model without state."""
    if not problem.has_model_state:
        return None
    return jax.tree.map(lambda a: np.broadcast_to(np.asarray(a), (problem.n,) + np.shape(a)).copy(),
                        jax.device_get(problem.model_state))


def share_model_state(model, mixing, pricing, kind):
    """Average the model state with the models: gossip (``W M``) for decentralized algorithms, the exact average
    otherwise; priced as one more message of its floats per neighbour (or one AllReduce)."""
    from jaxgossip.cost import Cost

    leaves = [a for a in jax.tree.leaves(model) if jnp.issubdtype(a.dtype, jnp.floating)]
    size = sum(int(np.prod(a.shape[1:])) for a in leaves)
    bits = jnp.float32(32 * size)
    if kind == "decentralized":
        mixed = jax.tree.map(lambda a: mixing(a.reshape(a.shape[0], -1)).reshape(a.shape).astype(a.dtype)
                             if jnp.issubdtype(a.dtype, jnp.floating) else a, model)
        return mixed, Cost(pricing.gossip_bits(bits), pricing.gossip_seconds(bits))  # the step's graph
    mixed = jax.tree.map(lambda a: jnp.broadcast_to(a.mean(0), a.shape).astype(a.dtype)
                         if jnp.issubdtype(a.dtype, jnp.floating) else a, model)
    return mixed, pricing.allreduce_cost(bits)  # 2 (n - 1) messages of bits; the online workers' ring when set


def _evaluate(problem, X):
    """The metrics, reduced over a replicated copy: the single-device reduction order on any mesh (same bits)."""
    problem, X = replicate((problem, X))
    return problem.evaluate(X)


@jax.jit
def _evaluate_once(problem, X):
    return _evaluate(problem, X)


def evaluate_models(problem, X, model_state=None) -> dict:
    """The metrics of the (n, d) models X on ``problem``, with the (n, ...) per-worker ``model_state`` bound (a run's
    final state: what its last evaluation used), as floats. Evaluated on one device from host copies, so a run spread
    over devices gets its own reduction order (see :func:`_evaluate`). Used by :meth:`jaxgossip.Result.evaluate`.
    Floats, and (n,) arrays for per-worker metrics."""
    X = to_device(np.asarray(jax.device_get(X)), problem.x0.dtype)
    if model_state is not None:
        problem = problem.replace(worker_state=jax.tree.map(lambda a: to_device(np.asarray(a)),
                                                            jax.device_get(model_state)))
    return {k: (float(v) if np.ndim(v) == 0 else np.asarray(v))  # per-worker metrics: (n,) arrays
            for k, v in jax.device_get(_evaluate_once(problem, X)).items()}


def _place(tree, sharding, n):
    if sharding is None:
        return tree
    return jax.tree.map(
        lambda a: jax.device_put(a, sharding) if getattr(a, "ndim", 0) >= 1 and a.shape[0] == n else a, tree
    )


def initial_models(problem, x0=None):
    """The (n, d) stack of initial models: the problem's x0 on every worker, or a user's (d,) or (n, d) array.

    Raises:
      ValueError: naming ``x0`` for another shape, values that are not real numbers, or NaN / infinite values.
    """
    n, d = problem.n, problem.d
    if x0 is not None:
        _check_x0_values(x0, n, d)
    x0 = problem.x0 if x0 is None else x0
    if np.shape(x0) == (d,):  # tiled on the host: jnp.tile compiles a program for every new (n, d)
        return np.tile(np.asarray(x0, problem.x0.dtype), (n, 1))
    if np.shape(x0) == (n, d):
        return to_device(x0, problem.x0.dtype)
    raise ValueError(f"simulate: x0 must have shape (d,) = ({d},) or (n, d) = ({n}, {d}), got {np.shape(x0)}.")


def _check_x0_values(x0, n, d):
    if isinstance(x0, (str, bytes, dict)) or not (hasattr(x0, "shape") or isinstance(x0, (list, tuple))):
        raise ValueError(f"simulate: x0 must be an array of shape (d,) = ({d},) or (n, d) = ({n}, {d}), got "
                         f"{type(x0).__name__}.")
    if np.shape(x0) not in ((d,), (n, d)):
        raise ValueError(f"simulate: x0 must have shape (d,) = ({d},) or (n, d) = ({n}, {d}), got {np.shape(x0)}.")
    a = np.asarray(jax.device_get(x0))
    if a.dtype.kind not in "biuf":
        raise ValueError(f"simulate: x0 must hold real numbers, got dtype {a.dtype}.")
    bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
    if bad:
        raise ValueError(f"simulate: x0 holds {bad} NaN or infinite values; every initial model must be finite.")


#: Decentralized algorithms that take a mixing matrix that is only column stochastic (push-sum de-biases it).
COLUMN_STOCHASTIC_OK = ("sgp",)
#: Decentralized algorithms whose rule assumes an undirected graph: worker i mixes with or exchanges with neighbour j
#: exactly when j mixes with i (asynchronous DSGD reads W's column as its row; AD-PSGD averages pairwise).
NEEDS_SYMMETRIC = ("async_dsgd", "ad_psgd")
#: Algorithms whose state holds each worker's copy of its neighbours' models, started from the initial models: with
#: one model per worker that copy would be knowledge nobody sent, so a per-worker x0 is refused for them.
NEIGHBOUR_COPIES = ("dcd_psgd", "ecd_psgd", "choco_sgd")


def check_graph_contract(algorithm, topology) -> None:
    """Refuse, before compiling, a graph whose mixing matrix the algorithm's rule does not allow.

    Every decentralized method except push-sum (``sgp``) assumes a doubly stochastic W (Tang et al. 2018,
    Assumption 1; Reisizadeh et al. 2019, Sec. 2): on a matrix that is only column stochastic (a directed graph from
    ``from_digraph``, ``directed_exponential``) the average is not preserved and D-PSGD converges to a biased point
    without a word (``jg.topology.as_given(graph)`` opts out explicitly, to show that bias). The event-driven pairwise
    methods need a symmetric W as well.

    Raises:
      ValueError: naming the algorithm and the graph.
    """
    from jaxgossip.topology._local import check_local_steps

    check_local_steps(algorithm, topology)  # methods keeping neighbours' copies refuse steps that send nothing
    if algorithm.kind != "decentralized" or algorithm.name in COLUMN_STOCHASTIC_OK:
        return
    for topo in getattr(topology, "topologies", (topology,)):
        if getattr(topo, "given", False):  # jg.topology.as_given: the user's explicit, recorded opt-out
            continue
        if not getattr(topo, "doubly_stochastic", True):
            raise ValueError(f"simulate: {algorithm.name} needs a doubly stochastic mixing matrix (rows and columns "
                             f"summing to 1); {topo.name} is only column stochastic, which biases its average. Use "
                             f"jg.algorithms.sgp (push-sum) on a directed graph.")
        if algorithm.name in NEEDS_SYMMETRIC and not getattr(topo, "symmetric", True):
            raise ValueError(f"simulate: {algorithm.name} needs an undirected graph (a symmetric W: worker i mixes "
                             f"with j exactly when j mixes with i); {topo.name} is directed.")


def check_x0(algorithm, problem, x0):
    """Validate a user's initial models against the problem and the algorithm, before anything compiles; returns
    their record for ``Result.config["x0"]`` (shape and digest), or None when ``x0`` is None.

    Raises:
      ValueError: naming ``x0``: another shape than (d,) or (n, d), values that are not finite real numbers, or one
        model per worker, (n, d), for a centralized or star algorithm (it keeps one model: workers that start apart
        would be averaged at the first step, or never, without saying so).
    """
    if x0 is None:
        return None
    initial_models(problem, x0)
    if np.ndim(x0) == 2 and algorithm.kind in ("centralized", "star"):
        raise ValueError(f"simulate: x0 of shape (n, d) = {np.shape(x0)} gives every worker its own initial model, but "
                         f"{algorithm.name} is {algorithm.kind} and keeps one model; pass one (d,) model (e.g. x0[0]).")
    if np.ndim(x0) == 2 and algorithm.name in NEIGHBOUR_COPIES:
        raise ValueError(f"simulate: x0 of shape (n, d) = {np.shape(x0)} gives every worker its own initial model, but "
                         f"{algorithm.name} starts each worker's copies of its neighbours' models at their initial "
                         f"models, which nobody sent (Tang et al. 2018, Alg. 1-2, and Koloskova et al. 2019 start "
                         f"from one common model); pass one (d,) model shared by all workers.")
    from jaxgossip._record import jsonable

    return jsonable(np.asarray(jax.device_get(x0), problem.x0.dtype))


def record_run_inputs(prep, x0=None, divergence_threshold=None, consensus_threshold=None) -> None:
    """Add what a run reads besides the prepared pieces to ``prep.config``: the divergence limits and the user's
    initial models (their digest). Validates both (ValueErrors naming the argument, before anything compiles)."""
    loss, cons = (float(v) for v in divergence_limits(divergence_threshold, consensus_threshold))
    prep.config["divergence"] = plain_json({"loss": loss, "consensus": cons})
    record = check_x0(prep.algorithm, prep.problem, x0)
    if record is not None:
        prep.config["x0"] = record


def _evals_per_chunk(num_evals: int, eval_every: int, target_steps: int = 2000) -> int:
    """The largest divisor of num_evals whose chunk runs at most ~target_steps steps (at least one evaluation)."""
    best = 1
    for k in range(1, num_evals + 1):
        if num_evals % k == 0 and k * eval_every <= max(target_steps, eval_every):
            best = k
    return best


#: Steps from which a run shows its progress bar by default (networks: ``NET_PROGRESS_STEPS``).
PROGRESS_STEPS, NET_PROGRESS_STEPS = 20000, 1000
#: Steps per compiled chunk of a network's run (the progress bar's resolution); other runs take up to 2000.
NET_CHUNK_STEPS = 200


def long_run(prep) -> bool:
    """Whether a run shows its progress bar by default: 20000 steps or more, or a network's 1000."""
    return prep.steps >= (NET_PROGRESS_STEPS if prep.problem.net else PROGRESS_STEPS)


def _progress(total, enabled, desc):
    """A tqdm bar in steps: it shows steps per second and the time left (updated after every compiled chunk)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="step", leave=False, dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps [{elapsed}<{remaining}, "
                           "{rate_fmt}]")


def to_host(tree):
    """device_get that also works for arrays spread over several processes (replicated ones: the local copy)."""
    leaves = jax.tree.leaves(tree)
    if all(not isinstance(a, jax.Array) or a.is_fully_addressable for a in leaves):
        return jax.device_get(tree)  # one call: every copy started before the first is waited for

    def get(a):
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            return np.asarray(a.addressable_data(0)) if a.is_fully_replicated else a
        return jax.device_get(a)

    return jax.tree.map(get, tree)


def _mesh_context(sharding):
    import contextlib

    return contextlib.nullcontext() if sharding is None else jax.set_mesh(sharding.mesh)


def check_callbacks(callbacks, who: str = "simulate") -> tuple:
    """``callbacks`` as a tuple of callables ``(step, metrics) -> None`` (None: none; one callable: a tuple of one).

    Raises:
      ValueError: naming ``callbacks``, for anything else (checked before anything compiles).
    """
    if callbacks is None:
        return ()
    if callable(callbacks):
        return (callbacks,)
    if not isinstance(callbacks, (list, tuple)):
        raise ValueError(f"{who}: callbacks must be a list of callables (step, metrics) -> None, got "
                         f"{type(callbacks).__name__}.")
    for i, cb in enumerate(callbacks):
        if not callable(cb):
            raise ValueError(f"{who}: callbacks[{i}] must be a callable (step, metrics) -> None, got "
                             f"{type(cb).__name__}.")
    return tuple(callbacks)


def call_callbacks(callbacks, step: int, metrics: dict, who: str = "simulate") -> None:
    """Call every callback with ``(step, metrics)``; one that raises stops the run with a RuntimeError naming it, the
    step and its error (chained)."""
    for cb in callbacks:
        try:
            cb(step, metrics)
        except Exception as e:  # noqa: BLE001 - re-raised with the callback's name and the step
            name = getattr(cb, "__qualname__", None) or repr(cb)  # a function's name, a logger's repr
            raise RuntimeError(f"{who}: callback {name} raised {type(e).__name__} at step {step}: {e}") from e


def evaluation_rows(metrics: dict, start: int):
    """``(step, {name: value})`` for evaluations ``start, start + 1, ...`` of assembled metrics (one run's): scalars
    as Python floats, per-worker metrics as (n,) arrays: the values ``Result.metrics`` holds."""
    for j in range(start, len(metrics["step"])):
        yield int(metrics["step"][j]), {k: (float(v[j]) if np.ndim(v) == 1 else np.array(v[j]))
                                        for k, v in metrics.items() if k != "step"}


def run_prepared(prep: Prepared, *, progress=None, divergence_threshold=None, x0=None, resume=None, on_chunk=None,
                 chunk_evals=None, stop_at=None, consensus_threshold=None, unroll=None, callbacks=()) -> Result:
    """Run a prepared configuration from step 0, or from a checkpoint.

    Args (besides simulate's): ``resume``: ``(carry, m0, chunks)`` saved by an ``on_chunk`` callback, to continue
    from (bit-identical to an uninterrupted run); ``on_chunk(carry, m0, chunks)``: called after every compiled chunk;
    ``chunk_evals``: evaluations per chunk (must divide the number of evaluations); ``stop_at``: return after the chunk
    that reaches this step (the Result has NaN after it). Used by :mod:`jaxgossip.checkpoint`. ``callbacks``: as
    simulate's (a resumed run calls them for the evaluations after the checkpoint only).
    """
    callbacks = check_callbacks(callbacks)
    t_start = time.perf_counter()
    problem, algo, n = prep.problem, prep.algorithm, prep.problem.n
    with _mesh_context(prep.sharding):
        problem_p = _place(problem, prep.sharding, n)
        if resume is None:
            X0 = initial_models(problem, x0)
            state = _init_state(algo, problem_p, prep.mixing, prep.pricing, _place(X0, prep.sharding, n))
            model = _place(initial_model_state(problem), prep.sharding, n)
            carry = fresh_carry(state, problem.x0.dtype, model=model, faults=fault_lib.init_state(prep.faults))
            m0, chunks = None, []
        else:
            carry, m0, chunks = resume
            carry = _place(carry, prep.sharding, n)
            chunks = list(chunks)
        num_evals = prep.steps // prep.eval_every
        target = NET_CHUNK_STEPS if problem.net else 2000  # a network's bar moves every few hundred steps
        per_chunk = _evals_per_chunk(num_evals, prep.eval_every, target) if chunk_evals is None else chunk_evals
        base_key = jax.random.key(prep.seed)
        threshold = divergence_limits(divergence_threshold, consensus_threshold)
        show = progress if progress is not None else long_run(prep)
        done = sum(len(c["step"]) for c in chunks)
        stopped = bool(chunks[-1]["stopped"][-1]) if chunks else False
        emitted = done + 1 if chunks else 0  # evaluations the callbacks have seen (a resumed run: those before it)
        with _progress(prep.steps, show, prep.config.get("label", algo.name)) as bar:
            bar.update(done * prep.eval_every)
            for _ in range((num_evals - done) // per_chunk):
                if m0 is not None and (stopped or (stop_at is not None and done * prep.eval_every >= stop_at)):
                    break
                carry, m = _run_chunk(carry, algo, problem_p, prep.mixing, prep.pricing, base_key, threshold,
                                      evals=per_chunk, eval_every=prep.eval_every, period=prep.period,
                                      unroll=step_unroll(prep.steps) if unroll is None else unroll,
                                      faults=prep.faults, fault_params=prep.fault_params)
                first, rest = split_entry0(to_host(m))
                m0 = first if m0 is None else m0
                chunks.append(rest)
                done += per_chunk
                bar.update(per_chunk * prep.eval_every)
                stopped = bool(chunks[-1]["stopped"][-1])
                if on_chunk is not None:
                    on_chunk(carry, m0, chunks)
                if callbacks:  # the evaluations so far, assembled as the Result will hold them (same float64 values)
                    so_far = assemble_metrics(m0, chunks, done, prep.eval_every)[0]
                    for step, row in evaluation_rows(so_far, emitted):
                        call_callbacks(callbacks, step, row)
                    emitted = len(so_far["step"])
    metrics, diverged, div_step = assemble_metrics(m0, chunks, num_evals, prep.eval_every)
    return Result(metrics, dict(prep.config), diverged, div_step, time.perf_counter() - t_start, carry.state,
                  carry.model, problem.layout)


def assemble_metrics(m0, chunks, num_evals, eval_every):
    """Join the initial evaluation and the chunks' into arrays of 1 + num_evals entries (along the last axis).

    Bits and simulated time are summed per evaluation block on the device and accumulated here in float64. A run that
    stopped early (diverged) has NaN after its first bad evaluation. Leading axes (a sweep's configurations) are kept:
    one call assembles a whole batch. Per-worker metrics (their worker axis before the evaluations, see
    :func:`split_entry0`) come out as (..., 1 + num_evals, n). Returns ``(metrics, diverged, diverged_step)``: for one
    run a bool and an int (or None); with leading axes a bool array and an int array (-1 where the run did not
    diverge).
    """
    from jaxgossip.problems._base import PER_WORKER

    batch = np.shape(m0["loss"]) if "loss" in m0 else np.shape(next(iter(m0.values())))
    total = num_evals + 1
    names = list(m0) + ["bits", "sim_time"] + [k for k in ("links_up", "workers_online") if chunks and k in chunks[0]]
    stopped = np.concatenate([np.zeros(batch + (1,), bool)] + [np.asarray(c["stopped"], bool) for c in chunks], -1)
    stopped = np.concatenate([stopped, np.zeros(batch + (total - stopped.shape[-1],), bool)], -1)
    after_bad = np.concatenate([np.zeros(batch + (1,), bool), np.cumsum(stopped, -1)[..., :-1] > 0], -1)
    out = {"step": np.broadcast_to(np.arange(total, dtype=np.int64) * eval_every, batch + (total,)).copy()}
    for k in names:
        if k in ("links_up", "workers_online"):  # fractions over an evaluation window: none before step 1
            first = np.full(batch + (1,), np.nan)
        else:
            first = np.zeros(batch + (1,)) if k in ("bits", "sim_time") else np.asarray(m0[k], np.float64)[..., None]
        v = np.concatenate([first] + [np.asarray(c[k], np.float64) for c in chunks], -1)
        if k in ("bits", "sim_time"):
            v = np.cumsum(v, -1)
        v = np.concatenate([v, np.full(v.shape[:-1] + (total - v.shape[-1],), np.nan)], -1)
        if k in PER_WORKER:  # (..., n, evaluations) -> (..., evaluations, n)
            v = np.moveaxis(v, -1, -2)
        v[after_bad] = np.nan
        out[k] = v
    diverged = stopped.any(-1)
    step = np.where(diverged, np.take_along_axis(out["step"], np.argmax(stopped, -1)[..., None], -1)[..., 0], -1)
    if batch:
        return out, diverged, step
    return out, bool(diverged), (int(step) if diverged else None)


def simulate(problem: Problem, algorithm: Algorithm, topology: Topology | TimeVarying | None = None, *, steps: int,
             seed: int = 0, eval_every: int | None = None, network: Network | None = None,
             compute: ComputeModel | None = None, backend: str = "auto", shard="auto", progress: bool | None = None,
             divergence_threshold: float = DIVERGENCE_THRESHOLD, x0=None, label: str | None = None,
             consensus_threshold: float = CONSENSUS_THRESHOLD, metrics=None, memory_limit: int | None = None,
             callbacks=None, faults=None) -> Result:
    """Run ``algorithm`` on ``problem`` over ``topology`` for ``steps`` iterations as compiled ``lax.scan`` chunks.

    Args:
      problem: a :class:`jaxgossip.problems.Problem` (data, loss, gradient oracle).
      algorithm: an :class:`jaxgossip.algorithms.Algorithm` from a factory such as ``jg.algorithms.dpsgd(lr=0.1)``.
      topology: the communication graph (required for decentralized algorithms; centralized ones may omit it).
      steps: number of iterations T (a multiple of ``eval_every``).
      seed: the run seed; every random draw derives from it (same seed, same numbers, on 1 device or 8).
      eval_every: evaluate the metrics every this many steps (default: steps // 100).
      network: the alpha-beta network model pricing the messages (default ``jg.Network()``; latency and bandwidth
        per worker or per link: see :class:`jaxgossip.Network`).
      compute: the computation-time model (default ``jg.ComputeModel()``: constant 1000 samples/s).
      backend: gossip backend, ``"auto"``, ``"dense"``, ``"gather"``, ``"shift"`` or ``"sparse"`` (see
        :mod:`jaxgossip.gossip`).
      shard: ``"auto"`` shards the worker axis over all devices when n divides evenly, ``True`` insists (error
        otherwise), ``False`` keeps one device.
      progress: show a progress bar with steps per second and the time left (default: for runs of 20000 steps
        or more, and for networks from 1000 steps).
      divergence_threshold: the run is marked diverged when the loss at the average model exceeds this many times
        its step-0 value (default 100; a non-finite loss or consensus distance always counts as diverged).
      consensus_threshold: ... or when the consensus distance exceeds this many times ``max(1, ||xbar||^2)`` (default
        100; ``float("inf")`` turns it off). Divergence is checked at every evaluation (every ``eval_every`` steps):
        the run is frozen there, ``Result.diverged_step`` is that evaluation's step and later metrics are NaN.
      x0: optional initial models: (d,) shared by every worker, or (n, d) one per worker (default: the problem's).
      label: a name for plots and tables (default: the algorithm's name).
      metrics: the metrics to evaluate, from ``jg.problems.METRICS`` (default: every one the problem has; ``loss``
        is always evaluated: divergence detection reads it). ``"worker_accuracy"`` adds each worker's own test
        accuracy as an (evaluations, n) array ``worker_accuracy`` and its mean and minimum over workers
        (``worker_accuracy_mean``, ``worker_accuracy_min``; by default a classifier reports these two only).
        ``"worker_loss"`` (never by default: n evaluations of the objective) adds the (evaluations, n) array of the
        global training objective at each worker's own model, f(x_i) = (1/n) sum_j f_j(x_i) with the L2 term (and, for
        a network, worker i's own model state); its mean over workers is >= ``loss`` = f(xbar) for a convex f.
      memory_limit: bytes the run may use (default: 90% of the device's memory, or of the RAM on CPU); a run whose
        estimate (:func:`jaxgossip.memory_estimate`) exceeds it is refused before compiling, with the numbers.
      callbacks: callables ``callback(step, metrics)`` (or one callable) called at every evaluation, in order, with
        the step and ``{name: value}`` of that evaluation: the values ``Result.metrics`` will hold (floats; (n,)
        arrays for per-worker metrics), without ``step``. The run is compiled chunks of several evaluations (up to
        2000 steps, 200 for a network): the callbacks see each chunk's evaluations when it returns to the host, so
        they change neither the compiled program nor the numbers. A run that diverged stops at the end of that chunk:
        the evaluations it skips (NaN in ``Result.metrics``) are not called. A callback that raises stops the run with
        a RuntimeError naming it and the step. Ready ones: :mod:`jaxgossip.loggers` (CSV, TensorBoard).
      faults: ``jg.faults.link_failures(p, burst=None)``, ``jg.faults.churn(p_leave, p_return)``,
        ``jg.faults.availability(mask)``, or a list of them (see :mod:`jaxgossip.faults`): the step's graph is drawn
        inside the compiled step; the metrics gain ``links_up`` and ``workers_online``. With ``p = 0`` (an always-true
        mask) the run is the fault-free run bit for bit.

    Returns:
      A :class:`jaxgossip.Result`.
    """
    prep = prepare(problem, algorithm, topology, steps=steps, seed=seed, eval_every=eval_every, network=network,
                   compute=compute, backend=backend, shard=shard, metrics=metrics, faults=faults)
    if label is not None:
        prep.config["label"] = str(label)
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise ValueError(f"simulate: progress must be True, False or None (the default), got {progress!r}.")
    if memory_limit is not None and (isinstance(memory_limit, (bool, np.bool_))
                                     or not isinstance(memory_limit, (int, np.integer)) or memory_limit < 1):
        raise ValueError(f"simulate: memory_limit must be a positive number of bytes or None, got {memory_limit!r}.")
    callbacks = check_callbacks(callbacks)
    record_run_inputs(prep, x0, divergence_threshold, consensus_threshold)  # clear errors before compiling
    check_fits(prep, memory_limit)
    return run_prepared(prep, progress=progress, divergence_threshold=divergence_threshold, x0=x0,
                        consensus_threshold=consensus_threshold, callbacks=callbacks)


def memory_estimate(problem, algorithm, topology=None, **kwargs) -> dict:
    """Bytes a run of ``algorithm`` on ``problem`` needs, per part (parameters, optimizer state, model state, the
    compressors' and other algorithm state, data, total), from the shapes alone: nothing compiles. Keyword arguments
    are :func:`simulate`'s (``steps`` defaults to 1). See :mod:`jaxgossip.memory`."""
    from jaxgossip.memory import estimate

    kwargs.setdefault("steps", 1)
    return estimate(prepare(problem, algorithm, topology, shard=False, **kwargs))
