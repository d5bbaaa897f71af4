"""Models' conventions and Adam against Kingma & Ba Algorithm 1 (the training loop: test_train.py)."""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import elementwise_grad
from hypothesis import given, settings, strategies as st

import minimalscore as ms
from minimalscore import models, optim
from minimalscore.tree import tree_leaves, tree_map


@pytest.mark.identity
def test_energy_model_score_is_minus_grad_energy():
    params = tree_map(lambda a: a.astype(np.float64),
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
    grads = [tree_map(lambda a: rng.standard_normal(a.shape), theta) for _ in range(4)]
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    state, params = optim.adam_init(theta), theta
    m = tree_map(np.zeros_like, theta)
    v = tree_map(np.zeros_like, theta)
    literal = theta
    for t, g in enumerate(grads, start=1):
        params, state = optim.adam_update(params, g, state, lr, b1, b2, eps)
        m = tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = tree_map(lambda v, g: b2 * v + (1 - b2) * g ** 2, v, g)
        literal = tree_map(lambda p, m, v: p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps),
                              literal, m, v)
    for a, b in zip(tree_leaves(params), tree_leaves(literal)):
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


def adam_case():
    theta = {"layers": [{"W": np.ones((2, 2)), "b": np.zeros(2)}], "scale": np.ones(())}
    grads = tree_map(lambda a: np.full(a.shape, 0.5), theta)
    return theta, grads, optim.adam_init(theta)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(lr=st.one_of(st.floats(-10, 0), st.just(float("nan")), st.just(float("inf")), st.just(None),
                    st.just("1e-3")),
       beta=st.one_of(st.floats(1, 10), st.floats(-10, -1e-9), st.just(float("nan"))),
       eps=st.one_of(st.floats(-1, 0), st.just(float("nan"))))
def test_adam_refuses_bad_settings(lr, beta, eps):
    """For all lr not positive finite, betas outside [0, 1) and eps not > 0: an error naming it."""
    theta, grads, state = adam_case()
    for name, value in (("lr", lr), ("b1", beta), ("b2", beta), ("eps", eps)):
        kwargs = {name: value}
        with pytest.raises((ValueError, TypeError), match=name):
            optim.adam_update(theta, grads, state, **kwargs)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_adam_refuses_a_non_finite_gradient_and_names_its_leaf(bad):
    theta, grads, state = adam_case()
    grads["layers"][0]["b"][1] = bad
    with pytest.raises(ms.checks.NonFiniteError, match=r"grads\['layers'\]\[0\]\['b'\] is non-finite.*lr = 0.001"):
        optim.adam_update(theta, grads, state)
    grads["layers"][0]["b"][1] = 0.0
    grads["scale"] = np.array(bad)
    with pytest.raises(ms.checks.NonFiniteError, match=r"grads\['scale'\] is non-finite"):
        optim.adam_update(theta, grads, state)


def test_adam_refuses_mismatched_trees():
    theta, grads, state = adam_case()
    with pytest.raises(ValueError, match="grads: expected the parameters' tree"):
        optim.adam_update(theta, {"layers": grads["layers"]}, state)
    with pytest.raises(ValueError, match="grads: expected the parameters' tree"):
        optim.adam_update(theta, tree_map(lambda a: np.zeros(a.shape + (1,)), grads), state)
    with pytest.raises(TypeError, match="state"):
        optim.adam_update(theta, grads, {"m": 0})
    with pytest.raises(TypeError, match="params"):
        optim.adam_init({"w": [1.0, 2.0]})
    for name, args in (("params", (None, grads, state)), ("grads", (theta, None, state))):
        with pytest.raises(TypeError, match=f"^{name}: expected a parameter tree"):
            optim.adam_update(*args)


def test_ema_refuses_a_non_finite_average_and_missing_trees():
    theta, _, _ = adam_case()
    nan_ema = tree_map(lambda a: a * np.nan, theta)
    with pytest.raises(ms.checks.NonFiniteError, match=r"^ema\['layers'\]\[0\]\['W'\] is non-finite"):
        optim.ema_update(nan_ema, theta)
    for name, args in (("ema", (None, theta)), ("params", (theta, None))):
        with pytest.raises(TypeError, match=f"^{name}: expected a parameter tree"):
            optim.ema_update(*args)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(decay=st.one_of(st.floats(1, 10, exclude_min=True), st.floats(-10, 0, exclude_max=True),
                       st.just(float("nan")), st.just(None)))
def test_ema_refuses_a_decay_outside_the_unit_interval(decay):
    with pytest.raises((ValueError, TypeError), match="decay"):
        optim.ema_update({"w": np.zeros(2)}, {"w": np.ones(2)}, decay)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(size=st.one_of(st.integers(-3, 0), st.floats(0.5, 10.5), st.just(None), st.just("8")))
def test_model_inits_refuse_any_size_not_a_positive_integer(size):
    rng = ms.backend.default_rng(0)
    with pytest.raises((ValueError, TypeError), match=r"sizes\[1\]"):
        models.mlp_init(rng, [2, size, 2])
    with pytest.raises((ValueError, TypeError), match="dim"):
        models.noise_conditional_mlp_init(rng, size)
    with pytest.raises((ValueError, TypeError), match=r"hidden\[0\]"):
        models.energy_mlp_init(rng, 2, hidden=(size,))


def test_models_name_their_bad_arguments():
    params = models.noise_conditional_mlp_init(ms.backend.default_rng(0), 2, hidden=(4,))
    x = ms.backend.default_rng(1).normal((3, 2))
    with pytest.raises(ValueError, match=r"sigma: expected shape \(3,\)"):
        models.noise_conditional_mlp(params, x, ms.backend.asarray([1.0, 0.5]))
    with pytest.raises(ValueError, match="sigma: expected positive"):
        models.noise_conditional_mlp(params, x, ms.backend.asarray([1.0, 0.0, 0.5]))
    with pytest.raises(ValueError, match="x: expected finite"):
        models.mlp(models.mlp_init(ms.backend.default_rng(0), [2, 4, 2]), x * np.nan)
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 3\)"):  # params take 2 + log sigma
        models.mlp(params, x)
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 2\)"):
        models.noise_conditional_mlp(params, x[:, :1], ms.backend.asarray([1.0, 0.5, 0.5]))
    with pytest.raises(TypeError, match="params"):
        models.mlp({"W": x}, x)
    with pytest.raises(ValueError, match="sizes"):
        models.mlp_init(ms.backend.default_rng(0), [3])


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
