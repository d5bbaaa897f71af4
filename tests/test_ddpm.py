"""DDPM (Ho et al. 2020) and DDIM (Song, Meng & Ermon 2021) in their own notation, and their map
to the VP SDE (Song et al. 2021 App. B), against closed forms.

Gaussian data N(MU, S2) makes every step affine: q_i = N(√ᾱ_i MU, V_i), V_i = ᾱ_i S2 + 1 - ᾱ_i,
the exact ε-prediction is √(1 - ᾱ_i)(x - √ᾱ_i MU)/V_i, DDPM's output mean and variance follow an
exact recursion and DDIM's deterministic map has the closed-form limit
x_0 = MU + (x_T - √ᾱ_T MU) √(S2/V_T) (the probability flow's).
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minimalscore as ms
from minimalscore import sde
from diffusion_targets import MIXTURE, N_SE, assert_matches, exact_eps, pushed, scaled

MU, S2 = 1.5, 0.25
VP = sde.VP()


def host_betas(n_steps):
    return [float(b) for b in ms.backend.asnumpy(sde.vp_betas(n_steps))]


@pytest.mark.identity
@settings(max_examples=20, deadline=None, derandomize=True)
@given(n_steps=st.integers(21, 300), fraction=st.floats(0.0, 1.0))
def test_posterior_is_the_conditioned_joint_gaussian(n_steps, fraction):
    """Ho et al. eq. 7 equals Gaussian conditioning of the joint of (x_{t-1}, x_t) given x_0,
    mean [√ᾱ_{t-1} x_0, √ᾱ_t x_0], covariance [[1 - ᾱ_{t-1}, √α_t (1 - ᾱ_{t-1})], [., 1 - ᾱ_t]]:
    μ = m_1 + Σ_12 Σ_22⁻¹ (x_t - m_2), variance Σ_11 - Σ_12² / Σ_22, to float64 rounding."""
    betas = sde.vp_betas(n_steps)
    i = min(int(fraction * n_steps), n_steps - 1)
    ab = sde.alphas_bar(betas)
    ab_prev = ab[i - 1] if i > 0 else 1.0
    x_t, x_0 = np.array([[0.3, -1.2]]), np.array([[1.0, 0.5]])
    s11, s22 = 1 - ab_prev, 1 - ab[i]
    s12 = math.sqrt(ab[i] / ab_prev) * s11  # Cov(x_{t-1}, √α_t x_{t-1} + √β_t z)
    mean = math.sqrt(ab_prev) * x_0 + s12 / s22 * (x_t - math.sqrt(ab[i]) * x_0)
    got_mean, got_var = sde.ddpm_posterior(betas, x_t, x_0, i)
    np.testing.assert_allclose(got_mean, mean, rtol=1e-12, atol=1e-12)
    assert got_var == pytest.approx(s11 - s12 ** 2 / s22, rel=1e-9, abs=1e-15)


@pytest.mark.identity
def test_ddpm_chain_is_the_vp_sde_discretised():
    """β_i T = β(t_i) on Ho's linear schedule; ᾱ_i → alpha_{i/T}² with an O(1/T) error (measured
    8.1e-4 at T = 1000, halving as T doubles); and one DDPM mean step equals the reverse SDE's
    Euler-Maruyama step with Δt = 1/T up to O(1/T²) (the displacement itself is O(1/T): measured
    2.5e-6 against 2.8e-3 at T = 1000, ratio 4 per doubling)."""
    np.testing.assert_allclose(np.array(host_betas(1000)) * 1000, VP.diffusion(np.linspace(0, 1, 1000)) ** 2,
                               rtol=1e-12)
    errors = []
    for n_steps in (500, 1000, 2000):
        t = np.arange(1, n_steps + 1) / n_steps
        errors.append(np.abs(np.array(sde.alphas_bar(sde.vp_betas(n_steps))) - VP.marginal(t)[0] ** 2).max())
    assert errors[1] < 1e-3 and 1.8 < errors[0] / errors[1] < 2.2 and 1.8 < errors[1] / errors[2] < 2.2
    gaps = []
    x, score = np.array([[0.7]]), lambda y: -0.9 * y
    for n_steps in (1000, 2000):
        b, ab, i = host_betas(n_steps), sde.alphas_bar(sde.vp_betas(n_steps)), n_steps // 2
        eps = -math.sqrt(1 - ab[i]) * score(x)
        ddpm_mean = (x - b[i] / math.sqrt(1 - ab[i]) * eps) / math.sqrt(1 - b[i])
        t = (i + 1) / n_steps
        em_mean = x + (VP.diffusion(t) ** 2 * score(x) - VP.drift(x, t)) / n_steps
        gaps.append(abs(float((ddpm_mean - em_mean)[0, 0])))
        assert gaps[-1] < 1e-3 * abs(float((ddpm_mean - x)[0, 0]))
    assert 3.5 < gaps[0] / gaps[1] < 4.5


@pytest.mark.identity
def test_ddim_step_is_the_probability_flow_euler_step_to_first_order():
    """With the exact ε = -sigma_t ∇log p_t of the mixture under VP, one DDIM step (eq. 12, η = 0)
    from ᾱ = alpha_t² to alpha_{t-Δt}² and one Euler step of the probability-flow ODE differ by
    O(Δt²) while each moves x by O(Δt): the gap falls 4x as Δt halves (measured 7.6e-4 at
    Δt = 0.02 to 4.8e-5 at 0.005, against moves of 2.4e-2 to 5.9e-3)."""
    x, t = np.array([[0.7, 0.1], [-1.0, 0.4]]), 0.5
    s = pushed(VP, t).score(x)
    gaps = []
    for dt in (0.02, 0.01, 0.005):
        (alpha, sigma), alpha_prev = VP.marginal(t), VP.marginal(t - dt)[0]
        ddim = sde.ddim_step(x, -sigma * s, alpha ** 2, alpha_prev ** 2)
        euler = x - (VP.drift(x, t) - 0.5 * VP.diffusion(t) ** 2 * s) * dt
        gaps.append(np.abs(ddim - euler).max())
        assert gaps[-1] < 0.1 * np.abs(ddim - x).max()
    assert 3.5 < gaps[0] / gaps[1] < 4.5 and 3.5 < gaps[1] / gaps[2] < 4.5


def gaussian_eps(n_steps):
    ab = sde.alphas_bar(sde.vp_betas(n_steps))

    def eps(x, i):
        k = int(i[0])
        return math.sqrt(1 - ab[k]) * (x - math.sqrt(ab[k]) * MU) / (ab[k] * S2 + 1 - ab[k])
    return eps, ab


def ddpm_moments(n_steps, variance="beta"):
    """DDPM's exact output mean and variance on Gaussian data from the exact q_T: the step
    x' = (x - β/√(1 - ᾱ) ε)/√α + σ z is affine, x' = c x + d + σ z."""
    b, ab = host_betas(n_steps), sde.alphas_bar(sde.vp_betas(n_steps))
    mean, var = math.sqrt(ab[-1]) * MU, ab[-1] * S2 + 1 - ab[-1]
    for i in reversed(range(n_steps)):
        v_i = ab[i] * S2 + 1 - ab[i]
        c = (1 - b[i] / v_i) / math.sqrt(1 - b[i])
        mean = c * mean + b[i] * math.sqrt(ab[i]) * MU / v_i / math.sqrt(1 - b[i])
        noise = b[i] if variance == "beta" else (1 - ab[i - 1]) / (1 - ab[i]) * b[i]
        var = c ** 2 * var + (noise if i > 0 else 0.0)
    return mean, var


@pytest.mark.identity
@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_ddpm_converges_at_order_one_in_the_number_of_steps(variance):
    """With the exact ε the DDPM mean is the exact E[x_{t-1} | x_t] (Ho's μ is linear in x_0), so
    the output mean is exact; its variance error halves as T doubles (measured relative errors at
    T = 100 .. 800: σ² = β +3.1e-2 .. +3.8e-3, σ² = β̃ -1.2e-1 .. -1.9e-2; ratios 1.8-2.0). And
    ddpm_sample's output at T = 100 has the recursion's mean and variance within N_SE se."""
    errors = []
    for n_steps in (100, 200, 400, 800):
        mean, var = ddpm_moments(n_steps, variance)
        assert mean == pytest.approx(MU, abs=1e-12)
        errors.append(abs(var / S2 - 1))
    assert all(1.7 < errors[k] / errors[k + 1] < 2.3 for k in range(3))
    n, rng, (eps, ab) = 20000, ms.backend.default_rng(31), gaussian_eps(100)
    x_T = math.sqrt(ab[-1]) * MU + math.sqrt(ab[-1] * S2 + 1 - ab[-1]) * rng.normal((n, 1), dtype=np.float64)
    x = sde.ddpm_sample(eps, sde.vp_betas(100), x_T, rng, variance=variance)
    mean, var = ddpm_moments(100, variance)
    assert abs(float(x.mean()) - mean) < N_SE * math.sqrt(var / n)
    assert abs(float(x.var()) - var) < N_SE * var * math.sqrt(2 / n)


@pytest.mark.identity
def test_ddim_converges_at_order_one_in_the_number_of_steps():
    """DDIM with the exact ε carries a point 1.3 standard deviations out of q_T to the closed-form
    limit: the error halves as the steps double (measured 0.34, 0.18, 0.092, 0.047 of S2's
    standard deviation at 10 .. 80 of T = 1000 steps: first order, Euler in σ̄)."""
    eps, ab = gaussian_eps(1000)
    v_T = ab[-1] * S2 + 1 - ab[-1]
    x_T = np.array([[math.sqrt(ab[-1]) * MU + 1.3 * math.sqrt(v_T)]])
    exact = MU + 1.3 * math.sqrt(S2)
    errors = [abs(float(sde.ddim_sample(eps, sde.vp_betas(1000), x_T, k)[0, 0]) - exact) / math.sqrt(S2)
              for k in (10, 20, 40, 80)]
    assert all(1.7 < errors[k] / errors[k + 1] < 2.3 for k in range(3))
    assert errors[-1] < 0.05


@pytest.mark.identity
@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_ddpm_and_ddim_reproduce_the_mixture(sampler):
    """From 10,000 draws of the exact q_T and the exact ε of the mixture, DDPM (T = 200, σ² = β)
    and DDIM (250 of T = 1000 steps) return the data's mean, covariance and mode weights within
    N_SE se plus an allowance ~3x their Gaussian-data bias: DDPM's variance +1.5% at T = 200
    (mean exact), DDIM's map error 1.5e-2 of a standard deviation at 250 steps."""
    n_steps = 200 if sampler == "ddpm" else 1000
    betas, rng = sde.vp_betas(n_steps), ms.backend.default_rng(41)
    ab = sde.alphas_bar(betas)
    x_T = scaled(MIXTURE, math.sqrt(ab[-1]), math.sqrt(1 - ab[-1])).sample(10000, rng)
    if sampler == "ddpm":
        x = sde.ddpm_sample(exact_eps(betas), betas, x_T, rng)
        assert_matches(x, MIXTURE, allowance=0.005, cov_allowance=0.06)
    else:
        x = sde.ddim_sample(exact_eps(betas), betas, x_T, 250)
        assert_matches(x, MIXTURE, allowance=0.01, cov_allowance=0.06)


def test_ddim_steps_are_evenly_spaced_and_end_at_T():
    assert sde.ddim_steps(1000, 4) == [249, 499, 749, 999]
    assert sde.ddim_steps(10, 10) == list(range(10))
    assert sde.ddim_steps(10, 3)[-1] == 9


def test_bad_arguments_name_the_argument():
    rng, x, eps = ms.backend.default_rng(0), np.zeros((4, 2)), (lambda y, i: y)
    cases = {
        "betas": [lambda: sde.ddpm_sample(eps, np.array([0.0, 0.1]), x, rng),
                  lambda: sde.alphas_bar(np.array([[0.1]]))],
        "n_steps": [lambda: sde.ddim_sample(eps, sde.vp_betas(100), x, 101), lambda: sde.vp_betas(1)],
        "beta_max": [lambda: sde.vp_betas(10)],
        "variance": [lambda: sde.ddpm_sample(eps, sde.vp_betas(100), x, rng, variance="fixed")],
        "eps_model": [lambda: sde.ddim_sample(lambda y, i: y[:, 0], sde.vp_betas(100), x, 5)],
        "i": [lambda: sde.ddpm_posterior(sde.vp_betas(100), x, x, 100)],
        "alpha_bar": [lambda: sde.ddim_step(x, x, 1.5, 0.5)],
        "eps": [lambda: sde.ddim_step(x, x[:, :1], 0.5, 0.6)],
    }
    for name, calls in cases.items():
        for call in calls:
            with pytest.raises(ValueError, match=f"^{name}:"):
                call()
