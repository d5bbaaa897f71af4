"""NCSN-lite: its layers (against their formulas, differentiable to second order), its shapes and
size, and the scaling that keeps every noise level's loss O(1) (ermongroup/ncsn#9)."""
import numpy as np
import pytest
from autograd import make_vjp
from autograd.test_util import check_grads

import minimalscore as ms
from minimalscore import ncsn, nn, objectives


@pytest.mark.identity
def test_instance_norm_plus_plus_matches_its_formula():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5, 6)) * 2 + rng.standard_normal((3, 4, 1, 1))
    gamma, beta, alpha = (rng.standard_normal((3, 4)) for _ in range(3))
    z = nn.instance_norm_plus_plus(x, gamma, beta, alpha, eps=0.0)
    mu = x.mean(axis=(2, 3))
    s = x.std(axis=(2, 3))
    ref = (gamma[..., None, None] * (x - mu[..., None, None]) / s[..., None, None] + beta[..., None, None]
           + alpha[..., None, None] * ((mu - mu.mean(1, keepdims=True)) / mu.std(1, keepdims=True))[..., None, None])
    assert np.allclose(z, ref, atol=1e-12)
    # with gamma = 1, beta = alpha = 0 it is instance norm: every channel mean 0, variance 1
    plain = nn.instance_norm_plus_plus(x, np.ones((3, 4)), np.zeros((3, 4)), np.zeros((3, 4)), eps=0.0)
    assert np.allclose(plain.mean(axis=(2, 3)), 0, atol=1e-12) and np.allclose(plain.var(axis=(2, 3)), 1)


def test_pooling_layers_match_their_definitions():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 4))
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    box = sum(padded[:, :, i:i + 6, j:j + 4] for i in range(5) for j in range(5)) / 25
    assert np.allclose(nn.avg_pool2d(x, 5), box, atol=1e-12)
    assert np.allclose(nn.mean_pool2(x), x.reshape(2, 3, 3, 2, 2, 2).mean(axis=(3, 5)))
    assert np.array_equal(nn.upsample_nearest(x, 2)[:, :, 1::2, ::2], x)


@pytest.mark.parametrize("layer", ["instance_norm_plus_plus", "avg_pool2d", "mean_pool2", "upsample_nearest"])
def test_new_layers_grads_order2(layer):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 4))
    if layer == "instance_norm_plus_plus":
        tables = [rng.standard_normal((2, 3)) for _ in range(3)]
        check_grads(nn.instance_norm_plus_plus, modes=["rev"], order=2)(x, *tables)
    else:
        check_grads(getattr(nn, layer), modes=["rev"], order=2)(x)


def test_conditional_norm_picks_each_examples_level():
    rng = ms.backend.default_rng(3)
    p = ncsn.cond_norm_init(rng, 4, 2)
    p["beta"] = ms.backend.asarray(np.arange(8.0).reshape(4, 2))
    x = ms.backend.asarray(np.random.default_rng(3).standard_normal((3, 2, 3, 3)))
    levels = ncsn.one_hot(ms.backend.asarray([2, 0, 3]), 4)
    out = ncsn.cond_norm(p, x, levels)
    for n, i in enumerate([2, 0, 3]):
        alone = nn.instance_norm_plus_plus(x[n:n + 1], p["gamma"][i:i + 1], p["beta"][i:i + 1], p["alpha"][i:i + 1])
        # instance norm++ mixes channels of one example only, so examples are independent
        assert np.allclose(out[n], alone[0], atol=1e-5)


def test_sigma_index_maps_the_schedule_and_refuses_other_values():
    sigmas = ms.backend.asarray(np.geomspace(4.8, 0.01, 21))
    idx = ncsn.sigma_index(sigmas[[20, 0, 7]], sigmas)
    assert list(ms.backend.asnumpy(idx)) == [20, 0, 7]
    with pytest.raises(ValueError, match="noise levels"):
        ncsn.sigma_index(ms.backend.asarray([0.5]), sigmas)


@pytest.fixture(scope="module")
def net():
    sigmas = ms.backend.asarray(np.geomspace(4.815, 0.01, 21))
    return ncsn.init(ms.backend.default_rng(0), 21, channels=8), sigmas


@pytest.mark.parametrize("size", [8, 16])
def test_shapes_and_output_scaling(net, size):
    params, sigmas = net
    rng = ms.backend.default_rng(4)
    x = rng.uniform(0, 1, (5, 1, size, size))  # 16 exercises the one subsampling and the upsampling
    sigma = sigmas[ms.backend.asarray([0, 3, 10, 15, 20])]
    s = ncsn.apply(params, x, sigma, sigmas)
    assert s.shape == x.shape and s.dtype == np.float32
    # output / sigma (NCSNv2 Technique 3): sigma * s is the raw network output, O(1) at every level
    raw = np.sqrt((ms.backend.asnumpy(s * sigma[:, None, None, None]) ** 2).mean(axis=(1, 2, 3)))
    assert np.all((raw > 0.01) & (raw < 10))


@pytest.mark.parametrize("size", [8, 16])
def test_the_backward_pass_stays_float32(net, size):
    # A float64 cotangent anywhere (autograd's mean VJP made one) turns every layer below it
    # into float64 work; the input cotangent has passed through every layer, so it shows a leak.
    params, sigmas = net
    rng = ms.backend.default_rng(5)
    x = rng.uniform(0, 1, (2, 1, size, size))
    sigma = sigmas[ms.backend.asarray([0, 20])]
    vjp, s = make_vjp(lambda y: ncsn.apply(params, y, sigma, sigmas))(x)
    assert vjp(np.ones_like(s)).dtype == np.float32
    assert nn.mean(np.ones((2, 3, 4), np.float32), axis=(1, 2)).dtype == np.float32


def test_parameter_budget():
    # a budget of at most 0.5 M parameters at the default width (NCSN's MNIST net has 7.6 M)
    params = ncsn.init(ms.backend.default_rng(0), 21)
    assert nn.count_params(params) <= 500_000
    assert nn.count_params(params) == 182_577  # the number in ncsn's docstring


@pytest.mark.identity
def test_every_level_loss_is_order_one_at_init(net):
    # ermongroup/ncsn#9: DSM targets z / sigma reach 100 at sigma = 0.01. With lambda = sigma^2
    # and s = net / sigma, level i's loss is 0.5 E||net(x~) + z||^2, the net regressing -z: about
    # D / 2 (+ 0.5 E||net||^2) at init whatever sigma. We check each level's loss per dimension
    # stays within [0.3, 3] and the levels agree within a factor 3, while plain DSM (no lambda)
    # on the same net spans four orders of magnitude (~ D / (2 sigma^2) at small sigma).
    from sklearn.datasets import load_digits
    params, sigmas = net
    x = ms.backend.asarray(load_digits().images[:64, None] / 16.0)
    dim = 64
    score = lambda y, s: ncsn.apply(params, y, s, sigmas)
    weighted, plain = [], []
    for i in range(len(sigmas)):
        one_level = sigmas[i:i + 1]
        weighted.append(float(objectives.multiscale_dsm(score, x, one_level, ms.backend.default_rng(i))) / dim)
        at_sigma = lambda y, s=sigmas[i]: score(y, ms.backend.xp.full((y.shape[0],), s))
        plain.append(float(objectives.dsm(at_sigma, x, float(sigmas[i]), ms.backend.default_rng(i))) / dim)
    weighted, plain = np.array(weighted), np.array(plain)
    assert np.all((weighted > 0.3) & (weighted < 3)), weighted
    assert weighted.max() / weighted.min() < 3
    assert plain.max() / plain.min() > 1e4
