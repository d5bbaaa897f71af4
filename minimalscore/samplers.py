"""Samplers that draw from p given its score s = ∇log p (or an unnormalised log p), in x's shape:

    ULA (Roberts & Tweedie 1996)    x' = x + (ε/2) s(x) + √ε z,  z ~ N(0, I)
    MALA (Roberts & Tweedie 1996)   ULA's x' accepted w.p. min(1, p(x') q(x | x') / (p(x) q(x' | x)))
    HMC (Neal 2011 §5.3)            L leapfrog steps on H = -log p(x) + |r|²/2, accepted w.p. e^-ΔH
    annealed Langevin               T ULA steps with s(x, σ_i), α_i = ε σ_i²/σ_L², σ_1 > ... > σ_L
      (Song & Ermon 2019 Alg. 1)
    inpainting (Alg. 2)             the same, the observed part re-noised to y = x + σ_i ξ
    guided score (Song et al. 2021) s(x, σ) + w ∇_x log p_σ(y | x) = ∇log p_σ(x | y) at w = 1
                                    (guidance.py: a score for any of the annealed samplers)

Randomness comes from ``rng`` (``backend.default_rng``); x keeps its float dtype; annealed samplers
call score(x, sigma) with a per-example sigma (N,). A chain is checked for NaN or inf once per
level, or every ``checks.CHECK_EVERY`` steps and at the end, so a step too large for the score
stops with :class:`checks.NonFiniteError` without a host read every step. The diffusion samplers
(VE, VP and sub-VP SDEs, DDPM, DDIM) are reached as ``minimalscore.sde``.
"""
import math

from autograd import make_vjp
from tqdm.auto import tqdm

from . import backend, checks, ops
from .guidance import guided_score  # noqa: F401 (part of this module's API)

STEP_ADVICE = "the step is too large for this target: use a smaller step"


def _langevin_step(score_x, x, step, rng):
    """One ULA step x + (ε/2) s(x) + √ε z, z ~ N(0, I), given s(x); ``step`` ε a Python float."""
    return x + (step / 2) * score_x + math.sqrt(step) * rng.normal(x.shape, dtype=x.dtype)


def langevin(score, x0, step, n_steps, rng, progress=False):
    """The unadjusted Langevin algorithm (ULA; Roberts & Tweedie 1996): n_steps of
    x <- x + (ε/2) s(x) + √ε z.

    Its stationary law approaches p as ε -> 0; at fixed ε it is biased (for N(0, 1) the
    stationary variance is 1/(1 - ε/4), docs/theory.md, ULA). NCSN's released code writes
    x + a s + √(2a) z, which is this rule with ε = 2a.
    """
    x, step, n_steps, rng = _chain_args(x0, step, n_steps, rng, progress)
    score = checks.like_x("score", score)
    for t in tqdm(range(n_steps), desc="Langevin", disable=not progress, leave=False):
        x = _langevin_step(score(x), x, step, rng)
        checks.finite_every("x", x, t, n_steps, f"of ULA at step size {step:g}", STEP_ADVICE)
    return x


# ---------------------------------------------------------------- kernels on (x, log p, ∇log p)
def log_prob_and_grad(log_prob):
    """x -> (log p(x) (N,), ∇log p(x)) in one forward and one backward pass: the chains are
    independent, so the VJP with cotangent 1 of the (N,) log-densities is each chain's gradient.
    ``log_prob`` is checked at its first call to return one finite value per example."""
    log_prob = checks.per_example("log_prob", log_prob)

    def both(x):
        vjp, lp = make_vjp(log_prob)(x)
        return lp, vjp(backend.xp.ones_like(lp))

    return both


def chain_state(log_prob_and_grad, x):
    """(x, log p(x), ∇log p(x)): what the kernels below carry from one transition to the next."""
    if not callable(log_prob_and_grad):
        raise TypeError(f"log_prob_and_grad: expected a callable, got {checks.show(log_prob_and_grad)}")
    return (checks.batch("x", x),) + tuple(log_prob_and_grad(x))


def ula_step(state, log_prob_and_grad, step, rng):
    """One ULA transition x' = x + (ε/2)∇log p(x) + √ε z on ``state`` = (x, log p, ∇log p).
    Returns (the next state, (N,) flags, all True): one log p and gradient per transition."""
    x, _, g = _kernel_args(state, log_prob_and_grad, step, rng)
    x = _langevin_step(g, x, step, rng)
    return (x,) + tuple(log_prob_and_grad(x)), backend.xp.ones(x.shape[0], dtype=bool)


def mala_step(state, log_prob_and_grad, step, rng):
    """One MALA transition (Roberts & Tweedie 1996) from ``state`` = (x, log p(x), ∇log p(x)):
    the ULA proposal x' = x + (ε/2)∇log p(x) + √ε z, accepted per chain with probability
    min(1, p(x') q(x | x') / (p(x) q(x' | x))), q(b | a) = N(b; a + (ε/2)∇log p(a), ε I).
    Returns (the next state, the (N,) accepted flags): one log p and gradient per transition."""
    return _mala(_kernel_args(state, log_prob_and_grad, step, rng), log_prob_and_grad, step, rng)


def _mala(state, log_prob_and_grad, step, rng):
    x, lp, g = state
    proposal = _langevin_step(g, x, step, rng)
    lp_new, g_new = log_prob_and_grad(proposal)

    def log_q(to, frm, g_frm):  # log N(to; frm + (ε/2) g(frm), ε I) up to a constant
        return -ops.sum_per_example((to - frm - (step / 2) * g_frm) ** 2) / (2 * step)

    log_ratio = lp_new - lp + log_q(x, proposal, g_new) - log_q(proposal, x, g)
    accept = _metropolis(log_ratio, rng, x.dtype)
    return _keep(accept, (proposal, lp_new, g_new), state), accept


def hmc_step(state, log_prob_and_grad, step, n_leapfrog, rng, jitter=0.2):
    """One HMC transition (Duane et al. 1987; Neal 2011 §5.3) from ``state`` = (x, log p(x),
    ∇log p(x)): momentum r ~ N(0, I), ``n_leapfrog`` leapfrog steps on H(x, r) = -log p(x) + |r|²/2,
    then a Metropolis test on exp(-ΔH). Each chain's step is drawn uniform on step·(1 ± jitter)
    (Neal 2011 §5.4.2.2): a fixed trajectory length can resonate with the target and stop mixing.
    Returns (the next state, the (N,) accepted flags): n_leapfrog log p and gradients."""
    state = _kernel_args(state, log_prob_and_grad, step, rng)
    n_leapfrog = checks.count("n_leapfrog", n_leapfrog)
    jitter = checks.in_interval("jitter", jitter, 0, 1, closed=(True, False))
    return _hmc(state, log_prob_and_grad, step, n_leapfrog, rng, jitter)


def _hmc(state, log_prob_and_grad, step, n_leapfrog, rng, jitter):
    x, lp, g = state
    r = rng.normal(x.shape, dtype=x.dtype)
    h = ops.per_example(rng.uniform(step * (1 - jitter), step * (1 + jitter), (x.shape[0],),
                                    dtype=x.dtype), x.ndim)
    y, r_y = x, r + (h / 2) * g  # a half step in momentum, then whole steps
    for i in range(n_leapfrog):
        y = y + h * r_y
        lp_y, g_y = log_prob_and_grad(y)
        r_y = r_y + (h if i < n_leapfrog - 1 else h / 2) * g_y  # the last one a half step
    kinetic = lambda p: 0.5 * ops.sum_per_example(p ** 2)
    log_ratio = lp_y - lp - kinetic(r_y) + kinetic(r)
    accept = _metropolis(log_ratio, rng, x.dtype)
    return _keep(accept, (y, lp_y, g_y), state), accept


def _kernel_args(state, log_prob_and_grad, step, rng):
    """A public kernel's arguments, the state's x checked finite (one host read); the chains
    below run the kernels unchecked and check every ``checks.CHECK_EVERY`` steps instead."""
    checks.positive("step", step)
    checks.rng("rng", rng)
    if not callable(log_prob_and_grad):
        raise TypeError(f"log_prob_and_grad: expected a callable, got {checks.show(log_prob_and_grad)}")
    if not (isinstance(state, tuple) and len(state) == 3 and all(map(backend.is_array, state))):
        raise TypeError(f"state: expected (x, log p(x), ∇log p(x)) from chain_state, got "
                        f"{checks.show(state)}")
    x, lp, g = state
    if x.ndim < 2 or lp.shape != x.shape[:1] or g.shape != x.shape:
        raise ValueError(f"state: expected x (N, ...), log p (N,) and ∇log p shaped like x, got "
                         f"shapes {x.shape}, {lp.shape}, {g.shape}")
    if not checks.is_finite(x):
        raise ValueError("state: x holds NaN or inf; start chains with chain_state(log_prob_and_grad, x)")
    return state


def _metropolis(log_ratio, rng, dtype):
    """Accept with probability min(1, exp(log_ratio)), per chain; NaN is rejected."""
    return backend.xp.log(rng.uniform(0.0, 1.0, log_ratio.shape, dtype=dtype)) < log_ratio


def _keep(accept, new, old):
    """Per chain, the new state where accepted, else the old one."""
    return tuple(backend.xp.where(ops.per_example(accept, a.ndim), a, b) for a, b in zip(new, old))


def mala(log_prob, x0, step, n_steps, rng, progress=False):
    """``n_steps`` MALA transitions (:func:`mala_step`) from x0. p is the stationary law for any
    ε; ``log_prob`` x -> (N,) may be unnormalised and is differentiated by autograd.
    Returns (x, the acceptance rate over all chains and steps)."""
    return _run(_mala, log_prob, x0, step, n_steps, rng, progress, "MALA")


def hmc(log_prob, x0, step, n_leapfrog, n_steps, rng, jitter=0.2, progress=False):
    """``n_steps`` HMC transitions (:func:`hmc_step`) from x0; p is the stationary law for any
    step. ``jitter=0`` gives plain HMC. Returns (x, the acceptance rate)."""
    n_leapfrog = checks.count("n_leapfrog", n_leapfrog)
    jitter = checks.in_interval("jitter", jitter, 0, 1, closed=(True, False))
    kernel = lambda state, both, h, r: _hmc(state, both, h, n_leapfrog, r, jitter)
    return _run(kernel, log_prob, x0, step, n_steps, rng, progress, "HMC")


def _run(kernel, log_prob, x0, step, n_steps, rng, progress, name):
    """``n_steps`` transitions of ``kernel``; returns (x, the acceptance rate)."""
    x, step, n_steps, rng = _chain_args(x0, step, n_steps, rng, progress)
    both = log_prob_and_grad(log_prob)
    state, n_accepted = chain_state(both, x), 0
    for t in tqdm(range(n_steps), desc=name, disable=not progress, leave=False):
        state, accepted = kernel(state, both, step, rng)
        n_accepted = n_accepted + accepted.sum()
        checks.finite_every("log_prob", state[1], t, n_steps, f"of {name} at step size {step:g}",
                            STEP_ADVICE)
    return state[0], float(n_accepted) / (n_steps * x.shape[0])


def _chain_args(x0, step, n_steps, rng, progress):
    checks.flag("progress", progress)
    return (checks.batch("x0", x0), checks.positive("step", step),
            checks.count("n_steps", n_steps), checks.rng("rng", rng))


# ---------------------------------------------------------------- annealed samplers
def _annealing_schedule(sigmas, eps, n_steps_each, denoise, progress):
    """[(σ_i, α_i)] as Python floats with α_i = ε σ_i²/σ_L² (Song & Ermon 2019 Alg. 1), which
    keeps the signal-to-noise ratio of a step the same at every level; the other settings checked."""
    checks.flag("denoise", denoise)
    checks.flag("progress", progress)
    checks.sigmas("sigmas", sigmas)
    eps = checks.positive("eps", eps)
    checks.count("n_steps_each", n_steps_each)
    sigmas = [float(s) for s in backend.asnumpy(sigmas)]  # one transfer, before the loop
    return [(s, eps * s ** 2 / sigmas[-1] ** 2) for s in sigmas]


def _tweedie(score, x, sigma):
    """E[x | x̃] = x̃ + σ² ∇log p_σ(x̃) (Tweedie's formula; Efron 2011)."""
    return x + sigma ** 2 * score(x, ops.full_batch(sigma, x))


def _check_level(x, level, schedule, n_steps_each, sampler):
    where = (f"in {sampler} at level {level + 1} of {len(schedule)} (σ = {schedule[level][0]:g}, "
             f"steps 1 to {n_steps_each}, step size α = {schedule[level][1]:g})")
    checks.finite_or_raise("x", x, where, "the step is too large for this score: use a smaller eps")


def annealed_langevin(score, x0, sigmas, eps, n_steps_each, rng, denoise=False, progress=False):
    """Annealed Langevin dynamics (Song & Ermon 2019 Alg. 1): for each level σ_1 > ... > σ_L,
    T = ``n_steps_each`` ULA steps with the score s(x, σ_i) and step α_i = ε σ_i²/σ_L².
    ``denoise=True`` ends with Tweedie's step x + σ_L² s(x, σ_L) (Jolicoeur-Martineau et al.
    2021; NCSNv2's final denoising), the posterior mean E[x | x̃] at the last level.
    """
    x, score, rng = checks.batch("x0", x0), checks.like_x("score", score), checks.rng("rng", rng)
    schedule = _annealing_schedule(sigmas, eps, n_steps_each, denoise, progress)
    with tqdm(total=len(schedule) * n_steps_each, desc="annealed Langevin", disable=not progress,
              leave=False) as bar:
        for level, (sigma, alpha) in enumerate(schedule):
            sigma_vec = ops.full_batch(sigma, x)
            for _ in range(n_steps_each):
                x = _langevin_step(score(x, sigma_vec), x, alpha, rng)
                bar.update()
            _check_level(x, level, schedule, n_steps_each, "annealed Langevin")
    return _tweedie(score, x, schedule[-1][0]) if denoise else x


def _mask(mask, x):
    """The mask as x's dtype, checked: an array that broadcasts to x, with entries 0 or 1."""
    if not backend.is_array(mask):
        raise TypeError(f"mask: expected a {backend.name} array of 0s and 1s broadcastable to x's "
                        f"shape {tuple(x.shape)}, got {checks.show(mask)}")
    shape, target = tuple(mask.shape), tuple(x.shape)
    if len(shape) > len(target) or any(a not in (1, b) for a, b in zip(shape[::-1], target[::-1])):
        raise ValueError(f"mask: shape {shape} does not broadcast to x's {target}")
    if mask.dtype.kind not in "biuf":
        raise TypeError(f"mask: expected a numeric or boolean array, got dtype {mask.dtype}")
    mask = mask.astype(x.dtype)
    if not bool(((mask == 0) | (mask == 1)).all()):  # NaN and inf fail this too
        raise ValueError("mask: expected entries 0 (to fill) or 1 (to keep)")
    return mask


def inpaint(score, x, mask, sigmas, eps, n_steps_each, rng, x0=None, denoise=False, renoise="level",
            progress=False):
    """Inpainting by annealed Langevin (Song & Ermon 2019 Alg. 2).

    At each level the observed part (mask = 1, x's shape or broadcast to it) is re-noised once,
    y = x + σ_i ξ, and written over the chain after every ULA step, x̃ <- x̃ ∘ (1 - m) + y ∘ m; the
    unobserved part then samples p_σi(x̃_unobserved | x̃_observed = y). ``renoise="step"`` draws a
    new y every step, as NCSNv2's released code does (it writes y in before the step's score, here
    after it: the same stationary law); the chain then sees an average over y's noise, not one
    draw of it. The chain starts at ``x0`` (default: uniform on [min x, max x], as NCSN starts
    images from uniform noise). ``denoise=True`` applies Tweedie's step to the last chain.

    The return value holds x exactly where mask = 1: the algorithm would leave y there, x plus
    σ_L noise, an artefact of conditioning on a noisy copy, not an inference about x.
    """
    x, score, rng = checks.batch("x", x), checks.like_x("score", score), checks.rng("rng", rng)
    mask = _mask(mask, x)
    schedule = _annealing_schedule(sigmas, eps, n_steps_each, denoise, progress)
    checks.option("renoise", renoise, ("level", "step"))
    x0 = rng.uniform(float(x.min()), float(x.max()), x.shape, dtype=x.dtype) if x0 is None else x0
    checks.batch("x0", x0)
    if x0.shape != x.shape or x0.dtype != x.dtype:
        raise ValueError(f"x0: expected x's shape {tuple(x.shape)} and dtype {x.dtype}, got "
                         f"{checks.show(x0)}")
    chain, keep = x0, 1 - mask
    with tqdm(total=len(schedule) * n_steps_each, desc="inpainting", disable=not progress,
              leave=False) as bar:
        for level, (sigma, alpha) in enumerate(schedule):
            sigma_vec = ops.full_batch(sigma, x)
            for t in range(n_steps_each):
                if t == 0 or renoise == "step":
                    y_observed = (x + sigma * rng.normal(x.shape, dtype=x.dtype)) * mask
                chain = _langevin_step(score(chain, sigma_vec), chain, alpha, rng) * keep + y_observed
                bar.update()
            _check_level(chain, level, schedule, n_steps_each, "inpainting")
    if denoise:
        chain = _tweedie(score, chain, schedule[-1][0])
    return chain * keep + x * mask
