"""A small 1-D CNN for mnist1d's (40, 1) sequences (Greydanus 2020's ``ConvBase``)."""

from __future__ import annotations

from flax import linen as nn

from jaxgossip.models.conv import conv_fn, resolve

__all__ = ["CNN1D"]


class CNN1D(nn.Module):
    """Three strided 1-D convolutions with ReLU, then one dense layer: mnist1d's reference CNN.

    On (40, 1) inputs with ``channels = c`` (default 25) and k classes:

    ===================================  ==========  ===========================
    layer                                output      parameters
    ===================================  ==========  ===========================
    conv c @ 5, stride 2, pad 1, ReLU    19 x c      5*1*c + c = 150
    conv c @ 3, stride 2, pad 1, ReLU    10 x c      3*c*c + c = 1,900
    conv c @ 3, stride 2, pad 1, ReLU    5 x c       3*c*c + c = 1,900
    dense k                              k           5*c*k + k = 1,260
    ===================================  ==========  ===========================

    Total ``5,210`` for c = 25, k = 10 (in general ``6c + 2(3c^2 + c) + 5ck + k`` for length-40 inputs; the dense
    layer's input is ``L3 * c`` with ``L1 = (L + 2 - 5) // 2 + 1``, ``L2 = (L1 - 1) // 2 + 1``,
    ``L3 = (L2 - 1) // 2 + 1``).

    Attributes:
      out: the number of classes.
      channels: the convolutions' width.
      conv: how the convolutions are lowered: ``"auto"`` (im2col and one matrix product on CPU, XLA's convolution
        elsewhere; see :mod:`jaxgossip.models.conv`), ``"im2col"`` or ``"xla"``. The same numbers either way.

    References:
      Greydanus 2020, "Scaling down deep learning" (the MNIST-1D data set), ``mnist1d/models.py: ConvBase``
      (Conv1d(1, 25, 5, stride=2, padding=1), two Conv1d(25, 25, 3, stride=2, padding=1), Linear(125, 10)).
    """

    out: int = 10
    channels: int = 25
    conv: str = "auto"

    def __post_init__(self):
        resolve(self.conv)
        super().__post_init__()

    @nn.compact
    def __call__(self, x, train: bool = False):
        c = self.channels
        x = nn.relu(nn.Conv(c, (5,), strides=(2,), padding=((1, 1),), conv_general_dilated=conv_fn(self.conv))(x))
        x = nn.relu(nn.Conv(c, (3,), strides=(2,), padding=((1, 1),), conv_general_dilated=conv_fn(self.conv))(x))
        x = nn.relu(nn.Conv(c, (3,), strides=(2,), padding=((1, 1),), conv_general_dilated=conv_fn(self.conv))(x))
        return nn.Dense(self.out)(x.reshape(x.shape[0], -1))
