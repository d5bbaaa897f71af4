"""Data sets and batching: toy 2-D data (swiss roll), handwritten digits (scikit-learn's 8x8
digits, MNIST from its IDX files) and random mini-batches.

Data sets come back as arrays of the active backend in float32, batch first; images as
(N, 1, H, W) with values in [0, 1], labels as integers.
"""
import gzip
import math
import os
import struct

from . import backend


def swiss_roll(n, seed=0, noise=0.0):
    """The 2-D swiss roll: scikit-learn's ``make_swiss_roll``, columns 0 and 2, divided by 5
    (DESIGN.md §7, W1), so the data spans about [-2, 2.6]^2."""
    try:
        from sklearn.datasets import make_swiss_roll
    except ImportError as err:
        raise RuntimeError("swiss_roll needs scikit-learn: pip install -e .[examples]") from err
    x, _ = make_swiss_roll(n, noise=noise, random_state=seed)
    return backend.asarray(x[:, [0, 2]] / 5)


def next_batch(x, batch_size, rng, cursor=None):
    """One random mini-batch of ``x``, sampling without replacement within an epoch: returns
    (batch, cursor). The cursor {"order", "start"} is the epoch's permutation and the position in
    it, plain data, so that a checkpoint can hold it and a resumed run draws the same batches."""
    n = x.shape[0]
    if not 0 < batch_size:
        raise ValueError(f"batch_size: must be positive, got {batch_size}")
    batch_size = min(batch_size, n)
    if cursor is None or cursor["start"] + batch_size > n:
        cursor = {"order": rng.permutation(n), "start": 0}
    start = cursor["start"]
    return x[cursor["order"][start:start + batch_size]], {"order": cursor["order"], "start": start + batch_size}


def batches(x, batch_size, rng):
    """Endless random mini-batches of ``x``: a fresh permutation each epoch (``next_batch``)."""
    cursor = None
    while True:
        batch, cursor = next_batch(x, batch_size, rng, cursor)
        yield batch


def upsample(images, factor):
    """Nearest-neighbour upsampling of (N, C, H, W) images: each pixel becomes a factor^2 block."""
    xp = backend.xp
    return xp.repeat(xp.repeat(images, factor, axis=2), factor, axis=3)


DIGITS_HELD_OUT = 297  # sklearn's 1,797 digits: 1,500 to train on, 297 held out (stratified)


def digits(size=8):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 16 grey levels), scaled to
    [0, 1], optionally upsampled by nearest neighbour to ``size`` (a multiple of 8).

    Returns {"train": (x, y), "held_out": (x, y)}: a fixed, stratified split (random_state 0), x
    (N, 1, size, size) float, y (N,) int.
    """
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as err:
        raise RuntimeError("digits needs scikit-learn: pip install -e .[examples]") from err
    if size % 8:
        raise ValueError(f"size: must be a multiple of 8 (nearest-neighbour upsampling), got {size}")
    bunch = load_digits()
    x_tr, x_ho, y_tr, y_ho = train_test_split(bunch.images / 16.0, bunch.target, random_state=0,
                                              test_size=DIGITS_HELD_OUT, stratify=bunch.target)
    images = lambda a: upsample(backend.asarray(a)[:, None], size // 8)
    return {"train": (images(x_tr), backend.asarray(y_tr)), "held_out": (images(x_ho), backend.asarray(y_ho))}


# ---------------------------------------------------------------- MNIST (IDX files)
# IDX (LeCun et al.): two zero bytes, a type code (0x08: unsigned bytes), the number of
# dimensions, each dimension as a big-endian uint32, then the values in C order.
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path, ndim):
    """An unsigned-byte IDX file (gzipped when the name ends in .gz) as an integer array of
    ``ndim`` dimensions; ValueError naming the file and what was expected if it is malformed."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # a truncated or corrupt .gz fails here
        raise ValueError(f"{path}: cannot read an IDX file ({err})") from err
    expected = f"an IDX file of unsigned bytes with {ndim} dimension(s) (header 00 00 08 {ndim:02x})"
    if len(raw) < 4 + 4 * ndim or raw[:3] != b"\x00\x00\x08" or raw[3] != ndim:
        raise ValueError(f"{path}: expected {expected}, got header {raw[:4].hex(' ') or 'nothing'}")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    payload = raw[4 + 4 * ndim:]
    if len(payload) != math.prod(shape):
        raise ValueError(f"{path}: expected {expected} holding {math.prod(shape)} values for shape "
                         f"{shape}, got {len(payload)} bytes of data")
    return backend.xp.asarray(memoryview(payload)).reshape(shape)


def _find(data_dir, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(data_dir, candidate)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{os.path.join(data_dir, name)}[.gz]: MNIST file not found; expected "
                            f"the four standard IDX files ({', '.join(sum(MNIST_FILES.values(), ()))}, "
                            f"gzipped or not) in {data_dir}")


def mnist(data_dir, split="train"):
    """MNIST from the standard IDX files in ``data_dir`` (gzipped or not): (x, y) with x
    (N, 1, 28, 28) in [0, 1] and y (N,) int, for ``split`` "train" or "test"."""
    if split not in MNIST_FILES:
        raise ValueError(f"split: {split!r}; choose 'train' or 'test'")
    image_path, label_path = (_find(data_dir, name) for name in MNIST_FILES[split])
    images, labels = read_idx(image_path, 3), read_idx(label_path, 1)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{label_path}: expected {images.shape[0]} labels, one per image of "
                         f"{image_path}, got {labels.shape[0]}")
    return backend.asarray(images[:, None] / 255.0), labels.astype(backend.xp.int64)
