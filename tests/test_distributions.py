"""The analytic targets: GaussianMixture's score, its perturbed version, Tweedie's formula,
sampling, far-out points (float32 and float64) and bad input. float64 unless a test says otherwise.

Every random mixture below has covariance eigenvalues in [0.2, 2] (condition number <= 10) and
means of scale 2, so float64 evaluations of the same quantity by two routes agree to a few
hundred ulps; the tolerances 1e-10 leave that margin many times over while any formula error
(a wrong sign, a missing factor, a transposed matrix) shows up at O(1).
"""
import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import scipy.special
import scipy.stats
from hypothesis import given, settings, strategies as st

from minimalscore import backend
from minimalscore.distributions import Gaussian, GaussianMixture

COV_TYPES = ["isotropic", "diagonal", "full"]
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


def random_mixture(seed, dim, n_components, cov_type):
    """A float64 mixture with covariance eigenvalues in [0.2, 2] and Dirichlet weights."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=2.0, size=(n_components, dim))
    if cov_type == "isotropic":
        covs = rng.uniform(0.2, 2.0, size=n_components)
    elif cov_type == "diagonal":
        covs = rng.uniform(0.2, 2.0, size=(n_components, dim))
    else:
        rotations = np.linalg.qr(rng.normal(size=(n_components, dim, dim)))[0]
        eigenvalues = rng.uniform(0.2, 2.0, size=(n_components, dim))
        covs = np.einsum("kij,kj,klj->kil", rotations, eigenvalues, rotations)
    weights = rng.dirichlet(np.ones(n_components))
    return GaussianMixture(means, covs, weights, dtype=np.float64)


mixtures = st.builds(random_mixture, st.integers(0, 2**32 - 1), st.integers(1, 5),
                     st.integers(1, 4), st.sampled_from(COV_TYPES))


def points(mixture, n=16, scale=3.0, seed=0):
    return np.random.default_rng(seed).normal(scale=scale, size=(n, mixture.dim))


# (a) identity 1: the closed-form score is the gradient of log_prob ---------------------------

@pytest.mark.identity
@SETTINGS
@given(mixtures)
def test_score_is_autograd_gradient_of_log_prob(mixture):
    x = points(mixture)
    grad = autograd.elementwise_grad(lambda x: anp.sum(mixture.log_prob(x)))(x)
    score = mixture.score(x)
    assert score.shape == x.shape and score.dtype == np.float64
    np.testing.assert_allclose(score, grad, rtol=1e-10, atol=1e-10 * np.abs(grad).max())


@pytest.mark.identity
@SETTINGS
@given(mixtures)
def test_log_prob_matches_scipy(mixture):
    # the normalisation matters (the quadrature test below compares densities, not scores)
    x = points(mixture)
    components = [scipy.stats.multivariate_normal(m, c).logpdf(x)
                  for m, c in zip(mixture.means, mixture.covs)]
    expected = scipy.special.logsumexp(np.reshape(components, (len(components), -1)), axis=0,
                                       b=mixture.weights[:, None])
    np.testing.assert_allclose(mixture.log_prob(x), expected, rtol=1e-10)


# (b) the sign test ----------------------------------------------------------------------------

@pytest.mark.identity
def test_gaussian_score_is_minus_precision_times_residual():
    mean = np.array([1.0, -2.0, 0.5])
    cov = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 0.5]])
    x = np.random.default_rng(1).normal(size=(10, 3))
    expected = -np.linalg.solve(cov, (x - mean).T).T
    np.testing.assert_allclose(Gaussian(mean, cov).score(x), expected, rtol=1e-12)
    # the score points back towards the mode: a step from mu along e_1 is pulled back
    assert Gaussian(np.zeros(1), 1.0, dtype=np.float64).score(np.array([[2.0]]))[0, 0] == -2.0


# (c) identity 2: perturbed(sigma) is the convolution with N(0, sigma^2), by quadrature --------

def _convolution_quadrature(mixture, sigma, y):
    """p_sigma(y) = int p(x) N(y; x, sigma^2) dx and E[x | y] by the trapezoid rule in 1-D.

    In x the integrand is a sum of Gaussians of std tau_k = s_k sigma / sqrt(s_k^2 + sigma^2)
    >= min(s_k, sigma) / sqrt(2). For a Gaussian of std tau on a grid of step h the trapezoid
    rule's relative error is 2 exp(-2 pi^2 tau^2 / h^2) (Poisson summation), ~1e-34 at
    h = tau_min / 2, and cutting the grid 12 std beyond every centre drops < exp(-72) ~ 1e-31.
    What remains is float64 rounding of a ~1e4-term sum, well under 1e-11 relative.
    """
    s = np.sqrt(mixture.covs[:, 0, 0])
    tau_min = np.min(s * sigma / np.sqrt(s ** 2 + sigma ** 2))
    reach = 12 * max(s.max(), sigma)
    lo = min(mixture.means.min(), y.min()) - reach
    hi = max(mixture.means.max(), y.max()) + reach
    x = np.linspace(lo, hi, int(np.ceil((hi - lo) / (tau_min / 2))) + 1)
    p = np.sum(mixture.weights[:, None] * scipy.stats.norm.pdf(x, mixture.means, s[:, None]), 0)
    kernel = scipy.stats.norm.pdf(y[:, None], x[None, :], sigma)
    density = np.trapezoid(p * kernel, x, axis=1)
    return density, np.trapezoid(x * p * kernel, x, axis=1) / density


@pytest.mark.identity
@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.floats(0.05, 3.0))
def test_perturbed_is_convolution_with_gaussian(seed, n_components, sigma):
    mixture = random_mixture(seed, 1, n_components, "isotropic")
    y = np.linspace(mixture.means.min() - 2, mixture.means.max() + 2, 7)
    density, posterior_mean = _convolution_quadrature(mixture, sigma, y)
    noisy = mixture.perturbed(sigma)
    np.testing.assert_allclose(np.exp(noisy.log_prob(y[:, None])), density, rtol=1e-10)
    # the analytic posterior mean against the same quadrature: E[x | y] = int x p(x) k / p_sigma
    np.testing.assert_allclose(mixture.posterior_mean(y[:, None], sigma)[:, 0], posterior_mean,
                               rtol=1e-10, atol=1e-10)


# (d) Tweedie's formula (Efron 2011) ----------------------------------------------------------

@pytest.mark.identity
@SETTINGS
@given(mixtures, st.floats(0.05, 3.0))
def test_tweedie_posterior_mean_is_denoised_by_perturbed_score(mixture, sigma):
    # posterior_mean is responsibilities x per-component Gaussian posterior means (no score);
    # both sides are O(10) numbers computed in float64 with condition numbers <= ~10
    x_tilde = points(mixture)
    tweedie = x_tilde + sigma ** 2 * mixture.perturbed(sigma).score(x_tilde)
    np.testing.assert_allclose(mixture.posterior_mean(x_tilde, sigma), tweedie, rtol=0, atol=1e-10)


# (e) sampling: moments within standard errors --------------------------------------------------

@pytest.mark.identity
def test_sample_moments_match_mixture_moments():
    mixture = random_mixture(7, 3, 3, "full")
    n = 200_000
    x = mixture.sample(n, backend.default_rng(0))
    assert x.shape == (n, 3) and x.dtype == np.float64
    w, mu = mixture.weights, mixture.means
    mean = w @ mu                                       # E x = sum_k w_k mu_k
    second = np.einsum("k,kij->ij", w, mixture.covs + np.einsum("ki,kj->kij", mu, mu))
    cov = second - np.outer(mean, mean)                 # law of total covariance
    # standard errors: sd(x_i) / sqrt(n) for the mean; for the covariance entries the sd of the
    # products (x_i - m_i)(x_j - m_j) over sqrt(n), estimated from the sample itself (its fourth
    # moments). 5 SE on 9 comparisons: a false alarm has probability ~ 9 * 6e-7.
    centred = x - x.mean(axis=0)
    products = np.einsum("ni,nj->nij", centred, centred)
    assert np.all(np.abs(x.mean(axis=0) - mean) < 5 * x.std(axis=0) / np.sqrt(n))
    assert np.all(np.abs(products.mean(axis=0) - cov) < 5 * products.std(axis=0) / np.sqrt(n))


def test_sample_is_reproducible_and_keeps_dtype():
    mixture = random_mixture(3, 2, 2, "diagonal")
    a = mixture.sample(50, backend.default_rng(5))
    np.testing.assert_array_equal(a, mixture.sample(50, backend.default_rng(5)))
    float32 = GaussianMixture([[0.0, 1.0]], [1.0], [1.0])
    assert float32.dtype == backend.float_dtype
    assert float32.sample(4, backend.default_rng(0)).dtype == backend.float_dtype


# (f) far-out points give finite scores ---------------------------------------------------------

@pytest.mark.identity
@SETTINGS
@given(mixtures, st.integers(0, 2**32 - 1))
def test_far_out_points_give_finite_scores(mixture, seed):
    # at |x| ~ 1e3 every N_k(x) underflows to 0 (exp(-5e5)), so p'/p would be 0/0. In log space
    # the nearest component (in Mahalanobis distance) has responsibility 1 - exp(-O(1e3)), so the
    # score is that component's -Sigma_k^{-1}(x - mu_k) to rounding.
    x = 1e3 * np.random.default_rng(seed).choice([-1.0, 1.0], size=(8, mixture.dim))
    score, log_prob = mixture.score(x), mixture.log_prob(x)
    assert np.all(np.isfinite(score)) and np.all(np.isfinite(log_prob))
    log_joint = np.log(mixture.weights)[:, None] + np.stack(
        [scipy.stats.multivariate_normal(m, c).logpdf(x).reshape(-1)
         for m, c in zip(mixture.means, mixture.covs)])
    nearest = np.argmax(log_joint, axis=0)
    # where the two largest log joints are within 50 the runner-up still counts: skip those
    top_two = np.sort(np.vstack([log_joint, np.full_like(log_joint, -np.inf)]), axis=0)[-2:]
    separated = top_two[1] - top_two[0] > 50
    expected = -np.linalg.solve(mixture.covs[nearest], (x - mixture.means[nearest])[..., None])
    np.testing.assert_allclose(score[separated], expected[separated, :, 0], rtol=1e-9)
    assert np.all(np.isfinite(Gaussian([0.0, 0.0], 1.0).score(np.full((1, 2), 1e3, np.float32))))


def _far_out_case(seed, dim, n_components, cov_type, dtype, distance):
    """K copies of one Gaussian (random weights), so p = N(mu, Sigma) exactly, and points
    ``distance`` standard deviations out: x = mu + distance L u, |u| = 1. Returns the mixture,
    x, and mu, Sigma, x as the mixture holds them, in float64, for the exact answer."""
    one = random_mixture(seed, dim, 1, cov_type)
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(n_components))
    mixture = GaussianMixture(np.repeat(one.means, n_components, 0),
                              np.repeat(one.covs, n_components, 0), weights, dtype=dtype)
    u = rng.normal(size=(8, dim))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    x = (one.means + distance * u @ np.linalg.cholesky(one.covs[0]).T).astype(dtype)
    as64 = lambda a: np.asarray(a, dtype=np.float64)
    return mixture, x, as64(mixture.means[0]), as64(mixture.covs[0]), as64(x)


@pytest.mark.identity
@pytest.mark.parametrize("dtype, distance, rtol", [(np.float32, 1e8, 1e-5),
                                                   (np.float64, 1e150, 2e-14)])
@settings(max_examples=20, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), dim=st.integers(1, 4), n_components=st.integers(1, 4),
       cov_type=st.sampled_from(COV_TYPES))
def test_far_out_score_and_log_prob_are_exact_to_float_precision(dtype, distance, rtol, seed, dim,
                                                                 n_components, cov_type):
    # p = N(mu, Sigma) whatever the weights, so score = -Sigma^{-1}(x - mu) and
    # log p = -|z|^2 / 2 - log det L - (D/2) log 2 pi exactly; here |z| = 1e8 (float32) or 1e150
    # (float64). Each route rounds x - mu, L^{-T} (condition sqrt(kappa(Sigma)) <= 3.2), and two
    # D-term products: a normwise relative error <= ~(2D + 4) u kappa(L) <= 12 x 3.2 u, i.e.
    # 2.3e-6 in float32 (u = 6e-8) and 4.3e-15 in float64 (u = 1.1e-16); log p (twice the relative
    # error of |z|) likewise. The tolerances are 4x that. With responsibilities normalised through
    # exp(a_k - logsumexp a), K equal components in float32 gave K times the score: logsumexp
    # ~ -1e16 absorbs log K.
    mixture, x, mu, cov, x64 = _far_out_case(seed, dim, n_components, cov_type, dtype, distance)
    residual = x64 - mu
    expected_score = -np.linalg.solve(cov, residual.T).T
    mahalanobis2 = np.einsum("ni,ni->n", residual, -expected_score)
    expected_log_prob = (-0.5 * mahalanobis2 - 0.5 * np.linalg.slogdet(cov)[1]
                         - 0.5 * dim * np.log(2 * np.pi))
    score, log_prob = mixture.score(x), mixture.log_prob(x)
    assert score.dtype == dtype and log_prob.dtype == dtype
    assert np.all(np.isfinite(score)) and np.all(np.isfinite(log_prob))
    scale = np.linalg.norm(expected_score, axis=1, keepdims=True)
    assert np.all(np.abs(score - expected_score) <= rtol * scale)
    np.testing.assert_allclose(log_prob, expected_log_prob, rtol=rtol)


@pytest.mark.parametrize("dtype, distance", [(np.float32, 1e20), (np.float64, 1e155)])
def test_beyond_the_float_range_raises_saying_which(dtype, distance):
    # |z|^2 overflows once |z| > sqrt(max float): 1.8e19 in float32, 1.3e154 in float64
    mixture, x, *_ = _far_out_case(0, 2, 2, "full", dtype, distance)
    name = np.dtype(dtype).name
    for method in (mixture.score, mixture.log_prob):
        with pytest.raises(ValueError, match=rf"^x: .*standard deviations .*overflows {name}"):
            method(x)


# (g) bad input: ValueError naming the argument --------------------------------------------------

GOOD = dict(means=np.zeros((2, 2)), covs=np.ones(2), weights=np.array([0.4, 0.6]))


@pytest.mark.parametrize("name, value", [
    ("weights", np.array([0.4, 0.5])),                       # does not sum to 1
    ("weights", np.array([1.5, -0.5])),                      # negative
    ("weights", np.array([0.2, 0.3, 0.5])),                  # K mismatch
    ("weights", np.array([np.nan, 0.6])),
    ("means", np.zeros(2)),                                  # not (K, D)
    ("means", np.array([[0.0, np.inf], [0.0, 0.0]])),
    ("covs", np.ones(3)),                                    # K mismatch
    ("covs", np.ones((2, 3))),                               # D mismatch
    ("covs", np.array([1.0, -1.0])),                         # negative variance
    ("covs", np.array([[1.0, 1.0], [0.0, 1.0]])),            # zero variance
    ("covs", np.array([[[1.0, 2.0], [2.0, 1.0]]] * 2)),      # symmetric, not positive definite
    ("covs", np.array([[[1.0, 0.5], [0.0, 1.0]]] * 2)),      # not symmetric
    ("covs", np.array([[np.nan, 1.0], [1.0, 1.0]])),
])
def test_bad_parameters_raise_naming_the_argument(name, value):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        GaussianMixture(**{**GOOD, name: value}, dtype=np.float64)


@pytest.mark.parametrize("cov", [-1.0, np.array([1.0, 0.0]), np.eye(3), np.ones((2, 2)), None])
def test_bad_gaussian_covariance_raises_naming_cov(cov):
    with pytest.raises((ValueError, TypeError), match="^cov:"):
        Gaussian(np.zeros(2), cov)
    with pytest.raises(ValueError, match=r"^cov: expected a scalar, shape \(2,\) or \(2, 2\)"):
        Gaussian(np.zeros(2), np.eye(3))  # in mean's terms, not the mixture's (K, D, D)


@pytest.mark.parametrize("sigma", [0.0, -1.0, np.nan, np.inf])
def test_bad_sigma_raises(sigma):
    mixture = GaussianMixture(**GOOD, dtype=np.float64)
    with pytest.raises(ValueError, match="^sigma:"):
        mixture.perturbed(sigma)
    with pytest.raises(ValueError, match="^sigma:"):
        mixture.posterior_mean(np.zeros((1, 2)), sigma)


@pytest.mark.parametrize("x", [np.zeros((3, 3)), np.zeros(2), np.zeros((0, 2)),
                               np.array([[np.nan, 0.0]]), np.array([[np.inf, 0.0]])])
def test_bad_points_raise(x):
    mixture = GaussianMixture(**GOOD, dtype=np.float64)
    for method in (mixture.log_prob, mixture.score):
        with pytest.raises(ValueError, match="^x:"):
            method(x)
    with pytest.raises(ValueError, match="^x_tilde:"):
        mixture.posterior_mean(x, 1.0)


@pytest.mark.parametrize("n", [0, -3, 2.5, 5.0, None, "5", True, np.nan])
def test_bad_sample_size_raises_naming_n(n):
    with pytest.raises((ValueError, TypeError), match="^n:"):
        GaussianMixture(**GOOD).sample(n, backend.default_rng(0))


def test_bad_rng_dtype_and_parameter_types_raise_naming_them():
    mixture = GaussianMixture(**GOOD)
    with pytest.raises(TypeError, match="^rng:"):
        mixture.sample(3, np.random.default_rng(0))
    with pytest.raises(TypeError, match="^x:"):
        mixture.score(np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="^x:"):
        mixture.log_prob([[0.0, 0.0]])
    with pytest.raises(TypeError, match="^dtype:"):
        GaussianMixture(**GOOD, dtype=np.int32)
    with pytest.raises(TypeError, match="^means:"):
        GaussianMixture(**{**GOOD, "means": "zeros"})
    with pytest.raises((ValueError, TypeError), match="^sigma:"):
        mixture.perturbed("1.0")
    with pytest.raises(ValueError, match="^mean:"):
        Gaussian(np.zeros((1, 2)), 1.0)
    with pytest.raises(ValueError, match="^mean:"):
        Gaussian([np.nan, 0.0], 1.0)


@pytest.mark.parametrize("name, value", [("means", np.full((2, 2), 1e39)),
                                         ("covs", np.full(2, 1e-80)),   # L^{-1} = 1e40
                                         ("covs", np.full(2, 1e50))])
def test_float32_parameters_beyond_its_range_raise(name, value):
    with pytest.raises(ValueError, match=rf"^{name}: .*overflow float32"):
        GaussianMixture(**{**GOOD, name: value}, dtype=np.float32)
