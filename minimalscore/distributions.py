"""Analytic targets: the Gaussian mixture in any dimension, its score, its Gaussian-perturbed
version and its posterior mean.

    p(x)            = sum_k w_k N(x; mu_k, Sigma_k),            Sigma_k = L_k L_k^T  (Cholesky)
    log p(x)        = logsumexp_k [log w_k - |z_k|^2 / 2 - log det L_k - (D/2) log 2 pi],
                      z_k = L_k^{-1} (x - mu_k)   (the whitened residual)
    grad log p(x)   = sum_k r_k(x) (-Sigma_k^{-1} (x - mu_k)),  r_k = softmax_k(log w_k N_k(x))
    p_sigma         = p * N(0, sigma^2 I) = sum_k w_k N(mu_k, Sigma_k + sigma^2 I)
    E[x | x + sigma z = y] = sum_k r_k(y) (mu_k + Sigma_k (Sigma_k + sigma^2 I)^{-1} (y - mu_k))

Everything is computed in log space, so a point far from every mode (where each N_k(x) underflows
to 0 and grad p / p would be 0 / 0) still has a finite log p and score. Valid range: a point up to
about 1.8e19 standard deviations (Mahalanobis distance |z_k|) from the nearest component in
float32, 1.3e154 in float64; beyond it |z_k|^2 overflows the float format and the methods raise a
ValueError saying so.
"""
import math

import autograd.numpy as anp
from autograd.tracer import getval

from . import backend, checks
from .ops import logsumexp


class GaussianMixture:
    """p(x) = sum_k w_k N(x; mu_k, Sigma_k) in D dimensions.

    means (K, D); covs full (K, D, D), diagonal (K, D) or isotropic (K,); weights (K,), >= 0,
    summing to 1. Parameters are validated and kept in ``dtype``: float64 when any of them is a
    float64 array, otherwise ``backend.float_dtype``. Bad parameters raise a ValueError or
    TypeError naming the argument.
    """

    def __init__(self, means, covs, weights, dtype=None):
        xp = backend.xp
        dtype = _dtype(dtype, means, covs, weights)
        means = _as_float64("means", means)
        if means.ndim != 2 or 0 in means.shape:
            raise ValueError(f"means: expected shape (K, D) with K, D >= 1, got {means.shape}")
        n_components, dim = means.shape
        weights = _as_float64("weights", weights)
        if weights.shape != (n_components,):
            raise ValueError(f"weights: expected shape ({n_components},) to match means "
                             f"{means.shape}, got {weights.shape}")
        if bool((weights < 0).any()):
            raise ValueError("weights: expected non-negative weights, got a negative one")
        if abs(float(weights.sum()) - 1.0) > 1e-6:
            raise ValueError(f"weights: expected weights summing to 1 (within 1e-6), got a sum "
                             f"of {float(weights.sum())}")
        covs = _full_covariances(_as_float64("covs", covs), n_components, dim)
        chol = xp.linalg.cholesky(covs)
        log_det_half = xp.sum(xp.log(xp.diagonal(chol, axis1=1, axis2=2)), axis=1)
        self.dim, self.dtype = dim, dtype
        self.means, self.covs, self.weights = (a.astype(dtype) for a in (means, covs, weights))
        self._chol = chol.astype(dtype)
        # L^{-T}: x rows times it gives the whitened residuals z_k = L_k^{-1}(x - mu_k) as rows
        self._chol_inv_T = xp.swapaxes(xp.linalg.inv(chol), 1, 2).astype(dtype)
        for name, a in (("means", self.means), ("covs", self.covs), ("covs", self._chol_inv_T)):
            if not checks.is_finite(a):
                raise ValueError(f"{name}: values (or, for covs, their inverses) overflow "
                                 f"{xp.dtype(dtype).name}; use dtype=float64")
        # log w_k - log sqrt((2 pi)^D det Sigma_k): the x-independent part of log w_k N_k(x)
        self._log_norm = (xp.log(weights) - log_det_half - 0.5 * dim * math.log(2 * math.pi)
                          ).astype(dtype)

    def log_prob(self, x):
        """log p(x), shape (N,): logsumexp_k [log w_k + log N(x; mu_k, Sigma_k)].
        Written in autograd.numpy, so autograd can differentiate it with respect to x. A point
        more than 1.8e19 (float32) or 1.3e154 (float64) standard deviations from every component
        is beyond the float range: a ValueError says so."""
        return logsumexp(self._log_joint(x)[0], axis=0)

    def score(self, x):
        """grad_x log p(x) = sum_k r_k(x) (-Sigma_k^{-1} (x - mu_k)), shape (N, D), in closed form.

        r_k(x) = w_k N_k(x) / p(x) are the responsibilities, a softmax of the log joint;
        Sigma_k^{-1}(x - mu_k) = L_k^{-T} z_k. Correct to float precision up to the range that
        :meth:`log_prob` states, and a ValueError beyond it.
        """
        log_joint, z = self._log_joint(x)
        component_scores = -anp.matmul(z, anp.swapaxes(self._chol_inv_T, 1, 2))
        return anp.sum(_responsibilities(log_joint)[:, :, None] * component_scores, axis=0)

    def sample(self, n, rng):
        """n draws, shape (n, D): a component k ~ Categorical(w), then mu_k + L_k z, z ~ N(0, I)."""
        n, rng = checks.count("n", n), checks.rng("rng", rng)
        k = rng.choice(len(self.weights), n, p=self.weights)
        z = rng.normal((n, self.dim), dtype=self.dtype)
        return self.means[k] + backend.xp.einsum("nij,nj->ni", self._chol[k], z)

    def perturbed(self, sigma):
        """p_sigma = p * N(0, sigma^2 I), the density of x + sigma z (q_sigma in Song & Ermon
        2019 §4.1).

        A sum of independent Gaussians is Gaussian, so each component becomes
        N(mu_k, Sigma_k + sigma^2 I) with the same weight: closed form, any sigma > 0.
        """
        sigma = checks.positive("sigma", sigma)
        eye = backend.xp.eye(self.dim, dtype=self.dtype)
        return GaussianMixture(self.means, self.covs + sigma ** 2 * eye, self.weights,
                               dtype=self.dtype)

    def posterior_mean(self, x_tilde, sigma):
        """E[x | x~] for x ~ p and x~ = x + sigma z, shape (N, D), computed without the score.

        By Bayes' rule the posterior is again a mixture: component k has responsibility
        r_k(x~) proportional to w_k N(x~; mu_k, Sigma_k + sigma^2 I), and Gaussian conditioning
        (Bishop 2006, PRML eqs. 2.116-2.117 with A = I, L = I / sigma^2) gives its mean
            m_k(x~) = mu_k + Sigma_k (Sigma_k + sigma^2 I)^{-1} (x~ - mu_k).
        E[x | x~] = sum_k r_k m_k. Tweedie's formula (Efron 2011, "Tweedie's formula and
        selection bias") says this equals
        x~ + sigma^2 grad log p_sigma(x~); the tests check that identity.
        """
        noisy = self.perturbed(sigma)
        log_joint, _ = noisy._log_joint(x_tilde, name="x_tilde")
        # as rows: (x~ - mu_k)^T [Sigma_k (Sigma_k + s^2 I)^{-1}]^T = (x~ - mu_k)^T gain_T,
        # gain_T = (Sigma_k + s^2 I)^{-1} Sigma_k (both factors symmetric)
        gain_T = backend.xp.linalg.solve(noisy.covs, self.covs)
        means = self.means[:, None, :] + anp.matmul(x_tilde[None] - self.means[:, None, :], gain_T)
        return anp.sum(_responsibilities(log_joint)[:, :, None] * means, axis=0)

    def _log_joint(self, x, name="x"):
        """log w_k N(x; mu_k, Sigma_k), shape (K, N), and the whitened residuals z, (K, N, D).

        A ValueError where |z_k|^2 overflows the float format: the point is too far out for it."""
        checks.batch(name, x)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"{name}: expected shape (N, {self.dim}), got {tuple(x.shape)}")
        z = anp.matmul(x[None, :, :] - self.means[:, None, :], self._chol_inv_T)
        log_joint = self._log_norm[:, None] - 0.5 * anp.sum(z ** 2, axis=2)
        if not checks.is_finite(anp.max(log_joint, axis=0)):
            dtype = backend.xp.result_type(self.dtype, getval(x).dtype)
            limit = math.sqrt(float(backend.xp.finfo(dtype).max))
            advice = ("rescale the data" if dtype == backend.xp.float64 else
                      "use float64 (range 1.3e154 standard deviations) or rescale the data")
            raise ValueError(f"{name}: a point lies more than {limit:.2g} standard deviations from "
                             f"every component, where |z|^2 overflows {dtype}; {advice}")
        return log_joint, z


def Gaussian(mean, cov, dtype=None):
    """N(mean, cov) as a one-component GaussianMixture; mean (D,), cov (D, D), (D,) or a scalar."""
    dtype = _dtype(dtype, mean, cov)
    mean, cov = _as_float64("mean", mean), _as_float64("cov", cov)
    if mean.ndim != 1:
        raise ValueError(f"mean: expected shape (D,), got {mean.shape}")
    dim = mean.shape[0]
    if cov.shape not in ((), (dim,), (dim, dim)):
        raise ValueError(f"cov: expected a scalar, shape ({dim},) or ({dim}, {dim}) to match mean "
                         f"{mean.shape}, got shape {cov.shape}")
    covs = _full_covariances(cov[None], 1, dim, name="cov")
    return GaussianMixture(mean[None], covs, [1.0], dtype=dtype)


def _responsibilities(log_joint):
    """r_k = w_k N_k / sum_j w_j N_j = softmax over k (axis 0) of the log joint, (K, N).

    Normalised by the sum of the shifted exponentials, not by exp(log_joint - logsumexp): far
    out, log p ~ -1e16 absorbs log K in float32, and exp(a_k - log p) would then be 1 for each of
    K equal components, a score K times too large."""
    shifted = anp.exp(log_joint - anp.max(log_joint, axis=0, keepdims=True))
    return shifted / anp.sum(shifted, axis=0, keepdims=True)


def _dtype(dtype, *params):
    """``dtype`` if given (float32 or float64), else float64 when any parameter is a float64 array,
    else the backend's default float dtype."""
    xp = backend.xp
    if dtype is not None:
        if not any(dtype is t or dtype == xp.dtype(t) for t in (xp.float32, xp.float64)):
            raise TypeError(f"dtype: expected float32 or float64, got {checks.show(dtype)}")
        return xp.dtype(dtype).type
    if any(getattr(a, "dtype", None) == xp.float64 for a in params):
        return xp.float64
    return backend.float_dtype


def _as_float64(name, a):
    """A mixture parameter as a finite float64 backend array (validation runs in float64)."""
    try:
        a = backend.asarray(a, dtype=backend.xp.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: expected an array of real numbers, got {checks.show(a)}") from err
    if not checks.is_finite(a):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return a


def _full_covariances(covs, n_components, dim, name="covs"):
    """Isotropic (K,), diagonal (K, D) or full (K, D, D) covariances as full (K, D, D) matrices,
    checked symmetric positive definite; errors name the argument ``name``."""
    xp = backend.xp
    shapes = {1: (n_components,), 2: (n_components, dim), 3: (n_components, dim, dim)}
    if shapes.get(covs.ndim) != covs.shape:
        raise ValueError(f"{name}: expected (K,), (K, D) or (K, D, D) with K = {n_components}, "
                         f"D = {dim}, got shape {covs.shape}")
    if covs.ndim < 3:
        if not bool((covs > 0).all()):
            raise ValueError(f"{name}: expected positive variances")
        variances = covs[:, None] if covs.ndim == 1 else covs
        return variances[:, :, None] * xp.eye(dim)
    covs_T = xp.swapaxes(covs, 1, 2)
    if not bool(xp.allclose(covs, covs_T, rtol=1e-10, atol=0)):
        raise ValueError(f"{name}: expected symmetric covariance matrices")
    covs = 0.5 * (covs + covs_T)  # exactly symmetric, as Cholesky and eigvalsh assume
    smallest = xp.linalg.eigvalsh(covs)[:, 0]
    if not bool((smallest > 0).all()):
        raise ValueError(f"{name}: expected positive definite matrices (smallest eigenvalue per "
                         f"component {backend.asnumpy(smallest)})")
    return covs
