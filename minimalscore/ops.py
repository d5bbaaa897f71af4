"""Small array operations that several modules share, each defined once.

    sum_per_example(a)   (N, ...) -> (N,): the sum over every axis but the batch axis
    per_example(v, ndim) (N,) -> (N, 1, ..., 1): a per-example value broadcast against x
    per_channel(a)       (N, C) -> (N, C, 1, 1): a per-channel value broadcast over an image
    full_batch(value, x) the (N,) vector of one scalar (a noise level, a time) for x's batch
    mean(x, axis)        sum / count (keeps float32 gradients float32)
    logsumexp(a, axis)   log sum exp, shifted by the maximum
    sq_distances(a, b)   |a_i - b_j|^2 for the rows of two batches
    upsample_nearest(x)  each pixel of (N, C, H, W) images a factor x factor block
"""
import math

import autograd.numpy as anp

from . import backend, checks


def sum_per_example(a):
    """Sum over every axis but the batch axis: (N, ...) -> (N,)."""
    return anp.sum(anp.reshape(a, (a.shape[0], -1)), axis=1)


def per_example(v, ndim):
    """(N,) -> (N, 1, ..., 1): broadcasts a per-example value against an array of ``ndim`` axes."""
    return anp.reshape(v, (-1,) + (1,) * (ndim - 1))


def per_channel(a):
    """(N, C) -> (N, C, 1, 1), to broadcast over an image's pixels."""
    return anp.reshape(a, a.shape + (1, 1))


def full_batch(value, x):
    """The (N,) vector holding the scalar ``value`` once per example of x, in x's dtype."""
    return backend.xp.full((x.shape[0],), value, dtype=x.dtype)


def mean(x, axis, keepdims=True):
    """The mean over ``axis``, written sum / count: autograd 1.9's ``mean`` VJP divides by a NumPy
    int64 count, which NumPy 2 promotes to float64, and a float64 cotangent would make every
    layer below it run in float64."""
    axes = axis if isinstance(axis, tuple) else (axis,)
    return anp.sum(x, axis=axis, keepdims=keepdims) / math.prod(x.shape[a] for a in axes)


def logsumexp(a, axis=0):
    """log sum_i exp(a_i) along ``axis``, shifted by the maximum so that nothing overflows and the
    largest term is exactly exp(0) = 1 (no underflow to log 0). Differentiable by autograd."""
    a_max = anp.max(a, axis=axis, keepdims=True)
    return anp.squeeze(a_max, axis) + anp.log(anp.sum(anp.exp(a - a_max), axis=axis))


def sq_distances(a, b):
    """|a_i - b_j|^2 for the rows of a (N, ...) and b (M, ...), shape (N, M), by the Gram identity
    |a|^2 + |b|^2 - 2 a.b, clipped at 0 (rounding can make it slightly negative)."""
    xp = backend.xp
    a = xp.reshape(a, (a.shape[0], -1))
    b = xp.reshape(b, (b.shape[0], -1))
    d2 = xp.sum(a ** 2, axis=1)[:, None] + xp.sum(b ** 2, axis=1)[None, :] - 2 * a @ b.T
    return xp.maximum(d2, 0)


def upsample_nearest(x, factor=2):
    """Nearest-neighbour upsampling of (N, C, H, W) images: each pixel a factor x factor block."""
    factor = checks.count("factor", factor)
    return anp.repeat(anp.repeat(x, factor, axis=2), factor, axis=3)
