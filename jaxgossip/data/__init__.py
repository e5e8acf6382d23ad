"""Data on disk and augmentation (``jg.data``): MNIST / Fashion-MNIST / CIFAR loaders, per-sample image augmentation.

The loaders read files already present (no download) and return uint8 images as stored; the augmentations are pure,
jittable ``(key, images) -> images`` callables on one worker's batch, frozen and hashable so they can be static fields.
"""

from jaxgossip.data.augment import (
    Augmentation,
    Compose,
    HorizontalFlip,
    Identity,
    RandomCrop,
    compose,
    horizontal_flip,
    identity,
    random_crop,
)
from jaxgossip.data.disk import DISK_DATASETS, LABEL_MODES, expected_files, load

__all__ = [
    "DISK_DATASETS",
    "LABEL_MODES",
    "expected_files",
    "load",
    "Augmentation",
    "Compose",
    "HorizontalFlip",
    "Identity",
    "RandomCrop",
    "compose",
    "horizontal_flip",
    "identity",
    "random_crop",
]
