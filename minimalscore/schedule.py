"""NCSNv2's rules for the noise levels and the annealed-Langevin step (Song & Ermon 2020).

    Technique 1   sigma_1 = max_{i,j} |x_i - x_j|  (the largest pairwise distance of the data)
    Technique 2   sigma_i = sigma_1 gamma^{-(i-1)}, gamma > 1 the root of
                  Phi(sqrt(2D)(gamma - 1) + 3 gamma) - Phi(sqrt(2D)(gamma - 1) - 3 gamma) = 0.5
    Technique 4   eps such that the variance of annealed Langevin, run on one data point with
                  the exact score, ends each level closest to sigma_i^2

Technique 1 lets the largest perturbation carry any data point to any other. Technique 2 makes the
shell that N(0, sigma_{i-1}^2 I) concentrates on overlap that of N(0, sigma_i^2 I). Technique 4
runs T steps per level, as many as the budget allows, and then picks eps.

Convention (docs/conventions.md): a Langevin step is x <- x + (eps_i / 2) s + sqrt(eps_i) z with
eps_i = eps sigma_i^2 / sigma_L^2 (Song & Ermon 2019 Alg. 1). NCSNv2's code writes
x + a_i s + sqrt(2 a_i) z, so its step_lr is a = eps / 2; :func:`langevin_eps` returns ours (twice
theirs).

Everything here is host-side Python arithmetic (Phi via ``math.erf``), except
:func:`max_pairwise_distance`, which reads the data.
"""
import math

from . import backend, checks
from .ops import sq_distances

# Phi(3) - Phi(-3): the overlap at gamma = 1, the least any ratio gamma > 1 can reach for D <= 4
OVERLAP_AT_ONE = math.erf(3 / math.sqrt(2))


def max_pairwise_distance(x, chunk=1024):
    """max_{i,j} |x_i - x_j| over the rows of x (N, ...) (Technique 1), in float64, by blocks of
    ``chunk`` rows so that memory stays N x chunk."""
    checks.batch("x", x)
    chunk = checks.count("chunk", chunk)
    xp = backend.xp
    flat = xp.reshape(xp.asarray(x, dtype=xp.float64), (x.shape[0], -1))
    largest = 0.0
    for start in range(0, flat.shape[0], chunk):
        block = float(sq_distances(flat[start:start + chunk], flat).max())
        if not math.isfinite(block):  # NaN (inf - inf) included, which max() would skip
            raise ValueError("x: squared distances overflow float64 (values beyond ~1e154); "
                             "rescale x")
        largest = max(largest, block)
    return math.sqrt(largest)


def shell_overlap(gamma, dim):
    """Phi(sqrt(2D)(gamma - 1) + 3 gamma) - Phi(sqrt(2D)(gamma - 1) - 3 gamma) (Technique 2)."""
    gamma, dim = checks.positive("gamma", gamma), checks.count("dim", dim)
    centre = math.sqrt(2 * dim) * (gamma - 1)
    return _normal_cdf(centre + 3 * gamma) - _normal_cdf(centre - 3 * gamma)


def gamma_for_dim(dim, overlap=0.5):
    """The ratio gamma > 1 at which :func:`shell_overlap` equals ``overlap`` (Technique 2).

    At gamma = 1 the overlap is Phi(3) - Phi(-3) = 0.9973 and it first rises (its slope there is
    6 phi(3) > 0). As gamma grows, the lower argument behaves like (sqrt(2D) - 3) gamma: for
    D >= 5 it tends to +inf and the overlap falls to 0, crossing every level below 0.9973 once
    (found here by bisection); for D <= 4 it tends to -inf, the overlap rises to 1 and never
    falls below 0.9973, so no ratio exists and a ValueError naming D says so.
    """
    dim = checks.count("dim", dim)
    overlap = checks.in_interval("overlap", overlap, 0.0, OVERLAP_AT_ONE, closed=(False, False))
    if dim <= 4:
        raise ValueError(f"dim: Technique 2 needs D >= 5, got D = {dim}: for D <= 4 the overlap "
                         f"never falls below Phi(3) - Phi(-3) = {OVERLAP_AT_ONE:.4f} at any "
                         f"gamma > 1; choose the levels directly with geometric_sigmas")
    low, high = 1.0, 2.0
    while shell_overlap(high, dim) > overlap:
        high *= 2
    for _ in range(60):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if shell_overlap(mid, dim) > overlap else (low, mid)
    return 0.5 * (low + high)


def n_levels(sigma_max, sigma_min, gamma):
    """L = 1 + round(log(sigma_1 / sigma_L) / log gamma), at least 2: the geometric schedule
    whose ratio is closest to gamma. Rounding, not ceiling, keeps the overlap within a percent of
    the target; :func:`gamma_for_dim` decides the ratio, this only fits a whole number of levels."""
    sigma_max, sigma_min = _limits(sigma_max, sigma_min)
    gamma = checks.in_interval("gamma", gamma, 1.0, math.inf, closed=(False, False))
    return 1 + max(1, round(math.log(sigma_max / sigma_min) / math.log(gamma)))


def geometric_sigmas(sigma_max, sigma_min, n):
    """sigma_i = sigma_max (sigma_min / sigma_max)^{(i-1)/(n-1)}, i = 1..n: n >= 2 noise levels
    with equal ratios, largest first (Song & Ermon 2019 §4.1)."""
    sigma_max, sigma_min = _limits(sigma_max, sigma_min)
    n = checks.count("n", n, minimum=2)
    ratio = (sigma_min / sigma_max) ** (1.0 / (n - 1))
    sigmas = backend.asarray([sigma_max * ratio ** i for i in range(n)])
    if not bool((sigmas[1:] < sigmas[:-1]).all()):
        raise ValueError(f"n: {n} levels between {sigma_max} and {sigma_min} are not distinct in "
                         f"{sigmas.dtype}; use fewer levels or wider limits")
    return sigmas


def langevin_variance_ratio(eps, n_steps, gamma, sigma_min):
    """Var[x_T] / sigma_i^2 after T annealed-Langevin steps at level i, started at the previous
    level's variance gamma^2 sigma_i^2, when the data is one point and the score exact,
    s(x) = -x / sigma_i^2 (NCSNv2 Proposition 3, rewritten in our step convention).

    One step x <- r x + sqrt(eps_i) z with r = 1 - eps / (2 sigma_L^2), eps_i = eps sigma_i^2 /
    sigma_L^2, maps the variance v to r^2 v + eps_i: the fixed point is v* = eps_i / (1 - r^2),
    reached geometrically, so v_T / sigma_i^2 = r^(2T) (gamma^2 - v*/sigma_i^2) + v*/sigma_i^2.
    The ratio does not depend on i, which is why one eps serves every level. The chain is stable
    only for |r| < 1, i.e. 0 < eps < 4 sigma_L^2; a larger eps raises a ValueError.
    """
    sigma_min = checks.positive("sigma_min", sigma_min)
    eps = checks.in_interval("eps", eps, 0.0, 4 * sigma_min ** 2, closed=(False, False))
    n_steps, gamma = checks.count("n_steps", n_steps), checks.positive("gamma", gamma)
    r = 1.0 - eps / (2.0 * sigma_min ** 2)
    stationary = eps / (sigma_min ** 2 * (1.0 - r * r))
    return r ** (2 * n_steps) * (gamma ** 2 - stationary) + stationary


def langevin_eps(n_steps, gamma, sigma_min):
    """The eps (our convention; NCSNv2's step_lr is eps / 2) that brings
    :func:`langevin_variance_ratio` closest to 1 (Technique 4), by golden-section search on
    log eps in (1e-10, 1) sigma_L^2, where the ratio falls from gamma^2 (too little mixing) to a
    minimum and then rises towards the stationary 1 / (1 - eps / (4 sigma_L^2)) > 1."""
    n_steps = checks.count("n_steps", n_steps)
    gamma = checks.in_interval("gamma", gamma, 1.0, math.inf, closed=(False, False))
    sigma_min = checks.positive("sigma_min", sigma_min)
    cost = lambda log_eps: abs(langevin_variance_ratio(math.exp(log_eps), n_steps, gamma,
                                                       sigma_min) - 1.0)
    low, high = math.log(1e-10 * sigma_min ** 2), math.log(sigma_min ** 2)
    golden = (math.sqrt(5) - 1) / 2
    for _ in range(200):
        a, b = high - golden * (high - low), low + golden * (high - low)
        low, high = (low, b) if cost(a) < cost(b) else (a, high)
    return math.exp(0.5 * (low + high))


def ncsnv2_schedule(x, n_steps_each, sigma_min=0.01, overlap=0.5):
    """The whole recipe for data x (N, ...) of dimension D >= 5: {"sigmas", "gamma", "eps",
    "sigma_max", "dim", "n_steps_each", "variance_ratio"} (Song & Ermon 2020 Techniques 1, 2
    and 4)."""
    sigma_max = max_pairwise_distance(x)
    n_steps_each = checks.count("n_steps_each", n_steps_each)
    dim = int(math.prod(x.shape[1:]))
    if dim <= 4:
        raise ValueError(f"x: Technique 2 needs data of dimension D >= 5, got D = {dim} (see "
                         f"gamma_for_dim); choose the levels directly with geometric_sigmas")
    if not checks.positive("sigma_min", sigma_min) < sigma_max:
        raise ValueError(f"sigma_min: expected less than the largest pairwise distance of x, "
                         f"{sigma_max:.4g}, got {sigma_min}")
    n = n_levels(sigma_max, sigma_min, gamma_for_dim(dim, overlap))
    sigmas = geometric_sigmas(sigma_max, sigma_min, n)
    gamma = (sigma_max / sigma_min) ** (1.0 / (n - 1))  # the ratio actually used
    eps = langevin_eps(n_steps_each, gamma, sigma_min)
    return {"sigmas": sigmas, "gamma": gamma, "eps": eps, "sigma_max": sigma_max, "dim": dim,
            "n_steps_each": n_steps_each,
            "variance_ratio": langevin_variance_ratio(eps, n_steps_each, gamma, sigma_min)}


def _normal_cdf(t):
    """Phi(t) = (1 + erf(t / sqrt 2)) / 2."""
    return 0.5 * (1.0 + math.erf(t / math.sqrt(2.0)))


def _limits(sigma_max, sigma_min):
    """Two noise levels, both positive and finite, sigma_max > sigma_min (largest first)."""
    sigma_max = checks.positive("sigma_max", sigma_max)
    sigma_min = checks.positive("sigma_min", sigma_min)
    if not sigma_max > sigma_min:
        raise ValueError(f"sigma_max: expected more than sigma_min = {sigma_min} (levels run "
                         f"largest first), got {sigma_max}")
    return sigma_max, sigma_min
