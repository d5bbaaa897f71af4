"""Sample and score quality (DESIGN.md §2): pure functions that return Python floats, or host
NumPy arrays for per-component or per-coordinate summaries.

Score quality: :func:`fisher_divergence`. Sample quality: :func:`mode_weights`,
:func:`wasserstein1_1d`, :func:`ks_statistic`, :func:`mmd`, :func:`sliced_wasserstein`.
MCMC quality: :func:`effective_sample_size`.
"""
from . import backend


def fisher_divergence(score_a, score_b, x, weights=None):
    """F = E ||s_a(x) - s_b(x)||^2, squared norm summed over all non-batch axes (004 §2:
    F(p0 || p1) = E_{p0} ||grad log p0 - grad log p1||^2, no factor 1/2; explicit SM is F / 2).

    The expectation is the mean over the points x, or, with ``weights`` (N,) >= 0, the weighted
    mean sum_i w_i ||.||^2 / sum_i w_i: weights p(x_i) on a uniform grid make it a quadrature of
    the p-weighted integral; no weights on a grid gives the unweighted (uniform) average.
    ``score_a`` and ``score_b`` are arrays shaped like x or callables x -> such arrays.
    """
    xp = backend.xp
    a = score_a(x) if callable(score_a) else score_a
    b = score_b(x) if callable(score_b) else score_b
    if a.shape != x.shape or b.shape != x.shape:
        raise ValueError(f"score_a, score_b: expected shape {x.shape} like x, got {a.shape} and "
                         f"{b.shape}")
    squared = xp.sum(xp.reshape((a - b) ** 2, (x.shape[0], -1)), axis=1)
    if weights is None:
        return float(xp.mean(squared))
    weights = xp.asarray(weights)
    if weights.shape != (x.shape[0],) or not bool((weights >= 0).all()) or not weights.sum() > 0:
        raise ValueError(f"weights: expected shape ({x.shape[0]},), non-negative, positive sum")
    return float(xp.sum(weights * squared) / xp.sum(weights))


def mode_weights(x, centers):
    """Fraction of the points x (N, D) or (N,) nearest (Euclidean) to each of the K centers:
    the empirical weight of each mode. Returns a host array of shape (K,) summing to 1."""
    xp = backend.xp
    x, centers = _as_2d("x", x), _as_2d("centers", centers)
    if centers.shape[1] != x.shape[1]:
        raise ValueError(f"centers: dimension {centers.shape[1]} differs from x's {x.shape[1]}")
    nearest = xp.argmin(xp.sum((x[:, None, :] - centers[None]) ** 2, axis=2), axis=1)
    return backend.asnumpy(xp.bincount(nearest, minlength=centers.shape[0]) / x.shape[0])


def wasserstein1_1d(x, y):
    """Exact 1-Wasserstein distance between the empirical distributions of two 1-D samples of
    any sizes: W1 = integral |F_x(t) - F_y(t)| dt (Vallender 1973; in 1-D W1 is the L1 distance
    between the CDFs, equivalently between the quantile functions). Both empirical CDFs are
    constant between consecutive points of the pooled sorted sample, so the integral is a sum."""
    return float(_w1(_as_1d("x", x), _as_1d("y", y)))


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
    if n < 2 or m < 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x, y: need >= 2 points each of one dimension, got {x.shape}, {y.shape}")
    pooled = xp.concatenate([x, y])
    sq_norms = xp.sum(pooled ** 2, axis=1)
    # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b; clipped because rounding can make it slightly negative
    sq_dist = xp.maximum(sq_norms[:, None] + sq_norms[None, :] - 2 * pooled @ pooled.T, 0)
    if bandwidth is None:
        bandwidth = xp.median(xp.sqrt(sq_dist[xp.triu_indices(n + m, 1)]))
    if not float(bandwidth) > 0:
        raise ValueError(f"bandwidth: must be positive, got {float(bandwidth)}")
    k = xp.exp(-sq_dist / (2 * bandwidth ** 2))
    k_xx, k_yy, k_xy = k[:n, :n], k[n:, n:], k[:n, n:]
    mean_xx = (xp.sum(k_xx) - xp.trace(k_xx)) / (n * (n - 1))
    mean_yy = (xp.sum(k_yy) - xp.trace(k_yy)) / (m * (m - 1))
    return float(mean_xx + mean_yy - 2 * xp.mean(k_xy))


def sliced_wasserstein(x, y, rng, n_projections=100):
    """Sliced 1-Wasserstein distance (Bonneel et al. 2015; Rabin et al. 2011):
    SW1 = E_theta W1(theta.x, theta.y), theta uniform on the unit sphere S^{D-1}, estimated with
    ``n_projections`` random directions (normalised Gaussian vectors). x (N, D), y (M, D)."""
    xp = backend.xp
    x, y = _as_2d("x", x), _as_2d("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"y: dimension {y.shape[1]} differs from x's {x.shape[1]}")
    theta = rng.normal((n_projections, x.shape[1]), dtype=x.dtype)
    theta = theta / xp.linalg.norm(theta, axis=1, keepdims=True)
    x_proj, y_proj = x @ theta.T, y @ theta.T
    return float(sum(_w1(x_proj[:, p], y_proj[:, p]) for p in range(n_projections)) / n_projections)


def effective_sample_size(chain):
    """ESS = n / tau of an MCMC chain, (n,) or per coordinate of (n, d) (returns a float or a host
    array (d,)). tau = 1 + 2 sum_{t>=1} rho_t is the integrated autocorrelation time, estimated
    with Geyer's initial positive sequence (Geyer 1992, Statist. Sci. 7(4), §3.3): with pair sums
    Gamma_m = rho_{2m} + rho_{2m+1}, tau = -1 + 2 sum_{m < M} Gamma_m, M the first m with
    Gamma_m <= 0 (for a reversible chain the true Gamma_m are positive, so the first non-positive
    one marks where noise takes over). Autocovariances by FFT, normalised by n (the usual biased,
    positive semi-definite estimator).
    """
    xp = backend.xp
    x = xp.asarray(chain)
    if x.ndim not in (1, 2) or x.shape[0] < 4 or not bool(xp.isfinite(x).all()):
        raise ValueError(f"chain: expected a finite (n,) or (n, d) array, n >= 4, got {x.shape}")
    one_d = x.ndim == 1
    x = x[:, None] if one_d else x
    n = x.shape[0]
    x = x - xp.mean(x, axis=0)
    spectrum = xp.fft.rfft(x, n=2 * n, axis=0)  # zero-padded to 2n: linear, not circular, lags
    autocov = xp.fft.irfft(spectrum * xp.conj(spectrum), n=2 * n, axis=0)[:n] / n
    if not bool((autocov[0] > 0).all()):
        raise ValueError("chain: a coordinate is constant, its ESS is undefined")
    rho = autocov / autocov[0]
    half = n // 2
    pairs = rho[0:2 * half:2] + rho[1:2 * half:2]
    initial_positive = xp.cumprod(pairs > 0, axis=0)
    tau = -1 + 2 * xp.sum(pairs * initial_positive, axis=0)
    ess = n / tau
    return float(ess[0]) if one_d else backend.asnumpy(ess)


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
    x = backend.xp.asarray(x)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1 or x.shape[0] == 0 or not bool(backend.xp.isfinite(x).all()):
        raise ValueError(f"{name}: expected a finite, non-empty (N,) or (N, 1) sample, "
                         f"got shape {x.shape}")
    return x


def _as_2d(name, x):
    """A finite, non-empty sample as (N, D); a 1-D array is N points in one dimension."""
    x = backend.xp.asarray(x)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[0] == 0 or not bool(backend.xp.isfinite(x).all()):
        raise ValueError(f"{name}: expected a finite, non-empty (N, D) or (N,) sample, "
                         f"got shape {x.shape}")
    return x
