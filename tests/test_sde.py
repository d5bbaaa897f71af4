"""The VE-SDE samplers and the probability-flow likelihood against analytic answers.

Data N(MU, S2 I): its σ-blurred score -(x - MU)/(S2 + σ²) is exact and linear, so every
sampler step is affine and its output's mean and variance follow from a scalar recursion
(discretisation error included); the probability-flow ODE is solved in closed form,
|x(t) - MU| ∝ √(S2 + σ(t)²). Monte Carlo output is compared with the prediction at N_SE standard
errors of independent chains, and the prediction's bias against the data is bounded separately.
"""
import math

import numpy as np
import pytest
from autograd import grad
from hypothesis import given, settings, strategies as st

import minimalscore as ms
from minimalscore import sde

N_SE = 4
MU, S2 = np.array([1.0, -2.0]), 0.25
SIGMA_MIN, SIGMA_MAX = 0.01, 10.0
VE = sde.VE(SIGMA_MIN, SIGMA_MAX)


def sigma_score(x, sigma):
    return -(x - MU) / (S2 + sigma[:, None] ** 2)


perturbed_score = sde.sigma_conditioned(sigma_score, VE)


def sigma_at(t):
    return VE.marginal(t)[1]


def g_squared(t):
    return VE.diffusion(t) ** 2


def se_var(var, n):
    """Standard error of a Gaussian sample variance: var sqrt(2/n)."""
    return var * math.sqrt(2 / n)


def exact_prior_draws(n, rng):
    """Draws of the exact p_1 = N(MU, (S2 + σ_max²) I), so only the discretisation is tested."""
    return MU + rng.normal((n, 2), dtype=np.float64) * math.sqrt(S2 + SIGMA_MAX ** 2)


def gauss_log_prob(y, mean, var):
    """log N(y; mean, var I) in 2-D."""
    return -0.5 * np.sum((y - mean) ** 2, axis=1) / var - math.log(2 * math.pi * var)


@pytest.mark.identity
def test_g_squared_is_the_derivative_of_sigma_squared():
    """g(t)² = d[σ(t)²]/dt (Song et al. 2021 eq. 30): checked with autograd at a few t."""
    d_sigma2 = grad(lambda t: sigma_at(t) ** 2)
    for t in (0.0, 0.3, 1.0):
        assert math.isclose(d_sigma2(t), g_squared(t), rel_tol=1e-12)
    assert math.isclose(sigma_at(0.0), SIGMA_MIN)
    assert math.isclose(sigma_at(1.0), SIGMA_MAX)


# ------------------------------------------------------------ 3. reverse SDE and predictor-corrector
def predicted_variance(n_steps, snr=None):
    """The exact per-coordinate variance after reverse Euler-Maruyama from p_1 (the mean stays
    MU): a step from t is x' - μ = (1 - a)(x - μ) + √(g²Δt) z with a = g(t)²Δt/(S2 + σ(t)²), the
    last without noise. With ``snr`` each step is preceded by the corrector, x + (ε/2)s + √ε z
    with ε = 4 snr² (‖z‖/‖s‖)² = 4 snr² V²/v, V = S2 + σ(t)² (norms of Gaussians centred at μ:
    the batch averages of ‖z‖ and ‖x - μ‖ are √1 and √v times the same chi mean)."""
    v, dt = S2 + SIGMA_MAX ** 2, 1.0 / n_steps
    for i in range(n_steps):
        t = 1.0 - i * dt
        big_v = S2 + sigma_at(t) ** 2
        g2dt = g_squared(t) * dt
        if snr is not None:
            eps = 4 * snr ** 2 * big_v ** 2 / v
            v = (1 - eps / (2 * big_v)) ** 2 * v + eps
        v = (1 - g2dt / big_v) ** 2 * v + (g2dt if i < n_steps - 1 else 0.0)
    return v


@pytest.mark.identity
def test_reverse_sde_matches_the_exact_recursion_and_the_data():
    n, rng = 20000, ms.backend.default_rng(4)
    x = sde.reverse_sde(perturbed_score, VE, exact_prior_draws(n, rng), 200, rng)
    v_pred = predicted_variance(200)
    assert np.all(np.abs(x.mean(0) - MU) < N_SE * math.sqrt(v_pred / n))
    assert np.all(np.abs(x.var(0) - v_pred) < N_SE * se_var(v_pred, n))
    # Euler-Maruyama's own bias at 200 steps, exact from the recursion: 0.03% (0.14% at 100)
    assert abs(v_pred / (S2 + SIGMA_MIN ** 2) - 1) < 0.001


@pytest.mark.identity
def test_predictor_corrector_matches_the_exact_recursion_and_the_data():
    n, rng = 20000, ms.backend.default_rng(5)
    x = sde.predictor_corrector(perturbed_score, VE, exact_prior_draws(n, rng), 100, rng, snr=0.16)
    v_pred = predicted_variance(100, snr=0.16)
    assert np.all(np.abs(x.mean(0) - MU) < N_SE * math.sqrt(v_pred / n))
    assert np.all(np.abs(x.var(0) - v_pred) < N_SE * se_var(v_pred, n))
    # The corrector is ULA, and its snr-set step inflates the variance it targets by 1 + snr²
    # (next test): the output is the data's variance times 1.0256, within 0.1% of that.
    assert abs(v_pred / (S2 + SIGMA_MIN ** 2) - (1 + 0.16 ** 2)) < 0.001


@pytest.mark.identity
def test_langevin_corrector_stationary_variance_is_one_plus_snr_squared():
    """At fixed t on N(0, V I) the corrector is ULA with ε = 4 r² V²/v (v the chain's variance).
    Its fixed point v = (1 - ε/(2V))² v + ε solves to v = V (1 + r²): 1.25 V at r = 0.5. Had the
    released code's a = 2 (r‖z‖/‖s‖)² been used as our ε (a convention slip), it would be
    V (1 + r²/2) = 1.125 V, 30 se away. 200,000 coordinates: se = 1.25 V √(2/2e5) = 0.004 V;
    60 steps contract the start's deviation by ≤ 0.36^60."""
    n, dim, snr, t, rng = 4000, 50, 0.5, 0.3, ms.backend.default_rng(6)
    big_v = sigma_at(t) ** 2
    x = rng.normal((n, dim), dtype=np.float64) * math.sqrt(big_v)
    for _ in range(60):
        x = sde.langevin_corrector(lambda y, s: -y / big_v, x, t, snr, rng)
    expected = big_v * (1 + snr ** 2)
    assert abs(float(x.var()) - expected) < N_SE * se_var(expected, n * dim)


# ------------------------------------------------------------ the probability-flow ODE
@pytest.mark.identity
@pytest.mark.parametrize("method, order", [("rk4", 4), ("heun", 2)])
def test_probability_flow_carries_p1_to_p0_with_the_integrators_order(method, order):
    """dx/dt = ½ g²(x - μ)/(S2 + σ²) gives |x(t) - μ| ∝ √(S2 + σ(t)²): the flow from t = 1 to 0
    scales x - μ by c = √((S2 + σ_min²)/(S2 + σ_max²)). The integrator's error in c falls by
    2^order when the steps double (asymptotically; asserted at 2^order / 2)."""
    c_exact = math.sqrt((S2 + SIGMA_MIN ** 2) / (S2 + SIGMA_MAX ** 2))
    unit = MU + np.array([[1.0, 0.0]])
    steps = (25, 50) if method == "rk4" else (50, 100)
    flow = lambda x, k: sde.probability_flow(perturbed_score, VE, x, k, method=method)
    c = [float(flow(unit, k)[0, 0] - MU[0]) for k in steps]
    errors = [abs(ck / c_exact - 1) for ck in c]
    assert errors[0] / errors[1] > 2 ** order / 2
    assert errors[1] < (1e-5 if method == "rk4" else 0.01)  # measured 6.5e-6 (RK4, 50 steps), 1.9e-3 (Heun, 100)
    # samples of p_1 come out with mean MU and variance c² (S2 + σ_max²), the data's up to that
    # error (the numerical flow is linear too, so c from one point predicts every point)
    n, rng = 20000, ms.backend.default_rng(7)
    x = flow(exact_prior_draws(n, rng), steps[1])
    v_pred = c[1] ** 2 * (S2 + SIGMA_MAX ** 2)
    assert np.all(np.abs(x.mean(0) - MU) < N_SE * math.sqrt(v_pred / n))
    assert np.all(np.abs(x.var(0) - v_pred) < N_SE * se_var(v_pred, n))


@pytest.mark.identity
def test_probability_flow_log_likelihood_is_exact_up_to_rk4_error():
    """Instantaneous change of variables with the exact p_1 = N(MU, S2 + σ_max²) returns
    log N(x; MU, S2 + σ_min²), the data blurred by σ_min; RK4's error falls ~16x per halving."""
    x = np.stack([np.linspace(-1, 3, 7), np.linspace(-4, 0, 7)], axis=1)
    var0, var1 = S2 + SIGMA_MIN ** 2, S2 + SIGMA_MAX ** 2
    prior = lambda y: gauss_log_prob(y, MU, var1)
    exact = gauss_log_prob(x, MU, var0)
    errors = [np.abs(sde.log_likelihood(perturbed_score, VE, x, k, prior_log_prob=prior)
                     - exact).max() for k in (25, 50)]
    assert errors[1] < 1e-3  # measured 1.7e-4 (2.5e-3 at 25 steps)
    assert errors[0] / errors[1] > 8
    heun = [np.abs(sde.log_likelihood(perturbed_score, VE, x, k, method="heun",
                                      prior_log_prob=prior) - exact).max() for k in (50, 100)]
    assert heun[0] / heun[1] > 2  # second order: ~4x per halving (measured 0.21 -> 0.055)


@pytest.mark.identity
def test_log_likelihood_default_prior_is_the_ve_prior():
    """With the default prior N(0, σ_max² I) the result differs from the exact-prior one by
    log N(x₁; 0, σ_max²) - log N(x₁; MU, S2 + σ_max²) at the ODE's endpoint, known in closed form
    x₁ = MU + (x - MU) √((S2 + σ_max²)/(S2 + σ_min²)); RK4's error in x₁ (~1e-5) bounds the gap."""
    x = np.stack([np.linspace(-1, 3, 7), np.linspace(-4, 0, 7)], axis=1)
    var0, var1 = S2 + SIGMA_MIN ** 2, S2 + SIGMA_MAX ** 2
    with_exact = sde.log_likelihood(perturbed_score, VE, x, 50,
                                    prior_log_prob=lambda y: gauss_log_prob(y, MU, var1))
    with_default = sde.log_likelihood(perturbed_score, VE, x, 50)
    x1 = MU + (x - MU) * math.sqrt(var1 / var0)
    gap = gauss_log_prob(x1, 0.0, SIGMA_MAX ** 2) - gauss_log_prob(x1, MU, var1)
    np.testing.assert_allclose(with_default - with_exact, gap, atol=1e-4)


@pytest.mark.identity
def test_hutchinson_log_likelihood_is_unbiased():
    """vᵀ(∂f/∂x)v with E[vvᵀ] = I is unbiased for the trace; over 60 independent runs the mean
    estimate is within N_SE se (se from the runs themselves) plus RK4's error of the exact
    value."""
    x = np.stack([np.linspace(-1, 3, 7), np.linspace(-4, 0, 7)], axis=1)
    var0, var1 = S2 + SIGMA_MIN ** 2, S2 + SIGMA_MAX ** 2
    prior = lambda y: gauss_log_prob(y, MU, var1)
    exact = gauss_log_prob(x, MU, var0)
    rk4_error = np.abs(sde.log_likelihood(perturbed_score, VE, x, 25, prior_log_prob=prior)
                       - exact).max()
    rng = ms.backend.default_rng(8)
    estimates = np.array([sde.log_likelihood(perturbed_score, VE, x, 25, rng=rng, prior_log_prob=prior)
                          for _ in range(60)])
    se = estimates.std(0, ddof=1) / math.sqrt(60)
    assert np.all(se > 0)  # a real estimator, not the exact trace
    assert np.all(np.abs(estimates.mean(0) - exact) < N_SE * se + rk4_error)


# ------------------------------------------------------------ any shape, float32, bad arguments
@settings(max_examples=8, deadline=None)
@given(shape=st.lists(st.integers(1, 3), min_size=2, max_size=4), seed=st.integers(0, 2 ** 16),
       which=st.sampled_from(["VE", "VP", "SubVP"]))
def test_sde_samplers_keep_any_shape_and_float32(shape, seed, which):
    rng = ms.backend.default_rng(seed)
    x = rng.normal(tuple(shape))
    process = {"VE": sde.VE(0.1, 5.0), "VP": sde.VP(), "SubVP": sde.SubVP()}[which]
    net = lambda y, s: -y / (1 + s.reshape((-1,) + (1,) * (y.ndim - 1)) ** 2)  # N(0, I) blurred by s
    score = sde.sigma_conditioned(net, process)
    outs = [sde.reverse_sde(score, process, x, 3, rng),
            sde.predictor_corrector(score, process, x, 3, rng, n_corrector=2),
            sde.probability_flow(score, process, x, 3, method="heun")]
    for out in outs:
        assert out.shape == x.shape and out.dtype == np.float32
    for probe_rng in (None, rng):
        ll = sde.log_likelihood(score, process, x, 2, rng=probe_rng)
        assert ll.shape == (shape[0],) and ll.dtype == np.float32 and np.all(np.isfinite(ll))


@pytest.mark.identity
def test_log_likelihood_of_any_shape_is_exact_for_gaussian_data():
    """Image-shaped x (N, 1, 2, 2) with N(0, I) data: the per-example log-likelihood is the
    4-D Gaussian log N(x; 0, (1 + σ_min²) I), so flattening is done right (float64, RK4)."""
    x = np.random.default_rng(0).normal(size=(5, 1, 2, 2))
    process = sde.VE(0.1, 5.0)
    score = sde.sigma_conditioned(lambda y, s: -y / (1 + s.reshape(-1, 1, 1, 1) ** 2), process)
    prior = lambda y: (-0.5 * (y.reshape(5, -1) ** 2).sum(1) / (1 + 25.0) - 2 * math.log(2 * math.pi * 26.0))
    ll = sde.log_likelihood(score, process, x, 40, prior_log_prob=prior)
    var0 = 1 + 0.1 ** 2
    exact = -0.5 * (x.reshape(5, -1) ** 2).sum(1) / var0 - 2 * math.log(2 * math.pi * var0)
    np.testing.assert_allclose(ll, exact, atol=1e-4)


def test_bad_arguments_name_the_argument():
    rng, x, s = ms.backend.default_rng(0), np.zeros((4, 2), np.float32), (lambda y, t: -y)
    ve = sde.VE(0.1, 1.0)
    cases = {
        "x_T": [lambda: sde.reverse_sde(s, ve, np.array([[np.nan, 0.0]]), 5, rng),
                lambda: sde.probability_flow(s, ve, np.zeros(3), 5)],
        "x": [lambda: sde.log_likelihood(s, ve, np.array([[np.inf, 0.0]]), 5)],
        "sigma_min": [lambda: sde.VE(0.0, 1.0), lambda: sde.VE(2.0, 1.0)],
        "beta_min": [lambda: sde.VP(-1.0, 1.0), lambda: sde.SubVP(3.0, 1.0)],
        "n_steps": [lambda: sde.reverse_sde(s, ve, x, 0, rng)],
        "snr": [lambda: sde.predictor_corrector(s, ve, x, 5, rng, snr=0.0)],
        "n_corrector": [lambda: sde.predictor_corrector(s, ve, x, 5, rng, n_corrector=-1)],
        "method": [lambda: sde.probability_flow(s, ve, x, 5, method="midpoint"),
                   lambda: sde.log_likelihood(s, ve, x, 5, method="rk45")],
        "score": [lambda: sde.reverse_sde(lambda y, t: y[:, :1], ve, x, 5, rng)],
        "betas": [lambda: sde.ddpm_sample(s, np.array([0.1, 1.5]), x, rng),
                  lambda: sde.ddim_sample(s, np.zeros((2, 2)), x, 1)],
    }
    for name, calls in cases.items():
        for call in calls:
            with pytest.raises(ValueError, match=f"^{name}:"):
                call()
    for call in (lambda: sde.probability_flow(s, ve, x, 2.5), lambda: sde.reverse_sde(s, "VE", x, 5, rng)):
        with pytest.raises(TypeError):
            call()


def test_noise_conditional_nets_are_sampled_by_the_sde_samplers():
    """The noise-conditional MLP takes any σ (it is conditioned on log σ), so sigma_conditioned
    makes it a score(x, t) for every sampler and process. NCSN interpolates its per-level norm
    tables in log σ between its L trained levels (ncsn.level_weights), so every sampler, the
    probability flow's intermediate stages included, can query it off its training grid."""
    rng = ms.backend.default_rng(0)
    params = ms.models.noise_conditional_mlp_init(rng, 2, hidden=(16,))
    net = lambda x, sigma: ms.models.noise_conditional_mlp(params, x, sigma)
    x = rng.normal((6, 2))
    for process in (sde.VE(0.01, 5.0), sde.VP(), sde.SubVP()):
        score = sde.sigma_conditioned(net, process)
        for out in (sde.reverse_sde(score, process, x, 3, rng),
                    sde.predictor_corrector(score, process, x, 3, rng),
                    sde.probability_flow(score, process, x, 3), sde.log_likelihood(score, process, x, 2)):
            assert out.shape[0] == 6 and np.all(np.isfinite(out))
    sigmas = ms.schedule.geometric_sigmas(1.0, 0.01, 4)
    ncsn_params = ms.ncsn.init(rng, 4, channels=4)
    ncsn_net = lambda x, sigma: ms.ncsn.apply(ncsn_params, x, sigma, sigmas)
    process = sde.VE(float(sigmas[-1]), float(sigmas[0]))
    images = rng.normal((2, 1, 8, 8))
    score = sde.sigma_conditioned(ncsn_net, process)
    for out in (sde.reverse_sde(score, process, images, 3, rng),
                sde.predictor_corrector(score, process, images, 3, rng),
                sde.probability_flow(score, process, images, 3)):
        assert out.shape == images.shape and np.all(np.isfinite(out))


@pytest.mark.parametrize("sampler", ["reverse_sde", "predictor_corrector"])
def test_last_predictor_step_is_noise_free(sampler):
    """The last Euler-Maruyama step returns its mean: with n_corrector = 0 and one step the
    output does not depend on the random stream, with two steps it does."""
    x = np.random.default_rng(0).normal(size=(3, 2))
    process, score = sde.VP(), lambda y, t: -y

    def run(n_steps, seed):
        rng = ms.backend.default_rng(seed)
        if sampler == "reverse_sde":
            return sde.reverse_sde(score, process, x, n_steps, rng)
        return sde.predictor_corrector(score, process, x, n_steps, rng, n_corrector=0)

    np.testing.assert_array_equal(run(1, 0), run(1, 1))
    assert np.abs(run(2, 0) - run(2, 1)).max() > 0.1


@pytest.mark.identity
def test_reverse_diffusion_predictor_is_song_et_al_alg_2_and_3():
    """One noise-free reverse-diffusion step from t to t - Δt is Alg. 2's VE update
    x + (σ_t² - σ_s²) s and Alg. 3's VP update (2 - √(1 - β)) x + β s with 1 - β = (alpha_t/alpha_s)²
    (Song et al. 2021 App. G), to float64 rounding. On Gaussian data each VE step is
    x' - μ = (1 - d/V)(x - μ) + √d z, d = σ_t² - σ_s², V = S2 + σ_t²: the sampler's variance matches
    that recursion within N_SE se, and the recursion's bias is first order (+7.2% at 100 steps,
    +3.5% at 200: the score is frozen at the step's noisy end, where Euler-Maruyama's errors
    nearly cancel)."""
    x, score = np.array([[0.7, -0.2]]), lambda y, t: -0.8 * y
    for process in (VE, sde.VP()):
        dt = (1 - process.t_min) / 1  # one step: from t = 1 down to t_min, noise-free
        out = sde.predictor_corrector(score, process, x, 1, ms.backend.default_rng(0), n_corrector=0,
                                      predictor="reverse_diffusion")
        (alpha_t, sigma_t), (alpha_s, sigma_s) = process.marginal(1.0), process.marginal(1.0 - dt)
        if process is VE:
            expected = x + (sigma_t ** 2 - sigma_s ** 2) * score(x, None)
        else:
            beta = 1 - (alpha_t / alpha_s) ** 2
            expected = (2 - math.sqrt(1 - beta)) * x + beta * score(x, None)
        np.testing.assert_allclose(out, expected, rtol=1e-12)
    n, rng = 20000, ms.backend.default_rng(9)
    y = sde.predictor_corrector(perturbed_score, VE, exact_prior_draws(n, rng), 100, rng, n_corrector=0,
                                predictor="reverse_diffusion")

    def recursion(n_steps):
        v, dt = S2 + SIGMA_MAX ** 2, 1.0 / n_steps
        for i in range(n_steps):
            d = sigma_at(1 - i * dt) ** 2 - sigma_at(1 - (i + 1) * dt) ** 2
            v = (1 - d / (S2 + sigma_at(1 - i * dt) ** 2)) ** 2 * v + (d if i < n_steps - 1 else 0.0)
        return v

    v = recursion(100)
    assert np.all(np.abs(y.mean(0) - MU) < N_SE * math.sqrt(v / n))
    assert np.all(np.abs(y.var(0) - v) < N_SE * se_var(v, n))
    biases = [recursion(k) / (S2 + SIGMA_MIN ** 2) - 1 for k in (100, 200, 400)]
    assert 0 < biases[0] < 0.075 and 1.7 < biases[0] / biases[1] < 2.3 and 1.7 < biases[1] / biases[2] < 2.3


@pytest.mark.identity
@pytest.mark.parametrize("process", [VE, sde.VP(), sde.SubVP()], ids=["VE", "VP", "SubVP"])
def test_prior_log_prob_is_the_normalised_gaussian(process):
    """log N(x; 0, σ_p² I) = -|x|²/(2σ_p²) - D log σ_p - (D/2) log 2π, checked against SciPy's
    normal density one coordinate at a time, for vectors and images (D = 2 and 3·4·5): the
    normalising constant is what a likelihood in nats or bits/dim is made of. Float64 rounding of
    a sum of D terms of size ~10: 1e-12 relative is far above it and far below any wrong constant
    (a missing log 2π alone is 0.92 per dimension)."""
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for shape in ((4, 2), (3, 3, 4, 5)):
        x = rng.normal(size=shape) * 2 * process.prior_std
        expected = scipy_stats.norm.logpdf(x, scale=process.prior_std).reshape(shape[0], -1).sum(axis=1)
        np.testing.assert_allclose(process.prior_log_prob(x), expected, rtol=1e-12)


@pytest.mark.identity
@pytest.mark.parametrize("alpha", [1.0, 0.93])
def test_langevin_corrector_step_is_song_et_al_alg_4(alpha):
    """One corrector step, written out: Song et al. 2021 Alg. 4 (Alg. 5 with alpha) sets
    a = 2 alpha (r mean‖z‖ / mean‖s‖)² and moves x + a s + √(2a) z; in this library's
    convention x + (ε/2) s + √ε z that is ε = 2a. The same seed gives the same z, so the step
    must agree with the formula to float64 rounding (1e-12); a factor 2 in ε, or per-example
    instead of batch-averaged norms, moves it by > 1e-2."""
    x = np.random.default_rng(4).normal(size=(5, 3))
    t, snr = 0.4, 0.16
    score = lambda y, t: -(y - 1.0) / (1.0 + t[:, None])
    got = sde.langevin_corrector(score, x, t, snr, ms.backend.default_rng(7), alpha=alpha)
    z = ms.backend.default_rng(7).normal(x.shape, dtype=x.dtype)
    s = score(x, np.full(5, t))
    mean_norm = lambda a: np.mean(np.sqrt(np.sum(a ** 2, axis=1)))
    a = 2 * alpha * (snr * mean_norm(z) / mean_norm(s)) ** 2
    np.testing.assert_allclose(got, x + a * s + np.sqrt(2 * a) * z, rtol=1e-12, atol=1e-12)
