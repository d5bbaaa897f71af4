"""Each metric against a case with a known answer (the metrics the examples share). float64.

Deterministic cases (a shifted copy of a sample, a comparison with SciPy's exact formula) are held
to rounding, 1e-12; Monte Carlo cases to 4 standard errors at a fixed seed, the standard error
stated next to each test.
"""
import math

import numpy as np
import pytest
import scipy.signal
import scipy.stats

from minimalscore import backend, metrics


def normal(seed, size):
    return np.random.default_rng(seed).normal(size=size)


# Fisher divergence -----------------------------------------------------------------------------

@pytest.mark.identity
def test_fisher_divergence_of_shifted_gaussians_is_squared_shift():
    # N(mu_a, I) and N(mu_b, I): s_a - s_b = mu_a - mu_b at every x, so F = |mu_a - mu_b|^2 exactly
    x = normal(0, (100, 3))
    mu_a, mu_b = np.array([1.0, 0.0, -1.0]), np.array([0.0, 2.0, 0.5])
    value = metrics.fisher_divergence(lambda x: mu_a - x, lambda x: mu_b - x, x)
    assert value == pytest.approx(np.sum((mu_a - mu_b) ** 2), rel=1e-12)
    assert metrics.fisher_divergence(mu_a - x, mu_b - x, x) == value     # arrays or callables


@pytest.mark.identity
def test_fisher_divergence_weighted_by_density_is_quadrature():
    # F(N(0,1) || N(0,2)) = E[(-x + x/2)^2] = E[x^2] / 4 = 1/4. Weights p(x_i) on a uniform grid
    # make it the trapezoid rule (the integrand vanishes at the ends), whose error for a Gaussian
    # of std 1 at step h = 0.01 is ~exp(-2 pi^2 / h^2): nil; cutting at |x| = 12 drops ~1e-31.
    grid = np.linspace(-12, 12, 2401)[:, None]
    density = scipy.stats.norm.pdf(grid[:, 0])
    value = metrics.fisher_divergence(-grid, -grid / 2, grid, weights=density)
    assert value == pytest.approx(0.25, rel=1e-12)
    # no weights: the plain average over the grid, here (1/4) mean(x^2)
    assert metrics.fisher_divergence(-grid, -grid / 2, grid) == pytest.approx(
        np.mean(grid ** 2) / 4, rel=1e-12)


# mode weights ----------------------------------------------------------------------------------

def test_mode_weights_of_constructed_points():
    centers = np.array([[-4.0, 0.0], [4.0, 0.0], [0.0, 5.0]])
    jitter = 0.5 * normal(1, (100, 2))                  # far less than half the centre spacing
    labels = np.repeat([0, 1, 2], [20, 50, 30])
    weights = metrics.mode_weights(centers[labels] + jitter, centers)
    np.testing.assert_array_equal(weights, [0.2, 0.5, 0.3])
    one_d = metrics.mode_weights(np.array([-1.1, -0.9, 0.8, 1.0, 1.2]), np.array([-1.0, 1.0]))
    np.testing.assert_array_equal(one_d, [0.4, 0.6])


# W1 and KS in 1-D ------------------------------------------------------------------------------

@pytest.mark.identity
def test_wasserstein1_of_shifted_copy_is_the_shift():
    # x and x + c: the sorted samples differ by c everywhere, so W1 = c up to rounding
    x = normal(2, 1000)
    assert metrics.wasserstein1_1d(x, x + 0.7) == pytest.approx(0.7, rel=1e-12)
    assert metrics.wasserstein1_1d(x, x) == 0.0
    # unequal sizes, same distribution: x and x repeated twice have the same empirical CDF
    assert metrics.wasserstein1_1d(x, np.concatenate([x, x])) == pytest.approx(0.0, abs=1e-12)


def test_wasserstein1_and_ks_match_scipy_for_unequal_sizes():
    # both are exact formulas for empirical distributions, so they agree to rounding
    x, y = normal(3, 1000), 0.5 + 2 * normal(4, 700)[:, None]     # (N,) and (M, 1) both accepted
    assert metrics.wasserstein1_1d(x, y) == pytest.approx(
        scipy.stats.wasserstein_distance(x, y[:, 0]), rel=1e-12)
    assert metrics.ks_statistic(x, y) == pytest.approx(
        scipy.stats.ks_2samp(x, y[:, 0]).statistic, rel=1e-12)


def test_ks_statistic_extremes():
    x = normal(5, 500)
    assert metrics.ks_statistic(x, np.concatenate([x, x])) == 0.0    # identical empirical CDFs
    assert metrics.ks_statistic(x, x + 100.0) == 1.0                 # disjoint supports


# MMD -------------------------------------------------------------------------------------------

def _mmd_replicates(shift, n_replicates=30, n=300):
    return np.array([metrics.mmd(normal(2 * r, n), shift + normal(2 * r + 1, n), bandwidth=1.0)
                     for r in range(n_replicates)])


@pytest.mark.identity
@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_mmd_is_unbiased_for_closed_form(shift):
    # P = N(0, 1), Q = N(d, 1), k(a, b) = exp(-(a - b)^2 / (2 h^2)): a Gaussian integral gives
    # E k(X, X') = h / sqrt(h^2 + 2), E k(X, Y) = h / sqrt(h^2 + 2) exp(-d^2 / (2 (h^2 + 2))),
    # so MMD^2 = 2 h / sqrt(h^2 + 2) (1 - exp(-d^2 / (2 (h^2 + 2)))). MMD^2_u is unbiased: the mean
    # of 30 independent replicates lies within 4 of their standard errors (std / sqrt(30)).
    h = 1.0
    truth = 2 * h / math.sqrt(h ** 2 + 2) * (1 - math.exp(-shift ** 2 / (2 * (h ** 2 + 2))))
    values = _mmd_replicates(shift)
    assert abs(values.mean() - truth) < 4 * values.std(ddof=1) / math.sqrt(len(values))


def test_mmd_median_heuristic_separates_shifted_samples():
    # with the default bandwidth, equal distributions give ~0 (O(1/n) noise, a few 1e-3 at
    # n = 500); a one-sd shift gives ~0.11: the median distance of the pooled sample is h ~ 1.7
    # and in D = 2, MMD^2 = 2 (h^2 / (h^2 + 2)) (1 - exp(-1 / (2 (h^2 + 2)))) (the Gaussian
    # integral of the 1-D case above, once per dimension)
    x = normal(6, (500, 2))
    same, shifted = normal(7, (500, 2)), normal(8, (500, 2)) + [1.0, 0.0]
    assert abs(metrics.mmd(x, same)) < 0.01 < 0.05 < metrics.mmd(x, shifted)


# sliced Wasserstein ----------------------------------------------------------------------------

@pytest.mark.identity
def test_sliced_wasserstein_of_shifted_copy():
    # x and x + delta: each projection's W1 is exactly |theta . delta|. For theta uniform on S^2,
    # theta . delta / |delta| is uniform on [-1, 1] (Archimedes), so SW1 = |delta| / 2 and the
    # estimate from P directions has standard error |delta| sqrt(1/3 - 1/4) / sqrt(P).
    x = normal(9, (500, 3))
    delta = np.array([3.0, 4.0, 0.0])
    n_projections = 2000
    value = metrics.sliced_wasserstein(x, x + delta, backend.default_rng(0), n_projections)
    standard_error = 5.0 * math.sqrt(1 / 12) / math.sqrt(n_projections)
    assert abs(value - 2.5) < 4 * standard_error


# effective sample size -------------------------------------------------------------------------

def ar1(rho, n, seed):
    """A stationary AR(1) chain x_t = rho x_{t-1} + sqrt(1 - rho^2) e_t, x_0 ~ N(0, 1)."""
    e = normal(seed, n) * math.sqrt(1 - rho ** 2)
    e[0] /= math.sqrt(1 - rho ** 2)
    return scipy.signal.lfilter([1.0], [1.0, -rho], e)


@pytest.mark.identity
def test_effective_sample_size_of_iid_and_ar1():
    # AR(1): rho_t = rho^t, tau = (1 + rho) / (1 - rho), ESS = n (1 - rho) / (1 + rho); iid:
    # ESS = n. For a window estimator summing W lags, sd(tau_hat) / tau ~ sqrt(2 (2W + 1) / n)
    # (Madras & Sokal 1988); Geyer's window stops at W ~ 10-15 lags for these chains, so
    # sd ~ 2.3% at n = 1e5 and 4 sd ~ 10%. (Over 300 seeds the measured sd was 1.3% for iid and
    # 2.1% for rho = 0.5.)
    n, rho = 100_000, 0.5
    chain = ar1(rho, n, seed=10)
    iid = normal(11, n)
    assert metrics.effective_sample_size(chain) == pytest.approx(n * (1 - rho) / (1 + rho), rel=0.1)
    assert metrics.effective_sample_size(iid) == pytest.approx(n, rel=0.1)
    per_coordinate = metrics.effective_sample_size(np.stack([chain, iid], axis=1))
    assert per_coordinate.shape == (2,)
    np.testing.assert_allclose(per_coordinate, [metrics.effective_sample_size(chain),
                                                metrics.effective_sample_size(iid)], rtol=1e-12)


# bad input -------------------------------------------------------------------------------------

def test_bad_input_raises_naming_the_argument():
    x = normal(12, (10, 2))
    with pytest.raises(ValueError, match="^score_a"):
        metrics.fisher_divergence(x[:, :1], x, x)
    with pytest.raises(ValueError, match="^weights:"):
        metrics.fisher_divergence(x, -x, x, weights=-np.ones(10))
    with pytest.raises(ValueError, match="^x:"):
        metrics.wasserstein1_1d(x, x[:, 0])                          # 2-D is not a 1-D sample
    with pytest.raises(ValueError, match="^y:"):
        metrics.ks_statistic(x[:, 0], np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="^centers:"):
        metrics.mode_weights(x, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="^bandwidth:"):
        metrics.mmd(x, x, bandwidth=0.0)
    with pytest.raises(ValueError, match="^chain:"):
        metrics.effective_sample_size(np.ones(100))
