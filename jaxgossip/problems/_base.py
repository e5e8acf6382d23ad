"""The problem record: per-worker data stacked along the worker axis, a loss, and a gradient oracle for the stack.

Each worker i holds ``counts[i]`` samples, padded to the largest share ``m``: ``data_x`` is (n, m, ...) and ``data_y``
(n, m). The global objective is the average of the local objectives plus an L2 term,

    f(x) = (1/n) sum_i f_i(x) + (reg / 2) ||x||^2,   f_i(x) = (1 / counts_i) sum_{s < counts_i} loss(x; sample s of i),

which is what decentralized SGD minimizes (Tang et al. 2018, eq. 1; Lian et al. 2017). Parameters are one flat
d-vector per worker (``ravel_pytree`` at the model boundary), so algorithms and compressors see an (n, d) stack.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jaxgossip import _pytree as struct

from jaxgossip.compressors._base import worker_keys

__all__ = ["Problem"]


@struct.dataclass
class Problem:
    """A distributed optimization problem.

    Attributes:
      data_x, data_y, counts: per-worker samples, (n, m, ...), (n, m), (n,).
      test_x, test_y: held-out samples (may have zero rows).
      x0: (d,) initial parameters, shared by every worker.
      reg: L2 coefficient (traced).
      grad_noise: static std of Gaussian noise added to every stochastic gradient (0 by default: no normals drawn).
      x_star, f_star: the optimum and its value where known (else None).
      model: static callable ``model(x, X) -> outputs`` (per-sample predictions for a batch).
      loss: static callable ``loss(outputs, y) -> per-sample losses``.
      batch_size: static per-worker batch size b.
      name: static description.
      classification: static; True when ``accuracy`` makes sense.
      L, mu: static smoothness / strong convexity constants where known (else None).
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

    @property
    def n(self) -> int:
        return self.data_x.shape[0]

    @property
    def d(self) -> int:
        return self.x0.shape[0]

    # ---- one worker -------------------------------------------------------------------------------------------------
    def masked_loss(self, x, xb, yb, mask):
        """Mean loss over the samples where ``mask`` is 1 (0 if none), plus the L2 term when any sample counts."""
        per = self.loss(self.model(x, xb), yb)
        used = mask.sum()
        data = jnp.sum(per * mask) / jnp.maximum(used, 1.0)
        return data + (used > 0) * 0.5 * self.reg * jnp.vdot(x, x)

    def _worker_grad(self, x, xs, ys, count, u, size):
        """One worker's minibatch gradient (no noise): samples ``floor(u_b * count)`` for its B uniforms u."""
        B = self.batch_size
        idx = jnp.minimum(jnp.floor(u * count).astype(jnp.int32), count - 1)
        mask = (jnp.arange(B) < size).astype(x.dtype)
        loss, g = jax.value_and_grad(self.masked_loss)(x, xs[idx], ys[idx], mask)
        return g, loss

    # ---- the stack -------------------------------------------------------------------------------------------------
    def stochastic_grads(self, key, X, sizes=None):
        """Stochastic gradients of every worker at its own model.

        Worker i draws ``batch_size`` sample indices uniformly (with replacement) from its share: row i of
        ``uniform(key, (n, batch_size))`` (one Threefry hash per draw, the same numbers on any device layout). It
        averages the gradients of the first ``sizes[i]`` of them (all when ``sizes`` is None; zero samples give a
        zero gradient, as QuanTimed-DSGD's eq. 6 needs). Gaussian noise of std ``grad_noise``, if any, is drawn with
        worker key ``fold_in(fold_in(key, 1), i)``.

        Args:
          key: the step's key.
          X: (n, d) models.
          sizes: optional (n,) integer sample counts, each <= batch_size.

        Returns:
          G (n, d) gradients and (n,) minibatch losses.
        """
        n = X.shape[0]
        if sizes is None:
            sizes = jnp.full((n,), self.batch_size)
        U = jax.random.uniform(key, (n, self.batch_size))
        G, losses = jax.vmap(self._worker_grad)(X, self.data_x, self.data_y, self.counts, U, sizes)
        if not self.grad_noise:  # static: a noiseless problem draws no normals and runs no branch
            return G, losses
        noise = jax.vmap(lambda k: jax.random.normal(k, G.shape[1:], G.dtype))(worker_keys(jax.random.fold_in(key, 1), n))
        return G + (sizes > 0)[:, None] * self.grad_noise * noise, losses

    def worker_grad(self, key, i, x, size=None):
        """Worker i's stochastic gradient at its model x (d,): row i of ``stochastic_grads(key, X)`` when X[i] = x.

        Costs one worker's batch instead of the whole stack's (asynchronous algorithms update one worker per event).
        """
        size = self.batch_size if size is None else size
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
        """Exact local gradients grad f_i(x_i) on each worker's whole share, (n, d)."""
        m = self.data_x.shape[1]
        masks = (jnp.arange(m)[None, :] < self.counts[:, None]).astype(X.dtype)
        return jax.vmap(jax.grad(self.masked_loss))(X, self.data_x, self.data_y, masks)

    def objective(self, x):
        """The global objective f(x) at one model x (d,)."""
        return jnp.mean(self.local_objectives(jnp.broadcast_to(x, (self.n, self.d))))

    def evaluate(self, X):
        """Metrics of a stack: at the average model, plus the consensus distance."""
        xbar = X.mean(axis=0)
        loss, g = jax.value_and_grad(self.objective)(xbar)
        out = {
            "loss": loss,
            "grad_norm_sq": jnp.vdot(g, g),
            "consensus": jnp.mean(jnp.sum((X - xbar) ** 2, axis=1)),
        }
        if self.test_x.shape[0] > 0:
            preds = self.model(xbar, self.test_x)
            out["test_loss"] = jnp.mean(self.loss(preds, self.test_y))
            if self.classification:
                out["accuracy"] = _accuracy(preds, self.test_y)
        if self.f_star is not None:
            out["suboptimality"] = loss - self.f_star
        if self.x_star is not None:
            out["dist_to_opt"] = jnp.sqrt(jnp.sum((xbar - self.x_star) ** 2))
        return out

    def __repr__(self) -> str:
        return f"Problem({self.name}, n={self.n}, d={self.d}, batch_size={self.batch_size})"


def _accuracy(preds, y):
    if preds.ndim == 1 or preds.shape[-1] == 1:
        labels = (preds.reshape(-1) > 0).astype(y.dtype)
    else:
        labels = jnp.argmax(preds, axis=-1).astype(y.dtype)
    return jnp.mean((labels == y).astype(jnp.float32))
