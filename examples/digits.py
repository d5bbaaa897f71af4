"""Handwritten digits from a small noise-conditional score network, on a CPU.

NCSN-lite (minimalscore.ncsn) is trained with multi-scale denoising score matching on
scikit-learn's 8x8 digits (or MNIST), sampled by the cheapest sampler that keeps the quality of
annealed Langevin dynamics (Song & Ermon 2019, Alg. 1; Song & Ermon 2020) -- the samplers of
the VE SDE (Song et al. 2021) query the same net between its noise levels -- asked to complete
held-out digits with their lower or right half hidden, and scored in bits/dim. Eyes are not a
metric: a small classifier trained on the same split judges the samples (its confidence, the
classes present), the distance to the nearest training image checks for copies, and the same
numbers for held-out real digits (the ceiling) and for uniform noise (the floor) frame them.

    python -m examples.digits                     train, sample, inpaint, bits/dim, guided
    python -m examples.digits --quick             a small run in under a minute and a half (the test's)
    python -m examples.digits --resume            continue training from OUT/checkpoint.npz
    python -m examples.digits sample --checkpoint OUT [--n 500] [--sampler S] [--steps K]
    python -m examples.digits inpaint --checkpoint OUT [--n 100] [--steps K]
    python -m examples.digits samplers --checkpoint OUT [--n 500]   the sampler study
    python -m examples.digits likelihood --checkpoint OUT [--n 100] [--exact 5]
    python -m examples.digits guided --checkpoint OUT [--per-class 20]     a chosen class
    python -m examples.digits --data mnist --data-dir DIR    the four MNIST IDX files

Without a subcommand it trains; the subcommands reuse the model a training run saved in
OUT/model.npz, without retraining (the same seed gives the same numbers). Options placed
before the subcommand apply to the whole run (--out, --seed, --backend); after it, to it.

Training writes to --out (default out/digits): model.npz (the EMA parameters, the judge and
the noise schedule), checkpoint.npz (the whole training state, for --resume), loss.csv and
loss.png (the training loss by step; --resume appends), progress.csv (the judge's numbers on
preview samples), samples.png, samples.npy (N, 1, H, W) in [0, 1] from the default sampler,
samplers.csv and samplers.png (the default and reference samplers beside each SDE sampler at
about 20 and 50 network calls), inpaint_lower.png, inpaint_right.png, guided.png, guided_samples.npy and guided_labels.npy
(classifier guidance at its best scale) and metrics.json (with n_score_evals, the network calls
per sample, the same seed through annealed Langevin, bits_per_dim and guided). The subcommands write
sample_metrics.json, inpaint_metrics.json, samplers_metrics.json (with samplers.csv and
samplers.png) or likelihood_metrics.json beside their figures.
"""
import argparse
import os
import sys
import time

import numpy as np

import minimalscore as ms
from minimalscore import checkpoint, ncsn, objectives, plot, samplers, schedule, train
from minimalscore.tree import count_params

from .common import parse_args, print_table, save_metrics
from . import digits_likelihood, digits_samplers
from .digits_commands import add_subcommands, from_checkpoint, guided, positive_int
from .digits_judge import agreement, probabilities, sample_quality, train_classifier
from .digits_record import append_rows, previous_sessions, record_losses
from .digits_samplers import describe, draw, study_row

# 8x8 digits, not 16x16 nearest-neighbour copies (--size 16): upsampling adds no information
# and costs 1.3x a training step and 2.7x the sampling (D = 256 asks for 49 noise levels, not 21).
# Inpainting runs three times sampling's Langevin time per level (T = 60 at the step size NCSNv2's
# rule gives T = 20): completions need that time to come to agree with the visible half.
FULL = dict(steps=1600, batch=64, lr=2e-3, channels=16, n_steps_each=20, inpaint_steps_each=60,
            n_samples=500, n_inpaint=100, preview_every=400, per_class=20)
QUICK = dict(steps=600, batch=64, lr=2e-3, channels=8, n_steps_each=5, inpaint_steps_each=10,
             n_samples=150, n_inpaint=60, preview_every=300, per_class=10)
SIGMA_MIN, EMA_DECAY = 0.01, 0.999
# The default sampler: the cheapest that met the quality target in the sampler study
# (`python -m examples.digits samplers --checkpoint OUT` on the full run's model).
DEFAULT_SAMPLER = dict(sampler="annealed", steps=1, method="heun", levels=19)
# The reference sampler: annealed Langevin at 5 steps a level with 4x NCSNv2's step (the same
# Langevin time per level), which the sampler study measured as good as the schedule's 20 steps
# (confidence 0.868 against 0.869 on 500 digits) at a quarter of the network calls.
REFERENCE_STEPS = 5
# held-out digits for bits/dim, of which some also get the exact divergence
LIKELIHOOD = dict(n=100, n_exact=5, ode_steps=digits_likelihood.ODE_STEPS)
QUICK_LIKELIHOOD = dict(n=20, n_exact=4, ode_steps=5)


def add_flags(parser):
    parser.description, parser.formatter_class = __doc__, argparse.RawDescriptionHelpFormatter
    parser.add_argument("--steps", type=positive_int, default=None,
                        help=f"training steps (default {FULL['steps']}; {QUICK['steps']} with --quick)")
    parser.add_argument("--data", choices=["digits", "mnist"], default="digits",
                        help="scikit-learn's 8x8 digits (no download) or MNIST IDX files in --data-dir")
    parser.add_argument("--data-dir", default="data/mnist", help="folder holding the MNIST IDX files")
    parser.add_argument("--size", type=int, choices=[8, 16], default=8,
                        help="digits at 8x8, or upsampled to 16x16 by repeating each pixel (slower, "
                             "no better)")
    parser.add_argument("--resume", action="store_true",
                        help="continue training from OUT/checkpoint.npz; refused if the seed, data or "
                             "model size differ from the run that wrote it")
    add_subcommands(parser, DEFAULT_SAMPLER)


def load(args):
    """(x_train, y_train), (x_held_out, y_held_out): images (N, 1, H, W) in [0, 1]."""
    if args.data == "mnist":
        return ms.data.mnist(args.data_dir, "train"), ms.data.mnist(args.data_dir, "test")
    split = ms.data.digits(size=args.size)
    return split["train"], split["held_out"]


def masks(shape):
    """mask = 1 where the pixels are kept (samplers.inpaint): the upper half, and the left half."""
    xp = ms.backend.xp
    h, w = shape[-2:]
    lower, right = (xp.zeros(shape, dtype=ms.backend.float_dtype) for _ in range(2))
    lower[..., :h // 2, :] = 1
    right[..., :, :w // 2] = 1
    return {"lower": lower, "right": right}


# ---------------------------------------------------------------- the score model
def score_fn(params, sigmas):
    return lambda x, sigma: ncsn.apply(params, x, sigma, sigmas)


def sample(model, n, rng, progress=False):
    """The default sampler (``DEFAULT_SAMPLER``, ``digits_samplers.draw``): (samples in [0, 1],
    network calls per sample)."""
    return draw(model, n, rng, **DEFAULT_SAMPLER, progress=progress)


def inpaint(model, clf, x, labels, steps, rng, out):
    """Complete ``x`` with the lower, then the right half hidden (the observed part re-noised
    once per level; ``samplers.inpaint``). Returns the judge's agreement with ``labels`` for the
    completions, and for the floor: the hidden half filled with noise."""
    xp, completions, noise_filled = ms.backend.xp, {}, {}
    for name, mask in masks(x.shape).items():
        completed = xp.clip(samplers.inpaint(score_fn(model["score_model"], model["sigmas"]), x, mask,
                                             model["sigmas"], model["eps"], steps, rng, denoise=True,
                                             progress=True), 0.0, 1.0)
        completions[name] = agreement(clf, completed, labels)
        noise_filled[name] = agreement(clf, mask * x + (1 - mask) * rng.uniform(0.0, 1.0, x.shape), labels)
        triples = xp.stack([mask * x + (1 - mask) * 0.5, completed, x], axis=1)[:12]
        plot.image_grid(triples.reshape((-1,) + x.shape[1:]), f"{out}/inpaint_{name}.png", ncols=6,
                        title=f"{name} half hidden; each row, two digits as\n"
                              "masked input | completion | original")
    return completions, noise_filled


# ---------------------------------------------------------------- training
def train_score_model(args, cfg, settings, x_train, clf):
    """NCSNv2's schedule for this data, then multi-scale DSM with Adam and an EMA, checkpointed
    to OUT/checkpoint.npz; every ``preview_every`` steps a grid of EMA samples and the judge's
    numbers on them. Returns (model, info)."""
    # sigma_1 = the largest pairwise distance in the training split (the first 5,000 images of
    # MNIST), gamma from the shell-overlap rule, sigma_L = 0.01, eps for T steps per level
    sched = schedule.ncsnv2_schedule(x_train[:5000], cfg["n_steps_each"], SIGMA_MIN)
    sigmas = sched["sigmas"]
    model = {"sigmas": sigmas, "eps": sched["eps"], "gamma": sched["gamma"], "shape": list(x_train.shape[1:]),
             "n_steps_each": cfg["n_steps_each"], "inpaint_steps_each": cfg["inpaint_steps_each"],
             "n_samples": cfg["n_samples"], "n_inpaint": cfg["n_inpaint"], "judge": clf}
    params = ncsn.init(ms.backend.default_rng(args.seed), len(sigmas), cfg["channels"], x_train.shape[1])
    loss = lambda p, batch, r: objectives.multiscale_dsm(score_fn(p, sigmas), batch, sigmas, r)
    preview_seconds = []

    def preview(step, params, ema):
        started = time.perf_counter()
        grid, _ = sample(dict(model, score_model=ema), 36, ms.backend.default_rng(args.seed + 7))
        plot.image_grid(grid, f"{args.out}/progress_{step:05d}.png", ncols=6,
                        title=f"EMA samples after {step} steps")
        quality = sample_quality(clf, grid, x_train[:2000])
        append_rows(f"{args.out}/progress.csv", ["step", "confidence", "nn_distance_ratio"],
                    [[step, quality["confidence"], quality["nn_distance_ratio"]]])
        preview_seconds.append(time.perf_counter() - started)

    started = time.perf_counter()
    rng = ms.backend.default_rng(args.seed)
    params, info = train.fit(loss, params, x_train, cfg["steps"], cfg["batch"], rng, lr=cfg["lr"],
                             ema_decay=EMA_DECAY, desc="NCSN", settings=settings,
                             checkpoint=f"{args.out}/checkpoint.npz", checkpoint_every=250,
                             resume=args.resume, callback=preview, callback_every=cfg["preview_every"])
    info["seconds"] = time.perf_counter() - started - sum(preview_seconds)  # training alone
    info["n_params"] = count_params(params)
    model["score_model"] = info["ema"]
    checkpoint.save(f"{args.out}/model.npz", model, dict(settings, steps=cfg["steps"]))
    return model, info


# ---------------------------------------------------------------- the runs
def main(argv=None):
    args = parse_args("digits", __doc__.splitlines()[0], argv, extra=add_flags)
    # One BLAS thread: the matrices of 8x8 images are small, and on a busy 2-core machine
    # OpenBLAS's threads spin against each other (6x slower per step with 2 threads than 1).
    # threadpoolctl comes with scikit-learn.
    from threadpoolctl import threadpool_limits
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            return from_checkpoint(args, sys.modules[__name__]) if args.command else run(args)
    except checkpoint.CheckpointError as err:
        raise SystemExit(f"python -m examples.digits: {err}") from err


def judge_rows(clf, samples, x_test, noise, reference):
    return {"samples": sample_quality(clf, samples, reference),
            "held-out real": sample_quality(clf, x_test[:samples.shape[0]], reference),
            "uniform noise": sample_quality(clf, noise, reference)}


def show_table(title, rows):
    labels = {"confidence": "confidence", "classes_present": "classes present",
              "nn_distance_ratio": "NN dist. ratio", "inpaint_agreement": "inpaint agreed"}
    shown = [c for c in labels if c in next(iter(rows.values()))]
    print_table(title, {name: {labels[c]: row[c] for c in shown} for name, row in rows.items()},
                [labels[c] for c in shown])


def run(args):
    cfg = dict(QUICK if args.quick else FULL)
    cfg["steps"] = args.steps or cfg["steps"]
    settings = {"seed": args.seed, "data": args.data, "size": args.size, "channels": cfg["channels"]}
    if args.resume and os.path.exists(f"{args.out}/checkpoint.npz"):  # refuse before any work
        checkpoint.load(f"{args.out}/checkpoint.npz", expect=settings)
    sessions = previous_sessions(args)
    if not args.resume:  # a new run starts a new record
        for name in ("loss.csv", "progress.csv"):
            if os.path.exists(f"{args.out}/{name}"):
                os.remove(f"{args.out}/{name}")
    (x_train, y_train), (x_test, y_test) = load(args)
    reference = x_train[:2000]  # for nearest-neighbour distances (all 1,500 digits; MNIST: a subset)
    clf = train_classifier(x_train, y_train, ms.backend.default_rng(args.seed + 1))
    clf_accuracy = float((probabilities(clf, x_test).argmax(axis=1) == y_test).mean())
    model, info = train_score_model(args, cfg, settings, x_train, clf)
    record_losses(args.out, info["losses"])
    n_trained = cfg["steps"] - info["start_step"]
    sessions.append({"from_step": info["start_step"], "to_step": cfg["steps"],
                     "seconds": round(info["seconds"], 1)})

    started = time.perf_counter()
    samples, n_calls = sample(model, cfg["n_samples"], ms.backend.default_rng(args.seed + 2), progress=True)
    sample_seconds = time.perf_counter() - started
    np.save(f"{args.out}/samples.npy", ms.backend.asnumpy(samples))
    # the reference quality: the same seed through annealed Langevin at REFERENCE_STEPS a level
    started = time.perf_counter()
    langevin, langevin_calls = draw(model, cfg["n_samples"], ms.backend.default_rng(args.seed + 2), "annealed",
                                    steps=REFERENCE_STEPS, progress=True)
    langevin_quality = dict(sample_quality(clf, langevin, reference), n_score_evals=langevin_calls)
    print("Samplers, the same seed, judged by the example's classifier:")
    study_rows = [study_row(DEFAULT_SAMPLER, n_calls, sample_quality(clf, samples, reference), sample_seconds),
                  study_row(dict(sampler="annealed", steps=REFERENCE_STEPS), langevin_calls, langevin_quality,
                            time.perf_counter() - started)]
    study_rows += digits_samplers.study(model, clf, reference, cfg["n_samples"], args.seed + 2,
                                        digits_samplers.RUN_GRID)
    digits_samplers.write_study(study_rows, sample_quality(clf, x_test[:cfg["n_samples"]], reference), args.out)
    like = QUICK_LIKELIHOOD if args.quick else LIKELIHOOD
    bits = digits_likelihood.table(model, x_train, x_test, like["n"], like["n_exact"], like["ode_steps"],
                                   args.seed + 5)
    print_table("Bits/dim of held-out digits (17 levels, uniformly dequantized; lower is better)", bits,
                ["bpd", "se", "n"])
    args.per_class = cfg["per_class"]
    guided_metrics = guided(args, model, clf, reference, sys.modules[__name__])
    n = min(cfg["n_inpaint"], x_test.shape[0])
    completions, noise_filled = inpaint(model, clf, x_test[:n], y_test[:n], cfg["inpaint_steps_each"],
                                        ms.backend.default_rng(args.seed + 3), args.out)

    noise = ms.backend.default_rng(args.seed + 4).uniform(0.0, 1.0, samples.shape)
    table = judge_rows(clf, samples, x_test, noise, reference)
    for row, value in zip(table.values(), (sum(completions.values()) / len(completions),
                                           agreement(clf, x_test[:n], y_test[:n]),
                                           sum(noise_filled.values()) / len(noise_filled))):
        row["inpaint_agreement"] = value
    size = model["shape"][-1]
    show_table(f"Digits ({args.data}, {size}x{size}): samples between the ceiling (held-out real digits) "
               f"and the floor (uniform noise); the judge's held-out accuracy is {clf_accuracy:.3f}", table)
    plot.image_grid(samples[:100], f"{args.out}/samples.png", ncols=10,
                    title=f"NCSN-lite samples (EMA; {describe(**DEFAULT_SAMPLER)}, {n_calls} network calls)"
                          f"{' -- quick run' if args.quick else ''}")
    return save_metrics(args, {
        "classifier_accuracy": clf_accuracy,
        "sample_confidence": table["samples"]["confidence"],
        "class_counts": table["samples"]["class_counts"],
        "nn_distance_ratio": table["samples"]["nn_distance_ratio"],
        "inpaint_agreement": table["samples"]["inpaint_agreement"],
        "inpaint_agreement_by_mask": completions,
        "sampler": describe(**DEFAULT_SAMPLER), "n_score_evals": n_calls, "annealed_langevin": langevin_quality,
        "samplers": study_rows,
        "bits_per_dim": {name: row["bpd"] for name, row in bits.items()}, "bits_per_dim_rows": bits,
        "guided": guided_metrics,
        "ceiling": table["held-out real"], "floor": table["uniform noise"],
        "train_seconds": round(info["seconds"], 1), "train_steps": n_trained, "training": sessions,
        "seconds_per_step": round(info["seconds"] / max(n_trained, 1), 4),
        "sample_seconds": round(sample_seconds, 1), "n_samples": int(samples.shape[0]),
        "n_params": info["n_params"], "n_levels": len(model["sigmas"]),
        "sigma_max": float(model["sigmas"][0]), "gamma": model["gamma"], "eps": model["eps"],
        "n_steps_each": cfg["n_steps_each"], "inpaint_steps_each": cfg["inpaint_steps_each"],
        "batch_size": cfg["batch"], "lr": cfg["lr"], "data": args.data, "size": size})


if __name__ == "__main__":
    main()
