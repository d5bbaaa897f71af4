"""The CuPy backend stays on the device (issue 9; DESIGN.md §5), proven without a GPU.

``tests/fake_cupy.py`` stands in for ``cupy`` in ``sys.modules``: its arrays compute with NumPy
but refuse every implicit host conversion and every host-array operand, so ``backend.use("cupy")``
runs the very code path it runs on a GPU, and a silent host fallback fails with a traceback
pointing where it happened. Each computation is also run on the NumPy backend and must agree to
float32 tolerance, with every result a device float32 array.
"""
import importlib.util
import json
import os
import subprocess
import sys

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad, value_and_grad

import minimalscore as ms
from minimalscore import distributions, models, nn, objectives, optim, samplers, sde

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def _load_fake():
    spec = importlib.util.spec_from_file_location("cupy", os.path.join(HERE, "fake_cupy.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FAKE = _load_fake()


@pytest.fixture
def on_device():
    """The backend on the strict fake CuPy; NumPy backend and sys.modules restored after."""
    saved = {name: sys.modules.get(name) for name in ("cupy", "cupyx")}
    sys.modules["cupy"], sys.modules["cupyx"] = FAKE, FAKE.cupyx
    try:
        ms.backend.use("cupy")
        yield FAKE
    finally:
        ms.backend.use("numpy")
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _leaves(tree):
    if isinstance(tree, dict):
        return [leaf for k in sorted(tree, key=str) for leaf in _leaves(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [leaf for t in tree for leaf in _leaves(t)]
    return [tree]


def _assert_device_float32(tree, what):
    for i, leaf in enumerate(_leaves(tree)):
        assert isinstance(leaf, FAKE.ndarray), f"{what}: leaf {i} is a host {type(leaf).__name__}"
        assert leaf.dtype == np.float32, f"{what}: leaf {i} is {leaf.dtype}, not float32"


def same_on_both(compute, what, rtol=2e-4, atol=2e-5):
    """compute() on NumPy, then on the fake device: device float32 results equal to NumPy's."""
    ms.backend.use("numpy")
    expected = _leaves(compute())
    ms.backend.use("cupy")
    got = compute()
    _assert_device_float32(got, what)
    got = _leaves(got)
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == e.dtype, f"{what}: leaf {i} {g.dtype} on device vs {e.dtype} on NumPy"
        np.testing.assert_allclose(FAKE.asnumpy(g), e, rtol=rtol, atol=atol, err_msg=f"{what}: leaf {i}")
    return got


# ---------------------------------------------------------------- the stand-in itself
def test_fake_cupy_refuses_host_conversion_and_mixing(on_device):
    cp = on_device
    a = cp.ones((3,), dtype=cp.float32)
    for leak in (lambda: np.asarray(a), lambda: a.tolist(), lambda: list(a), lambda: float(a),
                 lambda: a + np.ones(3), lambda: np.ones(3) * a, lambda: cp.exp(np.ones(3)),
                 lambda: np.concatenate([a, np.ones(3)])):
        with pytest.raises(TypeError, match="fake cupy"):
            leak()
    assert isinstance(a.sum(), cp.ndarray) and float(a.sum()) == 3.0  # 0-d device result, syncs
    assert (a * np.float32(2) + 1).dtype == np.float32
    assert isinstance(np.sum(a), cp.ndarray)  # numpy functions dispatch to the device array
    assert isinstance(cp.asnumpy(a), np.ndarray) and isinstance(a.get(), np.ndarray)


# ---------------------------------------------------------------- (a) training steps
def _training_step(kind):
    rng = ms.backend.default_rng(0)
    x = rng.normal((16, 2))
    if kind == "multiscale_dsm":
        params = models.noise_conditional_mlp_init(rng, 2, (16, 16))
    else:
        params = models.mlp_init(rng, [2, 16, 16, 2])
    sigmas = ms.backend.asarray([1.0, 0.5, 0.1])
    losses = {
        "dsm": lambda p: objectives.dsm(lambda y: models.mlp(p, y), x, 0.5, rng),
        "multiscale_dsm": lambda p: objectives.multiscale_dsm(
            lambda y, s: models.noise_conditional_mlp(p, y, s), x, sigmas, rng),
        "exact_sm_divergence": lambda p: objectives.implicit_sm(lambda y: models.mlp(p, y), x),
        "exact_sm_closed_form": lambda p: objectives.implicit_sm(
            None, x, lambda y: models.mlp_score_and_divergence(p, y)),
        "sliced_sm": lambda p: objectives.sliced_sm(lambda y: models.mlp(p, y), x, rng, n_projections=2),
    }
    loss, grads = value_and_grad(losses[kind])(params)
    new_params, state = optim.adam_update(params, grads, optim.adam_init(params), lr=1e-2)
    return loss, grads, new_params, state["m"], state["v"]


@pytest.mark.parametrize("kind", ["dsm", "multiscale_dsm", "exact_sm_divergence",
                                  "exact_sm_closed_form", "sliced_sm"])
def test_training_step_stays_on_device(on_device, kind):
    same_on_both(lambda: _training_step(kind), kind)


# ---------------------------------------------------------------- (b) conv2d to second order
def _conv_derivatives():
    rng = ms.backend.default_rng(1)
    x, w = rng.normal((2, 3, 6, 6)), rng.normal((4, 3, 3, 3))

    def f(x, w):
        return anp.sum(nn.conv2d(x, w, padding=1, dilation=1) ** 2)

    y = nn.conv2d(x, w, padding=1)
    dx, dw = grad(f, 0)(x, w), grad(f, 1)(x, w)
    second = grad(lambda w: anp.sum(grad(f, 0)(x, w) ** 2))(w)  # d/dw of a function of d/dx
    return y, dx, dw, second


def test_conv2d_first_and_second_order_on_device(on_device):
    same_on_both(_conv_derivatives, "conv2d", rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------- (c) samplers
def _mixture():
    return distributions.GaussianMixture(means=[[-1.0, 0.0], [1.5, 0.5]], covs=[0.5, 0.3],
                                         weights=[0.4, 0.6])


def _conditional_score(x, sigma):
    return -x / (1.0 + sigma[:, None] ** 2)


SAMPLERS = {
    "langevin": lambda p, x, rng: samplers.langevin(p.score, x, 0.05, 3, rng),
    "mala": lambda p, x, rng: samplers.mala(p.log_prob, x, 0.1, 3, rng)[0],
    "hmc": lambda p, x, rng: samplers.hmc(p.log_prob, x, 0.1, 2, 2, rng)[0],
    "annealed_langevin": lambda p, x, rng: samplers.annealed_langevin(
        _conditional_score, x, ms.backend.asarray([1.0, 0.3]), 0.01, 2, rng, denoise=True),
    "inpaint": lambda p, x, rng: samplers.inpaint(
        _conditional_score, x, ms.backend.asarray([[1.0, 0.0]]), ms.backend.asarray([1.0, 0.3]),
        0.01, 2, rng),
    "reverse_sde": lambda p, x, rng: sde.reverse_sde(_conditional_score, x, 0.01, 2.0, 3, rng),
    "predictor_corrector": lambda p, x, rng: sde.predictor_corrector(
        _conditional_score, x, 0.01, 2.0, 2, rng),
    "probability_flow": lambda p, x, rng: sde.probability_flow(_conditional_score, x, 0.01, 2.0, 2),
    "log_likelihood": lambda p, x, rng: sde.log_likelihood(_conditional_score, x, 0.01, 2.0, 2),
    "log_likelihood_hutchinson": lambda p, x, rng: sde.log_likelihood(
        _conditional_score, x, 0.01, 2.0, 2, hutchinson=True, rng=rng),
}


def _sample(name):
    rng = ms.backend.default_rng(2)
    return SAMPLERS[name](_mixture(), rng.normal((8, 2)), rng)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_sampler_stays_on_device(on_device, name):
    same_on_both(lambda: _sample(name), name)


# ---------------------------------------------------------------- (d) the gmm1d example
def test_gmm1d_quick_runs_on_device(on_device, tmp_path, monkeypatch):
    """``python -m examples.gmm1d --quick --backend cupy``, every stage of it, with training
    capped at 10 steps of batch 128 (the full --quick run takes about a minute on 2 CPU cores;
    on the device path it is the same code, so the cap only saves time)."""
    from examples import gmm1d
    from minimalscore import train
    fit = train.fit
    monkeypatch.setattr(train, "fit", lambda loss, params, data, n_steps, **kw:
                        fit(loss, params, data, min(n_steps, 10), **kw))
    monkeypatch.setattr(gmm1d, "BATCH", 128)
    metrics = gmm1d.main(["--quick", "--out", str(tmp_path), "--backend", "cupy"])
    assert metrics["backend"] == "cupy"
    with open(tmp_path / "metrics.json") as f:
        assert json.load(f)["backend"] == "cupy"


# ---------------------------------------------------------------- (e) selecting the backend
def test_cupy_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    with pytest.raises(RuntimeError, match=r"pip install -e \.\[gpu\]"):
        ms.backend.use("cupy")
    assert ms.backend.name == "numpy"


def test_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match="tpu"):
        ms.backend.use("tpu")


def test_no_gpu_is_a_clear_error(monkeypatch):
    class NoGPU:
        class ndarray:
            pass

        class cuda:
            class runtime:
                @staticmethod
                def getDeviceCount():
                    return 0

    monkeypatch.setitem(sys.modules, "cupy", NoGPU)
    with pytest.raises(RuntimeError, match="no GPU"):
        ms.backend.use("cupy")
    assert ms.backend.name == "numpy"


def test_environment_variable_without_cupy_fails_clearly():
    code = "import sys; sys.modules['cupy'] = None; import minimalscore"
    env = dict(os.environ, MINIMALSCORE_BACKEND="cupy")
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "pip install -e .[gpu]" in result.stderr


def test_other_autograd_version_is_refused(monkeypatch):
    import autograd
    from minimalscore import _autograd_cupy
    monkeypatch.setattr(autograd, "__version__", "2.0.0", raising=False)
    with pytest.raises(RuntimeError, match=r"autograd 2\.0\.0"):
        _autograd_cupy.install(FAKE)
