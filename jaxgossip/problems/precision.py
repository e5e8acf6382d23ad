"""A float64 copy of a problem, for accuracies below float32's (``||x - x*|| <= 1e-8``).

``jg.problems`` builds float32 problems and stores the optimum in float32, which cannot measure a distance of 1e-8.
:func:`as_float64` casts every floating array to float64 and refines the optimum with Newton steps in float64 on the
stored data, so ``dist_to_opt`` is exact to ~1e-14. Call it, and run the simulation, with float64 enabled
(``with jax.enable_x64(True): ...``); otherwise JAX silently keeps float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["as_float64"]


def _cast(a):
    if a is None or not jnp.issubdtype(a.dtype, jnp.floating):
        return a
    return jnp.asarray(a, jnp.float64)


def as_float64(problem, newton_steps: int = 8, max_dim: int = 4000):
    """The problem with float64 data, parameters and optimum (refined by Newton's method when it has one).

    Args:
      problem: a :class:`jaxgossip.problems.Problem`.
      newton_steps: Newton iterations from the stored optimum (convex problems only; d <= ``max_dim``).
      max_dim: skip the refinement above this dimension (a d x d Hessian).

    Raises:
      ValueError: when float64 is not enabled.
    """
    if not jax.config.jax_enable_x64:
        raise ValueError("as_float64: enable float64 first, e.g. `with jax.enable_x64(True): ...` "
                         "(or jax.config.update('jax_enable_x64', True)).")
    p = problem.replace(**{f: _cast(getattr(problem, f)) for f in
                           ("data_x", "data_y", "test_x", "test_y", "x0", "reg", "x_star", "f_star")})
    if p.x_star is None or p.d > max_dim:
        return p
    x = p.x_star
    plain = p.replace(L=None, mu=None, name="")  # problems of the same shapes share one compiled Newton step
    for _ in range(newton_steps):
        x = _newton_step(plain, x)
    return p.replace(x_star=x, f_star=p.objective(x))


@jax.jit
def _newton_step(problem, x):
    return x - jnp.linalg.solve(jax.hessian(problem.objective)(x), jax.grad(problem.objective)(x))
