"""Analytic targets: the Gaussian mixture in any dimension, its score, its Gaussian-perturbed
version and its posterior mean (DESIGN.md §2; issue 4 §4).

    p(x) = sum_k w_k N(x; mu_k, Sigma_k),      Sigma_k = L_k L_k^T  (Cholesky)

Everything is computed in log space. Component k enters through the whitened residual
z_k = L_k^{-1}(x - mu_k), so log N_k(x) = -|z_k|^2 / 2 - sum_i log L_k,ii - (D/2) log 2 pi, and the
components are combined by a max-shifted logsumexp. A point 1e3 standard deviations out then has
log p ~ -5e5 and a finite score, where the naive ratio grad p / p would be 0 / 0.
"""
import math
import numbers

import autograd.numpy as anp

from . import backend


def logsumexp(a, axis=0):
    """log sum_i exp(a_i) along ``axis``, shifted by the maximum so that nothing overflows and the
    largest term is exactly exp(0) = 1 (no underflow to log 0). Differentiable by autograd."""
    a_max = anp.max(a, axis=axis, keepdims=True)
    return anp.squeeze(a_max, axis) + anp.log(anp.sum(anp.exp(a - a_max), axis=axis))


class GaussianMixture:
    """p(x) = sum_k w_k N(x; mu_k, Sigma_k) in D dimensions.

    means (K, D); covs full (K, D, D), diagonal (K, D) or isotropic (K,); weights (K,), >= 0,
    summing to 1. Parameters are validated and kept in ``dtype``: float64 when any of them is a
    float64 array, otherwise ``backend.float_dtype``. Bad parameters raise a ValueError naming
    the argument.
    """

    def __init__(self, means, covs, weights, dtype=None):
        xp = backend.xp
        dtype = dtype or _default_dtype(means, covs, weights)
        means = _finite("means", means)
        if means.ndim != 2 or 0 in means.shape:
            raise ValueError(f"means: expected shape (K, D) with K, D >= 1, got {means.shape}")
        n_components, dim = means.shape
        weights = _finite("weights", weights)
        if weights.shape != (n_components,):
            raise ValueError(f"weights: expected shape ({n_components},) to match means "
                             f"{means.shape}, got {weights.shape}")
        if bool((weights < 0).any()):
            raise ValueError(f"weights: must be non-negative, got {weights}")
        if abs(float(weights.sum()) - 1.0) > 1e-6:
            raise ValueError(f"weights: must sum to 1 (within 1e-6), got {float(weights.sum())}")
        covs = _full_covariances(_finite("covs", covs), n_components, dim)
        chol = xp.linalg.cholesky(covs)
        log_det_half = xp.sum(xp.log(xp.diagonal(chol, axis1=1, axis2=2)), axis=1)
        self.dim, self.dtype = dim, dtype
        self.means, self.covs, self.weights = (a.astype(dtype) for a in (means, covs, weights))
        self._chol = chol.astype(dtype)
        # L^{-T}: x rows times it gives the whitened residuals z_k = L_k^{-1}(x - mu_k) as rows
        self._chol_inv_T = xp.swapaxes(xp.linalg.inv(chol), 1, 2).astype(dtype)
        # log w_k - log sqrt((2 pi)^D det Sigma_k): the x-independent part of log w_k N_k(x)
        self._log_norm = (xp.log(weights) - log_det_half - 0.5 * dim * math.log(2 * math.pi)
                          ).astype(dtype)

    def _log_joint(self, x):
        """log w_k N(x; mu_k, Sigma_k), shape (K, N), and the whitened residuals z, (K, N, D)."""
        _check_points(x, self.dim)
        z = anp.matmul(x[None, :, :] - self.means[:, None, :], self._chol_inv_T)
        return self._log_norm[:, None] - 0.5 * anp.sum(z ** 2, axis=2), z

    def log_prob(self, x):
        """log p(x), shape (N,): logsumexp_k [log w_k + log N(x; mu_k, Sigma_k)].
        Written in autograd.numpy, so autograd can differentiate it with respect to x."""
        return logsumexp(self._log_joint(x)[0], axis=0)

    def score(self, x):
        """grad_x log p(x) = sum_k r_k(x) (-Sigma_k^{-1} (x - mu_k)), shape (N, D), in closed form.

        r_k(x) = w_k N_k(x) / p(x) are the responsibilities, a softmax of the log joint (so
        finite far from every mode); Sigma_k^{-1}(x - mu_k) = L_k^{-T} z_k. In 1-D this is the
        mixture score drawn in seed 000 (§Score Function, fig. 1).
        """
        log_joint, z = self._log_joint(x)
        resp = anp.exp(log_joint - logsumexp(log_joint, axis=0)[None])
        component_scores = -anp.matmul(z, anp.swapaxes(self._chol_inv_T, 1, 2))
        return anp.sum(resp[:, :, None] * component_scores, axis=0)

    def sample(self, n, rng):
        """n draws, shape (n, D): a component k ~ Categorical(w), then mu_k + L_k z, z ~ N(0, I)."""
        if not (isinstance(n, numbers.Integral) and n >= 1):
            raise ValueError(f"n: expected a positive integer, got {n!r}")
        k = rng.choice(len(self.weights), n, p=self.weights)
        z = rng.normal((n, self.dim), dtype=self.dtype)
        return self.means[k] + backend.xp.einsum("nij,nj->ni", self._chol[k], z)

    def perturbed(self, sigma):
        """p_sigma = p * N(0, sigma^2 I), the density of x + sigma z (004 §3, p_data^sigma).

        A sum of independent Gaussians is Gaussian, so each component becomes
        N(mu_k, Sigma_k + sigma^2 I) with the same weight: closed form, any sigma > 0.
        """
        _check_sigma(sigma)
        eye = backend.xp.eye(self.dim, dtype=self.dtype)
        return GaussianMixture(self.means, self.covs + sigma ** 2 * eye, self.weights,
                               dtype=self.dtype)

    def posterior_mean(self, x_tilde, sigma):
        """E[x | x~] for x ~ p and x~ = x + sigma z, shape (N, D), computed without the score.

        By Bayes' rule the posterior is again a mixture: component k has responsibility
        r_k(x~) proportional to w_k N(x~; mu_k, Sigma_k + sigma^2 I), and Gaussian conditioning
        (Bishop 2006, PRML eqs. 2.116-2.117 with A = I, L = I / sigma^2) gives its mean
            m_k(x~) = mu_k + Sigma_k (Sigma_k + sigma^2 I)^{-1} (x~ - mu_k).
        E[x | x~] = sum_k r_k m_k. Tweedie's formula (004 §3, Theorem 5) says this equals
        x~ + sigma^2 grad log p_sigma(x~); the tests check that identity.
        """
        noisy = self.perturbed(sigma)
        log_joint, _ = noisy._log_joint(x_tilde)
        resp = anp.exp(log_joint - logsumexp(log_joint, axis=0)[None])
        # as rows: (x~ - mu_k)^T [Sigma_k (Sigma_k + s^2 I)^{-1}]^T = (x~ - mu_k)^T gain_T,
        # gain_T = (Sigma_k + s^2 I)^{-1} Sigma_k (both factors symmetric)
        gain_T = backend.xp.linalg.solve(noisy.covs, self.covs)
        means = self.means[:, None, :] + anp.matmul(x_tilde[None] - self.means[:, None, :], gain_T)
        return anp.sum(resp[:, :, None] * means, axis=0)


def Gaussian(mean, cov, dtype=None):
    """N(mean, cov) as a one-component GaussianMixture; mean (D,), cov (D, D), (D,) or a scalar."""
    dtype = dtype or _default_dtype(mean, cov)
    mean, cov = backend.xp.asarray(mean), backend.xp.asarray(cov)
    if mean.ndim != 1:
        raise ValueError(f"mean: expected shape (D,), got {mean.shape}")
    return GaussianMixture(mean[None], cov[None], [1.0], dtype=dtype)


def _default_dtype(*params):
    """float64 if any parameter is a float64 array, else the backend's default float dtype."""
    if any(getattr(a, "dtype", None) == backend.xp.float64 for a in params):
        return backend.xp.float64
    return backend.float_dtype


def _finite(name, a):
    """``a`` as a float64 backend array (validation runs in float64); ValueError on NaN or inf."""
    a = backend.asarray(a, dtype=backend.xp.float64)
    if not bool(backend.xp.isfinite(a).all()):
        raise ValueError(f"{name}: contains NaN or inf")
    return a


def _full_covariances(covs, n_components, dim):
    """Isotropic (K,), diagonal (K, D) or full (K, D, D) covariances as full (K, D, D) matrices,
    checked symmetric positive definite."""
    xp = backend.xp
    shapes = {1: (n_components,), 2: (n_components, dim), 3: (n_components, dim, dim)}
    if shapes.get(covs.ndim) != covs.shape:
        raise ValueError(f"covs: expected (K,), (K, D) or (K, D, D) with K = {n_components}, "
                         f"D = {dim}, got shape {covs.shape}")
    if covs.ndim < 3:
        if not bool((covs > 0).all()):
            raise ValueError("covs: variances must be positive")
        variances = covs[:, None] if covs.ndim == 1 else covs
        return variances[:, :, None] * xp.eye(dim)
    covs_T = xp.swapaxes(covs, 1, 2)
    if not bool(xp.allclose(covs, covs_T, rtol=1e-10, atol=0)):
        raise ValueError("covs: covariance matrices must be symmetric")
    covs = 0.5 * (covs + covs_T)  # exactly symmetric, as Cholesky and eigvalsh assume
    smallest = xp.linalg.eigvalsh(covs)[:, 0]
    if not bool((smallest > 0).all()):
        raise ValueError(f"covs: not positive definite (smallest eigenvalue per component "
                         f"{backend.asnumpy(smallest)})")
    return covs


def _check_points(x, dim):
    """ValueError unless x is a non-empty, finite (N, dim) array (an autograd box is fine)."""
    if getattr(x, "ndim", None) != 2 or x.shape[1] != dim:
        raise ValueError(f"x: expected shape (N, {dim}), got {getattr(x, 'shape', type(x))}")
    if x.shape[0] == 0:
        raise ValueError("x: empty batch (N = 0)")
    if not bool(anp.all(anp.isfinite(x))):
        raise ValueError("x: contains NaN or inf")


def _check_sigma(sigma):
    if not (isinstance(sigma, (int, float)) or getattr(sigma, "ndim", None) == 0):
        raise ValueError(f"sigma: expected a positive scalar, got {sigma!r}")
    if not 0 < float(sigma) < math.inf:
        raise ValueError(f"sigma: must be positive and finite, got {sigma}")
