"""Models' conventions, Adam against Kingma & Ba Algorithm 1, and the training loop."""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import elementwise_grad

import minimalscore as ms
from minimalscore import models, nn, optim, train


@pytest.mark.identity
def test_energy_model_score_is_minus_grad_energy():
    params = nn.tree_map(lambda a: a.astype(np.float64),
                         models.energy_mlp_init(ms.backend.default_rng(0), 3, hidden=(8, 8)))
    x = np.random.default_rng(1).standard_normal((5, 3))
    minus_grad = -elementwise_grad(lambda y: anp.sum(models.energy_mlp(params, y)))(x)
    assert np.allclose(models.energy_score(params, x), minus_grad, atol=1e-14)
    # the sign convention, on an energy with a known answer: E = |x|²/2 -> score = -x
    quadratic = {"layers": [{"W": np.eye(3), "b": np.zeros(3)}]}
    square = lambda y: 0.5 * anp.sum(models.mlp(quadratic, y) ** 2, axis=1)
    assert np.allclose(-elementwise_grad(lambda y: anp.sum(square(y)))(x), -x)


@pytest.mark.identity
def test_noise_conditional_mlp_scales_by_sigma():
    params = models.noise_conditional_mlp_init(ms.backend.default_rng(0), 2, hidden=(8,))
    x = ms.backend.default_rng(1).normal((4, 2))
    sigma = ms.backend.asarray([1.0, 0.5, 0.1, 0.01])
    out = models.noise_conditional_mlp(params, x, sigma)
    raw = models.mlp(params, anp.concatenate([x, anp.log(sigma)[:, None]], axis=1))
    assert out.shape == (4, 2) and out.dtype == np.float32
    assert np.allclose(out * sigma[:, None], raw, rtol=1e-6)


@pytest.mark.identity
def test_adam_matches_algorithm_1():
    """Kingma & Ba Algorithm 1 written literally (bias-corrected m̂, v̂) in float64."""
    rng = np.random.default_rng(0)
    theta = {"w": rng.standard_normal(5), "nested": [rng.standard_normal((2, 2))]}
    grads = [nn.tree_map(lambda a: rng.standard_normal(a.shape), theta) for _ in range(4)]
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    state, params = optim.adam_init(theta), theta
    m = nn.tree_map(np.zeros_like, theta)
    v = nn.tree_map(np.zeros_like, theta)
    literal = theta
    for t, g in enumerate(grads, start=1):
        params, state = optim.adam_update(params, g, state, lr, b1, b2, eps)
        m = nn.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = nn.tree_map(lambda v, g: b2 * v + (1 - b2) * g ** 2, v, g)
        literal = nn.tree_map(lambda p, m, v: p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps),
                              literal, m, v)
    for a, b in zip(nn.tree_leaves(params), nn.tree_leaves(literal)):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-15)
    assert state["t"] == 4
    # the first step moves every coordinate by ~lr (m̂/√v̂ = sign(g))
    p1, _ = optim.adam_update(theta, grads[0], optim.adam_init(theta), lr)
    assert np.allclose(np.abs(p1["w"] - theta["w"]), lr, rtol=1e-4)


def test_adam_keeps_float32_and_inputs_unmodified():
    theta = {"w": ms.backend.asarray([1.0, -2.0])}
    g = {"w": ms.backend.asarray([0.5, 0.5])}
    state = optim.adam_init(theta)
    new, new_state = optim.adam_update(theta, g, state)
    assert new["w"].dtype == new_state["m"]["w"].dtype == new_state["v"]["w"].dtype == np.float32
    assert np.all(theta["w"] == np.array([1.0, -2.0], np.float32)) and state["t"] == 0


def test_ema_update():
    ema = {"w": np.array([0.0])}
    for _ in range(3):
        ema = optim.ema_update(ema, {"w": np.array([1.0])}, decay=0.5)
    assert np.isclose(ema["w"][0], 1 - 0.5 ** 3)


def test_swiss_roll_and_batches():
    x = ms.data.swiss_roll(1000)
    assert x.shape == (1000, 2) and x.dtype == np.float32
    assert -2.5 < float(x.min()) and float(x.max()) < 3.0
    rng = ms.backend.default_rng(0)
    it = ms.data.batches(x, 300, rng)
    epoch = np.concatenate([next(it) for _ in range(3)])
    assert epoch.shape == (900, 2) and len(np.unique(epoch[:, 0])) == 900  # without replacement
    with pytest.raises(ValueError, match="batch_size"):
        next(ms.data.batches(x, 0, rng))
