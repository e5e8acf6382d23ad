"""Unreliable networks: links that fail and workers that come and go (``jg.faults``), drawn inside the compiled step.

``simulate(..., faults=...)`` takes one fault or a list of them:

* :func:`link_failures` ``(p, burst=None)``: every undirected link is down at a step with probability ``p``,
  independently of the other links and steps, or (``burst`` given) in bursts: a two-state Markov chain per link whose
  stationary down-probability is ``p`` and whose down-runs last ``burst`` steps on average.
* :func:`churn` ``(p_leave, p_return)``: an on/off Markov chain per worker: an online worker leaves at a step with
  probability ``p_leave``, an offline one returns with probability ``p_return`` (online on average a fraction
  ``p_return / (p_leave + p_return)`` of the time).
* :func:`availability` ``(mask)``: a user's (T, n) boolean trace (T >= steps): worker i is online at step t when
  ``mask[t, i]``.

The fault model (the step's graph W_t):

* A down link carries nothing and costs nothing. Its weight moves to the receiver's own model: ``W_t[i, j] = 0`` and
  ``W_t[i, i] += W[i, j]`` for both ends (:meth:`jaxgossip.gossip.Mixing.masked`), so a symmetric doubly stochastic W
  gives a symmetric doubly stochastic W_t at every step. Bits and seconds are priced on W_t (its live links):
  ``pricing.on(masked)``. Faults need an undirected graph (a symmetric W): on a directed one a lost message would
  take mass out of the push-sum average, which is refused.
* An offline worker computes nothing, sends and receives nothing (all its links are down), and keeps its model and
  every other row of the algorithm's state (trackers, corrections, optimizer state, push-sum weights, model state)
  until it returns; a synchronous step waits for the slowest *online* worker (``pricing.with_online``).
* Every draw is made inside the compiled step from the step's key: ``fold_in(fold_in(step key, FAULT_TAG), j)`` for
  the j-th fault, one uniform per link (in the order of :attr:`FaultPlan.ends`) or per worker, so the numbers are the
  same on 1 and 8 devices. The Markov chains start from their stationary distribution at step 0 and their states
  live in the scan carry (a checkpoint resumes them). ``p``, ``burst``, ``p_leave`` and ``p_return`` are traced:
  ``jg.sweep(..., grid={"faults.p": [...]})`` is one vmapped program (with several faults that share a parameter
  name, ``"faults.0.p"``, ``"faults.1.p"``).
* With ``p = 0`` (or an always-true mask) a run is the fault-free run bit for bit: every weight is multiplied by 1
  and every self weight gets + 0.

Metrics: ``links_up`` (the fraction of the step graph's links that carried their messages) and ``workers_online``
(the fraction of the workers online), each averaged over the steps of the evaluation window (NaN at step 0, before
any step).

Prior art: gossipy (``drop_prob``, ``online_prob``), decent-bench (message drops, Markov activation of agents), the
EPFL decentralized-learning-simulator (device churn traces); they run one object per worker.

Algorithms: those that keep copies of their neighbours' models (DCD-PSGD, ECD-PSGD, CHOCO-SGD, DeepSqueeze, BEER,
PowerGossip) refuse faults (a lost message leaves the receiver's copy stale, which per-link copies would model; not
built), as do the event-driven methods (async_dsgd, asgd, ad_psgd: their events read the fixed graph) and the
centralized and star methods (no graph; an average over the online workers is not built): :data:`REFUSED`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgossip import _pytree as struct
from jaxgossip._host import to_device

__all__ = ["link_failures", "churn", "availability", "LinkFailures", "Churn", "Availability", "FaultPlan", "REFUSED",
           "FAULT_TAG", "METRICS", "as_faults"]

#: The tag folded into the step key for the fault draws (``fold_in(step key, FAULT_TAG)``).
FAULT_TAG = 0x4641554C

#: The metrics a run with faults adds, averaged over each evaluation window.
METRICS = ("links_up", "workers_online")

_REPLICAS = ("keeps each worker's copies of its neighbours' models, which a lost message would leave stale (per-link "
             "copies are not modelled)")
_EVENTS = ("is event-driven: its events read the fixed graph and already model which worker acts when")
_CENTRAL = ("averages over all workers without a graph (no links to fail; an average over the online workers is not "
            "modelled)")

#: Algorithms that refuse ``faults`` (name -> why): the README's algorithm table lists them.
REFUSED = {
    "dcd_psgd": _REPLICAS,
    "ecd_psgd": _REPLICAS,
    "choco_sgd": _REPLICAS,
    "deepsqueeze": _REPLICAS,
    "beer": _REPLICAS,
    "powergossip": _REPLICAS + "; it also reads the graph's neighbour table",
    "async_dsgd": _EVENTS,
    "asgd": _EVENTS,
    "ad_psgd": _EVENTS,
    "cpsgd": _CENTRAL,
    "csgd": _CENTRAL,
    "ec_sgd": _CENTRAL,
    "doublesqueeze": _CENTRAL,
    "ef21": _CENTRAL,
    "iade": _CENTRAL,
    "aiade": _CENTRAL,
    "iade_sgd": _CENTRAL,
    "star_gd": _CENTRAL,
    "star_nesterov": _CENTRAL,
    "star_qgd": _CENTRAL,
    "local_sgd": _CENTRAL,
}


def _is_traced(v) -> bool:
    return isinstance(v, jax.core.Tracer)


def _probability(owner, arg, v, high_open=False):
    """``v`` as a float in [0, 1] (or [0, 1) when ``high_open``); a ValueError naming the argument otherwise."""
    if _is_traced(v):
        return v
    if isinstance(v, (str, bytes, bool, np.bool_)) or np.ndim(v) != 0:
        raise ValueError(f"jg.faults.{owner}: {arg} must be a number in [0, 1{')' if high_open else ']'}, got {v!r}.")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"jg.faults.{owner}: {arg} must be a number, got {v!r}.") from None
    if not (0.0 <= x <= 1.0) or (high_open and x >= 1.0):
        raise ValueError(f"jg.faults.{owner}: {arg} must be in [0, 1{')' if high_open else ']'}, got {v!r}.")
    return x


@struct.dataclass
class LinkFailures:
    """Every undirected link down at a step with probability ``p`` (independent), or in bursts of mean ``burst``
    steps (a two-state Markov chain per link with stationary down-probability ``p``). Build with
    :func:`link_failures`."""

    p: Any
    burst: Any = None

    kind = "link_failures"

    @property
    def params(self) -> dict:
        return {"p": self.p} if self.burst is None else {"p": self.p, "burst": self.burst}

    def validate(self, p=None, burst=None):
        p = self.p if p is None else p
        burst = self.burst if burst is None else burst
        return link_failures(p, burst)

    def record(self) -> dict:
        return {"kind": self.kind, "p": float(self.p), "burst": None if self.burst is None else float(self.burst)}


@struct.dataclass
class Churn:
    """An on/off Markov chain per worker: online -> offline with probability ``p_leave`` per step, offline -> online
    with ``p_return``. Build with :func:`churn`."""

    p_leave: Any
    p_return: Any

    kind = "churn"

    @property
    def params(self) -> dict:
        return {"p_leave": self.p_leave, "p_return": self.p_return}

    def validate(self, p_leave=None, p_return=None):
        return churn(self.p_leave if p_leave is None else p_leave, self.p_return if p_return is None else p_return)

    def record(self) -> dict:
        return {"kind": self.kind, "p_leave": float(self.p_leave), "p_return": float(self.p_return)}


@struct.dataclass
class Availability:
    """A (T, n) boolean trace: worker i is online at step t when ``mask[t, i]``. Build with :func:`availability`."""

    mask: Any

    kind = "availability"

    @property
    def params(self) -> dict:
        return {}

    def record(self) -> dict:
        from jaxgossip._record import digest

        return {"kind": self.kind, "shape": list(self.mask.shape), "mask": digest(self.mask),
                "online_fraction": float(np.mean(self.mask))}


def link_failures(p, burst=None) -> LinkFailures:
    """Links that fail: every undirected link is down at a step with probability ``p``.

    Args:
      p: the probability that a link is down at a step (traced: sweep it as ``"faults.p"``), in [0, 1]; with
        ``burst`` in [0, 1).
      burst: None for independent failures at every step; else the mean length, in steps (>= 1), of a down-run: a
        two-state Markov chain per link goes up -> down with probability a = p b / (1 - p) and down -> up with
        b = 1 / burst, whose stationary down-probability is p (needs a <= 1: burst >= p / (1 - p)).

    A down link carries nothing and costs nothing; its weight moves to both ends' own models, so W_t stays symmetric
    and doubly stochastic (see the module docstring).
    """
    p = _probability("link_failures", "p", p, high_open=burst is not None)
    if burst is not None and not _is_traced(burst):
        if isinstance(burst, (str, bytes, bool, np.bool_)) or np.ndim(burst) != 0:
            raise ValueError(f"jg.faults.link_failures: burst must be None or a number of steps >= 1, got {burst!r}.")
        burst = float(burst)
        if not np.isfinite(burst) or burst < 1.0:
            raise ValueError(f"jg.faults.link_failures: burst must be a mean run length >= 1 step, got {burst!r}.")
        if not _is_traced(p) and p / (1.0 - p) > burst:
            raise ValueError(f"jg.faults.link_failures: with p={p} the mean down-run burst must be at least "
                             f"p / (1 - p) = {p / (1 - p):.4g} steps (a link must be able to stay up long enough "
                             f"between its down-runs), got {burst!r}.")
    return LinkFailures(p, burst)


def churn(p_leave, p_return) -> Churn:
    """Workers that come and go: an on/off Markov chain per worker.

    Args:
      p_leave: the probability that an online worker goes offline at a step, in [0, 1] (traced).
      p_return: the probability that an offline worker comes back at a step, in [0, 1] (traced). A worker is online
        a fraction p_return / (p_leave + p_return) of the time; step 0 draws from that stationary distribution.

    An offline worker computes nothing, sends and receives nothing, and keeps its model (and all its state) until it
    returns.
    """
    p_leave = _probability("churn", "p_leave", p_leave)
    p_return = _probability("churn", "p_return", p_return)
    if not _is_traced(p_leave) and not _is_traced(p_return) and p_leave > 0 and p_return == 0:
        raise ValueError(f"jg.faults.churn: p_return=0 with p_leave={p_leave}: every worker would leave for good; "
                         "give p_return > 0.")
    return Churn(p_leave, p_return)


def availability(mask) -> Availability:
    """Workers online by a trace: ``mask[t, i]`` True when worker i is online at step t.

    Args:
      mask: a (T, n) boolean array (NumPy or nested lists; T >= the run's steps, n its workers, checked by
        ``simulate`` before compiling), e.g. a device-availability trace.
    """
    if isinstance(mask, (str, bytes, dict)) or not (hasattr(mask, "shape") or isinstance(mask, (list, tuple))):
        raise ValueError(f"jg.faults.availability: mask must be a (T, n) boolean array, got {type(mask).__name__}.")
    a = np.asarray(jax.device_get(mask))
    if a.ndim != 2:
        raise ValueError(f"jg.faults.availability: mask must be a (T, n) boolean array, got shape {a.shape}.")
    if a.dtype != bool:
        if a.dtype.kind not in "biu" or not np.isin(a, (0, 1)).all():
            raise ValueError(f"jg.faults.availability: mask must hold booleans (or 0 / 1), got dtype {a.dtype}.")
        a = a.astype(bool)
    a = np.array(a, bool)  # a private copy: a later change of the user's array does not change the run
    a.setflags(write=False)
    return Availability(a)


_KINDS = (LinkFailures, Churn, Availability)


def as_faults(faults) -> tuple:
    """``faults`` (None, one fault or a list of them) as a tuple of fault records; a ValueError naming ``faults``."""
    if faults is None:
        return ()
    items = list(faults) if isinstance(faults, (list, tuple)) else [faults]
    for f in items:
        if not isinstance(f, _KINDS):
            raise ValueError(f"simulate: faults must be jg.faults.link_failures(...), churn(...) or availability(...) "
                             f"(or a list of them), got {type(f).__name__}.")
    return tuple(items)


def check(algorithm, topology, faults: tuple, steps: int, n: int) -> None:
    """Refuse, before compiling, what the fault model does not cover: an algorithm of :data:`REFUSED`, a directed
    graph, an availability mask of another shape."""
    if not faults:
        return
    if algorithm.name in REFUSED or algorithm.kind != "decentralized":
        from jaxgossip.algorithms import REGISTRY  # late: the algorithms import the simulator's pieces

        why = REFUSED.get(algorithm.name, _CENTRAL if algorithm.kind != "decentralized" else _EVENTS)
        ok = ", ".join(name for name in REGISTRY if name not in REFUSED)
        raise ValueError(f"simulate: faults are not supported by {algorithm.name}: it {why}. Faults run with the "
                         f"gossip methods that keep no copies: {ok}.")
    for topo in getattr(topology, "topologies", (topology,)):
        if not getattr(topo, "symmetric", True):
            raise ValueError(f"simulate: faults need an undirected graph (a symmetric W: a lost link drops both "
                             f"directions and its weight moves to both ends); {topo.name} is directed.")
    for f in faults:
        if isinstance(f, Availability):
            T, m = f.mask.shape
            if m != n or T < steps:
                raise ValueError(f"simulate: the availability mask has shape {f.mask.shape}; it needs (T, n) with n = "
                                 f"{n} workers and T >= steps = {steps}.")


def records(faults: tuple) -> list:
    """The faults as ``Result.config["faults"]`` entries (the mask by its digest)."""
    return [f.record() for f in faults]


# ---- the compiled model ----------------------------------------------------------------------------------------------
@struct.dataclass
class FaultPlan:
    """The faults of one run, ready for the compiled step (built by :func:`plan`).

    Attributes:
      kinds: static, one per fault: ``"links"``, ``"bursts"`` (bursty link failures), ``"churn"``, ``"availability"``
        (the traced parameters are passed apart, as ``params``: a sweep stacks those only).
      slot_links: int32, the undirected link id of every slot of the mixing's ``index`` (-1: the worker itself,
        padding, a zero weight), with the mixing's leading graph axis for a time-varying topology.
      ends: (2, L) int32, the two workers of every link (i < j), the union over the graphs of a sequence.
      present: (P, L) bool, which links graph g of the sequence has (P = 1 for a static graph).
      masks: the availability masks as device arrays, one per :class:`Availability` in ``faults``.
      n: static number of workers; period: static number of graphs (0: static).
    """

    kinds: tuple = struct.field(pytree_node=False)
    slot_links: jax.Array
    ends: jax.Array
    present: jax.Array
    masks: tuple
    n: int = struct.field(pytree_node=False)
    period: int = struct.field(pytree_node=False, default=0)

    @property
    def has_workers(self) -> bool:
        return any(k in ("churn", "availability") for k in self.kinds)


def _slot_pairs(mixing_np, backend):
    """(rows, cols) of every slot of one graph's mixing (-1 where the slot is no link)."""
    w, index = mixing_np
    if backend == "dense":
        n = w.shape[0]
        i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        ok = (w != 0) & (i != j)
    elif backend == "gather":
        i = np.broadcast_to(np.arange(index.shape[0])[:, None], index.shape)
        j = index
        ok = (w != 0) & (i != j)
        ok[:, 0] = False
    elif backend == "shift":
        i = np.broadcast_to(np.arange(index.shape[1])[None, :], index.shape)
        j = index
        ok = (np.asarray(w[1:]).reshape(-1, 1) != 0) & (i != j)
    else:  # sparse
        i, j = index[0], index[1]
        ok = (w != 0) & (i != j)
    return np.where(ok, np.minimum(i, j), -1), np.where(ok, np.maximum(i, j), -1)


def plan(faults: tuple, mixing, period: int, n: int) -> FaultPlan | None:
    """The :class:`FaultPlan` of ``faults`` on ``mixing`` (None without faults): the link table read from the
    mixing's own slots (so the masked mixing drops exactly the weights of the links that are down)."""
    if not faults:
        return None
    w = np.asarray(jax.device_get(mixing.weights))
    index = np.asarray(jax.device_get(mixing.index))
    graphs = [(w[g], index[g]) for g in range(w.shape[0])] if period else [(w, index)]
    pairs = [_slot_pairs(g, mixing.backend) for g in graphs]
    keys = sorted({(int(a), int(b)) for lo, hi in pairs for a, b in zip(lo[lo >= 0], hi[lo >= 0])})
    ids = {k: l for l, k in enumerate(keys)}
    L = max(len(keys), 1)
    tables, present = [], np.zeros((len(graphs), L), bool)
    for g, (lo, hi) in enumerate(pairs):
        t = np.full(lo.shape, -1, np.int32)
        ok = lo >= 0
        t[ok] = [ids[(int(a), int(b))] for a, b in zip(lo[ok], hi[ok])]
        present[g, t[ok]] = True
        tables.append(t)
    ends = np.array(keys, np.int32).T.reshape(2, -1) if keys else np.zeros((2, 1), np.int32)
    table = np.stack(tables) if period else tables[0]
    masks = tuple(to_device(f.mask) for f in faults if isinstance(f, Availability))
    kinds = tuple(_kind(f) for f in faults)
    return FaultPlan(kinds, to_device(table), to_device(ends), to_device(present), masks, n, period)


def _kind(f) -> str:
    if isinstance(f, LinkFailures):
        return "links" if f.burst is None else "bursts"
    return f.kind


def params(faults: tuple) -> tuple:
    """The traced parameters of the faults: one dict of float32 scalars per fault (host values)."""
    return tuple({k: np.float32(v) for k, v in f.params.items()} for f in faults)


def init_state(fplan: FaultPlan | None):
    """The Markov chains' states before step 0 (host arrays; step 0 draws them from their stationary distribution):
    (L,) bool down-links for a bursty :func:`link_failures`, (n,) bool offline workers for :func:`churn`, None for
    the others. None without faults."""
    if fplan is None:
        return None
    L = fplan.ends.shape[1]
    out = []
    for kind in fplan.kinds:
        if kind == "bursts":
            out.append(np.zeros(L, bool))
        elif kind == "churn":
            out.append(np.zeros(fplan.n, bool))
        else:
            out.append(None)
    return tuple(out)


def step(fplan: FaultPlan, prm: tuple, fstate, key, t, mix):
    """Draw step ``t``'s faults and mask its mixing.

    Returns ``(fstate, online, masked mixing, links_up, workers_online)``: the chains' new states, the (n,) bool
    online workers (None when no fault concerns workers), the mixing of the live links (:meth:`Mixing.masked`), and
    the fractions of the step graph's links that are up and of the workers that are online.
    """
    fk = jax.random.fold_in(key, FAULT_TAG)
    n = fplan.n
    L = fplan.ends.shape[1]
    link_ok = jnp.ones((L,), bool)
    online = jnp.ones((n,), bool)
    first = t == 0
    new_state, m = [], 0
    for j, (kind, p, st) in enumerate(zip(fplan.kinds, prm, fstate)):
        k = jax.random.fold_in(fk, j)
        if kind in ("links", "bursts"):
            u = jax.random.uniform(k, (L,))
            if kind == "links":
                link_ok = link_ok & (u >= p["p"])
                new_state.append(None)
            else:
                b = 1.0 / p["burst"]
                a = p["p"] * b / (1.0 - p["p"])
                down = jnp.where(first, u < p["p"], jnp.where(st, u < 1.0 - b, u < a))
                link_ok = link_ok & ~down
                new_state.append(down)
        elif kind == "churn":
            u = jax.random.uniform(k, (n,))
            pl, pr = p["p_leave"], p["p_return"]
            total = pl + pr
            stationary = jnp.where(total > 0, pl / jnp.where(total > 0, total, 1.0), 0.0)
            off = jnp.where(first, u < stationary, jnp.where(st, u >= pr, u < pl))
            online = online & ~off
            new_state.append(off)
        else:
            online = online & fplan.masks[m][t]
            m += 1
            new_state.append(None)
    ends = fplan.ends
    up = link_ok & online[ends[0]] & online[ends[1]]
    present = fplan.present[t % fplan.period] if fplan.period else fplan.present[0]
    down = (present & ~up).astype(jnp.float32)
    lost = jnp.zeros((n,), jnp.float32).at[ends[0]].add(down).at[ends[1]].add(down)
    table = fplan.slot_links[t % fplan.period] if fplan.period else fplan.slot_links
    up_slot = jnp.where(table >= 0, up[jnp.maximum(table, 0)], True)
    masked = mix.masked(up_slot, lost)
    links_up = jnp.sum(present & up).astype(jnp.float32) / jnp.maximum(jnp.sum(present), 1).astype(jnp.float32)
    workers_online = jnp.mean(online.astype(jnp.float32))
    return tuple(new_state), (online if fplan.has_workers else None), masked, links_up, workers_online


def hold(online, old, new, n: int):
    """``new`` with the offline workers' rows of ``old``: every leaf whose leading axis is the n workers keeps an
    offline worker's row (its model, trackers, corrections, optimizer state, push-sum weight); other leaves are
    ``new``. One select per worker-indexed leaf. (A run that diverged skips its steps whole: see
    ``simulate._chunk_impl``.)"""
    if online is None:
        return new

    def pick(a, b):
        if getattr(b, "ndim", 0) >= 1 and b.shape[0] == n:
            return jnp.where(~online.reshape((n,) + (1,) * (b.ndim - 1)), a, b)
        return b

    return jax.tree.map(pick, old, new)


# ---- sweeps ------------------------------------------------------------------------------------------------------
def grid_keys(faults: tuple) -> dict:
    """``{grid key: (fault index, parameter)}``: ``"faults.<j>.<param>"`` always, ``"faults.<param>"`` when one fault
    alone has that parameter."""
    out, owners = {}, {}
    for j, f in enumerate(faults):
        for name in (f.params if hasattr(f, "params") else f):  # a fault record, or its parameters (jg.faults.params)
            out[f"faults.{j}.{name}"] = (j, name)
            owners.setdefault(name, []).append(j)
    for name, js in owners.items():
        if len(js) == 1:
            out[f"faults.{name}"] = (js[0], name)
    return out


def validate_grid(faults: tuple, grid: dict, names) -> None:
    """Check the ``faults.*`` keys of a sweep's grid against the run's faults (each value as the fault's factory
    checks it, with the other parameters as given), before compiling."""
    keys = grid_keys(faults)
    for key in names:
        if key not in keys:
            hint = sorted(keys) or "none: pass faults=... to sweep"
            extra = ""
            if key.endswith(".burst"):
                extra = " (burst=None means independent failures; give link_failures(p, burst=...) to sweep it)"
            raise ValueError(f"sweep: grid key {key!r} names no parameter of the run's faults{extra}; they have "
                             f"{hint}.")
        j, name = keys[key]
        for v in grid[key]:
            if isinstance(v, (str, bytes, bool)) or np.ndim(v) != 0:
                raise ValueError(f"sweep: grid[{key!r}] value {v!r} is not allowed: values must be numbers.")
            try:
                faults[j].validate(**{name: float(v)})
            except ValueError as e:
                raise ValueError(f"sweep: grid[{key!r}] value {v!r} is not allowed: {e}") from None


def params_at(base: tuple, point: dict, key_of) -> tuple:
    """The traced parameters ``base`` (:func:`params`) with a grid point's ``faults.*`` values (``key_of`` maps a
    point key to its grid name)."""
    keys = grid_keys(base)
    out = [dict(p) for p in base]
    for key, value in point.items():
        name = key_of(key)
        if name in keys:
            j, param = keys[name]
            out[j][param] = np.float32(value)
    return tuple(out)


def is_fault_key(name: str) -> bool:
    return str(name).startswith("faults.")

