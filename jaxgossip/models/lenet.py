"""LeNet-5 (LeCun et al. 1998) for 28x28x1 images, and a scaled-down LeNet for scikit-learn's 8x8x1 digits."""

from __future__ import annotations

from flax import linen as nn

from jaxgossip.models.conv import conv_fn, resolve

__all__ = ["LeNet5", "LeNetSmall"]


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and average pooling; ``small=True`` is the 8x8x1 variant (also :class:`LeNetSmall`).

    ``small=False`` (28x28x1, e.g. MNIST), layers and parameters for k classes:

    ============================  ==============  =======================
    layer                         output          parameters
    ============================  ==============  =======================
    conv 6 @ 5x5, 'SAME', ReLU    28 x 28 x 6     5*5*1*6 + 6 = 156
    avg-pool 2x2, stride 2        14 x 14 x 6     0
    conv 16 @ 5x5, 'VALID', ReLU  10 x 10 x 16    5*5*6*16 + 16 = 2,416
    avg-pool 2x2, stride 2        5 x 5 x 16      0
    dense 120, ReLU               120             400*120 + 120 = 48,120
    dense 84, ReLU                84              120*84 + 84 = 10,164
    dense k                       k               84*k + k
    ============================  ==============  =======================

    Total ``61,706`` for k = 10 (``60,856 + 85 k``).

    ``small=True`` (8x8x1 digits): 3x3 kernels, both convolutions 'SAME', the same dense head:

    ============================  ==============  =======================
    conv 6 @ 3x3, 'SAME', ReLU    8 x 8 x 6       3*3*1*6 + 6 = 60
    avg-pool 2x2, stride 2        4 x 4 x 6       0
    conv 16 @ 3x3, 'SAME', ReLU   4 x 4 x 16      3*3*6*16 + 16 = 880
    avg-pool 2x2, stride 2        2 x 2 x 16      0
    dense 120, ReLU               120             64*120 + 120 = 7,800
    dense 84, ReLU                84              10,164
    dense k                       k               84*k + k
    ============================  ==============  =======================

    Total ``19,754`` for k = 10 (``18,904 + 85 k``).

    Attributes:
      out: the number of classes.
      small: the 8x8x1 variant.
      conv: how the convolutions are lowered: ``"auto"`` (im2col and one matrix product on CPU, XLA's convolution
        elsewhere; see :mod:`jaxgossip.models.conv`), ``"im2col"`` or ``"xla"``. The same numbers either way.

    References:
      LeCun, Bottou, Bengio, Haffner 1998, "Gradient-based learning applied to document recognition", Sec. II.B
      (LeNet-5: C1 6@5x5 on a 32x32 input, i.e. 'SAME' on 28x28, S2, C3 16@5x5, S4, C5 120, F6 84, output). The
      original's sparse C3 connections, trainable subsampling and RBF output are replaced by full convolutions,
      average pooling and a dense layer, as in common modern reimplementations.
    """

    out: int = 10
    small: bool = False
    conv: str = "auto"

    def __post_init__(self):
        resolve(self.conv)
        super().__post_init__()

    @nn.compact
    def __call__(self, x, train: bool = False):
        k, pad2 = ((3, 3), "SAME") if self.small else ((5, 5), "VALID")
        x = nn.relu(nn.Conv(6, k, padding="SAME", conv_general_dilated=conv_fn(self.conv))(x))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(nn.Conv(16, k, padding=pad2, conv_general_dilated=conv_fn(self.conv))(x))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(120)(x))
        x = nn.relu(nn.Dense(84)(x))
        return nn.Dense(self.out)(x)


class LeNetSmall(LeNet5):
    """``LeNet5(small=True)``: the LeNet variant for 8x8x1 digits (19,754 parameters for 10 classes; see
    :class:`LeNet5`)."""

    small: bool = True
