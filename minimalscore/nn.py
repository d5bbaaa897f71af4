"""Layers as (init, apply) function pairs over dict parameters, each written as it reads:

    softplus(x)      = logaddexp(0, x) = log(1 + e^x)
    sigmoid(x)       = 1 / (1 + e^-x)
    elu(x)           = x for x > 0, e^x - 1 otherwise           (Clevert et al. 2016)
    swish(x)         = x sigmoid(x)                             (Ramachandran et al. 2017)
    dense            y = act(x W + b)                           on batch-first x (N, D)
    conv2d layer     y = conv2d(x, w) + b                       (``conv.conv2d``)
    instance norm++  z_k = gamma_k x_hat_k + beta_k + alpha_k mu_hat_k   (Song & Ermon 2019, App. A)
    avg_pool2d       the mean over 5 x 5 windows, stride 1;  mean_pool2: over 2 x 2 blocks, stride 2

Parameters are nested dicts of arrays (``minimalscore.tree`` walks them). The definitions come
first, as ``*_reference`` where a faster twin exists. The names the networks call -- ``softplus``,
``elu``, ``dense``, ``instance_norm_plus_plus`` -- compute the same thing as one fused primitive
each, with its VJP written by hand (``fused.py``; ``tests/test_fast_paths.py`` checks every pair
to second order). Layers check their arguments' types and shapes but do not read their values:
a model checks its input once, at its entry.
"""
import math

import autograd.numpy as anp
from autograd.tracer import getval

from . import backend, checks, fused, ops
from .conv import conv2d


# ---------------------------------------------------------------- activations, as they read
def softplus_reference(x):
    """softplus(x) = log(1 + e^x), written logaddexp(0, x) so that e^x never overflows."""
    return anp.logaddexp(0, x)


def sigmoid(x):
    """sigmoid(x) = 1 / (1 + e^-x), written (1 + tanh(x / 2)) / 2, which never overflows."""
    return 0.5 * (anp.tanh(0.5 * x) + 1)


def elu_reference(x):
    """ELU (Clevert et al. 2016, alpha = 1): x for x > 0, e^x - 1 otherwise."""
    return anp.where(x > 0, x, anp.exp(anp.minimum(x, 0)) - 1)


def swish(x):
    """Swish / SiLU (Ramachandran et al. 2017): x sigmoid(x)."""
    return x * sigmoid(x)


# ---------------------------------------------------------------- dense
def dense_init(rng, fan_in, fan_out):
    """PyTorch's nn.Linear default: W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    (kaiming_uniform with a = sqrt(5) gives exactly that bound for W.) W is (fan_in, fan_out),
    so a layer is ``x @ W + b`` on batch-first x.
    """
    checks.rng("rng", rng)
    fan_in, fan_out = checks.count("fan_in", fan_in), checks.count("fan_out", fan_out)
    bound = 1.0 / math.sqrt(fan_in)
    return {"W": rng.uniform(-bound, bound, (fan_in, fan_out)),
            "b": rng.uniform(-bound, bound, (fan_out,))}


def dense_reference(params, x, activation=None):
    """y = act(x W + b) on batch-first x (act = None: linear), written plainly."""
    _check_dense(params, x, activation)
    u = anp.matmul(x, params["W"]) + params["b"]  # not @: CuPy's @ does not defer to autograd
    return u if activation is None else activation(u)


# ---------------------------------------------------------------- conv2d layer (conv.py: conv2d)
def conv2d_init(rng, in_channels, out_channels, kernel_size=3):
    """PyTorch's nn.Conv2d default: w, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C k^2."""
    checks.rng("rng", rng)
    c_in, c_out = checks.count("in_channels", in_channels), checks.count("out_channels", out_channels)
    k = checks.count("kernel_size", kernel_size)
    bound = 1.0 / math.sqrt(c_in * k ** 2)
    return {"w": rng.uniform(-bound, bound, (c_out, c_in, k, k)),
            "b": rng.uniform(-bound, bound, (c_out,))}


def conv2d_layer(params, x, padding=1, dilation=1):
    """y = conv2d(x, w) + b, one bias per output channel."""
    _check_layer("params", params, ("w", "b"))
    return conv2d(x, params["w"], padding, dilation) + params["b"][:, None, None]


# ---------------------------------------------------------------- instance norm++ and pooling
def instance_norm_plus_plus_reference(x, gamma, beta, alpha, eps=fused.NORM_EPS):
    """Instance normalisation++ (Song & Ermon 2019, Appendix A) of x (N, C, H, W):

        z_k = gamma_k x_hat_k + beta_k + alpha_k mu_hat_k,
        x_hat_k = (x_k - mu_k) / s_k,   mu_hat_k = (mu_k - m) / v

    mu_k, s_k: mean and standard deviation of channel k over its pixels; m, v: mean and standard
    deviation of the channel means mu_k. Plain instance norm forgets the mu_k (colour or ink
    shifts); the alpha term puts their pattern back. gamma, beta, alpha are (N, C), one row per
    example, so that a noise-conditional net gives each example its own noise level's row.

    This is the paper's form. NCSN's released code computes gamma_k (x_hat_k + alpha_k mu_hat_k)
    + beta_k instead: the same family of functions (alpha' = gamma alpha), but a different
    parametrisation; this library follows the equation a reader can check in the paper.
    Both standard deviations are population ones (divide by the count), with ``eps`` added to
    each variance (the released code divides v's variance by C - 1; the paper does not say).
    """
    eps = _check_norm(x, gamma, beta, alpha, eps)
    mu = ops.mean(x, axis=(2, 3))
    s = anp.sqrt(ops.mean((x - mu) ** 2, axis=(2, 3)) + eps)
    means = mu[:, :, 0, 0]
    m = ops.mean(means, axis=1)
    v = anp.sqrt(ops.mean((means - m) ** 2, axis=1) + eps)
    x_hat, mu_hat = (x - mu) / s, (means - m) / v
    return ops.per_channel(gamma) * x_hat + ops.per_channel(beta) + ops.per_channel(alpha) * ops.per_channel(mu_hat)


def avg_pool2d(x, size=5):
    """Stride-1 mean over size x size windows with zero padding size // 2 (padded zeros count,
    PyTorch's default): RefineNet's chained-residual pooling, with NCSN's mean instead of max.
    The box filter is separable, so it is two matrix products with banded matrices,
    B_H x B_W^T, (B)_ij = 1/size for |i - j| <= size // 2: cheap, and differentiable to any order."""
    checks.array("x", x, ndim=4)
    size = checks.count("size", size)
    if size % 2 == 0:
        raise ValueError(f"size: expected an odd window (centred on its pixel), got {size}")
    xp = backend.xp

    def band(n):
        offset = xp.abs(xp.arange(n)[:, None] - xp.arange(n)[None, :])
        return (offset <= size // 2).astype(x.dtype) / size

    return anp.matmul(anp.matmul(band(x.shape[2]), x), band(x.shape[3]).T)


def mean_pool2(x):
    """2 x 2 mean pooling, stride 2 (H and W even): NCSN's one subsampling layer."""
    checks.array("x", x, ndim=4)
    n, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"x: expected an even height and width, got shape {tuple(x.shape)}")
    return ops.mean(anp.reshape(x, (n, c, h // 2, 2, w // 2, 2)), axis=(3, 5), keepdims=False)


# ---------------------------------------------------------------- the layers the networks call
# The same functions as the definitions above, each one primitive with a hand-written VJP.
softplus = fused.softplus
elu = fused.elu


def dense(params, x, activation=None):
    """y = act(x W + b), as ``dense_reference``; for act = None, softplus or elu it runs as the
    one primitive ``fused.dense``, otherwise (or for a plain dict of traced arrays, which a
    primitive cannot see into) as ``dense_reference``."""
    if fused.dense_applies(_check_dense(params, x, activation), activation):
        return fused.dense(params, x, activation)
    return dense_reference(params, x, activation)


def instance_norm_plus_plus(x, gamma, beta, alpha, eps=fused.NORM_EPS):
    """z = gamma x_hat + beta + alpha mu_hat, as ``instance_norm_plus_plus_reference``, computed by
    the primitive ``fused.instance_norm_plus_plus``. gamma, beta, alpha must be (N, C), one row
    per example (its VJP returns cotangents of that shape; it does not undo a broadcast)."""
    eps = _check_norm(x, gamma, beta, alpha, eps)
    return fused.instance_norm_plus_plus(x, gamma, beta, alpha, eps)


# ---------------------------------------------------------------- argument checks (no values read)
def _check_dense(params, x, activation):
    _check_layer("params", params, ("W", "b"))
    checks.array("x", x, ndim=2)
    if activation is not None and not callable(activation):
        raise TypeError(f"activation: expected None or a function, got {checks.show(activation)}")
    return params


def _check_norm(x, gamma, beta, alpha, eps):
    """Instance norm++'s arguments: x (N, C, H, W), three (N, C) tables, eps >= 0 (returned)."""
    checks.array("x", x, ndim=4)
    for name, table in (("gamma", gamma), ("beta", beta), ("alpha", alpha)):
        checks.array(name, table)
        if table.shape != x.shape[:2]:
            raise ValueError(f"{name}: expected shape (N, C) = {tuple(x.shape[:2])}, one row per "
                             f"example, got {tuple(table.shape)}")
    return checks.nonnegative("eps", eps)


def _check_layer(name, params, keys):
    """A layer's parameters: a dict (possibly traced) holding ``keys``."""
    raw = getval(params)  # a traced dict's keys, without going through its box
    if not isinstance(raw, dict) or any(k not in raw for k in keys):
        raise TypeError(f"{name}: expected a layer's dict with keys {', '.join(keys)}, got "
                        f"{checks.show(params)}")
