"""Layers: hand-written primitives against plain formulas, and differentiable to second order."""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import elementwise_grad, grad
from autograd.test_util import check_grads
from hypothesis import given, settings, strategies as st

import minimalscore as ms
from minimalscore import conv, nn


def conv_reference(x, w, padding, dilation):
    """The definition: a sum over kernel taps of shifted einsums (no im2col)."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kh, kw = w.shape[2:]
    ho, wo = xp.shape[2] - dilation * (kh - 1), xp.shape[3] - dilation * (kw - 1)
    return sum(np.einsum("nchw,oc->nohw",
                         xp[:, :, dilation * i:dilation * i + ho, dilation * j:dilation * j + wo],
                         w[:, :, i, j]) for i in range(kh) for j in range(kw))


def test_softplus_matches_log1p_in_float64_and_float32():
    x = np.linspace(-40, 40, 10001)
    exact = np.logaddexp(0, x)
    assert np.max(np.abs(nn.softplus(x) - exact)) < 1e-14
    # float32: one rounding per operation on values O(1) near 0, O(|x|) far out -> relative 1e-7
    err32 = np.abs(nn.softplus(x.astype(np.float32)) - exact)
    assert np.max(err32 / np.maximum(1.0, exact)) < 2e-7


def test_activation_derivatives():
    x = np.linspace(-5, 5, 101)
    sig = 1 / (1 + np.exp(-x))
    assert np.allclose(elementwise_grad(nn.softplus)(x), sig, atol=1e-14)
    assert np.allclose(elementwise_grad(nn.elu)(x), np.where(x > 0, 1, np.exp(x)), atol=1e-14)
    assert np.allclose(elementwise_grad(nn.swish)(x), sig + x * sig * (1 - sig), atol=1e-14)


@pytest.mark.parametrize("f", [nn.softplus, nn.elu, nn.swish])
def test_activation_grads_order2(f):
    # points away from 0: elu' has a kink at 0 that finite differences would straddle
    x = np.array([-3.0, -1.2, -0.4, 0.3, 0.9, 2.5])
    check_grads(f, modes=["rev"], order=2)(x)


@pytest.mark.parametrize("padding,dilation", [(0, 1), (1, 1), (2, 2), (1, 2), (0, 3)])
def test_conv2d_matches_definition_and_grads_order2(padding, dilation):
    rng = np.random.default_rng(padding * 10 + dilation)
    x = rng.standard_normal((2, 3, 8, 7))
    w = rng.standard_normal((4, 3, 3, 3))
    y = conv.conv2d(x, w, padding, dilation)
    assert np.allclose(y, conv_reference(x, w, padding, dilation), atol=1e-12)
    check_grads(lambda x, w: conv.conv2d(x, w, padding, dilation), modes=["rev"], order=2)(x, w)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 3), o=st.integers(1, 3), k=st.sampled_from([1, 3, 5]),
       hw=st.integers(5, 9), dilation=st.integers(1, 2), data=st.data())
def test_conv2d_any_shape(n, c, o, k, hw, dilation, data):
    extent = dilation * (k - 1)
    padding = data.draw(st.integers(max(0, (extent - hw + 2) // 2), extent))
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((n, c, hw, hw + 1)), rng.standard_normal((o, c, k, k))
    assert np.allclose(conv.conv2d(x, w, padding, dilation), conv_reference(x, w, padding, dilation))


def test_conv2d_float32_stays_float32():
    rng = ms.backend.default_rng(0)
    x, w = rng.normal((2, 3, 6, 6)), rng.normal((4, 3, 3, 3))
    dx, dw = grad(lambda x, w: anp.sum(conv.conv2d(x, w, 1) ** 2), (0, 1))(x, w)
    assert conv.conv2d(x, w, 1).dtype == dx.dtype == dw.dtype == np.float32


def test_conv2d_bad_input():
    x, w = np.zeros((2, 3, 6, 6)), np.zeros((4, 2, 3, 3))
    with pytest.raises(ValueError, match="conv2d"):
        conv.conv2d(x, w)
    with pytest.raises(ValueError, match="padding"):
        conv.conv2d(x, np.zeros((4, 3, 3, 3)), padding=3)
    with pytest.raises(ValueError, match="does not fit"):
        conv.conv2d(x, np.zeros((4, 3, 5, 5)), padding=0, dilation=2)


def test_dense_init_is_pytorch_default():
    rng = ms.backend.default_rng(0)
    layer = nn.dense_init(rng, 64, 1000)
    bound = 1 / 8
    assert layer["W"].shape == (64, 1000) and layer["b"].shape == (1000,)
    assert layer["W"].dtype == np.float32
    assert np.abs(layer["W"]).max() <= bound and np.abs(layer["W"]).max() > 0.99 * bound
    # U(-a, a) has variance a^2/3; 64000 draws: relative se of the variance ~ sqrt(0.8/64000) ~ 0.4%
    assert abs(layer["W"].var() / (bound ** 2 / 3) - 1) < 0.02


def test_tree_map_and_count():
    tree = {"a": [np.ones(3), (np.ones((2, 2)),)], "b": np.zeros(1)}
    doubled = nn.tree_map(lambda p: 2 * p, tree)
    assert np.all(doubled["a"][1][0] == 2) and isinstance(doubled["a"][1], tuple)
    assert nn.count_params(tree) == 8


def test_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        nn.activation("relu6")
