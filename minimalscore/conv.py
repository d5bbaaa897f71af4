"""conv2d: 2-D convolution, stride 1, with zero padding and dilation, as the network layers use it.

    y[n, o, h, w] = sum_{c, i, j} w[o, c, i, j] x_pad[n, c, h + d i, w + d j]

for x (N, C, H, W), w (O, C, kh, kw), x_pad = x with p zeros on each side, dilation d (Yu &
Koltun 2016): a cross-correlation, as in PyTorch. The output is (N, O, H + 2p - d(kh - 1),
W + 2p - d(kw - 1)). ``conv2d_reference`` is this definition written plainly; ``conv2d``
computes it as a closed family of autograd primitives (below the definition), and the tests
check one against the other. The layer, with its bias and PyTorch's initialisation, is
``nn.conv2d_layer``.
"""
import autograd.numpy as anp
from autograd.extend import defvjp, primitive

from . import backend, checks


def conv2d_reference(x, w, padding=0, dilation=1):
    """The definition: a sum over kernel taps (i, j) of w[:, :, i, j] applied to the shifted,
    padded input (autograd.numpy throughout; slower, for checking ``conv2d``)."""
    p, d = _check(x, w, padding, dilation)
    x_pad = anp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), "constant")
    kh, kw = w.shape[2:]
    ho, wo = x_pad.shape[2] - d * (kh - 1), x_pad.shape[3] - d * (kw - 1)
    return sum(anp.einsum("nchw,oc->nohw", x_pad[:, :, d * i:d * i + ho, d * j:d * j + wo], w[:, :, i, j])
               for i in range(kh) for j in range(kw))


def conv2d(x, w, padding=0, dilation=1):
    """The convolution of the module docstring, as ``conv2d_reference``, computed by ``_conv``.
    padding: an integer, 0 <= padding <= dilation (k - 1) (the output never grows); dilation >= 1."""
    padding, dilation = _check(x, w, padding, dilation)
    return _conv(x, w, (padding, padding), dilation)


def _check(x, w, padding, dilation):
    """conv2d's arguments checked; returns (padding, dilation) as Python ints."""
    checks.array("x", x, ndim=4)
    checks.array("w", w, ndim=4)
    padding = checks.count("padding", padding, minimum=0)
    dilation = checks.count("dilation", dilation)
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"w: expected (O, C, kh, kw) with x's C = {x.shape[1]} input channels, "
                         f"got shape {tuple(w.shape)}")
    if padding > dilation * (min(w.shape[2:]) - 1):
        raise ValueError(f"padding: expected at most dilation*(k-1) = {dilation * (min(w.shape[2:]) - 1)} "
                         f"for kernel {tuple(w.shape[2:])}, got {padding}")
    if min(x.shape[2:]) + 2 * padding - dilation * (max(w.shape[2:]) - 1) < 1:
        raise ValueError(f"x: the dilated kernel {tuple(w.shape[2:])} (dilation {dilation}) does not "
                         f"fit the padded input {tuple(x.shape[2:])} (padding {padding})")
    return padding, dilation


# The fast path. The input gradient of y is the same convolution of g with the flipped,
# transposed kernel and padding d(k-1) - p; its weight gradient is a correlation of x_pad with g.
# All three run on a flattened padded grid: with the padded input laid out as (C, positions),
# tap (i, j) reads it shifted by d(i Ws + j) positions, so the convolution is a sum of shifted
# matrix products. Stacking the kh row shifts (kh copies of the input, where im2col makes kh kw)
# leaves kw products (O, kh C) @ (kh C, positions). Neighbours share their padding: a row holds
# its p left zeros only (a tap reading past its right end lands in the next row's left zeros)
# and an image its top zeros only (the next image's top zeros serve as its bottom ones), so a
# row is W + p wide, not W + 2p, and an image H + p high: 19% fewer positions for a 3x3 "same"
# convolution of an 8x8 image, 44% at dilation 4. Positions off the output (the last
# d(k-1) - p columns of a row and rows of an image) compute garbage that is cropped away; the
# kept ones read only their own image and zeros.
def _row_shifts(x, kernel, padding, dilation):
    """R[(i, c), q] = grid[c, q + d*i*Ws]: x on the shared-padding grid (C, (N + extra) Hs Ws),
    Hs = H + ph and Ws = W + pw, its kh row shifts stacked, q running over the N Hs Ws
    positions plus the d(kw - 1) that the column shifts read beyond them: R is
    (kh C, N Hs Ws + d(kw - 1)). The extra zero images hold what the taps of the last image
    read past its end. Returns R and (N, Hs, Ws)."""
    xp = backend.xp
    (n, c, h, w), (kh, kw), (ph, pw) = x.shape, kernel, padding
    hs, ws = h + ph, w + pw
    overrun = dilation * ((kh - 1) * ws + kw - 1)  # how far the last position's taps read
    grid = xp.zeros((c, n + -(-overrun // (hs * ws)), hs, ws), dtype=x.dtype)
    grid[:, :n, ph:, pw:] = xp.transpose(x, (1, 0, 2, 3))
    flat = grid.reshape(c, -1)
    length = n * hs * ws + dilation * (kw - 1)
    rows = xp.stack([flat[:, dilation * i * ws:dilation * i * ws + length] for i in range(kh)])
    return rows.reshape(kh * c, length), (n, hs, ws)


def _output_size(x_shape, kernel, padding, dilation):
    return tuple(s + 2 * p - dilation * (k - 1) for s, k, p in zip(x_shape[2:], kernel, padding))


@primitive
def _conv(x, w, padding, dilation):
    xp = backend.xp
    o, c, kh, kw = w.shape
    rows, (n, hs, ws) = _row_shifts(x, (kh, kw), padding, dilation)
    size = n * hs * ws
    w_taps = xp.transpose(w, (3, 0, 2, 1)).reshape(kw, o, kh * c)  # [j] = (O, (i, c)), R's row order
    y = xp.matmul(w_taps[0], rows[:, :size])
    for j in range(1, kw):
        y += w_taps[j] @ rows[:, dilation * j:dilation * j + size]
    ho, wo = _output_size(x.shape, (kh, kw), padding, dilation)
    return xp.transpose(y.reshape(o, n, hs, ws)[:, :, :ho, :wo], (1, 0, 2, 3))


@primitive
def _conv_weight_grad(x, g, kernel, padding, dilation):
    """dL/dw of _conv for output cotangent g: dw[o,c,i,j] = sum_{n,h,w} g[n,o,h,w] x_pad[n,c,h+d*i,w+d*j],
    i.e. g laid on the grid (zeros off the output positions) times each column shift of R."""
    xp = backend.xp
    kh, kw = kernel
    rows, (n, hs, ws) = _row_shifts(x, kernel, padding, dilation)
    o, ho, wo = g.shape[1:]
    g_grid = xp.zeros((o, n, hs, ws), dtype=g.dtype)
    g_grid[:, :, :ho, :wo] = xp.transpose(g, (1, 0, 2, 3))
    g_flat = g_grid.reshape(o, n * hs * ws)
    dw = xp.stack([g_flat @ rows[:, dilation * j:dilation * j + g_flat.shape[1]].T for j in range(kw)])
    return xp.transpose(dw.reshape(kw, o, kh, x.shape[1]), (1, 3, 2, 0))


def _transposed_padding(kernel, padding, dilation):
    return tuple(dilation * (k - 1) - p for k, p in zip(kernel, padding))


def _conv_input_grad(g, w, padding, dilation):
    """dL/dx of _conv: the convolution of g with the flipped, channel-transposed kernel."""
    w_flip = anp.transpose(w, (1, 0, 2, 3))[:, :, ::-1, ::-1]
    return _conv(g, w_flip, _transposed_padding(w.shape[2:], padding, dilation), dilation)


defvjp(_conv,
       lambda y, x, w, padding, dilation: lambda g: _conv_input_grad(g, w, padding, dilation),
       lambda y, x, w, padding, dilation: lambda g: _conv_weight_grad(x, g, w.shape[2:], padding, dilation))
defvjp(_conv_weight_grad,
       lambda dw, x, g, kernel, padding, dilation: lambda v: _conv_input_grad(g, v, padding, dilation),
       lambda dw, x, g, kernel, padding, dilation: lambda v: _conv(x, v, padding, dilation))
