"""The flax module behind ``jg.problems.mlp`` (imported only when an MLP problem is built: flax takes ~0.3 s to load)."""

from flax import linen as nn


class MLPModule(nn.Module):
    """Dense layers with ReLU between them, ``out`` logits at the end."""

    hidden: tuple
    out: int

    @nn.compact
    def __call__(self, X):
        for h in self.hidden:
            X = nn.relu(nn.Dense(h)(X))
        return nn.Dense(self.out)(X)
