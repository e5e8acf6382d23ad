"""jg.data.load reads tiny files written here in the real formats (idx, plain and gzipped; CIFAR pickles)."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from jaxgossip.data import DISK_DATASETS, expected_files, load
from jaxgossip.data._idx import IMAGES_MAGIC, LABELS_MAGIC

IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array, magic):
    array = np.asarray(array, dtype=np.uint8)
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()


def write(path, data, gz=False):
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def make_idx(directory, n_train=5, n_test=3, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        IDX[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        IDX[1]: rng.integers(0, 10, n_train, dtype=np.uint8),
        IDX[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        IDX[3]: rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write(directory / name, idx_bytes(array, IMAGES_MAGIC if array.ndim == 3 else LABELS_MAGIC), gz=gz)
    return arrays


def chw_pattern(n, offset=0):
    """Rows of N x 3072 channel-major images whose pixel (c, h, w) of image i is known."""
    i, c, h, w = np.meshgrid(np.arange(n), np.arange(3), np.arange(32), np.arange(32), indexing="ij")
    chw = (offset + 7 * i + 100 * c + h + 2 * w) % 256
    return chw.astype(np.uint8).reshape(n, 3072), chw.transpose(0, 2, 3, 1).astype(np.uint8)


def write_pickle(path, batch):
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def make_cifar10(directory, per_batch=2, n_test=3):
    directory.mkdir(parents=True, exist_ok=True)
    hwc, labels = [], []
    for k in range(1, 6):
        rows, images = chw_pattern(per_batch, offset=k)
        lab = [(k + j) % 10 for j in range(per_batch)]
        write_pickle(directory / f"data_batch_{k}", {b"batch_label": b"b", b"data": rows, b"labels": lab})
        hwc.append(images)
        labels += lab
    rows, test_images = chw_pattern(n_test, offset=50)
    write_pickle(directory / "test_batch", {b"data": rows, b"labels": list(range(n_test))})
    return np.concatenate(hwc), np.array(labels), test_images, np.arange(n_test)


def make_cifar100(directory, n_train=4, n_test=2):
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n, offset in (("train", n_train, 0), ("test", n_test, 9)):
        rows, images = chw_pattern(n, offset)
        fine, coarse = [(3 * j + offset) % 100 for j in range(n)], [(j + offset) % 20 for j in range(n)]
        write_pickle(directory / split, {b"data": rows, b"fine_labels": fine, b"coarse_labels": coarse})
        out[split] = images, np.array(fine), np.array(coarse)
    return out


def test_names_and_expected_files():
    assert DISK_DATASETS == ("mnist", "fashion_mnist", "cifar10", "cifar100")
    assert expected_files("mnist") == IDX == expected_files("fashion_mnist")
    assert expected_files("cifar10") == ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                                         "data_batch_5", "test_batch")
    assert expected_files("cifar100") == ("train", "test")
    with pytest.raises(ValueError, match="name must be one of"):
        expected_files("imagenet")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, name, gz):
    arrays = make_idx(tmp_path, gz=gz)
    X_train, y_train, X_test, y_test = load(name, tmp_path)
    assert X_train.shape == (5, 28, 28, 1) and X_test.shape == (3, 28, 28, 1)
    assert X_train.dtype == np.uint8 and X_test.dtype == np.uint8
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    np.testing.assert_array_equal(X_train[..., 0], arrays[IDX[0]])
    np.testing.assert_array_equal(y_train, arrays[IDX[1]])
    np.testing.assert_array_equal(X_test[..., 0], arrays[IDX[2]])
    np.testing.assert_array_equal(y_test, arrays[IDX[3]])


def test_idx_mixed_plain_and_gz_and_pathlike(tmp_path):
    arrays = make_idx(tmp_path, gz=True)
    os.remove(tmp_path / (IDX[1] + ".gz"))
    write(tmp_path / IDX[1], idx_bytes(arrays[IDX[1]], LABELS_MAGIC))
    _, y_train, _, _ = load("mnist", str(tmp_path))
    np.testing.assert_array_equal(y_train, arrays[IDX[1]])


def test_missing_directory(tmp_path):
    where = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        load("mnist", where)
    assert str(where) in str(err.value) and IDX[0] in str(err.value)
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        load("cifar10", where)


@pytest.mark.parametrize("missing", IDX)
def test_idx_one_missing_file(tmp_path, missing):
    make_idx(tmp_path, gz=True)
    os.remove(tmp_path / (missing + ".gz"))
    with pytest.raises(FileNotFoundError) as err:
        load("mnist", tmp_path)
    message = str(err.value)
    assert f"missing {missing} in" in message and str(tmp_path) in message
    assert all(name in message for name in IDX)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_bad_magic(tmp_path, gz):
    arrays = make_idx(tmp_path, gz=gz)
    suffix = ".gz" if gz else ""
    os.remove(tmp_path / (IDX[2] + suffix))
    write(tmp_path / IDX[2], idx_bytes(arrays[IDX[2]], 0x00000802), gz=gz)
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.*magic number 0x00000802"):
        load("mnist", tmp_path)


def test_idx_labels_file_with_images_magic(tmp_path):
    arrays = make_idx(tmp_path)
    write(tmp_path / IDX[1], idx_bytes(arrays[IDX[0]], IMAGES_MAGIC))
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.*magic"):
        load("mnist", tmp_path)


@pytest.mark.parametrize("cut", [3, 10, 100])
def test_idx_truncated(tmp_path, cut):
    arrays = make_idx(tmp_path)
    data = idx_bytes(arrays[IDX[0]], IMAGES_MAGIC)
    write(tmp_path / IDX[0], data[:cut])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*truncated"):
        load("mnist", tmp_path)


def test_idx_too_long(tmp_path):
    arrays = make_idx(tmp_path)
    write(tmp_path / IDX[3], idx_bytes(arrays[IDX[3]], LABELS_MAGIC) + b"\x00")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.*too long"):
        load("mnist", tmp_path)


def test_idx_truncated_gzip_stream(tmp_path):
    make_idx(tmp_path, gz=True)
    gz = tmp_path / (IDX[0] + ".gz")
    gz.write_bytes(gz.read_bytes()[:-20])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        load("mnist", tmp_path)


def test_idx_count_mismatch(tmp_path):
    make_idx(tmp_path)
    write(tmp_path / IDX[1], idx_bytes(np.zeros(4), LABELS_MAGIC))
    with pytest.raises(ValueError) as err:
        load("fashion_mnist", tmp_path)
    message = str(err.value)
    assert "5 images" in message and "4 labels" in message and IDX[0] in message and IDX[1] in message


@pytest.mark.parametrize("subdir", ["", "cifar-10-batches-py"])
def test_cifar10_round_trip_hwc(tmp_path, subdir):
    X, y, Xt, yt = make_cifar10(tmp_path / subdir if subdir else tmp_path)
    X_train, y_train, X_test, y_test = load("cifar10", tmp_path)
    assert X_train.shape == (10, 32, 32, 3) and X_test.shape == (3, 32, 32, 3)
    assert X_train.dtype == np.uint8 and y_train.dtype == np.int64 and y_test.dtype == np.int64
    np.testing.assert_array_equal(X_train, X)
    np.testing.assert_array_equal(y_train, y)
    np.testing.assert_array_equal(X_test, Xt)
    np.testing.assert_array_equal(y_test, yt)
    # the channel-major layout is undone: pixel (h, w, c) of image i is offset + 7 i + 100 c + h + 2 w
    assert X_test[1, 2, 3, 2] == (50 + 7 + 200 + 2 + 6) % 256
    assert X_test[0, 31, 0, 0] == 50 + 31


@pytest.mark.parametrize("subdir", ["", "cifar-100-python"])
def test_cifar100_fine_and_coarse(tmp_path, subdir):
    out = make_cifar100(tmp_path / subdir if subdir else tmp_path)
    X_train, y_fine, X_test, yt_fine = load("cifar100", tmp_path)
    _, y_coarse, _, yt_coarse = load("cifar100", tmp_path, label_mode="coarse")
    np.testing.assert_array_equal(X_train, out["train"][0])
    np.testing.assert_array_equal(X_test, out["test"][0])
    np.testing.assert_array_equal(y_fine, out["train"][1])
    np.testing.assert_array_equal(y_coarse, out["train"][2])
    np.testing.assert_array_equal(yt_fine, out["test"][1])
    np.testing.assert_array_equal(yt_coarse, out["test"][2])
    assert not np.array_equal(y_fine, y_coarse)
    assert y_fine.dtype == np.int64 == y_coarse.dtype


def test_label_mode_checked(tmp_path):
    make_cifar100(tmp_path)
    with pytest.raises(ValueError, match="label_mode must be one of"):
        load("cifar100", tmp_path, label_mode="medium")
    with pytest.raises(ValueError, match="only for 'cifar100'"):
        load("cifar10", tmp_path, label_mode="coarse")


def test_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="name must be one of"):
        load("svhn", tmp_path)


def test_cifar10_one_missing_file(tmp_path):
    make_cifar10(tmp_path / "cifar-10-batches-py")
    os.remove(tmp_path / "cifar-10-batches-py" / "data_batch_3")
    with pytest.raises(FileNotFoundError) as err:
        load("cifar10", tmp_path)
    message = str(err.value)
    assert "missing data_batch_3 in" in message and "cifar-10-batches-py" in message
    assert "test_batch" in message


def test_cifar_empty_directory_names_both_places(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load("cifar100", tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and "cifar-100-python" in message and "train" in message


def test_cifar_pickle_without_expected_keys(tmp_path):
    make_cifar100(tmp_path)
    rows, _ = chw_pattern(2)
    write_pickle(tmp_path / "test", {b"data": rows, b"labels": [0, 1]})
    with pytest.raises(ValueError, match=r"test.*fine_labels"):
        load("cifar100", tmp_path)
    make_cifar10(tmp_path)
    write_pickle(tmp_path / "data_batch_2", {b"labels": [0, 1]})
    with pytest.raises(ValueError, match=r"data_batch_2.*b'data'"):
        load("cifar10", tmp_path)


def test_cifar_str_keys_are_not_the_format(tmp_path):
    make_cifar10(tmp_path)
    rows, _ = chw_pattern(2)
    write_pickle(tmp_path / "test_batch", {"data": rows, "labels": [0, 1]})
    with pytest.raises(ValueError, match="test_batch.*lacks key"):
        load("cifar10", tmp_path)


def test_cifar_count_mismatch_and_bad_shape(tmp_path):
    make_cifar10(tmp_path)
    rows, _ = chw_pattern(3)
    write_pickle(tmp_path / "data_batch_4", {b"data": rows, b"labels": [0, 1]})
    with pytest.raises(ValueError, match="data_batch_4.*2 labels.*3 images"):
        load("cifar10", tmp_path)
    write_pickle(tmp_path / "data_batch_4", {b"data": rows[:, :3000], b"labels": [0, 1, 2]})
    with pytest.raises(ValueError, match="data_batch_4.*shape"):
        load("cifar10", tmp_path)


def test_cifar_not_a_pickle(tmp_path):
    make_cifar10(tmp_path)
    (tmp_path / "test_batch").write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="test_batch.*not a readable CIFAR pickle"):
        load("cifar10", tmp_path)
    write_pickle(tmp_path / "test_batch", [1, 2, 3])
    with pytest.raises(ValueError, match="test_batch.*dict"):
        load("cifar10", tmp_path)
