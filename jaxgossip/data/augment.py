"""Image augmentation: pure, jittable ``(key, images) -> images`` callables on ONE worker's batch (B, H, W, C).

Each sample b draws from its own key ``fold_in(key, b)``; :func:`compose` gives stage i the key ``fold_in(key, i)``.
The objects are small frozen dataclasses, hashable and compared by value, so they can be static fields of a problem
(two equal configurations share one compiled step). For a stack of workers, vmap over the worker axis of the keys and
images: ``jax.vmap(aug)(worker_keys, images)`` with images (n, B, H, W, C).

Example (the CIFAR standard, on images of shape (B, 32, 32, 3))::

    aug = compose(random_crop(padding=4), horizontal_flip(p=0.5))
    out = aug(jax.random.key(0), images)
"""

from __future__ import annotations

import abc
import dataclasses
import numbers
from typing import Callable

import jax
import jax.numpy as jnp

__all__ = [
    "Augmentation",
    "Compose",
    "HorizontalFlip",
    "Identity",
    "RandomCrop",
    "compose",
    "horizontal_flip",
    "identity",
    "random_crop",
    "sample_keys",
]


def sample_keys(key: jax.Array, batch: int) -> jax.Array:
    """``batch`` keys, sample b's is ``fold_in(key, b)``."""
    return jax.vmap(lambda b: jax.random.fold_in(key, b))(jnp.arange(batch))


def _check_images(who: str, images) -> None:
    """Shapes are static: raise (in Python, while tracing) unless images is one (B, H, W, C) batch."""
    shape = jnp.shape(images)
    if len(shape) != 4:
        raise ValueError(f"{who} expects one worker's batch of images with shape (B, H, W, C), got shape {shape}; "
                         "for a stack of workers, jax.vmap over the worker axis")


@dataclasses.dataclass(frozen=True)
class Augmentation(abc.ABC):
    """Base of the augmentations: ``aug(key, images) -> images`` with the shape and dtype of ``images``. Abstract: a
    subclass that does not define ``__call__`` cannot be built (a TypeError when it is made, before anything runs)."""

    @abc.abstractmethod
    def __call__(self, key: jax.Array, images: jax.Array) -> jax.Array:
        """The augmented images (same shape and dtype), one worker's (B, H, W, C) batch, drawn from ``key``."""


@dataclasses.dataclass(frozen=True)
class Identity(Augmentation):
    """Returns the images unchanged (any shape); the key is unused."""

    def __call__(self, key: jax.Array, images: jax.Array) -> jax.Array:
        return images


def _crop_one(key: jax.Array, image: jax.Array, padding: int) -> jax.Array:
    """One (H, W, C) image: zero-pad by ``padding`` on each side, take the H x W window at a random offset."""
    height, width, channels = image.shape
    padded = jnp.pad(image, ((padding, padding), (padding, padding), (0, 0)))
    offsets = jax.random.randint(key, (2,), 0, 2 * padding + 1)
    zero = jnp.zeros((), offsets.dtype)
    return jax.lax.dynamic_slice(padded, (offsets[0], offsets[1], zero), (height, width, channels))


@dataclasses.dataclass(frozen=True)
class RandomCrop(Augmentation):
    """Zero-pad each image by ``padding`` pixels on every side, then crop a random H x W window per sample.

    With ``padding=4`` on 32 x 32 images this is the standard CIFAR augmentation; ``padding=0`` is the identity.

    Attributes:
      padding: non-negative int, the zero border added before cropping (offsets are uniform in [0, 2 * padding]).
    """

    padding: int = 4

    def __post_init__(self):
        if isinstance(self.padding, bool) or not isinstance(self.padding, numbers.Integral) or self.padding < 0:
            raise ValueError(f"padding must be a non-negative int, got {self.padding!r}")
        object.__setattr__(self, "padding", int(self.padding))

    def __call__(self, key: jax.Array, images: jax.Array) -> jax.Array:
        """Crop images (B, H, W, C); sample b uses ``fold_in(key, b)``."""
        _check_images("random_crop", images)
        if self.padding == 0:
            return images
        keys = sample_keys(key, images.shape[0])
        return jax.vmap(_crop_one, in_axes=(0, 0, None))(keys, images, self.padding)


@dataclasses.dataclass(frozen=True)
class HorizontalFlip(Augmentation):
    """Mirror each image left-right (along W) with probability ``p``, independently per sample.

    Attributes:
      p: flip probability in [0, 1]; ``p=0`` is the identity, ``p=1`` flips every image.
    """

    p: float = 0.5

    def __post_init__(self):
        p = self.p
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a number in [0, 1], got {p!r}")
        object.__setattr__(self, "p", float(p))

    def __call__(self, key: jax.Array, images: jax.Array) -> jax.Array:
        """Flip images (B, H, W, C); sample b draws its coin from ``fold_in(key, b)``."""
        _check_images("horizontal_flip", images)
        if self.p == 0.0:
            return images
        flipped = images[:, :, ::-1, :]
        if self.p == 1.0:
            return flipped
        coins = jax.vmap(lambda k: jax.random.bernoulli(k, self.p))(sample_keys(key, images.shape[0]))
        return jnp.where(coins[:, None, None, None], flipped, images)


@dataclasses.dataclass(frozen=True)
class Compose(Augmentation):
    """Apply ``fns`` in order; stage i gets the key ``fold_in(key, i)``.

    Attributes:
      fns: tuple of hashable ``(key, images) -> images`` callables.
    """

    fns: tuple[Callable, ...] = ()

    def __post_init__(self):
        fns = tuple(self.fns)
        for i, fn in enumerate(fns):
            if not callable(fn):
                raise ValueError(f"fns[{i}] must be a callable (key, images) -> images, got {fn!r}")
            try:
                hash(fn)
            except TypeError as err:
                raise ValueError(f"fns[{i}] must be hashable (it becomes part of a static configuration), "
                                 f"got {fn!r}") from err
        object.__setattr__(self, "fns", fns)

    def __call__(self, key: jax.Array, images: jax.Array) -> jax.Array:
        for i, fn in enumerate(self.fns):
            images = fn(jax.random.fold_in(key, i), images)
        return images


def identity() -> Identity:
    """The augmentation that changes nothing."""
    return Identity()


def random_crop(padding: int = 4) -> RandomCrop:
    """Zero-pad by ``padding`` on each side, then a random crop back to H x W per sample (see :class:`RandomCrop`)."""
    return RandomCrop(padding)


def horizontal_flip(p: float = 0.5) -> HorizontalFlip:
    """Mirror left-right with probability ``p`` per sample (see :class:`HorizontalFlip`)."""
    return HorizontalFlip(p)


def compose(*fns: Callable) -> Compose:
    """Chain augmentations; stage i gets ``fold_in(key, i)`` (see :class:`Compose`)."""
    return Compose(fns)
