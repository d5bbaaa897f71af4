"""NCSNv2's schedule rules (Song & Ermon 2020 Techniques 1, 2, 4) against the digits' numbers
and of the released configs (ermongroup/ncsnv2)."""
import math

import numpy as np
import pytest

import minimalscore as ms
from minimalscore import schedule


@pytest.fixture(scope="module")
def digits_8x8():
    from sklearn.datasets import load_digits
    return load_digits().images[:, None] / 16.0


def test_largest_pairwise_distance_of_the_digits(digits_8x8):
    # 4.815 at 8x8 (pixels / 16); nearest-neighbour upsampling copies each pixel 4 times, so every
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
