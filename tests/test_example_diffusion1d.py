"""`python -m examples.diffusion1d --quick` runs and its table says what the study claims.

Margins come from the sample sizes. A KS distance between n draws and the M-point reference
sample fluctuates like √(1/n + 1/M) times a Kolmogorov variable, whose mean is √(π/2) log 2 = 0.8687
and standard deviation 0.2603 (Kolmogorov 1933): ``ks_noise`` gives that mean and sd. A KS
difference between two independent runs has sd √2 times that.
"""
import math

import pytest

from examples import diffusion1d
from quick_runs import quick_run

KOLMOGOROV_MEAN, KOLMOGOROV_SD = 0.8687, 0.2603


def ks_noise(n, m):
    """(mean, sd) of the KS distance of n exact draws from an m-draw reference sample."""
    scale = math.sqrt(1 / n + 1 / m)
    return KOLMOGOROV_MEAN * scale, KOLMOGOROV_SD * scale


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    return quick_run(diffusion1d, tmp_path_factory.mktemp("diffusion1d"), ("1_forward_VE", "1_forward_VP", "2_error_exact_score", "3_error_learned_score", "4_likelihood"), "network")


def _ks(metrics, kind, sde, family, budget):
    curve = metrics["curves"][kind][sde][family]
    return curve["ks"][metrics["size"]["budgets"].index(budget)]


def _noise(metrics, kind):
    return ks_noise(metrics["size"][f"n_{kind}"], metrics["size"]["n_reference"])


def test_metrics_have_the_documented_keys(metrics):
    assert set(metrics["curves"]["exact"]["VE"]) == {"annealed", "em", "pc", "heun", "rk4"}
    assert set(metrics["curves"]["exact"]["VP"]) == {"em", "pc", "heun", "rk4", "ddpm", "ddim"}
    for kind in ("exact", "learned"):
        for sde in ("VE", "VP"):
            for curve in metrics["curves"][kind][sde].values():
                assert len(curve["nfe"]) == len(curve["ks"]) == len(metrics["size"]["budgets"])
                # the evaluations are counted: each sampler spends its budget (RK4: 4 per step)
                assert all(b - 3 <= n <= b for n, b in zip(curve["nfe"], metrics["size"]["budgets"]))


def test_every_sampler_but_annealed_langevin_reaches_the_noise_floor_with_the_exact_score(metrics):
    # exact score, largest budget: every SDE/ODE/DDPM/DDIM sampler is within the noise of exact
    # draws, mean + 4 sd (a 4-sd excursion has probability ~1e-4 under the Kolmogorov law)
    mean, sd = _noise(metrics, "exact")
    last = metrics["size"]["budgets"][-1]
    for sde, by_family in metrics["curves"]["exact"].items():
        for family in by_family:
            if family != "annealed":
                assert _ks(metrics, "exact", sde, family, last) < mean + 4 * sd, (sde, family)
    # annealed Langevin (5 steps a level) still carries a bias far above that at the same budget
    assert _ks(metrics, "exact", "VE", "annealed", last) > mean + 8 * sd


def test_the_ode_beats_euler_maruyama_at_equal_evaluations_with_the_exact_score(metrics):
    # at 50 evaluations on VE and 20 on VP (where EM's first-order bias is still above the noise
    # and RK4's fourth-order one is not), RK4's KS is below EM's. The total advantage is tested
    # against the noise of a sum of four independent KS values: sd 2 sd_KS, margin 3 of those.
    _, sd = _noise(metrics, "exact")
    advantage = sum(_ks(metrics, "exact", sde, "em", b) - _ks(metrics, "exact", sde, "rk4", b)
                    for sde, b in (("VE", 50), ("VP", 20)))
    assert advantage > 3 * 2 * sd
    # below that, RK4's 2 steps are worse than EM's 10 on VE: order pays only once steps are small
    assert _ks(metrics, "exact", "VE", "rk4", 10) > _ks(metrics, "exact", "VE", "em", 10) + 4 * sd


def test_euler_maruyama_error_falls_with_evaluations(metrics):
    mean, sd = _noise(metrics, "exact")
    for sde in ("VE", "VP"):
        assert _ks(metrics, "exact", sde, "em", 10) > mean + 10 * sd  # 10 steps: a visible bias
        assert _ks(metrics, "exact", sde, "em", 10) > 2 * _ks(metrics, "exact", sde, "em", 50)


def test_the_exact_score_ode_is_a_transport_map(metrics):
    # with the exact score the ODE's law, computed on a grid by the change of variables, is p at
    # t_min up to the RK4 and trapezoid errors (1e-6 measured): nothing statistical here
    for sde in ("VE", "VP"):
        law = metrics["ode_law"]["exact"][sde]
        assert law["ks"] < 1e-4 and abs(law["mass"] - 1) < 1e-4


def test_the_learned_ode_settles_at_its_own_law(metrics):
    # |KS(samples, ref) - KS(q, p)| <= KS(samples, q) + KS(ref, p) (triangle inequality for the
    # sup norm): a Kolmogorov variable at n_learned and one at n_reference, mean + 4 sd
    mean, sd = _noise(metrics, "learned")
    last = metrics["size"]["budgets"][-1]
    for sde in ("VE", "VP"):
        law = metrics["ode_law"]["learned"][sde]["ks"]
        for budget in (200, last):  # the plateau: the same level at both budgets
            assert abs(_ks(metrics, "learned", sde, "rk4", budget) - law) < mean + 4 * sd, (sde, budget)
        # and that level is the network's error, well above the exact-score ODE's
        assert law > 10 * metrics["ode_law"]["exact"][sde]["ks"] and law > 2 * sd


def test_the_learned_score_error_is_above_the_exact_score_error(metrics):
    _, sd_learned = _noise(metrics, "learned")
    _, sd_exact = _noise(metrics, "exact")
    last = metrics["size"]["budgets"][-1]
    margin = 3 * math.hypot(sd_learned, sd_exact)
    for sde in ("VE", "VP"):
        assert (_ks(metrics, "learned", sde, "rk4", last) > _ks(metrics, "exact", sde, "rk4", last) + margin)


def test_the_learned_reverse_sde_respects_pinskers_bound(metrics):
    # KS(p, law of the reverse SDE) <= √(KL/2) <= √(J/2) (Song, Durkan, Murray & Ermon 2021 Thm 1,
    # the samplers starting from p_1 itself), up to the sampling noise of the KS estimate
    mean, sd = _noise(metrics, "learned")
    last = metrics["size"]["budgets"][-1]
    for sde in ("VE", "VP"):
        assert _ks(metrics, "learned", sde, "em", last) < metrics["network"][sde]["KS bound"] + mean + 4 * sd


def test_pf_ode_likelihood_matches_the_analytic_log_density(metrics):
    # deterministic: RK4's error on ∫ div v dt at the quick run's 30 steps, measured 0.010 nats
    # (VE) and 0.0034 (VP); RK4's error falls 16x per doubling, so 0.02 leaves a factor 2
    lik = metrics["likelihood"]
    for sde in ("VE", "VP"):
        assert lik["exact"][sde]["mean_abs_error"] < 0.02
        assert abs(lik["exact"][sde]["bpd_ode"] - lik["exact"][sde]["bpd_true"]) < 0.02 / math.log(2)
        # the network's error dominates the learned likelihood
        assert lik["learned"][sde]["mean_abs_error"] > 5 * lik["exact"][sde]["mean_abs_error"]


def test_hutchinson_is_unbiased_with_variance_two_integral_squared(metrics):
    # in 1-D a Gaussian probe gives log p_1 + ε² ∫div: error (ε² - 1) ∫div, so each draw's ε² is
    # read back exactly. ε² ~ χ²_1: mean 1 (standard error √(2/k) over k draws), E(ε² - 1)² = 2
    # (standard error √(56/k): the fourth central moment of χ²_1 is 60). 4 standard errors each.
    for kind in ("exact", "learned"):
        for sde in ("VE", "VP"):
            lik = metrics["likelihood"][kind][sde]
            k = lik["n_probes"]
            assert abs(lik["hutchinson_bias"]) < 4 * lik["hutchinson_bias_se"], (kind, sde)
            assert abs(lik["probe_sq_mean"] - 1) < 4 * math.sqrt(2 / k), (kind, sde)
            assert abs(lik["probe_sq_var"] - 2) < 4 * math.sqrt(56 / k), (kind, sde)
