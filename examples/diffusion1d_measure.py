"""What the diffusion study measures: each sampler's error against the exact p at t_min as the
number of score evaluations grows, the noise floor of that measurement, and PF-ODE log-likelihoods,
per point and as a whole law on a grid.

A sampler here is sampler(score_t, score_sigma, sde, budget, x_T, rng) -> x: it gets the score in
time, s(x, t), and in noise level, s(y, σ) (annealed Langevin's), a budget of score evaluations,
and starting points x_T. Its evaluations are counted, not assumed.
"""
import math

from tqdm.auto import tqdm

import minimalscore as ms

from . import diffusion1d_exact as exact
from . import gmm1d

SNR, STEPS_PER_LEVEL = 0.16, 5  # PC's corrector (Song et al. 2021 App. G); annealed Langevin's T
N_BINS, DATA_RANGE = 256, 12.0  # bits/dim as if x were recorded on 256 levels over [-6, 6]


def annealed_langevin(score_t, score_sigma, sde, budget, x_T, rng):
    """Song & Ermon 2019 Alg. 1 on the VE noise levels: budget/T geometric levels from σ_max to
    σ_min, T steps each, ε set so that each level ends at the right variance (Song & Ermon 2020,
    Technique 4); its last level is σ_min, so it targets p_{t_min} itself."""
    sigma_min, sigma_max = sde.marginal(0.0)[1], sde.marginal(1.0)[1]
    levels = max(2, budget // STEPS_PER_LEVEL)
    gamma = (sigma_max / sigma_min) ** (1 / (levels - 1))
    eps = ms.schedule.langevin_eps(STEPS_PER_LEVEL, gamma, sigma_min)
    sigmas = ms.schedule.geometric_sigmas(sigma_max, sigma_min, levels)
    return ms.samplers.annealed_langevin(score_sigma, x_T, sigmas, eps, STEPS_PER_LEVEL, rng)


def ddpm(score_t, score_sigma, sde, budget, x_T, rng):
    """Ho et al. 2020 Alg. 2 on the ``budget``-step chain that matches the VP SDE, ε = -sigma_t s."""
    betas, times = exact.ddpm_chain(sde, budget)
    return ms.sde.ddpm_sample(exact.eps_model(score_t, sde, times), betas, x_T, rng)


def ddim(score_t, score_sigma, sde, budget, x_T, rng):
    """Song, Meng & Ermon 2021 eq. 12 (η = 0) on the same chain, every one of its steps."""
    betas, times = exact.ddpm_chain(sde, budget)
    return ms.sde.ddim_sample(exact.eps_model(score_t, sde, times), betas, x_T, budget)


# family: (legend, the SDEs it runs on, sampler(score_t, score_sigma, sde, budget, x_T, rng))
SAMPLERS = {
    "annealed": (f"annealed Langevin, {STEPS_PER_LEVEL} steps per noise level", ("VE",), annealed_langevin),
    "em": ("reverse SDE, Euler-Maruyama", ("VE", "VP"),
           lambda s, _, sde, n, x, rng: ms.sde.reverse_sde(s, sde, x, n, rng)),
    "pc": (f"predictor-corrector, 1 Langevin step (snr {SNR})", ("VE", "VP"),
           lambda s, _, sde, n, x, rng: ms.sde.predictor_corrector(s, sde, x, n // 2, rng, snr=SNR)),
    "heun": ("probability-flow ODE, Heun", ("VE", "VP"),
             lambda s, _, sde, n, x, rng: ms.sde.probability_flow(s, sde, x, n // 2, method="heun")),
    "rk4": ("probability-flow ODE, RK4", ("VE", "VP"),
            lambda s, _, sde, n, x, rng: ms.sde.probability_flow(s, sde, x, max(1, n // 4), method="rk4")),
    "ddpm": ("DDPM ancestral (VP chain on the same steps)", ("VP",), ddpm),
    "ddim": ("DDIM, η = 0 (VP chain on the same steps)", ("VP",), ddim),
}


def _counted(f, calls):
    def g(*args):
        calls[0] += 1
        return f(*args)
    return g


def error_curves(scores, sde_name, sde, budgets, n, reference, rng, desc):
    """{family: {"nfe", "w1", "ks"}}: each sampler, at each budget of score evaluations, from n
    fresh draws of the exact p_1, so that what is measured is the sampler's error alone, not the
    prior's mismatch KL(p_1 || prior) (printed beside it); the evaluations are counted, not assumed."""
    score_t, score_sigma = scores
    runs = [(f, b) for f, (_, on, _) in SAMPLERS.items() if sde_name in on for b in budgets]
    curves = {f: {"nfe": [], "w1": [], "ks": []} for f, _ in runs}
    for family, budget in tqdm(runs, desc=desc, leave=False):
        calls = [0]
        x_T = exact.marginal(sde, 1.0).sample(n, rng).astype(ms.backend.float_dtype)
        x = SAMPLERS[family][2](_counted(score_t, calls), _counted(score_sigma, calls), sde, budget, x_T, rng)
        curves[family]["nfe"].append(calls[0])
        curves[family]["w1"].append(ms.metrics.wasserstein1_1d(x[:, 0], reference))
        curves[family]["ks"].append(ms.metrics.ks_statistic(x[:, 0], reference))
    return curves


def noise_floor(sde, n, reference, rng, repeats=8):
    """W1 and KS of n exact draws of p_{t_min} against the reference: what a perfect sampler scores
    (mean, sd over ``repeats`` draws), the level below which no curve can go."""
    p = exact.marginal(sde, sde.t_min)
    draws = [p.sample(n, rng)[:, 0] for _ in range(repeats)]
    out = {}
    for name, metric in (("w1", ms.metrics.wasserstein1_1d), ("ks", ms.metrics.ks_statistic)):
        values = [metric(d, reference) for d in draws]
        mean = sum(values) / repeats
        out[name] = (mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (repeats - 1)))
    return out


def likelihoods(score_t, sde, x, n_steps, repeats, rng):
    """PF-ODE log p_{t_min}(x) (Song et al. 2021 App. D.2) with the exact divergence and with
    ``repeats`` Hutchinson estimates, against the analytic log-density; also ∫ div v dt alone (the
    prior term set to 0), because in 1-D a Gaussian probe ε gives log p_1 + ε² ∫ div v dt: its
    error is (ε² - 1) ∫ div v dt, variance 2 (∫ div v dt)², and each draw's ε² can be read back
    (mean 1 and variance 2 if the probes are N(0, 1))."""
    xp = ms.backend.xp
    truth = exact.marginal(sde, sde.t_min).log_prob(x)
    ll = ms.sde.log_likelihood(score_t, sde, x, n_steps)
    hutchinson = xp.stack([ms.sde.log_likelihood(score_t, sde, x, n_steps, rng=rng) for _ in range(repeats)])
    integral = ms.sde.log_likelihood(score_t, sde, x, n_steps, prior_log_prob=lambda y: 0.0 * y[:, 0])
    bpd = lambda a: float(xp.mean(ms.sde.bits_per_dim(a, 1, N_BINS, DATA_RANGE)))
    spread = xp.std(hutchinson, axis=0, ddof=1)
    # each draw's ε² recovered exactly from error = (ε² - 1) ∫div (points with ∫div near 0 say nothing)
    kept = xp.abs(integral) > 0.05
    probe_sq = ((hutchinson - ll) / xp.where(kept, integral, 1.0) + 1)[:, kept]
    return {"error": ll - truth, "hutchinson_error": xp.mean(hutchinson, axis=0) - truth, "spread": spread,
            "mean_abs_error": float(xp.mean(xp.abs(ll - truth))),
            "median_abs_error": float(xp.median(xp.abs(ll - truth))),
            "bpd_true": bpd(truth), "bpd_ode": bpd(ll), "bpd_hutchinson": bpd(hutchinson[0]),
            "hutchinson_bias": float(xp.mean(hutchinson - ll)),  # against the exact divergence's answer
            "hutchinson_bias_se": float(xp.std(hutchinson - ll) / math.sqrt(hutchinson.size)),
            "hutchinson_sd": float(xp.mean(spread)),
            "probe_sq_mean": float(xp.mean(probe_sq)), "probe_sq_var": float(xp.var(probe_sq)),
            "n_probes": int(probe_sq.size)}


def ode_law(score_t, sde, n_steps, n_grid=481):
    """The law q of the PF-ODE's output when it is integrated exactly from p_1 with this score, by
    its change of variables on a grid (``ms.sde.log_likelihood`` at every grid point): the level
    the ODE samplers' error settles at as their steps grow. Returns its density, p_{t_min}'s, and
    W1 = ∫|F_q - F_p| dx, KS = max |F_q - F_p| and q's mass on the grid (not renormalised: mass
    the ODE sends outside counts as error)."""
    xp = ms.backend.xp
    grid = xp.linspace(*gmm1d.X_RANGE, n_grid, dtype=ms.backend.float_dtype)[:, None]
    start = exact.marginal(sde, 1.0).log_prob  # p_1 itself, where the samplers here start
    q = xp.exp(ms.sde.log_likelihood(score_t, sde, grid, n_steps, prior_log_prob=start).astype(xp.float64))
    p = xp.exp(exact.marginal(sde, sde.t_min).log_prob(grid))
    dx = float(grid[1, 0] - grid[0, 0])
    cdf = lambda f: xp.concatenate([xp.zeros(1), xp.cumsum(f[1:] + f[:-1]) * dx / 2])  # trapezoid
    gap = xp.abs(cdf(q) - cdf(p))
    return {"grid": grid[:, 0], "q": q, "p": p, "w1": float(xp.sum(gap) * dx), "ks": float(xp.max(gap)),
            "mass": float(cdf(q)[-1])}
