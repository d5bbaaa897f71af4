"""Exact targets for the diffusion tests: a 2-D Gaussian mixture pushed through a process.

If x0 ~ p = sum_k w_k N(mu_k, S_k), then x_t = alpha_t x0 + sigma_t z has the law
sum_k w_k N(alpha_t mu_k, alpha_t² S_k + sigma_t² I): scale the means by alpha_t and the
covariances by alpha_t², then ``perturbed(sigma_t)``. Its score is the exact score of p_t.
"""
import math

import numpy as np

import minimalscore as ms
from minimalscore.distributions import GaussianMixture

N_SE = 4  # standard errors allowed to a Monte Carlo estimate: a false alarm about 1 in 16,000

MIXTURE = GaussianMixture(np.array([[-1.5, 0.0], [1.0, 1.0]]),
                          np.array([[0.3, 0.2], [0.2, 0.4]]), np.array([0.3, 0.7]))


def scaled(p, alpha, sigma):
    """The law of alpha x0 + sigma z for x0 ~ p, in closed form."""
    return GaussianMixture(alpha * p.means, alpha ** 2 * p.covs, p.weights).perturbed(sigma)


def pushed(sde, t, p=MIXTURE):
    """p_t for the process ``sde`` started from p: the mixture at time t (a float)."""
    alpha, sigma = sde.marginal(float(t))
    return scaled(p, alpha, sigma)


def exact_score(sde, p=MIXTURE):
    """score(x, t) = ∇log p_t(x), t of shape (N,) with one value (as the samplers call it)."""
    cache = {}

    def score(x, t):
        key = float(t[0])
        if key not in cache:
            cache[key] = pushed(sde, key, p)
        return cache[key].score(x)
    return score


def exact_eps(betas, p=MIXTURE):
    """eps(x, i) = -√(1 - ᾱ_i) ∇log q_i(x): the exact ε-prediction at DDPM step index i, where
    q_i is p scaled by √ᾱ_i and perturbed by √(1 - ᾱ_i)."""
    alphas_bar = ms.sde.alphas_bar(betas)
    cache = {}

    def eps(x, i):
        key = int(i[0])
        if key not in cache:
            cache[key] = scaled(p, math.sqrt(alphas_bar[key]), math.sqrt(1 - alphas_bar[key]))
        return -math.sqrt(1 - alphas_bar[key]) * cache[key].score(x)
    return eps


def moments(q):
    """The mean (D,) and covariance (D, D) of a Gaussian mixture."""
    mean = (q.weights[:, None] * q.means).sum(0)
    d = q.means - mean
    return mean, (q.weights[:, None, None] * (q.covs + d[:, :, None] * d[:, None, :])).sum(0)


def responsibilities(q, x):
    """r_k(x) = w_k N_k(x) / q(x), shape (K, N). Under x ~ q, E r_k = w_k exactly."""
    log_joint, _ = q._log_joint(x)
    return np.exp(log_joint - ms.distributions.logsumexp(log_joint, axis=0)[None])


def assert_matches(x, q, allowance=0.0, cov_allowance=0.0):
    """Samples x reproduce the mixture q: mean, covariance and mode weights (mean
    responsibilities) each within N_SE standard errors of the sample (computed from x itself)
    plus a stated discretisation ``allowance`` (``cov_allowance`` for covariance entries)."""
    n = x.shape[0]
    mean, cov = moments(q)
    centred = x - x.mean(0)
    se_mean = centred.std(0) / math.sqrt(n)
    assert np.all(np.abs(x.mean(0) - mean) < N_SE * se_mean + allowance), (x.mean(0), mean)
    products = centred[:, :, None] * centred[:, None, :]
    se_cov = products.std(0) / math.sqrt(n)
    assert np.all(np.abs(products.mean(0) - cov) < N_SE * se_cov + cov_allowance), (products.mean(0), cov)
    r = responsibilities(q, x)
    se_weights = r.std(1) / math.sqrt(n)
    assert np.all(np.abs(r.mean(1) - q.weights) < N_SE * se_weights + allowance), (r.mean(1), q.weights)
