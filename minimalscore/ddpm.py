"""Discrete-time diffusion in the DDPM paper's own notation (Ho et al. 2020; Song, Meng & Ermon
2021), and its map to the VP SDE.

    forward chain   q(x_t | x_{t-1}) = N(√(1 - β_t) x_{t-1}, β_t I),    t = 1 .. T
    marginal        q(x_t | x_0) = N(√ᾱ_t x_0, (1 - ᾱ_t) I),  α_t = 1 - β_t,  ᾱ_t = ∏_{s<=t} α_s
    posterior       q(x_{t-1} | x_t, x_0) = N(μ̃_t, β̃_t I)                        (Ho eqs. 6-7)

An ε-model predicts the noise in x_t = √ᾱ_t x_0 + √(1 - ᾱ_t) ε; it is called eps_model(x, i) with
i of shape (N,), the integer step index 0 .. T-1 (Ho's t = i + 1), and ``betas`` holds β_1 .. β_T.

Map to the VP SDE (Song et al. 2021 App. B): step i is time t ≈ i/T and β_i = β(t)/T, so the chain
is the Euler-Maruyama discretisation of dx = -½β(t) x dt + √β(t) dw with Δt = 1/T, and as T grows
ᾱ_i = ∏(1 - β(t_j)/T) → exp(-∫_0^{i/T} β) = alpha_{i/T}², 1 - ᾱ_i → sigma_{i/T}², and the ε-model
is -sigma_t ∇log p_t. ``vp_betas`` gives that schedule; β_min = 0.1, β_max = 20, T = 1000 is
Ho et al.'s β_1 = 1e-4 .. β_T = 0.02.
"""
import itertools
import math
import operator

from tqdm.auto import tqdm

from . import backend, checks


def _host_betas(betas):
    """β_1 .. β_T as Python floats, checked in (0, 1): one host read, before any step."""
    values = backend.asnumpy(betas)
    if values.ndim != 1 or values.shape[0] == 0:
        raise ValueError(f"betas: expected a non-empty 1-D array, got shape {tuple(values.shape)}")
    values = [float(b) for b in values]
    if not all(0.0 < b < 1.0 for b in values):
        raise ValueError(f"betas: expected every β_t in (0, 1), got values in [{min(values)}, {max(values)}]")
    return values


def _alphas_bar(b):
    """ᾱ_t = ∏_{s<=t} (1 - β_s) for host floats β_1 .. β_T."""
    return list(itertools.accumulate((1.0 - v for v in b), operator.mul))


def vp_betas(n_steps, beta_min=0.1, beta_max=20.0):
    """β_i = β(t_i)/T with β(t) = β_min + t (β_max - β_min) at t_i = (i - 1)/(T - 1), i = 1 .. T
    (Ho et al. 2020's linear schedule, in the VP SDE's units: Song et al. 2021 App. B), a
    (T,) float64 array: a schedule, read once per sampler call, kept to full precision."""
    n_steps = checks.count("n_steps", n_steps, minimum=2)
    beta_min, beta_max = checks.positive("beta_min", beta_min), checks.positive("beta_max", beta_max)
    if not beta_max < n_steps:
        raise ValueError(f"beta_max: expected beta_max < n_steps so that every β_i < 1, got {beta_max}")
    return backend.asarray([(beta_min + (beta_max - beta_min) * i / (n_steps - 1)) / n_steps
                            for i in range(n_steps)], dtype=backend.xp.float64)


def alphas_bar(betas):
    """ᾱ_t = ∏_{s<=t} (1 - β_s), a list of T Python floats (Ho et al. 2020 §2)."""
    return _alphas_bar(_host_betas(betas))


def ddpm_posterior(betas, x_t, x_0, i):
    """q(x_{t-1} | x_t, x_0) = N(μ̃, β̃ I) at step index i (Ho's t = i + 1), Ho et al. 2020 eq. 7:

        μ̃ = √ᾱ_{t-1} β_t/(1 - ᾱ_t) x_0 + √α_t (1 - ᾱ_{t-1})/(1 - ᾱ_t) x_t,
        β̃ = (1 - ᾱ_{t-1})/(1 - ᾱ_t) β_t,                         ᾱ_0 = 1.

    Returns (μ̃, β̃)."""
    b = _host_betas(betas)
    checks.batch("x_t", x_t)
    checks.batch("x_0", x_0)
    if x_0.shape != x_t.shape:
        raise ValueError(f"x_0: expected the shape of x_t, {tuple(x_t.shape)}, got {tuple(x_0.shape)}")
    i = checks.count("i", i, minimum=0)
    if i >= len(b):
        raise ValueError(f"i: expected a step index in 0 .. {len(b) - 1}, got {i}")
    ab = _alphas_bar(b)
    ab_prev = ab[i - 1] if i > 0 else 1.0
    mean = (math.sqrt(ab_prev) * b[i] / (1 - ab[i]) * x_0
            + math.sqrt(1 - b[i]) * (1 - ab_prev) / (1 - ab[i]) * x_t)
    return mean, (1 - ab_prev) / (1 - ab[i]) * b[i]


def _index(i, x):
    return backend.xp.full((x.shape[0],), i, dtype=backend.xp.int64)


def ddpm_sample(eps_model, betas, x_T, rng, variance="beta", progress=False):
    """Ancestral sampling (Ho et al. 2020 Alg. 2): from x_T ~ N(0, I), for t = T .. 1,

        x_{t-1} = (x_t - β_t/√(1 - ᾱ_t) ε(x_t, t)) / √α_t + σ_t z,    z = 0 at t = 1,

    with σ_t² = β_t (``variance="beta"``) or β̃_t (``"posterior"``), Ho et al.'s two choices:
    the mean is the exact E[x_{t-1} | x_t] when ε is exact; the variances are the reverse
    process's upper and lower bounds (exact for x_0 ~ N(0, I) and for a point mass)."""
    b = _host_betas(betas)
    checks.batch("x_T", x_T)
    checks.rng("rng", rng)
    checks.option("variance", variance, ("beta", "posterior"))
    eps_model = checks.like_x("eps_model", eps_model)
    ab = _alphas_bar(b)
    x, n = x_T, len(b)
    for i in tqdm(reversed(range(n)), total=n, desc="DDPM", disable=not progress, leave=False):
        eps = eps_model(x, _index(i, x))
        x = (x - b[i] / math.sqrt(1 - ab[i]) * eps) / math.sqrt(1 - b[i])
        if i > 0:
            var = b[i] if variance == "beta" else (1 - ab[i - 1]) / (1 - ab[i]) * b[i]
            x = x + math.sqrt(var) * rng.normal(x.shape, dtype=x.dtype)
        checks.finite_every("x", x, n - 1 - i, n, f"of {n} in ddpm_sample", "check the eps model")
    return x


def ddim_steps(n_total, n_steps):
    """The step indices τ_1 < ... < τ_S of DDIM: ``n_steps`` of 0 .. T-1 evenly spaced, ending at
    T - 1 (τ_k = round(k T/S) - 1)."""
    n_total, n_steps = checks.count("n_total", n_total), checks.count("n_steps", n_steps)
    return sorted({round(k * n_total / n_steps) - 1 for k in range(1, n_steps + 1)})


def ddim_step(x, eps, alpha_bar, alpha_bar_prev):
    """One η = 0 step of Song, Meng & Ermon 2021 eq. 12 from ᾱ = ``alpha_bar`` to ``alpha_bar_prev``:
    x' = √ᾱ' x̂_0 + √(1 - ᾱ') ε with x̂_0 = (x - √(1 - ᾱ) ε)/√ᾱ, the noise ε re-used."""
    checks.batch("x", x)
    checks.batch("eps", eps)
    if eps.shape != x.shape:
        raise ValueError(f"eps: expected the shape of x, {tuple(x.shape)}, got {tuple(eps.shape)}")
    checks.in_interval("alpha_bar", alpha_bar, 0.0, 1.0, closed=(False, True))
    checks.in_interval("alpha_bar_prev", alpha_bar_prev, 0.0, 1.0, closed=(False, True))
    return _ddim_step(x, eps, alpha_bar, alpha_bar_prev)


def _ddim_step(x, eps, alpha_bar, alpha_bar_prev):
    x0 = (x - math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)
    return math.sqrt(alpha_bar_prev) * x0 + math.sqrt(1 - alpha_bar_prev) * eps


def ddim_sample(eps_model, betas, x_T, n_steps, progress=False):
    """Deterministic DDIM sampling (Song, Meng & Ermon 2021 eq. 12 with η = 0) over ``n_steps`` of
    the T steps (``ddim_steps``), from x_T at index T - 1 down to x_0:

        x̂_0 = (x_τ - √(1 - ᾱ_τ) ε(x_τ, τ)) / √ᾱ_τ,     x_τ' = √ᾱ_τ' x̂_0 + √(1 - ᾱ_τ') ε(x_τ, τ),

    τ' the previous index (ᾱ = 1 after the first, so the last step returns x̂_0). In x̄ = x/√ᾱ and
    σ̄ = √((1 - ᾱ)/ᾱ) this is x̄' = x̄ + (σ̄' - σ̄) ε: Euler's method on the probability-flow ODE
    dx̄/dσ̄ = ε (Song, Meng & Ermon 2021 §4.3, eqs. 13-14)."""
    b = _host_betas(betas)
    checks.batch("x_T", x_T)
    n_steps = checks.count("n_steps", n_steps)
    if n_steps > len(b):
        raise ValueError(f"n_steps: expected at most T = {len(b)} steps, got {n_steps}")
    eps_model = checks.like_x("eps_model", eps_model)
    ab = _alphas_bar(b)
    taus = ddim_steps(len(b), n_steps)
    x = x_T
    for k in tqdm(reversed(range(len(taus))), total=len(taus), desc="DDIM", disable=not progress,
                  leave=False):
        tau = taus[k]
        ab_prev = ab[taus[k - 1]] if k > 0 else 1.0
        x = _ddim_step(x, eps_model(x, _index(tau, x)), ab[tau], ab_prev)
        checks.finite_every("x", x, len(taus) - 1 - k, len(taus), f"of {len(taus)} in ddim_sample",
                            "check the eps model")
    return x
