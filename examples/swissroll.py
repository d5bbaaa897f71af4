"""Four ways to learn the score of the 2-D swiss roll, and what each one samples.

The same MLP (2 -> 128 -> 128 -> 2, softplus) is trained with exact (implicit) score matching,
sliced score matching, DSM at one σ, and multi-scale DSM with a noise-conditional net (NCSN).
Figures show each learned score field and its samples; the table gives time per step and
sample quality against held-out data (MMD², sliced W1). The two failure modes of a single
noise level (Song & Ermon 2019 §3) show up: single-scale scores are wrong away from the data
(the arrows in the empty corners), and ULA with them mixes slowly along the roll, while
annealed Langevin does not need to.

    python -m examples.swissroll [--quick] [--seed S] [--out DIR] [--backend numpy|cupy]
"""
import time

import minimalscore as ms
from minimalscore import models, objectives, plot, samplers, train

from .common import parse_args, print_table, save_metrics, titled

EXTENT = (-3.0, 3.0)
SIGMA_DSM = 0.1
SIGMAS = (1.0, 0.01, 10)  # geometric, largest first (the benchmark's W1)
# make_swiss_roll's noise, before the /5 scaling: 0.1 in the plane. On the noise-free roll the
# data lies on a curve, its score is undefined, and implicit SM diverges (its loss runs to
# -inf: the manifold hypothesis, Song & Ermon 2019 §3.1); a little noise gives p a density.
NOISE = 0.5
# α_i = ε σ_i²/σ_L² runs from 0.2 at σ = 1 to 2e-5 at σ = 0.01, in the step x + (α/2)s + √α z
# (docs/conventions.md): NCSN's code would call this step a = ε/2 = 1e-5.
ANNEAL_EPS = 2e-5
LABELS = {"exact_sm": "exact SM", "sliced_sm": "sliced SM", "dsm": f"DSM, σ = {SIGMA_DSM:g}",
          "multiscale_dsm": f"multi-scale DSM (NCSN), σ {SIGMAS[0]:g} → {SIGMAS[1]:g}"}


def objectives_to_compare(sigmas):
    """loss(params, batch, rng) for each method, and how to read a score off the trained params."""
    mlp = lambda p: (lambda y: models.mlp(p, y))
    return {
        "exact_sm": (lambda p, b, r: objectives.implicit_sm(
            None, b, lambda y: models.mlp_score_and_divergence(p, y)), mlp),
        "sliced_sm": (lambda p, b, r: objectives.sliced_sm(mlp(p), b, r), mlp),
        "dsm": (lambda p, b, r: objectives.dsm(mlp(p), b, SIGMA_DSM, r), mlp),
        "multiscale_dsm": (lambda p, b, r: objectives.multiscale_dsm(
            lambda y, s: models.noise_conditional_mlp(p, y, s), b, sigmas, r),
            lambda p: (lambda y, s: models.noise_conditional_mlp(p, y, s)))}


def train_all(data, sigmas, n_steps, rng):
    """Train each method from the same initial weights; returns {name: (score, ms per step)}."""
    trained = {}
    for name, (loss, read_score) in objectives_to_compare(sigmas).items():
        init = models.noise_conditional_mlp_init if name == "multiscale_dsm" else \
            (lambda r, d: models.mlp_init(r, [d, 128, 128, d]))
        params = init(ms.backend.default_rng(1), 2)
        start = time.perf_counter()
        params, _ = train.fit(loss, params, data, n_steps, batch_size=512, rng=rng, lr=1e-3,
                              desc=f"train {name}")
        trained[name] = (read_score(params), 1e3 * (time.perf_counter() - start) / n_steps)
    return trained


def sample_all(trained, sigmas, n, n_steps, rng):
    """ULA (docs/theory.md §7) for single-scale scores, annealed Langevin (§11) for the NCSN; all
    from a uniform start on U[-3, 3]², as in Tomczak's "Score-based generative models"."""
    x0 = rng.uniform(*EXTENT, (n, 2))
    out = {}
    for name, (score, _) in trained.items():
        if name == "multiscale_dsm":
            out[name] = samplers.annealed_langevin(score, x0, sigmas, ANNEAL_EPS, n_steps // len(sigmas),
                                                   rng, denoise=True)
        else:
            out[name] = samplers.langevin(score, x0, step=1e-3, n_steps=n_steps, rng=rng)
    return out


def main(argv=None):
    args = parse_args("swissroll", __doc__, argv)
    rng = ms.backend.default_rng(args.seed)
    xp = ms.backend.xp
    n_steps, n_samples, n_langevin = (300, 1000, 300) if args.quick else (2000, 3000, 1000)
    data = ms.data.swiss_roll(10000, seed=args.seed, noise=NOISE)
    held_out = ms.data.swiss_roll(n_samples, seed=args.seed + 1, noise=NOISE)
    sigmas = ms.schedule.geometric_sigmas(*SIGMAS).astype(data.dtype)

    trained = train_all(data, sigmas, n_steps, rng)
    samples = sample_all(trained, sigmas, n_samples, n_langevin, rng)
    table = {name: {"ms_per_step": trained[name][1],
                    "mmd": ms.metrics.mmd(x, held_out),
                    "sliced_w1": ms.metrics.sliced_wasserstein(x, held_out, rng)}
             for name, x in samples.items()}
    real = ms.data.swiss_roll(n_samples, seed=args.seed + 2, noise=NOISE)
    table["held_out"] = {"ms_per_step": 0.0, "mmd": ms.metrics.mmd(real, held_out),
                         "sliced_w1": ms.metrics.sliced_wasserstein(real, held_out, rng)}
    print_table("Swiss roll: time per training step and sample quality vs held-out data "
                "(last row: a second real sample, the floor)",
                {LABELS.get(name, "real data (floor)"): row for name, row in table.items()},
                ["ms_per_step", "mmd", "sliced_w1"])

    axis = xp.linspace(*EXTENT, 20, dtype=data.dtype)
    gx, gy = xp.meshgrid(axis, axis)
    points = xp.stack([gx.ravel(), gy.ravel()], axis=1)
    small = xp.full((points.shape[0],), float(sigmas[-1]), dtype=data.dtype)
    large = xp.full((points.shape[0],), float(sigmas[0]), dtype=data.dtype)
    fields = {LABELS[name]: score(points) for name, (score, _) in trained.items() if name != "multiscale_dsm"}
    fields[f"NCSN at σ_L = {SIGMAS[1]:g}"] = trained["multiscale_dsm"][0](points, small)
    fields[f"NCSN at σ_1 = {SIGMAS[0]:g}"] = trained["multiscale_dsm"][0](points, large)
    plot.score_fields(points, fields, data[:2000], f"{args.out}/score_fields.png", extent=EXTENT,
                      title=titled(args, "Learned score fields over the data: arrows show the "
                                         "direction, colour the magnitude"))
    plot.samples_over_density(EXTENT, _histogram(held_out), {
        f"{LABELS[name]}\n(MMD² {table[name]['mmd']:.3f})": x for name, x in samples.items()},
        f"{args.out}/samples.png",
        title=titled(args, "Samples over held-out data (contours): ULA with the single-scale "
                           "scores, annealed Langevin with the NCSN"))
    return save_metrics(args, {"mmd": {k: v["mmd"] for k, v in table.items()},
                               "sliced_w1": {k: v["sliced_w1"] for k, v in table.items()},
                               "ms_per_step": {k: v["ms_per_step"] for k, v in table.items()}})


def _histogram(x, bins=60):
    """A smoothed 2-D histogram of held-out data, for the contour lines under the samples."""
    xp = ms.backend.xp
    edges = xp.linspace(*EXTENT, bins + 1, dtype=x.dtype)
    ix = xp.clip(xp.searchsorted(edges, x[:, 0]) - 1, 0, bins - 1)
    iy = xp.clip(xp.searchsorted(edges, x[:, 1]) - 1, 0, bins - 1)
    counts = xp.bincount(iy * bins + ix, minlength=bins * bins).reshape(bins, bins).astype(x.dtype)
    return (counts + xp.roll(counts, 1, 0) + xp.roll(counts, -1, 0) + xp.roll(counts, 1, 1)
            + xp.roll(counts, -1, 1)) / 5


if __name__ == "__main__":
    main()
