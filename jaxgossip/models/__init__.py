"""The model zoo: flax linen networks of the seed papers' experiments, each with its documented parameter count.

Every module is a frozen, hashable linen dataclass whose ``__call__(x, train: bool = False)`` takes a batch
``(B, *sample_shape)``; pass one to :func:`jaxgossip.problems.from_flax` to train n copies of it::

    prob = jg.problems.from_flax(jg.models.LeNetSmall(), "digits", n_workers=16, batch_size=8)
    prob = jg.problems.from_flax(jg.models.get("resnet20", norm="group"), (X, y), n_workers=8)

- ``"mlp"``, :class:`MLP`: any input (flattened); 50,890 parameters on 28x28x1 with ``hidden=(64,)``.
- ``"lenet5"``, :class:`LeNet5`: 28x28x1; 61,706.
- ``"lenet5_small"``, :class:`LeNetSmall` (``LeNet5(small=True)``): 8x8x1 digits; 19,754.
- ``"cnn1d"``, :class:`CNN1D`: (40, 1) mnist1d sequences; 5,210.
- ``"resnet20"``, :class:`ResNet20`: 32x32x3; 269,722 (option-A shortcuts; 272,474 with option B).
- ``"vgg11"``, :class:`VGG11`: 32x32x3; 578,410 (``small=True``, widths / 4; 9,225,610 full width).

(10 classes each.) :func:`param_count` counts any module's parameters without computing anything.

Every convolutional model takes ``conv="auto" | "im2col" | "xla"``: how its convolutions are lowered (``"auto"``:
:func:`im2col_conv`, im2col and one matrix product, on CPU and GPU; XLA's convolution on TPU). The numbers are the
same to float32 rounding; on CPU the stacked workers' convolutions become one batched matrix product per layer
(benchmarks/README.md, item 9).
"""

from __future__ import annotations

from jaxgossip._registry import build
from jaxgossip.models._count import param_count
from jaxgossip.models.cnn1d import CNN1D
from jaxgossip.models.conv import conv_fn, im2col_conv
from jaxgossip.models.lenet import LeNet5, LeNetSmall
from jaxgossip.models.mlp import MLP
from jaxgossip.models.resnet import ResNet20
from jaxgossip.models.vgg import VGG11

__all__ = ["MLP", "LeNet5", "LeNetSmall", "CNN1D", "ResNet20", "VGG11", "MODELS", "INPUT_SHAPES", "get",
           "param_count", "im2col_conv", "conv_fn"]

#: Name -> module class, for configs and the CLI.
MODELS = {"mlp": MLP, "lenet5": LeNet5, "lenet5_small": LeNetSmall, "cnn1d": CNN1D, "resnet20": ResNet20,
          "vgg11": VGG11}

#: Name -> the shape of one sample the model is made for (the MLP takes any shape; 28x28x1 as for MNIST).
INPUT_SHAPES = {"mlp": (28, 28, 1), "lenet5": (28, 28, 1), "lenet5_small": (8, 8, 1), "cnn1d": (40, 1),
                "resnet20": (32, 32, 3), "vgg11": (32, 32, 3)}


def get(name: str, **kwargs):
    """The zoo's module ``name`` built with ``kwargs`` (e.g. ``get("resnet20", norm="group", groups=2)``).

    Raises:
      ValueError: naming the allowed models, or the keyword the model does not take.
    """
    return build("model", MODELS, name, kwargs)
