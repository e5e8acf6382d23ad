"""VGG-11 (Simonyan & Zisserman 2015, configuration A) for 32x32x3 images, optionally with narrower channels."""

from __future__ import annotations

from flax import linen as nn

from jaxgossip.models.conv import conv_fn, resolve

__all__ = ["VGG11", "VGG11_CHANNELS"]

#: Configuration A's convolution widths; "M" a 2x2 max-pool with stride 2.
VGG11_CHANNELS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG11(nn.Module):
    """VGG-11 for CIFAR: eight 3x3 'SAME' convolutions with ReLU (and optional BatchNorm), five max-pools, a dense
    classifier.

    On 32x32 inputs the five pools leave a 1x1 map, so the classifier is one dense layer on the last width (the CIFAR
    adaptation used by decentralized-training codes, e.g. epfml/ChocoSGD's ``vgg``; the ImageNet network's two
    4096-wide layers are dropped). ``small=True`` divides every width by ``factor`` (default 4: widths
    16, 32, 64, 64, 128, 128, 128, 128).

    Parameter count for widths ``c_1..c_8`` (c_0 = 3) and k classes: ``sum_i (9 c_{i-1} + 1) c_i + (c_8 + 1) k``,
    plus ``2 c_i`` per layer with ``batch_norm=True``:

    - ``small=True, factor=4``: 577,120 + 1,290 = **578,410** for 10 classes;
    - ``small=False``: 9,220,480 + 5,130 = **9,225,610** for 10 classes.

    Attributes:
      num_classes: the number of outputs.
      small: divide the channel widths by ``factor``.
      factor: the divisor of the widths when ``small``.
      conv: how the convolutions are lowered: ``"auto"`` (im2col and one matrix product on CPU, XLA's convolution
        elsewhere; see :mod:`jaxgossip.models.conv`), ``"im2col"`` or ``"xla"``. The same numbers either way.
      batch_norm: a BatchNorm after every convolution (``use_running_average=not train``).

    References:
      Simonyan & Zisserman 2015, "Very deep convolutional networks for large-scale image recognition", Table 1,
      configuration A (VGG-11).
    """

    num_classes: int = 10
    small: bool = True
    factor: int = 4
    batch_norm: bool = False
    conv: str = "auto"

    def __post_init__(self):
        resolve(self.conv)
        if isinstance(self.factor, bool) or not isinstance(self.factor, int) or self.factor < 1:
            raise ValueError(f"VGG11: factor must be a positive integer, got {self.factor!r}.")
        super().__post_init__()

    @nn.compact
    def __call__(self, x, train: bool = False):
        div = self.factor if self.small else 1
        for c in VGG11_CHANNELS:
            if c == "M":
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
                continue
            x = nn.Conv(max(1, c // div), (3, 3), padding="SAME", conv_general_dilated=conv_fn(self.conv))(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)
            x = nn.relu(x)
        return nn.Dense(self.num_classes)(x.reshape(x.shape[0], -1))
