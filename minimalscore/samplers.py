"""Samplers that use a score (or an unnormalised log-density): ULA, MALA, HMC, annealed Langevin
and inpainting (004 §4, §5.1, §5.2). The VE-SDE samplers live in ``sde.py``.

Every sampler takes ``rng`` (``backend.default_rng``), works on any batch-first shape
(vectors (N, D) or images (N, C, H, W)), keeps x's float dtype, and shows a progress bar with
``progress=True``. ``score`` is x -> array like x; annealed samplers call score(x, sigma) with
a per-example ``sigma`` of shape (N,) (DESIGN.md §3).
"""
import math

import autograd.numpy as anp
from autograd import grad
from tqdm.auto import tqdm

from . import backend
from .objectives import check_batch, check_sigmas


def _steps(n, progress, desc):
    return tqdm(range(n), desc=desc, disable=not progress, leave=False)


def _check_positive(name, value):
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name}: must be a positive finite number, got {value}")


def _check_count(name, value):
    if int(value) != value or value < 1:
        raise ValueError(f"{name}: must be a positive integer, got {value}")


def langevin_step(score_x, x, step, rng):
    """One ULA step (004 §4): x + (ε/2) s(x) + √ε z, z ~ N(0, I)."""
    return x + (step / 2) * score_x + math.sqrt(step) * rng.normal(x.shape, dtype=x.dtype)


def langevin(score, x0, step, n_steps, rng, progress=False):
    """Unadjusted Langevin algorithm (ULA; 004 §4): x <- x + (ε/2) s(x) + √ε z.

    Its stationary law approaches p as ε -> 0; at fixed ε it is biased (for N(0, 1) the
    stationary variance is 1/(1 - ε/4)). Two other conventions meet in the literature:
    seed 002 writes x + ε s + √ε w, whose stationary law is p² (normalised), not p — for
    N(0, 1) a variance of 1/(2 - ε) -> 1/2 (tests pin it); NCSN's released code writes
    x + a s + √(2a) z, which is this rule with ε = 2a.
    """
    check_batch(x0, "x0")
    _check_positive("step", step)
    _check_count("n_steps", n_steps)
    x = x0
    for _ in _steps(n_steps, progress, "Langevin"):
        x = langevin_step(score(x), x, step, rng)
    return x


def _broadcasts_to(shape, target):
    """True if an array of ``shape`` broadcasts to exactly ``target`` (NumPy's rules)."""
    if len(shape) > len(target):
        return False
    return all(a in (1, b) for a, b in zip(shape[::-1], target[::-1]))


def _sum_per_example(a):
    return anp.sum(anp.reshape(a, (a.shape[0], -1)), axis=1)


def _accept(log_ratio, proposal, x, rng):
    """Metropolis-Hastings: keep each chain's proposal with probability min(1, e^log_ratio)."""
    xp = backend.xp
    u = rng.uniform(0.0, 1.0, (x.shape[0],), dtype=x.dtype)
    accepted = xp.log(u) < log_ratio
    mask = xp.reshape(accepted, (-1,) + (1,) * (x.ndim - 1))
    return xp.where(mask, proposal, x), accepted


def mala(log_prob, x0, step, n_steps, rng, progress=False):
    """Metropolis-adjusted Langevin (Roberts & Tweedie 1996; 004 §4): a ULA proposal
    x' = x + (ε/2)∇log p(x) + √ε z, accepted with probability
    min(1, p(x') q(x | x') / (p(x) q(x' | x))), q(b | a) = N(b; a + (ε/2)∇log p(a), ε I).
    Exact for any ε (p's stationary law); ``log_prob`` x -> (N,) may be unnormalised.
    Returns (x, acceptance rate over all chains and steps).
    """
    check_batch(x0, "x0")
    _check_positive("step", step)
    _check_count("n_steps", n_steps)
    score = grad(lambda y: anp.sum(log_prob(y)))

    def log_q(to, frm, score_frm):  # log N(to; frm + (ε/2) s(frm), ε I) up to a constant
        return -_sum_per_example((to - frm - (step / 2) * score_frm) ** 2) / (2 * step)

    x, lp, s = x0, log_prob(x0), score(x0)
    accepted = 0.0
    for _ in _steps(n_steps, progress, "MALA"):
        proposal = langevin_step(s, x, step, rng)
        lp_new, s_new = log_prob(proposal), score(proposal)
        log_ratio = lp_new - lp + log_q(x, proposal, s_new) - log_q(proposal, x, s)
        x, keep = _accept(log_ratio, proposal, x, rng)
        lp, s = backend.xp.where(keep, lp_new, lp), _select(keep, s_new, s)
        accepted += float(keep.mean())
    return x, accepted / n_steps


def _select(keep, new, old):
    return backend.xp.where(backend.xp.reshape(keep, (-1,) + (1,) * (new.ndim - 1)), new, old)


def hmc(log_prob, x0, step, n_leapfrog, n_steps, rng, jitter=0.2, progress=False):
    """Hamiltonian Monte Carlo (Duane et al. 1987; Neal 2011; 004 §4): momentum r ~ N(0, I),
    ``n_leapfrog`` leapfrog steps on H(x, r) = -log p(x) + |r|²/2, then a Metropolis test on
    exp(-ΔH). Exact for any step. Each chain's step is drawn afresh every transition from
    step·(1 ± ``jitter``) (Neal 2011 §5.4.2.2): a fixed trajectory length can resonate with a
    direction of the target (e.g. a half period maps x to -x) and stop mixing there.
    Returns (x, acceptance rate)."""
    check_batch(x0, "x0")
    _check_positive("step", step)
    _check_count("n_leapfrog", n_leapfrog)
    _check_count("n_steps", n_steps)
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter: must be in [0, 1), got {jitter}")
    score = grad(lambda y: anp.sum(log_prob(y)))
    x, lp, s = x0, log_prob(x0), score(x0)
    accepted = 0.0
    for _ in _steps(n_steps, progress, "HMC"):
        r = rng.normal(x.shape, dtype=x.dtype)
        h = step * rng.uniform(1 - jitter, 1 + jitter, (x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype)
        y, s_y, r_y = x, s, r + (h / 2) * s  # half step in momentum
        for i in range(n_leapfrog):
            y = y + h * r_y
            s_y = score(y)
            r_y = r_y + (h if i < n_leapfrog - 1 else h / 2) * s_y
        lp_y = log_prob(y)
        log_ratio = lp_y - lp - 0.5 * _sum_per_example(r_y ** 2) + 0.5 * _sum_per_example(r ** 2)
        x, keep = _accept(log_ratio, y, x, rng)
        lp, s = backend.xp.where(keep, lp_y, lp), _select(keep, s_y, s)
        accepted += float(keep.mean())
    return x, accepted / n_steps


def _level_steps(sigmas, eps):
    """α_i = ε σ_i² / σ_L² (004 §5.1): a constant signal-to-noise ratio across levels."""
    sigma_last = float(sigmas[-1])
    return [eps * float(s) ** 2 / sigma_last ** 2 for s in sigmas]


def _check_annealing(x, sigmas, eps, n_steps_each):
    check_batch(x, "x0")
    sigmas = backend.asarray(sigmas, dtype=x.dtype)
    check_sigmas(sigmas)
    _check_positive("eps", eps)
    _check_count("n_steps_each", n_steps_each)
    return sigmas


def annealed_langevin(score, x0, sigmas, eps, n_steps_each, rng, denoise=False, progress=False):
    """Annealed Langevin dynamics (Song & Ermon 2019 Alg. 1; 004 §5.1 Algorithm): for each level
    σ_1 > ... > σ_L, T = ``n_steps_each`` ULA steps with the score s(x, σ_i) and step
    α_i = ε σ_i²/σ_L². ``denoise=True`` ends with Tweedie's step x + σ_L² s(x, σ_L)
    (004 Theorem 5; NCSNv2's final denoising), the posterior mean E[x | x~].
    """
    sigmas = _check_annealing(x0, sigmas, eps, n_steps_each)
    x, n = x0, x0.shape[0]
    bar = tqdm(total=len(sigmas) * n_steps_each, desc="annealed Langevin", disable=not progress, leave=False)
    for sigma, alpha in zip(sigmas, _level_steps(sigmas, eps)):
        sigma_vec = backend.xp.full((n,), float(sigma), dtype=x.dtype)
        for _ in range(n_steps_each):
            x = langevin_step(score(x, sigma_vec), x, alpha, rng)
            bar.update()
    bar.close()
    if denoise:
        x = x + float(sigmas[-1]) ** 2 * score(x, sigma_vec)
    return x


def inpaint(score, x, mask, sigmas, eps, n_steps_each, rng, x0=None, denoise=False, progress=False):
    """Inpainting by annealed Langevin (Song & Ermon 2019 Alg. 2; 004 §5.2 Algorithm): the
    observed part (mask = 1) is re-noised once per level, y = x + σ_i ξ, and written over the
    chain after every step, x~ <- x~ ∘ (1 - m) + y ∘ m, so the unobserved part samples
    p_σi(x_unobserved | y_observed). The chain starts at ``x0`` (default: uniform on the
    data's range in the unobserved part). At the end the observed part is set to x itself:
    the algorithm would leave it at y (x plus σ_L noise), an artefact, not an inference.
    """
    xp = backend.xp
    sigmas = _check_annealing(x, sigmas, eps, n_steps_each)
    mask = backend.asarray(mask, dtype=x.dtype)
    if not _broadcasts_to(mask.shape, x.shape):
        raise ValueError(f"mask: shape {mask.shape} does not broadcast to x's {x.shape}")
    if x0 is None:
        low, high = float(x.min()), float(x.max())
        x0 = rng.uniform(low, high, x.shape, dtype=x.dtype)
    check_batch(x0, "x0")
    chain, n = x0 * (1 - mask) + x * mask, x.shape[0]
    bar = tqdm(total=len(sigmas) * n_steps_each, desc="inpainting", disable=not progress, leave=False)
    for sigma, alpha in zip(sigmas, _level_steps(sigmas, eps)):
        sigma_vec = xp.full((n,), float(sigma), dtype=x.dtype)
        y = x + float(sigma) * rng.normal(x.shape, dtype=x.dtype)
        for _ in range(n_steps_each):
            chain = langevin_step(score(chain, sigma_vec), chain, alpha, rng)
            chain = chain * (1 - mask) + y * mask
            bar.update()
    bar.close()
    if denoise:
        chain = chain + float(sigmas[-1]) ** 2 * score(chain, sigma_vec)
    return chain * (1 - mask) + x * mask
