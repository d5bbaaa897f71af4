"""The variance-exploding SDE view of NCSN (Song et al. 2021; seed 001 §forward/reverse SDE).

Noise levels become a continuous schedule σ(t) = σ_min (σ_max/σ_min)^t, t in [0, 1], and the
perturbation a forward SDE  dx = g(t) dw,  g(t)² = d[σ²]/dt = 2 σ(t)² log(σ_max/σ_min)
(Song et al. 2021 eq. 30). Sampling runs it backwards with the score s(x, σ) = ∇log p_σ(x):

  reverse SDE            dx = -g² s(x, σ(t)) dt + g dw̄             (Anderson 1982; eq. 6)
  probability-flow ODE   dx = -½ g² s(x, σ(t)) dt                   (eq. 13)

``score`` is called as score(x, sigma) with a per-example sigma of shape (N,), like the
annealed samplers; x may have any batch-first shape.
"""
import math

import autograd.numpy as anp
from autograd import make_vjp
from tqdm.auto import tqdm

from . import backend
from .objectives import check_batch, divergence


def sigma_at(t, sigma_min, sigma_max):
    """σ(t) = σ_min (σ_max/σ_min)^t (Song et al. 2021 §C.1)."""
    return sigma_min * (sigma_max / sigma_min) ** t


def g_squared(t, sigma_min, sigma_max):
    """g(t)² = d[σ(t)²]/dt = 2 σ(t)² log(σ_max/σ_min)."""
    return 2 * sigma_at(t, sigma_min, sigma_max) ** 2 * math.log(sigma_max / sigma_min)


def _check(x, sigma_min, sigma_max, n_steps):
    check_batch(x, "x")
    if not 0 < sigma_min < sigma_max < float("inf"):
        raise ValueError(f"sigma_min, sigma_max: need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    if int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps: must be a positive integer, got {n_steps}")


def _score_at(score, x, t, sigma_min, sigma_max):
    sigma = backend.xp.full((x.shape[0],), sigma_at(t, sigma_min, sigma_max), dtype=x.dtype)
    return score(x, sigma)


def reverse_sde(score, x_T, sigma_min, sigma_max, n_steps, rng, progress=False):
    """Euler-Maruyama on the reverse-time SDE from t = 1 to 0, step Δt = 1/n_steps:
    x <- x + g² s Δt + g √Δt z (Song et al. 2021 eq. 6 discretised). The last step adds no
    noise (the released code returns its mean), so the output is not blurred by g √Δt."""
    _check(x_T, sigma_min, sigma_max, n_steps)
    x, dt = x_T, 1.0 / n_steps
    for i in tqdm(range(n_steps), desc="reverse SDE", disable=not progress, leave=False):
        t = 1.0 - i * dt
        g2 = g_squared(t, sigma_min, sigma_max)
        x = x + g2 * dt * _score_at(score, x, t, sigma_min, sigma_max)
        if i < n_steps - 1:
            x = x + math.sqrt(g2 * dt) * rng.normal(x.shape, dtype=x.dtype)
    return x


def _norm(a):
    """Mean over the batch of per-example Euclidean norms."""
    return float(anp.mean(anp.sqrt(anp.sum(anp.reshape(a, (a.shape[0], -1)) ** 2, axis=1))))


def predictor_corrector(score, x_T, sigma_min, sigma_max, n_steps, rng, snr=0.16, n_corrector=1,
                        progress=False):
    """Predictor-corrector sampling (Song et al. 2021 Alg. 2 with the VE corrector of Alg. 4):
    at each time, ``n_corrector`` Langevin steps at σ(t), then one reverse-SDE predictor step.

    The corrector's step is set by the signal-to-noise ratio r = ``snr``: in the released
    code's convention x + a s + √(2a) z it is a = 2 (r ‖z‖ / ‖s‖)²; ours is
    x + (ε/2) s + √ε z (DESIGN.md §3), so ε = 2a = 4 (r ‖z‖ / ‖s‖)².
    """
    _check(x_T, sigma_min, sigma_max, n_steps)
    x, dt = x_T, 1.0 / n_steps
    for i in tqdm(range(n_steps), desc="predictor-corrector", disable=not progress, leave=False):
        t = 1.0 - i * dt
        for _ in range(n_corrector):
            s, z = _score_at(score, x, t, sigma_min, sigma_max), rng.normal(x.shape, dtype=x.dtype)
            eps = 4 * (snr * _norm(z) / max(_norm(s), 1e-12)) ** 2
            x = x + (eps / 2) * s + math.sqrt(eps) * z
        g2 = g_squared(t, sigma_min, sigma_max)
        x = x + g2 * dt * _score_at(score, x, t, sigma_min, sigma_max)
        if i < n_steps - 1:
            x = x + math.sqrt(g2 * dt) * rng.normal(x.shape, dtype=x.dtype)
    return x


def _drift(score, sigma_min, sigma_max):
    """The probability-flow velocity f(x, t) = -½ g(t)² s(x, σ(t)) (Song et al. 2021 eq. 13)."""
    return lambda x, t: -0.5 * g_squared(t, sigma_min, sigma_max) * _score_at(score, x, t, sigma_min, sigma_max)


def _integrate(f, y, t0, t1, n_steps, method):
    """Fixed-step Heun (2nd order) or classical RK4 (4th order) for dy/dt = f(y, t) on pytrees
    of arrays given as tuples."""
    h = (t1 - t0) / n_steps
    add = lambda a, b, c=1.0: tuple(ai + c * bi for ai, bi in zip(a, b))
    for i in range(n_steps):
        t = t0 + i * h
        k1 = f(y, t)
        if method == "heun":
            k2 = f(add(y, k1, h), t + h)
            y = add(y, add(k1, k2), h / 2)
        elif method == "rk4":
            k2 = f(add(y, k1, h / 2), t + h / 2)
            k3 = f(add(y, k2, h / 2), t + h / 2)
            k4 = f(add(y, k3, h), t + h)
            y = add(y, add(add(k1, k4), add(k2, k3), 2.0), h / 6)
        else:
            raise ValueError(f"method: 'heun' or 'rk4', got {method!r}")
    return y


def probability_flow(score, x_T, sigma_min, sigma_max, n_steps, method="rk4"):
    """Deterministic sampling: integrate the probability-flow ODE from t = 1 down to t = 0."""
    _check(x_T, sigma_min, sigma_max, n_steps)
    velocity = _drift(score, sigma_min, sigma_max)
    return _integrate(lambda y, t: (velocity(y[0], t),), (x_T,), 1.0, 0.0, n_steps, method)[0]


def log_likelihood(score, x, sigma_min, sigma_max, n_steps, method="rk4", prior_log_prob=None,
                   hutchinson=False, rng=None):
    """log p_0(x) by the instantaneous change of variables (Chen et al. 2018 Thm 1; Song et al.
    2021 eq. 39): integrate the ODE from t = 0 to 1 together with its divergence,

        log p_0(x(0)) = log p_1(x(1)) + ∫_0^1 ∇·f(x(t), t) dt.

    p_0 is the data blurred by σ_min. ``prior_log_prob`` is log p_1, by default the VE prior
    N(0, σ_max² I). The divergence is exact (``objectives.divergence``), or with
    ``hutchinson=True`` the estimate vᵀ(∂f/∂x)v with one Gaussian v per example held fixed along
    the path (FFJORD, Grathwohl et al. 2019): unbiased, one backward pass per evaluation.
    """
    _check(x, sigma_min, sigma_max, n_steps)
    velocity = _drift(score, sigma_min, sigma_max)
    if hutchinson:
        v = rng.normal(x.shape, dtype=x.dtype)

        def div(y, t):
            vjp, _ = make_vjp(lambda z: velocity(z, t))(y)
            return anp.sum(anp.reshape(vjp(v) * v, (y.shape[0], -1)), axis=1)
    else:
        def div(y, t):
            return divergence(lambda z: velocity(z, t), y)

    zeros = backend.xp.zeros((x.shape[0],), dtype=x.dtype)
    x1, integral = _integrate(lambda y, t: (velocity(y[0], t), div(y[0], t)), (x, zeros), 0.0, 1.0,
                              n_steps, method)
    if prior_log_prob is None:
        dim = x[0].size
        flat = anp.reshape(x1, (x.shape[0], -1))
        prior_log_prob = lambda _: (-0.5 * anp.sum(flat ** 2, axis=1) / sigma_max ** 2
                                    - dim * math.log(sigma_max) - 0.5 * dim * math.log(2 * math.pi))
    return prior_log_prob(x1) + integral
