"""Samplers that draw from p given its score s = ∇log p (or an unnormalised log p):

    ULA                x' = x + (ε/2) s(x) + √ε z,  z ~ N(0, I)                 Roberts & Tweedie 1996
    MALA               ULA's x' accepted with probability min(1, p(x') q(x | x') / (p(x) q(x' | x)))
    HMC                L leapfrog steps on H(x, r) = -log p(x) + |r|²/2, accepted w.p. min(1, e^-ΔH)
                                                                                 Neal 2011 §5.3
    annealed Langevin  T ULA steps with s(x, σ_i) and α_i = ε σ_i²/σ_L², for σ_1 > ... > σ_L
                                                                                 Song & Ermon 2019 Alg. 1
    inpainting         the same, the observed part re-noised to y = x + σ_i ξ   Song & Ermon 2019 Alg. 2
    guided score       s(x, σ) + w ∇_x log p_σ(y | x), the score of p_σ(x | y) at w = 1
                                                                                 Song et al. 2021 §5, App. I

Every sampler takes ``rng`` (``backend.default_rng``), works on any batch-first shape, keeps x's
float dtype and shows a progress bar with ``progress=True``. Annealed samplers call
score(x, sigma) with a per-example sigma of shape (N,). Step sizes are Python floats computed up
front; a chain is checked for NaN or inf once per level (annealed samplers) or every
``CHECK_EVERY`` steps and at the end (ULA, MALA, HMC), so a step too large for the score stops
with a :class:`checks.NonFiniteError` instead of returning NaN, without a host read every step.
The VE-SDE samplers live in ``sde.py``.
"""
import math

import autograd.numpy as anp
from autograd import make_vjp
from tqdm.auto import tqdm

from . import backend, checks, ops

CHECK_EVERY = 100  # steps between two finiteness checks of a ULA, MALA or HMC chain


def langevin_step(score_x, x, step, rng):
    """One ULA step x + (ε/2) s(x) + √ε z, z ~ N(0, I), given s(x); ``step`` ε a Python float."""
    return x + (step / 2) * score_x + math.sqrt(step) * rng.normal(x.shape, dtype=x.dtype)


def langevin(score, x0, step, n_steps, rng, progress=False):
    """The unadjusted Langevin algorithm (ULA; Roberts & Tweedie 1996): n_steps of
    x <- x + (ε/2) s(x) + √ε z.

    Its stationary law approaches p as ε -> 0; at fixed ε it is biased (for N(0, 1) the
    stationary variance is 1/(1 - ε/4), docs/theory.md §8). NCSN's released code writes
    x + a s + √(2a) z, which is this rule with ε = 2a.
    """
    x, step, n_steps, rng = _chain_args(x0, step, n_steps, rng)
    score = checks.like_x("score", score)
    for t in tqdm(range(n_steps), desc="Langevin", disable=not progress, leave=False):
        x = langevin_step(score(x), x, step, rng)
        _check_every(x, t, n_steps, f"of ULA at step size {step:g}")
    return x


# ---------------------------------------------------------------- Metropolis-adjusted chains
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
    """(x, log p(x), ∇log p(x)): what MALA and HMC carry from one transition to the next."""
    return (x,) + tuple(log_prob_and_grad(x))


def mala_step(state, log_prob_and_grad, step, rng):
    """One MALA transition (Roberts & Tweedie 1996) from ``state`` = (x, log p(x), ∇log p(x)):
    the ULA proposal x' = x + (ε/2)∇log p(x) + √ε z, accepted per chain with probability
    min(1, p(x') q(x | x') / (p(x) q(x' | x))), q(b | a) = N(b; a + (ε/2)∇log p(a), ε I).
    Returns (the next state, the (N,) accepted flags): one log p and gradient per transition."""
    x, lp, g = state
    proposal = langevin_step(g, x, step, rng)
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
    x, step, n_steps, rng = _chain_args(x0, step, n_steps, rng)
    both = log_prob_and_grad(log_prob)
    state, n_accepted = chain_state(both, x), 0
    for t in tqdm(range(n_steps), desc="MALA", disable=not progress, leave=False):
        state, accepted = mala_step(state, both, step, rng)
        n_accepted = n_accepted + accepted.sum()
        _check_every(state[1], t, n_steps, f"of MALA at step size {step:g}", "log_prob")
    return state[0], float(n_accepted) / (n_steps * x.shape[0])


def hmc(log_prob, x0, step, n_leapfrog, n_steps, rng, jitter=0.2, progress=False):
    """``n_steps`` HMC transitions (:func:`hmc_step`) from x0; p is the stationary law for any
    step. ``jitter=0`` gives plain HMC. Returns (x, the acceptance rate)."""
    x, step, n_steps, rng = _chain_args(x0, step, n_steps, rng)
    n_leapfrog = checks.count("n_leapfrog", n_leapfrog)
    jitter = checks.in_interval("jitter", jitter, 0, 1, closed=(True, False))
    both = log_prob_and_grad(log_prob)
    state, n_accepted = chain_state(both, x), 0
    for t in tqdm(range(n_steps), desc="HMC", disable=not progress, leave=False):
        state, accepted = hmc_step(state, both, step, n_leapfrog, rng, jitter)
        n_accepted = n_accepted + accepted.sum()
        _check_every(state[1], t, n_steps, f"of HMC at step size {step:g}", "log_prob")
    return state[0], float(n_accepted) / (n_steps * x.shape[0])


def _chain_args(x0, step, n_steps, rng):
    return (checks.batch("x0", x0), checks.positive("step", step),
            checks.count("n_steps", n_steps), checks.rng("rng", rng))


def _check_every(a, t, n_steps, sampler, what="x"):
    """After step t (0-based): every CHECK_EVERY steps and at the last, NonFiniteError unless
    ``a`` is finite, naming the steps since the previous check."""
    if (t + 1) % CHECK_EVERY == 0 or t + 1 == n_steps:
        first = t - (t % CHECK_EVERY) + 1
        checks.finite_or_raise(what, a, f"between steps {first} and {t + 1} {sampler}",
                               "the step is too large for this target: use a smaller step")


# ---------------------------------------------------------------- annealed samplers
def _annealing_schedule(sigmas, eps, n_steps_each):
    """[(σ_i, α_i)] as Python floats with α_i = ε σ_i²/σ_L² (Song & Ermon 2019 Alg. 1), which
    keeps the signal-to-noise ratio of a step the same at every level."""
    checks.sigmas("sigmas", sigmas)
    eps = checks.positive("eps", eps)
    checks.count("n_steps_each", n_steps_each)
    sigmas = [float(s) for s in backend.asnumpy(sigmas)]  # one transfer, before the loop
    return [(s, eps * s ** 2 / sigmas[-1] ** 2) for s in sigmas]


def _tweedie(score, x, sigma):
    """E[x | x̃] = x̃ + σ² ∇log p_σ(x̃) (Tweedie's formula; Efron 2011 eq. 1.4)."""
    return x + sigma ** 2 * score(x, ops.full_batch(sigma, x))


def _check_level(x, level, schedule, n_steps_each, sampler):
    sigma, alpha = schedule[level]
    checks.finite_or_raise(
        "x", x, f"in {sampler} at level {level + 1} of {len(schedule)} (σ = {sigma:g}, steps 1 to "
        f"{n_steps_each}, step size α = {alpha:g})",
        "the step is too large for this score: use a smaller eps")


def annealed_langevin(score, x0, sigmas, eps, n_steps_each, rng, denoise=False, progress=False):
    """Annealed Langevin dynamics (Song & Ermon 2019 Alg. 1): for each level σ_1 > ... > σ_L,
    T = ``n_steps_each`` ULA steps with the score s(x, σ_i) and step α_i = ε σ_i²/σ_L².
    ``denoise=True`` ends with Tweedie's step x + σ_L² s(x, σ_L) (Jolicoeur-Martineau et al.
    2021; NCSNv2's final denoising), the posterior mean E[x | x̃] at the last level.
    """
    x, score, rng = checks.batch("x0", x0), checks.like_x("score", score), checks.rng("rng", rng)
    schedule = _annealing_schedule(sigmas, eps, n_steps_each)
    with tqdm(total=len(schedule) * n_steps_each, desc="annealed Langevin", disable=not progress,
              leave=False) as bar:
        for level, (sigma, alpha) in enumerate(schedule):
            sigma_vec = ops.full_batch(sigma, x)
            for _ in range(n_steps_each):
                x = langevin_step(score(x, sigma_vec), x, alpha, rng)
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

    At each level the observed part (mask = 1) is re-noised once, y = x + σ_i ξ, and after
    every ULA step written over the chain, x̃ <- x̃ ∘ (1 - m) + y ∘ m; the unobserved part then
    samples p_σi(x̃_unobserved | x̃_observed = y). ``mask`` has x's shape or broadcasts to it.
    ``renoise="step"`` draws a new y for every step instead, as NCSNv2's released code does
    (``anneal_Langevin_dynamics_inpainting``; it writes y in before the step's score, here after
    the step, which shifts y by one step and leaves the stationary law as it is): the chain then
    sees an average over y's noise, not one draw of it (docs/theory.md §10 predicts both laws).
    The chain starts at ``x0`` (default: uniform on [min x, max x], as NCSN starts images from
    uniform noise). ``denoise=True`` applies Tweedie's step to the last chain.

    The return value holds x exactly where mask = 1: the algorithm would leave y there, x plus
    σ_L noise, an artefact of conditioning on a noisy copy, not an inference about x.
    """
    x, score, rng = checks.batch("x", x), checks.like_x("score", score), checks.rng("rng", rng)
    mask = _mask(mask, x)
    schedule = _annealing_schedule(sigmas, eps, n_steps_each)
    checks.option("renoise", renoise, ("level", "step"))
    if x0 is None:
        x0 = rng.uniform(float(x.min()), float(x.max()), x.shape, dtype=x.dtype)
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
                chain = langevin_step(score(chain, sigma_vec), chain, alpha, rng) * keep + y_observed
                bar.update()
            _check_level(chain, level, schedule, n_steps_each, "inpainting")
    if denoise:
        chain = _tweedie(score, chain, schedule[-1][0])
    return chain * keep + x * mask


def guided_score(score, classifier_log_prob, y, scale=1.0):
    """(x, σ) -> s(x, σ) + w ∇_x log p_σ(y | x): by Bayes' rule ∇log p_σ(x | y) = ∇log p_σ(x) +
    ∇log p_σ(y | x), so at w = ``scale`` = 1 this is the score of the class-conditional perturbed
    density, usable by any sampler above (Song et al. 2021 §5, App. I; w > 1 is Dhariwal &
    Nichol 2021's classifier guidance, sharper and less diverse).

    ``classifier_log_prob(x, sigma) -> (N, K)`` log-probabilities of the K classes for the
    noisy x, differentiable by autograd; ``y`` (N,) integer labels in [0, K).
    """
    score = checks.like_x("score", score)
    classifier = checks.returns("classifier_log_prob", classifier_log_prob,
                                lambda x: (x.shape[0], None), "(N, K) log-probabilities")
    if not backend.is_array(y) or y.ndim != 1 or y.shape[0] == 0 or y.dtype.kind not in "iu":
        raise TypeError(f"y: expected a non-empty 1-D {backend.name} integer array of labels, got "
                        f"{checks.show(y)}")
    scale = checks.nonnegative("scale", scale)
    checked = False

    def guided(x, sigma):
        nonlocal checked
        vjp, log_probs = make_vjp(lambda x_: classifier(x_, sigma))(x)
        if not checked:
            n_classes = log_probs.shape[1]
            if y.shape[0] != x.shape[0]:
                raise ValueError(f"y: expected one label per example, {x.shape[0]}, got {y.shape[0]}")
            if not bool(((y >= 0) & (y < n_classes)).all()):
                raise ValueError(f"y: expected labels in [0, {n_classes}) (the classifier's K)")
            checked = True
        one_hot = (backend.xp.arange(log_probs.shape[1])[None, :] == y[:, None]).astype(x.dtype)
        return score(x, sigma) + scale * vjp(one_hot)

    return guided
