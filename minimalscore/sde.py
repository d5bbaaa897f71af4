"""Diffusion processes as SDEs (Song et al. 2021 §3.4, App. B): the variance-exploding (VE),
variance-preserving (VP) and sub-VP processes, each one small record of functions,

    forward SDE          dx = f(x, t) dt + g(t) dw,                 t in [t_min, 1]
    perturbation kernel  p_t(x | x0) = N(alpha_t x0, sigma_t² I)

  VE      f = 0,            g² = d[σ²]/dt,             alpha_t = 1,              sigma_t = σ(t)
  VP      f = -½ β(t) x,    g² = β(t),                 alpha_t = exp(-½ B(t)),   sigma_t² = 1 - alpha_t²
  sub-VP  f = -½ β(t) x,    g² = β(t)(1 - e^{-2B(t)}), alpha_t = exp(-½ B(t)),   sigma_t = 1 - alpha_t²

with σ(t) = σ_min (σ_max/σ_min)^t, β(t) = β_min + t (β_max - β_min) and B(t) = ∫_0^t β(s) ds
(Song et al. 2021 eqs. 9, 11, 12; the kernels App. B). For VE the time-0 law is the data blurred
by σ_min, as in NCSN, so sigma_0 = σ_min. A score now takes time: score(x, t), t of shape (N,); the adapters
below turn a noise-conditional net score(x, σ), an ε-prediction or an x0-prediction into one
(and a time-conditioned net back into score(x, σ) for annealed Langevin).

Each member takes t as a Python float (a sampler's step, no device work) or an (N,) array (per
example). The samplers over any of these SDEs are in ``sde_sampling`` (reverse SDE,
predictor-corrector, probability flow, likelihood, bits/dim) and ``ddpm`` (Ho et al. 2020's
ancestral sampler, DDIM); all are reachable as ``minimalscore.sde.NAME``.
"""
import math
import numbers
from dataclasses import dataclass, field
from typing import Callable

import autograd.numpy as anp

from . import backend, checks, ops
from .ddpm import alphas_bar, ddim_sample, ddim_step, ddim_steps, ddpm_posterior, ddpm_sample, vp_betas
from .sde_sampling import (bits_per_dim, langevin_corrector, log_likelihood, predictor_corrector,
                           probability_flow, reverse_sde)

__all__ = ["SDE", "VE", "VP", "SubVP", "sigma_conditioned", "noise_conditioned", "eps_to_score",
           "x0_to_score", "reverse_sde", "predictor_corrector", "langevin_corrector", "probability_flow",
           "log_likelihood", "bits_per_dim", "ddpm_sample", "ddim_sample", "ddim_step", "ddim_steps",
           "ddpm_posterior", "alphas_bar", "vp_betas"]


@dataclass(frozen=True)
class SDE:
    """A forward diffusion: drift(x, t) = f, diffusion(t) = g, marginal(t) = (alpha_t, sigma_t),
    the prior p_1 = N(0, prior_std² I) (prior_sample(shape, rng), prior_log_prob(x) -> (N,)) and
    t_min, where sampling stops and likelihoods start.

    The methods check their arguments (an array's values cost one host read); the samplers check
    theirs once at entry and then call the plain coefficient functions ``_drift``, ``_diffusion``
    and ``_marginal`` at every step, with no host read."""
    name: str
    _drift: Callable = field(repr=False)
    _diffusion: Callable = field(repr=False)
    _marginal: Callable = field(repr=False)
    prior_std: float
    t_min: float = 0.0

    def drift(self, x, t):
        """f(x, t), shaped like x; t a float or one time per example (N,)."""
        checks.batch("x", x)
        return self._drift(x, checks.times("t", t, n=x.shape[0]))

    def diffusion(self, t):
        """g(t): a float for a float t, (N,) for times (N,)."""
        return self._diffusion(checks.times("t", t))

    def marginal(self, t):
        """(alpha_t, sigma_t) of the perturbation kernel p_t(x | x0) = N(alpha_t x0, sigma_t² I)."""
        return self._marginal(checks.times("t", t))

    def prior_sample(self, shape, rng, dtype=None):
        """Draws of the prior N(0, prior_std² I), an array of ``shape`` (batch first)."""
        return self.prior_std * checks.rng("rng", rng).normal(_shape("shape", shape), dtype=dtype)

    def prior_log_prob(self, x):
        """log N(x; 0, prior_std² I), one value per example (N,)."""
        checks.batch("x", x)
        dim, std = math.prod(x.shape[1:]), self.prior_std
        return (-0.5 * ops.sum_per_example(x ** 2) / std ** 2
                - dim * math.log(std) - 0.5 * dim * math.log(2 * math.pi))


def _shape(name, shape):
    """A batch-first shape: a tuple (or list) of positive integers."""
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"{name}: expected a shape (N, ...) of positive integers, got {checks.show(shape)}")
    if not shape:
        raise ValueError(f"{name}: expected a shape (N, ...) of positive integers, got ()")
    return tuple(checks.count(f"{name}[{i}]", s) for i, s in enumerate(shape))


def _exp(a):
    return math.exp(a) if isinstance(a, numbers.Real) else anp.exp(a)


def _expm1(a):
    return math.expm1(a) if isinstance(a, numbers.Real) else anp.expm1(a)


def _sqrt(a):
    return math.sqrt(a) if isinstance(a, numbers.Real) else anp.sqrt(a)


def _against(v, x):
    """A time-dependent coefficient (a float, or (N,) per example) broadcast against x."""
    return v if isinstance(v, numbers.Real) else ops.per_example(v, x.ndim)


def VE(sigma_min, sigma_max):
    """The variance-exploding SDE dx = σ(t) √(2 log(σ_max/σ_min)) dw (Song et al. 2021 App. C):
    NCSN's geometric noise levels made continuous. Prior N(0, σ_max² I), t_min = 0."""
    sigma_min, sigma_max = checks.positive("sigma_min", sigma_min), checks.positive("sigma_max", sigma_max)
    if not sigma_min < sigma_max:
        raise ValueError(f"sigma_min: expected sigma_min < sigma_max, got {sigma_min} >= {sigma_max}")
    log_ratio = math.log(sigma_max / sigma_min)

    def sigma(t):
        return sigma_min * (sigma_max / sigma_min) ** t

    def drift(x, t):
        return 0.0 * x

    def diffusion(t):
        return sigma(t) * math.sqrt(2 * log_ratio)

    def marginal(t):
        return 1.0 + 0.0 * t, sigma(t)

    return SDE(f"VE(sigma_min={sigma_min}, sigma_max={sigma_max})", drift, diffusion, marginal,
               prior_std=sigma_max, t_min=0.0)


def _check_betas(beta_min, beta_max):
    beta_min, beta_max = checks.positive("beta_min", beta_min), checks.positive("beta_max", beta_max)
    if not beta_min < beta_max:
        raise ValueError(f"beta_min: expected beta_min < beta_max, got {beta_min} >= {beta_max}")
    beta = lambda t: beta_min + t * (beta_max - beta_min)
    integral = lambda t: beta_min * t + 0.5 * (beta_max - beta_min) * t ** 2  # B(t) = ∫_0^t β
    return beta, integral


def VP(beta_min=0.1, beta_max=20.0):
    """The variance-preserving SDE dx = -½ β(t) x dt + √β(t) dw (Song et al. 2021 eq. 11), the
    continuous limit of DDPM (Ho et al. 2020). Prior N(0, I), t_min = 1e-5."""
    beta, integral = _check_betas(beta_min, beta_max)

    def drift(x, t):
        return -0.5 * _against(beta(t), x) * x

    def diffusion(t):
        return _sqrt(beta(t))

    def marginal(t):
        # 1 - alpha_t² = -expm1(-B): at t_min, B ~ 1e-6 and 1 - exp(-B) would lose its digits
        return _exp(-0.5 * integral(t)), _sqrt(-_expm1(-integral(t)))

    return SDE(f"VP(beta_min={beta_min}, beta_max={beta_max})", drift, diffusion, marginal,
               prior_std=1.0, t_min=1e-5)


def SubVP(beta_min=0.1, beta_max=20.0):
    """The sub-VP SDE dx = -½ β(t) x dt + √(β(t)(1 - e^{-2B(t)})) dw (Song et al. 2021 eq. 12):
    VP's drift, a smaller diffusion, so its variance (1 - alpha_t²)² stays below VP's.
    Prior N(0, I), t_min = 1e-5."""
    beta, integral = _check_betas(beta_min, beta_max)

    def drift(x, t):
        return -0.5 * _against(beta(t), x) * x

    def diffusion(t):
        return _sqrt(-beta(t) * _expm1(-2 * integral(t)))

    def marginal(t):
        return _exp(-0.5 * integral(t)), -_expm1(-integral(t))

    return SDE(f"SubVP(beta_min={beta_min}, beta_max={beta_max})", drift, diffusion, marginal,
               prior_std=1.0, t_min=1e-5)


# ------------------------------------------------------------ parameterisations of the score
def sigma_conditioned(score, sde):
    """score(x, σ) -> score(x, t) for ``sde``. A net trained as NCSN, on x + σz, knows
    s_σ = ∇log(p * N(0, σ²)). Under the SDE, x_t = alpha_t (x0 + (sigma_t/alpha_t) z), so
    p_t(x) = p_σ(x/alpha_t)/alpha_t^D with σ = sigma_t/alpha_t and, by the chain rule,

        s_t(x) = s_σ(x / alpha_t) / alpha_t.

    For VE alpha_t = 1 and this is s_σ(t)(x)."""
    score, sde = checks.like_x("score", score), checks.sde("sde", sde)

    def score_t(x, t):
        alpha, sigma = sde._marginal(t)
        a = _against(alpha, x)
        return score(x / a, sigma / alpha) / a
    return score_t


def noise_conditioned(score, sde, n_bisections=60):
    """score(x, t) -> score(x, σ), the inverse of :func:`sigma_conditioned`, for annealed Langevin
    over a time-conditioned net: t(σ) solves sigma_t/alpha_t = σ (increasing in t for VE, VP and
    sub-VP) by bisection on [t_min, 1], on device, and s_σ(y) = alpha_t s_t(alpha_t y). A σ
    outside [sigma_{t_min}/alpha_{t_min}, sigma_1/alpha_1] gets the nearest end's t."""
    score, sde = checks.like_x("score", score), checks.sde("sde", sde)
    checks.count("n_bisections", n_bisections)
    ratio = lambda t: sde._marginal(t)[1] / sde._marginal(t)[0]

    def score_sigma(x, sigma):
        low, high = 0.0 * sigma + sde.t_min, 0.0 * sigma + 1.0
        for _ in range(n_bisections):  # the bracket halves: 60 halvings reach float64 resolution
            mid = 0.5 * (low + high)
            above = ratio(mid) > sigma
            low, high = backend.xp.where(above, low, mid), backend.xp.where(above, mid, high)
        t = 0.5 * (low + high)
        a = _against(sde._marginal(t)[0], x)
        return a * score(a * x, t)
    return score_sigma


def eps_to_score(eps_model, sde):
    """ε-prediction -> score: x_t = alpha_t x0 + sigma_t ε gives ∇log p_t(x) = -E[ε | x]/sigma_t
    (Vincent 2011; Ho et al. 2020 §3.2)."""
    eps_model, sde = checks.like_x("eps_model", eps_model), checks.sde("sde", sde)
    return lambda x, t: -eps_model(x, t) / _against(sde._marginal(t)[1], x)


def x0_to_score(x0_model, sde):
    """x0-prediction -> score by Tweedie's formula: E[alpha_t x0 | x] = x + sigma_t² ∇log p_t(x),
    so s = (alpha_t x̂0 - x)/sigma_t² (Efron 2011)."""
    x0_model, sde = checks.like_x("x0_model", x0_model), checks.sde("sde", sde)
    def score_t(x, t):
        alpha, sigma = sde._marginal(t)
        return (_against(alpha, x) * x0_model(x, t) - x) / _against(sigma, x) ** 2
    return score_t
