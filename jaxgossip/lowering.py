"""Lowerings chosen by measurement: ``conv="auto"`` and ``worker_map="auto"`` of a network problem, timed once.

A network's per-worker gradients can be lowered several ways that compute the same numbers (to float32 rounding):
the convolutions as XLA's own ``conv_general_dilated`` or as im2col and one matrix product
(:mod:`jaxgossip.models.conv`), and the workers as one ``jax.vmap`` program or a ``lax.map`` over one worker's
program. Which is fastest depends on the device and the shapes: on XLA's CPU backend a vmapped convolution becomes a
grouped convolution that runs several times slower than n separate ones (``benchmarks/README.md``, item 9); on GPUs
grouped convolutions are known to be slow in some configurations too (jax-ml/jax#26568, flax#4207).

So where a builder (:func:`jaxgossip.problems.from_flax`, :func:`jaxgossip.problems.from_function`) is left at
``"auto"``, it builds the candidates for the problem's real shapes (n workers, the batch, the samples), compiles each
one's stacked gradient inside a short ``lax.scan`` (as a run's step sits in its loop), runs them interleaved a few
times on the device at hand and keeps the fastest (the minimum of the repeats). Where the batch is 64 or more, each
candidate is first timed once on a batch 16 times smaller, and those more than 4x slower than the fastest there are
dropped before they are compiled for the real batch (:data:`PROBE_DIVISOR`). The choice is cached on disk, in
``jaxgossip-lowering.json`` beside the compilation cache (:func:`jaxgossip.cache.lowering_cache_path`), under a key of
the platform, the device kind, the jax and jaxlib versions and the problem's signature (model, shapes, batch, n), so
the next process (and the next problem of the same shapes) reads it instead of timing again.

The choice is recorded in ``Result.config["model"]["lowering"]`` (:func:`lowering_record`), and with the environment
variable ``JAXGOSSIP_VERBOSE=1`` it is reported on stderr when made. ``JAXGOSSIP_LOWERING=platform`` turns the
measurement off (no timing, no file): ``"auto"`` is then the fixed platform rule (im2col and ``lax.map`` on CPU; im2col and
``vmap`` on GPU, what the measurement chose on an H200 for every shape; XLA's convolution and ``vmap`` on TPU); the test suite runs that way so that no test depends on timing.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from typing import Callable

import jax
import jax.numpy as jnp

__all__ = ["mode", "measure", "choose", "lowering_record", "signature_key", "verbose"]

#: Values of ``JAXGOSSIP_LOWERING``: ``"measure"`` (default) times the candidates once and caches the choice;
#: ``"platform"`` takes the fixed per-platform rule without timing.
MODES = ("measure", "platform")

#: How many interleaved timed repeats each candidate gets (after one untimed call that compiles it).
REPEATS = 3
#: A candidate slower than this many times the fastest after a round is not timed again.
PRUNE = 2.0
#: Steps of the timed ``lax.scan`` (a run's gradients sit inside its compiled loop).
SCAN_STEPS = 2
#: The probe: each candidate is first called on a batch this many times smaller (where that batch is still at least
#: :data:`PROBE_MIN_BATCH`), once untimed and once timed, and a candidate slower than :data:`PROBE_PRUNE` times the
#: fastest probe is dropped before it is compiled for the real batch. On a CPU, XLA's convolution inside a loop runs
#: 20-50x slower than im2col (jax-ml/jax#12868): one call of ResNet-20's 2 gradient steps took 28-143 s at batch 128,
#: where its probes at batch 8 read 418 / 376 (im2col) against 2,870 / 3,780 ms (XLA) at n = 4
#: (``benchmarks/README.md``).
#: Below batch 64 the probe's fixed costs hid the differences: LeNet-5 (CPU, batch 32, probe 2) read 43-108 ms for every
#: candidate where the real batch separated them 5-12x, so nothing was dropped and four compiles were added.
PROBE_DIVISOR = 16
PROBE_MIN_BATCH = 4
PROBE_PRUNE = 4.0


def probe_batch(batch: int) -> int | None:
    """The probe's batch for a problem of batch ``batch``, or None where the real batch is small enough to time."""
    small = batch // PROBE_DIVISOR
    return small if small >= PROBE_MIN_BATCH else None

def mode() -> str:
    """``JAXGOSSIP_LOWERING`` (default ``"measure"``).

    Raises:
      ValueError: naming the variable, for a value not in :data:`MODES`.
    """
    value = os.environ.get("JAXGOSSIP_LOWERING", "") or "measure"
    if value not in MODES:
        raise ValueError(f"JAXGOSSIP_LOWERING must be one of {MODES}, got {value!r}.")
    return value


def verbose() -> bool:
    """Whether ``JAXGOSSIP_VERBOSE`` asks for reports (any value but empty, ``0`` or ``false``)."""
    return os.environ.get("JAXGOSSIP_VERBOSE", "").strip().lower() not in ("", "0", "false", "no")


def report(message: str) -> None:
    """Print ``message`` on stderr when :func:`verbose`."""
    if verbose():
        print(f"jaxgossip: {message}", file=sys.stderr, flush=True)


def measure(candidates: dict, *, timer: Callable[[], float] = time.perf_counter, repeats: int = REPEATS,
            warmup: bool = True, prune: float = PRUNE) -> dict:
    """Seconds per call of each candidate: the minimum over up to ``repeats`` interleaved rounds.

    Args:
      candidates: ``{name: fn}``, each ``fn()`` runs the candidate once and blocks until it is done.
      timer: the clock (a test injects a fake one).
      repeats: timed rounds; within a round the candidates run in turn, so a change of the machine's load touches
        them all alike.
      warmup: call each candidate once untimed first (where calling it the first time compiles it).
      prune: after each round, a candidate whose best time exceeds ``prune`` times the best of all is not timed
        again (it cannot win; its time so far is kept).

    Returns:
      ``{name: seconds}`` in the order given.
    """
    if warmup:
        for fn in candidates.values():
            fn()
    best = {name: float("inf") for name in candidates}
    live = list(candidates)
    for _ in range(max(1, int(repeats))):
        for name in live:
            start = timer()
            candidates[name]()
            best[name] = min(best[name], timer() - start)
        fastest = min(best.values())
        live = [name for name in live if best[name] <= prune * fastest]
    return best


def choose(times: dict) -> str:
    """The fastest candidate (the first of equal ones, in the order given)."""
    return min(times, key=lambda name: (times[name], list(times).index(name)))


def _device_key() -> dict:
    import jaxlib

    dev = jax.devices()[0]
    return {"platform": dev.platform, "device_kind": getattr(dev, "device_kind", ""), "jax": jax.__version__,
            "jaxlib": getattr(jaxlib, "__version__", ""), "devices": len(jax.devices())}


def signature_key(signature: dict) -> tuple[str, dict]:
    """The cache key of a problem's signature on this device: ``(sha256 hex, the readable key)``."""
    key = {**_device_key(), "problem": signature}
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest(), key


def _read(path: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def cached_choice(key: str, path: str | None = None) -> dict | None:
    """The cached record of ``key`` (None when absent)."""
    from jaxgossip.cache import lowering_cache_path

    entry = _read(path or lowering_cache_path()).get(key)
    return entry if isinstance(entry, dict) and "choice" in entry else None


def store_choice(key: str, record: dict, path: str | None = None) -> str:
    """Add ``record`` under ``key`` to the cache file (written atomically; other keys kept). Returns the path."""
    from jaxgossip.cache import lowering_cache_path
    from jaxgossip.result import atomic_write

    path = path or lowering_cache_path()
    data = _read(path)
    data[key] = record
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True))
    return path


#: The clock :func:`resolve` times with when given none (a test replaces it with a fake one).
clock = time.perf_counter


def resolve(candidates: dict, signature: dict, default: str, *, what: str, timer=None,
            repeats: int = REPEATS, path: str | None = None, probes: dict | None = None) -> dict:
    """The lowering of an ``"auto"`` option: the platform ``default`` (mode ``"platform"`` or one candidate), the
    cached choice of this signature, or the fastest candidate measured now (then cached).

    Args:
      candidates: ``{name: build}``, ``build()`` returning the zero-argument function that runs the candidate once
        (built only when measured).
      signature: what the compiled candidates depend on (model, shapes, n, batch), JSON values.
      default: the platform rule's choice.
      what: the problem's name, for the report.
      timer, repeats: see :func:`measure` (default timer: :data:`clock`).
      path: the cache file (default :func:`jaxgossip.cache.lowering_cache_path`).
      probes: ``{name: build}`` of the same candidates on a smaller batch (see :data:`PROBE_DIVISOR`), each called
        once untimed and timed once first; a candidate whose probe took more than :data:`PROBE_PRUNE` times the
        fastest probe is not built for the real batch, and a single survivor is taken without timing it again.

    Returns:
      The record: ``{"choice": name, "by": "measurement" | "cache" | "platform", "ms": {name: ms} (measured)}``,
      with ``"probe_ms"`` where probes were timed.
    """
    if mode() == "platform" or len(candidates) < 2:
        return {"choice": default, "by": "platform"}
    key, readable = signature_key(signature)
    cached = cached_choice(key, path)
    if cached is not None and cached["choice"] in candidates:
        record = {"choice": cached["choice"], "by": "cache", "ms": cached.get("ms", {})}
        report(f"{what}: lowering {record['choice']} (cached: {_ms(record['ms'])})")
        return record
    extra, probed = {}, ""
    if probes:
        # one untimed call first: a program's first call after compiling carries one-time costs (LeNetSmall on 8 x 8
        # digits, batch 4: 89 ms for a candidate whose next calls took 1.6 ms)
        probe_times = measure({name: build() for name, build in probes.items()}, timer=timer or clock, repeats=1,
                              warmup=True, prune=float("inf"))
        fastest = min(probe_times.values())
        candidates = {k: b for k, b in candidates.items() if probe_times.get(k, fastest) <= PROBE_PRUNE * fastest}
        extra["probe_ms"] = {k: round(v * 1e3, 4) for k, v in probe_times.items()}
        probed = f"probes {_ms(extra['probe_ms'])}; "
    if len(candidates) == 1:  # the probes left one: nothing to compare at the real batch
        name, ms = next(iter(candidates)), {}
    else:
        fns = {name: build() for name, build in candidates.items()}  # each compiled here
        times = measure(fns, timer=timer or clock, repeats=repeats, warmup=False)
        name = choose(times)
        ms = {k: round(v * 1e3, 4) for k, v in times.items()}
    written = store_choice(key, {"choice": name, "ms": ms, **extra, "key": readable}, path)
    report(f"{what}: lowering {name} (measured on {readable['device_kind'] or readable['platform']}: {probed}"
           f"{_ms(ms) or 'one candidate left'}; cached in {written})")
    return {"choice": name, "by": "measurement", "ms": ms, **extra}


def _ms(ms: dict) -> str:
    return ", ".join(f"{k} {v:.3g} ms" for k, v in ms.items())


def _conv_count(jaxpr) -> int:
    """How many ``conv_general_dilated`` a (closed) jaxpr calls, the jaxprs inside it included."""
    inner = getattr(jaxpr, "jaxpr", jaxpr)
    count = 0
    for eqn in inner.eqns:
        count += eqn.primitive.name == "conv_general_dilated"
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else (value,):
                if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
                    count += _conv_count(sub)
    return count


def conv_count(problem) -> int:
    """How many convolutions (``conv_general_dilated``) the problem's network computes in training: traced, not
    run. A lowering choice matters only where the im2col variant has fewer than the XLA one (a model that names
    its own convolution function keeps it under either)."""
    X = jax.ShapeDtypeStruct((min(problem.batch_size, problem.data_x.shape[1]),) + tuple(problem.data_x.shape[2:]),
                             problem.data_x.dtype)
    state = problem.model_state

    def fwd(x, X):
        return problem.model(x, X, state=state, key=jax.random.key(0), train=True)[0]

    return _conv_count(jax.make_jaxpr(fwd)(problem.x0, X))


def gradient_runner(problem) -> Callable[[], None]:
    """A zero-argument function that runs the problem's stacked stochastic gradients for :data:`SCAN_STEPS` steps of
    a compiled ``lax.scan`` (each step moves the models a little, so no step is hoisted) and blocks; compiled before
    it returns."""
    n = problem.n
    X0 = jnp.tile(problem.x0, (n, 1))

    def run(X, key):
        def body(X, t):
            G, _ = problem.stochastic_grads(jax.random.fold_in(key, t), X)
            return X - 1e-3 * G, None

        return jax.lax.scan(body, X, jnp.arange(SCAN_STEPS))[0]

    key = jax.random.key(0)
    compiled = jax.jit(run).lower(X0, key).compile()  # compiled now: the timed calls only run
    return lambda: jax.block_until_ready(compiled(X0, key))


def _conv_of(problem) -> str | None:
    """The convolution lowering a network problem's model uses (``"im2col"`` / ``"xla"``; None: not a zoo model)."""
    net = problem.model
    module_conv = getattr(getattr(net, "module", None), "conv", None)
    conv = module_conv if module_conv in ("im2col", "xla") else getattr(net, "conv", None)
    if module_conv == "auto":
        from jaxgossip.models.conv import resolve as conv_resolve

        conv = conv_resolve("auto")
    return conv


def chosen(problem, how: str):
    """``problem`` marked with how its lowering was chosen (``"measurement"``, ``"cache"``, ``"platform"``) and what
    it is (its ``lowering_choice``, read by :func:`lowering_record`)."""
    return problem.replace(lowering_choice=(how, _conv_of(problem), problem.worker_map))


def lowering_record(problem) -> dict | None:
    """``Result.config["model"]["lowering"]``: the convolution lowering and worker map a network problem uses, and how
    they were chosen: ``"measurement"`` (an ``"auto"`` timed on this device, now or by an earlier process: the cached
    choice), ``"platform"`` (an ``"auto"`` that took the platform rule: ``JAXGOSSIP_LOWERING=platform``) or
    ``"given"`` (as built, or changed since: ``problem.replace(worker_map=...)``). The milliseconds measured are not
    part of it (a checkpoint compares the record when a run resumes); ``JAXGOSSIP_VERBOSE=1`` reports them, and the
    cache file keeps them. None for a problem that is not a network."""
    if not getattr(problem, "net", False):
        return None
    conv = _conv_of(problem)
    record = {"conv": conv, "worker_map": problem.worker_map, "by": "given"}
    choice = getattr(problem, "lowering_choice", None)
    if choice is not None and tuple(choice[1:]) == (conv, problem.worker_map):
        record["by"] = "measurement" if choice[0] in ("measurement", "cache") else choice[0]
    return record
