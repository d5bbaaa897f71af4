"""The three diffusion SDEs (Song et al. 2021 §3.4, App. B), the score's parameterisations, the
continuous-time DSM objective and bits/dim, each against an analytic answer.

A linear SDE dx = a(t) x dt + g(t) dw started at x0 has the Gaussian law N(alpha_t x0, sigma_t²)
with d log alpha_t/dt = a(t) and d[sigma_t²]/dt = 2 a(t) sigma_t² + g(t)² (Särkkä & Solin 2019
eq. 6.2): the closed forms of ``marginal`` are checked against these moment equations, against
the integrals they solve and against a simulation of the SDE itself.
"""
import math

import numpy as np
import pytest
from autograd import grad
from scipy import integrate, stats

import minimalscore as ms
from minimalscore import objectives, sde
from diffusion_targets import MIXTURE, N_SE, pushed

PROCESSES = {"VE": sde.VE(0.01, 10.0), "VP": sde.VP(), "SubVP": sde.SubVP()}


def drift_coefficient(process, t):
    """a(t) in f(x, t) = a(t) x."""
    return float(process.drift(np.ones((1, 1)), t)[0, 0])


@pytest.mark.identity
@pytest.mark.parametrize("name", PROCESSES)
def test_marginal_solves_the_moment_equations(name):
    """d log alpha/dt = a and d sigma²/dt = 2 a sigma² + g², by autograd at several t: exact
    derivatives, so only float64 rounding (1e-9 relative) is allowed."""
    process = PROCESSES[name]
    log_alpha = lambda t: np.log(process.marginal(t)[0] + 0.0 * t)
    var = lambda t: process.marginal(t)[1] ** 2
    for t in (1e-3, 0.2, 0.5, 0.9, 1.0):
        a, g2 = drift_coefficient(process, t), process.diffusion(t) ** 2
        assert grad(log_alpha)(t) == pytest.approx(a, rel=1e-9, abs=1e-12)
        assert grad(var)(t) == pytest.approx(2 * a * var(t) + g2, rel=1e-9)


@pytest.mark.identity
def test_closed_forms():
    """VP: alpha_t = exp(-½∫_0^t β), sigma_t² = 1 - alpha_t²; sub-VP: the same alpha_t and
    sigma_t² = (1 - alpha_t²)²; VE: sigma_t = σ_min (σ_max/σ_min)^t (Song et al. 2021 App. B, C),
    the integral by adaptive quadrature of g(t)² = β(t) (error < 1e-12)."""
    vp, subvp, ve = PROCESSES["VP"], PROCESSES["SubVP"], PROCESSES["VE"]
    for t in (1e-5, 0.1, 0.5, 1.0):
        alpha = math.exp(-0.5 * integrate.quad(lambda s: vp.diffusion(s) ** 2, 0, t, epsabs=1e-13)[0])
        assert vp.marginal(t) == pytest.approx((alpha, math.sqrt(1 - alpha ** 2)), rel=1e-9)
        assert subvp.marginal(t) == pytest.approx((alpha, 1 - alpha ** 2), rel=1e-9)
        assert ve.marginal(t) == pytest.approx((1.0, 0.01 * 1000 ** t), rel=1e-12)
    assert vp.t_min == subvp.t_min == 1e-5 and ve.t_min == 0.0


def forward_moments(process, x0, n_steps):
    """Euler-Maruyama's exact mean and variance for the forward linear SDE from t_min to 1 (the
    recursion m' = (1 + aΔt) m, v' = (1 + aΔt)² v + g²Δt), recorded at t = 0.25, 0.5, 1."""
    dt = (1 - process.t_min) / n_steps
    alpha, sigma = process.marginal(process.t_min)
    m, v, out = alpha * x0, sigma ** 2, {}
    for k in range(n_steps):
        t = process.t_min + k * dt
        c = 1 + drift_coefficient(process, t) * dt
        m, v = c * m, c ** 2 * v + process.diffusion(t) ** 2 * dt
        out[k + 1] = m, v
    return out


@pytest.mark.identity
@pytest.mark.parametrize("name", PROCESSES)
def test_marginal_matches_a_simulation_of_the_forward_sde(name):
    """20,000 Euler-Maruyama paths of the forward SDE from p_{t_min}(. | x0), 400 steps, through
    ``drift`` and ``diffusion``: at t = 0.25, 0.5, 1 the sample mean and variance equal the exact
    Euler-Maruyama moments (the recursion above) within N_SE standard errors, and those equal
    alpha_t x0 and sigma_t² up to Euler's first-order bias, which halves as steps double: at 400
    steps VE's variance is 1.7% low (the left Riemann sum of g² ∝ e^{2ct}, c = log(σ_max/σ_min),
    is low by ≈ cΔt), VP's and sub-VP's 1.2% high at t = 1; means within 0.6% of sigma_t."""
    process, x0, n, n_steps, rng = PROCESSES[name], 1.5, 20000, 400, ms.backend.default_rng(3)
    alpha, sigma = process.marginal(process.t_min)
    x = alpha * x0 + sigma * rng.normal((n, 1), dtype=np.float64)
    dt = (1 - process.t_min) / n_steps
    em = forward_moments(process, x0, n_steps)
    em_fine = forward_moments(process, x0, 2 * n_steps)
    for k in range(n_steps):
        t = process.t_min + k * dt
        z = rng.normal((n, 1), dtype=np.float64)
        x = x + process.drift(x, t) * dt + process.diffusion(t) * math.sqrt(dt) * z
        if k + 1 in (n_steps // 4, n_steps // 2, n_steps):
            m, v = em[k + 1]
            assert abs(float(x.mean()) - m) < N_SE * math.sqrt(v / n)
            assert abs(float(x.var()) - v) < N_SE * v * math.sqrt(2 / n)
            alpha_t, sigma_t = process.marginal(process.t_min + (k + 1) * dt)
            bias = abs(v / sigma_t ** 2 - 1), abs(em_fine[2 * (k + 1)][1] / sigma_t ** 2 - 1)
            assert bias[0] < 0.018 and bias[1] < 0.55 * bias[0]
            assert abs(m - alpha_t * x0) <= 6e-3 * sigma_t


# ------------------------------------------------------------ the score's parameterisations
def sigma_net(x, sigma):
    """A perfect noise-conditional (NCSN-style) net for the mixture: ∇log(p * N(0, σ²))."""
    return MIXTURE.perturbed(float(sigma[0])).score(x)


POINTS = np.array([[-2.0, 0.5], [0.0, 0.0], [1.0, 1.0], [2.5, -1.0]])


@pytest.mark.identity
@pytest.mark.parametrize("name", PROCESSES)
def test_sigma_conditioned_net_gives_the_score_of_p_t(name):
    """s_t(x) = s_σ(x/alpha_t)/alpha_t with σ = sigma_t/alpha_t is the exact score of p_t, the
    mixture scaled by alpha_t and perturbed by sigma_t (closed form): equal to float64 rounding."""
    process = PROCESSES[name]
    score_t = sde.sigma_conditioned(sigma_net, process)
    for t in (process.t_min, 0.3, 0.8):
        expected = pushed(process, t).score(POINTS)
        np.testing.assert_allclose(score_t(POINTS, np.full(4, t)), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.identity
@pytest.mark.parametrize("name", PROCESSES)
def test_eps_and_x0_predictions_give_the_score(name):
    """Tweedie: E[x0 | x_t] from the mixture's posterior mean (computed by Gaussian conditioning,
    not from the score) gives s = (alpha_t x̂0 - x)/sigma_t², and E[ε | x_t] = (x - alpha_t x̂0)/sigma_t
    gives s = -ε̂/sigma_t: both equal the closed-form score of p_t to rounding."""
    process = PROCESSES[name]

    def x0_model(x, t):
        alpha, sigma = process.marginal(float(t[0]))
        return MIXTURE.posterior_mean(x / alpha, sigma / alpha)

    def eps_model(x, t):
        alpha, sigma = process.marginal(float(t[0]))
        return (x - alpha * x0_model(x, t)) / sigma

    for t in (0.05, 0.5):
        expected = pushed(process, t).score(POINTS)
        ts = np.full(4, t)
        for score in (sde.x0_to_score(x0_model, process), sde.eps_to_score(eps_model, process)):
            np.testing.assert_allclose(score(POINTS, ts), expected, rtol=1e-8, atol=1e-10)


# ------------------------------------------------------------ continuous-time DSM
def gaussian_dsm_value(process, s2, dim, weighting):
    """½ E_t λ(t) E||s(x_t) + z/sigma_t||² for data N(0, s2 I) and the exact score s = -x/V_t,
    V_t = alpha_t² s2 + sigma_t²: per dimension E||sigma_t s + z||² = 1 - sigma_t²/V_t, so the
    value is ½ D E_t[w(t) (1 - sigma_t²/V_t)/sigma_t²], w = sigma_t² or g(t)², by quadrature."""
    def integrand(t):
        alpha, sigma = process.marginal(t)
        w = sigma ** 2 if weighting == "sigma2" else process.diffusion(t) ** 2
        return w * (1 - sigma ** 2 / (alpha ** 2 * s2 + sigma ** 2)) / sigma ** 2
    t_min = process.t_min
    return 0.5 * dim * integrate.quad(integrand, t_min, 1, limit=200)[0] / (1 - t_min)


@pytest.mark.identity
@pytest.mark.parametrize("name, weighting", [("VE", "sigma2"), ("VE", "likelihood"), ("VP", "sigma2"),
                                             ("SubVP", "sigma2")])
def test_dsm_sde_with_the_exact_score_has_its_analytic_value(name, weighting):
    """The loss at the exact score of N(0, s2 I) data equals its closed form (above): 40 batches
    of 1000, mean within N_SE standard errors of the batch means. (VP's and sub-VP's likelihood
    weighting g²/sigma_t² ~ 1/t makes the per-example variance ~ 1/t_min: not a fast test.)"""
    process, s2, dim, rng = PROCESSES[name], 0.5, 2, ms.backend.default_rng(11)

    def exact(x, t):
        alpha, sigma = process.marginal(t)
        return -x / (alpha ** 2 * s2 + sigma ** 2)[:, None]

    batches = [math.sqrt(s2) * rng.normal((1000, dim), dtype=np.float64) for _ in range(40)]
    values = [float(objectives.dsm_sde(exact, process, x, rng, weighting=weighting)) for x in batches]
    se = np.std(values, ddof=1) / math.sqrt(40)
    assert abs(np.mean(values) - gaussian_dsm_value(process, s2, dim, weighting)) < N_SE * se


@pytest.mark.identity
def test_ddpm_simple_loss_is_sigma2_weighted_dsm():
    """‖ε - ε̂‖² = ‖sigma_t s + z‖² with s = -ε̂/sigma_t: Ho et al.'s simple loss is twice the
    sigma_t²-weighted DSM (the ½ of our DSM convention) for the same draws of t, z, and so are
    its parameter gradients; equal to float64 rounding."""
    process, x = PROCESSES["VP"], np.random.default_rng(0).normal(size=(64, 3))
    eps_model = lambda w: (lambda y, t: np.tanh(y @ w) * (1 + t[:, None]))
    w0 = np.random.default_rng(1).normal(size=(3, 3))
    simple = lambda w: objectives.ddpm_simple(eps_model(w), process, x, ms.backend.default_rng(5))
    dsm = lambda w: objectives.dsm_sde(sde.eps_to_score(eps_model(w), process), process, x,
                                       ms.backend.default_rng(5))
    assert simple(w0) == pytest.approx(2 * dsm(w0), rel=1e-12)
    np.testing.assert_allclose(grad(simple)(w0), 2 * grad(dsm)(w0), rtol=1e-10)


# ------------------------------------------------------------ bits per dimension
def dequantized_log_likelihood(k, n_bins, mean, std, width=1.0, offset=0.0):
    """E_u log p(y), y = offset + (k + u) width/n_bins, for a factorised Gaussian p, by 20-point
    Gauss-Legendre per coordinate (log p is a quadratic in u: the rule is exact)."""
    nodes, weights = np.polynomial.legendre.leggauss(20)
    u = 0.5 * (nodes + 1)
    y = offset + (k[:, None] + u[None]) * width / n_bins
    return float((0.5 * weights[None] * stats.norm.logpdf(y, mean[:, None], std[:, None])).sum())


@pytest.mark.identity
@pytest.mark.parametrize("n_bins", [2, 256])
def test_bits_per_dim_against_direct_integration(n_bins):
    """bpd = -(E_u log p(y) - D log n_bins)/(D log 2) is the dequantized density of the integer
    coordinates k + u, -E_u log2[p(y)/n_bins^D]/D, integrated directly, and it bounds from above
    the exact discrete -log2 P(k)/D, P(k) the Gaussian mass of the cell (normal CDF). The Jensen
    gap is Var_u(log p)/2 to leading order, Σ_d a_d²/24 nats with a_d = (y_d - μ_d)/(s_d² n_bins)
    the slope of log p across the cell (y_d its centre): on 256 levels it matches that to 10%
    (a few 1e-4 bits); the same data on [-1, 1] gives the same number."""
    mean, std, dim = np.array([0.3, 0.6, 0.5]), np.array([0.2, 0.15, 0.4]), 3
    rng = np.random.default_rng(0)
    for k in rng.integers(0, n_bins, size=(4, dim)):
        ll = dequantized_log_likelihood(k, n_bins, mean, std)
        nodes, weights = np.polynomial.legendre.leggauss(20)
        z = k[:, None] + 0.5 * (nodes[None] + 1)  # integer coordinates, density p(z/n)/n per axis
        direct = -(0.5 * weights[None] * (stats.norm.logpdf(z / n_bins, mean[:, None], std[:, None])
                                          - math.log(n_bins))).sum() / (dim * math.log(2))
        bpd = sde.bits_per_dim(ll, dim, n_bins)
        assert bpd == pytest.approx(direct, rel=1e-12)
        cells = stats.norm.cdf((k + 1) / n_bins, mean, std) - stats.norm.cdf(k / n_bins, mean, std)
        exact = -np.log2(cells).sum() / dim
        assert bpd >= exact - 1e-12
        if n_bins == 256:
            slope = ((k + 0.5) / n_bins - mean) / (std ** 2 * n_bins)
            predicted_gap = (slope ** 2 / 24).sum() / (dim * math.log(2))
            assert abs((bpd - exact) - predicted_gap) < 0.1 * predicted_gap
        ll_pm1 = dequantized_log_likelihood(k, n_bins, 2 * mean - 1, 2 * std, width=2.0, offset=-1.0)
        assert sde.bits_per_dim(ll_pm1, dim, n_bins, data_range=2.0) == pytest.approx(bpd, rel=1e-12)


@pytest.mark.identity
@pytest.mark.parametrize("name", PROCESSES)
def test_noise_conditioned_inverts_sigma_conditioned(name):
    """A time-conditioned net made noise-conditioned answers s_σ = ∇log(p * N(0, σ²)) at any σ in
    the process's range (bisection to float64 resolution: 1e-9 relative), and the round trip
    through sigma_conditioned returns the time-conditioned score."""
    process = PROCESSES[name]
    score_t = sde.sigma_conditioned(sigma_net, process)
    score_sigma = sde.noise_conditioned(score_t, process)
    for sigma in (0.05, 0.7, 3.0):
        expected = MIXTURE.perturbed(sigma).score(POINTS)
        np.testing.assert_allclose(score_sigma(POINTS, np.full(4, sigma)), expected, rtol=1e-8, atol=1e-10)
    round_trip = sde.sigma_conditioned(score_sigma, process)
    for t in (0.2, 0.6):
        np.testing.assert_allclose(round_trip(POINTS, np.full(4, t)), score_t(POINTS, np.full(4, t)),
                                   rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", PROCESSES)
def test_members_check_their_arguments(name):
    """t is a number in [0, 1] or one finite time per example in [0, 1]; x a finite batch; the
    prior's shape positive integers and its rng the backend's: each refusal names the argument."""
    process, x = PROCESSES[name], np.ones((3, 2))
    for bad in (-0.5, 1.5, math.nan, np.array([0.5, math.nan, 0.5]), np.array([0.5, 1.5, 0.5]), None):
        for member in (process.diffusion, process.marginal, lambda t: process.drift(x, t)):
            with pytest.raises((ValueError, TypeError), match=r"^t: "):
                member(bad)
    with pytest.raises(ValueError, match=r"^t: .*shape \(3,\)"):
        process.drift(x, np.full(2, 0.5))
    with pytest.raises(ValueError, match=r"^x: "):
        process.prior_log_prob(np.array([[0.0, math.inf]]))
    with pytest.raises(ValueError, match=r"^shape\[0\]: "):
        process.prior_sample((0, 2), ms.backend.default_rng(0))
    with pytest.raises(TypeError, match=r"^rng: "):
        process.prior_sample((3, 2), np.random.default_rng(0))
    assert process.drift(x, np.full(3, 0.5)).shape == x.shape
    assert process.prior_log_prob(process.prior_sample((3, 2), ms.backend.default_rng(0))).shape == (3,)
