"""Handwritten digits from a small noise-conditional score network, on a CPU (seed 004 §5).

NCSN-lite (``minimalscore.ncsn``) is trained with multi-scale DSM on scikit-learn's 8x8 digits
(or MNIST), sampled with annealed Langevin and a final Tweedie step, and asked to complete
held-out digits with their lower or right half masked. Eyes are not a metric: a small
classifier trained on the same split judges the samples (confidence, class balance), nearest
training images check for memorisation, and the same numbers for held-out real digits (the
ceiling) and for uniform noise (the floor) frame them.

    python -m examples.digits                  # full run (see RESULTS below)
    python -m examples.digits --quick          # < 1 minute (the test runs this)
    python -m examples.digits --resume         # continue from OUT/checkpoint.pkl
    python -m examples.digits --data mnist --data-dir DIR     # the four MNIST IDX files

Writes to --out (default ./out/digits/): samples.png, inpaint_lower.png, inpaint_right.png,
progress_STEP.png, samples.npy (N, 1, H, W) in [0, 1], metrics.json, checkpoint.pkl.

RESULTS (full run, seed 0, NumPy, this project's shared 2-core CPU). NCSN-lite with 182,577
parameters; 1,600 steps of batch 64, Adam lr 2e-3, EMA 0.999 (with warm-up); NCSNv2 schedule:
sigma_1 = 4.815, gamma = 1.362, L = 21, sigma_L = 0.01, T = 20, eps = 1.98e-5 (ours; step_lr
9.9e-6 in NCSNv2's convention). Training took 492 s (0.307 s per step with one BLAS thread, on a
machine whose 2048^3 GEMM runs 105-165 GFLOP/s; 0.45 s before convolutions shared their padding
and instance norm++ became one primitive, 0.78 s before the backward pass was kept in float32),
sampling 500 digits 370 s, inpainting 2 x 100 digits ~6 minutes (T = 60: see INPAINTING below).
The judge, a 64-128-10 MLP, is right on 97.0% of the held-out digits.

                       confidence  classes present  NN distance ratio  inpaint agreement
    samples               0.887          10              1.33              0.715
    held-out real         0.966          10              1.01              0.98
    uniform noise         0.123          10              3.48              0.525

Samples are recognisable digits of every class (counts 26-69 of 500: ones are the rarest) and
are not copies of the training set (ratio > 1: somewhat farther from it than new real digits
are). Inpainting (lower / right half masked: 0.67 / 0.76) is well above the noise-filled floor
but below pasting the nearest training image's hidden half (0.87 / 0.93): completions look
plausible and mostly keep the visible half's digit.
"""
import time

import autograd.numpy as anp
import numpy as np

import minimalscore as ms
from minimalscore import models, ncsn, nn, objectives, plot, samplers, schedule, train

from .common import parse_args, print_table, save_metrics

# SIZE: 8x8, not 16x16 nearest-neighbour copies (``--size 16`` reproduces the comparison).
# Upsampling adds no information (each 2x2 block is one pixel) and costs: a training step 1.3x
# (the net halves 16x16 after its first stage), and sampling 2.7x per image at equal T, since
# D = 256 asks for gamma = 1.153 and 49 levels instead of 21. Measured with the same ten-minute
# training budget (1,600 steps at 8x8, 1,120 at 16x16) and T = 5: confidence 0.845 vs 0.854,
# nearest-neighbour ratio 1.47 vs 1.51, inpainting 0.54 vs 0.57 -- a tie. The sampling time
# 16x16 needs at T = 5 buys 8x8 T = 20, which is better (confidence 0.87, ratio 1.35).
# Batch 64 at lr 2e-3 beat batch 128 at 1e-3 or 2e-3 for the same wall time (0.845 vs 0.80-0.83):
# more, noisier steps win when there are only ~1,600 of them (NCSNv2: 1e-4, batch 128, 300k steps).
# INPAINTING runs 3x the Langevin time per level of sampling (2x in --quick, to stay under a
# minute): T = 60 steps at the eps that NCSNv2's rule gives T = 20. The rule fixes about eps * T
# (the chain's time per level), so a larger T with its own eps mixes no more (measured: T = 60,
# own eps, ties T = 20), while the completions need that time to come to agree with the
# observed half. On 200 held-out digits per mask, the full run's net, agreement lower / right:
# T = 20 0.575 / 0.550; y re-noised every step (NCSNv2's code) 0.605 / 0.595; the same 20 steps
# at 3x eps 0.625 / 0.655 (but 3x the step's bias); T = 60 at T = 20's eps 0.675 / 0.685
# (standard error ~0.034 each).
FULL = dict(steps=1600, batch=64, lr=2e-3, channels=16, n_steps_each=20, inpaint_steps_each=60,
            n_samples=500, n_inpaint=100, preview_every=400)
QUICK = dict(steps=150, batch=64, lr=2e-3, channels=8, n_steps_each=5, inpaint_steps_each=10,
             n_samples=150, n_inpaint=60, preview_every=0)
SIGMA_MIN, EMA_DECAY = 0.01, 0.999


def add_flags(parser):
    parser.add_argument("--steps", type=int, default=None,
                        help=f"training steps (default {FULL['steps']}; {QUICK['steps']} with --quick)")
    parser.add_argument("--data", choices=["digits", "mnist"], default="digits",
                        help="sklearn's 8x8 digits (no download) or MNIST IDX files in --data-dir")
    parser.add_argument("--data-dir", default="data/mnist", help="folder holding the MNIST IDX files")
    parser.add_argument("--size", type=int, choices=[8, 16], default=8,
                        help="digits at 8x8 or upsampled to 16x16 (nearest neighbour); see SIZE below")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pkl")


def load(args):
    """(x_train, y_train), (x_held_out, y_held_out): images (N, 1, H, W) in [0, 1]."""
    if args.data == "mnist":
        return ms.data.mnist(args.data_dir, "train"), ms.data.mnist(args.data_dir, "test")
    split = ms.data.digits(size=args.size)
    return split["train"], split["held_out"]


# ---------------------------------------------------------------- the judge: a small classifier
def classifier_logits(params, x):
    """A one-hidden-layer MLP on the flattened pixels (64 -> 128 -> 10, ELU)."""
    return models.mlp(params, anp.reshape(x, (x.shape[0], -1)), activation=nn.elu)


def log_sum_exp(logits):
    top = anp.max(logits, axis=1, keepdims=True)  # the shift cancels, in value and gradient
    return top[:, 0] + anp.log(anp.sum(anp.exp(logits - top), axis=1))


def classifier_loss(params, x, labels, rng, outlier_weight=0.5):
    """Cross-entropy on the digits, plus outlier exposure (Hendrycks et al. 2019): cross-entropy
    to the uniform distribution on as many U[0, 1] noise images. Without it the MLP calls noise a
    digit with 93% confidence, and confidence could not tell a sample from noise."""
    logits = classifier_logits(params, x)
    picked = anp.sum(logits * ms.backend.xp.eye(10, dtype=logits.dtype)[labels], axis=1)
    noise_logits = classifier_logits(params, rng.uniform(0.0, 1.0, x.shape))
    outliers = log_sum_exp(noise_logits) - nn.mean(noise_logits, axis=1, keepdims=False)
    batch_mean = lambda a: nn.mean(a, axis=0, keepdims=False)  # nn.mean: float32 stays float32
    return batch_mean(log_sum_exp(logits) - picked) + outlier_weight * batch_mean(outliers)


def train_classifier(x, y, rng, steps=600):
    """Adam on :func:`classifier_loss`; the label rides along as the last column so that the
    mini-batches keep image and label together."""
    xp = ms.backend.xp
    flat = x.reshape(x.shape[0], -1)
    paired = xp.concatenate([flat, y[:, None].astype(flat.dtype)], axis=1)
    loss = lambda p, b, r: classifier_loss(p, b[:, :-1], b[:, -1].astype(xp.int64), r)
    params = models.mlp_init(rng, [flat.shape[1], 128, 10])
    params, _ = train.fit(loss, params, paired, steps, 128, rng, lr=3e-3, progress=False)
    return params


def probabilities(params, x):
    logits = classifier_logits(params, x)
    e = ms.backend.xp.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- measuring samples
def nearest_distances(a, b, exclude_self=False):
    """Euclidean distance from each row of a to its nearest row of b (itself excluded if a is b)."""
    xp = ms.backend.xp
    a, b = a.reshape(a.shape[0], -1).astype(xp.float64), b.reshape(b.shape[0], -1).astype(xp.float64)
    d2 = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2 * a @ b.T
    if exclude_self:
        d2 = d2 + xp.diag(xp.full(a.shape[0], xp.inf))
    return xp.sqrt(xp.maximum(d2.min(axis=1), 0))


def sample_quality(clf, images, x_train):
    """Mean classifier confidence, counts of the predicted classes, and the median distance to
    the nearest training image over the median nearest-neighbour distance among training
    images (about 1 for new digits as typical as the data, near 0 for copies of it)."""
    xp = ms.backend.xp
    p = probabilities(clf, images)
    typical = float(xp.median(nearest_distances(x_train, x_train, exclude_self=True)))
    return {"confidence": float(p.max(axis=1).mean()),
            "class_counts": [int(c) for c in xp.bincount(p.argmax(axis=1), minlength=10)],
            "nn_distance_ratio": float(xp.median(nearest_distances(images, x_train))) / typical}


def masks(shape):
    """mask = 1 where the pixels are kept (samplers.inpaint): the upper half, and the left half."""
    xp = ms.backend.xp
    h, w = shape[-2:]
    lower, right = xp.zeros(shape, dtype=ms.backend.float_dtype), xp.zeros(shape, dtype=ms.backend.float_dtype)
    lower[..., :h // 2, :] = 1
    right[..., :, :w // 2] = 1
    return {"lower": lower, "right": right}


def agreement(clf, completed, labels):
    """Share of completions the classifier gives the original digit's label."""
    return float((probabilities(clf, completed).argmax(axis=1) == labels).mean())


# ---------------------------------------------------------------- the score model
def score_fn(params, sigmas):
    return lambda x, sigma: ncsn.apply(params, x, sigma, sigmas)


def sample(params, sched, n, rng, n_steps_each=None, progress=False):
    """Annealed Langevin from U[0, 1] (004 §5.1) with NCSNv2's final Tweedie step, clipped to [0, 1]."""
    x0 = rng.uniform(0.0, 1.0, (n,) + sched["shape"])
    x = samplers.annealed_langevin(score_fn(params, sched["sigmas"]), x0, sched["sigmas"], sched["eps"],
                                   n_steps_each or sched["n_steps_each"], rng, denoise=True, progress=progress)
    return ms.backend.xp.clip(x, 0.0, 1.0)


def main(argv=None):
    args = parse_args("digits", __doc__.splitlines()[0], argv, extra=add_flags)
    # One BLAS thread: the matrices of 8x8 images are small, and on a busy 2-core machine
    # OpenBLAS's threads spin against each other (measured: 0.35 s per step with 1 thread,
    # 2.1 s with 2). threadpoolctl comes with scikit-learn.
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        return run(args)


def train_score_model(args, cfg, x_train, rng):
    """NCSNv2's schedule for this data, then multi-scale DSM with Adam and an EMA (decay 0.999),
    checkpointed to OUT/checkpoint.pkl, previews every ``preview_every`` steps."""
    # sigma_1 = the largest pairwise distance in the training split (the first 5,000 images of
    # MNIST), gamma from the shell-overlap rule, sigma_L = 0.01, eps for T steps per level
    sched = schedule.ncsnv2_schedule(x_train[:5000], cfg["n_steps_each"], SIGMA_MIN)
    sched["shape"] = tuple(x_train.shape[1:])
    sigmas = sched["sigmas"]
    params = ncsn.init(ms.backend.default_rng(args.seed), len(sigmas), cfg["channels"], x_train.shape[1])
    loss = lambda p, batch, r: objectives.multiscale_dsm(score_fn(p, sigmas), batch, sigmas, r)

    preview_seconds = []

    def preview(step, params, ema):
        started = time.perf_counter()
        grid = sample(ema, sched, 36, ms.backend.default_rng(args.seed + 7))
        plot.image_grid(grid, f"{args.out}/progress_{step:05d}.png", ncols=6, title=f"EMA samples after {step} steps")
        preview_seconds.append(time.perf_counter() - started)

    started = time.perf_counter()
    params, info = train.fit(loss, params, x_train, cfg["steps"], cfg["batch"], rng, lr=cfg["lr"],
                             ema_decay=EMA_DECAY, desc="NCSN", checkpoint=f"{args.out}/checkpoint.pkl",
                             checkpoint_every=250, resume=args.resume, callback=preview,
                             callback_every=cfg["preview_every"])
    info["seconds"] = time.perf_counter() - started - sum(preview_seconds)  # training alone
    info["n_params"] = nn.count_params(params)
    return info["ema"], sched, info


def inpaint_study(args, cfg, ema, sched, clf, x_test, y_test, rng):
    """Complete held-out digits with the lower, then the right half masked (004 §5.2, the observed
    part re-noised once per level; ``samplers.inpaint``), with ``inpaint_steps_each`` Langevin
    steps per level at sampling's eps (the INPAINTING comment above the configurations). Returns
    the classifier's agreement with the original labels for the completions, and for the floor:
    the masked half filled with noise."""
    n = min(cfg["n_inpaint"], x_test.shape[0])
    originals, labels = x_test[:n], y_test[:n]
    xp, completions, noise_filled = ms.backend.xp, {}, {}
    for name, mask in masks(originals.shape).items():
        completed = xp.clip(samplers.inpaint(score_fn(ema, sched["sigmas"]), originals, mask, sched["sigmas"],
                                             sched["eps"], cfg["inpaint_steps_each"], rng, denoise=True,
                                             progress=True), 0.0, 1.0)
        completions[name] = agreement(clf, completed, labels)
        noise_filled[name] = agreement(clf, mask * originals + (1 - mask) * rng.uniform(0.0, 1.0, originals.shape), labels)
        triples = xp.stack([mask * originals + (1 - mask) * 0.5, completed, originals], axis=1)[:12]
        plot.image_grid(triples.reshape((-1,) + originals.shape[1:]), f"{args.out}/inpaint_{name}.png", ncols=6,
                        title=f"{name} half masked: masked input | completion | original")
    return completions, noise_filled, agreement(clf, originals, labels)


def run(args):
    cfg = dict(QUICK if args.quick else FULL)
    cfg["steps"] = args.steps or cfg["steps"]
    rng = ms.backend.default_rng(args.seed)
    (x_train, y_train), (x_test, y_test) = load(args)
    reference = x_train[:2000]  # for nearest-neighbour distances (all 1,500 digits; MNIST: a subset)

    clf = train_classifier(x_train, y_train, ms.backend.default_rng(args.seed + 1))
    clf_accuracy = float((probabilities(clf, x_test).argmax(axis=1) == y_test).mean())
    ema, sched, info = train_score_model(args, cfg, x_train, rng)
    n_trained = cfg["steps"] - info["start_step"]

    started = time.perf_counter()
    samples = sample(ema, sched, cfg["n_samples"], rng, progress=True)
    sample_seconds = time.perf_counter() - started
    np.save(f"{args.out}/samples.npy", ms.backend.asnumpy(samples))
    completions, noise_filled, originals = inpaint_study(args, cfg, ema, sched, clf, x_test, y_test, rng)

    noise = rng.uniform(0.0, 1.0, (cfg["n_samples"],) + sched["shape"])
    table = {"samples": dict(sample_quality(clf, samples, reference),
                             inpaint_agreement=sum(completions.values()) / len(completions)),
             "held_out_real": dict(sample_quality(clf, x_test[:cfg["n_samples"]], reference),
                                   inpaint_agreement=originals),
             "uniform_noise": dict(sample_quality(clf, noise, reference),
                                   inpaint_agreement=sum(noise_filled.values()) / len(noise_filled))}
    for row in table.values():
        row["classes_present"] = sum(c > 0 for c in row["class_counts"])
    size = sched["shape"][-1]
    print_table(f"Digits ({args.data}, {size}x{size}): samples between the ceiling (held-out real digits) "
                f"and the floor (uniform noise); the classifier's held-out accuracy is {clf_accuracy:.3f}",
                table, ["confidence", "classes_present", "nn_distance_ratio", "inpaint_agreement"])
    plot.image_grid(samples[:100], f"{args.out}/samples.png", ncols=10,
                    title=f"NCSN-lite samples (EMA; {len(sched['sigmas'])} levels x {cfg['n_steps_each']} "
                          f"Langevin steps, then Tweedie)")
    return save_metrics(args, {
        "classifier_accuracy": clf_accuracy,
        "sample_confidence": table["samples"]["confidence"],
        "class_counts": table["samples"]["class_counts"],
        "nn_distance_ratio": table["samples"]["nn_distance_ratio"],
        "inpaint_agreement": table["samples"]["inpaint_agreement"],
        "inpaint_agreement_by_mask": completions,
        "ceiling": table["held_out_real"], "floor": table["uniform_noise"],
        "train_seconds": round(info["seconds"], 1), "train_steps": n_trained,
        "seconds_per_step": round(info["seconds"] / max(n_trained, 1), 4),
        "sample_seconds": round(sample_seconds, 1), "n_samples": int(samples.shape[0]),
        "n_params": info["n_params"], "n_levels": len(sched["sigmas"]), "sigma_max": sched["sigma_max"],
        "gamma": sched["gamma"], "eps": sched["eps"], "n_steps_each": cfg["n_steps_each"],
        "inpaint_steps_each": cfg["inpaint_steps_each"],
        "batch_size": cfg["batch"], "lr": cfg["lr"], "data": args.data, "size": size})


if __name__ == "__main__":
    main()
