"""Data sets and batching.

    swiss_roll(n)        the 2-D swiss roll (scikit-learn's, columns 0 and 2, / 5)
    digits(size)         scikit-learn's 8x8 handwritten digits, grey levels k / 16, k = 0..16
    mnist(data_dir)      MNIST from its IDX files, grey levels k / 255, k = 0..255
    next_batch, batches  random mini-batches, without replacement within an epoch

Data sets come back as arrays of the active backend in float32, batch first; images as
(N, 1, H, W) with values in [0, 1], labels as integers.
"""
import gzip
import math
import os
import struct

from . import backend, checks
from .ops import upsample_nearest


def swiss_roll(n, seed=0, noise=0.0):
    """The 2-D swiss roll: scikit-learn's ``make_swiss_roll``, columns 0 and 2, divided by 5,
    so the data spans about [-2, 2.6]^2; ``noise`` is the standard deviation of the Gaussian
    noise scikit-learn adds before the division."""
    n = checks.count("n", n)
    seed = checks.count("seed", seed, minimum=0)
    noise = checks.nonnegative("noise", noise)
    try:
        from sklearn.datasets import make_swiss_roll
    except ImportError as err:
        raise RuntimeError("swiss_roll needs scikit-learn: pip install -e .[examples]") from err
    x, _ = make_swiss_roll(n, noise=noise, random_state=seed)
    return backend.asarray(x[:, [0, 2]] / 5)


def next_batch(x, batch_size, rng, cursor=None):
    """One random mini-batch of ``x``, sampling without replacement within an epoch: returns
    (batch, cursor). The cursor {"order", "start"} is the epoch's permutation and the position in
    it, plain data, so that a checkpoint can hold it and a resumed run draws the same batches.
    ``x`` is checked finite at a run's first call (cursor None) only: one pass over the data set
    per run, none per step."""
    if cursor is None:
        checks.batch("x", x)
    n = _n_examples(x)
    batch_size, rng = min(checks.count("batch_size", batch_size), n), checks.rng("rng", rng)
    if cursor is not None and not (isinstance(cursor, dict) and {"order", "start"} <= set(cursor)):
        raise TypeError(f"cursor: expected None or the cursor next_batch returned, got "
                        f"{checks.show(cursor)}")
    return _draw(x, batch_size, rng, cursor)


def _draw(x, batch_size, rng, cursor):
    """The batch after ``cursor`` (a fresh permutation when there is none or the epoch is spent)."""
    if cursor is None or cursor["start"] + batch_size > x.shape[0]:
        cursor = {"order": rng.permutation(x.shape[0]), "start": 0}
    start = cursor["start"]
    batch = x[cursor["order"][start:start + batch_size]]
    return batch, {"order": cursor["order"], "start": start + batch_size}


def batches(x, batch_size, rng):
    """Endless random mini-batches of ``x``: a fresh permutation each epoch (``next_batch``).
    The arguments, x's finiteness included, are checked at the call, not at the first batch."""
    batch_size = min(checks.count("batch_size", batch_size), _n_examples(checks.batch("x", x)))
    rng = checks.rng("rng", rng)

    def endless():
        cursor = None
        while True:
            batch, cursor = _draw(x, batch_size, rng, cursor)
            yield batch

    return endless()


def _n_examples(x):
    """N for a batch-first array x of at least two axes, (N, D) or (N, C, H, W), N >= 1; shapes
    only, no pass over the data (next_batch runs every step)."""
    if not backend.is_array(x):
        raise TypeError(f"x: expected a {backend.name} array of shape (N, ...), got "
                        f"{checks.show(x)}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x: expected a non-empty batch-first array with ndim >= 2, (N, D) or "
                         f"(N, C, H, W), got shape {tuple(x.shape)}")
    return x.shape[0]


DIGITS_HELD_OUT = 297  # sklearn's 1,797 digits: 1,500 to train on, 297 held out (stratified)


def digits(size=8):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, grey levels 0..16: 17 of
    them), scaled to [0, 1] as k / 16, optionally upsampled by nearest neighbour to ``size`` (a
    multiple of 8).

    Returns {"train": (x, y), "held_out": (x, y)}: a fixed, stratified split (random_state 0), x
    (N, 1, size, size) float, y (N,) int.

    The levels are not dequantized. NCSN's released code adds uniform noise to each training
    batch, x / 256 * 255 + u / 256 with u ~ U[0, 1) (ermongroup/ncsn, runners/anneal_runner.py;
    NCSNv2 makes it an option, off in its configs), so that the data has a density. Here the data
    enter the objectives only through x + sigma_i z with sigma_i >= sigma_L > 0, which has a
    density whatever x is, and the examples compute no likelihood of the digits: the one place
    where discrete data needs dequantizing (a density on 17 levels is unbounded).
    """
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as err:
        raise RuntimeError("digits needs scikit-learn: pip install -e .[examples]") from err
    if checks.count("size", size) % 8:
        raise ValueError(f"size: expected a multiple of 8 (nearest-neighbour upsampling), got {size}")
    bunch = load_digits()
    x_tr, x_ho, y_tr, y_ho = train_test_split(bunch.images / 16.0, bunch.target, random_state=0,
                                              test_size=DIGITS_HELD_OUT, stratify=bunch.target)
    images = lambda a: upsample_nearest(backend.asarray(a)[:, None], size // 8)
    return {"train": (images(x_tr), backend.asarray(y_tr)), "held_out": (images(x_ho), backend.asarray(y_ho))}


# ---------------------------------------------------------------- MNIST (IDX files)
# IDX (LeCun et al.): two zero bytes, a type code (0x08: unsigned bytes), the number of
# dimensions, each dimension as a big-endian uint32, then the values in C order.
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path, ndim):
    """An unsigned-byte IDX file (gzipped when the name ends in .gz) as an integer array of
    ``ndim`` dimensions; ValueError naming the file and what was expected if it is malformed."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file name, got {checks.show(path)}")
    path, ndim = os.fspath(path), checks.count("ndim", ndim)
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
    split = checks.option("split", split, tuple(MNIST_FILES))
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir: expected a folder name, got {checks.show(data_dir)}")
    image_path, label_path = (_find(data_dir, name) for name in MNIST_FILES[split])
    images, labels = read_idx(image_path, 3), read_idx(label_path, 1)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{label_path}: expected {images.shape[0]} labels, one per image of "
                         f"{image_path}, got {labels.shape[0]}")
    return backend.asarray(images[:, None] / 255.0), labels.astype(backend.xp.int64)
