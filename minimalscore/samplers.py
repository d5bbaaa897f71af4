"""Samplers that use a score (or an unnormalised log-density): ULA, MALA, HMC, annealed Langevin
and inpainting (004 §4, §5.1, §5.2). The VE-SDE samplers live in ``sde.py``.

Every sampler takes ``rng`` (``backend.default_rng``), works on any batch-first shape
(vectors (N, D) or images (N, C, H, W)), keeps x's float dtype, and shows a progress bar with
``progress=True``. ``score`` is x -> array like x; annealed samplers call score(x, sigma) with
a per-example ``sigma`` of shape (N,) (DESIGN.md §3). Nothing inside a loop reads a value back
to the host: step sizes are Python floats computed up front, acceptance counts stay on device.
"""
import math

import autograd.numpy as anp
from autograd import grad
from tqdm.auto import tqdm

from . import backend
from .objectives import check_batch, check_sigmas


def _bar(total, progress, desc):
    return tqdm(total=total, desc=desc, disable=not progress, leave=False)


def _check_positive(name, value):
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name}: must be a positive finite number, got {value}")


def _check_count(name, value):
    if int(value) != value or value < 1:
        raise ValueError(f"{name}: must be a positive integer, got {value}")


def langevin_step(score_x, x, step, rng):
    """One ULA step (004 §4): x + (ε/2) s(x) + √ε z, z ~ N(0, I); ``step`` ε a Python float."""
    return x + (step / 2) * score_x + math.sqrt(step) * rng.normal(x.shape, dtype=x.dtype)


def langevin(score, x0, step, n_steps, rng, progress=False):
    """Unadjusted Langevin algorithm (ULA; 004 §4): x <- x + (ε/2) s(x) + √ε z.

    Its stationary law approaches p as ε -> 0; at fixed ε it is biased (for N(0, 1) the
    stationary variance is 1/(1 - ε/4)). Two other conventions meet in the literature:
    seed 002 writes x + ε s + √ε w, whose stationary law is p² (normalised), not p — for
    N(0, 1) a variance of 1/(2 - ε) -> 1/2 (the tests pin it); NCSN's released code writes
    x + a s + √(2a) z, which is this rule with ε = 2a.
    """
    check_batch(x0, "x0")
    _check_positive("step", step)
    _check_count("n_steps", n_steps)
    x = x0
    for _ in tqdm(range(n_steps), desc="Langevin", disable=not progress, leave=False):
        x = langevin_step(score(x), x, step, rng)
    return x


def _sum_per_example(a):
    return anp.sum(anp.reshape(a, (a.shape[0], -1)), axis=1)


def _per_example(flags, ndim):
    """(N,) -> (N, 1, ..., 1): broadcasts a per-chain value against an x of ``ndim`` axes."""
    return backend.xp.reshape(flags, (-1,) + (1,) * (ndim - 1))


def _metropolis(log_ratio, rng, dtype):
    """Metropolis-Hastings, per chain: accept with probability min(1, exp(log_ratio))."""
    u = rng.uniform(0.0, 1.0, log_ratio.shape, dtype=dtype)
    return backend.xp.log(u) < log_ratio


def _keep(accept, new, old):
    return backend.xp.where(_per_example(accept, new.ndim), new, old)


def mala(log_prob, x0, step, n_steps, rng, progress=False):
    """Metropolis-adjusted Langevin (Roberts & Tweedie 1996; 004 §4): a ULA proposal
    x' = x + (ε/2)∇log p(x) + √ε z, accepted with probability
    min(1, p(x') q(x | x') / (p(x) q(x' | x))), q(b | a) = N(b; a + (ε/2)∇log p(a), ε I).
    p is its stationary law for any ε; ``log_prob`` x -> (N,) may be unnormalised and is
    differentiated by autograd. Returns (x, acceptance rate over all chains and steps).
    """
    check_batch(x0, "x0")
    _check_positive("step", step)
    _check_count("n_steps", n_steps)
    score = grad(lambda y: anp.sum(log_prob(y)))  # chains are independent: ∇ of the sum is per chain

    def log_q(to, frm, score_frm):  # log N(to; frm + (ε/2) s(frm), ε I) up to a constant
        return -_sum_per_example((to - frm - (step / 2) * score_frm) ** 2) / (2 * step)

    x, lp, s = x0, log_prob(x0), score(x0)
    n_accepted = 0.0
    for _ in tqdm(range(n_steps), desc="MALA", disable=not progress, leave=False):
        proposal = langevin_step(s, x, step, rng)
        lp_new, s_new = log_prob(proposal), score(proposal)
        log_ratio = lp_new - lp + log_q(x, proposal, s_new) - log_q(proposal, x, s)
        accept = _metropolis(log_ratio, rng, x.dtype)
        x, lp, s = _keep(accept, proposal, x), backend.xp.where(accept, lp_new, lp), _keep(accept, s_new, s)
        n_accepted = n_accepted + accept.sum()
    return x, float(n_accepted) / (n_steps * x.shape[0])


def hmc(log_prob, x0, step, n_leapfrog, n_steps, rng, jitter=0.2, progress=False):
    """Hamiltonian Monte Carlo (Duane et al. 1987; Neal 2011; 004 §4): momentum r ~ N(0, I),
    ``n_leapfrog`` leapfrog steps on H(x, r) = -log p(x) + |r|²/2, then a Metropolis test on
    exp(-ΔH). p is its stationary law for any step. Each chain's step is drawn afresh every
    transition, uniform on step·(1 ± ``jitter``) (Neal 2011 §5.4.2.2): a fixed trajectory
    length can resonate with a direction of the target (a half period maps x to -x) and stop
    mixing there; ``jitter=0`` gives plain HMC. Returns (x, acceptance rate)."""
    check_batch(x0, "x0")
    _check_positive("step", step)
    _check_count("n_leapfrog", n_leapfrog)
    _check_count("n_steps", n_steps)
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter: must be in [0, 1), got {jitter}")
    score = grad(lambda y: anp.sum(log_prob(y)))
    x, lp, s = x0, log_prob(x0), score(x0)
    n_accepted = 0.0
    for _ in tqdm(range(n_steps), desc="HMC", disable=not progress, leave=False):
        r = rng.normal(x.shape, dtype=x.dtype)
        h = rng.uniform(step * (1 - jitter), step * (1 + jitter), (x.shape[0],) + (1,) * (x.ndim - 1),
                        dtype=x.dtype)
        y, s_y, r_y = x, s, r + (h / 2) * s  # a half step in momentum, then whole steps
        for i in range(n_leapfrog):
            y = y + h * r_y
            s_y = score(y)
            r_y = r_y + (h if i < n_leapfrog - 1 else h / 2) * s_y  # the last one a half step
        lp_y = log_prob(y)
        log_ratio = lp_y - lp - 0.5 * _sum_per_example(r_y ** 2) + 0.5 * _sum_per_example(r ** 2)
        accept = _metropolis(log_ratio, rng, x.dtype)
        x, lp, s = _keep(accept, y, x), backend.xp.where(accept, lp_y, lp), _keep(accept, s_y, s)
        n_accepted = n_accepted + accept.sum()
    return x, float(n_accepted) / (n_steps * x.shape[0])


def _annealing_schedule(sigmas, eps, n_steps_each):
    """Validated noise levels and steps as Python floats: [(σ_i, α_i)] with
    α_i = ε σ_i² / σ_L² (004 §5.1), which keeps the signal-to-noise ratio of a step constant."""
    sigmas = backend.asarray(sigmas, dtype=backend.xp.float64)
    check_sigmas(sigmas)
    _check_positive("eps", eps)
    _check_count("n_steps_each", n_steps_each)
    sigmas = [float(s) for s in backend.asnumpy(sigmas)]  # one transfer, before the loop
    return [(s, eps * s ** 2 / sigmas[-1] ** 2) for s in sigmas]


def _sigma_vector(sigma, x):
    """The per-example noise level (N,) a noise-conditional score takes (DESIGN.md §3)."""
    return backend.xp.full((x.shape[0],), sigma, dtype=x.dtype)


def _tweedie(score, x, sigma):
    """E[x | x~] = x~ + σ² ∇log p_σ(x~) (Tweedie's formula, 004 Theorem 5)."""
    return x + sigma ** 2 * score(x, _sigma_vector(sigma, x))


def annealed_langevin(score, x0, sigmas, eps, n_steps_each, rng, denoise=False, progress=False):
    """Annealed Langevin dynamics (Song & Ermon 2019 Alg. 1; 004 §5.1 Algorithm): for each level
    σ_1 > ... > σ_L, T = ``n_steps_each`` ULA steps with the score s(x, σ_i) and step
    α_i = ε σ_i²/σ_L². ``denoise=True`` ends with Tweedie's step x + σ_L² s(x, σ_L)
    (NCSNv2's final denoising), the posterior mean E[x | x~] at the last level.
    """
    check_batch(x0, "x0")
    schedule = _annealing_schedule(sigmas, eps, n_steps_each)
    x = x0
    with _bar(len(schedule) * n_steps_each, progress, "annealed Langevin") as bar:
        for sigma, alpha in schedule:
            sigma_vec = _sigma_vector(sigma, x)
            for _ in range(n_steps_each):
                x = langevin_step(score(x, sigma_vec), x, alpha, rng)
                bar.update()
    return _tweedie(score, x, schedule[-1][0]) if denoise else x


def _broadcasts_to(shape, target):
    """True if an array of ``shape`` broadcasts to exactly ``target`` (NumPy's rules)."""
    if len(shape) > len(target):
        return False
    return all(a in (1, b) for a, b in zip(shape[::-1], target[::-1]))


def inpaint(score, x, mask, sigmas, eps, n_steps_each, rng, x0=None, denoise=False, renoise="level",
            progress=False):
    """Inpainting by annealed Langevin (Song & Ermon 2019 Alg. 2; 004 §5.2 Algorithm).

    At each level the observed part (mask = 1) is re-noised once, y = x + σ_i ξ, and after
    every ULA step written over the chain, x~ <- x~ ∘ (1 - m) + y ∘ m; the unobserved part then
    samples p_σi(x~_unobserved | x~_observed = y). ``mask`` has x's shape or broadcasts to it.
    ``renoise="step"`` draws a new y for every step instead, as NCSNv2's released code does
    (``anneal_Langevin_dynamics_inpainting``; it writes y in before the step's score, here after
    the step, which shifts y by one step and leaves the stationary law as it is): the chain then
    sees an average over y's noise, not one draw of it (``tests/test_samplers.py`` predicts both
    laws exactly for a Gaussian).
    The chain starts at ``x0`` (default: uniform on [min x, max x], as NCSN starts images from
    uniform noise). ``denoise=True`` applies Tweedie's step to the last chain.

    The return value holds x exactly where mask = 1: the algorithm would leave y there, x plus
    σ_L noise, an artefact of conditioning on a noisy copy, not an inference about x.
    """
    check_batch(x, "x")
    schedule = _annealing_schedule(sigmas, eps, n_steps_each)
    if renoise not in ("level", "step"):
        raise ValueError(f"renoise: 'level' (004 §5.2) or 'step' (NCSNv2's code), got {renoise!r}")
    mask = backend.asarray(mask, dtype=x.dtype)
    if not _broadcasts_to(mask.shape, x.shape):
        raise ValueError(f"mask: shape {mask.shape} does not broadcast to x's {x.shape}")
    if x0 is None:
        x0 = rng.uniform(float(x.min()), float(x.max()), x.shape, dtype=x.dtype)
    check_batch(x0, "x0")
    if x0.shape != x.shape:
        raise ValueError(f"x0: shape {x0.shape} differs from x's {x.shape}")
    chain, keep = x0, 1 - mask
    with _bar(len(schedule) * n_steps_each, progress, "inpainting") as bar:
        for sigma, alpha in schedule:
            sigma_vec = _sigma_vector(sigma, x)
            for t in range(n_steps_each):
                if t == 0 or renoise == "step":
                    y_observed = (x + sigma * rng.normal(x.shape, dtype=x.dtype)) * mask
                chain = langevin_step(score(chain, sigma_vec), chain, alpha, rng) * keep + y_observed
                bar.update()
    if denoise:
        chain = _tweedie(score, chain, schedule[-1][0])
    return chain * keep + x * mask
