"""NCSN-lite: its layers (against their formulas, differentiable to second order), its shapes and
size, its conditioning on any noise level between the trained ones, its argument checks, and the
scaling that keeps every noise level's loss O(1) (ermongroup/ncsn#9)."""
import numpy as np
import pytest
from autograd import make_vjp
from autograd.test_util import check_grads
from hypothesis import given, settings, strategies as st

import minimalscore as ms
from minimalscore import ncsn, nn, objectives, ops, tree


def per_channel(a):
    return a[..., None, None]


@pytest.mark.identity
def test_instance_norm_plus_plus_is_the_papers_formula():
    """z = gamma x_hat + beta + alpha mu_hat (Song & Ermon 2019, App. A), not the released code's
    gamma (x_hat + alpha mu_hat) + beta: at eps = 0, in float64, to 1e-12 (a few roundings on
    O(1) values, summed over 30 pixels)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5, 6)) * 2 + rng.standard_normal((3, 4, 1, 1))
    gamma, beta, alpha = (rng.standard_normal((3, 4)) for _ in range(3))
    z = nn.instance_norm_plus_plus(x, gamma, beta, alpha, eps=0.0)
    mu = x.mean(axis=(2, 3))
    x_hat = (x - per_channel(mu)) / per_channel(x.std(axis=(2, 3)))
    mu_hat = (mu - mu.mean(1, keepdims=True)) / mu.std(1, keepdims=True)
    papers = per_channel(gamma) * x_hat + per_channel(beta) + per_channel(alpha * mu_hat)
    released = per_channel(gamma) * (x_hat + per_channel(alpha * mu_hat)) + per_channel(beta)
    assert np.allclose(z, papers, rtol=0, atol=1e-12)
    assert np.abs(z - released).max() > 0.1  # gamma is far from 1 here: the two forms differ
    assert np.allclose(nn.instance_norm_plus_plus_reference(x, gamma, beta, alpha, eps=0.0), papers,
                       rtol=0, atol=1e-12)
    # with gamma = 1, beta = alpha = 0 it is instance norm: every channel mean 0, variance 1
    plain = nn.instance_norm_plus_plus(x, np.ones((3, 4)), np.zeros((3, 4)), np.zeros((3, 4)), eps=0.0)
    assert np.allclose(plain.mean(axis=(2, 3)), 0, atol=1e-12) and np.allclose(plain.var(axis=(2, 3)), 1)


@pytest.mark.identity
def test_pooling_layers_match_their_definitions():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 4))
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    box = sum(padded[:, :, i:i + 6, j:j + 4] for i in range(5) for j in range(5)) / 25
    assert np.allclose(nn.avg_pool2d(x, 5), box, atol=1e-12)
    assert np.allclose(nn.mean_pool2(x), x.reshape(2, 3, 3, 2, 2, 2).mean(axis=(3, 5)))
    assert np.array_equal(ops.upsample_nearest(x, 2)[:, :, 1::2, ::2], x)


@pytest.mark.parametrize("layer", ["instance_norm_plus_plus", "avg_pool2d", "mean_pool2", "upsample_nearest"])
def test_new_layers_grads_order2(layer):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 4))
    if layer == "instance_norm_plus_plus":
        tables = [rng.standard_normal((2, 3)) for _ in range(3)]
        check_grads(nn.instance_norm_plus_plus, modes=["rev"], order=2)(x, *tables)
    else:
        check_grads(getattr(ops if layer == "upsample_nearest" else nn, layer), modes=["rev"], order=2)(x)


def test_conditional_norm_picks_each_examples_level():
    rng = ms.backend.default_rng(3)
    p = ncsn.cond_norm_init(rng, 4, 2)
    p["beta"] = ms.backend.asarray(np.arange(8.0).reshape(4, 2))
    x = ms.backend.asarray(np.random.default_rng(3).standard_normal((3, 2, 3, 3)))
    sigmas = ms.backend.asarray([1.0, 0.5, 0.25, 0.125])
    out = ncsn.cond_norm(p, x, ncsn.level_weights(sigmas[[2, 0, 3]], sigmas))
    for n, i in enumerate([2, 0, 3]):
        alone = nn.instance_norm_plus_plus(x[n:n + 1], p["gamma"][i:i + 1], p["beta"][i:i + 1], p["alpha"][i:i + 1])
        # instance norm++ mixes channels of one example only, so examples are independent
        assert np.allclose(out[n], alone[0], atol=1e-5)


# ------------------------------------------------------------ conditioning on any noise level
SCHEDULE = np.geomspace(4.8, 0.01, 21)


@pytest.mark.identity
def test_level_weights_on_the_schedule_are_rows_of_the_identity():
    """On the training levels the conditioning is exactly what it was (one level's rows), also for
    a float32 copy of a float64 schedule (rounding 6e-8, within ON_LEVEL = 1e-6 in log)."""
    for sigmas in (ms.backend.asarray(SCHEDULE), SCHEDULE):
        idx = [20, 0, 7, 13]
        weights = ncsn.level_weights(ms.backend.asarray(sigmas[idx]), sigmas)
        assert weights.dtype == np.float32 and np.array_equal(weights, np.eye(21, dtype=np.float32)[idx])


@pytest.mark.identity
@settings(max_examples=30, deadline=None, derandomize=True)
@given(u=st.floats(0.0, 1.0))
def test_level_weights_interpolate_linearly_in_log_sigma(u):
    """For all sigma in [sigma_L, sigma_1]: two adjacent nonzero weights, (1 - w, w) on the
    levels i, i+1 that bracket sigma, w = (log sigma_i - log sigma) / (log sigma_i - log sigma_{i+1})
    (so the weighted mean of log sigma_k is log sigma itself); float64 weights rounded to
    float32: 1e-6."""
    log_s = np.log(SCHEDULE[-1]) + u * (np.log(SCHEDULE[0]) - np.log(SCHEDULE[-1]))
    weights = ncsn.level_weights(np.array([np.exp(log_s)]), SCHEDULE)[0].astype(np.float64)
    i = min(int(np.sum(SCHEDULE >= np.exp(log_s))) - 1, len(SCHEDULE) - 2)
    w = (np.log(SCHEDULE[i]) - log_s) / (np.log(SCHEDULE[i]) - np.log(SCHEDULE[i + 1]))
    expected = np.zeros(len(SCHEDULE))
    expected[i], expected[i + 1] = 1 - w, w
    assert np.allclose(weights, expected, rtol=0, atol=1e-6)
    assert abs(weights @ np.log(SCHEDULE) - log_s) < 1e-5  # |log sigma| <= 5, float32 weights


def test_level_weights_clamp_outside_the_schedule():
    weights = ncsn.level_weights(np.array([100.0, 4.8, 0.01, 1e-5]), SCHEDULE)
    assert np.array_equal(weights, np.eye(21, dtype=np.float32)[[0, 0, 20, 20]])


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


def test_parameter_budget():
    # at most 0.5 M parameters at the default width (NCSN's MNIST net has 7.6 M): 182,577 with
    # 21 noise levels, 233,649 with 49 (each level adds 24 norms' three rows of 16 or 32)
    assert tree.count_params(ncsn.init(ms.backend.default_rng(0), 21)) == 182_577
    assert tree.count_params(ncsn.init(ms.backend.default_rng(0), 49)) == 233_649


def with_rows(params, i, weights):
    """params with every conditional norm's row i replaced by the rows mixed by ``weights``."""
    out = tree.tree_map(lambda a: a.copy(), params)

    def visit(node):
        if isinstance(node, dict) and set(node) == {"gamma", "beta", "alpha"}:
            for key in node:
                node[key][i] = weights @ node[key]
        elif isinstance(node, dict):
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)
    visit(out)
    return out


@pytest.mark.identity
def test_off_the_schedule_the_network_uses_the_interpolated_norm_tables(net):
    """Between levels i and i+1 the whole network equals the trained network at level i with
    each norm's rows replaced by (1 - w) row_i + w row_{i+1}, w from log sigma; the output is
    divided by the sigma given. Float32 end to end: agreement to 1e-5 relative to the output."""
    params, sigmas = net
    params = tree.tree_map(lambda a: a + 0.3 * ms.backend.default_rng(9).normal(a.shape), params)
    x = ms.backend.default_rng(6).uniform(0, 1, (2, 1, 8, 8))
    log_grid = np.log(ms.backend.asnumpy(sigmas).astype(np.float64))
    w = 0.3
    sigma = np.exp((1 - w) * log_grid[7] + w * log_grid[8])
    off = ncsn.apply(params, x, ms.backend.asarray([sigma, sigma]), sigmas) * sigma
    weights = np.zeros(len(sigmas), np.float32)
    weights[7], weights[8] = 1 - w, w
    on = ncsn.apply(with_rows(params, 7, weights), x, sigmas[[7, 7]], sigmas) * sigmas[7]
    assert np.abs(off - on).max() < 1e-5 * np.abs(on).max()
    # and it is not the level-7 network: the tables differ enough to see
    plain = ncsn.apply(params, x, sigmas[[7, 7]], sigmas) * sigmas[7]
    assert np.abs(off - plain).max() > 1e-3 * np.abs(on).max()


def test_outside_the_schedule_the_conditioning_is_clamped(net):
    params, sigmas = net
    x = ms.backend.default_rng(7).uniform(0, 1, (1, 1, 8, 8))
    for outside, end in ((50.0, 0), (1e-4, 20)):
        scaled = ncsn.apply(params, x, ms.backend.asarray([outside]), sigmas) * outside
        assert np.allclose(scaled, ncsn.apply(params, x, sigmas[[end]], sigmas) * sigmas[end], rtol=1e-5)


def test_apply_names_its_bad_arguments(net):
    params, sigmas = net
    x = ms.backend.default_rng(8).uniform(0, 1, (2, 1, 8, 8))
    sigma = sigmas[[0, 1]]
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="x: expected finite"):
        ncsn.apply(params, bad, sigma, sigmas)
    with pytest.raises(ValueError, match="x: expected images"):
        ncsn.apply(params, x[:, :, :, :, None], sigma, sigmas)
    with pytest.raises(ValueError, match="x: expected a batch-first array"):
        ncsn.apply(params, x[0, 0], sigma, sigmas)
    with pytest.raises(ValueError, match=r"sigma: expected shape \(2,\)"):
        ncsn.apply(params, x, sigmas[:3], sigmas)
    with pytest.raises(ValueError, match="sigma: expected positive"):
        ncsn.apply(params, x, -sigma, sigmas)
    with pytest.raises(ValueError, match="sigmas: expected the 21 noise levels"):
        ncsn.apply(params, x, sigma, sigmas[:5])
    with pytest.raises(ValueError, match="sigmas: expected strictly decreasing"):
        ncsn.apply(params, x, sigma, sigmas[::-1])
    with pytest.raises(TypeError, match="params"):
        ncsn.apply({"begin": 1}, x, sigma, sigmas)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(size=st.one_of(st.integers(-3, 0), st.floats(0.5, 10.5), st.just(None), st.just("4")))
def test_init_refuses_any_size_not_a_positive_integer(size):
    rng = ms.backend.default_rng(0)
    for kwargs, name in (({"n_levels": size}, "n_levels"), ({"n_levels": 2, "channels": size}, "channels"),
                         ({"n_levels": 2, "image_channels": size}, "image_channels")):
        with pytest.raises((ValueError, TypeError), match=name):
            ncsn.init(rng, **kwargs)


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
