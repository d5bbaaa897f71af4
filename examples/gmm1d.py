"""Score-based modelling in one dimension: the score of a Gaussian mixture, denoising targets,
score matching four ways, the noise trade-off measured, and sampling with ULA vs annealed
Langevin (the picture of Johannes Fischer's "Denoising Score Matching", computed).

    python -m examples.gmm1d            # full run, ~13 s on a 2-core CPU
    python -m examples.gmm1d --quick    # about 10 s (the test runs this)

Read it top to bottom: each step is one function, citing the section of docs/theory.md it
illustrates. Figures (PNG) and metrics.json go to --out (default ./out/gmm1d/); the tables print
here too.
"""
import autograd.numpy as anp

import minimalscore as ms
from minimalscore import models, objectives, plot, samplers, train

from .common import parse_args, print_table, save_metrics, titled

# The data: weights 0.3 / 0.7, means -2.5 and 2, standard deviations 0.5 and 0.7. The modes
# are separated by a gap where p(x) < 1e-4: a low-density region (docs/theory.md §6).
WEIGHTS, MEANS, STDS = (0.3, 0.7), (-2.5, 2.0), (0.5, 0.7)
SIGMA_SMALL, SIGMA_LARGE = 0.1, 1.0
SIGMAS = (3.0, 0.1, 10)  # multi-scale: geometric from 3 down to SIGMA_SMALL, 10 levels, largest first
# 32 units keep the full run near 13 s (under 20 s was the aim); 64 units, batch 1024 and 1500
# steps gave a 3-10x lower multi-scale Fisher divergence in ~3.5x the time.
HIDDEN = (32, 32)
BATCH, LR = 512, 1e-2
EMA_DECAY = 0.99  # evaluate and sample with an EMA of the weights (NCSNv2), averaging out SGD noise
X_RANGE = (-6.0, 6.0)
# Run sizes: training points, Adam steps per model, samples, ULA steps, annealed steps per level.
# The multi-scale model learns ten levels at once and gets MULTISCALE_STEPS times the steps.
FULL = (10000, 1000, 3000, 500, 50)
QUICK = (4000, 800, 2000, 300, 40)
MULTISCALE_STEPS = 2
# What the figures and tables call each model: in words, with its noise levels.
LABELS = {"exact": "exact SM (no noise)", "dsm_small": f"DSM, σ = {SIGMA_SMALL:g}",
          "dsm_large": f"DSM, σ = {SIGMA_LARGE:g}",
          "multiscale": f"multi-scale DSM, σ {SIGMAS[0]:g} → {SIGMAS[1]:g}"}


def target():
    """The data distribution p: a two-component 1-D Gaussian mixture (docs/theory.md §1)."""
    xp = ms.backend.xp
    return ms.distributions.GaussianMixture(
        means=xp.asarray(MEANS, dtype=xp.float32)[:, None],
        covs=xp.asarray(STDS, dtype=xp.float32) ** 2,
        weights=xp.asarray(WEIGHTS, dtype=xp.float32))


def grid(n=1201):
    return ms.backend.xp.linspace(*X_RANGE, n, dtype=ms.backend.float_dtype)[:, None]


def denoising_targets(p, sigma, n, rng):
    """DSM's regression targets ∇log p_σ(x~ | x) (Vincent 2011; docs/theory.md §4): for x ~ p and
    x~ = x + σz, the target (x - x~)/σ² = -z/σ at x~; and their mean in bins of x~, which
    approaches the perturbed score ∇log p_σ(x~) (the targets match it on average only)."""
    xp = ms.backend.xp
    x = p.sample(n, rng)
    z = rng.normal(x.shape)
    x_tilde, targets = x + sigma * z, -z / sigma
    edges = xp.linspace(*X_RANGE, 61, dtype=x.dtype)
    which = xp.clip(xp.searchsorted(edges, x_tilde[:, 0]) - 1, 0, 59)
    counts = xp.bincount(which, minlength=60)
    sums = xp.bincount(which, weights=targets[:, 0], minlength=60)
    centres = (edges[1:] + edges[:-1]) / 2
    filled = counts > 20  # bins with too few targets would show noise, not the mean
    return x_tilde[:, 0], targets[:, 0], centres[filled], (sums / xp.maximum(counts, 1))[filled]


def train_models(data, rng, n_steps, progress):
    """Score matching four ways, the same MLP, Adam, float32 (docs/theory.md §2 exact SM, §4 DSM,
    §10 multi-scale DSM). Returns {name: x -> score} (the
    multi-scale model read at its smallest σ), the noise-conditional score (x, σ) -> score
    and the σ's."""
    xp = ms.backend.xp
    sigmas = ms.schedule.geometric_sigmas(*SIGMAS).astype(data.dtype)

    def exact(p, batch, rng):  # implicit SM with the exact (closed-form) trace
        return objectives.implicit_sm(None, batch, lambda y: models.mlp_score_and_divergence(p, y))

    def dsm_at(sigma):
        return lambda p, batch, rng: objectives.dsm(lambda y: models.mlp(p, y), batch, sigma, rng)

    def multiscale(p, batch, rng):
        return objectives.multiscale_dsm(lambda y, s: models.noise_conditional_mlp(p, y, s),
                                         batch, sigmas, rng)

    plain = lambda: models.mlp_init(rng, [1, *HIDDEN, 1])
    runs = {"exact": (exact, plain(), n_steps), "dsm_small": (dsm_at(SIGMA_SMALL), plain(), n_steps),
            "dsm_large": (dsm_at(SIGMA_LARGE), plain(), n_steps),
            "multiscale": (multiscale, models.noise_conditional_mlp_init(rng, 1, HIDDEN),
                           MULTISCALE_STEPS * n_steps)}
    trained = {name: train.fit(loss, params, data, steps, batch_size=BATCH, rng=rng, lr=LR,
                               ema_decay=EMA_DECAY, progress=progress, desc=f"train {name}")[1]["ema"]
               for name, (loss, params, steps) in runs.items()}
    conditional = lambda y, s: models.noise_conditional_mlp(trained["multiscale"], y, s)
    scores = {name: (lambda y, p=p: models.mlp(p, y)) for name, p in trained.items() if name != "multiscale"}
    scores["multiscale"] = lambda y: conditional(y, xp.full((y.shape[0],), float(sigmas[-1]), dtype=y.dtype))
    return scores, conditional, sigmas


def fisher_table(p, scores, conditional, sigmas, points):
    """The noise trade-off, measured (docs/theory.md §6): the Fisher divergence of each learned
    score to the true score, weighted by p (quadrature on a fine grid: where the data is) and
    uniformly over the whole range (where it is not, the gap and the tails included).

    A third column, ``fisher_grid_own``, compares each model on the same grid with the score it
    was trained to match (p for exact SM, p_σ for DSM, the mean over the levels' p_σi for the
    multi-scale model): a large σ learns *its* target well everywhere, but that target is not p.
    """
    density = anp.exp(p.log_prob(points))
    own = {"exact": [(None, p)], "dsm_small": [(None, p.perturbed(SIGMA_SMALL))],
           "dsm_large": [(None, p.perturbed(SIGMA_LARGE))],
           "multiscale": [(s, p.perturbed(s)) for s in ms.backend.asnumpy(sigmas).tolist()]}
    table = {}
    for name, score in scores.items():
        learned = score(points)
        table[name] = {
            "fisher_p": ms.metrics.fisher_divergence(learned, p.score, points, weights=density),
            "fisher_grid": ms.metrics.fisher_divergence(learned, p.score, points),
            "fisher_grid_own": sum(ms.metrics.fisher_divergence(
                conditional(points, ms.backend.xp.full((points.shape[0],), s, dtype=points.dtype))
                if s else learned, q.score, points) for s, q in own[name]) / len(own[name])}
    return table


def sample_both(p, scores, conditional, sigmas, n, n_steps, n_steps_each, rng):
    """ULA with the single small-σ score vs annealed Langevin with the multi-scale model
    (docs/theory.md §7, §11), both from a broad uniform on [-8, 8]. Returns samples and their
    quality table."""
    x0 = rng.uniform(-8.0, 8.0, (n, 1))
    ula = samplers.langevin(scores["dsm_small"], x0, step=0.01, n_steps=n_steps, rng=rng)
    # α_i = ε σ_i²/σ_L² with ε = 0.2 σ_L²: each level takes steps of 0.2 σ_i², whose ULA
    # variance inflation 1/(1 - α/(4 s²)) stays below 5% at every level.
    eps = 0.2 * float(sigmas[-1]) ** 2
    annealed = samplers.annealed_langevin(conditional, x0, sigmas, eps, n_steps_each, rng,
                                          denoise=True)
    reference = p.sample(20000, rng)
    centers = ms.backend.xp.asarray(MEANS, dtype=x0.dtype)[:, None]
    quality = {name: {"mode_weights": [float(w) for w in ms.metrics.mode_weights(x, centers)],
                      "w1": ms.metrics.wasserstein1_1d(x[:, 0], reference[:, 0])}
               for name, x in (("ula", ula), ("annealed", annealed))}
    return {"ula": ula, "annealed": annealed}, quality


def main(argv=None):
    args = parse_args("gmm1d", __doc__, argv)
    rng = ms.backend.default_rng(args.seed)
    p, points = target(), grid()
    n_train, n_steps, n_samples, ula_steps, steps_each = QUICK if args.quick else FULL

    plot.density_and_score(points[:, 0], anp.exp(p.log_prob(points)), p.score(points)[:, 0],
                           f"{args.out}/1_score.png", title=titled(args, "A 1-D Gaussian mixture and its score"))
    x_tilde, targets, centres, binned = denoising_targets(p, 0.5, 3000, rng)
    plot.denoising_targets(x_tilde, targets, points[:, 0], {
        "true score of p": p.score(points)[:, 0],
        "score of p_σ (σ = 0.5)": p.perturbed(0.5).score(points)[:, 0]}, f"{args.out}/2_denoising_targets.png",
        title=titled(args, "DSM targets at σ = 0.5 scatter around the perturbed score"),
        binned=(centres, binned))

    scores, conditional, sigmas = train_models(p.sample(n_train, rng), rng, n_steps, progress=True)
    plot.score_curves(points[:, 0], p.score(points)[:, 0],
                      {LABELS[name]: s(points)[:, 0] for name, s in scores.items()},
                      f"{args.out}/3_learned_scores.png", density=anp.exp(p.log_prob(points)),
                      title=titled(args, "Four ways to learn the score (multi-scale read at σ = 0.1)"))
    fisher = fisher_table(p, scores, conditional, sigmas, points)
    print_table("Fisher divergence (lower is better): to the true score weighted by p, on the "
                "uniform grid, and on the grid to the model's own training target",
                {LABELS[name]: row for name, row in fisher.items()},
                ["fisher_p", "fisher_grid", "fisher_grid_own"])

    samples, quality = sample_both(p, scores, conditional, sigmas, n_samples, ula_steps, steps_each, rng)
    plot.sample_histograms(points[:, 0], anp.exp(p.log_prob(points)), {
        f"ULA with the DSM score at σ = {SIGMA_SMALL:g}": samples["ula"][:, 0],
        "annealed Langevin, multi-scale DSM score": samples["annealed"][:, 0]}, f"{args.out}/4_samples.png",
        title=titled(args, f"Samples of the mixture (chains started uniform on [-8, 8]); "
                           f"true mode weights {WEIGHTS[0]} / {WEIGHTS[1]}"))
    print_table("Samples (true mode weights 0.3 / 0.7): ULA with the σ = 0.1 score, annealed "
                "Langevin with the multi-scale score",
                {{"ula": "ULA", "annealed": "annealed Langevin"}[k]:
                 {"left mode": v["mode_weights"][0], "right mode": v["mode_weights"][1], "W1": v["w1"]}
                 for k, v in quality.items()}, ["left mode", "right mode", "W1"])

    return save_metrics(args, {
        "fisher_p": {k: v["fisher_p"] for k, v in fisher.items()},
        "fisher_grid": {k: v["fisher_grid"] for k, v in fisher.items()},
        "fisher_grid_own": {k: v["fisher_grid_own"] for k, v in fisher.items()},
        "mode_weights": {k: v["mode_weights"] for k, v in quality.items()},
        "w1": {k: v["w1"] for k, v in quality.items()},
        "n_samples": n_samples, "target": {"weights": WEIGHTS, "means": MEANS, "stds": STDS}})


if __name__ == "__main__":
    main()
