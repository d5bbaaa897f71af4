"""Score-matching objectives: scalar losses of a score s(x) that are minimised by s = ∇log p.

For data x ~ p in any batch-first shape (sums run over every non-batch axis, means over the batch):

    explicit SM     J_E = ½ E ||s(x) - ∇log p(x)||²                       Hyvärinen 2005 eq. 2
    implicit SM     J_I = E [½ ||s(x)||² + tr ∇s(x)] = J_E - ½ E ||∇log p||²   Hyvärinen 2005 Thm 1
    sliced SM       J_S = E_x E_v [vᵀ ∇s(x) v + ½ (vᵀ s(x))²],  E[v vᵀ] = I      Song et al. 2019 eq. 7
    DSM at σ        J_σ = ½ E ||s(x̃) + (x̃ - x)/σ²||²,  x̃ = x + σ z, z ~ N(0, I)   Vincent 2011 eq. 8
    multi-scale     L = mean_i σ_i² J_σi,  s = s(x̃, σ_i)                          Song & Ermon 2019 eq. 6
    over an SDE     L = E_t λ(t) ½ E ||s(x_t, t) + z/σ_t||²,  x_t = α_t x + σ_t z   Song et al. 2021 eq. 7

J_S has J_I as its expectation over v (Hutchinson's trace estimator); J_σ equals explicit SM
against the perturbed density p_σ = p * N(0, σ² I) up to a constant, so its minimiser is ∇log p_σ
(docs/theory.md, on Vincent's DSM). ``score`` is any callable x -> array shaped like x (``(x, sigma) -> ...``
with sigma of shape (N,) for multi-scale DSM), usually ``lambda x: models.mlp(params, x)``;
``autograd.grad`` of a loss with respect to ``params`` trains the model. Each callable is
checked at its first call: it must return a finite array of the documented shape.
"""
import math

import autograd.numpy as anp
from autograd import make_vjp

from . import backend, checks, ops
from .fused import half_mean_squared_norm


def explicit_sm(score, x, target_score):
    """J_E = ½ E ||s(x) - ∇log p(x)||² (Hyvärinen 2005 eq. 2). ``target_score`` is the true score
    at x: an array shaped like x, or a callable x -> such an array."""
    checks.batch("x", x)
    if callable(target_score):
        target = checks.like_x("target_score", target_score)(x)
    else:
        target = checks.batch("target_score", target_score)
        if target.shape != x.shape:
            raise ValueError(f"target_score: expected an array shaped like x {tuple(x.shape)}, "
                             f"got shape {tuple(target.shape)}")
    return half_mean_squared_norm(checks.like_x("score", score)(x) - target)


def divergence(f, x):
    """tr ∇f(x) per example, shape (N,), exactly: one forward pass, then one backward pass per
    input dimension i with the basis cotangent e_i, reading off (e_iᵀ J)_i.

    Differentiable again (the parameter gradient of a trace is what implicit SM trains on).
    Its cost grows with D = prod(x.shape[1:]); ``models.mlp_score_and_divergence`` gives an
    MLP's trace in closed form.
    """
    checks.batch("x", x)
    return _jacobian_trace(checks.like_x("f", f), x)


def _jacobian_trace(f, x):
    """:func:`divergence` without its argument checks, for callers that checked f and x already
    (implicit SM, the probability flow's likelihood): no host read per call."""
    vjp, fx = make_vjp(f)(x)
    n, dim = x.shape[0], fx.size // x.shape[0]
    basis = backend.xp.eye(dim, dtype=x.dtype)
    trace = 0.0
    for i in range(dim):
        e_i = backend.xp.broadcast_to(basis[i], (n, dim)).reshape(x.shape)
        trace = trace + anp.reshape(vjp(e_i), (n, dim))[:, i]
    return trace


def implicit_sm(score, x, score_and_divergence=None):
    """J_I = E [½ ||s(x)||² + tr ∇s(x)] (Hyvärinen 2005 Thm 1): explicit SM up to a constant
    independent of s, with no ∇log p needed.

    The trace is exact: ``score_and_divergence(x) -> (s, tr)`` when given (the closed form of
    ``models.mlp_score_and_divergence``), else ``divergence`` by autograd.
    """
    checks.batch("x", x)
    if score_and_divergence is None:
        score = checks.like_x("score", score)
        s, trace = score(x), _jacobian_trace(score, x)
    else:
        s, trace = _score_and_trace(score_and_divergence, x)
    return half_mean_squared_norm(s) + ops.mean(trace, axis=0, keepdims=False)


def _score_and_trace(score_and_divergence, x):
    """(s, tr) = score_and_divergence(x), checked: a pair, s shaped like x, tr of shape (N,)."""
    if not callable(score_and_divergence):
        raise TypeError(f"score_and_divergence: expected a callable, got "
                        f"{checks.show(score_and_divergence)}")
    pair = score_and_divergence(x)
    if not (isinstance(pair, tuple) and len(pair) == 2):
        raise TypeError("score_and_divergence: expected a pair (score, trace), got "
                        f"{checks.show(pair)}")
    s = checks.like_x("score_and_divergence's score", lambda _: pair[0])(x)
    trace = checks.per_example("score_and_divergence's trace", lambda _: pair[1])(x)
    return s, trace


def projections(x, rng, n_projections=1, kind="gaussian"):
    """Random directions v with E[v vᵀ] = I, shape (n_projections N, ...): Gaussian or
    Rademacher (both make sliced SM an unbiased estimate of implicit SM)."""
    checks.batch("x", x)
    checks.rng("rng", rng)
    n_projections = checks.count("n_projections", n_projections)
    checks.option("kind", kind, ("gaussian", "rademacher"))
    shape = (n_projections * x.shape[0],) + x.shape[1:]
    if kind == "gaussian":
        return rng.normal(shape, dtype=x.dtype)
    return rng.rademacher(shape, dtype=x.dtype)


def sliced_sm(score, x, rng, n_projections=1, variance_reduction=False, kind="gaussian"):
    """J_S = E_v E_x [vᵀ ∇s(x) v + ½ (vᵀ s(x))²] (Song et al. 2019 eq. 7), Hutchinson's estimate
    of implicit SM.

    vᵀ J v comes from one backward pass: the VJP of s with cotangent v, dotted with v; all
    projections go through one forward and backward pass on the batch replicated
    ``n_projections`` times. ``variance_reduction=True`` (SSM-VR, eq. 8) replaces ½ (vᵀ s)² by
    its mean over v, ½ ||s||². The reference code normalises v to the unit sphere in its non-VR
    loss, which divides the loss by D; here E[v vᵀ] = I, so the expectation equals implicit SM.
    """
    checks.flag("variance_reduction", variance_reduction)
    v = projections(x, rng, n_projections, kind)
    xs = anp.concatenate([x] * n_projections, axis=0) if n_projections > 1 else x
    vjp, s = make_vjp(checks.like_x("score", score))(xs)
    jacobian_term = ops.sum_per_example(vjp(v) * v)
    if variance_reduction:
        norm_term = ops.sum_per_example(s ** 2)
    else:
        norm_term = ops.sum_per_example(s * v) ** 2
    return ops.mean(jacobian_term + 0.5 * norm_term, axis=0, keepdims=False)


def dsm(score, x, sigma, rng):
    """J_σ = ½ E ||s(x̃) + (x̃ - x)/σ²||² with x̃ = x + σ z (Vincent 2011 eq. 8), so that
    (x̃ - x)/σ² = z/σ.

    σ must leave the loss's scale, D/σ² per example summed over the batch, inside x's float
    range (σ > ~1e-17 in float32, ~1e-152 in float64): a smaller σ is refused, not turned into inf.
    """
    checks.batch("x", x)
    sigma = _dsm_sigma(sigma, x)
    checks.rng("rng", rng)
    z = rng.normal(x.shape, dtype=x.dtype)
    residual = checks.like_x("score", score)(x + sigma * z) + z / sigma
    return half_mean_squared_norm(residual)


def _dsm_sigma(sigma, x):
    """A positive σ for which the sum of ||z/σ||² over the batch (about x.size/σ², with room for
    the tail of z², here 100 per entry) stays finite in x's dtype."""
    sigma = checks.positive("sigma", sigma)
    largest = float(backend.xp.finfo(x.dtype).max)
    smallest = math.sqrt(100 * x.size / largest)
    if sigma < smallest:
        raise ValueError(f"sigma: {sigma:g} is too small for {x.dtype} data of shape "
                         f"{tuple(x.shape)}: 1/sigma² overflows the loss (largest {x.dtype} is "
                         f"{largest:.3g}); expected sigma >= {smallest:.3g}")
    return sigma


def multiscale_dsm(score, x, sigmas, rng):
    """NCSN's loss L = mean_i λ(σ_i) J_σi with λ(σ) = σ² (Song & Ermon 2019 eq. 6), the level
    index i drawn uniformly from {1, ..., L} once per example.

    score(x̃, sigma) takes the per-example σ of shape (N,). With λ = σ²,
    σ² ||s + z/σ||² = ||σ s + z||²: the per-level loss stays O(1) when s ~ 1/σ, NCSN's reason for
    the weight (docs/theory.md, on NCSN).
    """
    checks.batch("x", x)
    if backend.is_array(sigmas):
        sigmas = sigmas.astype(x.dtype)  # checked after the cast: rounding can merge two levels
    checks.sigmas("sigmas", sigmas)
    checks.rng("rng", rng)
    sigma = sigmas[rng.integers(0, sigmas.shape[0], (x.shape[0],))]
    sigma_b = ops.per_example(sigma, x.ndim)
    z = rng.normal(x.shape, dtype=x.dtype)
    residual = sigma_b * checks.like_x("score", score)(x + sigma_b * z, sigma) + z
    return half_mean_squared_norm(residual)


# ------------------------------------------------------------ continuous-time DSM over an SDE
def _diffuse(sde, x, rng):
    """t ~ U[t_min, 1] per example, z ~ N(0, I) and x_t = alpha_t x + sigma_t z: one draw of the
    forward SDE's perturbation kernel. Returns t (N,), x_t, z and sigma_t broadcast against x."""
    checks.batch("x", x)
    checks.sde("sde", sde)
    checks.rng("rng", rng)
    t = rng.uniform(sde.t_min, 1.0, (x.shape[0],), dtype=x.dtype)
    alpha, sigma = sde._marginal(t)  # t drawn in [t_min, 1] here: the unchecked coefficients
    z = rng.normal(x.shape, dtype=x.dtype)
    alpha, sigma = ops.per_example(alpha, x.ndim), ops.per_example(sigma, x.ndim)
    return t, alpha * x + sigma * z, z, sigma


def dsm_sde(score, sde, x, rng, weighting="sigma2"):
    """Continuous-time denoising score matching (Song et al. 2021 eq. 7):

        E_t λ(t) ½ E ||s(x_t, t) - ∇log p_t(x_t | x)||²,   ∇log p_t(x_t | x) = -z / sigma_t,

    t ~ U[t_min, 1], with λ(t) = sigma_t² (``"sigma2"``, NCSN's λ(σ) = σ² made continuous) or
    λ(t) = g(t)² (``"likelihood"``: then the loss bounds the negative log-likelihood, Song,
    Durkan, Murray & Ermon 2021 Thm 1). ``score`` is called as score(x_t, t), t of shape (N,)."""
    checks.option("weighting", weighting, ("sigma2", "likelihood"))
    score = checks.like_x("score", score)
    t, x_t, z, sigma = _diffuse(sde, x, rng)
    if weighting == "sigma2":
        return half_mean_squared_norm(sigma * score(x_t, t) + z)
    g2 = sde._diffusion(t) ** 2
    return 0.5 * ops.mean(g2 * ops.sum_per_example((score(x_t, t) + z / sigma) ** 2), axis=0, keepdims=False)


def ddpm_simple(eps_model, sde, x, rng):
    """Ho et al. 2020's simple loss E ||ε - ε̂(x_t, t)||² (eq. 14) in continuous time, t ~ U[t_min, 1].
    With s = -ε̂/sigma_t it is twice ``dsm_sde(..., weighting="sigma2")`` for the same draws:
    sigma_t s + z = z - ε̂, and DSM carries the factor ½."""
    eps_model = checks.like_x("eps_model", eps_model)
    t, x_t, z, _ = _diffuse(sde, x, rng)
    return 2 * half_mean_squared_norm(z - eps_model(x_t, t))
