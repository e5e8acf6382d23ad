"""Augmentations on one worker's (B, H, W, C) batch: pure, keyed per sample, jittable, hashable."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgossip.data import (
    Compose,
    HorizontalFlip,
    Identity,
    RandomCrop,
    compose,
    horizontal_flip,
    identity,
    random_crop,
)
from jaxgossip.data.augment import sample_keys

B, H, W, C = 6, 8, 7, 3


def images(dtype=jnp.float32):
    x = np.arange(B * H * W * C).reshape(B, H, W, C) % 251 + 1  # no zeros, so zero padding is visible
    return jnp.asarray(x, dtype=dtype)


ALL = [identity(), random_crop(2), horizontal_flip(0.5), compose(random_crop(3), horizontal_flip(0.5))]


@pytest.mark.parametrize("aug", ALL, ids=repr)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.uint8])
def test_shape_dtype_and_determinism(aug, dtype):
    x = images(dtype)
    out = aug(jax.random.key(0), x)
    assert out.shape == x.shape and out.dtype == x.dtype
    np.testing.assert_array_equal(out, aug(jax.random.key(0), x))


@pytest.mark.parametrize("aug", ALL[1:], ids=repr)
def test_different_keys_differ(aug):
    x = images()
    assert not np.array_equal(aug(jax.random.key(0), x), aug(jax.random.key(1), x))


def test_raw_uint32_keys_work():
    x = images()
    np.testing.assert_array_equal(random_crop(2)(jax.random.PRNGKey(3), x), random_crop(2)(jax.random.PRNGKey(3), x))


def test_crop_padding_zero_is_identity():
    x = images()
    np.testing.assert_array_equal(random_crop(0)(jax.random.key(5), x), x)


def test_crop_is_a_window_of_the_zero_padded_image():
    x, pad = images(), 3
    key = jax.random.key(7)
    out = np.asarray(random_crop(pad)(key, x))
    padded = np.pad(np.asarray(x), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    keys = sample_keys(key, B)
    for b in range(B):
        oy, ox = np.asarray(jax.random.randint(keys[b], (2,), 0, 2 * pad + 1))
        np.testing.assert_array_equal(out[b], padded[b, oy:oy + H, ox:ox + W])
    # and not all windows are the centred one (the crop does move)
    assert any(not np.array_equal(out[b], np.asarray(x[b])) for b in range(B))


def test_crop_offsets_cover_the_range():
    x = jnp.ones((64, 4, 4, 1))
    out = np.asarray(random_crop(1)(jax.random.key(0), x))
    zero_rows_top = (out[:, 0, :, 0] == 0).all(axis=1)
    zero_rows_bottom = (out[:, -1, :, 0] == 0).all(axis=1)
    assert zero_rows_top.any() and zero_rows_bottom.any() and (~zero_rows_top & ~zero_rows_bottom).any()


def test_flip_p1_flips_everything_and_twice_is_identity():
    x = images()
    flip = horizontal_flip(p=1.0)
    once = flip(jax.random.key(0), x)
    np.testing.assert_array_equal(once, x[:, :, ::-1, :])
    np.testing.assert_array_equal(flip(jax.random.key(1), once), x)


def test_flip_p0_is_identity_and_half_mixes():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((32, 2, 3, 1)), jnp.float32)
    np.testing.assert_array_equal(horizontal_flip(0.0)(jax.random.key(0), x), x)
    out = np.asarray(horizontal_flip(0.5)(jax.random.key(0), x))
    flipped = np.array([np.array_equal(o, np.asarray(a)[:, ::-1]) for o, a in zip(out, x)])
    kept = np.array([np.array_equal(o, np.asarray(a)) for o, a in zip(out, x)])
    assert (flipped | kept).all() and flipped.any() and kept.any()


def test_compose_folds_a_key_per_stage():
    x, key = images(), jax.random.key(4)
    crop, flip = random_crop(2), horizontal_flip(0.5)
    expected = flip(jax.random.fold_in(key, 1), crop(jax.random.fold_in(key, 0), x))
    np.testing.assert_array_equal(compose(crop, flip)(key, x), expected)
    np.testing.assert_array_equal(compose()(key, x), x)


def test_jit_and_vmap_over_workers():
    aug = compose(random_crop(2), horizontal_flip(0.5))
    n = 4
    stack = jnp.stack([images() + i for i in range(n)])  # (n, B, H, W, C)
    keys = jax.random.split(jax.random.key(0), n)
    out = jax.jit(jax.vmap(aug))(keys, stack)
    assert out.shape == stack.shape
    for i in range(n):
        np.testing.assert_array_equal(out[i], aug(keys[i], stack[i]))
    assert not np.array_equal(out[0], out[1] - 1)  # workers draw different crops and flips


def test_equal_configurations_compare_and_hash_equal():
    assert random_crop(4) == RandomCrop(4) == random_crop()
    assert hash(random_crop(4)) == hash(RandomCrop(padding=4))
    assert horizontal_flip(0.5) == HorizontalFlip() and hash(horizontal_flip(0.5)) == hash(HorizontalFlip(0.5))
    assert horizontal_flip(1) == horizontal_flip(1.0)
    a, b = compose(random_crop(4), horizontal_flip()), compose(random_crop(4), horizontal_flip())
    assert a == b and hash(a) == hash(b) and isinstance(a, Compose)
    assert identity() == Identity() and hash(identity()) == hash(Identity())
    assert random_crop(4) != random_crop(2) and horizontal_flip(0.5) != horizontal_flip(0.25)
    assert compose(random_crop(4), horizontal_flip()) != compose(horizontal_flip(), random_crop(4))
    assert len({a, b, identity(), Identity()}) == 2


def test_one_compile_for_equal_configurations():
    traces = []

    def step(aug, key, x):
        traces.append(1)
        return aug(key, x)

    jitted = jax.jit(step, static_argnums=0)
    x = images()
    jitted(compose(random_crop(2), horizontal_flip()), jax.random.key(0), x)
    jitted(compose(random_crop(2), horizontal_flip()), jax.random.key(1), x)
    assert len(traces) == 1


@pytest.mark.parametrize("bad", [-1, 1.5, 4.0, True, "4", None])
def test_crop_rejects_bad_padding(bad):
    with pytest.raises(ValueError, match="padding must be a non-negative int"):
        random_crop(bad)


def test_crop_accepts_numpy_int():
    assert random_crop(np.int64(3)) == random_crop(3)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), True, "0.5", None])
def test_flip_rejects_bad_p(bad):
    with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\]"):
        horizontal_flip(bad)


def test_compose_rejects_non_callables_and_unhashables():
    with pytest.raises(ValueError, match=r"fns\[1\] must be a callable"):
        compose(random_crop(), 3)

    class Unhashable:
        __hash__ = None

        def __call__(self, key, x):
            return x

    with pytest.raises(ValueError, match=r"fns\[0\] must be hashable"):
        compose(Unhashable())


@pytest.mark.parametrize("aug", [random_crop(2), horizontal_flip(0.5), horizontal_flip(1.0), random_crop(0)], ids=repr)
@pytest.mark.parametrize("shape", [(H, W, C), (B, H, W), (2, B, H, W, C)])
def test_wrong_rank_is_a_clear_error(aug, shape):
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        aug(jax.random.key(0), jnp.zeros(shape))
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        jax.jit(aug)(jax.random.key(0), jnp.zeros(shape))


def test_the_base_class_and_a_subclass_without_call_cannot_be_built():
    import dataclasses

    from jaxgossip.data.augment import Augmentation

    @dataclasses.dataclass(frozen=True)
    class Forgot(Augmentation):
        padding: int = 1

    for cls in (Augmentation, Forgot):
        with pytest.raises(TypeError, match="abstract"):
            cls()
