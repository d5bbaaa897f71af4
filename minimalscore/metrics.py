"""Sample and score quality: pure functions that return Python floats, or host NumPy arrays for
per-component or per-coordinate summaries.

    fisher_divergence      F = E_x |s_a(x) - s_b(x)|^2
    mode_weights           the fraction of the points nearest to each centre
    wasserstein1_1d        W1 = integral |F_x(t) - F_y(t)| dt  (1-D samples)
    ks_statistic           sup_t |F_x(t) - F_y(t)|             (1-D samples)
    mmd                    MMD^2_u = mean_{i!=j} k(x_i, x_j) + mean_{i!=j} k(y_i, y_j)
                                     - 2 mean_{i,j} k(x_i, y_j),  k Gaussian
    sliced_wasserstein     SW1 = E_theta W1(theta.x, theta.y),  theta uniform on the sphere
    effective_sample_size  ESS = n / tau,  tau = 1 + 2 sum_{t>=1} rho_t

Samples are batch-first arrays of the active backend, (N, D), or (N,) for points on a line.
"""
import math

from . import backend, checks
from .ops import sq_distances, sum_per_example


def fisher_divergence(score_a, score_b, x, weights=None):
    """F = E |s_a(x) - s_b(x)|^2, the squared norm summed over all non-batch axes, no factor 1/2
    (Hyvärinen 2005's J, and explicit score matching, are F / 2).

    The expectation is the mean over the points x, or, with ``weights`` (N,) >= 0, the weighted
    mean sum_i w_i |.|^2 / sum_i w_i: weights p(x_i) on a uniform grid make it a quadrature of
    the p-weighted integral; no weights on a grid gives the unweighted (uniform) average.
    ``score_a`` and ``score_b`` are arrays shaped like x or callables x -> such arrays.
    """
    xp = backend.xp
    checks.batch("x", x)
    a, b = (_score_values(name, s, x) for name, s in (("score_a", score_a), ("score_b", score_b)))
    squared = sum_per_example((a - b) ** 2)
    if weights is None:
        value = float(xp.mean(squared))
    else:
        checks.batch("weights", weights, min_ndim=1)
        if weights.shape != (x.shape[0],) or not bool((weights >= 0).all()):
            raise ValueError(f"weights: expected shape ({x.shape[0]},), non-negative, got shape "
                             f"{tuple(weights.shape)}")
        if not float(xp.sum(weights)) > 0:
            raise ValueError("weights: expected a positive sum, got all zeros")
        value = float(xp.sum(weights * squared) / xp.sum(weights))
    return _finite_result("score_a, score_b", value)


def mode_weights(x, centers):
    """Fraction of the points x (N, D) or (N,) nearest (Euclidean) to each of the K centers:
    the empirical weight of each mode. Returns a host array of shape (K,) summing to 1."""
    xp = backend.xp
    x, centers = _as_2d("x", x), _as_2d("centers", centers)
    if centers.shape[1] != x.shape[1]:
        raise ValueError(f"centers: dimension {centers.shape[1]} differs from x's {x.shape[1]}")
    nearest = xp.argmin(sq_distances(x, centers), axis=1)
    return backend.asnumpy(xp.bincount(nearest, minlength=centers.shape[0]) / x.shape[0])


def wasserstein1_1d(x, y):
    """Exact 1-Wasserstein distance between the empirical distributions of two 1-D samples of
    any sizes: W1 = integral |F_x(t) - F_y(t)| dt (Vallender 1973; in 1-D W1 is the L1 distance
    between the CDFs, equivalently between the quantile functions). Both empirical CDFs are
    constant between consecutive points of the pooled sorted sample, so the integral is a sum."""
    return _finite_result("x, y", float(_w1(_as_1d("x", x), _as_1d("y", y))))


def ks_statistic(x, y):
    """Two-sample Kolmogorov-Smirnov statistic sup_t |F_x(t) - F_y(t)| between empirical CDFs
    (Kolmogorov 1933; Smirnov 1948). The supremum is attained at a sample point, where the
    right-continuous CDFs are evaluated."""
    xp = backend.xp
    x, y = xp.sort(_as_1d("x", x)), xp.sort(_as_1d("y", y))
    pooled = xp.concatenate([x, y])
    return float(xp.max(xp.abs(_ecdf(x, pooled) - _ecdf(y, pooled))))


def mmd(x, y, bandwidth=None):
    """Unbiased estimate of the squared maximum mean discrepancy (Gretton et al. 2012, JMLR,
    eq. 3, MMD^2_u) with the Gaussian kernel k(a, b) = exp(-|a - b|^2 / (2 h^2)):
        MMD^2_u = mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j).
    Its expectation is the population MMD^2, so it is zero on average for equal distributions
    and can be slightly negative. ``bandwidth`` h defaults to the median heuristic (Gretton et al.
    2012 §8): the median distance between distinct points of the pooled sample.
    x (N, D) or (N,), y (M, D) or (M,), N, M >= 2.
    """
    xp = backend.xp
    x, y = _as_2d("x", x), _as_2d("y", y)
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"x, y: expected at least 2 points each, got {n} and {m}")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"y: dimension {y.shape[1]} differs from x's {x.shape[1]}")
    pooled = xp.concatenate([x, y])
    sq_dist = sq_distances(pooled, pooled)
    if bandwidth is None:
        distances = xp.sqrt(sq_dist[xp.triu_indices(n + m, 1)])
        bandwidth = _finite_result("x, y", float(xp.median(distances)))
        if bandwidth == 0:
            raise ValueError("x, y: more than half of the pooled pairs coincide, so the median "
                             "heuristic gives bandwidth 0; pass a bandwidth")
    bandwidth = checks.positive("bandwidth", bandwidth)
    k = xp.exp(-sq_dist / (2 * bandwidth ** 2))
    k_xx, k_yy, k_xy = k[:n, :n], k[n:, n:], k[:n, n:]
    mean_xx = (xp.sum(k_xx) - xp.trace(k_xx)) / (n * (n - 1))
    mean_yy = (xp.sum(k_yy) - xp.trace(k_yy)) / (m * (m - 1))
    return _finite_result("x, y", float(mean_xx + mean_yy - 2 * xp.mean(k_xy)))


def sliced_wasserstein(x, y, rng, n_projections=100):
    """Sliced 1-Wasserstein distance (Bonneel et al. 2015; Rabin et al. 2011):
    SW1 = E_theta W1(theta.x, theta.y), theta uniform on the unit sphere S^{D-1}, estimated with
    ``n_projections`` random directions (normalised Gaussian vectors). x (N, D), y (M, D)."""
    xp = backend.xp
    x, y = _as_2d("x", x), _as_2d("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"y: dimension {y.shape[1]} differs from x's {x.shape[1]}")
    rng, n_projections = checks.rng("rng", rng), checks.count("n_projections", n_projections)
    theta = rng.normal((n_projections, x.shape[1]), dtype=x.dtype)
    theta = theta / xp.linalg.norm(theta, axis=1, keepdims=True)
    x_proj, y_proj = x @ theta.T, y @ theta.T
    total = sum(_w1(x_proj[:, p], y_proj[:, p]) for p in range(n_projections))
    return _finite_result("x, y", float(total) / n_projections)


def effective_sample_size(chain):
    """ESS = n / tau of an MCMC chain, (n,) or per coordinate of (n, d) (returns a float or a host
    array (d,)), n >= 4. tau = 1 + 2 sum_{t>=1} rho_t is the integrated autocorrelation time.

    Geyer's initial monotone sequence estimator (Geyer 1992, Statist. Sci. 7(4), §3.3): with the
    pair sums Gamma_m = rho_{2m} + rho_{2m+1}, which are positive and decreasing for a reversible
    chain, keep the initial run of positive Gamma_m (the first non-positive one marks where noise
    takes over), replace each by the least of those before it, and set tau = -1 + 2 sum Gamma_m.
    For an antithetic chain tau < 1 and ESS > n; a chain that alternates exactly has tau = 0. So
    that the answer stays finite, tau is kept >= 1 / log10(n), i.e. ESS <= n log10(n), as Stan
    does. Autocovariances by FFT, normalised by n (the usual biased, positive semi-definite
    estimator).
    """
    xp = backend.xp
    checks.batch("chain", chain, min_ndim=1)
    if chain.ndim > 2 or chain.shape[0] < 4:
        raise ValueError(f"chain: expected an (n,) or (n, d) array with n >= 4, got shape "
                         f"{tuple(chain.shape)}")
    one_d = chain.ndim == 1
    x = chain[:, None] if one_d else chain
    n = x.shape[0]
    scale = xp.max(xp.abs(x), axis=0)  # ESS is scale-free; dividing first keeps x^2 finite
    x = x / xp.where(scale > 0, scale, 1)
    x = x - xp.mean(x, axis=0)
    spectrum = xp.fft.rfft(x, n=2 * n, axis=0)  # zero-padded to 2n: linear, not circular, lags
    autocov = xp.fft.irfft(spectrum * xp.conj(spectrum), n=2 * n, axis=0)[:n] / n
    if not bool((autocov[0] > 0).all()):
        raise ValueError("chain: a coordinate is constant, its ESS is undefined")
    rho = autocov / autocov[0]
    half = n // 2
    pairs = rho[0:2 * half:2] + rho[1:2 * half:2]
    initial_positive = xp.cumprod(pairs > 0, axis=0)
    tau = -1 + 2 * xp.sum(_running_min(pairs) * initial_positive, axis=0)
    ess = n / xp.maximum(tau, 1 / math.log10(n))
    return float(ess[0]) if one_d else backend.asnumpy(ess)


def _running_min(a):
    """min(a_0, ..., a_m) for each m along axis 0, by doubling (Hillis & Steele 1986): after the
    step with shift s each entry holds the least of the 2s entries ending at it."""
    shift = 1
    while shift < a.shape[0]:
        a = backend.xp.concatenate([a[:shift], backend.xp.minimum(a[shift:], a[:-shift])])
        shift *= 2
    return a


def _finite_result(names, value):
    """``value`` if finite; else a ValueError: finite inputs whose squares or differences
    overflow the float format."""
    if not math.isfinite(value):
        raise ValueError(f"{names}: the result overflows the float format (values too large); "
                         f"rescale the inputs")
    return value


def _score_values(name, score, x):
    """A score given as an array or a callable, evaluated at x: finite and shaped like x."""
    if callable(score):
        return checks.like_x(name, score)(x)
    checks.batch(name, score)
    if score.shape != x.shape:
        raise ValueError(f"{name}: expected shape {tuple(x.shape)} like x, got "
                         f"{tuple(score.shape)}")
    return score


def _w1(x, y):
    """Exact W1 between 1-D samples (see :func:`wasserstein1_1d`), as a backend scalar."""
    xp = backend.xp
    x, y = xp.sort(x), xp.sort(y)
    pooled = xp.sort(xp.concatenate([x, y]))
    cdf_gap = xp.abs(_ecdf(x, pooled[:-1]) - _ecdf(y, pooled[:-1]))
    return xp.sum(cdf_gap * xp.diff(pooled))


def _ecdf(sorted_sample, t):
    """Right-continuous empirical CDF of a sorted sample at the points t."""
    return backend.xp.searchsorted(sorted_sample, t, side="right") / sorted_sample.shape[0]


def _as_1d(name, x):
    """A finite, non-empty 1-D sample; (N, 1) is accepted and flattened."""
    checks.batch(name, x, min_ndim=1)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sample, shape (N,) or (N, 1), got shape "
                         f"{tuple(x.shape)}")
    return x


def _as_2d(name, x):
    """A finite, non-empty sample as (N, D); a 1-D array is N points in one dimension."""
    checks.batch(name, x, min_ndim=1)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a sample of shape (N, D) or (N,), got shape "
                         f"{tuple(x.shape)}")
    return x
