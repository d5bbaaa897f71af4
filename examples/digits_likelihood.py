"""Bits per dimension of held-out digits: the score model's probability-flow likelihood beside
three baselines, all on the same dequantized digits.

The digits have 17 grey levels k = 0..16, which the data module scales to x = k/16: the model
was trained on that grid. Uniform dequantization on the same scale gives each level a cell of
width 1/16 centred on it,

    y = (k - 1/2 + u)/16,   u ~ U[0, 1)^64,

17 cells spanning 17/16, so ``bits_per_dim(log p(y), 64, 17, data_range=17/16)`` subtracts
64 log 16 = -64 log(cell width) and each number bounds -log2 P(k)/64 from above (Theis, van den
Oord & Bethge 2016). (The cells (k + u)/17 of [0, 1] would shrink the digits by 16/17, off the
grid the model learnt.)

  model            log p_{σ_L}(y) by the probability-flow ODE of the VE SDE over the training
                   schedule (Song et al. 2021 App. D.2), the divergence by Hutchinson's estimate
                   or exactly. It is the density of the data blurred by N(0, σ_L² I), σ_L = 0.01:
                   the net knows no score below σ_L. The prior N(0, σ_1² I) stands in for p_1.
  pixel histogram  independent pixels: a histogram of the 17 levels per pixel (add-½ smoothing),
                   a piecewise-constant density of y, 16 P_j(k_j) on each cell
  Gaussian         one full-covariance Gaussian (maximum likelihood)
  Gaussian mixture scikit-learn's GaussianMixture, full covariances, its size chosen on a
                   fifth of the training digits

Every number is a mean over the same held-out digits, with its standard error over them.
"""
import math

import numpy as np

import minimalscore as ms
from minimalscore import ncsn

from .digits_samplers import ve_sde

LEVELS, CELL = 17, 1.0 / 16  # grey levels, and the width of one level's cell on the x = k/16 scale
MIXTURE_SIZES = (2, 5, 10, 20)
ODE_STEPS = 20  # RK4 steps of the likelihood ODE
PROBES = 8  # Hutchinson probes per digit: one probe's noise is about ten times the spread over digits


def levels(x):
    """The grey level k = 0..16 of each pixel of x = k/16 (host integers)."""
    return np.rint(ms.backend.asnumpy(x) / CELL).astype(np.int64)


def dequantize(x, rng):
    """y = (k - 1/2 + u)/16 with u ~ U[0, 1): uniform over the cell of each grey level."""
    return (x - CELL / 2) + CELL * rng.uniform(0.0, 1.0, x.shape)


def bpd(log_p):
    """Bits per dimension of the 64-pixel, 17-level digits from log p(y) in nats."""
    return ms.sde.bits_per_dim(log_p, 64, LEVELS, data_range=LEVELS * CELL)


def pixel_histogram_log_p(x_train, x):
    """log p(y) under independent per-pixel histograms of the training digits' levels, for y
    anywhere in the cells of the digits x (the density is constant on each cell)."""
    k_train, k = (levels(v).reshape(len(v), -1) for v in (x_train, x))
    counts = np.stack([np.bincount(col, minlength=LEVELS) for col in k_train.T])  # (64, 17)
    p = (counts + 0.5) / (len(k_train) + 0.5 * LEVELS)
    return np.log(p[np.arange(k.shape[1]), k]).sum(axis=1) - k.shape[1] * math.log(CELL)


def gaussian_log_p(y_train, y):
    """log N(y; mean, covariance) fitted by maximum likelihood to the dequantized training digits."""
    a, b = (np.asarray(ms.backend.asnumpy(v), dtype=np.float64).reshape(len(v), -1) for v in (y_train, y))
    mean, cov = a.mean(axis=0), np.cov(a, rowvar=False, bias=True)
    _, logdet = np.linalg.slogdet(cov)
    d = b - mean
    return -0.5 * (np.einsum("ni,ni->n", d, np.linalg.solve(cov, d.T).T) + logdet + a.shape[1] * math.log(2 * math.pi))


def mixture_log_p(y_train, y, seed):
    """log p(y) under scikit-learn's GaussianMixture (full covariances), its size the best of
    ``MIXTURE_SIZES`` on a fifth of the training digits held out from its fit, then refitted on
    them all. Returns (log p, components)."""
    from sklearn.mixture import GaussianMixture
    a, b = (np.asarray(ms.backend.asnumpy(v), dtype=np.float64).reshape(len(v), -1) for v in (y_train, y))
    fit = lambda k, data: GaussianMixture(k, covariance_type="full", random_state=seed).fit(data)
    cut = len(a) * 4 // 5
    best = max(MIXTURE_SIZES, key=lambda k: fit(k, a[:cut]).score(a[cut:]))
    return fit(best, a).score_samples(b), best


def model_log_p(model, y, n_steps, rng=None, method="rk4", probes=1, progress=True):
    """log p_{σ_L}(y) by the probability-flow ODE; ``rng`` for Hutchinson's estimate, averaged
    over ``probes`` independent probes per digit (each digit's path repeated), None for the
    exact divergence (64 backward passes per evaluation)."""
    sde = ve_sde(model)
    score = ms.sde.sigma_conditioned(lambda x, s: ncsn.apply(model["score_model"], x, s, model["sigmas"]), sde)
    if rng is None:
        return ms.sde.log_likelihood(score, sde, y, n_steps, method=method, progress=progress)
    tiled = ms.backend.xp.concatenate([y] * probes, axis=0)
    return ms.sde.log_likelihood(score, sde, tiled, n_steps, rng=rng, method=method,
                                 progress=progress).reshape(probes, -1).mean(axis=0)


def mean_and_se(values):
    v = np.asarray(ms.backend.asnumpy(values), dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")


def table(model, x_train, x_test, n, n_exact, n_steps, seed, method="rk4", probes=PROBES):
    """The bits/dim table on n held-out digits (the model's exact divergence on the first
    ``n_exact``). Returns {row: {"bpd", "se", ...}}; the model's se includes the probes' noise."""
    rng = ms.backend.default_rng(seed)
    y_train, y = dequantize(x_train, rng), dequantize(x_test[:n], rng)
    rows = {}
    hutchinson = bpd(model_log_p(model, y, n_steps, rng, method, probes))
    rows["model (Hutchinson)"] = dict(zip(("bpd", "se"), mean_and_se(hutchinson)), n=n, probes=probes)
    if n_exact:
        exact = bpd(model_log_p(model, y[:n_exact], n_steps, None, method))
        diff = mean_and_se(hutchinson[:n_exact] - exact)
        rows["model (exact divergence)"] = dict(zip(("bpd", "se"), mean_and_se(exact)), n=n_exact,
                                                hutchinson_same_digits=mean_and_se(hutchinson[:n_exact])[0],
                                                hutchinson_minus_exact=diff[0], difference_se=diff[1])
    rows["pixel histogram"] = dict(zip(("bpd", "se"), mean_and_se(bpd(pixel_histogram_log_p(x_train, x_test[:n])))), n=n)
    rows["Gaussian"] = dict(zip(("bpd", "se"), mean_and_se(bpd(gaussian_log_p(y_train, y)))), n=n)
    log_p, k = mixture_log_p(y_train, y, seed)
    rows["Gaussian mixture"] = dict(zip(("bpd", "se"), mean_and_se(bpd(log_p))), n=n, components=k)
    return rows
