"""NCSNv2's rules for the noise levels and the annealed-Langevin step (Song & Ermon 2020).

- Technique 1: sigma_1 about the largest pairwise distance in the training data, so the
  largest perturbation can carry any data point to any other.
- Technique 2: geometric sigma_i with ratio gamma = sigma_{i-1}/sigma_i such that
  Phi(sqrt(2D)(gamma - 1) + 3 gamma) - Phi(sqrt(2D)(gamma - 1) - 3 gamma) ~ 0.5: the bulk of
  N(0, sigma_{i-1}^2 I)'s norm overlaps that of N(0, sigma_i^2 I) (both concentrate on shells).
- Technique 4: T steps per level as many as the budget allows, then the step eps that makes the
  variance of annealed Langevin, run on a single data point, land closest to sigma_i^2.

Convention (DESIGN.md §3): a Langevin step is x <- x + (eps_i / 2) s + sqrt(eps_i) z with
eps_i = eps sigma_i^2 / sigma_L^2 (004 §5.1). NCSNv2's code writes x + a_i s + sqrt(2 a_i) z,
so its step_lr is a = eps / 2; :func:`langevin_eps` returns ours (twice theirs).

Everything here is host-side Python arithmetic (Phi via ``math.erf``), except
:func:`max_pairwise_distance`, which reads the data.
"""
import math

from . import backend


def normal_cdf(t):
    """Phi(t) = (1 + erf(t / sqrt 2)) / 2."""
    return 0.5 * (1.0 + math.erf(t / math.sqrt(2.0)))


def max_pairwise_distance(x, chunk=1024):
    """max_{i,j} ||x_i - x_j|| over the rows of x (N, ...) (Technique 1), in float64, by blocks
    of ``chunk`` rows of the Gram identity ||a - b||^2 = |a|^2 + |b|^2 - 2 a.b."""
    xp = backend.xp
    flat = xp.reshape(xp.asarray(x, dtype=xp.float64), (x.shape[0], -1))
    sq = xp.sum(flat ** 2, axis=1)
    largest = 0.0
    for start in range(0, flat.shape[0], chunk):
        block = flat[start:start + chunk]
        d2 = sq[start:start + chunk, None] + sq[None, :] - 2 * block @ flat.T
        largest = max(largest, float(d2.max()))
    return math.sqrt(max(largest, 0.0))


def shell_overlap(gamma, dim):
    """Phi(sqrt(2D)(gamma - 1) + 3 gamma) - Phi(sqrt(2D)(gamma - 1) - 3 gamma) (Technique 2)."""
    centre = math.sqrt(2 * dim) * (gamma - 1)
    return normal_cdf(centre + 3 * gamma) - normal_cdf(centre - 3 * gamma)


def gamma_for_dim(dim, overlap=0.5):
    """The ratio gamma > 1 at which :func:`shell_overlap` equals ``overlap`` (bisection; the overlap
    falls from Phi(3) - Phi(-3) = 0.997 at gamma = 1 as gamma grows, for D >= 5)."""
    low, high = 1.0, 2.0
    while shell_overlap(high, dim) > overlap:
        high *= 2
    for _ in range(60):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if shell_overlap(mid, dim) > overlap else (low, mid)
    return 0.5 * (low + high)


def n_levels(sigma_max, sigma_min, gamma):
    """L = 1 + round(log(sigma_1 / sigma_L) / log gamma): the geometric schedule whose ratio is
    closest to gamma (rounding, not ceiling, keeps the overlap within a percent of the target;
    ``gamma_for_dim`` decides the ratio, this only fits a whole number of levels)."""
    return 1 + max(1, round(math.log(sigma_max / sigma_min) / math.log(gamma)))


def geometric_sigmas(sigma_max, sigma_min, n):
    """n noise levels from sigma_max down to sigma_min, equal ratios (004 §5.1), largest first."""
    ratio = (sigma_min / sigma_max) ** (1.0 / (n - 1))
    return backend.asarray([sigma_max * ratio ** i for i in range(n)])


def langevin_variance_ratio(eps, n_steps, gamma, sigma_min):
    """Var[x_T] / sigma_i^2 after T annealed-Langevin steps at level i, started at the previous
    level's variance gamma^2 sigma_i^2, when the data is one point and the score exact,
    s(x) = -x / sigma_i^2 (NCSNv2 Proposition 3, rewritten in our step convention).

    One step x <- r x + sqrt(eps_i) z with r = 1 - eps / (2 sigma_L^2), eps_i = eps sigma_i^2 /
    sigma_L^2, maps the variance v to r^2 v + eps_i: the fixed point is v* = eps_i / (1 - r^2),
    reached geometrically, so v_T / sigma_i^2 = r^(2T) (gamma^2 - v*/sigma_i^2) + v*/sigma_i^2.
    The ratio does not depend on i, which is why one eps serves every level.
    """
    r = 1.0 - eps / (2.0 * sigma_min ** 2)
    stationary = eps / (sigma_min ** 2 * (1.0 - r * r))
    return r ** (2 * n_steps) * (gamma ** 2 - stationary) + stationary


def langevin_eps(n_steps, gamma, sigma_min):
    """The eps (our convention; NCSNv2's step_lr is eps / 2) that brings
    :func:`langevin_variance_ratio` closest to 1 (Technique 4), by golden-section search on
    log eps in (1e-10, 1) sigma_L^2, where the ratio falls from gamma^2 (too little mixing) to a
    minimum and then rises towards the stationary 1 / (1 - eps / (4 sigma_L^2)) > 1."""
    cost = lambda log_eps: abs(langevin_variance_ratio(math.exp(log_eps), n_steps, gamma,
                                                       sigma_min) - 1.0)
    low, high = math.log(1e-10 * sigma_min ** 2), math.log(sigma_min ** 2)
    golden = (math.sqrt(5) - 1) / 2
    for _ in range(200):
        a, b = high - golden * (high - low), low + golden * (high - low)
        low, high = (low, b) if cost(a) < cost(b) else (a, high)
    return math.exp(0.5 * (low + high))


def ncsnv2_schedule(x, n_steps_each, sigma_min=0.01, overlap=0.5):
    """The whole recipe for data x (N, ...): {"sigmas", "gamma", "eps", "sigma_max", "dim",
    "n_steps_each", "variance_ratio"} (Song & Ermon 2020 Techniques 1, 2 and 4)."""
    dim = int(math.prod(x.shape[1:]))
    sigma_max = max_pairwise_distance(x)
    n = n_levels(sigma_max, sigma_min, gamma_for_dim(dim, overlap))
    sigmas = geometric_sigmas(sigma_max, sigma_min, n)
    gamma = (sigma_max / sigma_min) ** (1.0 / (n - 1))  # the ratio actually used
    eps = langevin_eps(n_steps_each, gamma, sigma_min)
    return {"sigmas": sigmas, "gamma": gamma, "eps": eps, "sigma_max": sigma_max, "dim": dim,
            "n_steps_each": n_steps_each,
            "variance_ratio": langevin_variance_ratio(eps, n_steps_each, gamma, sigma_min)}
