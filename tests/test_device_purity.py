"""The CuPy backend stays on the device, proven without a GPU.

``tests/fake_cupy.py`` stands in for ``cupy`` in ``sys.modules``: its arrays compute with NumPy
but refuse every implicit trip to the host and every host-array operand, at least as strictly
as CuPy, so ``backend.use("cupy")`` runs the very code path it runs on a GPU and a silent host
fallback fails with a traceback pointing where it happened. Every computation here also runs
on the NumPy backend: the device results must be device arrays, float32 where NumPy's input
was float32, and equal to NumPy's to float32 rounding (tolerances: float32 has a 6e-8 relative
unit roundoff; a few hundred operations deep, 1e-4 relative is generous and still catches any
wrong formula, whose errors are O(1)).
"""
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad, make_jvp, value_and_grad
from autograd.test_util import check_grads

import minimalscore as ms
from minimalscore import _autograd_cupy, conv, distributions, models, nn, objectives, optim, train

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def _load_fake():
    """tests/fake_cupy.py as a module named ``cupy`` (not yet in sys.modules)."""
    spec = importlib.util.spec_from_file_location("cupy", os.path.join(HERE, "fake_cupy.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FAKE = _load_fake()


@pytest.fixture
def on_device():
    """The backend on the strict stand-in; the NumPy backend and sys.modules restored after."""
    saved = sys.modules.get("cupy")
    sys.modules["cupy"] = FAKE
    try:
        ms.backend.use("cupy")
        yield FAKE
    finally:
        ms.backend.use("numpy")
        if saved is None:
            sys.modules.pop("cupy", None)
        else:
            sys.modules["cupy"] = saved


def _leaves(tree):
    if isinstance(tree, dict):
        return [leaf for k in sorted(tree, key=str) for leaf in _leaves(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [leaf for t in tree for leaf in _leaves(t)]
    return [tree]


def same_on_both(compute, what, rtol=1e-4, atol=1e-5):
    """compute() on NumPy, then on the device: every device leaf is a device array, of the dtype
    NumPy's inputs had (float32 stays float32, even where NumPy itself promotes a gradient to
    float64), and equal to NumPy's value. Returns the device leaves."""
    ms.backend.use("numpy")
    expected = _leaves(compute())
    ms.backend.use("cupy")
    got = _leaves(compute())
    assert len(got) == len(expected), what
    for i, (g, e) in enumerate(zip(got, expected)):
        if not hasattr(e, "dtype"):  # a Python number (an acceptance rate, a step count)
            assert g == pytest.approx(e, rel=rtol, abs=atol), f"{what}: leaf {i}"
            continue
        assert isinstance(g, FAKE.ndarray), f"{what}: leaf {i} is a host {type(g).__name__}"
        if e.dtype.kind == "f":
            assert g.dtype == np.float32, f"{what}: leaf {i} is {g.dtype} on the device, not float32"
        np.testing.assert_allclose(FAKE.asnumpy(g), e, rtol=rtol, atol=atol, err_msg=f"{what}: leaf {i}")
    return got


# ---------------------------------------------------------------- the stand-in is strict
LEAKS = {
    "np.asarray": lambda cp, a: np.asarray(a),
    "np.array": lambda cp, a: np.array(a),
    "tolist": lambda cp, a: a.tolist(),
    "iteration": lambda cp, a: list(a),
    "float of 1-d": lambda cp, a: float(a[:1]),
    "host operand": lambda cp, a: a + np.ones(3),
    "host operand, reflected": lambda cp, a: np.ones(3) * a,
    "host operand of a ufunc": lambda cp, a: cp.exp(np.ones(3)),
    "host array in a function": lambda cp, a: np.concatenate([a, np.ones(3)]),
    "host index": lambda cp, a: a[np.array([0, 1])],
    "host value": lambda cp, a: a.__setitem__(slice(None), np.zeros(3)),
    "ufunc.at": lambda cp, a: np.add.at(a, [0, 0], 1.0),
    "function CuPy lacks": lambda cp, a: np.trapezoid(a),
    "order=None": lambda cp, a: a.reshape((3,), order=None),
    "reshape(shape=)": lambda cp, a: np.reshape(a, shape=(3, 1)),
    "device scalar as a host index": lambda cp, a: [1, 2, 3][cp.asarray(1)],
    "pickle": lambda cp, a: __import__("pickle").dumps(a),
    "matmul with an autograd box": lambda cp, a: grad(lambda w: anp.sum(a[None] @ w))(cp.ones((3, 2))),
}


@pytest.mark.parametrize("leak", list(LEAKS))
def test_stand_in_refuses_implicit_host_transfers(on_device, leak):
    a = on_device.arange(3, dtype=np.float32)
    with pytest.raises(TypeError):
        LEAKS[leak](on_device, a)


def test_stand_in_behaves_like_cupy_where_cupy_allows(on_device):
    cp = on_device
    a = cp.arange(3, dtype=np.float32)
    total = a.sum()
    assert isinstance(total, cp.ndarray) and total.shape == ()  # reductions stay on the device
    assert float(total) == 3.0 and bool(total > 0)  # 0-d syncs are allowed
    assert (a * 2.0).dtype == np.float32 and (a * np.float64(2)).dtype == np.float64  # NumPy 2 rules
    assert isinstance(np.sum(a), cp.ndarray) and isinstance(np.maximum(a, 1), cp.ndarray)
    np.testing.assert_array_equal(cp.asnumpy(a), [0, 1, 2])
    np.testing.assert_array_equal(a.get(), [0, 1, 2])
    assert isinstance(cp.asarray(np.ones(2)), cp.ndarray)  # host -> device, explicitly
    gen = cp.random.default_rng(0)
    assert not hasattr(gen, "permutation") and callable(gen.bit_generator.state)  # CuPy's API
    saved = cp.asnumpy(gen.bit_generator._state)
    first = gen.standard_normal((4,), dtype=np.float32)
    gen.bit_generator._state[...] = cp.asarray(saved)
    np.testing.assert_array_equal(cp.asnumpy(gen.standard_normal((4,), dtype=np.float32)), cp.asnumpy(first))


def test_rng_on_device(on_device):
    """backend.RNG on CuPy's Generator API: device float32 draws, a permutation without
    Generator.permutation, and a state that round-trips through the host (a checkpoint)."""
    cp, rng = on_device, ms.backend.default_rng(7)
    draws = [rng.normal((5,)), rng.uniform(-1.0, 2.0, (5,)), rng.rademacher((5,))]
    for d in draws:
        assert isinstance(d, cp.ndarray) and d.dtype == np.float32
    order = rng.permutation(10)
    assert isinstance(order, cp.ndarray) and sorted(cp.asnumpy(order).tolist()) == list(range(10))
    picks = rng.choice(3, (1000,), p=[0.0, 0.25, 0.75])
    counts = np.bincount(cp.asnumpy(picks), minlength=3)
    # 0.25 +- 4 standard errors sqrt(0.25 * 0.75 / 1000) = 0.014
    assert counts[0] == 0 and abs(counts[1] / 1000 - 0.25) < 4 * 0.014
    state = rng.get_state()
    assert isinstance(state["curand_state"], np.ndarray)  # on the host, ready to pickle
    first = cp.asnumpy(rng.normal((4,)))
    rng.set_state(state)
    np.testing.assert_array_equal(cp.asnumpy(rng.normal((4,))), first)


# ---------------------------------------------------------------- each replaced autograd rule
# f(x) -> scalar for x of shape (3, 4): every rule _autograd_cupy replaces, and its neighbours
RULES = {
    "sum": lambda x: anp.sum(x ** 2),
    "sum over axes": lambda x: anp.sum(anp.sum(x ** 3, axis=(0,)) ** 2),
    "mean": lambda x: anp.mean(x ** 2) + anp.sum(anp.mean(x, axis=-1) ** 2),
    "var, std": lambda x: anp.var(x) + anp.sum(anp.std(x, axis=1)),
    "prod": lambda x: anp.sum(anp.prod(x, axis=0)),
    "max, min": lambda x: anp.sum(anp.max(x, axis=1) ** 2) + anp.min(x) ** 2,
    "maximum, minimum": lambda x: anp.sum(anp.maximum(x, 0.1) ** 2 + anp.minimum(x, x ** 2)),
    "slices, ints": lambda x: anp.sum(x[:, 1] ** 2) + x[2, 3] ** 3 + anp.sum(x[1:, ::2] ** 2),
    "integer-array index (repeats)": lambda x: anp.sum(x[ms.backend.xp.asarray([0, 2, 2])] ** 2),
    "boolean mask": lambda x: anp.sum(x[x > 0] ** 2),
    "concatenate": lambda x: anp.sum(anp.concatenate([x, x ** 2], axis=1) ** 2),
    "stack": lambda x: anp.sum(anp.stack([x, 2 * x], axis=0) ** 3),
    "array of a list": lambda x: anp.sum(anp.array([x[0], x[1] ** 2]) ** 2),
    "where": lambda x: anp.sum(anp.where(x > 0, x ** 2, -x)),
    "trace": lambda x: anp.trace(x[:, :3] @ x[:, :3].T) ** 2,
    "einsum, summed index": lambda x: anp.sum(anp.einsum("ij,kj->i", x, x) ** 2),
    "transpose": lambda x: anp.sum(anp.transpose(anp.reshape(x, (3, 2, 2)), (2, 0, 1))[0] ** 3),
    "reshape, ravel": lambda x: anp.sum(anp.ravel(anp.reshape(x, (4, 3))[1:]) ** 2),
    "sort": lambda x: anp.sum(anp.sort(x[0]) ** 3 * ms.backend.xp.arange(4, dtype=np.float32)),
    "dot": lambda x: anp.sum(anp.dot(x, x.T) ** 2) + anp.sum(anp.dot(x, x[0]) ** 2),
    "tensordot, inner": lambda x: (anp.sum(anp.tensordot(x, x, axes=([1], [1])) ** 2)
                                   + anp.sum(anp.tensordot(x, x, 2)) + anp.sum(anp.inner(x, x) ** 2)),
    "diagonal": lambda x: anp.sum(anp.diagonal(anp.reshape(x[:, :3], (1, 3, 3)), axis1=-1, axis2=-2) ** 3),
    "exp2, log2, log10": lambda x: anp.sum(anp.exp2(x) + anp.log2(x ** 2 + 1) + anp.log10(x ** 2 + 1)),
    "logsumexp": lambda x: anp.sum(ms.ops.logsumexp(x, axis=0) ** 2),
    "astype": lambda x: anp.sum(x.astype(np.float64) ** 2).astype(x.dtype),
}
FORWARD_MODE = ["sum", "mean", "max, min", "maximum, minimum", "slices, ints", "concatenate",
                "where", "einsum, summed index", "exp2, log2, log10", "array of a list"]


def _input(dtype=np.float32):
    return ms.backend.asarray(np.random.default_rng(3).normal(size=(3, 4)), dtype=dtype)


@pytest.mark.parametrize("rule", list(RULES))
def test_autograd_rule_first_and_second_order_on_device(on_device, rule):
    """The value, the gradient and a second-order quantity (the gradient of the squared gradient
    norm) on the device equal NumPy's, in float32."""
    f = RULES[rule]

    def compute():
        x = _input()
        value, g = value_and_grad(f)(x)
        second = grad(lambda y: anp.sum(grad(f)(y) ** 2))(x)
        return value, g, second

    same_on_both(compute, rule, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("rule", list(RULES))
def test_autograd_rule_passes_check_grads_on_device(on_device, rule):
    """autograd's own numerical check of the replaced rules, to second order, on device float64
    arrays (reverse mode; forward mode too where autograd 1.9 has JVPs that work on NumPy)."""
    modes = ["rev", "fwd"] if rule in FORWARD_MODE else ["rev"]
    check_grads(RULES[rule], modes=modes, order=2)(_input(np.float64))


def test_jvps_on_device(on_device):
    """Forward mode through the replaced JVPs stays on the device and in float32."""
    def compute():
        x = _input()
        f = lambda y: anp.where(y > 0, anp.maximum(y, 0.5), anp.max(y, axis=0))
        return make_jvp(f)(x)(anp.ones_like(x))[1]

    same_on_both(compute, "jvp")


def test_install_changes_no_numpy_result():
    """install() replaces rules only for device arrays: NumPy gradients are bit-identical before
    and after it (a subprocess, so this process's autograd is not the one compared)."""
    code = f"""
import importlib.util, sys
import numpy as np, autograd.numpy as anp
from autograd import grad
sys.path.insert(0, {REPO!r})
from tests.test_device_purity import RULES
x = np.random.default_rng(3).normal(size=(3, 4)).astype(np.float32)
def run():
    out = []
    for f in RULES.values():
        g = grad(f)(x)
        out.append((g.dtype.str, g.tobytes()))
    return out
before = run()
spec = importlib.util.spec_from_file_location("cupy", {os.path.join(HERE, 'fake_cupy.py')!r})
cupy = importlib.util.module_from_spec(spec); spec.loader.exec_module(cupy)
from minimalscore import _autograd_cupy
_autograd_cupy.install(cupy)
assert run() == before
print("same")
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "same" in result.stdout, result.stderr


def test_install_is_idempotent_and_checks_the_autograd_version(on_device, monkeypatch):
    _autograd_cupy.install(FAKE)  # a second time: nothing changes
    test_autograd_rule_first_and_second_order_on_device(on_device, "where")
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "1.10.0")
    with pytest.raises(RuntimeError, match=r"autograd 1\.10\.0 is installed.*autograd>=1\.9,<1\.10"):
        _autograd_cupy.install(FAKE)


# ---------------------------------------------------------------- training steps
def _training_step(kind):
    rng = ms.backend.default_rng(0)
    x = rng.normal((16, 2))
    sigmas = ms.backend.asarray([1.0, 0.5, 0.1])
    if kind == "multiscale_dsm":
        params = models.noise_conditional_mlp_init(rng, 2, (16, 16))
    elif kind == "energy_exact_sm":
        params = models.energy_mlp_init(rng, 2, (16, 16))
    else:
        params = models.mlp_init(rng, [2, 16, 16, 2])
    mlp = lambda p: lambda y: models.mlp(p, y)
    losses = {
        "dsm": lambda p: objectives.dsm(mlp(p), x, 0.5, rng),
        "dsm_swish": lambda p: objectives.dsm(lambda y: models.mlp(p, y, nn.swish), x, 0.5, rng),
        "multiscale_dsm": lambda p: objectives.multiscale_dsm(
            lambda y, s: models.noise_conditional_mlp(p, y, s), x, sigmas, rng),
        "exact_sm_divergence": lambda p: objectives.implicit_sm(mlp(p), x),
        "exact_sm_closed_form": lambda p: objectives.implicit_sm(
            None, x, lambda y: models.mlp_score_and_divergence(p, y)),
        "energy_exact_sm": lambda p: objectives.implicit_sm(lambda y: models.energy_score(p, y), x),
        "sliced_sm": lambda p: objectives.sliced_sm(mlp(p), x, rng, n_projections=2),
        "sliced_sm_vr": lambda p: objectives.sliced_sm(mlp(p), x, rng, variance_reduction=True,
                                                       kind="rademacher"),
        "explicit_sm": lambda p: objectives.explicit_sm(mlp(p), x, -x),
    }
    loss, grads = value_and_grad(losses[kind])(params)
    state = optim.adam_init(params)
    for _ in range(2):
        params, state = optim.adam_update(params, grads, state, lr=1e-2)
    ema = optim.ema_update(params, params, decay=0.9)
    return loss, grads, params, state["m"], state["v"], ema


# CuPy's ndarray.__matmul__ calls cupy.matmul directly instead of deferring to an autograd box
# on its right, as NumPy's does: the package writes anp.matmul where a plain device array may
# meet a traced one (nn.dense_reference, fused._dense_vjp, ncsn.cond_norm); these steps prove it.
TRAINING = ["dsm", "dsm_swish", "multiscale_dsm", "exact_sm_divergence", "exact_sm_closed_form",
            "energy_exact_sm", "sliced_sm", "sliced_sm_vr", "explicit_sm"]


@pytest.mark.parametrize("kind", TRAINING)
def test_training_step_stays_on_device(on_device, kind):
    """Loss, every gradient (second order for exact SM, third for the energy model's), Adam's
    moments and the updated parameters: device float32, equal to NumPy's."""
    same_on_both(lambda: _training_step(kind), kind)


def test_fit_checkpoints_and_resumes_on_device(on_device, tmp_path):
    """train.fit on the device: batches by the device permutation, the RNG state saved to a
    checkpoint (cuRAND's state array, copied to the host) and restored, so a resumed run
    continues exactly as an uninterrupted one."""
    def run(n_steps, checkpoint=None, resume=False):
        rng = ms.backend.default_rng(5)
        x = rng.normal((40, 2))
        params = models.mlp_init(rng, [2, 8, 2])
        loss = lambda p, batch, rng: objectives.dsm(lambda y: models.mlp(p, y), batch, 0.3, rng)
        return train.fit(loss, params, x, n_steps, batch_size=16, rng=rng, lr=1e-2, ema_decay=0.9,
                         progress=False, checkpoint=checkpoint, checkpoint_every=2, resume=resume)

    path = str(tmp_path / "ckpt.pkl")
    straight, info = run(5)
    run(3, checkpoint=path)
    resumed, resumed_info = run(5, checkpoint=path, resume=True)
    assert resumed_info["start_step"] == 3
    assert resumed_info["losses"] == info["losses"]
    for a, b in zip(_leaves(resumed), _leaves(straight)):
        assert isinstance(a, FAKE.ndarray) and a.dtype == np.float32
        np.testing.assert_array_equal(FAKE.asnumpy(a), FAKE.asnumpy(b))


# ---------------------------------------------------------------- conv2d, to second order
def _conv_derivatives():
    rng = ms.backend.default_rng(1)
    x, w = rng.normal((2, 3, 6, 6)), rng.normal((4, 3, 3, 3))

    def f(x, w):
        return anp.sum(conv.conv2d(x, w, padding=2, dilation=2) ** 2)

    params = nn.conv2d_init(rng, 3, 4)
    layer = lambda p: anp.sum(nn.conv2d_layer(p, x) ** 2)
    dx, dw = grad(f, 0)(x, w), grad(f, 1)(x, w)
    second = grad(lambda w: anp.sum(grad(f, 0)(x, w) ** 2))(w)  # d/dw of a function of d/dx
    reference = grad(lambda x: anp.sum(conv.conv2d_reference(x, w, padding=1) ** 2))(x)
    return conv.conv2d(x, w, padding=1), dx, dw, second, grad(layer)(params), reference


def test_conv2d_first_and_second_order_on_device(on_device):
    same_on_both(_conv_derivatives, "conv2d", rtol=1e-4, atol=1e-3)


def test_conv2d_passes_check_grads_on_device(on_device):
    """Every hand-written primitive passes check_grads(order=2), here on the device."""
    rng = ms.backend.default_rng(2)
    x, w = rng.normal((1, 2, 5, 5), dtype=np.float64), rng.normal((3, 2, 3, 3), dtype=np.float64)
    check_grads(lambda x, w: conv.conv2d(x, w, padding=1), modes=["rev"], order=2)(x, w)


def test_ncsn_step_on_device(on_device):
    """The NCSN-lite image model (conditional instance norm++, ELU, dilated convs, RefineNet-lite
    pooling and upsampling): a multi-scale DSM loss and its gradient."""
    from minimalscore import ncsn

    def compute():
        rng = ms.backend.default_rng(4)
        sigmas = ms.backend.asarray([1.0, 0.3, 0.1])
        params = ncsn.init(rng, n_levels=3, channels=4)
        x = rng.uniform(0.0, 1.0, (2, 1, 8, 8))
        loss = lambda p: objectives.multiscale_dsm(lambda y, s: ncsn.apply(p, y, s, sigmas), x, sigmas, rng)
        return value_and_grad(loss)(params)

    same_on_both(compute, "ncsn", rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------- every sampler
def _mixture():
    xp = ms.backend.xp
    return distributions.GaussianMixture(means=xp.asarray([[-1.0, 0.0], [1.5, 0.5]], dtype=np.float32),
                                         covs=xp.asarray([0.5, 0.3], dtype=np.float32),
                                         weights=xp.asarray([0.4, 0.6], dtype=np.float32))


def _conditional_score(x, sigma):
    return -x / (1.0 + sigma[:, None] ** 2)


def _time_score(x, t):
    return -x / (1.0 + t[:, None] ** 2)


def _eps_model(x, i):
    return x * (0.5 + 0.01 * i[:, None].astype(x.dtype))


def _samplers():
    from minimalscore import samplers, sde
    return {
        "langevin": lambda p, x, rng: samplers.langevin(p.score, x, 0.05, 3, rng),
        "mala": lambda p, x, rng: samplers.mala(p.log_prob, x, 0.1, 3, rng),
        "hmc": lambda p, x, rng: samplers.hmc(p.log_prob, x, 0.1, 2, 2, rng),
        "annealed_langevin": lambda p, x, rng: samplers.annealed_langevin(
            _conditional_score, x, ms.backend.asarray([1.0, 0.3]), 0.01, 2, rng, denoise=True),
        "inpaint": lambda p, x, rng: samplers.inpaint(
            _conditional_score, x, ms.backend.asarray([[1.0, 0.0]]), ms.backend.asarray([1.0, 0.3]),
            0.01, 2, rng, denoise=True),
        "reverse_sde": lambda p, x, rng: sde.reverse_sde(_time_score, sde.VP(), x, 3, rng),
        "predictor_corrector": lambda p, x, rng: sde.predictor_corrector(
            _time_score, sde.VE(0.01, 2.0), x, 2, rng),
        "probability_flow": lambda p, x, rng: sde.probability_flow(_time_score, sde.SubVP(), x, 2),
        "log_likelihood": lambda p, x, rng: sde.log_likelihood(_time_score, sde.VE(0.01, 2.0), x, 2),
        "log_likelihood_hutchinson": lambda p, x, rng: sde.log_likelihood(
            _time_score, sde.VP(), x, 2, rng=rng),
        "annealed_langevin_time_net": lambda p, x, rng: samplers.annealed_langevin(
            sde.noise_conditioned(_time_score, sde.VP()), x, ms.backend.asarray([1.0, 0.3]), 0.01, 2, rng),
        "ddpm_sample": lambda p, x, rng: sde.ddpm_sample(_eps_model, sde.vp_betas(40), x, rng),
        "ddim_sample": lambda p, x, rng: sde.ddim_sample(_eps_model, sde.vp_betas(40), x, 2),
    }


SAMPLERS = ["langevin", "mala", "hmc", "annealed_langevin", "inpaint", "reverse_sde",
            "predictor_corrector", "probability_flow", "log_likelihood", "log_likelihood_hutchinson",
            "annealed_langevin_time_net", "ddpm_sample", "ddim_sample"]


@pytest.mark.parametrize("name", SAMPLERS)
def test_sampler_stays_on_device(on_device, name):
    def compute():
        rng = ms.backend.default_rng(2)
        return _samplers()[name](_mixture(), rng.normal((8, 2)), rng)

    same_on_both(compute, name)


def test_distribution_and_metrics_on_device(on_device):
    from minimalscore import metrics

    def compute():
        p, rng = _mixture(), ms.backend.default_rng(6)
        x = p.sample(64, rng)
        noisy = p.perturbed(0.5)
        return (x, p.log_prob(x), p.score(x), noisy.score(x), noisy.log_prob(x),
                metrics.mmd(x, p.sample(64, rng)))

    same_on_both(compute, "distributions")


# ---------------------------------------------------------------- the gmm1d example
def test_gmm1d_quick_runs_on_device(on_device, tmp_path, monkeypatch):
    """``python -m examples.gmm1d --quick --backend cupy``, every stage of it, with training
    capped at 10 steps of batch 128: the device path is the same code, the cap saves time."""
    from examples import gmm1d
    fit = train.fit
    monkeypatch.setattr(train, "fit", lambda loss, params, data, n_steps, **kw:
                        fit(loss, params, data, min(n_steps, 10), **kw))
    monkeypatch.setattr(gmm1d, "BATCH", 128)
    metrics = gmm1d.main(["--quick", "--out", str(tmp_path), "--backend", "cupy"])
    assert metrics["backend"] == "cupy"
    with open(tmp_path / "metrics.json") as f:
        assert json.load(f)["backend"] == "cupy"


# ---------------------------------------------------------------- selecting the backend
def test_cupy_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    with pytest.raises(RuntimeError, match=r"CuPy is not installed.*pip install -e \.\[gpu\].*cupy-cuda13x"):
        ms.backend.use("cupy")
    assert ms.backend.name == "numpy"


@pytest.mark.parametrize("count", [0, "raise"])
def test_no_gpu_is_a_clear_error(monkeypatch, count):
    def get_device_count():
        if count == "raise":
            raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
        return count

    no_gpu = type(sys)("cupy")
    no_gpu.cuda = type(sys)("cupy.cuda")
    no_gpu.cuda.runtime = type(sys)("cupy.cuda.runtime")
    no_gpu.cuda.runtime.getDeviceCount = get_device_count
    monkeypatch.setitem(sys.modules, "cupy", no_gpu)
    with pytest.raises(RuntimeError, match="CuPy is installed but no (usable )?GPU"):
        ms.backend.use("cupy")
    assert ms.backend.name == "numpy"


def test_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match="'tpu'.*'numpy' or 'cupy'"):
        ms.backend.use("tpu")
    assert ms.backend.name == "numpy"


def _import_with_env(backend, with_fake):
    fake = (f"import importlib.util; spec = importlib.util.spec_from_file_location('cupy', "
            f"{os.path.join(HERE, 'fake_cupy.py')!r}); m = importlib.util.module_from_spec(spec); "
            "spec.loader.exec_module(m); sys.modules['cupy'] = m; ") if with_fake else \
        "sys.modules['cupy'] = None; "
    code = (f"import sys; {fake}import minimalscore as ms; "
            "print(ms.backend.name, type(ms.backend.xp.zeros(1)).__module__)")
    return subprocess.run([sys.executable, "-c", code], env=dict(os.environ, MINIMALSCORE_BACKEND=backend),
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def test_environment_variable_selects_the_backend():
    result = _import_with_env("cupy", with_fake=True)
    assert result.returncode == 0 and result.stdout.split() == ["cupy", "cupy"], result.stderr
    result = _import_with_env("numpy", with_fake=True)
    assert result.returncode == 0 and result.stdout.split() == ["numpy", "numpy"], result.stderr
    result = _import_with_env("cupy", with_fake=False)
    assert result.returncode != 0 and "pip install -e .[gpu]" in result.stderr
