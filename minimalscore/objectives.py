"""Score-matching objectives (DESIGN.md §3): each a scalar loss of a score callable.

``score`` is any callable x -> array shaped like x (``(x, sigma) -> ...`` for multi-scale DSM);
usually ``lambda x: models.mlp(params, x)``, so ``autograd.grad`` of a loss with respect to
``params`` trains the model. Every objective is shape-agnostic: x is (N, ...) and sums run over
all non-batch axes, so vectors and images go through the same code.
"""
import autograd.numpy as anp
from autograd import make_vjp
from autograd.extend import defvjp, primitive

from . import backend, nn


def _sum_per_example(a):
    """Sum over every axis but the batch axis: (N, ...) -> (N,)."""
    return anp.sum(anp.reshape(a, (a.shape[0], -1)), axis=1)


def _batch_mean(a):
    """Mean of (N,) per-example terms; ``nn.mean`` says why not ``anp.mean`` (float32 stays
    float32 through the backward pass)."""
    return nn.mean(a, axis=0, keepdims=False)


def half_mean_squared_norm_reference(r):
    """0.5 E_n ||r_n||^2 for a batch r (N, ...), written as the definition reads."""
    return 0.5 * _batch_mean(_sum_per_example(r ** 2))


@primitive
def half_mean_squared_norm(r):
    """0.5 E_n ||r_n||^2 = <r, r> / 2N (the mean of per-example sums is the total sum over N):
    one dot product and one traced node where the definition takes six (issue 7). Its VJP,
    g r / N, is differentiable again."""
    return backend.xp.vdot(r, r) / (2 * r.shape[0])


defvjp(half_mean_squared_norm, lambda ans, r: lambda g: g * r / r.shape[0])


def check_batch(x, name="x"):
    """ValueError unless x is a non-empty, finite, batch-first array of the active backend."""
    if not backend.is_array(x) or x.ndim < 2:
        raise ValueError(f"{name}: expected a batch-first array of shape (N, ...) with ndim >= 2 "
                         f"on the {backend.name} backend, got {type(x).__name__} "
                         f"{getattr(x, 'shape', '')}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: empty batch (N = 0)")
    if not bool(backend.xp.isfinite(x).all()):
        raise ValueError(f"{name}: contains NaN or inf")


def check_sigmas(sigmas, name="sigmas"):
    """ValueError unless ``sigmas`` is 1-D, positive and strictly decreasing (largest first)."""
    xp = backend.xp
    if sigmas.ndim != 1 or sigmas.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D array, got shape {sigmas.shape}")
    if not bool((sigmas > 0).all()) or not bool(xp.isfinite(sigmas).all()):
        raise ValueError(f"{name}: every noise level must be positive and finite")
    if not bool((sigmas[1:] < sigmas[:-1]).all()):
        raise ValueError(f"{name}: noise levels must be strictly decreasing (largest first, "
                         "DESIGN.md §3)")


def _check_sigma(sigma):
    if not (sigma > 0 and sigma < float("inf")):
        raise ValueError(f"sigma: must be a positive finite number, got {sigma}")


def divergence(f, x):
    """Exact tr(df/dx) per example, shape (N,): one forward pass, then one backward pass per
    input dimension with the basis cotangent e_i, reading off (e_i^T J)_i.

    Differentiable again (the parameter gradient of a trace is what exact SM trains on).
    Cost grows with D = prod(x.shape[1:]); for MLPs ``models.mlp_score_and_divergence`` gives
    the same trace in closed form. The alternative, one backward pass over the batch replicated
    D times (``bench/variants.py``), does the same flops in fewer, larger operations; measured
    on the benchmark's exact-SM steps (issue 7) it was no faster (within 10% either way for
    D = 2..128) and it needs D times the memory, so this loop is the generic path.
    """
    vjp, fx = make_vjp(f)(x)
    if fx.shape != x.shape:
        raise ValueError(f"f: divergence needs f(x) shaped like x {x.shape}, got {fx.shape}")
    n, dim = x.shape[0], fx.size // x.shape[0]
    basis = backend.xp.eye(dim, dtype=x.dtype)
    trace = 0.0
    for i in range(dim):
        e_i = backend.xp.broadcast_to(basis[i], (n, dim)).reshape(x.shape)
        trace = trace + anp.reshape(vjp(e_i), (n, dim))[:, i]
    return trace


def explicit_sm(score, x, target_score):
    """Explicit score matching (Hyvarinen 2005 eq. 2; 004 §2): 0.5 E ||s(x) - grad log p(x)||^2.

    ``target_score`` is the true score at x, an array like x (or a callable x -> array).
    """
    check_batch(x)
    target = target_score(x) if callable(target_score) else target_score
    return half_mean_squared_norm(score(x) - target)


def implicit_sm(score, x, score_and_divergence=None):
    """Implicit score matching (Hyvarinen 2005 Theorem 1; 004 Theorem 1; 001):
    E[0.5 ||s(x)||^2 + tr(ds/dx)], equal to explicit SM up to a constant independent of θ.

    The trace is exact: ``score_and_divergence(x) -> (s, tr)`` when given (the closed form of
    ``models.mlp_score_and_divergence``), else ``divergence`` by autograd.
    """
    check_batch(x)
    if score_and_divergence is not None:
        s, trace = score_and_divergence(x)
    else:
        s, trace = score(x), divergence(score, x)
    return half_mean_squared_norm(s) + _batch_mean(trace)


def projections(x, rng, n_projections=1, kind="gaussian"):
    """Random directions v with E[v v^T] = I, shape (n_projections * N, ...): Gaussian or
    Rademacher (both make sliced SM an unbiased estimate of implicit SM)."""
    shape = (n_projections * x.shape[0],) + x.shape[1:]
    if kind == "gaussian":
        return rng.normal(shape, dtype=x.dtype)
    if kind == "rademacher":
        return rng.rademacher(shape, dtype=x.dtype)
    raise ValueError(f"kind: unknown projection distribution {kind!r}; 'gaussian' or 'rademacher'")


def sliced_sm(score, x, rng, n_projections=1, variance_reduction=False, kind="gaussian"):
    """Sliced score matching (Song et al. 2019, eq. 7; seed 003):
    E_v E_x [v^T (ds/dx) v + 0.5 (v^T s)^2], Hutchinson's estimate of implicit SM.

    v^T J v comes from one backward pass: the VJP of s with cotangent v, dotted with v; all
    projections go through one forward/backward on the batch replicated ``n_projections``
    times. ``variance_reduction=True`` (SSM-VR, eq. 8) replaces 0.5 (v^T s)^2 by its mean over
    v, 0.5 ||s||^2. The reference code normalises v to the unit sphere in its non-VR loss,
    which divides the loss by D; here E[v v^T] = I, so the expectation equals implicit SM.
    """
    check_batch(x)
    if n_projections < 1:
        raise ValueError(f"n_projections: must be >= 1, got {n_projections}")
    v = projections(x, rng, n_projections, kind)
    xs = anp.concatenate([x] * n_projections, axis=0) if n_projections > 1 else x
    vjp, s = make_vjp(score)(xs)
    jacobian_term = _sum_per_example(vjp(v) * v)
    norm_term = _sum_per_example(s ** 2) if variance_reduction else _sum_per_example(s * v) ** 2
    return _batch_mean(jacobian_term + 0.5 * norm_term)


def dsm(score, x, sigma, rng):
    """Denoising score matching at one noise level (Vincent 2011 eq. 8; 004 §3; DESIGN.md §3):
    0.5 E ||s(x~) + (x~ - x) / sigma^2||^2 with x~ = x + sigma z, i.e. (x~ - x)/sigma^2 = z/sigma.
    """
    check_batch(x)
    _check_sigma(sigma)
    z = rng.normal(x.shape, dtype=x.dtype)
    residual = score(x + sigma * z) + z / sigma
    return half_mean_squared_norm(residual)


def multiscale_dsm(score, x, sigmas, rng):
    """NCSN's loss (004 §5.1; Song & Ermon 2019 eq. 6): mean_i lambda(sigma_i) DSM_{sigma_i} with
    lambda(sigma) = sigma^2, one sigma index drawn uniformly per example.

    score(x~, sigma) takes per-example sigma of shape (N,). With lambda = sigma^2,
    sigma^2 ||s + z/sigma||^2 = ||sigma s + z||^2: the per-level loss stays O(1) when
    s ~ 1/sigma (NCSN's reason for the weight; ermongroup/ncsn#9).
    """
    check_batch(x)
    sigmas = backend.asarray(sigmas, dtype=x.dtype)
    check_sigmas(sigmas)
    sigma = sigmas[rng.integers(0, sigmas.shape[0], (x.shape[0],))]
    sigma_b = anp.reshape(sigma, (-1,) + (1,) * (x.ndim - 1))
    z = rng.normal(x.shape, dtype=x.dtype)
    residual = sigma_b * score(x + sigma_b * z, sigma) + z
    return half_mean_squared_norm(residual)


# ------------------------------------------------------------ continuous-time DSM over an SDE
from . import checks, ops  # noqa: E402  (this block's own imports, kept with it)


def _diffuse(sde, x, rng):
    """t ~ U[t_min, 1] per example, z ~ N(0, I) and x_t = alpha_t x + sigma_t z: one draw of the
    forward SDE's perturbation kernel. Returns t (N,), x_t, z and sigma_t broadcast against x."""
    checks.batch("x", x)
    if not callable(getattr(sde, "marginal", None)):
        raise TypeError(f"sde: expected an SDE (minimalscore.sde.VE, VP or SubVP), got {checks.show(sde)}")
    t = rng.uniform(sde.t_min, 1.0, (x.shape[0],), dtype=x.dtype)
    alpha, sigma = sde.marginal(t)
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
    g2 = sde.diffusion(t) ** 2
    return 0.5 * ops.mean(g2 * ops.sum_per_example((score(x_t, t) + z / sigma) ** 2), axis=0, keepdims=False)


def ddpm_simple(eps_model, sde, x, rng):
    """Ho et al. 2020's simple loss E ||ε - ε̂(x_t, t)||² (eq. 14) in continuous time, t ~ U[t_min, 1].
    With s = -ε̂/sigma_t it is twice ``dsm_sde(..., weighting="sigma2")`` for the same draws:
    sigma_t s + z = z - ε̂, and DSM carries the factor ½."""
    eps_model = checks.like_x("eps_model", eps_model)
    t, x_t, z, _ = _diffuse(sde, x, rng)
    return 2 * half_mean_squared_norm(z - eps_model(x_t, t))
