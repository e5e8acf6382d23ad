"""ResNet-20 for CIFAR (He et al. 2016, Sec. 4.2), with BatchNorm or GroupNorm."""

from __future__ import annotations

from functools import partial

import jax.numpy as jnp
from flax import linen as nn

from jaxgossip.models.conv import conv_fn, resolve

__all__ = ["ResNet20", "NORMS", "SHORTCUTS"]

NORMS = ("batch", "group")
SHORTCUTS = ("A", "B")

_he = nn.initializers.variance_scaling(2.0, "fan_out", "normal")  # He et al. 2015, as the paper's Sec. 3.4


class _Block(nn.Module):
    """A basic block: 3x3 conv, norm, ReLU, 3x3 conv, norm, plus the shortcut, ReLU."""

    channels: int
    strides: int
    norm: object
    shortcut: str
    conv: object

    @nn.compact
    def __call__(self, x):
        s = (self.strides, self.strides)
        conv = partial(nn.Conv, use_bias=False, kernel_init=_he, conv_general_dilated=self.conv)
        y = conv(self.channels, (3, 3), s, padding=((1, 1), (1, 1)))(x)
        y = nn.relu(self.norm()(y))
        y = conv(self.channels, (3, 3), padding=((1, 1), (1, 1)))(y)
        y = self.norm()(y)
        if self.strides != 1 or x.shape[-1] != self.channels:
            if self.shortcut == "A":  # identity on the subsampled map, the new channels zero (no parameters)
                x = x[:, :: self.strides, :: self.strides, :]
                extra = self.channels - x.shape[-1]
                x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
            else:  # a strided 1x1 projection and its norm
                x = conv(self.channels, (1, 1), s)(x)
                x = self.norm()(x)
        return nn.relu(y + x)


class ResNet20(nn.Module):
    """ResNet-20, the CIFAR ResNet of He et al. 2016 (Sec. 4.2) with 6n + 2 = 20 layers (n = 3).

    A 3x3 conv with 16 channels, norm, ReLU; three stages of three basic blocks (two 3x3 convs each) with 16, 32 and
    64 channels, stride 2 at the first block of stages 2 and 3; global average pooling; a dense layer. Convolutions
    have no bias (each is followed by a norm with a bias). Inputs are (B, 32, 32, 3) images (any size works: the
    pooling is global).

    Shortcuts: the paper's CIFAR networks use identity shortcuts everywhere, "option A" of its Sec. 3.3 (the map
    subsampled by 2 and the new channels zero-padded; no parameters), so ``shortcut="A"`` is the default. Option B
    (a strided 1x1 projection followed by a norm, where the shape changes) is ``shortcut="B"``.

    Parameter count for k classes (the norm's scale and bias counted; BatchNorm's running mean and variance are
    ``batch_stats``, model state, not parameters; GroupNorm has the same scale and bias, so the same count):

    - stem: 3*3*3*16 + 2*16 = 464
    - stage 1: 3 * (2*3*3*16*16 + 2*2*16) = 14,016
    - stage 2: 3*3*16*32 + 3*3*32*32 + 2*2*32 + 2 * (2*3*3*32*32 + 2*2*32) = 51,072
    - stage 3: 3*3*32*64 + 3*3*64*64 + 2*2*64 + 2 * (2*3*3*64*64 + 2*2*64) = 203,520
    - dense: 64*k + k = 650 for k = 10

    Option A: ``268,422 + 65 k`` = **269,722** for 10 classes (He et al.'s "0.27M"). Option B adds the two
    projections and their norms, ``16*32 + 2*32 + 32*64 + 2*64 = 2,752``: **272,474** for 10 classes.

    Attributes:
      num_classes: the number of outputs.
      norm: ``"batch"`` (BatchNorm, ``use_running_average=not train``; momentum 0.9, epsilon 1e-5 as in PyTorch;
        per-worker ``batch_stats`` under ``jg.problems.from_flax``) or ``"group"`` (GroupNorm: no state, so no
        statistics that non-iid workers disagree on).
      groups: GroupNorm's number of groups (it must divide 16); Hsieh et al. 2020 use GroupNorm with 2 groups.
      shortcut: ``"A"`` (zero-padded identity, the paper's CIFAR choice) or ``"B"`` (1x1 conv projection).
      conv: how the convolutions are lowered: ``"auto"`` (im2col and one matrix product on CPU, XLA's convolution
        elsewhere; see :mod:`jaxgossip.models.conv`), ``"im2col"`` or ``"xla"``. The same numbers either way.

    References:
      He, Zhang, Ren, Sun 2016, "Deep residual learning for image recognition", Sec. 3.3 (shortcut options A/B) and
      Sec. 4.2 (CIFAR-10 architecture, Table 6: ResNet-20, 0.27M parameters).
      Wu & He 2018, "Group normalization".
      Hsieh, Phanishayee, Mutlu, Gibbons 2020, "The non-IID data quagmire of decentralized machine learning" (ICML
      2020), Sec. 5: BatchNorm fails under non-iid partitions; GroupNorm recovers most of the accuracy.
      Tang et al. 2018 (paper 000), Sec. 5: ResNet-20 on CIFAR-10 for DCD-PSGD / ECD-PSGD.
    """

    num_classes: int = 10
    norm: str = "batch"
    groups: int = 2
    shortcut: str = "A"
    conv: str = "auto"

    def _norm(self, train):
        if self.norm == "batch":
            return partial(nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5)
        return partial(nn.GroupNorm, num_groups=self.groups, epsilon=1e-5)

    def __post_init__(self):
        resolve(self.conv)
        if self.norm not in NORMS:
            raise ValueError(f"ResNet20: norm must be one of {NORMS}, got {self.norm!r}.")
        if self.shortcut not in SHORTCUTS:
            raise ValueError(f"ResNet20: shortcut must be one of {SHORTCUTS}, got {self.shortcut!r}.")
        if self.norm == "group" and (isinstance(self.groups, bool) or not isinstance(self.groups, int)
                                     or self.groups < 1 or 16 % self.groups):
            raise ValueError(f"ResNet20: groups must be a positive integer dividing 16, got {self.groups!r}.")
        super().__post_init__()

    @nn.compact
    def __call__(self, x, train: bool = False):
        norm, conv = self._norm(train), conv_fn(self.conv)
        x = nn.Conv(16, (3, 3), padding=((1, 1), (1, 1)), use_bias=False, kernel_init=_he,
                    conv_general_dilated=conv)(x)
        x = nn.relu(norm()(x))
        for stage, channels in enumerate((16, 32, 64)):
            for block in range(3):
                strides = 2 if stage > 0 and block == 0 else 1
                x = _Block(channels, strides, norm, self.shortcut, conv)(x)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes)(x)
