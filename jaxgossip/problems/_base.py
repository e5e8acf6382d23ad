"""The problem record: per-worker data stacked along the worker axis, a loss, and a gradient oracle for the stack.

Each worker i holds ``counts[i]`` samples, padded to the largest share ``m``: ``data_x`` is (n, m, ...) (any sample
shape: features, (H, W, C) images, (L, C) sequences) and ``data_y`` (n, m, ...). The global objective is the average
of the local objectives plus an L2 term,

    f(x) = (1/n) sum_i f_i(x) + (reg / 2) ||x||^2,   f_i(x) = (1 / counts_i) sum_{s < counts_i} loss(x; sample s of i),

which is what decentralized SGD minimizes (Tang et al. 2018, eq. 1; Lian et al. 2017). Parameters are one flat
d-vector per worker (a :class:`~jaxgossip.problems.layout.Layout` at the model boundary), so algorithms and
compressors see an (n, d) stack.

Networks (``jg.problems.from_flax`` / ``from_function``) may carry per-worker *model state* (BatchNorm statistics) and
use randomness (dropout, augmentation). Both are handled here, in the oracle, so no algorithm knows about them:

* worker i's model key at step key k is ``fold_in(fold_in(k, 2), i)``, its augmentation key
  ``fold_in(fold_in(k, 3), i)`` (the same on any device layout);
* the simulator binds the stacked (n, ...) model state to the problem for each step (``worker_state``) and collects
  the state the oracle computed from each worker's own batch (see :class:`StateSlot`); it is not communicated unless
  the problem says ``share_model_state``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jaxgossip import _pytree as struct

from jaxgossip.compressors._base import worker_keys

__all__ = ["Problem", "ProblemSpec", "StateSlot", "METRICS", "MODEL_KEY_TAG", "AUGMENT_KEY_TAG"]

MODEL_KEY_TAG = 2  # worker i's model key: fold_in(fold_in(step key, 2), i)
AUGMENT_KEY_TAG = 3  # worker i's augmentation key: fold_in(fold_in(step key, 3), i)

#: Metric names ``simulate(metrics=...)`` may ask for (each only where the problem has it).
METRICS = ("loss", "grad_norm_sq", "consensus", "test_loss", "accuracy", "worker_accuracy", "suboptimality",
           "dist_to_opt", "worker_loss")
#: Metrics with one value per worker: an evaluation gives an (n,) array, a run an (evaluations, n) array. Asked for
#: by name only (``metrics=["worker_loss", "worker_accuracy"]``); by default a classifier reports the mean and the
#: minimum of ``worker_accuracy`` (``worker_accuracy_mean``, ``worker_accuracy_min``) and no per-worker array.
PER_WORKER = ("worker_accuracy", "worker_loss")
#: The metrics evaluated when none are named (every one the problem has, except ``worker_loss``: n objectives).
DEFAULT_METRICS = tuple(m for m in METRICS if m != "worker_loss")


class ProblemSpec:
    """How a problem was built: the builder's name and every argument it was called with, as JSON values
    (:func:`jaxgossip._record.jsonable`: data arrays and parameters as digests, callables described with their
    numbers). ``Result.config["problem_spec"]`` is this record, and a checkpoint compares it when a run resumes.

    A static field of :class:`Problem` that never splits a compiled program: every spec equals every other (the data
    and shapes it produced are the problem's leaves and other static fields, which do), so problems built with other
    seeds share one compiled program as before. Read it with :meth:`record`.
    """

    __slots__ = ("_json",)

    def __init__(self, builder: str, arguments: dict):
        import json

        from jaxgossip._record import jsonable

        self._json = json.dumps({"builder": builder, **jsonable(dict(arguments))}, sort_keys=False)

    def record(self) -> dict:
        """The builder and its arguments (a fresh dict of JSON values)."""
        import json

        return json.loads(self._json)

    def __eq__(self, other):
        return isinstance(other, ProblemSpec)

    def __hash__(self):
        return hash(ProblemSpec)

    def __repr__(self) -> str:
        return f"ProblemSpec({self.record()['builder']})"


class StateSlot:
    """Where the oracle leaves the model state it computed during one traced step (the simulator reads it back).

    One slot lives for one trace of one step; the oracle must be called at the step's own trace level (not inside a
    ``lax.cond`` or an inner ``vmap``), which every synchronous algorithm does. Asynchronous algorithms, which update
    one worker inside a branch, refuse models with state (``simulate`` says so before compiling).
    """

    def __init__(self):
        self.value = None

    def put(self, value):
        self.value = value


@struct.dataclass
class Problem:
    """A distributed optimization problem.

    Attributes:
      data_x, data_y, counts: per-worker samples, (n, m, ...), (n, m, ...), (n,).
      test_x, test_y: held-out samples (may have zero rows).
      x0: (d,) initial parameters, shared by every worker.
      reg: L2 coefficient (traced).
      x_star, f_star: the optimum and its value where known (else None).
      model: static callable. ``model(x, X) -> outputs`` (per-sample outputs for a batch), or, when ``net`` is True,
        ``model(x, X, state=..., key=..., train=...) -> (outputs, new_state)``.
      loss: static callable ``loss(outputs, y) -> per-sample losses``.
      batch_size: static per-worker batch size b (the largest share m when ``full_batch``).
      grad_noise: static std of Gaussian noise added to every stochastic gradient (0 by default: no normals drawn).
      name: static description.
      classification: static; True when ``accuracy`` makes sense.
      L, mu: static smoothness / strong convexity constants where known (else None).
      model_state: one model's initial mutable state (a pytree, e.g. ``{"batch_stats": ...}``) or None.
      worker_state: the (n, ...) stacked model state bound by the simulator during a step, else None.
      net: static; True when ``model`` follows the network protocol above (state, key, train).
      stochastic_model: static; True when the model uses its key in training (dropout): keys are then drawn.
      augment: static ``augment(key, batch) -> batch`` applied to each worker's training batch, or None.
      layout: static :class:`~jaxgossip.problems.layout.Layout` of the parameters (None: one flat vector).
      full_batch: static; every gradient is the exact gradient of the worker's whole share (``batch_size="full"``).
      eval_batch: static; evaluate the training objective and the test set in chunks of this many samples (bounded
        memory), or None for one pass.
      share_model_state: static; average the model state with the models (gossip or AllReduce) after every step.
      worker_map: static; ``"vmap"`` (default) or ``"map"`` (``lax.map``: one worker's program at a time) for the
        per-worker gradients of a network.
      metrics: static tuple of metric names to evaluate (None: every metric the problem has, as before).
      lowering_choice: static ``(how, conv, worker_map)``: how a network builder chose this problem's lowering
        (``"measurement"``, ``"cache"`` or ``"platform"``) and what it chose; ``None`` when given
        (:func:`jaxgossip.lowering.lowering_record` reads it, and ignores it once ``conv`` or ``worker_map`` changed).
      spec: static :class:`ProblemSpec`: the builder and its arguments (recorded in a run's config), or None for a
        Problem built by hand (its data digests are still recorded).
    """

    data_x: jax.Array
    data_y: jax.Array
    counts: jax.Array
    test_x: jax.Array
    test_y: jax.Array
    x0: jax.Array
    reg: jax.Array
    x_star: jax.Array | None
    f_star: jax.Array | None
    model: Callable = struct.field(pytree_node=False)
    loss: Callable = struct.field(pytree_node=False)
    batch_size: int = struct.field(pytree_node=False)
    grad_noise: float = struct.field(pytree_node=False, default=0.0)
    name: str = struct.field(pytree_node=False, default="problem")
    classification: bool = struct.field(pytree_node=False, default=False)
    L: float | None = struct.field(pytree_node=False, default=None)
    mu: float | None = struct.field(pytree_node=False, default=None)
    model_state: Any = None
    worker_state: Any = None
    net: bool = struct.field(pytree_node=False, default=False)
    stochastic_model: bool = struct.field(pytree_node=False, default=False)
    augment: Callable | None = struct.field(pytree_node=False, default=None)
    layout: Any = struct.field(pytree_node=False, default=None)
    full_batch: bool = struct.field(pytree_node=False, default=False)
    eval_batch: int | None = struct.field(pytree_node=False, default=None)
    share_model_state: bool = struct.field(pytree_node=False, default=False)
    worker_map: str = struct.field(pytree_node=False, default="vmap")
    metrics: tuple | None = struct.field(pytree_node=False, default=None)
    slot: Any = struct.field(pytree_node=False, default=None)
    spec: ProblemSpec | None = struct.field(pytree_node=False, default=None)
    lowering_choice: tuple | None = struct.field(pytree_node=False, default=None)

    @property
    def n(self) -> int:
        return self.data_x.shape[0]

    @property
    def d(self) -> int:
        return self.x0.shape[0]

    @property
    def has_model_state(self) -> bool:
        return bool(jax.tree.leaves(self.model_state))

    @property
    def sample_shape(self) -> tuple:
        return tuple(self.data_x.shape[2:])

    # ---- the model ----------------------------------------------------------------------------------------------------
    def apply(self, x, X, state=None, key=None, train=False):
        """Outputs of the model x (d,) on a batch X, and its new state: ``(outputs, state)``."""
        if not self.net:
            return self.model(x, X), state
        return self.model(x, X, state=state, key=key, train=train)

    def stacked_state(self, n: int | None = None):
        """The (n, ...) model state: the bound one during a run, else the initial state on every worker."""
        if self.worker_state is not None or not self.has_model_state:
            return self.worker_state
        n = self.n if n is None else n
        return jax.tree.map(lambda a: jnp.broadcast_to(a, (n,) + jnp.shape(a)), self.model_state)

    def eval_state(self):
        """The model state used to evaluate the average model: the workers' states averaged (floating leaves; other
        leaves from worker 0), or the initial state outside a run. Averaging the running statistics goes with
        averaging the models, costs nothing and is deterministic; recomputing them on training batches would cost a
        pass over the data at every evaluation."""
        if not self.has_model_state:
            return None
        if self.worker_state is None:
            return self.model_state
        return jax.tree.map(lambda a: a.mean(0).astype(a.dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a[0],
                            self.worker_state)

    # ---- one worker -------------------------------------------------------------------------------------------------
    def masked_loss(self, x, xb, yb, mask):
        """Mean loss over the samples where ``mask`` is 1 (0 if none), plus the L2 term when any sample counts
        (evaluation mode for networks)."""
        per = self.loss(self.apply(x, xb, self.eval_state())[0], yb) if self.net else self.loss(self.model(x, xb), yb)
        used = mask.sum()
        data = jnp.sum(per * mask) / jnp.maximum(used, 1.0)
        return data + (used > 0) * 0.5 * self.reg * jnp.vdot(x, x)

    def _sample_indices(self, key, n, batch, sizes, replace):
        """(n, batch) sample indices and (n, batch) masks of the samples that count."""
        m = self.data_x.shape[1]
        counts = self.counts
        if self.full_batch and sizes is None:  # every sample, in storage order
            idx = jnp.broadcast_to(jnp.arange(batch), (n, batch))
            limit = counts
        elif replace and not self.full_batch:
            U = jax.random.uniform(key, (n, batch))
            idx = jnp.minimum(jnp.floor(U * counts[:, None]).astype(jnp.int32), counts[:, None] - 1)
            limit = jnp.full((n,), batch) if sizes is None else sizes
        else:  # the first `batch` of a uniformly random order of each worker's own samples (a full batch cut to
            # `sizes` samples, QuanTimed-DSGD's deadline: a random subset, Reisizadeh et al. 2019, Sec. 3, not always
            # the first samples in storage order)
            U = jax.random.uniform(key, (n, m))
            U = jnp.where(jnp.arange(m)[None, :] < counts[:, None], U, 2.0)
            idx = jnp.argsort(U, axis=1)[:, :batch].astype(jnp.int32)
            limit = counts if sizes is None else jnp.minimum(sizes, counts)
        mask = jnp.arange(batch)[None, :] < limit[:, None]
        return idx, mask

    def _worker_grad(self, x, xs, ys, count, u, size):
        """One worker's minibatch gradient (no noise): samples ``floor(u_b * count)`` for its B uniforms u."""
        B = self.batch_size
        idx = jnp.minimum(jnp.floor(u * count).astype(jnp.int32), count - 1)
        mask = (jnp.arange(B) < size).astype(x.dtype)
        loss, g = jax.value_and_grad(self.masked_loss)(x, xs[idx], ys[idx], mask)
        return g, loss

    def _net_worker_grad(self, x, xs, ys, idx, mask, state, mkey, akey):
        """One worker's gradient through a network in training mode: its own batch, state and keys."""
        xb, yb = xs[idx], ys[idx]
        if self.augment is not None:
            xb = self.augment(akey, xb)
        mask = mask.astype(x.dtype)

        def objective(x):
            out, new_state = self.apply(x, xb, state, mkey, True)
            used = mask.sum()
            data = jnp.sum(self.loss(out, yb) * mask) / jnp.maximum(used, 1.0)
            return data + (used > 0) * 0.5 * self.reg * jnp.vdot(x, x), new_state

        (loss, new_state), g = jax.value_and_grad(objective, has_aux=True)(x)
        if state is not None:  # a worker that used no sample keeps its state
            new_state = jax.tree.map(lambda a, b: jnp.where(mask.sum() > 0, a, b), new_state, state)
        return g, loss, new_state

    # ---- the stack -------------------------------------------------------------------------------------------------
    def stochastic_grads(self, key, X, sizes=None, *, replace=True, batch=None):
        """Stochastic gradients of every worker at its own model.

        Worker i draws ``batch_size`` sample indices uniformly (with replacement) from its share: row i of
        ``uniform(key, (n, batch_size))`` (one Threefry hash per draw, the same numbers on any device layout). It
        averages the gradients of the first ``sizes[i]`` of them (all when ``sizes`` is None; zero samples give a
        zero gradient, as QuanTimed-DSGD's eq. 6 needs). Gaussian noise of std ``grad_noise``, if any, is drawn with
        worker key ``fold_in(fold_in(key, 1), i)``. With ``full_batch`` every worker uses its whole share once (the
        exact local gradient; ``sizes`` then keeps a uniformly random subset of ``sizes[i]`` samples, drawn anew at every
        step).

        Args:
          key: the step's key.
          X: (n, d) models.
          sizes: optional (n,) integer sample counts.
          replace: False draws without replacement: the first ``batch`` samples of a random order of the worker's
            share (Reisizadeh et al. 2019, eq. 6: a subset of the m local samples), counts capped at the share.
          batch: static number of sample slots (default ``batch_size``); with ``replace=False`` at most the largest
            share.

        Returns:
          G (n, d) gradients and (n,) minibatch losses.
        """
        n = X.shape[0]
        m = self.data_x.shape[1]
        B = self.batch_size if batch is None else int(batch)
        if not replace or self.full_batch:
            B = min(B, m)
        if not self.net and not self.full_batch and replace and B == self.batch_size:
            if sizes is None:  # the original path: its numbers are unchanged
                sizes = jnp.full((n,), self.batch_size)
            U = jax.random.uniform(key, (n, self.batch_size))
            G, losses = jax.vmap(self._worker_grad)(X, self.data_x, self.data_y, self.counts, U, sizes)
        else:
            idx, mask = self._sample_indices(key, n, B, sizes, replace)
            G, losses = self._grads_from(key, X, idx, mask)
        if not self.grad_noise:  # static: a noiseless problem draws no normals and runs no branch
            return G, losses
        used = (jnp.full((n,), 1) if sizes is None else sizes) > 0
        noise = jax.vmap(lambda k: jax.random.normal(k, G.shape[1:], G.dtype))(worker_keys(jax.random.fold_in(key, 1), n))
        return G + used[:, None] * self.grad_noise * noise, losses

    def _grads_from(self, key, X, idx, mask):
        """Gradients of every worker on its samples ``idx`` where ``mask`` (the general path: networks, full batches,
        sampling without replacement)."""
        n = X.shape[0]
        if not self.net:
            def one(x, xs, ys, i, mk):
                loss, g = jax.value_and_grad(self.masked_loss)(x, xs[i], ys[i], mk.astype(x.dtype))
                return g, loss

            return jax.vmap(one)(X, self.data_x, self.data_y, idx, mask)
        state = self.stacked_state(n)
        mkeys = worker_keys(jax.random.fold_in(key, MODEL_KEY_TAG), n) if self.stochastic_model else None
        akeys = worker_keys(jax.random.fold_in(key, AUGMENT_KEY_TAG), n) if self.augment is not None else None
        args = (X, self.data_x, self.data_y, idx, mask, state, mkeys, akeys)
        if self.worker_map == "map":
            G, losses, new_state = jax.lax.map(lambda a: self._net_worker_grad(*a), args)
        else:
            G, losses, new_state = jax.vmap(self._net_worker_grad)(*args)
        if self.slot is not None and state is not None:
            self.slot.put(new_state)
        return G, losses

    def worker_grad(self, key, i, x, size=None):
        """Worker i's stochastic gradient at its model x (d,): row i of ``stochastic_grads(key, X)`` when X[i] = x.

        Costs one worker's batch instead of the whole stack's (asynchronous algorithms update one worker per event).
        Models with state are refused before a run starts (see :class:`StateSlot`).
        """
        size = self.batch_size if size is None else size
        if self.net or self.full_batch:
            n = self.n
            idx, mask = self._sample_indices(key, n, self.batch_size, jnp.full((n,), size), True)
            mkey = jax.random.fold_in(jax.random.fold_in(key, MODEL_KEY_TAG), i) if self.stochastic_model else None
            akey = jax.random.fold_in(jax.random.fold_in(key, AUGMENT_KEY_TAG), i) if self.augment is not None else None
            if self.net:
                g, _, _ = self._net_worker_grad(x, self.data_x[i], self.data_y[i], idx[i], mask[i], None, mkey, akey)
            else:
                _, g = jax.value_and_grad(self.masked_loss)(x, self.data_x[i][idx[i]], self.data_y[i][idx[i]],
                                                             mask[i].astype(x.dtype))
        else:
            u = jax.random.uniform(key, (self.n, self.batch_size))[i]
            g, _ = self._worker_grad(x, self.data_x[i], self.data_y[i], self.counts[i], u, size)
        if not self.grad_noise:
            return g
        noise = jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, 1), i), g.shape, g.dtype)
        return g + (size > 0) * self.grad_noise * noise

    def local_objectives(self, X):
        """f_i(x_i) for every worker, on its whole share, (n,)."""
        m = self.data_x.shape[1]
        masks = (jnp.arange(m)[None, :] < self.counts[:, None]).astype(X.dtype)
        return jax.vmap(self.masked_loss)(X, self.data_x, self.data_y, masks)

    def full_grads(self, X):
        """Exact local gradients grad f_i(x_i) on each worker's whole share, (n, d) (evaluation mode)."""
        m = self.data_x.shape[1]
        masks = (jnp.arange(m)[None, :] < self.counts[:, None]).astype(X.dtype)
        return jax.vmap(jax.grad(self.masked_loss))(X, self.data_x, self.data_y, masks)

    def objective(self, x):
        """The global objective f(x) at one model x (d,)."""
        if self.eval_batch is not None:
            return self._chunked_objective(x, with_grad=False)[0]
        return jnp.mean(self.local_objectives(jnp.broadcast_to(x, (self.n, self.d))))

    # ---- evaluation in bounded memory ----------------------------------------------------------------------------------
    def _train_weights(self):
        """Every training sample's weight in f (1 / (n counts_i), 0 for padding), flattened with the samples."""
        m = self.data_x.shape[1]
        w = (jnp.arange(m)[None, :] < self.counts[:, None]) / (self.counts[:, None] * self.n)
        return w.reshape(-1).astype(self.x0.dtype)

    def _chunked_objective(self, x, with_grad):
        """f(x) (and its gradient) as a scan over chunks of ``eval_batch`` training samples."""
        Xf = self.data_x.reshape((-1,) + self.data_x.shape[2:])
        yf = self.data_y.reshape((-1,) + self.data_y.shape[2:])
        w = self._train_weights()
        state = self.eval_state()

        def chunk_loss(x, xb, yb, wb):
            return jnp.sum(self.loss(self.apply(x, xb, state)[0], yb) * wb)

        def body(acc, chunk):
            if with_grad:
                v, g = jax.value_and_grad(chunk_loss)(x, *chunk)
                return (acc[0] + v, acc[1] + g), None
            return (acc[0] + chunk_loss(x, *chunk), acc[1]), None

        zero = (jnp.zeros((), x.dtype), jnp.zeros_like(x) if with_grad else jnp.zeros((), x.dtype))
        (total, grad), _ = jax.lax.scan(body, zero, _chunks((Xf, yf, w), self.eval_batch))
        reg = 0.5 * self.reg * jnp.vdot(x, x)
        return total + reg, (grad + self.reg * x if with_grad else None)

    def _test_outputs_reduce(self, x, fn):
        """Sum over test chunks of ``fn(outputs, y, valid) -> dict of scalars`` at model x (bounded memory)."""
        state = self.eval_state()
        N = self.test_x.shape[0]
        size = N if self.eval_batch is None else min(self.eval_batch, N)
        xs, ys, vs = _chunks((self.test_x, self.test_y, jnp.ones((N,), self.x0.dtype)), size)

        def part(xb, yb, vb):
            return fn(self.apply(x, xb, state)[0], yb, vb)

        def body(acc, chunk):
            return jax.tree.map(jnp.add, acc, part(*chunk)), None

        first = part(xs[0], ys[0], vs[0])
        return jax.lax.scan(body, first, (xs[1:], ys[1:], vs[1:]))[0] if xs.shape[0] > 1 else first

    def _test_metrics(self, x):
        N = self.test_x.shape[0]

        def fn(out, y, v):
            res = {"test_loss": jnp.sum(self.loss(out, y) * v)}
            if self.classification:
                res["accuracy"] = jnp.sum(_correct(out, y) * v)
            return res

        return {k: v / N for k, v in self._test_outputs_reduce(x, fn).items()}

    def evaluate(self, X):
        """Metrics of a stack: at the average model, plus the consensus distance (``metrics`` picks which).

        A model with state (BatchNorm statistics) is evaluated with the bound per-worker state (``worker_state``,
        averaged over the workers as during a run). Without one it refuses: the initial statistics would give other
        numbers than the run reported. After a run use ``res.evaluate(problem)`` (the run's final models and model
        state); ``problem.replace(worker_state=states).evaluate(X)`` binds any (n, ...) state.

        Raises:
          ValueError: for a model with state and no ``worker_state`` bound.
        """
        if self.has_model_state and self.worker_state is None:
            raise ValueError(
                f"Problem.evaluate: {self.name} has model state (BatchNorm statistics) and none is bound; the initial "
                "statistics would give other numbers than the run reported. After a run use res.evaluate(problem) "
                "(the run's final models and model state), or bind a state: problem.replace(worker_state="
                "res.model_state).evaluate(X) (problem.replace(worker_state=problem.stacked_state()) for the "
                "initial statistics).")
        want = ("loss",) + tuple(self.metrics) if self.metrics else DEFAULT_METRICS  # loss always: divergence reads it
        xbar = X.mean(axis=0)
        out = {}
        if "loss" in want or "grad_norm_sq" in want or "suboptimality" in want:
            if "grad_norm_sq" in want:
                if self.eval_batch is not None:
                    loss, g = self._chunked_objective(xbar, with_grad=True)
                else:
                    loss, g = jax.value_and_grad(self.objective)(xbar)
                out["grad_norm_sq"] = jnp.vdot(g, g)
            else:
                loss = self.objective(xbar)
            out["loss"] = loss
        if "consensus" in want:
            out["consensus"] = jnp.mean(jnp.sum((X - xbar) ** 2, axis=1))
        if self.test_x.shape[0] > 0 and ("test_loss" in want or "accuracy" in want):
            if self.eval_batch is None and not self.net:
                preds = self.model(xbar, self.test_x)
                tm = {"test_loss": jnp.mean(self.loss(preds, self.test_y))}
                if self.classification:
                    tm["accuracy"] = _accuracy(preds, self.test_y)
            else:
                tm = self._test_metrics(xbar)
            out.update({k: v for k, v in tm.items() if k in want})
        if self.test_x.shape[0] > 0 and self.classification and "worker_accuracy" in want:
            acc = self.worker_accuracies(X)
            out["worker_accuracy_mean"], out["worker_accuracy_min"] = acc.mean(), acc.min()
            if self.metrics and "worker_accuracy" in self.metrics:  # the (n,) array only when asked for by name
                out["worker_accuracy"] = acc
        if "worker_loss" in want:
            out["worker_loss"] = self.worker_losses(X)
        if self.f_star is not None and "suboptimality" in want:
            out["suboptimality"] = out["loss"] - self.f_star
        if self.x_star is not None and "dist_to_opt" in want:
            out["dist_to_opt"] = jnp.sqrt(jnp.sum((xbar - self.x_star) ** 2))
        return out

    def worker_losses(self, X):
        """(n,) the global training objective at each worker's own model, f(x_i) = (1/n) sum_j f_j(x_i) (the L2 term
        included; a network with its own model state, as :meth:`worker_accuracies`): the ``worker_loss`` metric. Its
        mean over workers is at least ``loss`` = f(xbar) for a convex f (Jensen), and equals it at consensus. Costs n
        evaluations of the objective."""
        states = self.stacked_state(X.shape[0])

        def one(x, state):  # worker i's own state, bound as a stack of one (its "average" is itself)
            problem = self.replace(worker_state=jax.tree.map(lambda a: a[None], state)) if state is not None else self
            return problem.objective(x)

        return jax.vmap(one)(X, states)

    def worker_accuracies(self, X):
        """(n,) test accuracy of each worker's own model (with its own model state), as decentralized papers report."""
        N = self.test_x.shape[0]
        states = self.stacked_state(X.shape[0])

        def one(x, state):  # worker i's own state, bound as a stack of one (its "average" is itself)
            problem = self.replace(worker_state=jax.tree.map(lambda a: a[None], state)) if state is not None else self
            return problem._test_outputs_reduce(x, lambda out, y, v: jnp.sum(_correct(out, y) * v)) / N

        return jax.vmap(one)(X, states)

    def __repr__(self) -> str:
        return f"Problem({self.name}, n={self.n}, d={self.d}, batch_size={'full' if self.full_batch else self.batch_size})"


def _chunks(arrays, size):
    """Leading-axis arrays cut into (k, size, ...) chunks, the last padded with zeros (their weights are 0)."""
    N = arrays[0].shape[0]
    size = max(1, min(int(size), N))
    k = -(-N // size)
    pad = k * size - N

    def cut(a):
        a = jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)]) if pad else a
        return a.reshape((k, size) + a.shape[1:])

    return tuple(cut(a) for a in arrays)


def _correct(preds, y):
    if preds.ndim == 1 or preds.shape[-1] == 1:
        labels = (preds.reshape(preds.shape[0]) > 0).astype(y.dtype)
    else:
        labels = jnp.argmax(preds, axis=-1).astype(y.dtype)
    return (labels == y.reshape(labels.shape)).astype(jnp.float32)


def _accuracy(preds, y):
    return jnp.mean(_correct(preds, y))
