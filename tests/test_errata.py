"""Errors in public tutorials on score-based models, each pinned by a computation (docs/theory.md §18).

The Langevin rule of "Primer on Score-based Generative Models" (x + ε s + √ε w samples p²) is
pinned in tests/test_samplers.py; the others are here. Every check is float64 arithmetic on
closed forms or a Monte Carlo mean with its standard error.
"""
import math

import numpy as np
import pytest

import minimalscore as ms
from minimalscore import objectives, schedule

N_SE = 4  # standard errors of margin: a correct identity fails with probability ~6e-5


def mixture_1d():
    return ms.distributions.GaussianMixture(np.array([[-2.0], [1.5]]), np.array([0.3, 0.8]),
                                            np.array([0.4, 0.6]), dtype=np.float64)


@pytest.mark.identity
def test_score_from_a_denoiser_is_denoised_minus_noisy_over_sigma_squared():
    """Tweedie: the ideal denoiser D(x~) = E[x | x~] = x~ + σ² ∇log p_σ(x~), so the score is
    (D(x~) - x~)/σ². A blog post on score matching writes (x~ - D(x~))/σ², which is minus the
    score: it points away from the data. Both sides are O(1) float64 numbers: 1e-10."""
    p, sigma = mixture_1d(), 0.7
    x_tilde = np.linspace(-5, 5, 41)[:, None]
    denoised = p.posterior_mean(x_tilde, sigma)  # computed by Bayes' rule, without the score
    score = p.perturbed(sigma).score(x_tilde)
    np.testing.assert_allclose((denoised - x_tilde) / sigma ** 2, score, atol=1e-10)
    flipped = (x_tilde - denoised) / sigma ** 2
    assert np.all(np.sign(flipped[[0, -1]]) == np.sign(x_tilde[[0, -1]]))  # away from the modes


@pytest.mark.identity
def test_sigma_squared_weight_keeps_levels_order_one_and_sigma_does_not():
    """At the optimum on N(0, I_D) data, DSM at level σ is 0.5 D/(σ²(1 + σ²)) (the level loss of
    tests/test_objectives.py without its weight). λ(σ) = σ² (Song & Ermon 2019 §4.2) makes it
    0.5 D/(1 + σ²) <= D/2; λ(σ) = σ, as the Primer writes, leaves 0.5 D/(σ(1 + σ²)), which
    at σ = 0.01 is 100 times D/2. Each level's loss is a mean of 20,000 terms: se ~ 0.5%."""
    dim, n = 4, 20000
    x = np.random.default_rng(0).standard_normal((n, dim))
    optimal = lambda y, s: -y / (1 + s[:, None] ** 2)
    weighted = {}
    for sigma in (10.0, 1.0, 0.01):
        loss = objectives.multiscale_dsm(optimal, x, np.array([sigma]), ms.backend.default_rng(1))
        expected = 0.5 * dim / (1 + sigma ** 2)
        assert abs(loss - expected) < N_SE * math.sqrt(0.5 * dim / n) / (1 + sigma ** 2)
        weighted[sigma] = loss
    sigma_weighted = {s: v / s for s, v in weighted.items()}  # λ = σ: σ² DSM divided by σ
    assert max(weighted.values()) <= dim / 2 * 1.02
    assert sigma_weighted[0.01] > 90 * dim / 2
    assert max(sigma_weighted.values()) / min(sigma_weighted.values()) > 1e4


@pytest.mark.identity
def test_dsm_in_noise_prediction_form_has_one_over_two_sigma_squared():
    """With s~ = -σ s (predict the noise ε), s(x~) + ε/σ = (ε - s~)/σ, so DSM at σ is
    E[‖ε - s~‖²]/(2σ²) (Vincent 2011 eq. 8 rewritten). Tomczak's "Score-based generative
    models" writes 1/(2σ): off by a factor σ, harmless at one σ but a different weighting
    across levels. Same noise draw on both sides: agreement to float64 rounding."""
    x = np.random.default_rng(2).standard_normal((64, 3))
    score = lambda y: -y / 1.5 + 0.1 * y ** 2
    for sigma in (0.1, 0.5, 2.0):
        loss = objectives.dsm(score, x, sigma, ms.backend.default_rng(3))
        eps = ms.backend.default_rng(3).normal(x.shape, dtype=np.float64)
        predicted = -sigma * score(x + sigma * eps)
        squared = np.mean(np.sum((eps - predicted) ** 2, axis=1))
        assert loss == pytest.approx(squared / (2 * sigma ** 2), rel=1e-12)
        assert abs(loss / (squared / (2 * sigma)) - 1) > 0.4  # 1/(2σ) is off by the factor σ


@pytest.mark.identity
def test_dsm_without_the_norm_does_not_train_anything():
    """ℓ(θ, σ) written as 0.5 E[s(x~) + (x~ - x)/σ²] without ‖·‖² (Khungurn, "Score-Based
    Generative Models", §5.1) is a vector, and for the useless model s ≡ 0 it is 0.5 E[z]/σ = 0
    up to Monte Carlo error: it cannot tell a good score from none. With the norm (objectives.dsm)
    the same model scores 0.5 D/σ², and the perturbed score does better (Vincent 2011)."""
    p, sigma, n = mixture_1d(), 0.5, 50000
    x = p.sample(n, ms.backend.default_rng(4))
    zero = lambda y: 0 * y
    z = ms.backend.default_rng(5).normal(x.shape, dtype=np.float64)
    normless = 0.5 * (zero(x + sigma * z) + z / sigma)
    assert np.all(np.abs(normless.mean(0)) < N_SE * normless.std(0) / math.sqrt(n))
    with_norm = objectives.dsm(zero, x, sigma, ms.backend.default_rng(5))
    # 0.5 ‖z‖²/σ² has mean 0.5 D/σ² = 2 and sd √2 · 2 / √n per the chi-square: 4 se = 0.05
    assert with_norm == pytest.approx(0.5 / sigma ** 2, abs=N_SE * math.sqrt(2) * 2 / math.sqrt(n))
    # the perturbed score lowers it by 0.5 E‖∇log p_σ‖² (measured 0.47, 0.46 by 200,000 fresh draws)
    assert objectives.dsm(p.perturbed(sigma).score, x, sigma, ms.backend.default_rng(5)) < with_norm - 0.3


@pytest.mark.identity
def test_ten_langevin_steps_per_level_do_not_forget_the_level_above():
    """NCSN samples with T = 100 steps per level at step_lr 2e-5 (Song & Ermon 2019 §5;
    ermongroup/ncsn configs/anneal.yml: n_steps_each 100); Khungurn's notes say T = 10. In our
    convention that step_lr is ε = 4e-5, and on a one-point data set (the worst case of NCSNv2's
    Proposition 3) each step contracts x by r = 1 - ε/(2σ_L²) = 0.8 at every level, so a level
    keeps r^T of the offset it inherits: 0.107 at T = 10, 2e-10 at T = 100. In variance, with
    σ from 1 to 0.01 in 10 levels (γ = 1.668), T = 100 reaches the stationary ratio
    1/(1 - ε/(4σ_L²)) = 1.111 to 1e-18, T = 10 leaves 1.130. Closed forms: rounding only."""
    eps, sigma_min = 4e-5, 0.01
    gamma = (1.0 / 0.01) ** (1 / 9)
    r = 1 - eps / (2 * sigma_min ** 2)
    assert r ** 10 == pytest.approx(0.107, abs=1e-3) and r ** 100 < 1e-9
    stationary = 1 / (1 - eps / (4 * sigma_min ** 2))
    ratios = {t: schedule.langevin_variance_ratio(eps, t, gamma, sigma_min) for t in (10, 100)}
    assert ratios[100] == pytest.approx(stationary, rel=1e-12)
    assert ratios[10] == pytest.approx(stationary + r ** 20 * (gamma ** 2 - stationary), rel=1e-12)
    assert ratios[10] - stationary > 0.015
