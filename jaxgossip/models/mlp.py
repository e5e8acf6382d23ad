"""A multilayer perceptron (flattens its input): the fully connected nets of the seed papers' MNIST experiments."""

from __future__ import annotations

from flax import linen as nn

__all__ = ["MLP"]


class MLP(nn.Module):
    """Dense layers with ReLU between them, ``out`` logits at the end; the input is flattened per sample.

    For p input features the parameter count is ``sum_l (h_{l-1} + 1) h_l`` over the layers
    ``p -> hidden[0] -> ... -> out``; the default ``MLP()`` on 28x28x1 images (p = 784) has
    ``785 * 64 + 65 * 10 = 50,890`` parameters, on 8x8x1 digits ``65 * 64 + 65 * 10 = 4,810``.

    Attributes:
      hidden: the hidden layers' widths (``()``: multinomial logistic regression).
      out: the number of outputs (classes).

    References:
      Reisizadeh, Taheri, Mokhtari, Hassani, Pedarsani 2019, "Robust and communication-efficient collaborative
      learning" (QuanTimed-DSGD, NeurIPS 2019), Sec. 5: one-hidden-layer fully connected nets on MNIST and binary
      CIFAR-10.
    """

    hidden: tuple = (64,)
    out: int = 10

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.reshape(x.shape[0], -1)
        for h in self.hidden:
            x = nn.relu(nn.Dense(int(h))(x))
        return nn.Dense(self.out)(x)
