"""The variance-exploding SDE view of NCSN (Song et al. 2021; seed 001 §Diffusion).

Noise levels become a continuous schedule σ(t) = σ_min (σ_max/σ_min)^t, t in [0, 1] (Song et al.
2021 App. C), and the perturbation a forward SDE without drift, the VE SDE (eq. 9)

  forward SDE            dx = g(t) dw,   g(t)² = d[σ²]/dt = 2 σ(t)² log(σ_max/σ_min)

so that x(t) = x(0) + N(0, (σ(t)² - σ(0)²) I). It is run backwards with the score
s(x, σ) = ∇log p_σ(x) of the perturbed data:

  reverse SDE            dx = -g(t)² s(x, σ(t)) dt + g(t) dw̄     (Anderson 1982; Song eq. 6)
  probability-flow ODE   dx = -½ g(t)² s(x, σ(t)) dt              (Song eq. 13)

both from t = 1, where p_1 = p_data * N(0, σ_max² I) ≈ N(0, σ_max² I) once σ_max dwarfs the
data's spread, to t = 0, where p_0 = p_data * N(0, σ_min² I). ``score`` is called as
score(x, sigma) with a per-example sigma of shape (N,), like the annealed samplers; x may have
any batch-first shape and keeps its dtype. Step sizes are Python floats; nothing in a loop
reads a value back to the host.
"""
import math

import autograd.numpy as anp
from autograd import make_vjp
from tqdm.auto import tqdm

from . import backend
from .objectives import check_batch, divergence


def sigma_at(t, sigma_min, sigma_max):
    """σ(t) = σ_min (σ_max/σ_min)^t (Song et al. 2021 App. C): geometric, like NCSN's σ_i."""
    return sigma_min * (sigma_max / sigma_min) ** t


def g_squared(t, sigma_min, sigma_max):
    """g(t)² = d[σ(t)²]/dt = 2 σ(t)² log(σ_max/σ_min): the VE SDE's diffusion coefficient."""
    return 2 * sigma_at(t, sigma_min, sigma_max) ** 2 * math.log(sigma_max / sigma_min)


def _check(x, name, sigma_min, sigma_max, n_steps):
    check_batch(x, name)
    if not 0 < sigma_min < sigma_max < math.inf:
        raise ValueError(f"sigma_min: need 0 < sigma_min < sigma_max < inf, got {sigma_min}, {sigma_max}")
    if int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps: must be a positive integer, got {n_steps}")


def _sum_per_example(a):
    return anp.sum(anp.reshape(a, (a.shape[0], -1)), axis=1)


def _score_at(score, x, t, sigma_min, sigma_max):
    sigma = backend.xp.full((x.shape[0],), sigma_at(t, sigma_min, sigma_max), dtype=x.dtype)
    return score(x, sigma)


def _times(n_steps, progress, desc):
    """(t_i, Δt, is_last) for t_i = 1 - i Δt, i = 0 .. n-1, Δt = 1/n: the reverse steps go from
    t_i down to t_i - Δt, the last one ending at t = 0 (σ_min)."""
    dt = 1.0 / n_steps
    return ((1.0 - i * dt, dt, i == n_steps - 1)
            for i in tqdm(range(n_steps), desc=desc, disable=not progress, leave=False))


def _euler_maruyama(score, x, t, dt, last, sigma_min, sigma_max, rng):
    """One reverse-time Euler-Maruyama step from t to t - Δt (Song et al. 2021 eq. 6):
    x + g(t)² s(x, σ(t)) Δt + g(t) √Δt z. The last step returns the mean (no noise), as the
    released code does, so the output is not blurred by noise of size g(Δt) √Δt."""
    g2dt = g_squared(t, sigma_min, sigma_max) * dt
    x = x + g2dt * _score_at(score, x, t, sigma_min, sigma_max)
    return x if last else x + math.sqrt(g2dt) * rng.normal(x.shape, dtype=x.dtype)


def reverse_sde(score, x_T, sigma_min, sigma_max, n_steps, rng, progress=False):
    """Sample p_σmin by Euler-Maruyama on the reverse-time SDE from t = 1 to 0 in ``n_steps``
    equal steps, starting from ``x_T`` (draws of the prior N(0, σ_max² I)). First order: g² is
    frozen at the upper end of each step, so a step's g²Δt exceeds the σ² it should remove,
    σ(t)² - σ(t - Δt)², by a factor ≈ 1 + Δt log(σ_max/σ_min); for Gaussian data the errors
    largely cancel (0.03% on the variance at 200 steps, tests/test_sde.py)."""
    _check(x_T, "x_T", sigma_min, sigma_max, n_steps)
    x = x_T
    for t, dt, last in _times(n_steps, progress, "reverse SDE"):
        x = _euler_maruyama(score, x, t, dt, last, sigma_min, sigma_max, rng)
    return x


def _mean_norm(a):
    """Mean over the batch of per-example Euclidean norms, on device (a 0-d array)."""
    xp = backend.xp
    return xp.mean(xp.sqrt(xp.sum(xp.reshape(a, (a.shape[0], -1)) ** 2, axis=1)))


def langevin_corrector(score, x, t, snr, sigma_min, sigma_max, rng):
    """One Langevin corrector step at σ(t) with its step set by the signal-to-noise ratio
    r = ``snr`` (Song et al. 2021 Alg. 4, VE): the released code takes x + a s + √(2a) z with
    a = 2 (r ‖z‖ / ‖s‖)², norms averaged over the batch; in our convention
    x + (ε/2) s + √ε z (DESIGN.md §3) that is ε = 2a = 4 (r ‖z‖ / ‖s‖)². The step stays a 0-d
    device array: no host read-back per step."""
    xp = backend.xp
    s, z = _score_at(score, x, t, sigma_min, sigma_max), rng.normal(x.shape, dtype=x.dtype)
    eps = 4 * (snr * _mean_norm(z) / xp.maximum(_mean_norm(s), 1e-12)) ** 2
    return x + (eps / 2) * s + xp.sqrt(eps) * z


def _check_snr_and_corrector(snr, n_corrector):
    if not (snr > 0 and math.isfinite(snr)):
        raise ValueError(f"snr: must be a positive finite number, got {snr}")
    if int(n_corrector) != n_corrector or n_corrector < 0:
        raise ValueError(f"n_corrector: must be a non-negative integer, got {n_corrector}")


def predictor_corrector(score, x_T, sigma_min, sigma_max, n_steps, rng, snr=0.16, n_corrector=1,
                        progress=False):
    """Predictor-corrector sampling (Song et al. 2021 Alg. 2 with the corrector of Alg. 4): at
    each time t_i, ``n_corrector`` Langevin steps targeting p_σ(t_i), then one reverse-SDE
    Euler-Maruyama predictor step to t_i - Δt. The order (corrector first) is the released
    code's; Alg. 2 writes the predictor first: the same alternation begun one operation
    later, which ends on a noisy corrector step at σ_min instead of the noise-free last
    predictor step. ``snr`` 0.16 is Song et al.'s setting for the VE SDE on CIFAR-10."""
    _check(x_T, "x_T", sigma_min, sigma_max, n_steps)
    _check_snr_and_corrector(snr, n_corrector)
    x = x_T
    for t, dt, last in _times(n_steps, progress, "predictor-corrector"):
        for _ in range(n_corrector):
            x = langevin_corrector(score, x, t, snr, sigma_min, sigma_max, rng)
        x = _euler_maruyama(score, x, t, dt, last, sigma_min, sigma_max, rng)
    return x


def _velocity(score, sigma_min, sigma_max):
    """The probability-flow velocity f(x, t) = -½ g(t)² s(x, σ(t)) (Song et al. 2021 eq. 13)."""
    def velocity(x, t):
        return -0.5 * g_squared(t, sigma_min, sigma_max) * _score_at(score, x, t, sigma_min, sigma_max)
    return velocity


def _integrate(f, y, t0, t1, n_steps, method, progress, desc):
    """Fixed-step Heun (2nd order) or classical RK4 (4th order) for dy/dt = f(y, t), y a tuple
    of arrays integrated together."""
    h = (t1 - t0) / n_steps
    add = lambda a, b, c: tuple(ai + c * bi for ai, bi in zip(a, b))  # a + c b
    for i in tqdm(range(n_steps), desc=desc, disable=not progress, leave=False):
        t = t0 + i * h
        k1 = f(y, t)
        if method == "heun":
            k2 = f(add(y, k1, h), t + h)
            y = add(y, add(k1, k2, 1.0), h / 2)
        else:
            k2 = f(add(y, k1, h / 2), t + h / 2)
            k3 = f(add(y, k2, h / 2), t + h / 2)
            k4 = f(add(y, k3, h), t + h)
            y = add(y, add(add(k1, k4, 1.0), add(k2, k3, 1.0), 2.0), h / 6)
    return y


def _check_method(method):
    if method not in ("heun", "rk4"):
        raise ValueError(f"method: 'heun' or 'rk4', got {method!r}")


def probability_flow(score, x_T, sigma_min, sigma_max, n_steps, method="rk4", progress=False):
    """Deterministic sampling: integrate the probability-flow ODE (Song et al. 2021 eq. 13)
    from t = 1 down to t = 0 with ``n_steps`` fixed Heun or RK4 steps. Its solution carries
    p_σmax to p_σmin exactly; only the integrator's O(Δt²) or O(Δt⁴) error remains."""
    _check(x_T, "x_T", sigma_min, sigma_max, n_steps)
    _check_method(method)
    velocity = _velocity(score, sigma_min, sigma_max)
    return _integrate(lambda y, t: (velocity(y[0], t),), (x_T,), 1.0, 0.0, n_steps, method,
                      progress, "probability flow")[0]


def ve_prior_log_prob(x, sigma_max):
    """log N(x; 0, σ_max² I) per example, (N,): the VE prior p_1 (Song et al. 2021 App. C). The
    SDE adds N(0, (σ_max² - σ_min²) I) to x(0) ~ p_data * N(0, σ_min² I), so the exact p_1 is
    p_data * N(0, σ_max² I): the σ_min² term cancels, and the prior only drops the data's own
    spread, small next to σ_max."""
    dim = x[0].size
    return (-0.5 * _sum_per_example(x ** 2) / sigma_max ** 2
            - dim * math.log(sigma_max) - 0.5 * dim * math.log(2 * math.pi))


def log_likelihood(score, x, sigma_min, sigma_max, n_steps, rng=None, hutchinson=False, method="rk4",
                   prior_log_prob=None, progress=False):
    """log p_σmin(x), (N,), by the instantaneous change of variables (Chen et al. 2018 Thm 1;
    Song et al. 2021 App. D.2): integrate the probability-flow ODE from t = 0 to 1
    together with the divergence of its velocity f,

        log p_0(x(0)) = log p_1(x(1)) + ∫_0^1 ∇·f(x(t), t) dt.

    p_0 is the data blurred by σ_min (the ODE's law at t = 0). ``prior_log_prob`` is log p_1,
    by default the VE prior ``ve_prior_log_prob`` N(0, σ_max² I). The divergence is exact
    (``objectives.divergence``, one backward pass per dimension), or with ``hutchinson=True``
    (needs ``rng``) the estimate vᵀ(∂f/∂x)v with one Gaussian v per example held fixed along
    the path (Hutchinson 1989; FFJORD, Grathwohl et al. 2019): unbiased, one backward pass
    per evaluation.
    """
    _check(x, "x", sigma_min, sigma_max, n_steps)
    _check_method(method)
    if hutchinson and rng is None:
        raise ValueError("rng: hutchinson=True draws random projections and needs rng")
    velocity = _velocity(score, sigma_min, sigma_max)
    if hutchinson:
        v = rng.normal(x.shape, dtype=x.dtype)

        def div(y, t):
            vjp, _ = make_vjp(lambda z: velocity(z, t))(y)
            return _sum_per_example(vjp(v) * v)
    else:
        def div(y, t):
            return divergence(lambda z: velocity(z, t), y)

    zeros = backend.xp.zeros((x.shape[0],), dtype=x.dtype)
    x1, integral = _integrate(lambda y, t: (velocity(y[0], t), div(y[0], t)), (x, zeros), 0.0, 1.0,
                              n_steps, method, progress, "log-likelihood")
    log_p1 = prior_log_prob(x1) if prior_log_prob is not None else ve_prior_log_prob(x1, sigma_max)
    return log_p1 + integral
