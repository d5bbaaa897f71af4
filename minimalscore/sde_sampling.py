"""Sampling and likelihood over any diffusion SDE (Song et al. 2021 §3-4, App. D, G).

With a time-dependent score s(x, t) ≈ ∇log p_t(x) of the forward SDE dx = f dt + g dw
(``minimalscore.sde``: VE, VP, sub-VP), the process runs backwards from the prior at t = 1 to
t_min along

  reverse SDE            dx = [f(x, t) - g(t)² s(x, t)] dt + g(t) dw̄     (Anderson 1982; eq. 6)
  probability-flow ODE   dx = [f(x, t) - ½ g(t)² s(x, t)] dt               (eq. 13)

both with the marginals p_t of the forward process; the ODE is a deterministic map, so it also
gives log p_{t_min}(x) by the instantaneous change of variables (App. D.2). Time runs on the
grid t_i = 1 - i Δt, Δt = (1 - t_min)/n_steps. ``score`` is called as score(x, t) with t of shape
(N,); x may have any batch-first shape and keeps its dtype. Step coefficients are Python floats,
and the only host reads are the first-call checks and a finiteness check every
``checks.CHECK_EVERY`` steps.
"""
import math
import numbers

from autograd import make_vjp
from tqdm.auto import tqdm

from . import backend, checks, ops
from .objectives import _jacobian_trace

def _setup(score, sde, x, name, n_steps):
    """The shared argument checks; returns the checked score."""
    checks.batch(name, x)
    checks.sde("sde", sde)
    checks.count("n_steps", n_steps)
    return checks.like_x("score", score)


def _grid(start, end, n_steps):
    """t_i = start + i (end - start)/n_steps, i = 0 .. n, with t_n = end exactly: rounding must not
    carry a time past an end (VE's t_min = 0 less 3e-17 is outside the SDE's [0, 1])."""
    h = (end - start) / n_steps
    return [start + i * h for i in range(n_steps)] + [end]


def _steps(sde, n_steps, progress, desc):
    """(i, t_i, t_{i+1}) on the grid from 1 down to t_min: step i goes from t_i to t_{i+1}."""
    t = _grid(1.0, sde.t_min, n_steps)
    return ((i, t[i], t[i + 1]) for i in tqdm(range(n_steps), desc=desc, disable=not progress, leave=False))


def _guard(x, i, n_steps, where):
    """``checks.finite_every`` for the diffusion samplers' state x."""
    return checks.finite_every("x", x, i, n_steps, f"of {n_steps} in {where}",
                               "take more steps, or check the score model at this noise level")


def _score_at(score, x, t):
    return score(x, ops.full_batch(t, x))


def _euler_maruyama(score, sde, x, t, t_next, rng, noise=True):
    """x + [g(t)² s(x, t) - f(x, t)] Δt + g(t) √Δt z: one Euler-Maruyama step of the reverse SDE
    (eq. 6) from t to t_next = t - Δt."""
    g, dt = sde._diffusion(t), t - t_next
    x_new = x + (g ** 2 * _score_at(score, x, t) - sde._drift(x, t)) * dt
    return x_new + g * math.sqrt(dt) * rng.normal(x.shape, dtype=x.dtype) if noise else x_new


def _reverse_diffusion(score, sde, x, t, t_next, rng, noise=True):
    """The reverse-diffusion predictor (Song et al. 2021 eq. 46; Alg. 2 for VE, Alg. 3 for VP):
    the forward step from s = t_next = t - Δt to t, x_t = r x_s + G z with r = alpha_t/alpha_s and
    G² = sigma_t² - r² sigma_s² (exact in law), reversed as x_s = (2 - r) x_t + G² s(x_t, t) + G z.
    For VE that is x + (σ_t² - σ_s²) s + √(σ_t² - σ_s²) z, for VP (2 - √(1 - β_i)) x + β_i s + √β_i z
    with 1 - β_i = (alpha_t/alpha_s)²."""
    (alpha_t, sigma_t), (alpha_s, sigma_s) = sde._marginal(t), sde._marginal(t_next)
    r = alpha_t / alpha_s
    g2 = sigma_t ** 2 - r ** 2 * sigma_s ** 2
    x_new = (2 - r) * x + g2 * _score_at(score, x, t)
    return x_new + math.sqrt(g2) * rng.normal(x.shape, dtype=x.dtype) if noise else x_new


PREDICTORS = {"euler_maruyama": _euler_maruyama, "reverse_diffusion": _reverse_diffusion}


def reverse_sde(score, sde, x_T, n_steps, rng, progress=False):
    """Sample p_{t_min} by Euler-Maruyama on the reverse SDE (Song et al. 2021 eq. 6) in
    ``n_steps`` equal steps from x_T (draws of the prior). The last step returns its mean, as
    the released code does, so the output is not blurred by noise of size g √Δt. Weak order 1."""
    score = _setup(score, sde, x_T, "x_T", n_steps)
    checks.rng("rng", rng)
    x = x_T
    for i, t, t_next in _steps(sde, n_steps, progress, "reverse SDE"):
        x = _euler_maruyama(score, sde, x, t, t_next, rng, noise=i < n_steps - 1)
        _guard(x, i, n_steps, "reverse_sde")
    return x


def _mean_norm(a):
    """Mean over the batch of per-example Euclidean norms, on device (a 0-d array)."""
    return backend.xp.mean(backend.xp.sqrt(ops.sum_per_example(a ** 2)))


def langevin_corrector(score, x, t, snr, rng, alpha=1.0):
    """One Langevin step at p_t with its size set by the signal-to-noise ratio r = ``snr``
    (Song et al. 2021 Alg. 4; Alg. 5 with alpha = alpha_i for VP). The paper's step
    x + a s + √(2a) z with a = 2 alpha (r ‖z‖/‖s‖)², norms averaged over the batch, is in our
    convention x + (ε/2) s + √ε z (docs/conventions.md) ε = 2a = 4 alpha (r ‖z‖/‖s‖)². ε stays a
    0-d device array: no host read."""
    checks.batch("x", x)
    checks.in_interval("t", t, 0.0, 1.0)
    checks.positive("snr", snr)
    checks.positive("alpha", alpha)
    checks.rng("rng", rng)
    return _langevin_corrector(checks.like_x("score", score), x, t, snr, rng, alpha)


def _langevin_corrector(score, x, t, snr, rng, alpha):
    xp = backend.xp
    s, z = _score_at(score, x, t), rng.normal(x.shape, dtype=x.dtype)
    eps = 4 * alpha * (snr * _mean_norm(z) / xp.maximum(_mean_norm(s), 1e-12)) ** 2
    return x + (eps / 2) * s + xp.sqrt(eps) * z


def predictor_corrector(score, sde, x_T, n_steps, rng, snr=0.16, n_corrector=1, predictor="euler_maruyama",
                        progress=False):
    """Predictor-corrector sampling (Song et al. 2021 Alg. 2 for VE, Alg. 3 for VP): at each
    t_i, ``n_corrector`` Langevin corrector steps targeting p_{t_i} (Alg. 4; Alg. 5's
    alpha_i = 1 - β_i, here (alpha_{t_i}/alpha_{t_i - Δt})², which is 1 for VE and
    exp(-∫β) ≈ 1 - β(t_i)Δt for VP and sub-VP, as the released code uses for both), then one
    predictor step, the last noise-free: Euler-Maruyama, or ``predictor="reverse_diffusion"``,
    Alg. 2's and 3's own, equal to Euler-Maruyama to first order in Δt. The corrector comes
    first, as in the released code. ``snr`` 0.16 is Song et al.'s VE setting for CIFAR-10."""
    score = _setup(score, sde, x_T, "x_T", n_steps)
    checks.rng("rng", rng)
    checks.positive("snr", snr)
    checks.count("n_corrector", n_corrector, minimum=0)
    predict = PREDICTORS[checks.option("predictor", predictor, tuple(PREDICTORS))]
    x = x_T
    for i, t, t_next in _steps(sde, n_steps, progress, "predictor-corrector"):
        alpha = (sde._marginal(t)[0] / sde._marginal(t_next)[0]) ** 2
        for _ in range(n_corrector):
            x = _langevin_corrector(score, x, t, snr, rng, alpha)
        x = predict(score, sde, x, t, t_next, rng, noise=i < n_steps - 1)
        _guard(x, i, n_steps, "predictor_corrector")
    return x


def _velocity(score, sde):
    """The probability-flow velocity v(x, t) = f(x, t) - ½ g(t)² s(x, t) (eq. 13)."""
    return lambda x, t: sde._drift(x, t) - 0.5 * sde._diffusion(t) ** 2 * _score_at(score, x, t)


def _step(f, y, t, t_next, method):
    """One fixed step from t to t_next = t + h of dy/dt = f(y, t), y a tuple of arrays: Euler (order 1),
    Heun (2) or classical RK4 (4)."""
    add = lambda a, b, c: tuple(ai + c * bi for ai, bi in zip(a, b))  # a + c b
    h = t_next - t
    k1 = f(y, t)
    if method == "euler":
        return add(y, k1, h)
    if method == "heun":
        return add(y, add(k1, f(add(y, k1, h), t_next), 1.0), h / 2)
    k2 = f(add(y, k1, h / 2), t + h / 2)
    k3 = f(add(y, k2, h / 2), t + h / 2)
    k4 = f(add(y, k3, h), t_next)
    return add(y, add(add(k1, k4, 1.0), add(k2, k3, 1.0), 2.0), h / 6)


METHODS = ("euler", "heun", "rk4")


def probability_flow(score, sde, x_T, n_steps, method="rk4", progress=False):
    """Deterministic sampling: the probability-flow ODE (Song et al. 2021 eq. 13) from t = 1 down
    to t_min in ``n_steps`` fixed Euler, Heun or RK4 steps (1, 2 or 4 score calls each). Its exact
    solution carries p_1 to p_{t_min}; only the integrator's O(Δt^order) error remains."""
    score = _setup(score, sde, x_T, "x_T", n_steps)
    checks.option("method", method, METHODS)
    velocity = _velocity(score, sde)
    x = x_T
    for i, t, t_next in _steps(sde, n_steps, progress, "probability flow"):
        x = _guard(_step(lambda y, r: (velocity(y[0], r),), (x,), t, t_next, method)[0], i, n_steps,
                   "probability_flow")
    return x


def log_likelihood(score, sde, x, n_steps, rng=None, method="rk4", prior_log_prob=None, progress=False):
    """log p_{t_min}(x) in nats, (N,), by the instantaneous change of variables (Chen et al. 2018
    Thm 1; Song et al. 2021 App. D.2): the probability-flow ODE integrated from t_min to 1 together
    with the divergence of its velocity v,

        log p_{t_min}(x(t_min)) = log p_1(x(1)) + ∫_{t_min}^1 ∇·v(x(t), t) dt.

    log p_1 is ``sde.prior_log_prob`` unless ``prior_log_prob`` is given. The divergence is exact
    (``objectives.divergence``, one backward pass per dimension), or with ``rng`` Hutchinson's
    estimate εᵀ(∂v/∂x)ε, one Gaussian ε per example held fixed along the path (Hutchinson 1989;
    Grathwohl et al. 2019): unbiased, one backward pass per evaluation."""
    score = _setup(score, sde, x, "x", n_steps)
    checks.option("method", method, METHODS)
    velocity = _velocity(score, sde)
    if rng is not None:
        probe = checks.rng("rng", rng).normal(x.shape, dtype=x.dtype)

        def div(y, t):
            vjp, _ = make_vjp(lambda z: velocity(z, t))(y)
            return ops.sum_per_example(vjp(probe) * probe)
    else:
        def div(y, t):
            return _jacobian_trace(lambda z: velocity(z, t), y)

    y = (x, backend.xp.zeros((x.shape[0],), dtype=x.dtype))
    t = _grid(sde.t_min, 1.0, n_steps)
    for i in tqdm(range(n_steps), desc="log-likelihood", disable=not progress, leave=False):
        y = _step(lambda y, r: (velocity(y[0], r), div(y[0], r)), y, t[i], t[i + 1], method)
        _guard(y[0], i, n_steps, "log_likelihood")
    log_p1 = checks.per_example("prior_log_prob", prior_log_prob or sde.prior_log_prob)(y[0])
    return log_p1 + y[1]


def bits_per_dim(log_likelihood, x_dim, n_bins, data_range=1.0):
    """Bits per dimension of data on a grid of ``n_bins`` levels per coordinate, scaled to an
    interval of width ``data_range`` (1 for [0, 1], 2 for [-1, 1]), from ``log_likelihood``, the
    log-density in nats of the uniformly dequantized data y = (k + u) data_range/n_bins + offset,
    u ~ U[0, 1)^D (its expectation over u, or one draw of it as an unbiased estimate).

    The discrete probability of grid cell k is P(k) = ∫_cell p(y) dy = (data_range/n_bins)^D
    E_u p(y), and by Jensen log P(k) >= E_u log p(y) - D log(n_bins/data_range) (Theis, van den Oord
    & Bethge 2016), so

        bpd = -(log p(y) - D log(n_bins/data_range)) / (D log 2)

    bounds -log2 P(k)/D from above. This is the number published tables give (e.g. Song et al.
    2021 Table 2 on 8-bit images: n_bins = 256, and the log-likelihood of y in [0, 1]^D).
    """
    _check_log_likelihood(log_likelihood)
    checks.count("x_dim", x_dim)
    checks.count("n_bins", n_bins, minimum=2)
    checks.positive("data_range", data_range)
    return -(log_likelihood - x_dim * math.log(n_bins / data_range)) / (x_dim * math.log(2))


def _check_log_likelihood(value):
    """A finite log-density in nats: a number, or a floating array of one per example (N,)."""
    expected = "log-densities in nats, a number or a floating array of shape (N,)"
    if backend.is_array(value):
        if value.dtype.kind != "f":
            raise TypeError(f"log_likelihood: expected {expected}, got {checks.show(value)}")
        if value.ndim > 1:
            raise ValueError(f"log_likelihood: expected {expected}, got shape {tuple(value.shape)}")
        finite = checks.is_finite(value)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        finite = math.isfinite(value)
    else:
        raise TypeError(f"log_likelihood: expected {expected}, got {checks.show(value)}")
    if not finite:
        raise ValueError("log_likelihood: expected finite values, got NaN or inf")
