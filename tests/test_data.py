"""Digits and MNIST loaders: the fixed split, the scaling, IDX files (written here, gzipped and
plain), and errors that name the file and say what was expected."""
import gzip
import struct

import numpy as np
import pytest

import minimalscore as ms
from minimalscore import data


def test_digits_split_is_fixed_stratified_and_scaled():
    a, b = data.digits(), data.digits()
    (x, _), (xh, yh) = a["train"], a["held_out"]
    assert x.shape == (1500, 1, 8, 8) and xh.shape == (297, 1, 8, 8) and x.dtype == np.float32
    assert np.array_equal(x, b["train"][0]) and np.array_equal(yh, b["held_out"][1])
    assert x.min() == 0 and x.max() == 1
    # stratified: each digit has 174-183 images in sklearn's set, so 28-31 of 297 held out
    counts = np.bincount(ms.backend.asnumpy(yh), minlength=10)
    assert counts.min() >= 28 and counts.max() <= 31


def test_digits_upsampled_copies_each_pixel():
    small, big = data.digits(8)["train"][0], data.digits(16)["train"][0]
    assert big.shape == (1500, 1, 16, 16)
    for i in range(2):
        for j in range(2):
            assert np.array_equal(big[:, :, i::2, j::2], small)
    with pytest.raises(ValueError, match="multiple of 8"):
        data.digits(12)


def test_next_batch_cursor_resumes_the_same_sequence():
    x = ms.backend.asarray(np.arange(10.0)[:, None])
    rng = ms.backend.default_rng(0)
    reference = [next(b) for b in [data.batches(x, 4, rng)] for _ in range(6)]
    rng = ms.backend.default_rng(0)
    cursor, got = None, []
    for _ in range(3):
        batch, cursor = data.next_batch(x, 4, rng, cursor)
        got.append(batch)
    state = rng.get_state()
    rng2 = ms.backend.default_rng(123)
    rng2.set_state(state)
    for _ in range(3):
        batch, cursor = data.next_batch(x, 4, rng2, cursor)
        got.append(batch)
    assert all(np.array_equal(a, b) for a, b in zip(reference, got))
    # without replacement within an epoch: 2 batches of 4 from 10 points, then a new permutation
    assert len(set(np.concatenate([got[0], got[1]]).ravel())) == 8


def write_idx(path, array, gz=False, header=None):
    array = np.asarray(array, dtype=np.uint8)
    head = header if header is not None else bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = head + array.tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(payload)


@pytest.fixture
def mnist_dir(tmp_path):
    """A miniature MNIST: 6 training images of 28x28 (gzipped), 3 test images (plain files)."""
    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (6, 28, 28)), "t10k": rng.integers(0, 256, (3, 28, 28))}
    labels = {"train": np.arange(6) % 10, "t10k": np.array([7, 2, 1])}
    for split, gz in (("train", True), ("t10k", False)):
        suffix = ".gz" if gz else ""
        write_idx(tmp_path / f"{split}-images-idx3-ubyte{suffix}", images[split], gz)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte{suffix}", labels[split], gz)
    return tmp_path, images, labels


def test_mnist_reads_gzipped_and_plain_idx(mnist_dir):
    folder, images, labels = mnist_dir
    for split, key in (("train", "train"), ("test", "t10k")):
        x, y = data.mnist(str(folder), split)
        assert x.shape == (len(labels[key]), 1, 28, 28) and x.dtype == np.float32
        assert np.allclose(x[:, 0] * 255, images[key], atol=1e-4)
        assert np.array_equal(y, labels[key])


def test_mnist_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*expected the four standard IDX"):
        data.mnist(str(tmp_path))


@pytest.mark.parametrize("problem,header,payload,message", [
    ("magic", bytes([0, 0, 9, 3]) + struct.pack(">3I", 2, 2, 2), 8, "header 00 00 09 03"),
    ("ndim", bytes([0, 0, 8, 2]) + struct.pack(">2I", 4, 2), 8, "3 dimension"),
    ("truncated", bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 2, 2), 5, "8 values .* got 5 bytes"),
    ("empty", b"", 0, "got header nothing"),
])
def test_malformed_idx_errors_name_the_file(tmp_path, problem, header, payload, message):
    path = tmp_path / f"{problem}-idx3-ubyte"
    write_idx(path, np.zeros(payload), header=header)
    with pytest.raises(ValueError, match=message) as err:
        data.read_idx(str(path), 3)
    assert str(path) in str(err.value) and "unsigned bytes" in str(err.value)


def test_corrupt_gzip_and_label_count(mnist_dir):
    folder, _, _ = mnist_dir
    bad = folder / "broken-idx3-ubyte.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ValueError, match="broken-idx3-ubyte.gz: cannot read"):
        data.read_idx(str(bad), 3)
    write_idx(folder / "t10k-labels-idx1-ubyte", np.array([1, 2]))
    with pytest.raises(ValueError, match="expected 3 labels"):
        data.mnist(str(folder), "test")


def test_digits_have_17_grey_levels_and_are_not_dequantized():
    # sklearn's digits count 0..16 on-pixels of a 4x4 block: 17 levels, scaled as k / 16 exactly
    # (k / 16 is exact in float32), with no dequantization noise added
    x = ms.backend.asnumpy(data.digits()["train"][0])
    np.testing.assert_array_equal(np.unique(x * 16), np.arange(17))


@pytest.mark.parametrize("call, name", [
    (lambda x, rng: data.next_batch(x, 0, rng), "batch_size"),
    (lambda x, rng: data.next_batch(x, 2.5, rng), "batch_size"),
    (lambda x, rng: data.next_batch(x, 4, None), "rng"),
    (lambda x, rng: data.next_batch(x.tolist(), 4, rng), "x"),
    (lambda x, rng: data.next_batch(x[:0], 4, rng), "x"),
    (lambda x, rng: data.next_batch(x, 4, rng, cursor={"start": 0}), "cursor"),
    (lambda x, rng: data.batches(x, None, rng), "batch_size"),
    (lambda x, rng: data.next_batch(x[:, 0], 4, rng), "x"),  # no batch axis
    (lambda x, rng: data.next_batch(x * np.nan, 4, rng), "x"),  # checked at a run's first call
    (lambda x, rng: data.batches(x * np.inf, 4, rng), "x"),  # checked at creation
    (lambda x, rng: data.swiss_roll(0), "n"),
    (lambda x, rng: data.swiss_roll(10, noise=-1.0), "noise"),
    (lambda x, rng: data.digits(12), "size"),
    (lambda x, rng: data.digits(8.0), "size"),
    (lambda x, rng: data.mnist(".", split="validation"), "split"),
    (lambda x, rng: data.mnist(None), "data_dir"),
    (lambda x, rng: data.read_idx(3, 3), "path"),
    (lambda x, rng: data.read_idx("x-idx3-ubyte", 0), "ndim"),
])
def test_bad_arguments_raise_naming_them(call, name):
    x = ms.backend.asarray(np.arange(10.0)[:, None])
    with pytest.raises((ValueError, TypeError), match=f"^{name}:"):
        call(x, ms.backend.default_rng(0))
