"""The score-matching identities as tests against analytic answers, in float64.

Monte Carlo tolerances: every estimate is a mean of n i.i.d. terms at a fixed seed, so it is
compared with its target within 4 standard errors (sample std / sqrt(n)); a correct identity
fails such a check with probability ~6e-5. Each statistical test also shows that it can fail.
"""
import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad, jacobian
from autograd.test_util import check_grads
from hypothesis import given, settings, strategies as st

import minimalscore as ms
from minimalscore import models, objectives

N_SE = 4  # standard errors of margin for Monte Carlo checks


def float64_mlp(seed, sizes, scale=1.0):
    """A random MLP in float64; ``scale`` > 1 makes it far from constant (PyTorch's init gives
    nearly flat functions, weak witnesses for identities that compare two models)."""
    params = models.mlp_init(ms.backend.default_rng(seed), sizes)
    return ms.tree.tree_map(lambda a: scale * a.astype(np.float64), params)


def mixture_2d():
    return ms.distributions.GaussianMixture(
        means=np.array([[-1.0, 0.5], [1.5, -0.5]]), covs=np.array([[0.5, 0.8], [1.0, 0.3]]),
        weights=np.array([0.4, 0.6]), dtype=np.float64)


def assert_zero_mean(terms, what):
    mean, se = terms.mean(), terms.std(ddof=1) / np.sqrt(terms.size)
    assert abs(mean) < N_SE * se, f"{what}: mean {mean:.3g} is {abs(mean) / se:.1f} standard errors from 0"
    return mean, se


# ------------------------------------------------------------ 3. divergence = trace of Jacobian
@pytest.mark.identity
@settings(max_examples=15, deadline=None, derandomize=True)
@given(dim=st.integers(1, 6), hidden=st.integers(2, 12), depth=st.integers(1, 3), seed=st.integers(0, 99))
def test_divergence_is_trace_of_full_jacobian(dim, hidden, depth, seed):
    params = float64_mlp(seed, [dim] + [hidden] * depth + [dim])
    x = np.random.default_rng(seed).standard_normal((4, dim))
    score = lambda y: models.mlp(params, y)
    jac = [jacobian(lambda v: score(v[None])[0])(xi) for xi in x]
    expected = np.array([np.trace(j) for j in jac])
    assert np.allclose(objectives.divergence(score, x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.identity
def test_divergence_on_images_and_shape_check():
    x = np.random.default_rng(0).standard_normal((3, 2, 2, 2))
    a = np.random.default_rng(1).standard_normal(8)
    score = lambda y: y * a.reshape(1, 2, 2, 2) + y ** 2  # Jacobian diag a + 2y
    assert np.allclose(objectives.divergence(score, x), a.sum() + 2 * x.reshape(3, -1).sum(1))
    with pytest.raises(ValueError, match="shaped like x"):
        objectives.divergence(lambda y: y[:, :1], np.zeros((2, 3)))


def test_divergence_grads_order2_through_mlp():
    params = float64_mlp(0, [2, 5, 5, 2])
    x = np.random.default_rng(1).standard_normal((3, 2))
    loss = lambda p: anp.sum(objectives.divergence(lambda y: models.mlp(p, y), x))
    check_grads(loss, modes=["rev"], order=2)(params)


# ------------------------------------------------------------ 4. Stein / integration by parts
def stein_terms(params, dist, x):
    """Per-sample s_θ(x)·∇log p(x) + tr ∇s_θ(x), whose mean is 0 under p (Hyvärinen 2005 Thm 1)."""
    score = lambda y: models.mlp(params, y)
    return np.sum(score(x) * dist.score(x), axis=1) + objectives.divergence(score, x)


@pytest.mark.identity
def test_stein_identity_and_implicit_minus_explicit_is_constant():
    dist = mixture_2d()
    x = dist.sample(20000, ms.backend.default_rng(0))
    models_ = [float64_mlp(seed, [2, 16, 16, 2], scale=3.0) for seed in (1, 2)]
    terms = [stein_terms(p, dist, x) for p in models_]
    for t in terms:
        assert_zero_mean(t, "Stein identity E[s·∇log p + tr ∇s]")
    # The check is not vacuous: with the sign of ∇log p flipped, the mean is far from 0.
    score = lambda y: models.mlp(models_[0], y)
    flipped = -np.sum(score(x) * dist.score(x), 1) + objectives.divergence(score, x)
    assert abs(flipped.mean()) > 10 * flipped.std() / np.sqrt(flipped.size)

    # implicit - explicit = E[stein terms] - 0.5 E||∇log p||^2: on the same samples, two models
    # differ only by their Stein terms, whose difference has zero mean.
    gaps = [objectives.implicit_sm(lambda y, p=p: models.mlp(p, y), x)
            - objectives.explicit_sm(lambda y, p=p: models.mlp(p, y), x, dist.score) for p in models_]
    diff = terms[0] - terms[1]
    assert np.isclose(gaps[0] - gaps[1], diff.mean(), rtol=1e-9, atol=1e-12)
    assert_zero_mean(diff, "implicit SM - explicit SM depends on θ")


# ------------------------------------------------------------ 5. Vincent: DSM = ESM on p_σ + const
def vincent_terms(sigma, target):
    """Per-sample θ-dependent part of DSM_σ(θ) - ESM(θ; target) for two random models:
    s(x~)·(z/σ + target(x~)), which has mean 0 when target = ∇log p_σ (Vincent 2011, App.)."""
    dist = mixture_2d()
    x = dist.sample(20000, ms.backend.default_rng(0))
    # dsm draws z = rng.normal(x.shape) first; the same seed reproduces its x~ = x + σz here.
    z = ms.backend.default_rng(7).normal(x.shape, dtype=np.float64)
    x_tilde = x + sigma * z
    gaps, terms = [], []
    for seed in (1, 2):
        score = lambda y, p=float64_mlp(seed, [2, 16, 16, 2], scale=3.0): models.mlp(p, y)
        gaps.append(objectives.dsm(score, x, sigma, ms.backend.default_rng(7))
                    - objectives.explicit_sm(score, x_tilde, target(dist)))
        terms.append(np.sum(score(x_tilde) * (z / sigma + target(dist)(x_tilde)), 1))
    diff = terms[0] - terms[1]
    assert np.isclose(gaps[0] - gaps[1], diff.mean(), rtol=1e-8, atol=1e-10)
    return diff


@pytest.mark.identity
@pytest.mark.parametrize("sigma", [0.1, 0.5])
def test_dsm_minus_explicit_sm_on_perturbed_is_constant(sigma):
    diff = vincent_terms(sigma, lambda dist: dist.perturbed(sigma).score)
    assert_zero_mean(diff, "DSM - explicit SM on p_σ depends on θ")


@pytest.mark.identity
def test_dsm_minus_explicit_sm_on_unperturbed_is_not_constant():
    """The same check against ∇log p instead of ∇log p_σ fails: the identity test has teeth."""
    diff = vincent_terms(0.5, lambda dist: dist.score)
    assert abs(diff.mean()) > N_SE * diff.std(ddof=1) / np.sqrt(diff.size)


# ------------------------------------------------------------ 7. linear model: implicit SM -> sample moments
@pytest.mark.identity
@settings(max_examples=10, deadline=None, derandomize=True)
@given(dim=st.integers(1, 4), seed=st.integers(0, 99))
def test_implicit_sm_minimiser_of_linear_model_is_sample_moments(dim, seed):
    rng = np.random.default_rng(seed)
    # a rotation times scales in [0.7, 1.4]: cond(Σ̂) stays below ~6, so the rounding error of the
    # optimum Σ̂⁻¹ stays small (an unconstrained mixing matrix reached cond(Σ̂) ~ 4e4)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    x = rng.standard_normal((200, dim)) @ (q * rng.uniform(0.7, 1.4, dim)) + rng.standard_normal(dim)
    mu, cov = x.mean(0), np.cov(x.T, bias=True).reshape(dim, dim)

    def loss(theta):  # s(x) = -A(x - b), trace by the generic autograd divergence
        return objectives.implicit_sm(lambda y: -(y - theta["b"]) @ theta["A"].T, x)

    optimum = {"A": np.linalg.inv(cov), "b": mu}
    g = grad(loss)(optimum)
    # stationarity dJ/dA = A Σ̂ - I = 0 and dJ/db = -AᵀA(μ̂ - b) = 0, up to rounding: the moments
    # carry a relative error ~ eps (1 + |μ̂|)² and A = Σ̂⁻¹ amplifies it by up to cond(Σ̂) in each
    # of dJ/dA and AᵀA, so the bound is eps cond² (1 + |μ̂|)²; over 1,200 (dim, seed) pairs the
    # ratio reached 4, and 64 leaves a margin of 16
    bound = 64 * np.finfo(float).eps * np.linalg.cond(cov) ** 2 * (1 + np.abs(mu).max()) ** 2
    assert np.abs(g["A"]).max() < bound and np.abs(g["b"]).max() < bound
    shifted = {"A": optimum["A"] * 1.1, "b": mu + 0.1}
    assert loss(shifted) > loss(optimum)
    assert np.abs(grad(loss)(shifted)["A"]).max() > 1e-3


@pytest.mark.identity
def test_adam_on_implicit_sm_recovers_gaussian_moments():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 2)) @ np.array([[1.0, 0.0], [0.6, 0.5]]) + np.array([1.0, -2.0])
    mu, cov = x.mean(0), np.cov(x.T, bias=True)
    loss = lambda t: objectives.implicit_sm(lambda y: -(y - t["b"]) @ t["A"].T, x)
    theta = {"A": np.eye(2), "b": np.zeros(2)}
    state = ms.optim.adam_init(theta)
    for _ in range(3000):
        theta, state = ms.optim.adam_update(theta, grad(loss)(theta), state, lr=1e-2)
    # a converged Adam sits within ~lr of the optimum; 1e-2 relative is a generous margin
    assert np.allclose(theta["A"], np.linalg.inv(cov), rtol=1e-2, atol=1e-2)
    assert np.allclose(theta["b"], mu, atol=1e-2)


# ------------------------------------------------------------ 8. Hutchinson: sliced SM is unbiased
@pytest.mark.identity
@pytest.mark.parametrize("kind", ["gaussian", "rademacher"])
def test_sliced_sm_is_unbiased_and_vr_reduces_variance(kind):
    dist = mixture_2d()
    params = float64_mlp(3, [2, 16, 16, 2])
    score = lambda y: models.mlp(params, y)
    x = dist.sample(64, ms.backend.default_rng(0))
    exact = objectives.implicit_sm(score, x)
    rng = ms.backend.default_rng(1)
    k = 400  # independent estimates, each with one projection per example
    plain = np.array([objectives.sliced_sm(score, x, rng, kind=kind) for _ in range(k)])
    vr = np.array([objectives.sliced_sm(score, x, rng, variance_reduction=True, kind=kind)
                   for _ in range(k)])
    for est in (plain, vr):
        assert abs(est.mean() - exact) < N_SE * est.std(ddof=1) / np.sqrt(k)
    if kind == "gaussian":
        # log of a ratio of sample variances has se ~ sqrt(2/(k-1) + 2/(k-1)) ~ 0.1 for k = 400.
        # Not a theorem: VR drops 0.5(vᵀs)², whose variance usually dominates. With Rademacher v
        # in D = 2 both terms share the factor v₁v₂ and can cancel, and VR measured 1.8x *more*
        # variance for this model, so the claim is checked for Gaussian projections only.
        assert np.log(vr.var() / plain.var()) < -N_SE * np.sqrt(4 / (k - 1))
    many = objectives.sliced_sm(score, x, ms.backend.default_rng(2), n_projections=200, kind=kind)
    assert abs(many - exact) < N_SE * plain.std(ddof=1) / np.sqrt(200)


# ------------------------------------------------------------ 9. DSM's minimiser is the perturbed score
@pytest.mark.identity
def test_dsm_minimiser_is_the_perturbed_score():
    """Train a small MLP by DSM at σ on 1-D mixture data: it learns ∇log p_σ, not ∇log p.

    By Vincent, DSM(θ) = ESM_σ(θ) + C, so training drives the Fisher divergence to p_σ down to
    what the net and optimiser reach; the bound 2% of E||∇log p_σ||² is that reach (measured
    ~0.5%), and the same model is checked to be far (> 10%) from the score of p_{σ/4}.
    """
    rng = ms.backend.default_rng(0)
    dist = ms.distributions.GaussianMixture(np.array([[-2.0], [2.0]]), np.array([0.5, 0.5]),
                                            np.array([0.3, 0.7]))
    sigma = 0.8
    x = dist.sample(4096, rng)
    params = models.mlp_init(rng, [1, 32, 32, 1])
    loss = lambda p, batch, rng: objectives.dsm(lambda y: models.mlp(p, y), batch, sigma, rng)
    params, _ = ms.train.fit(loss, params, x, n_steps=1500, batch_size=256, rng=rng, lr=3e-3,
                             progress=False)
    target = dist.perturbed(sigma)
    x_eval = target.sample(4000, ms.backend.default_rng(5))
    learned = models.mlp(params, x_eval)
    second_moment = np.mean(target.score(x_eval) ** 2)
    fisher = np.mean((learned - target.score(x_eval)) ** 2)
    assert fisher < 0.02 * second_moment
    other = dist.perturbed(sigma / 4).score(x_eval)
    assert np.mean((learned - other) ** 2) > 0.1 * second_moment


# ------------------------------------------------------------ objectives agree with their formulas
@pytest.mark.identity
def test_dsm_and_multiscale_dsm_formulas():
    x = np.random.default_rng(0).standard_normal((5, 3))
    score = lambda y: -y
    z = ms.backend.default_rng(1).normal(x.shape, dtype=np.float64)
    expected = 0.5 * np.mean(np.sum((-(x + 0.3 * z) + z / 0.3) ** 2, 1))
    assert np.isclose(objectives.dsm(score, x, 0.3, ms.backend.default_rng(1)), expected)
    # one level: multi-scale DSM is σ² DSM_σ (λ(σ) = σ²)
    ms_loss = objectives.multiscale_dsm(lambda y, s: -y, x, np.array([0.3]), ms.backend.default_rng(1))
    r = ms.backend.default_rng(1)
    r.integers(0, 1, (5,))
    z = r.normal(x.shape, dtype=np.float64)
    assert np.isclose(ms_loss, 0.09 * 0.5 * np.mean(np.sum((-(x + 0.3 * z) + z / 0.3) ** 2, 1)))


@pytest.mark.identity
@pytest.mark.parametrize("sigma", [10.0, 1.0, 0.01])
def test_multiscale_dsm_level_loss_is_order_one_at_the_optimum(sigma):
    """λ(σ) = σ² keeps every level's loss O(1), NCSN's reason for the weight (Song & Ermon 2019
    §4.2): for data N(0, I_D) the optimal score is -x~/(1+σ²), and then σ s + z = (z - σx)/(1+σ²),
    so the level's loss is 0.5 D/(1+σ²) ≤ D/2 at every σ (unweighted DSM would be
    0.5 D/(σ²(1+σ²)) ~ 1/σ²)."""
    dim, n = 4, 20000
    x = np.random.default_rng(0).standard_normal((n, dim))
    optimal = lambda y, s: -y / (1 + s[:, None] ** 2)
    loss = objectives.multiscale_dsm(optimal, x, np.array([sigma]), ms.backend.default_rng(1))
    expected = 0.5 * dim / (1 + sigma ** 2)
    # per example 0.5||w||², w ~ N(0, I/(1+σ²)): variance 0.5 D/(1+σ²)²
    se = np.sqrt(0.5 * dim / n) / (1 + sigma ** 2)
    assert abs(loss - expected) < N_SE * se


@pytest.mark.identity
def test_multiscale_dsm_with_several_levels_at_the_optimum():
    """L = 3 levels, the level drawn uniformly per example: at the optimal score -x̃/(1+σ²) of
    N(0, I_D) data the loss is mean_i ½ D v_i with v_i = 1/(1+σ_i²) (each level as above). Given
    its level, a per-example term ½||w||², w ~ N(0, v_i I), has E[T²] = ¼ v_i² (D² + 2D), so
    var T = mean_i ¼ v_i² (D² + 2D) - loss². Drawing the level from {1, ..., L-1} only (an
    off-by-one) would give mean_{i<L} ½ D v_i, ~78 standard errors away."""
    dim, n, sigmas = 4, 40000, np.array([4.0, 1.0, 0.25])
    x = np.random.default_rng(0).standard_normal((n, dim))
    optimal = lambda y, s: -y / (1 + s[:, None] ** 2)
    loss = objectives.multiscale_dsm(optimal, x, sigmas, ms.backend.default_rng(1))
    v = 1 / (1 + sigmas ** 2)
    expected = np.mean(0.5 * dim * v)
    se = np.sqrt((np.mean(0.25 * v ** 2 * (dim ** 2 + 2 * dim)) - expected ** 2) / n)
    assert abs(loss - expected) < N_SE * se
    off_by_one = np.mean(0.5 * dim * v[:-1])
    assert abs(off_by_one - expected) > 20 * se and abs(loss - off_by_one) > N_SE * se


# ------------------------------------------------------------ closed-form MLP trace = generic trace
@pytest.mark.identity
@settings(max_examples=15, deadline=None, derandomize=True)
@given(dim=st.integers(1, 8), hidden=st.integers(1, 10), depth=st.integers(1, 2), seed=st.integers(0, 99))
def test_closed_form_mlp_trace_matches_autograd(dim, hidden, depth, seed):
    params = float64_mlp(seed, [dim] + [hidden] * depth + [dim])
    x = np.random.default_rng(seed).standard_normal((5, dim))
    score, trace = models.mlp_score_and_divergence(params, x)
    assert np.allclose(score, models.mlp(params, x), atol=1e-13)
    assert np.allclose(trace, objectives.divergence(lambda y: models.mlp(params, y), x), atol=1e-12)
    fast = objectives.implicit_sm(None, x, lambda y: models.mlp_score_and_divergence(params, y))
    assert np.isclose(fast, objectives.implicit_sm(lambda y: models.mlp(params, y), x))


@pytest.mark.identity
def test_closed_form_trace_gradients_match():
    params = float64_mlp(0, [3, 8, 8, 3])
    x = np.random.default_rng(1).standard_normal((6, 3))
    fast = grad(lambda p: objectives.implicit_sm(None, x, lambda y: models.mlp_score_and_divergence(p, y)))(params)
    slow = grad(lambda p: objectives.implicit_sm(lambda y: models.mlp(p, y), x))(params)
    for a, b in zip(ms.tree.tree_leaves(fast), ms.tree.tree_leaves(slow)):
        assert np.allclose(a, b, atol=1e-12)
    with pytest.raises(ValueError, match="hidden layers"):
        models.mlp_score_and_divergence(float64_mlp(0, [3, 4, 4, 4, 3]), x)


# ------------------------------------------------------------ bad input
BAD_X = {"1-D": np.zeros(3), "empty": np.zeros((0, 2)), "NaN": np.array([[0.0, np.nan]]),
         "inf": np.array([[np.inf, 0.0]]), "list": [[0.0, 1.0]], "integers": np.zeros((2, 2), int)}


@pytest.mark.parametrize("label", list(BAD_X))
def test_objectives_reject_bad_x(label):
    x, rng, s = BAD_X[label], ms.backend.default_rng(0), (lambda y: -y)
    calls = [lambda: objectives.explicit_sm(s, x, s), lambda: objectives.implicit_sm(s, x),
             lambda: objectives.sliced_sm(s, x, rng), lambda: objectives.dsm(s, x, 0.1, rng),
             lambda: objectives.multiscale_dsm(lambda y, sig: -y, x, np.array([1.0, 0.1]), rng),
             lambda: objectives.divergence(s, x)]
    for call in calls:
        with pytest.raises((ValueError, TypeError), match="^x:"):
            call()


def test_objectives_reject_bad_noise_levels_and_options():
    x, rng = np.zeros((4, 2)), ms.backend.default_rng(0)
    for sigma in (0.0, -1.0, float("nan"), float("inf"), None, "0.1", np.ones(2)):
        with pytest.raises((ValueError, TypeError), match="^sigma:"):
            objectives.dsm(lambda y: -y, x, sigma, rng)
    for sigmas in ([0.1, 1.0], [1.0, 1.0], [1.0, -0.1], [], [[1.0]]):
        with pytest.raises(ValueError, match="^sigmas:"):
            objectives.multiscale_dsm(lambda y, s: -y, x, np.array(sigmas), rng)
    with pytest.raises(TypeError, match="^sigmas:"):
        objectives.multiscale_dsm(lambda y, s: -y, x, [1.0, 0.1], rng)
    for n in (0, 2.5, None):
        with pytest.raises((ValueError, TypeError), match="^n_projections:"):
            objectives.sliced_sm(lambda y: -y, x, rng, n_projections=n)
    with pytest.raises(ValueError, match="^kind:"):
        objectives.sliced_sm(lambda y: -y, x, rng, kind="uniform")
    with pytest.raises(TypeError, match="^variance_reduction:"):
        objectives.sliced_sm(lambda y: -y, x, rng, variance_reduction="yes")
    for call in (lambda r: objectives.dsm(lambda y: -y, x, 0.1, r),
                 lambda r: objectives.sliced_sm(lambda y: -y, x, r),
                 lambda r: objectives.multiscale_dsm(lambda y, s: -y, x, np.array([1.0]), r)):
        with pytest.raises(TypeError, match="^rng:"):
            call(np.random.default_rng(0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dsm_refuses_a_sigma_whose_inverse_square_overflows(dtype):
    """z/σ squared and summed over the batch must stay finite: σ = 1e-30 (1e-160 in float64) is
    refused with a message naming the dtype, and the smallest σ accepted gives a finite loss."""
    x, rng = np.zeros((64, 3), dtype), ms.backend.default_rng(0)
    tiny = {np.float32: 1e-30, np.float64: 1e-160}[dtype]
    with pytest.raises(ValueError, match=f"^sigma: {tiny:g} is too small for {np.dtype(dtype).name}"):
        objectives.dsm(lambda y: -y, x, tiny, rng)
    smallest = np.sqrt(100 * x.size / np.finfo(dtype).max) * 1.01
    assert np.isfinite(objectives.dsm(lambda y: 0 * y, x, smallest, rng))


def test_objectives_check_the_score_on_its_first_call():
    """A score of the wrong shape is not broadcast: (N, 1) for (N, 2) data is refused, and so is
    a NaN; implicit SM's closed-form pair needs a trace of shape (N,)."""
    x, rng = np.random.default_rng(0).standard_normal((5, 2)), ms.backend.default_rng(0)
    narrow, nan = (lambda y: y[:, :1]), (lambda y: y * np.nan)
    for score in (narrow, nan):
        calls = [lambda: objectives.explicit_sm(score, x, -x), lambda: objectives.implicit_sm(score, x),
                 lambda: objectives.sliced_sm(score, x, rng), lambda: objectives.dsm(score, x, 0.1, rng),
                 lambda: objectives.multiscale_dsm(lambda y, s: score(y), x, np.array([1.0, 0.1]), rng)]
        for call in calls:
            with pytest.raises(ValueError, match="^score:"):
                call()
    with pytest.raises(ValueError, match="^target_score:"):
        objectives.explicit_sm(lambda y: -y, x, narrow)
    with pytest.raises(ValueError, match="^target_score:"):
        objectives.explicit_sm(lambda y: -y, x, -x[:, :1])
    with pytest.raises(ValueError, match="^f:"):
        objectives.divergence(narrow, x)
    for trace in (np.zeros((5, 1)), np.zeros(4), np.full(5, np.nan)):
        with pytest.raises(ValueError, match="^score_and_divergence's trace:"):
            objectives.implicit_sm(None, x, lambda y, t=trace: (-y, t))
    with pytest.raises(ValueError, match="^score_and_divergence's score:"):
        objectives.implicit_sm(None, x, lambda y: (-y[:, :1], np.zeros(5)))
    with pytest.raises(TypeError, match="^score_and_divergence:"):
        objectives.implicit_sm(None, x, lambda y: -y)
