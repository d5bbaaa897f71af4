"""Data sets and batching: toy 2-D data (swiss roll) and random mini-batches.

Data sets come back as arrays of the active backend in float32, batch first.
"""
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


def batches(x, batch_size, rng):
    """Endless random mini-batches of ``x``: a fresh permutation each epoch (sampling without
    replacement within an epoch)."""
    n = x.shape[0]
    if not 0 < batch_size:
        raise ValueError(f"batch_size: must be positive, got {batch_size}")
    batch_size = min(batch_size, n)
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            yield x[order[start:start + batch_size]]
