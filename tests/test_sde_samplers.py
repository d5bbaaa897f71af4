"""The samplers and the likelihood over VE, VP and sub-VP with exact scores (Song et al. 2021
eqs. 6 and 13, Alg. 2-5, App. D.2): what is left is discretisation error, measured here.

Two targets. A 2-D Gaussian mixture pushed through each process (``diffusion_targets``): every
sampler started from draws of the exact p_1 reproduces p_{t_min} (mean, covariance, mode
weights). Gaussian data N(MU, S2): p_t = N(alpha_t MU, V_t), V_t = alpha_t² S2 + sigma_t², the
probability-flow map is x(t) = m_t + (x(1) - m_1) √(V_t/V_1) in closed form, and Euler-Maruyama's
mean and variance obey an exact affine recursion, so each integrator's order is measured without
Monte Carlo noise.
"""
import math

import numpy as np
import pytest

import minimalscore as ms
from minimalscore import sde
from diffusion_targets import N_SE, assert_matches, exact_score, pushed

PROCESSES = {"VE": sde.VE(0.01, 10.0), "VP": sde.VP(), "SubVP": sde.SubVP()}
MU, S2 = 1.5, 0.25

# Steps per sampler, and the discretisation allowance added to N_SE standard errors of 10,000
# samples (se ~ 0.01 on the mean, ~ 0.02 on covariance entries). The allowance is ~3x each
# sampler's bias on Gaussian data at that step count (measured below: Euler-Maruyama at 200
# steps 4.5e-3 on the mean and 3e-3 relative on the variance, Heun at 50 steps 1.3e-3, RK4 at
# 20 steps 4e-4). The corrector's ULA steps leave the covariance inflated by up to
# snr² = 2.6% (tests/test_sde.py), so PC's covariance allowance is snr² times the largest
# covariance entry.
SAMPLERS = {
    "reverse_sde": (lambda s, p, x, rng: sde.reverse_sde(s, p, x, 200, rng), 0.015, 0.03),
    "predictor_corrector": (lambda s, p, x, rng: sde.predictor_corrector(s, p, x, 100, rng), 0.01, 0.06),
    "pf_heun": (lambda s, p, x, rng: sde.probability_flow(s, p, x, 50, method="heun"), 0.005, 0.01),
    "pf_rk4": (lambda s, p, x, rng: sde.probability_flow(s, p, x, 20), 0.005, 0.01),
}


@pytest.mark.identity
@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("name", PROCESSES)
def test_sampler_reproduces_the_mixture(name, sampler):
    """From 10,000 draws of the exact p_1 with the exact score of p_t, each sampler's output has
    p_{t_min}'s mean, covariance and mode weights within N_SE se plus its allowance (above)."""
    process, (run, allowance, cov_allowance) = PROCESSES[name], SAMPLERS[sampler]
    rng = ms.backend.default_rng(sorted(PROCESSES).index(name) * 10 + sorted(SAMPLERS).index(sampler))
    x = run(exact_score(process), process, pushed(process, 1.0).sample(10000, rng), rng)
    assert_matches(x, pushed(process, process.t_min), allowance, cov_allowance)


def gaussian(process):
    """(m_t, V_t) of Gaussian data N(MU, S2) under the process, and its exact score(x, t)."""
    def mv(t):
        alpha, sigma = process.marginal(t)
        return alpha * MU, alpha ** 2 * S2 + sigma ** 2

    def score(x, t):
        m, v = mv(float(t[0]))
        return -(x - m) / v
    return mv, score


@pytest.mark.identity
@pytest.mark.parametrize("method, steps, order, error_bound", [
    ("euler", (100, 200, 400), 1, 4e-3), ("heun", (25, 50, 100), 2, 3e-3), ("rk4", (10, 20, 40), 4, 3e-5)])
@pytest.mark.parametrize("name", PROCESSES)
def test_probability_flow_converges_at_its_order(name, method, steps, order, error_bound):
    """The flow of a point 1.3 standard deviations out against the closed-form map: the error
    falls by ~2^order as steps double (asserted > 0.75 x 2^order; measured 1.8-2.1 for Euler,
    4.1-5.2 for Heun, 13-20 for RK4), and at the largest step count it is below the stated bound
    (in units of sqrt(V_{t_min}); Euler/Heun/RK4 measured VE 3.9e-2/2.4e-3/2.1e-5, VP
    9.0e-4/1.3e-5/1.2e-6, sub-VP 9.8e-4/3.2e-4/1.1e-6)."""
    process = PROCESSES[name]
    mv, score = gaussian(process)
    (m1, v1), (m0, v0) = mv(1.0), mv(process.t_min)
    exact = m0 + 1.3 * math.sqrt(v0)
    x1 = np.array([[m1 + 1.3 * math.sqrt(v1)]])
    flow = lambda k: float(sde.probability_flow(score, process, x1, k, method=method)[0, 0])
    errors = [abs(flow(k) - exact) / math.sqrt(v0) for k in steps]
    assert errors[0] / errors[1] > 0.75 * 2 ** order and errors[1] / errors[2] > 0.75 * 2 ** order
    if name != "VE" or method != "euler":  # VE's Euler error is 0.04 at 400 steps: σ(t) grows 1000-fold
        assert errors[-1] < error_bound


def em_moments(process, n_steps):
    """Euler-Maruyama's exact output mean and variance on Gaussian data from the exact p_1: each
    step x' = x + [g² s - a x] Δt + g √Δt z is affine in x (the last one without noise)."""
    mv, _ = gaussian(process)
    mean, var = mv(1.0)
    dt = (1 - process.t_min) / n_steps
    for i in range(n_steps):
        t = 1 - i * dt
        m, v = mv(t)
        g2, a = process.diffusion(t) ** 2, float(process.drift(np.ones((1, 1)), t)[0, 0])
        mean = mean + (-g2 * (mean - m) / v - a * mean) * dt
        var = (1 + (-g2 / v - a) * dt) ** 2 * var + (g2 * dt if i < n_steps - 1 else 0.0)
    return mean, var


@pytest.mark.identity
@pytest.mark.parametrize("name", ["VP", "SubVP"])
def test_reverse_sde_is_weak_order_one(name):
    """The Wasserstein-2 distance between Euler-Maruyama's Gaussian output and p_{t_min},
    √(Δm² + (√v - √V)²), halves as steps double (ratios measured 1.9-2.0 from 200 to 800
    steps; asserted in (1.6, 2.5)); and the sampler's own output at 200 steps has the
    recursion's mean and variance within N_SE se (20,000 samples). (VE's variance bias changes
    sign near 800 steps: its first-order terms cancel, tests/test_sde.py.)"""
    process = PROCESSES[name]
    mv, score = gaussian(process)
    m0, v0 = mv(process.t_min)
    w2 = []
    for n in (200, 400, 800):
        mean, var = em_moments(process, n)
        w2.append(math.hypot(mean - m0, math.sqrt(var) - math.sqrt(v0)))
    assert 1.6 < w2[0] / w2[1] < 2.5 and 1.6 < w2[1] / w2[2] < 2.5
    n, rng = 20000, ms.backend.default_rng(21)
    m1, v1 = mv(1.0)
    x = sde.reverse_sde(score, process, m1 + math.sqrt(v1) * rng.normal((n, 1), dtype=np.float64), 200, rng)
    mean, var = em_moments(process, 200)
    assert abs(float(x.mean()) - mean) < N_SE * math.sqrt(var / n)
    assert abs(float(x.var()) - var) < N_SE * var * math.sqrt(2 / n)


@pytest.mark.identity
@pytest.mark.parametrize("name", PROCESSES)
def test_probability_flow_log_likelihood_of_the_mixture(name):
    """log p_{t_min}(x) by the probability-flow ODE with the exact score and the exact p_1 equals
    the mixture's closed-form log-density at t_min to 1e-3 nats at 50 RK4 steps (measured VE
    1.1e-4, VP 7e-6, sub-VP 7e-6; 16x less per doubling). With the default prior N(0, σ² I) the
    answer is off by the prior's mismatch instead (measured VE 0.08, VP 0.009 nats)."""
    process = PROCESSES[name]
    x = np.array([[-2.0, 0.5], [0.0, 0.0], [1.0, 1.0], [2.5, -1.0], [-1.5, 0.3]])
    ll = sde.log_likelihood(exact_score(process), process, x, 50,
                            prior_log_prob=pushed(process, 1.0).log_prob)
    np.testing.assert_allclose(ll, pushed(process, process.t_min).log_prob(x), atol=1e-3)



@pytest.mark.parametrize("name", PROCESSES)
def test_samplers_ask_only_for_times_in_t_min_to_1_and_skip_the_member_checks(name, monkeypatch):
    """Every time a sampler hands the score lies in [t_min, 1], the grid's ends exactly, not
    rounded past them (VE's t_min = 0 less 3e-17 is outside the SDE; VP's kernel is NaN there);
    and the samplers, having checked their arguments once, call the SDE's plain coefficients:
    the checked members (a host read per array t) never run inside their loops."""
    process, asked = PROCESSES[name], []
    monkeypatch.setattr(ms.checks, "times", lambda *a, **k: pytest.fail("a checked SDE member ran"))

    def score(x, t):
        asked.append(np.asarray(t))
        return -x
    x, rng = np.zeros((2, 1)), ms.backend.default_rng(0)
    for n_steps in (3, 7, 10, 29):
        sde.probability_flow(score, process, x, n_steps)
        sde.probability_flow(score, process, x, n_steps, method="heun")
        sde.log_likelihood(score, process, x, n_steps)
        sde.reverse_sde(score, process, x, n_steps, rng)
        sde.predictor_corrector(score, process, x, n_steps, rng, predictor="reverse_diffusion")
    times = np.concatenate(asked)
    assert times.min() >= process.t_min and times.max() <= 1.0
    assert times.min() == process.t_min and times.max() == 1.0
