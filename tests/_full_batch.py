"""Full-batch (exact local gradient) problems for the deterministic tests of gradient tracking, exact diffusion, D²,
EF21 and BEER (``batch_size="full"`` where the problems take it, else the reproduction's stand-in oracle)."""

from jaxgossip.reproduce.heterogeneity_bias import _exact_gradients, full_quadratic


def as_full(problem):
    """An existing problem with exact local gradients."""
    return problem if getattr(problem, "full_batch", False) else _exact_gradients(problem)


__all__ = ["full_quadratic", "as_full"]
