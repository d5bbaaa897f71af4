"""Fused primitives: layers computed as one autograd primitive each, with the VJP written out.

Each function here computes what a plain definition elsewhere computes, and names it:

    softplus(x)                    nn.softplus_reference: logaddexp(0, x)
    sigmoid_from_softplus(h)       nn.sigmoid(x) for h = softplus(x): softplus' derivative
    elu(x)                         nn.elu_reference: x for x > 0, e^x - 1 otherwise
    dense(params, x, activation)   nn.dense_reference: activation(x W + b)
    instance_norm_plus_plus(...)   nn.instance_norm_plus_plus_reference
    half_mean_squared_norm(r)      half_mean_squared_norm_reference: 0.5 mean_n |r_n|^2

``tests/test_fast_paths.py`` checks each pair equal, values and gradients to second order.

Why fuse: autograd records one node per operation, and at the sizes this library trains at its
per-node bookkeeping costs about as much as the arithmetic; a layer that is one primitive is one
node with its backward pass written by hand. Every VJP is written in ``autograd.numpy`` or in
terms of the primitives here, so each primitive differentiates again, to any order (exact score
matching trains on a parameter gradient of a trace: a third derivative). The convolution's
primitives are ``conv.py``.
"""
import autograd.numpy as anp
from autograd import builtins
from autograd.extend import defvjp, defvjp_argnums, primitive
from autograd.tracer import isbox

from . import backend, ops


# ---------------------------------------------------------------- softplus and its derivative
@primitive
def softplus(x):
    """softplus(x) = log(1 + e^x) (plain twin: ``nn.softplus_reference``), written
    max(x, 0) + log1p(t) with t = e^-|x| in (0, 1], so that e^x never overflows.

    log1p(t) is computed as log(w) + (t - (w - 1)) / w with w = fl(1 + t): t - (w - 1) is the
    rounding error of 1 + t, recovered exactly (w - 1 is exact for w in [1, 2]), and
    log(w + e) = log(w) + e/w to first order in e ~ 2^-24 w. That keeps full relative accuracy,
    also for x << 0 where softplus(x) ~ e^x (there w = 1 and the result is t itself), from exp
    and log alone: NumPy vectorises those on AVX2 machines but runs float32 log1p as a scalar
    loop, several times slower. Every pass but three allocations runs in place."""
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
    """sigmoid(x) = 1 - e^-h for h = softplus(x) (plain twin: ``nn.sigmoid(x)``): softplus'
    derivative read off its output, one exp.

    Its absolute error is at most ~2 units of rounding (exp's own error and h's, times
    e^-h h <= 1/e), so relative accuracy is lost only where sigmoid(x) is below ~1e-3; there
    its terms in a gradient are that much smaller than the rest. (-expm1(-h) would be exact
    there too, but expm1, like log1p, is a scalar loop in NumPy on AVX2 machines.)"""
    xp = backend.xp
    d = xp.asarray(xp.negative(h))
    xp.exp(d, out=d)
    return xp.subtract(1, d, out=d)


# d/dh (1 - e^-h) = e^-h = 1 - sigmoid: a function of the output again, differentiable to any order.
defvjp(sigmoid_from_softplus, lambda d, h: lambda g: g * (1 - d))
defvjp(softplus, lambda h, x: lambda g: g * sigmoid_from_softplus(h))


# ---------------------------------------------------------------- ELU
@primitive
def elu(x):
    """ELU (Clevert et al. 2016, alpha = 1) (plain twin: ``nn.elu_reference``), as a primitive
    whose derivative is read off its output, so that it fuses into ``dense``."""
    xp = backend.xp
    return xp.where(x > 0, x, xp.exp(xp.minimum(x, 0)) - 1)


def elu_derivative_from_output(y):
    """d elu/dx = 1 for x > 0 and e^x = elu(x) + 1 otherwise, i.e. 1 + min(elu(x), 0)."""
    return 1 + anp.minimum(y, 0)


defvjp(elu, lambda y, x: lambda g: g * elu_derivative_from_output(y))


# ---------------------------------------------------------------- dense + activation
# An activation whose derivative is a function of its output fuses into the dense layer: the
# VJP needs only the layer's output, which autograd keeps anyway.
DERIVATIVE_FROM_OUTPUT = {softplus: sigmoid_from_softplus, elu: elu_derivative_from_output}


def dense_applies(params, activation):
    """True when ``dense`` can compute this layer: the activation is None, softplus or elu, and
    the parameters are a dict autograd sees whole (a plain dict holding traced arrays, built
    inside a differentiated function, is invisible to a primitive)."""
    if activation is not None and activation not in DERIVATIVE_FROM_OUTPUT:
        return False
    return isbox(params) or not any(isbox(a) for a in params.values())


@primitive
def dense(params, x, activation):
    """activation(x W + b) as one primitive (plain twin: ``nn.dense_reference``); activation is
    None, ``softplus`` or ``elu`` (``dense_applies`` says when this applies)."""
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


defvjp_argnums(dense, _dense_vjp)


# ---------------------------------------------------------------- instance norm++
NORM_EPS = 1e-5  # added to both variances of instance norm++, as in NCSN's code


def _normalise(x, eps):
    """x_hat = (x - mu) / s over each channel's pixels, mu_hat = (mu - m) / v over the channel
    means (N, C), and s (N, C, 1, 1), v (N, 1): instance norm++'s statistics."""
    mu = ops.mean(x, axis=(2, 3))
    centred = x - mu
    s = anp.sqrt(ops.mean(centred * centred, axis=(2, 3)) + eps)
    mu_centred = mu[:, :, 0, 0] - ops.mean(mu[:, :, 0, 0], axis=1)
    v = anp.sqrt(ops.mean(mu_centred * mu_centred, axis=1) + eps)
    return centred / s, mu_centred / v, s, v


@primitive
def instance_norm_plus_plus(x, gamma, beta, alpha, eps=NORM_EPS):
    """z = gamma x_hat + beta + alpha mu_hat as one primitive with its VJP written out (plain
    twin: ``nn.instance_norm_plus_plus_reference``, which says what each term is). Autograd's
    generic rules for its ~20 operations, each with a broadcast to undo, make it several times
    slower, and the NCSN has 24 of these layers. gamma, beta, alpha are (N, C): the VJP returns
    cotangents of that shape, it does not undo a broadcast; eps is not differentiated."""
    x_hat, mu_hat = _normalise(x, eps)[:2]
    return ops.per_channel(gamma) * x_hat + ops.per_channel(beta + alpha * mu_hat)


def _normalise_vjp(g, x_hat, axis):
    """The VJP of x_hat = (x - mean x) / s over ``axis`` (Ioffe & Szegedy 2015): with means over
    those axes, s * dx = g - mean(g) - x_hat mean(g x_hat), exactly, eps included in s."""
    return g - ops.mean(g, axis=axis) - x_hat * ops.mean(g * x_hat, axis=axis)


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
        cotangent = {0: lambda: ops.per_channel(gamma) / s * _normalise_vjp(g, x_hat, (2, 3))
                     + ops.per_channel(d_mu) / (x.shape[2] * x.shape[3]),
                     1: lambda: gx_sum, 2: lambda: g_sum, 3: lambda: mu_hat * g_sum}
        return tuple(cotangent[argnum]() for argnum in argnums)
    return vjp


defvjp_argnums(instance_norm_plus_plus, _instance_norm_vjp)


# ---------------------------------------------------------------- 0.5 E|r|^2
def half_mean_squared_norm_reference(r):
    """0.5 E_n |r_n|^2 for a batch r (N, ...), written as the definition reads."""
    return 0.5 * ops.mean(ops.sum_per_example(r ** 2), axis=0, keepdims=False)


@primitive
def half_mean_squared_norm(r):
    """0.5 E_n |r_n|^2 = <r, r> / 2N (plain twin: ``half_mean_squared_norm_reference``): the mean
    of per-example sums is the total sum over N, so one dot product and one traced node where
    the definition takes six. Its VJP, g r / N, is differentiable again."""
    return backend.xp.vdot(r, r) / (2 * r.shape[0])


defvjp(half_mean_squared_norm, lambda ans, r: lambda g: g * r / r.shape[0])
