"""The closed forms behind the diffusion study: the 1-D mixture of ``examples.gmm1d`` pushed
through a diffusion SDE, its exact time-dependent score, the bound that turns a score error into a
sample error, and the discrete DDPM chain that matches the VP SDE on any number of steps.

For p = sum_k w_k N(mu_k, s_k²) and the perturbation kernel p_t(x | x0) = N(alpha_t x0, sigma_t²)
every marginal is again a mixture,

    p_t = sum_k w_k N(alpha_t mu_k, alpha_t² s_k² + sigma_t²)           (Song et al. 2021 eq. 29 ff.)

so its score, its density and samples from it are exact at every t; the samplers are judged
against p at t_min, and a learned score against this one.
"""
import math

import autograd.numpy as anp

import minimalscore as ms

from . import gmm1d


def _constants(dtype):
    xp = ms.backend.xp
    return (xp.asarray(gmm1d.MEANS, dtype=dtype), xp.asarray(gmm1d.STDS, dtype=dtype) ** 2,
            xp.log(xp.asarray(gmm1d.WEIGHTS, dtype=dtype)))


def perturbed_score(y, sigma):
    """∇log p_σ(y) for p_σ = p * N(0, σ²), with σ of shape (N,) per example (Song & Ermon 2019's
    noise-conditional score, here exact): the responsibilities r_k of the components
    N(mu_k, s_k² + σ²) weight their scores -(y - mu_k)/(s_k² + σ²). y is (N, 1)."""
    means, variances, log_w = _constants(y.dtype)
    v = variances[None, :] + sigma[:, None] ** 2
    r = y - means[None, :]
    log_joint = log_w - 0.5 * anp.log(v) - 0.5 * r ** 2 / v
    resp = anp.exp(log_joint - ms.ops.logsumexp(log_joint, axis=1)[:, None])
    return anp.sum(resp * (-r / v), axis=1, keepdims=True)


def marginal(sde, t):
    """p_t, the law of x(t) when x(0) ~ p, as a GaussianMixture (t a Python float)."""
    alpha, sigma = sde.marginal(float(t))
    xp, p = ms.backend.xp, gmm1d.target()
    return ms.distributions.GaussianMixture(alpha * p.means, alpha ** 2 * p.covs + sigma ** 2,
                                            p.weights, dtype=xp.float64)


def exact_score(sde):
    """∇log p_t(x) as score(x, t), t of shape (N,): the exact p_σ score read at σ = sigma_t/alpha_t
    and rescaled by ``ms.sde.sigma_conditioned`` (p_t(x) = p_σ(x/alpha_t)/alpha_t)."""
    return ms.sde.sigma_conditioned(perturbed_score, sde)


def score_error(score, sde, rng, n_times=120, n_points=4000):
    """J = ½ ∫_{t_min}^1 g(t)² E_{p_t} |s(x, t) - ∇log p_t(x)|² dt, the likelihood-weighted score
    error, which bounds KL(p_{t_min} || law of the reverse SDE run with s from the prior) up to
    KL(p_1 || prior) (Song, Durkan, Murray & Ermon 2021 Thm 1). Trapezoid rule on times spaced
    geometrically from t_min (where sigma_t, and a network's error in the score, change fastest);
    E_{p_t} by Monte Carlo with the same x0 and z at every t, so the curve in t is smooth."""
    xp = ms.backend.xp
    x0 = gmm1d.target().sample(n_points, rng)
    z = rng.normal(x0.shape, dtype=x0.dtype)
    offsets = [1e-4 * (1e4 ** (i / (n_times - 1))) for i in range(n_times)]
    times = [sde.t_min] + [sde.t_min + (1 - sde.t_min) * u for u in offsets]
    truth = exact_score(sde)
    values = []
    for t in times:
        alpha, sigma = sde.marginal(t)
        x, tt = alpha * x0 + sigma * z, ms.ops.full_batch(t, x0)
        values.append(sde.diffusion(t) ** 2 * float(xp.mean((score(x, tt) - truth(x, tt)) ** 2)))
    return 0.5 * sum((b - a) * (u + v) / 2 for a, b, u, v in zip(times, times[1:], values, values[1:]))


def prior_kl(sde, n=20001):
    """KL(p_1 || prior) = ∫ p_1 log(p_1/prior) dx by the trapezoid rule over ±12 standard
    deviations of p_1: what starting from the prior instead of p_1 costs, the bound's other term."""
    xp = ms.backend.xp
    p1 = marginal(sde, 1.0)
    spread = 12 * math.sqrt(float(xp.max(p1.covs)) + float(xp.max(p1.means ** 2)))
    x = xp.linspace(-spread, spread, n)[:, None]
    log_p1 = p1.log_prob(x)
    integrand = xp.exp(log_p1) * (log_p1 - sde.prior_log_prob(x))
    return float(xp.sum(integrand) * (x[1, 0] - x[0, 0]))


def ks_bound(kl):
    """KS <= total variation <= √(KL/2) (Pinsker's inequality; KS is a supremum over half-lines,
    a special case of the total variation's supremum over sets)."""
    return math.sqrt(max(kl, 0.0) / 2)


def ddpm_chain(sde, n_steps):
    """The discrete chain of Ho et al. 2020 on ``n_steps`` steps that agrees with the VP SDE at
    t_i = i/n: ᾱ_i = alpha_{t_i}², β_i = 1 - ᾱ_i/ᾱ_{i-1} (the respacing of Nichol & Dhariwal 2021
    §4, which keeps every β_i < 1 however few the steps). Returns (betas, times), times[i] the
    SDE time of step index i, so that an ε-model is ε(x, i) = -sigma_{t_i} s(x, t_i)."""
    times = [(i + 1) / n_steps for i in range(n_steps)]
    abar = [1.0] + [sde.marginal(t)[0] ** 2 for t in times]
    return ms.backend.asarray([1 - b / a for a, b in zip(abar, abar[1:])]), times


def eps_model(score, sde, times):
    """ε(x, i) = -sigma_{t_i} s(x, t_i) (Ho et al. 2020 §3.2: the noise a score implies), i (N,)
    step indices into ``times``."""
    xp = ms.backend.xp
    t_of, sigma_of = xp.asarray(times), xp.asarray([sde.marginal(t)[1] for t in times])

    def eps(x, i):
        t = t_of[i].astype(x.dtype)
        return -sigma_of[i].astype(x.dtype)[:, None] * score(x, t)
    return eps
