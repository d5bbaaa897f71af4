"""NCSNv2's schedule rules (Song & Ermon 2020 Techniques 1, 2, 4) against the digits' numbers
and the released configs (ermongroup/ncsnv2)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minimalscore as ms
from minimalscore import schedule


@pytest.fixture(scope="module")
def digits_8x8():
    from sklearn.datasets import load_digits
    return load_digits().images[:, None] / 16.0


def test_largest_pairwise_distance_of_the_digits(digits_8x8):
    # 4.815 at 8x8; nearest-neighbour upsampling copies each pixel 4 times, so every
    # distance doubles: 9.630 at 16x16
    assert schedule.max_pairwise_distance(digits_8x8) == pytest.approx(4.815, abs=5e-4)
    big = digits_8x8.repeat(2, axis=2).repeat(2, axis=3)
    assert schedule.max_pairwise_distance(big) == pytest.approx(9.630, abs=5e-4)


def test_max_pairwise_distance_matches_brute_force():
    x = np.random.default_rng(0).standard_normal((300, 5))
    brute = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)).max()
    assert schedule.max_pairwise_distance(x, chunk=64) == pytest.approx(brute, rel=1e-12)


@pytest.mark.identity
@pytest.mark.parametrize("dim,gamma", [(64, 1.361), (256, 1.153)])
def test_gamma_rule(dim, gamma):
    g = schedule.gamma_for_dim(dim)
    assert g == pytest.approx(gamma, abs=5e-4)
    assert schedule.shell_overlap(g, dim) == pytest.approx(0.5, abs=1e-9)


@pytest.mark.identity
def test_number_of_levels_for_the_digits():
    # L ~ 21 at D = 64 (sigma_1 = 4.815) and ~ 49 at D = 256 (sigma_1 = 9.630)
    assert schedule.n_levels(4.815, 0.01, schedule.gamma_for_dim(64)) == 21
    assert schedule.n_levels(9.630, 0.01, schedule.gamma_for_dim(256)) == 49


@pytest.mark.identity
def test_released_cifar10_config_lands_at_0566():
    # ncsnv2 configs/cifar10.yml: sigma_begin 50, sigma_end 0.01, num_classes 232, 3x32x32
    gamma = (50 / 0.01) ** (1 / 231)
    assert schedule.shell_overlap(gamma, 3 * 32 * 32) == pytest.approx(0.566, abs=1e-3)


@pytest.mark.identity
def test_eps_is_twice_the_released_step_lr():
    # ncsnv2 cifar10.yml: step_lr 0.0000062 with n_steps_each 5, in its x + a s + sqrt(2a) z
    # convention; ours is x + (eps/2) s + sqrt(eps) z, so eps = 2a. The config rounds to 2 digits.
    gamma = (50 / 0.01) ** (1 / 231)
    eps = schedule.langevin_eps(5, gamma, 0.01)
    assert eps / 2 == pytest.approx(6.2e-6, rel=0.01)


@pytest.mark.identity
def test_variance_ratio_closed_form_matches_the_recursion():
    # the closed form r^(2T)(gamma^2 - v*) + v* against T steps of v <- r^2 v + eps_i, exactly
    gamma, sigma_l, sigma_i, eps, steps = 1.36, 0.01, 0.37, 3e-5, 7
    eps_i = eps * sigma_i ** 2 / sigma_l ** 2
    r = 1 - eps_i / (2 * sigma_i ** 2)
    v = (gamma * sigma_i) ** 2
    for _ in range(steps):
        v = r * r * v + eps_i
    assert v / sigma_i ** 2 == pytest.approx(schedule.langevin_variance_ratio(eps, steps, gamma, sigma_l), rel=1e-12)


@pytest.mark.identity
def test_variance_ratio_by_simulating_langevin():
    # ULA in our convention on N(0, sigma_i^2) (the one-point data set's perturbed density),
    # started at the previous level's spread: the sample variance of n = 200,000 draws has a
    # relative standard error sqrt(2/n) = 0.3%; allow 5 of them.
    rng = np.random.default_rng(1)
    gamma, sigma_l, sigma_i, steps = 1.36, 0.01, 0.5, 5
    eps = schedule.langevin_eps(steps, gamma, sigma_l)
    eps_i = eps * sigma_i ** 2 / sigma_l ** 2
    x = gamma * sigma_i * rng.standard_normal(200_000)
    for _ in range(steps):
        x = x + eps_i / 2 * (-x / sigma_i ** 2) + math.sqrt(eps_i) * rng.standard_normal(x.shape)
    predicted = schedule.langevin_variance_ratio(eps, steps, gamma, sigma_l)
    assert x.var() / sigma_i ** 2 == pytest.approx(predicted, rel=5 * math.sqrt(2 / x.size))


@pytest.mark.identity
def test_eps_minimises_the_distance_to_one():
    gamma = schedule.gamma_for_dim(64)
    eps = schedule.langevin_eps(5, gamma, 0.01)
    best = schedule.langevin_variance_ratio(eps, 5, gamma, 0.01)
    for factor in (0.5, 0.9, 1.1, 2.0):
        assert schedule.langevin_variance_ratio(eps * factor, 5, gamma, 0.01) > best
    assert 1 < best < gamma ** 2  # the ratio never reaches 1: both limits exceed it


@pytest.mark.identity
def test_geometric_sigmas_and_the_whole_recipe(digits_8x8):
    sigmas = ms.backend.asnumpy(schedule.geometric_sigmas(4.0, 0.01, 9)).astype(np.float64)
    assert sigmas[0] == pytest.approx(4.0) and sigmas[-1] == pytest.approx(0.01)
    assert np.allclose(sigmas[:-1] / sigmas[1:], (400) ** (1 / 8), rtol=1e-6)
    s = schedule.ncsnv2_schedule(ms.backend.asarray(digits_8x8), n_steps_each=5)
    assert len(s["sigmas"]) == 21 and s["dim"] == 64
    assert s["gamma"] == pytest.approx(1.3619, abs=1e-4)  # (4.815 / 0.01)^(1/20)
    assert abs(schedule.shell_overlap(s["gamma"], 64) - 0.5) < 0.01
    assert 1 < s["variance_ratio"] < 1.2


# Technique 2 for small D, and the shape of the overlap ------------------------------------------

@pytest.mark.identity
@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(1, 4096))
def test_overlap_rises_from_gamma_one_with_slope_6_phi_3(dim):
    # d/dgamma [Phi(c + 3 gamma) - Phi(c - 3 gamma)] at gamma = 1 (c = 0, c' = sqrt(2D)) is
    # phi(3)(sqrt(2D) + 3) - phi(-3)(sqrt(2D) - 3) = 6 phi(3) = 0.02659, for every D. Central
    # difference with step h: truncation h^2 |f'''| / 6, and both arguments are linear in gamma,
    # so f''' = phi''(a)(sqrt(2D) + 3)^3 - phi''(b)(sqrt(2D) - 3)^3 with |phi''| <= 0.4; rounding of
    # the two overlaps (a few ulps of 1 each) adds 2 u / h, u = 1.1e-16.
    h = 1e-5
    slope = (schedule.shell_overlap(1 + h, dim) - schedule.shell_overlap(1 - h, dim)) / (2 * h)
    bound = h ** 2 / 6 * 2 * 0.4 * (math.sqrt(2 * dim) + 3) ** 3 + 2 * 1.1e-16 / h
    phi_3 = math.exp(-4.5) / math.sqrt(2 * math.pi)
    assert slope > 0
    assert abs(slope - 6 * phi_3) < bound


@pytest.mark.identity
@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(1, 4), st.floats(1.0, 1e12))
def test_overlap_never_falls_below_its_value_at_one_for_dims_up_to_4(dim, gamma):
    # the overlap is P(|Z - c| <= 3 gamma), Z ~ N(0, 1), c = sqrt(2D)(gamma - 1) >= 0. For D <= 4,
    # sqrt(2D) <= 2.83 < 3, so c - 3 gamma < -3 and c + 3 gamma >= 3: the interval holds [-3, 3]
    # and the overlap is >= Phi(3) - Phi(-3) at every gamma >= 1 (up to rounding of Phi, 1e-16)
    assert schedule.shell_overlap(gamma, dim) >= schedule.OVERLAP_AT_ONE - 1e-15


@pytest.mark.parametrize("dim", [1, 2, 3, 4])
def test_gamma_for_dim_refuses_dims_up_to_4(dim):
    with pytest.raises(ValueError, match=rf"^dim: .*D = {dim}\b"):
        schedule.gamma_for_dim(dim)
    x = ms.backend.asarray(np.random.default_rng(dim).normal(size=(50, dim)), dtype=np.float64)
    with pytest.raises(ValueError, match=rf"^x: .*D = {dim}\b"):
        schedule.ncsnv2_schedule(x, n_steps_each=5)


@pytest.mark.identity
@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(5, 4096), st.floats(0.01, 0.99))
def test_gamma_for_dim_solves_the_overlap_equation(dim, overlap):
    # for D >= 5 the overlap falls to 0 as gamma grows, so a root gamma > 1 exists below 0.9973;
    # 60 bisection halvings leave an interval far below float resolution, so the residual is
    # |f'| u gamma with |f'| <= sqrt(2D) + 3 < 100: under 1e-12
    gamma = schedule.gamma_for_dim(dim, overlap)
    assert gamma > 1
    assert abs(schedule.shell_overlap(gamma, dim) - overlap) < 1e-12


# geometric levels ----------------------------------------------------------------------------

@pytest.mark.identity
@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.floats(1e-3, 1e3), st.floats(1.01, 1e4), st.integers(2, 100))
def test_geometric_sigmas_have_equal_ratios_and_the_given_ends(sigma_min, spread, n):
    # sigma_i = sigma_max (sigma_min / sigma_max)^((i-1)/(n-1)): first and last are the limits and
    # every ratio is (sigma_max / sigma_min)^(1/(n-1)), each to float32 rounding (2^-24 per level,
    # two levels per ratio: 1.2e-7; 3e-7 allows the power's own rounding)
    sigma_max = sigma_min * spread
    sigmas = ms.backend.asnumpy(schedule.geometric_sigmas(sigma_max, sigma_min, n))
    sigmas = sigmas.astype(np.float64)
    assert sigmas.shape == (n,)
    np.testing.assert_allclose(sigmas[[0, -1]], [sigma_max, sigma_min], rtol=1.2e-7)
    np.testing.assert_allclose(sigmas[:-1] / sigmas[1:], spread ** (1 / (n - 1)), rtol=3e-7)


@pytest.mark.parametrize("args, name", [
    ((1.0, 1.0, 5), "sigma_max"),            # equal limits
    ((0.1, 1.0, 5), "sigma_max"),            # increasing
    ((1.0, 0.1, 1), "n"),                    # one level has no ratio
    ((1.0, 0.1, 2.5), "n"),
    ((1.0, 0.1, None), "n"),
    ((-1.0, 0.1, 5), "sigma_max"),
    ((1.0, float("nan"), 5), "sigma_min"),
    ((1.0, 0.0, 5), "sigma_min"),
    ((1.0, 0.9999999, 10), "n"),             # levels equal in float32
])
def test_geometric_sigmas_refuses_bad_limits_and_counts(args, name):
    with pytest.raises((ValueError, TypeError), match=f"^{name}:"):
        schedule.geometric_sigmas(*args)


@pytest.mark.parametrize("call, name", [
    (lambda: schedule.n_levels(4.8, 0.01, 1.0), "gamma"),
    (lambda: schedule.n_levels(4.8, 0.01, 0.5), "gamma"),
    (lambda: schedule.n_levels(0.01, 4.8, 1.3), "sigma_max"),
    (lambda: schedule.gamma_for_dim(64, overlap=1.0), "overlap"),
    (lambda: schedule.gamma_for_dim(64.0), "dim"),
    (lambda: schedule.shell_overlap(-1.0, 64), "gamma"),
    (lambda: schedule.langevin_variance_ratio(4e-4, 5, 1.3, 0.01), "eps"),   # |r| = 1: unstable
    (lambda: schedule.langevin_variance_ratio(1.0, 100, 1.3, 0.01), "eps"),
    (lambda: schedule.langevin_eps(0, 1.3, 0.01), "n_steps"),
    (lambda: schedule.langevin_eps(5, 1.0, 0.01), "gamma"),
    (lambda: schedule.max_pairwise_distance(np.array([[0.0, 1.0], [np.nan, 0.0]])), "x"),
    (lambda: schedule.max_pairwise_distance(np.zeros((3, 2)), chunk=0), "chunk"),
    (lambda: schedule.max_pairwise_distance([[0.0], [1.0]]), "x"),
    (lambda: schedule.max_pairwise_distance(np.array([[1e200], [-1e200]])), "x"),
    (lambda: schedule.ncsnv2_schedule(np.random.default_rng(0).normal(size=(9, 8)), 5,
                                      sigma_min=100.0), "sigma_min"),
    (lambda: schedule.ncsnv2_schedule(np.random.default_rng(0).normal(size=(9, 8)), 5.0),
     "n_steps_each"),
])
def test_schedule_functions_refuse_bad_arguments(call, name):
    with pytest.raises((ValueError, TypeError), match=f"^{name}:"):
        call()
