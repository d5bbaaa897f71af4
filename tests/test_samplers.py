"""Each sampler samples what it claims: analytic stationary laws, fixed seeds, and
margins of N_SE standard errors (a correct sampler fails such a check with probability ~6e-5).

For Gaussian targets every Langevin-type step is affine in x, so the exact mean and covariance
of the sampler's output (its discretisation bias included) follow from a small deterministic
recursion. The Monte Carlo output is compared with that prediction at N_SE standard errors, and
separately the prediction's distance from the target (the sampler's own bias) is bounded. Chains
are independent, so a moment over chains has the i.i.d. standard error.
"""
import math

import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minimalscore as ms
from minimalscore import samplers

N_SE = 4


def se_var(var, n):
    """Standard error of a Gaussian sample variance: var sqrt(2/n)."""
    return var * math.sqrt(2 / n)


def moment_errors(x, mean, cov):
    """(|sample mean - mean| / se, |sample cov - cov| / se), elementwise, each se from the
    sample's own second and fourth moments (valid for any law with finite fourth moments)."""
    x = ms.backend.asnumpy(x).astype(np.float64)
    n, centred = len(x), x - x.mean(0)
    mean_z = np.abs(x.mean(0) - mean) / (x.std(0, ddof=1) / math.sqrt(n))
    products = centred[:, :, None] * centred[:, None, :]
    cov_z = np.abs(products.mean(0) - cov) / (products.std(0, ddof=1) / math.sqrt(n))
    return mean_z, cov_z


# ------------------------------------------------------------ 1. ULA's stationary variance
@pytest.mark.identity
@pytest.mark.parametrize("eps", [0.1, 0.5, 1.0])
def test_ula_stationary_variance_is_one_over_one_minus_eps_over_4(eps):
    """On N(0, 1), x' = (1 - ε/2) x + √ε z is AR(1): v = (1 - ε/2)² v + ε, so v = 1/(1 - ε/4).
    300 steps from N(0, 1) leave a transient (1 - ε/2)^600 ≤ 1e-13."""
    n, rng = 20000, ms.backend.default_rng(0)
    x = samplers.langevin(lambda y: -y, rng.normal((n, 1)), eps, 300, rng)
    expected = 1 / (1 - eps / 4)
    assert abs(float(x.var()) - expected) < N_SE * se_var(expected, n)
    if eps >= 0.5:  # the bias itself is resolved (>= 6 se), not only bounded: ULA is not exact
        assert abs(float(x.var()) - 1.0) > N_SE * se_var(expected, n)


def primer_step(score, x, eps, rng):
    """The Langevin rule x + ε s + √ε w of "Primer on Score-based Generative Models", kept here to
    pin its error (not in the library)."""
    return x + eps * score(x) + math.sqrt(eps) * rng.normal(x.shape)


@pytest.mark.identity
@pytest.mark.parametrize("eps", [0.05, 0.2])
def test_primer_rule_samples_p_squared(eps):
    """x' = (1 - ε) x + √ε w gives v = (1 - ε)² v + ε, v = 1/(2 - ε) -> 1/2: the variance of
    p² ∝ N(0, 1/2), not of p. The correct rule is x + (ε/2) s + √ε z (samplers.langevin)."""
    n, rng = 20000, ms.backend.default_rng(1)
    x = rng.normal((n, 1))
    for _ in range(400):  # transient (1 - ε)^800 < 1e-17
        x = primer_step(lambda y: -y, x, eps, rng)
    expected = 1 / (2 - eps)
    assert abs(float(x.var()) - expected) < N_SE * se_var(expected, n)
    assert abs(float(x.var()) - 1.0) > 20 * se_var(1.0, n)


# ------------------------------------------------------------ 2. MALA and HMC are exact
COV = np.array([[1.0, 0.9], [0.9, 1.0]])  # eigenvalues 1.9 and 0.1: anisotropic


def mixture_2d():
    return ms.distributions.GaussianMixture(np.array([[-1.0, 0.0], [1.5, 1.0]]),
                                            np.array([[[0.5, 0.2], [0.2, 0.4]], [[0.3, -0.1], [-0.1, 0.6]]]),
                                            np.array([0.4, 0.6]), dtype=np.float64)


def mixture_moments(dist):
    """Mean Σ w_k μ_k and covariance Σ w_k (Σ_k + μ_k μ_kᵀ) - mean meanᵀ of a mixture."""
    w, mu, covs = dist.weights, dist.means, dist.covs
    mean = (w[:, None] * mu).sum(0)
    second = sum(wk * (ck + np.outer(mk, mk)) for wk, mk, ck in zip(w, mu, covs))
    return mean, second - np.outer(mean, mean)


@pytest.mark.identity
@pytest.mark.parametrize("target", ["gaussian", "mixture"])
def test_mala_and_hmc_are_unbiased_where_ula_is_not(target):
    """Chains start from exact draws of p, so exactness means stationarity: after 150
    transitions MALA and HMC still have p's mean and covariance (within N_SE se), while ULA at
    the same step has moved off by more than 2 N_SE se. At ε = 0.25 on the Gaussian's 0.1
    eigendirection ULA's AR(1) factor is 1 - ε/0.2 = -0.25, its variance 0.267 instead of 0.1."""
    n = 20000
    dist = ms.distributions.Gaussian(np.zeros(2), COV, dtype=np.float64) if target == "gaussian" \
        else mixture_2d()
    mean, cov = mixture_moments(dist)
    step = 0.25
    rng = ms.backend.default_rng(2)
    x0 = dist.sample(n, rng)
    x_mala, acc_mala = samplers.mala(dist.log_prob, x0, step, 150, rng)
    x_hmc, acc_hmc = samplers.hmc(dist.log_prob, x0, math.sqrt(step), 3, 150, rng)
    for x in (x_mala, x_hmc):
        mean_z, cov_z = moment_errors(x, mean, cov)
        assert mean_z.max() < N_SE and cov_z.max() < N_SE
    assert 0.3 < acc_mala < 1 and 0.3 < acc_hmc < 1
    x_ula = samplers.langevin(dist.score, x0, step, 150, rng)
    assert moment_errors(x_ula, mean, cov)[1].max() > N_SE  # expected ~10 se on both targets
    if target == "gaussian":  # and ULA's law is the predicted one: per eigenvalue λ of COV the
        # AR(1) x' = (1 - ε/(2λ)) x + √ε z has variance λ / (1 - ε/(4λ)); transient 0.934^300
        lam, vecs = np.linalg.eigh(COV)
        cov_ula = vecs @ np.diag(lam / (1 - step / (4 * lam))) @ vecs.T
        mean_z, cov_z = moment_errors(x_ula, mean, cov_ula)
        assert mean_z.max() < N_SE and cov_z.max() < N_SE


# ------------------------------------------------------------ 3. annealed Langevin
MU, S2 = np.array([1.0, -2.0]), 0.25  # data N(MU, S2 I) in 2-D


def perturbed_score(x, sigma):
    """∇log N(x; MU, (S2 + σ²) I) = -(x - MU)/(S2 + σ²): the exact score of the blurred data."""
    return -(x - MU) / (S2 + sigma[:, None] ** 2)


def song_ermon_alpha(eps, sigma, sigma_last):
    """α_i = ε σ_i²/σ_L² (Song & Ermon 2019 Alg. 1)."""
    return eps * sigma ** 2 / sigma_last ** 2


def predicted_annealed_moments(m, v, sigmas, eps, n_steps_each, alpha_rule=song_ermon_alpha,
                               denoise=True):
    """The exact mean and variance (per coordinate) after annealed Langevin on N(MU, S2 I): each
    step x' = x + (α/2)(-(x - μ)/(S2+σ²)) + √α z is affine, so m' = m + a(μ - m),
    v' = (1 - a)² v + α with a = α / (2(S2 + σ²)); the Tweedie step scales by S2/(S2 + σ_L²)."""
    for sigma in sigmas:
        alpha = alpha_rule(eps, sigma, sigmas[-1])
        a = alpha / (2 * (S2 + sigma ** 2))
        for _ in range(n_steps_each):
            m, v = m + a * (MU - m), (1 - a) ** 2 * v + alpha
    shrink = S2 / (S2 + sigmas[-1] ** 2) if denoise else 1.0
    return MU + shrink * (m - MU), shrink ** 2 * v


@pytest.mark.identity
def test_annealed_langevin_matches_the_exact_recursion_and_the_data():
    n, rng = 20000, ms.backend.default_rng(3)
    sigmas = np.geomspace(5.0, 0.05, 10)
    eps, steps = 0.4 * 0.05 ** 2, 200  # a = α_i/(2(S2+σ_i²)) < 0.2: stable at every level
    x0 = rng.uniform(-5.0, 5.0, (n, 2), dtype=np.float64)
    x = samplers.annealed_langevin(perturbed_score, x0, sigmas, eps, steps, rng, denoise=True)
    m_pred, v_pred = predicted_annealed_moments(np.zeros(2), 100 / 12, sigmas, eps, steps)
    assert np.all(np.abs(x.mean(0) - m_pred) < N_SE * np.sqrt(v_pred / n))
    assert np.all(np.abs(x.var(0) - v_pred) < N_SE * se_var(v_pred, n))
    # The sampler's own bias, exact from the recursion: the last levels' steps α_i are too small
    # to relax the variance left by the levels above (T α_i < S2 once σ_i < ~0.1), and ULA adds
    # α_i/(4(S2+σ_i²)) on top; Tweedie removes the σ_L² blur. Below 1% on the mean, 3% on v.
    assert np.all(np.abs(m_pred - MU) < 0.01) and abs(v_pred / S2 - 1).max() < 0.03


@pytest.mark.identity
def test_annealed_langevin_step_sizes_follow_sigma_squared():
    """Three steps per level leave every level unsettled, so the output's law depends on each
    α_i: it matches the exact recursion with α_i = ε σ_i²/σ_L², while α_i = ε σ_i/σ_L would give a
    variance of 6.5 instead of 1.02 (hundreds of standard errors away)."""
    n, rng = 20000, ms.backend.default_rng(4)
    sigmas, eps, steps = np.geomspace(5.0, 0.05, 10), 0.4 * 0.05 ** 2, 3
    x0 = rng.uniform(-5.0, 5.0, (n, 2), dtype=np.float64)
    x = samplers.annealed_langevin(perturbed_score, x0, sigmas, eps, steps, rng)
    m_pred, v_pred = predicted_annealed_moments(np.zeros(2), 100 / 12, sigmas, eps, steps, denoise=False)
    assert np.all(np.abs(x.mean(0) - m_pred) < N_SE * np.sqrt(v_pred / n))
    assert np.all(np.abs(x.var(0) - v_pred) < N_SE * se_var(v_pred, n))
    linear = lambda e, s, last: e * s / last
    _, v_linear = predicted_annealed_moments(np.zeros(2), 100 / 12, sigmas, eps, steps, linear, False)
    assert np.all(np.abs(x.var(0) - v_linear) > 100 * se_var(v_pred, n))


@pytest.mark.identity
def test_denoising_is_tweedies_posterior_mean():
    """denoise=True adds Tweedie's step x + σ_L² s(x, σ_L) to the same chain (same seed), and with
    the exact score of a perturbed mixture that is E[x | x̃] (Tweedie's formula, Efron 2011),
    computed here by Gaussian conditioning without the score: equal to float64 rounding."""
    dist, sigmas = mixture_2d(), np.array([1.0, 0.5])
    score = lambda y, s: dist.perturbed(float(s[0])).score(y)
    x0 = ms.backend.default_rng(0).normal((500, 2), dtype=np.float64)
    run = lambda denoise: samplers.annealed_langevin(score, x0, sigmas, 0.1, 5, ms.backend.default_rng(1),
                                                     denoise=denoise)
    chain, denoised = run(False), run(True)
    np.testing.assert_allclose(denoised, chain + 0.25 * dist.perturbed(0.5).score(chain), rtol=1e-14)
    np.testing.assert_allclose(denoised, dist.posterior_mean(chain, 0.5), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------ 5. inpainting a Gaussian
def predicted_inpainting_moments(mean, cov, mask, x_observed, m0, c0, sigmas, eps, n_steps_each):
    """The exact mean and covariance of the chain after Song & Ermon 2019 Alg. 2 on N(mean, cov).

    Within level i the chain x~ and the level's noise ξ (y = x + σ_i ξ) evolve jointly and
    affinely: with P = (cov + σ_i² I)⁻¹, A = I - (α/2) P and K = I - diag(mask),
        x~' = K (A x~ + (α/2) P mean + √α z) + diag(mask)(x + σ_i ξ),   ξ' = ξ,
    so the state w = (x~, ξ) has w' = F w + f + noise(Q); ξ is redrawn, independent of x~,
    when a level starts."""
    dim, keep = len(mean), np.eye(len(mean)) - np.diag(mask)
    m, c = np.append(m0, 0.0), np.zeros((dim + 1, dim + 1))
    c[:dim, :dim] = c0
    for sigma in sigmas:
        alpha = eps * sigma ** 2 / sigmas[-1] ** 2
        precision = np.linalg.inv(cov + sigma ** 2 * np.eye(dim))
        f_map = np.zeros((dim + 1, dim + 1))
        f_map[:dim, :dim] = keep @ (np.eye(dim) - alpha / 2 * precision)
        f_map[:dim, dim], f_map[dim, dim] = sigma * mask, 1.0
        shift = np.append(keep @ (alpha / 2 * precision @ mean) + mask * x_observed, 0.0)
        noise = np.zeros((dim + 1, dim + 1))
        noise[:dim, :dim] = alpha * keep
        m[dim], c[dim, :], c[:, dim] = 0.0, 0.0, 0.0
        c[dim, dim] = 1.0  # a fresh ξ ~ N(0, 1)
        for _ in range(n_steps_each):
            m, c = f_map @ m + shift, f_map @ c @ f_map.T + noise
    return m[:dim], c[:dim, :dim]


@pytest.mark.identity
def test_inpainting_keeps_the_observed_part_and_samples_the_conditional():
    """Observe x₁ = 1 of a 3-D Gaussian; the filled (x₂, x₃) must follow the conditional
    N(μ_u + Σ_uo Σ_oo⁻¹ (x_o - μ_o), Σ_uu - Σ_uo Σ_oo⁻¹ Σ_ou) up to the sampler's own bias."""
    cov = np.array([[1.0, 0.8, 0.3], [0.8, 1.0, 0.5], [0.3, 0.5, 1.0]])
    mean = np.array([0.5, -1.0, 0.0])
    sigmas = np.geomspace(3.0, 0.02, 10)
    eps, steps = 0.4 * 0.02 ** 2, 300
    precisions = {float(s): np.linalg.inv(cov + s ** 2 * np.eye(3)) for s in sigmas}
    score = lambda x, s: -(x - mean) @ precisions[float(s[0])]  # ∇log N(mean, cov + σ² I)
    n, rng = 20000, ms.backend.default_rng(6)
    mask, x_observed = np.array([1.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0])
    x = np.tile(x_observed, (n, 1))
    x0 = rng.normal((n, 3), dtype=np.float64)
    out = samplers.inpaint(score, x, mask, sigmas, eps, steps, rng, x0=x0)
    assert np.array_equal(out[:, 0], x[:, 0])  # kept exactly, not y = x + σ_L ξ
    m_pred, c_pred = predicted_inpainting_moments(mean, cov, mask, x_observed, np.zeros(3), np.eye(3),
                                                  sigmas, eps, steps)
    mean_z, cov_z = moment_errors(out[:, 1:], m_pred[1:], c_pred[1:, 1:])
    assert mean_z.max() < N_SE and cov_z.max() < N_SE
    # The sampler's own bias, exact from the recursion: as in annealed Langevin the last levels
    # barely move (T α_i below the conditional's relaxation time once σ_i < ~0.07), so the
    # result keeps an excess variance of order σ_i² there, ~1-2%; the noisy y adds (0.8 σ_L)².
    cond_mean = mean[1:] + cov[1:, :1] @ np.linalg.solve(cov[:1, :1], x_observed[:1] - mean[:1])
    cond_cov = cov[1:, 1:] - cov[1:, :1] @ np.linalg.solve(cov[:1, :1], cov[:1, 1:])
    assert np.abs(m_pred[1:] - cond_mean).max() < 0.01 and np.abs(c_pred[1:, 1:] / cond_cov - 1).max() < 0.03
    # and the result is not the unconditional law: observing x₁ moved x₂'s mean by 0.4 (40 se)
    assert abs(float(out[:, 1].mean()) - mean[1]) > 0.3


@pytest.mark.identity
def test_inpainting_renoises_the_observed_part_once_per_level_or_every_step():
    """One level at σ = 1 on N(0, [[1, .9], [.9, 1]]), x₁ observed at 0. The chain conditions on
    one y = x + σ ξ held for the whole level, so across chains x₂ keeps the spread of its
    conditional mean, (Σ~_21/Σ~_11)² σ² = 0.2025 with Σ~ = Σ + σ² I. A y redrawn every step
    (renoise="step") averages most of that out; the two predictions differ by > 2 N_SE se."""
    cov, mean = np.array([[1.0, 0.9], [0.9, 1.0]]), np.zeros(2)
    sigmas, eps, steps = np.array([1.0]), 0.2, 200  # a = α P_22 / 2 = 0.063: (1-a)^400 ~ 1e-11
    precision = np.linalg.inv(cov + np.eye(2))
    n, rng = 50000, ms.backend.default_rng(9)
    mask, x = np.array([1.0, 0.0]), np.zeros((n, 2))
    out = samplers.inpaint(lambda y, s: -y @ precision, x, mask, sigmas, eps, steps, rng,
                           x0=rng.normal((n, 2), dtype=np.float64))
    m_pred, c_pred = predicted_inpainting_moments(mean, cov, mask, np.zeros(2), np.zeros(2), np.eye(2),
                                                  sigmas, eps, steps)
    mean_z, cov_z = moment_errors(out[:, 1:], m_pred[1:], c_pred[1:, 1:])
    assert mean_z.max() < N_SE and cov_z.max() < N_SE
    # y redrawn every step: x₂' = (1 - a) x₂ - (α/2) P_21 y + √α z with y ~ N(0, σ²) fresh, an
    # AR(1) with stationary variance (α + (α P_21 σ / 2)²) / (1 - (1 - a)²)
    a = eps * precision[1, 1] / 2
    v_per_step = (eps + (eps * precision[1, 0] * sigmas[0] / 2) ** 2) / (1 - (1 - a) ** 2)
    assert abs(float(out[:, 1].var()) - v_per_step) > 2 * N_SE * se_var(v_per_step, n)
    # ... which is what renoise="step" (NCSNv2's code) gives
    out_step = samplers.inpaint(lambda y, s: -y @ precision, x, mask, sigmas, eps, steps, rng,
                                x0=rng.normal((n, 2), dtype=np.float64), renoise="step")
    assert abs(float(out_step[:, 1].var()) - v_per_step) < N_SE * se_var(v_per_step, n)
    with pytest.raises(ValueError, match="renoise"):
        samplers.inpaint(lambda y, s: -y, x, mask, sigmas, eps, steps, rng, renoise="never")


@pytest.mark.identity
@pytest.mark.parametrize("renoise", ["level", "step"])
def test_inpainting_renoises_the_observed_part_to_x_plus_sigma_noise(renoise):
    """The observed coordinate the score sees is y = x + σ_i ξ with ξ ~ N(0, 1): recorded at every
    call after a level's first step, (y - x)/σ_i has mean 0 and variance 1 (se 1/√n and √(2/n)).
    renoise="level" holds one ξ for the whole level (equal at steps 2 and 3) and draws a fresh one
    per level; renoise="step" draws one per step (correlation of consecutive ξ within 4/√n of 0)."""
    n, sigmas, x_obs = 4000, np.array([2.0, 0.5]), 1.5
    seen = []

    def recording_score(y, s):
        seen.append((float(s[0]), y[:, 0].copy()))
        return -y

    x = np.tile([x_obs, 0.0], (n, 1))
    rng = ms.backend.default_rng(10)
    out = samplers.inpaint(recording_score, x, np.array([1.0, 0.0]), sigmas, 0.1, 3, rng,
                           x0=rng.normal((n, 2), dtype=np.float64), renoise=renoise)
    assert np.array_equal(out[:, 0], x[:, 0])
    xi = {}
    for level, sigma in enumerate(sigmas):
        calls = seen[3 * level: 3 * level + 3]
        assert all(s == sigma for s, _ in calls)
        xi[level] = [(y - x_obs) / sigma for _, y in calls[1:]]  # after the first step's write
        for e in xi[level]:
            assert abs(e.mean()) < N_SE / math.sqrt(n) and abs(e.var() - 1) < N_SE * math.sqrt(2 / n)
        if renoise == "level":
            np.testing.assert_array_equal(*xi[level])
        else:
            assert abs(np.corrcoef(*xi[level])[0, 1]) < N_SE / math.sqrt(n)
    assert abs(np.corrcoef(xi[0][-1], xi[1][0])[0, 1]) < N_SE / math.sqrt(n)


@pytest.mark.identity
def test_inpainting_images_with_a_broadcast_mask():
    """(N, C, H, W) images, a (1, 1, H, W) mask keeping the upper half: kept pixels come back
    exactly, float32 stays float32, and with N(0, I) data (independent pixels) each filled pixel
    runs annealed Langevin on N(0, 1 + σ²) alone: at the last level (σ_L = 1, α = ε = 0.5,
    V = 2) ULA's AR(1) factor is 1 - α/(2V) = 0.875, its stationary variance
    α / (1 - 0.875²) = 2.133; 100 steps per level leave a transient 0.875^200 < 1e-11."""
    n, rng = 2000, ms.backend.default_rng(7)
    x = np.full((n, 1, 4, 4), 2.0, dtype=np.float32)
    mask = np.zeros((1, 1, 4, 4), dtype=np.float32)
    mask[..., :2, :] = 1
    score = lambda y, s: -y / (1 + s.reshape(-1, 1, 1, 1) ** 2)
    out = samplers.inpaint(score, x, mask, np.array([2.0, 1.0]), 0.5, 100, rng)
    assert out.shape == x.shape and out.dtype == np.float32
    assert np.array_equal(out[:, :, :2], x[:, :, :2])
    filled = out[:, :, 2:].ravel().astype(np.float64)  # 16,000 independent values
    v = 0.5 / (1 - 0.875 ** 2)
    assert abs(filled.mean()) < N_SE * math.sqrt(v / filled.size)
    assert abs(filled.var() - v) < N_SE * se_var(v, filled.size)


# ------------------------------------------------------------ 6. mode weights (Song & Ermon §3.2)
def mixture_score(x, sigma):
    """∇log of 0.8 N((5,5), I) + 0.2 N((-5,-5), I) blurred by σ, in closed form: both components
    have variance v = 1 + σ², so the score is -(x - E[μ | x])/v with E[μ | x] = (5,5)(1 - 2 r),
    r the (-5,-5) component's responsibility, a logistic function of the log-odds
    ℓ = log(0.2/0.8) - 10 (x₁ + x₂)/v; 1 - 2 r = -tanh(ℓ/2), finite for any x."""
    v = 1 + sigma[:, None] ** 2
    log_odds = math.log(0.25) - 10 * anp.sum(x, axis=1, keepdims=True) / v
    return -(x + 5 * anp.tanh(log_odds / 2)) / v


@pytest.mark.identity
def test_mixture_score_is_the_gaussian_mixture_score():
    p = ms.distributions.GaussianMixture(np.array([[5.0, 5.0], [-5.0, -5.0]]), np.ones(2),
                                         np.array([0.8, 0.2]), dtype=np.float64)
    x = np.random.default_rng(0).uniform(-9, 9, (200, 2))
    for sigma in (0.0, 1.0, 7.0, 20.0):
        expected = p.perturbed(sigma).score(x) if sigma > 0 else p.score(x)
        np.testing.assert_allclose(mixture_score(x, np.full(200, sigma)), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.identity
def test_annealing_recovers_mode_weights_that_ula_cannot():
    """Song & Ermon 2019 §3.2: exact scores of 0.8·N((5,5), I) + 0.2·N((-5,-5), I), particles
    from U[-8, 8]²; the weight of the (-5,-5) mode is the fraction with x₁ + x₂ < 0."""
    n, rng = 5000, ms.backend.default_rng(8)
    x0 = rng.uniform(-8.0, 8.0, (n, 2))
    sigmas = np.geomspace(20.0, 1.0, 20)
    eps, steps_each = 0.3, 100
    annealed = samplers.annealed_langevin(mixture_score, x0, sigmas, eps, steps_each, rng)
    ula = samplers.langevin(lambda x: mixture_score(x, np.zeros(n, np.float32)), x0, eps,
                            len(sigmas) * steps_each, rng)
    weight = lambda x: float((x.sum(1) < 0).mean())
    # ULA cannot cross the density gap (~25 nats deep): each particle ends in the basin it
    # started in. The basins meet where ℓ = 0, x₁ + x₂ = -log(4)/10, and x₁ + x₂ of the uniform
    # start is triangular on [-16, 16]: P = (16 - log(4)/10)² / 512 = 0.491. Binomial se.
    basin = (16 - math.log(4) / 10) ** 2 / 512
    assert abs(weight(ula) - basin) < N_SE * math.sqrt(basin * (1 - basin) / n)
    # Annealing recovers 0.2 (binomial se 0.0057). Its own bias is positive: the minority mode's
    # surplus is frozen in where the blurred modes separate (the stationary weight of
    # x₁ + x₂ < 0 under p_σ is 0.224 at σ = 3.9, 0.205 at σ = 2.8); for this schedule it
    # measured 0.005 ± 0.0014 at n = 80,000 (0.018 with Song & Ermon's 10 levels, ε = 0.1),
    # under 1 se here.
    se = math.sqrt(0.2 * 0.8 / n)
    assert abs(weight(annealed) - 0.2) < N_SE * se
    assert abs(weight(ula) - 0.2) > 40 * se


# ------------------------------------------------------------ any shape, float32, bad arguments
@settings(max_examples=10, deadline=None, derandomize=True)
@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=4), seed=st.integers(0, 2 ** 16))
def test_samplers_keep_any_shape_and_float32(shape, seed):
    rng = ms.backend.default_rng(seed)
    x0 = rng.normal(tuple(shape))
    sigmas = np.array([1.0, 0.5])
    nc_score = lambda x, s: -x / (1 + s.reshape((-1,) + (1,) * (x.ndim - 1)) ** 2)
    log_prob = lambda x: -0.5 * (x.reshape(x.shape[0], -1) ** 2).sum(1)
    mask = (rng.uniform(0, 1, x0.shape[1:]) > 0.5).astype(np.float32)  # broadcasts over the batch
    outs = [samplers.langevin(lambda x: -x, x0, 0.1, 2, rng),
            samplers.mala(log_prob, x0, 0.1, 2, rng)[0],
            samplers.hmc(log_prob, x0, 0.1, 2, 2, rng)[0],
            samplers.annealed_langevin(nc_score, x0, sigmas, 0.01, 2, rng, denoise=True),
            samplers.inpaint(nc_score, x0, mask, sigmas, 0.01, 2, rng, denoise=True)]
    for out in outs:
        assert out.shape == x0.shape and out.dtype == np.float32
    assert np.array_equal(outs[-1] * mask, x0 * mask)


def test_mala_and_hmc_return_a_python_float_acceptance_rate():
    rng, x = ms.backend.default_rng(0), np.zeros((8, 2), np.float32)
    lp = lambda y: -0.5 * (y ** 2).sum(1)
    for _, rate in (samplers.mala(lp, x, 0.5, 3, rng), samplers.hmc(lp, x, 0.5, 2, 3, rng, jitter=0.0)):
        assert isinstance(rate, float) and 0 <= rate <= 1


def test_progress_bar_does_not_change_the_result():
    x0 = np.ones((3, 2), np.float32)
    runs = [samplers.annealed_langevin(lambda x, s: -x, x0, np.array([1.0, 0.5]), 0.1, 3,
                                       ms.backend.default_rng(0),
                                       progress=flag) for flag in (False, True)]
    np.testing.assert_array_equal(*runs)


def test_bad_arguments_name_the_argument():
    rng, x = ms.backend.default_rng(0), np.zeros((4, 2), np.float32)
    s, nc = (lambda y: -y), (lambda y, sig: -y)
    lp = lambda y: -0.5 * (y ** 2).sum(1)
    sig, mask = np.array([1.0, 0.1]), np.ones(2)
    cases = {
        "step": [lambda: samplers.langevin(s, x, 0.0, 10, rng), lambda: samplers.mala(lp, x, -1.0, 10, rng),
                 lambda: samplers.hmc(lp, x, float("nan"), 3, 10, rng),
                 lambda: samplers.langevin(s, x, "1", 1, rng)],
        "n_steps": [lambda: samplers.langevin(s, x, 0.1, 0, rng), lambda: samplers.mala(lp, x, 0.1, 2.5, rng),
                    lambda: samplers.hmc(lp, x, 0.1, 2, None, rng),
                    lambda: samplers.langevin(s, x, 0.1, 5.0, rng)],
        "n_leapfrog": [lambda: samplers.hmc(lp, x, 0.1, 0, 10, rng)],
        "jitter": [lambda: samplers.hmc(lp, x, 0.1, 1, 1, rng, jitter=1.0),
                   lambda: samplers.hmc(lp, x, 0.1, 1, 1, rng, jitter=-0.1)],
        "rng": [lambda: samplers.langevin(s, x, 0.1, 1, np.random.default_rng(0)),
                lambda: samplers.mala(lp, x, 0.1, 1, None), lambda: samplers.hmc(lp, x, 0.1, 1, 1, 0),
                lambda: samplers.annealed_langevin(nc, x, sig, 0.1, 1, "seed"),
                lambda: samplers.inpaint(nc, x, mask, sig, 0.1, 1, None)],
        "x0": [lambda: samplers.langevin(s, np.array([[np.nan, 0.0]]), 0.1, 1, rng),
               lambda: samplers.annealed_langevin(nc, np.array([[np.inf]]), sig, 0.1, 1, rng),
               lambda: samplers.mala(lp, np.zeros(3), 0.1, 1, rng),
               lambda: samplers.hmc(lp, [[0.0, 1.0]], 0.1, 1, 1, rng),
               lambda: samplers.langevin(s, np.zeros((0, 2)), 0.1, 1, rng),
               lambda: samplers.inpaint(nc, x, mask, sig, 0.1, 1, rng, x0=np.zeros((3, 2), np.float32)),
               lambda: samplers.inpaint(nc, x, mask, sig, 0.1, 1, rng, x0=np.zeros((4, 2))),
               lambda: samplers.inpaint(nc, x, mask, sig, 0.1, 1, rng,
                                        x0=np.full((4, 2), np.nan, np.float32))],
        "x": [lambda: samplers.inpaint(nc, np.full((4, 2), np.nan), mask, sig, 0.1, 1, rng)],
        "sigmas": [lambda: samplers.annealed_langevin(nc, x, np.array([0.1, 1.0]), 0.1, 1, rng),
                   lambda: samplers.annealed_langevin(nc, x, np.array([1.0, 0.0]), 0.1, 1, rng),
                   lambda: samplers.annealed_langevin(nc, x, [1.0, 0.1], 0.1, 1, rng),
                   lambda: samplers.inpaint(nc, x, mask, np.array([1.0, 1.0]), 0.1, 1, rng)],
        "eps": [lambda: samplers.annealed_langevin(nc, x, sig, 0.0, 1, rng),
                lambda: samplers.inpaint(nc, x, mask, sig, -0.1, 1, rng)],
        "n_steps_each": [lambda: samplers.annealed_langevin(nc, x, sig, 0.1, 0, rng),
                         lambda: samplers.inpaint(nc, x, mask, sig, 0.1, 1.5, rng)],
        "mask": [lambda: samplers.inpaint(nc, x, np.ones(3), sig, 0.1, 1, rng),
                 lambda: samplers.inpaint(nc, x, np.ones((2, 4, 2)), sig, 0.1, 1, rng),
                 lambda: samplers.inpaint(nc, x, np.full(2, 2.0), sig, 0.1, 1, rng),
                 lambda: samplers.inpaint(nc, x, np.array([1.0, np.nan]), sig, 0.1, 1, rng),
                 lambda: samplers.inpaint(nc, x, [1, 0], sig, 0.1, 1, rng),
                 lambda: samplers.inpaint(nc, x, np.array(["a", "b"]), sig, 0.1, 1, rng)],
        "renoise": [lambda: samplers.inpaint(nc, x, mask, sig, 0.1, 1, rng, renoise="never")],
        "denoise": [lambda: samplers.annealed_langevin(nc, x, sig, 0.1, 1, rng, denoise="yes"),
                    lambda: samplers.inpaint(nc, x, mask, sig, 0.1, 1, rng, denoise=None)],
        "progress": [lambda: samplers.langevin(s, x, 0.1, 1, rng, progress=1),
                     lambda: samplers.hmc(lp, x, 0.1, 1, 1, rng, progress="no"),
                     lambda: samplers.annealed_langevin(nc, x, sig, 0.1, 1, rng, progress=None)],
    }
    for name, calls in cases.items():
        for call in calls:
            with pytest.raises((ValueError, TypeError), match=f"^{name}:"):
                call()


def test_kernels_check_their_arguments():
    rng, x = ms.backend.default_rng(0), np.zeros((4, 2))
    both = samplers.log_prob_and_grad(lambda y: -0.5 * anp.sum(y ** 2, 1))
    state = samplers.chain_state(both, x)
    cases = {"state": [(x, x), (x, x[:, 0], x[:, :1]), (x, x[:3, 0], x), [x, x[:, 0], x],
                       (x + np.nan,) + state[1:]],
             "log_prob_and_grad": ["f"], "step": [0.0, None], "rng": [None]}
    for kernel in (samplers.ula_step, samplers.mala_step, lambda *a: samplers.hmc_step(*a[:3], 2, a[3])):
        for name, values in cases.items():
            for value in values:
                args = {**dict(state=state, log_prob_and_grad=both, step=0.1, rng=rng), name: value}
                with pytest.raises((ValueError, TypeError), match=f"^{name}:"):
                    kernel(args["state"], args["log_prob_and_grad"], args["step"], args["rng"])
    with pytest.raises((ValueError, TypeError), match="^n_leapfrog:"):
        samplers.hmc_step(state, both, 0.1, 0, rng)
    with pytest.raises(TypeError, match="^log_prob_and_grad:"):
        samplers.chain_state("f", x)
    with pytest.raises(ValueError, match="^x:"):
        samplers.chain_state(both, np.full((4, 2), np.nan))
    with pytest.raises(TypeError, match="^log_prob:"):
        samplers.log_prob_and_grad(None)


def test_user_callables_are_checked_on_their_first_call():
    """A score shaped (N, 1) for (N, 2) data is refused, not broadcast; a log_prob that sums the
    batch (shape ()) is refused, not run with a plausible acceptance rate; NaN at once too."""
    rng, x = ms.backend.default_rng(0), np.ones((4, 2), np.float32)
    sig, mask = np.array([1.0, 0.1]), np.array([1.0, 0.0], np.float32)
    for bad in (lambda y: y[:, :1], lambda y: y * np.nan):
        calls = [lambda: samplers.langevin(bad, x, 0.1, 1, rng),
                 lambda: samplers.annealed_langevin(lambda y, s: bad(y), x, sig, 0.1, 1, rng),
                 lambda: samplers.inpaint(lambda y, s: bad(y), x, mask, sig, 0.1, 1, rng)]
        for call in calls:
            with pytest.raises(ValueError, match="^score:"):
                call()
    for bad in (lambda y: -0.5 * (y ** 2).sum(), lambda y: -0.5 * y ** 2, lambda y: (y * np.nan).sum(1)):
        for call in (lambda: samplers.mala(bad, x, 0.1, 1, rng),
                     lambda: samplers.hmc(bad, x, 0.1, 1, 1, rng)):
            with pytest.raises(ValueError, match="^log_prob:"):
                call()


def test_samplers_stop_on_divergence_naming_the_step_and_the_step_size():
    """A step too large for the score, or a score that turns NaN after a while, stops the chain
    with NonFiniteError naming where (level, steps since the last check) and the step in use.
    In float32 a chain multiplied by ~2.5e4 per step overflows within 9 steps."""
    rng, x = ms.backend.default_rng(0), np.ones((8, 2), np.float32)
    nc = lambda y, s: -y / (1 + s[:, None] ** 2)
    with np.errstate(all="ignore"):
        level_1 = r"^x: .*at level 1 of 2 \(σ = 1, steps 1 to 20, step size α = 100000\).*smaller eps"
        with pytest.raises(ms.checks.NonFiniteError, match=level_1):
            samplers.annealed_langevin(nc, x, np.array([1.0, 0.1]), 1e3, 20, rng)
        with pytest.raises(ms.checks.NonFiniteError, match="^x: .*inpainting at level 1 of 2"):
            samplers.inpaint(nc, x, np.array([1.0, 0.0]), np.array([1.0, 0.1]), 1e3, 20, rng)
        # x' = (1 - ε/2) x + √ε z = -3.5 x + ...: past float32's 3.4e38 after ~70 steps
        with pytest.raises(ms.checks.NonFiniteError, match=r"between steps 1 and 100 of ULA at step size 9"):
            samplers.langevin(lambda y: -y, x, 9.0, 300, rng)

    def turns_nan(after):
        calls = [0]

        def score(y, *sigma):
            calls[0] += 1
            return -y if calls[0] <= after else y * np.nan
        return score

    with pytest.raises(ms.checks.NonFiniteError, match="between steps 101 and 150 of ULA at step size 0.1"):
        samplers.langevin(turns_nan(120), x, 0.1, 150, rng)
    with pytest.raises(ms.checks.NonFiniteError, match="at level 2 of 2"):
        samplers.annealed_langevin(turns_nan(30), x, np.array([1.0, 0.1]), 0.1, 20, rng)
    # MALA and HMC reject a non-finite proposal; a log_prob that returns +inf is caught
    lp = lambda y: anp.where(anp.sum(y, 1) > 3, np.inf, -0.5 * anp.sum(y ** 2, 1))
    with np.errstate(invalid="ignore"), pytest.raises(ms.checks.NonFiniteError,
                                                      match="^log_prob: .*of MALA at step size 1"):
        samplers.mala(lp, np.zeros((64, 2)), 1.0, 200, rng)


def test_mala_and_hmc_compute_log_p_and_its_gradient_once_per_evaluation():
    """The kernels carry (x, log p, ∇log p): MALA calls log_prob once per transition, HMC once per
    leapfrog step, plus one call at the start; the carried values are log p and ∇log p at x."""
    calls = [0]

    def log_prob(y):
        calls[0] += 1
        return -0.5 * anp.sum(y ** 2, 1)

    rng, x = ms.backend.default_rng(0), np.random.default_rng(1).standard_normal((16, 2))
    state = samplers.chain_state(samplers.log_prob_and_grad(log_prob), x)
    for kernel in (samplers.ula_step, samplers.mala_step):
        calls[0] = 0
        kernel(state, samplers.log_prob_and_grad(log_prob), 0.3, rng)
        assert calls[0] == 1
    calls[0] = 0
    samplers.mala(log_prob, x, 0.3, 7, rng)
    assert calls[0] == 7 + 1
    calls[0] = 0
    samplers.hmc(log_prob, x, 0.3, 4, 5, rng)
    assert calls[0] == 5 * 4 + 1
    both = samplers.log_prob_and_grad(log_prob)
    state = samplers.chain_state(both, x)
    for _ in range(5):
        for kernel in (samplers.ula_step, samplers.mala_step,
                       lambda *a: samplers.hmc_step(*a[:3], 3, a[3])):
            state, accepted = kernel(state, both, 0.5, rng)
            assert accepted.shape == (16,) and accepted.dtype == bool
    np.testing.assert_allclose(state[1], -0.5 * (state[0] ** 2).sum(1), rtol=1e-14)
    np.testing.assert_allclose(state[2], -state[0], rtol=1e-14)


# ------------------------------------------------------------ guidance
def component_posterior(dist):
    """log p_σ(k | x) of a mixture perturbed by σ: log w_k N(x; μ_k, Σ_k + σ² I) - log p_σ(x), the
    exact classifier of the noisy data; (N, K), differentiable by autograd."""
    def log_probs(x, sigma):
        noisy = dist.perturbed(float(sigma[0]))
        parts = [ms.distributions.Gaussian(noisy.means[k], noisy.covs[k], dtype=np.float64).log_prob(x)
                 + np.log(noisy.weights[k]) for k in range(len(noisy.weights))]
        joint = anp.stack(parts, axis=1)
        return joint - ms.ops.logsumexp(joint, axis=1)[:, None]
    return log_probs


@pytest.mark.identity
def test_guided_score_at_scale_one_is_the_class_conditional_score():
    """∇log p_σ(x) + ∇log p_σ(y | x) = ∇log p_σ(x | y) (Bayes' rule): with the exact component
    posterior as classifier, the guided score of a 2-D mixture at scale 1 equals the score of the
    perturbed component y, N(μ_y, Σ_y + σ² I), to float64 rounding; at scale 0 the plain score."""
    dist, sigma = mixture_2d(), 0.7
    n = 50
    x = np.random.default_rng(0).normal(0, 2, (n, 2))
    y = np.arange(n) % 2
    score = lambda z, s: dist.perturbed(float(s[0])).score(z)
    guided = samplers.guided_score(score, component_posterior(dist), y)
    sig = np.full(n, sigma)
    noisy = dist.perturbed(sigma)
    expected = np.stack([ms.distributions.Gaussian(noisy.means[k], noisy.covs[k], dtype=np.float64)
                         .score(x[i:i + 1])[0] for i, k in enumerate(y)])
    np.testing.assert_allclose(guided(x, sig), expected, rtol=1e-9, atol=1e-12)
    plain = samplers.guided_score(score, component_posterior(dist), y, scale=0.0)
    np.testing.assert_allclose(plain(x, sig), noisy.score(x), rtol=1e-12)
    assert np.abs(expected - noisy.score(x)).max() > 0.1  # the guidance term is not negligible


def test_guided_score_checks_its_labels_and_classifier():
    score, x, sig = (lambda z, s: -z), np.zeros((4, 2)), np.ones(4)
    classifier = lambda z, s: 0 * z[:, :1] + anp.zeros((z.shape[0], 3)) - np.log(3.0)
    for y in (np.array([0.0, 1, 2, 0]), [0, 1, 2, 0], np.zeros((4, 1), int), np.zeros(0, int)):
        with pytest.raises(TypeError, match="^y:"):
            samplers.guided_score(score, classifier, y)
    for y in (np.array([0, 1, 3, 0]), np.array([0, -1, 2, 0]), np.array([0, 1, 2])):
        with pytest.raises(ValueError, match="^y:"):
            samplers.guided_score(score, classifier, y)(x, sig)
    with pytest.raises(ValueError, match="^classifier_log_prob:"):
        samplers.guided_score(score, lambda z, s: 0 * z[:, 0], np.zeros(4, int))(x, sig)
    with pytest.raises(ValueError, match="^scale:"):
        samplers.guided_score(score, classifier, np.zeros(4, int), scale=-1.0)
    with pytest.raises(TypeError, match="^classifier_log_prob:"):
        samplers.guided_score(score, "classifier", np.zeros(4, int))
