"""Layers: against their formulas, differentiable to second order, and their argument checks."""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import elementwise_grad, grad
from autograd.test_util import check_grads
from hypothesis import given, settings, strategies as st

import minimalscore as ms
from minimalscore import conv, nn


def conv_reference(x, w, padding, dilation):
    """The definition, independently of conv.py: a sum over kernel taps of shifted einsums."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kh, kw = w.shape[2:]
    ho, wo = xp.shape[2] - dilation * (kh - 1), xp.shape[3] - dilation * (kw - 1)
    return sum(np.einsum("nchw,oc->nohw",
                         xp[:, :, dilation * i:dilation * i + ho, dilation * j:dilation * j + wo],
                         w[:, :, i, j]) for i in range(kh) for j in range(kw))


@pytest.mark.identity
def test_softplus_matches_log1p_in_float64_and_float32():
    x = np.linspace(-40, 40, 10001)
    exact = np.log1p(np.exp(x))  # overflows nowhere on [-40, 40]
    assert np.max(np.abs(nn.softplus(x) - exact)) < 1e-14
    # float32: one rounding per operation on values O(1) near 0, O(|x|) far out -> relative 1e-7
    err32 = np.abs(nn.softplus(x.astype(np.float32)) - exact)
    assert np.max(err32 / np.maximum(1.0, exact)) < 2e-7


@pytest.mark.identity
def test_activation_derivatives():
    x = np.linspace(-5, 5, 100)  # not 0: elu' has a kink there
    sig = 1 / (1 + np.exp(-x))
    assert np.allclose(nn.sigmoid(x), sig, rtol=0, atol=1e-15)
    assert np.allclose(elementwise_grad(nn.softplus)(x), sig, atol=1e-14)
    assert np.allclose(elementwise_grad(nn.elu)(x), np.where(x > 0, 1, np.exp(x)), atol=1e-14)
    assert np.allclose(elementwise_grad(nn.swish)(x), sig + x * sig * (1 - sig), atol=1e-14)


@pytest.mark.parametrize("f", [nn.softplus, nn.elu, nn.swish, nn.sigmoid, nn.softplus_reference,
                               nn.elu_reference])
def test_activation_grads_order2(f):
    # points away from 0: elu' has a kink at 0 that finite differences would straddle
    x = np.array([-3.0, -1.2, -0.4, 0.3, 0.9, 2.5])
    check_grads(f, modes=["rev"], order=2)(x)


@pytest.mark.identity
@pytest.mark.parametrize("padding,dilation", [(0, 1), (1, 1), (2, 2), (1, 2), (0, 3)])
def test_conv2d_matches_definition_and_grads_order2(padding, dilation):
    rng = np.random.default_rng(padding * 10 + dilation)
    x = rng.standard_normal((2, 3, 8, 7))
    w = rng.standard_normal((4, 3, 3, 3))
    y = conv.conv2d(x, w, padding, dilation)
    assert np.allclose(y, conv_reference(x, w, padding, dilation), atol=1e-12)
    plain = conv.conv2d_reference(x, w, padding, dilation)
    assert np.allclose(plain, conv_reference(x, w, padding, dilation), atol=1e-12)
    check_grads(lambda x, w: conv.conv2d(x, w, padding, dilation), modes=["rev"], order=2)(x, w)


@settings(max_examples=15, deadline=None, derandomize=True)
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
    x, w = np.zeros((2, 3, 6, 6)), np.zeros((4, 3, 3, 3))
    with pytest.raises(ValueError, match="w: expected .* 3 input channels"):
        conv.conv2d(x, np.zeros((4, 2, 3, 3)))
    with pytest.raises(ValueError, match="padding: expected at most"):
        conv.conv2d(x, w, padding=3)
    with pytest.raises(ValueError, match="x: the dilated kernel"):
        conv.conv2d(x, np.zeros((4, 3, 5, 5)), padding=0, dilation=2)
    with pytest.raises(TypeError, match="x: expected a numpy array"):
        conv.conv2d([[1.0]], w)
    with pytest.raises(ValueError, match="w: expected an array with 4 axes"):
        conv.conv2d(x, np.zeros((4, 3, 3)))


@settings(max_examples=20, deadline=None, derandomize=True)
@given(padding=st.one_of(st.integers(-5, -1), st.floats(0.5, 2.5), st.just(None), st.just("1")),
       dilation=st.one_of(st.integers(-5, 0), st.floats(0.5, 2.5), st.just(None), st.just(True)))
def test_conv2d_refuses_any_non_integer_or_negative_padding_and_dilation(padding, dilation):
    """For all paddings not integers >= 0 and all dilations not integers >= 1: a ValueError or
    TypeError naming the argument (and a valid one alongside still works)."""
    x, w = np.zeros((1, 1, 6, 6)), np.zeros((1, 1, 3, 3))
    with pytest.raises((ValueError, TypeError), match="padding"):
        conv.conv2d(x, w, padding, 1)
    with pytest.raises((ValueError, TypeError), match="dilation"):
        conv.conv2d(x, w, 1, dilation)
    assert conv.conv2d(x, w, 1, 1).shape == (1, 1, 6, 6)


def test_dense_init_is_pytorch_default():
    rng = ms.backend.default_rng(0)
    layer = nn.dense_init(rng, 64, 1000)
    bound = 1 / 8
    assert layer["W"].shape == (64, 1000) and layer["b"].shape == (1000,)
    assert layer["W"].dtype == np.float32
    assert np.abs(layer["W"]).max() <= bound and np.abs(layer["W"]).max() > 0.99 * bound
    # U(-a, a) has variance a^2/3; 64000 draws: relative se of the variance ~ sqrt(0.8/64000) ~ 0.4%
    assert abs(layer["W"].var() / (bound ** 2 / 3) - 1) < 0.02


@settings(max_examples=20, deadline=None, derandomize=True)
@given(size=st.one_of(st.integers(-3, 0), st.floats(0.5, 10.5), st.just(None), st.just("8")))
def test_inits_refuse_any_size_not_a_positive_integer(size):
    rng = ms.backend.default_rng(0)
    with pytest.raises((ValueError, TypeError), match="fan_in"):
        nn.dense_init(rng, size, 4)
    with pytest.raises((ValueError, TypeError), match="out_channels"):
        nn.conv2d_init(rng, 2, size)
    with pytest.raises(TypeError, match="rng"):
        nn.dense_init(np.random.default_rng(0), 3, 4)


def test_layers_name_their_bad_arguments():
    x = np.zeros((2, 3))
    with pytest.raises(TypeError, match="params"):
        nn.dense({"W": np.zeros((3, 4))}, x)
    with pytest.raises(ValueError, match="x: expected an array with 2 axes"):
        nn.dense({"W": np.zeros((3, 4)), "b": np.zeros(4)}, np.zeros(3))
    with pytest.raises(TypeError, match="activation"):
        nn.dense({"W": np.zeros((3, 4)), "b": np.zeros(4)}, x, "softplus")
    with pytest.raises(ValueError, match="size: expected an odd window"):
        nn.avg_pool2d(np.zeros((1, 1, 4, 4)), 4)
    with pytest.raises(ValueError, match="x: expected an even height"):
        nn.mean_pool2(np.zeros((1, 1, 5, 4)))
    with pytest.raises(ValueError, match="eps"):
        nn.instance_norm_plus_plus(np.zeros((1, 2, 3, 3)), *(np.ones((1, 2)),) * 3, eps=-1.0)
