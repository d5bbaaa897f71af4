"""Hand-written layers as (init, apply) function pairs over dict parameters (DESIGN.md §2).

Parameters are nested dicts/lists of arrays; ``tree_map`` walks them. Activations that sit on
the hot path (softplus, ELU) are autograd primitives with hand-written VJPs, and those VJPs are
themselves written in ``autograd.numpy``: the layers stay differentiable to any order, which
exact score matching needs (a parameter gradient of a trace is a third derivative). A dense
layer with such an activation is one primitive too (autograd's bookkeeping per operation costs
as much as the arithmetic at small sizes), and so is instance norm++. The convolution itself,
a closed family of primitives, is ``conv.py``. Each fast path has its plain version beside it
(``dense_reference``, ``instance_norm_plus_plus_reference``, ``conv.conv2d_reference``).
"""
import math

import autograd.numpy as anp
from autograd import builtins
from autograd.extend import defvjp, defvjp_argnums, primitive
from autograd.tracer import isbox

from . import backend
from .conv import conv2d


def tree_map(f, tree, *rest):
    """Apply ``f`` leaf-wise over matching nested dicts / lists / tuples of arrays."""
    if isinstance(tree, dict):
        return {k: tree_map(f, tree[k], *(r[k] for r in rest)) for k in tree}
    if isinstance(tree, (list, tuple)):
        return type(tree)(tree_map(f, *leaves) for leaves in zip(tree, *rest))
    return f(tree, *rest)


def tree_leaves(tree):
    """The arrays of a parameter tree, in a fixed order."""
    if isinstance(tree, dict):
        return [leaf for k in tree for leaf in tree_leaves(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [leaf for t in tree for leaf in tree_leaves(t)]
    return [tree]


def count_params(tree):
    return sum(int(leaf.size) for leaf in tree_leaves(tree))


def mean(x, axis, keepdims=True):
    """The mean over ``axis``, written sum / count: autograd 1.9.1's ``mean`` VJP divides by a
    NumPy int64 count, NumPy 2 promotes that to float64, and a float64 cotangent makes every
    layer below it, convolutions included, run in float64 (a third of an NCSN step's
    convolutions did, issue 8)."""
    axes = axis if isinstance(axis, tuple) else (axis,)
    return anp.sum(x, axis=axis, keepdims=keepdims) / math.prod(x.shape[a] for a in axes)


# ---------------------------------------------------------------- activations
@primitive
def softplus(x):
    """log(1 + e^x) = max(x, 0) + log1p(t), t = e^-|x| in (0, 1]: e^x never overflows.

    log1p(t) is computed as log(w) + (t - (w - 1)) / w with w = fl(1 + t): t - (w - 1) is the
    rounding error of 1 + t, recovered exactly (w - 1 is exact for w in [1, 2]), and log(w + e)
    = log(w) + e/w to first order in e ~ 2^-24 w. That keeps full relative accuracy, also for
    x << 0 where softplus(x) ~ e^x (there w = 1 and the result is t itself), from exp and log
    alone. Why not log1p itself: on AVX2 machines NumPy's float32 log1p and expm1 are scalar
    loops (~15-20 ns an element here) while exp and log are vectorised (~1.5-3 ns), so this
    form is ~3x faster (issue 7). Three arrays are allocated; every other pass runs in place."""
    xp = backend.xp
    t = xp.asarray(xp.abs(x))
    xp.negative(t, out=t)
    xp.exp(t, out=t)
    w = t + 1
    rounding = w - 1
    xp.subtract(t, rounding, out=rounding)
    rounding /= w
    xp.log(w, out=w)
    w += rounding
    w += xp.maximum(x, 0, out=t)
    return w


@primitive
def sigmoid_from_softplus(h):
    """sigmoid(x) = 1 - e^-softplus(x): softplus' derivative from its output h, one exp.

    Its absolute error is at most ~2 units of rounding (exp's own error and h's, times
    e^-h h <= 1/e), so relative accuracy is lost only where sigmoid(x) is below ~1e-3; there
    its terms in a gradient are that much smaller than the rest. (-expm1(-h) would be exact
    there too, but expm1 is ~8x slower on AVX2 NumPy: see ``softplus``.)"""
    xp = backend.xp
    d = xp.asarray(xp.negative(h))
    xp.exp(d, out=d)
    return xp.subtract(1, d, out=d)


# d/dh (1 - e^-h) = e^-h = 1 - sigmoid: a function of the output again, differentiable to any order.
defvjp(sigmoid_from_softplus, lambda d, h: lambda g: g * (1 - d))


defvjp(softplus, lambda h, x: lambda g: g * sigmoid_from_softplus(h))


@primitive
def elu(x):
    """ELU (Clevert et al. 2016, alpha = 1): x for x > 0, e^x - 1 otherwise."""
    xp = backend.xp
    return xp.where(x > 0, x, xp.exp(xp.minimum(x, 0)) - 1)


def elu_derivative_from_output(y):
    """d elu/dx = 1 for x > 0 and e^x = elu(x) + 1 otherwise, i.e. 1 + min(elu(x), 0)."""
    return 1 + anp.minimum(y, 0)


defvjp(elu, lambda y, x: lambda g: g * elu_derivative_from_output(y))


def sigmoid(x):
    return 0.5 * (anp.tanh(0.5 * x) + 1)


def swish(x):
    """Swish / SiLU (Ramachandran et al. 2017): x * sigmoid(x)."""
    return x * sigmoid(x)


ACTIVATIONS = {"softplus": softplus, "elu": elu, "swish": swish}


def activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: unknown {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


# ---------------------------------------------------------------- dense
def dense_init(rng, fan_in, fan_out):
    """PyTorch's nn.Linear default: W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    (kaiming_uniform with a = sqrt(5) gives exactly that bound for W.) W is (fan_in, fan_out),
    so a layer is ``x @ W + b`` on batch-first x.
    """
    bound = 1.0 / math.sqrt(fan_in)
    return {"W": rng.uniform(-bound, bound, (fan_in, fan_out)),
            "b": rng.uniform(-bound, bound, (fan_out,))}


# An activation whose derivative is a function of its output fuses into the dense layer: the
# VJP needs only the layer's output, which autograd keeps anyway.
DERIVATIVE_FROM_OUTPUT = {softplus: sigmoid_from_softplus, elu: elu_derivative_from_output}


def dense_reference(params, x, activation=None):
    """a(x W + b) written plainly: what ``dense`` computes, and its fallback."""
    u = anp.matmul(x, params["W"]) + params["b"]  # not @: CuPy's @ does not defer to autograd
    return u if activation is None else activation(u)


def dense(params, x, activation=None):
    """A dense layer a(x W + b) on batch-first x (a = None: linear).

    For a = None, softplus or elu it is one primitive, ``_dense``, instead of matmul, add,
    activation and two parameter look-ups: autograd's per-operation bookkeeping costs as much
    as the arithmetic at the benchmark's sizes (issue 7). Its VJP is written in
    autograd.numpy, so it differentiates again. Other activations, and layers given as plain
    dicts of traced arrays (which a primitive cannot see through), take ``dense_reference``.
    """
    fusable = activation is None or activation in DERIVATIVE_FROM_OUTPUT
    if not fusable or (not isbox(params) and any(isbox(a) for a in params.values())):
        return dense_reference(params, x, activation)
    return _dense(params, x, activation)


@primitive
def _dense(params, x, activation):
    u = x @ params["W"]
    u += params["b"]
    return u if activation is None else activation(u)


def _dense_vjp(argnums, y, args, kwargs):
    """Cotangents of a(u), u = x W + b: du = g a'(u) (a' read off y = a(u)), then
    dW = x^T du, db = sum_n du, dx = du W^T, for the arguments being differentiated. The
    parameter cotangent is autograd's traced dict, so that a higher derivative sees into it."""
    params, x, activation = args

    def vjp(g):
        du = g if activation is None else g * DERIVATIVE_FROM_OUTPUT[activation](y)
        cotangent = {0: lambda: builtins.dict(W=anp.matmul(x.T, du), b=anp.sum(du, axis=0)),
                     1: lambda: anp.matmul(du, params["W"].T)}
        return tuple(cotangent[argnum]() for argnum in argnums)
    return vjp


defvjp_argnums(_dense, _dense_vjp)


# ---------------------------------------------------------------- conv2d layer (conv.py: the primitive)
def conv2d_init(rng, in_channels, out_channels, kernel_size=3):
    """PyTorch's nn.Conv2d default: w, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C k^2."""
    bound = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
    return {"w": rng.uniform(-bound, bound, (out_channels, in_channels, kernel_size, kernel_size)),
            "b": rng.uniform(-bound, bound, (out_channels,))}


def conv2d_layer(params, x, padding=1, dilation=1):
    return conv2d(x, params["w"], padding, dilation) + params["b"][:, None, None]


# ---------------------------------------------------------------- NCSN layers (issue 8)
NORM_EPS = 1e-5  # added to both variances of instance norm++, as in NCSN's code


def _per_channel(a):
    """(N, C) -> (N, C, 1, 1), to broadcast over an image's pixels."""
    return anp.reshape(a, a.shape + (1, 1))


def instance_norm_plus_plus_reference(x, gamma, beta, alpha, eps=NORM_EPS):
    """Instance normalisation++ (Song & Ermon 2019, Appendix A; 004 §5.3) of x (N, C, H, W):

        z_k = gamma_k (x_k - mu_k) / s_k + beta_k + alpha_k (mu_k - m) / v

    mu_k, s_k: mean and standard deviation of channel k over its pixels; m, v: mean and standard
    deviation of the channel means mu_k. Plain instance norm forgets the mu_k (colour / ink
    shifts); the alpha term puts their pattern back. gamma, beta, alpha are (N, C), one row per
    example, so a noise-conditional net passes each example its own noise level's row.
    Both standard deviations are population ones (divide by the count), each with ``eps`` added
    to the variance (the released code divides v's variance by C - 1; the paper does not say).
    Written plainly, for autograd's own rules: what ``instance_norm_plus_plus`` computes.
    """
    x_hat, mu_hat = _normalise(x, eps)[:2]
    return _per_channel(gamma) * x_hat + _per_channel(beta + alpha * mu_hat)


def _normalise(x, eps):
    """x_hat = (x - mu) / s over each channel's pixels, mu_hat = (mu - m) / v over the channel
    means (N, C), and s (N, C, 1, 1), v (N, 1): instance norm++'s statistics."""
    mu = mean(x, axis=(2, 3))
    centred = x - mu
    s = anp.sqrt(mean(centred * centred, axis=(2, 3)) + eps)
    mu_centred = mu[:, :, 0, 0] - mean(mu[:, :, 0, 0], axis=1)
    v = anp.sqrt(mean(mu_centred * mu_centred, axis=1) + eps)
    return centred / s, mu_centred / v, s, v


@primitive
def instance_norm_plus_plus(x, gamma, beta, alpha, eps=NORM_EPS):
    """Instance normalisation++, as ``instance_norm_plus_plus_reference`` states it, as one
    primitive with its VJP written out (``_instance_norm_vjp``). Autograd's generic rules for
    its ~20 operations, each with a broadcast to undo, made forward + backward 2.6-3.4x slower
    at the NCSN's sizes ((64, 16 or 32, 8, 8), float32), and the NCSN has 24 of these layers.
    gamma, beta, alpha must be (N, C): the VJP returns cotangents of that shape, it does not
    undo a broadcast; eps is not differentiated."""
    if x.ndim != 4 or any(a.shape != x.shape[:2] for a in (gamma, beta, alpha)):
        raise ValueError(f"instance_norm_plus_plus: x must be (N, C, H, W) and gamma, beta, alpha "
                         f"(N, C), one row per example; got x {x.shape}, gamma {gamma.shape}, "
                         f"beta {beta.shape}, alpha {alpha.shape}")
    return instance_norm_plus_plus_reference(x, gamma, beta, alpha, eps)


def _normalise_vjp(g, x_hat, axis):
    """The VJP of x_hat = (x - mean x) / s over ``axis`` (Ioffe & Szegedy 2015): with means over
    those axes, s * dx = g - mean(g) - x_hat mean(g x_hat), exactly, eps included in s."""
    return g - mean(g, axis=axis) - x_hat * mean(g * x_hat, axis=axis)


def _instance_norm_vjp(argnums, z, args, kwargs):
    """Cotangents of z = gamma x_hat + beta + alpha mu_hat for dL/dz = g, with per-channel sums
    G = sum_pixels g and Gx = sum_pixels g x_hat (N, C):

        d beta = G,   d gamma = Gx,   d alpha = mu_hat G,
        dx = gamma / s * normalise_vjp(g, x_hat) + d mu / (H W),
        d mu = normalise_vjp(alpha G, mu_hat) / v     (the channel means are normalised too)

    in autograd.numpy, so that they differentiate again."""
    x, gamma, beta, alpha = args[:4]
    eps = args[4] if len(args) > 4 else kwargs.get("eps", NORM_EPS)

    def vjp(g):
        x_hat, mu_hat, s, v = _normalise(x, eps)
        g_sum, gx_sum = anp.sum(g, axis=(2, 3)), anp.sum(g * x_hat, axis=(2, 3))
        d_mu = _normalise_vjp(alpha * g_sum, mu_hat, 1) / v
        cotangent = {0: lambda: _per_channel(gamma) / s * _normalise_vjp(g, x_hat, (2, 3))
                     + _per_channel(d_mu) / (x.shape[2] * x.shape[3]),
                     1: lambda: gx_sum, 2: lambda: g_sum, 3: lambda: mu_hat * g_sum}
        return tuple(cotangent[argnum]() for argnum in argnums)
    return vjp


defvjp_argnums(instance_norm_plus_plus, _instance_norm_vjp)


def avg_pool2d(x, size=5):
    """Stride-1 mean over size x size windows with zero padding size // 2 (padded zeros count,
    PyTorch's default): RefineNet's chained-residual pooling, with NCSN's mean instead of max
    (004 §5.3). The box filter is separable, so it is two matrix products with banded matrices,
    B_H x B_W^T, (B)_ij = 1/size for |i - j| <= size // 2: cheap, and differentiable to any order."""
    xp = backend.xp

    def band(n):
        offset = xp.abs(xp.arange(n)[:, None] - xp.arange(n)[None, :])
        return (offset <= size // 2).astype(x.dtype) / size

    return anp.matmul(anp.matmul(band(x.shape[2]), x), band(x.shape[3]).T)


def mean_pool2(x):
    """2 x 2 mean pooling, stride 2 (H and W even): NCSN's one subsampling layer."""
    n, c, h, w = x.shape
    return mean(anp.reshape(x, (n, c, h // 2, 2, w // 2, 2)), axis=(3, 5), keepdims=False)


def upsample_nearest(x, factor=2):
    """Nearest-neighbour upsampling: each pixel becomes a factor x factor block."""
    return anp.repeat(anp.repeat(x, factor, axis=2), factor, axis=3)
