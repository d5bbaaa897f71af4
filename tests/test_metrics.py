"""Each metric against a case with a known answer. float64.

Deterministic cases (a shifted copy of a sample, a comparison with SciPy's exact formula) are held
to rounding, 1e-12; Monte Carlo cases to 4 standard errors at a fixed seed, the standard error
stated next to each test.
"""
import math

import numpy as np
import pytest
import scipy.signal
import scipy.stats
from hypothesis import given, settings, strategies as st

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

def ar1(rho, n, seed, d=1):
    """d independent stationary AR(1) chains x_t = rho x_{t-1} + sqrt(1 - rho^2) e_t, x_0 ~ N(0, 1),
    as the columns of an (n, d) array."""
    e = np.random.default_rng(seed).normal(size=(n, d)) * math.sqrt(1 - rho ** 2)
    e[0] /= math.sqrt(1 - rho ** 2)
    return scipy.signal.lfilter([1.0], [1.0, -rho], e, axis=0)


@pytest.mark.identity
@pytest.mark.parametrize("rho", [0.5, 0.0, -0.5])
def test_effective_sample_size_of_ar1_chains(rho):
    # AR(1): rho_t = rho^t, tau = (1 + rho) / (1 - rho), ESS = n (1 - rho) / (1 + rho): n / 3 for
    # rho = 0.5, n for iid, 3 n for the antithetic rho = -0.5 (below the cap n log10 n = 4.7 n).
    # A window estimator summing W lags has sd(tau_hat) / tau ~ sqrt(2 (2W + 1) / n) (Madras &
    # Sokal 1988); Geyer's sequence stops near W = 10 lags for |rho| <= 0.5, so sd ~ 2.9% at
    # n = 5e4. Its truncation keeps only positive noise terms: an upward bias in tau_hat of at most
    # about one sd. The mean of 16 independent chains may then be off by one sd (bias) plus
    # 4 / sqrt(16) sd (noise): 2 sd = 5.8%. Measured: 0.32%, 0.27%, 0.38% low.
    n, d = 50_000, 16
    truth = n * (1 - rho) / (1 + rho)
    ess = metrics.effective_sample_size(ar1(rho, n, seed=10, d=d))
    assert ess.shape == (d,) and np.all(np.isfinite(ess))
    assert abs(ess.mean() / truth - 1) < 2 * math.sqrt(2 * 21 / n)
    one_chain = metrics.effective_sample_size(ar1(rho, n, seed=10, d=d)[:, 3])
    assert one_chain == pytest.approx(ess[3], rel=1e-12)


@pytest.mark.identity
def test_effective_sample_size_of_an_alternating_chain_is_the_cap():
    # x_t = (-1)^t: rho_t = (-1)^t (n - t) / n, so every pair sum Gamma_m = 1 / n, the sequence
    # never turns negative and tau = -1 + 2 (n / 2)(1 / n) = 0 (the true ESS is infinite: the
    # mean of an even number of draws is exact). The cap tau >= 1 / log10 n gives n log10 n.
    n = 10_000
    alternating = np.tile([1.0, -1.0], n // 2)
    assert metrics.effective_sample_size(alternating) == pytest.approx(n * math.log10(n), rel=1e-9)
    noisy = alternating + 0.1 * normal(13, n)
    assert 0 < metrics.effective_sample_size(noisy) <= n * math.log10(n)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(st.floats(-1e200, 1e200).map(lambda v: 0.0 if abs(v) < 1e-200 else v),
                min_size=4, max_size=300).filter(lambda v: len(set(v)) > 1),
       st.integers(-300, 300))
def test_effective_sample_size_is_positive_finite_capped_and_scale_free(values, power):
    # for every finite, non-constant chain: tau_hat >= 1 / log10 n > 0, so 0 < ESS <= n log10 n,
    # even for values near the float range (the chain is divided by its largest |x| first). A
    # power-of-two scale is exact in binary floating point (no overflow or underflow for these
    # values), and so the ESS of 2^k x equals that of x bit for bit.
    chain = np.array(values)
    n = len(values)
    ess = metrics.effective_sample_size(chain)
    assert 0 < ess <= n * math.log10(n) * (1 + 1e-12)
    assert metrics.effective_sample_size(chain * 2.0 ** power) == ess


def geyer_ess_by_loops(chain):
    """Geyer's initial monotone sequence estimator (Geyer 1992 §3.3) written as plain loops, with
    the cap tau >= 1 / log10 n: the definition the vectorised version must equal."""
    n = len(chain)
    x = chain - chain.mean()
    autocov = [sum(x[t] * x[t + k] for t in range(n - k)) / n for k in range(n)]
    rho = [a / autocov[0] for a in autocov]
    tau, smallest = -1.0, math.inf
    for m in range(n // 2):
        pair = rho[2 * m] + rho[2 * m + 1]
        if pair <= 0:
            break
        smallest = min(smallest, pair)
        tau += 2 * smallest
    return n / max(tau, 1 / math.log10(n))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(0, 2**32 - 1), st.integers(4, 60), st.floats(-0.9, 0.9))
def test_effective_sample_size_matches_geyers_definition_written_as_loops(seed, n, rho):
    # short AR(1) chains: their pair sums are often not monotone, so the running minimum matters.
    # FFT and direct sums agree to ~n u relative; a pair sum within that of 0 (probability ~1e-14
    # for continuous draws) could flip the truncation, so 1e-9 is safe and far below any mistake.
    chain = ar1(rho, n, seed)[:, 0]
    expected = geyer_ess_by_loops(chain)
    assert metrics.effective_sample_size(chain) == pytest.approx(expected, rel=1e-9)


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


@pytest.mark.parametrize("call, name", [
    (lambda x: metrics.fisher_divergence(lambda y: y[:, :1], -x, x), "score_a"),  # (N, 1) vs (N, 2)
    (lambda x: metrics.fisher_divergence(x, lambda y: y * np.nan, x), "score_b"),
    (lambda x: metrics.fisher_divergence(x, -x, x[:, 0]), "x"),
    (lambda x: metrics.fisher_divergence(x, -x, x, weights=np.zeros(10)), "weights"),
    (lambda x: metrics.fisher_divergence(x, -x, x, weights=np.ones(9)), "weights"),
    (lambda x: metrics.fisher_divergence(1e200 * x, -1e200 * x, x), "score_a"),  # overflows
    (lambda x: metrics.mode_weights(x.tolist(), x[:2]), "x"),
    (lambda x: metrics.mode_weights(x, np.array([[np.nan, 0.0]])), "centers"),
    (lambda x: metrics.wasserstein1_1d(x[:, 0], np.zeros(0)), "y"),
    (lambda x: metrics.ks_statistic(x[:, 0].astype(np.int64), x[:, 1]), "x"),
    (lambda x: metrics.mmd(x, x[:, :1]), "y"),
    (lambda x: metrics.mmd(x[:1], x), "x"),
    (lambda x: metrics.mmd(x, x, bandwidth=-1.0), "bandwidth"),
    (lambda x: metrics.mmd(x, x, bandwidth=np.nan), "bandwidth"),
    (lambda x: metrics.mmd(np.zeros((10, 2)), np.zeros((10, 2))), "x"),           # median 0
    (lambda x: metrics.sliced_wasserstein(x, x, None), "rng"),
    (lambda x: metrics.sliced_wasserstein(x, x, backend.default_rng(0), 0), "n_projections"),
    (lambda x: metrics.sliced_wasserstein(x, x, backend.default_rng(0), 2.5), "n_projections"),
    (lambda x: metrics.effective_sample_size(x[:3]), "chain"),
    (lambda x: metrics.effective_sample_size(x[:, :, None]), "chain"),
    (lambda x: metrics.effective_sample_size(np.array([0.0, 1.0, np.inf, 2.0])), "chain"),
])
def test_every_metric_refuses_bad_arguments_naming_them(call, name):
    with pytest.raises((ValueError, TypeError), match=f"^{name}"):
        call(normal(14, (10, 2)))


@pytest.mark.parametrize("call", [
    lambda x: metrics.wasserstein1_1d(x[:, 0], -x[:, 0]),
    lambda x: metrics.mmd(x, -x),
    lambda x: metrics.sliced_wasserstein(x, -x, backend.default_rng(0), 3),
])
def test_finite_inputs_whose_result_overflows_raise_instead_of_returning_inf(call):
    with pytest.raises(ValueError, match="^x, y: the result overflows"):
        call(1e308 * np.sign(normal(15, (10, 1))))
