"""The workloads' constants (bench/README.md), their data and their initial weights.

Sizes, seeds and weights are fixed and drawn with NumPy, so that another framework's version of
a workload, written with the same constants, times the same computation on the same numbers.
"""
import numpy as np

from minimalscore import backend
from minimalscore.data import swiss_roll

SIGMAS = np.geomspace(1.0, 0.01, 10).astype(np.float32)  # W1 / W6 noise levels, largest first
HIDDEN = 128
LR = 1e-3
BATCH = 512                      # W1-W3
SCALING_BATCH = 128              # W4
SCALING_DIMS = (2, 8, 32, 128)   # W4
SCALING_SIGMA = 0.1              # W4 single-level DSM
CONV_X, CONV_W, CONV_PADDING = (128, 32, 16, 16), (32, 32, 3, 3), 1   # W5
LANGEVIN_N, LANGEVIN_STEPS, LANGEVIN_EPS = 10_000, 100, 2e-5            # W6
GEMM_N = 2048
N_BATCHES = 8                    # distinct data batches cycled through while timing
CHECK_BATCH = 16                 # batch of the float64 correctness checks


def sizes(d_in, d_out):
    return [d_in, HIDDEN, HIDDEN, d_out]


def init_mlp(layer_sizes, seed=0):
    """``models.mlp`` parameters with PyTorch's nn.Linear default U(±1/sqrt(fan_in)), drawn
    drawn with NumPy, W then b per layer, on the active backend."""
    rng = np.random.default_rng(seed)
    layers = []
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        W = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32)
        b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        layers.append({"W": backend.asarray(W), "b": backend.asarray(b)})
    return {"layers": layers}


def data_batches(dim, batch, n=N_BATCHES, seed=0, data="gauss"):
    """``n`` distinct batches (N, dim) on the active backend: the swiss roll or N(0, I)."""
    if data == "swiss":
        x = backend.asnumpy(swiss_roll(batch * n, seed))
    else:
        x = np.random.default_rng(seed).standard_normal((batch * n, dim), np.float32)
    return [backend.asarray(np.ascontiguousarray(x[i * batch:(i + 1) * batch])) for i in range(n)]


def conv_inputs(seed=0, x_shape=CONV_X, w_shape=CONV_W):
    """x, w (scaled by 1/sqrt(fan_in)) and an output cotangent g, drawn with NumPy."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape, np.float32)
    w = (rng.standard_normal(w_shape, np.float32) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32)
    g = rng.standard_normal((x_shape[0], w_shape[0]) + x_shape[2:], np.float32)
    return tuple(backend.asarray(a) for a in (x, w, g))


def langevin_start(n, seed=0):
    """W6's initial particles, uniform on [-3, 3]^2."""
    return backend.asarray(np.random.default_rng(seed).uniform(-3, 3, (n, 2)).astype(np.float32))
