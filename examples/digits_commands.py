"""The digits study's subcommands on a saved model (OUT/model.npz), no retraining:

    sample      draw digits with any sampler and judge them (sample_metrics.json)
    guided      digits of a chosen class by classifier guidance (guided_samples.npy,
                guided_labels.npy, guided.png, guided_metrics.json)
    inpaint     complete held-out digits with a half hidden (inpaint_metrics.json)
    samplers    the sampler study: every sampler at 10 to 420 network calls, judged
                (samplers.csv, samplers.png, samplers_metrics.json)
    likelihood  bits/dim of held-out digits, the model beside three baselines
                (likelihood_metrics.json)
"""
import argparse
import json
import os

import numpy as np

import minimalscore as ms
from minimalscore import checkpoint, plot

from . import digits_guidance, digits_likelihood, digits_samplers
from .digits_judge import sample_quality


def positive_int(text):
    """argparse's type for a count: an integer >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def add_subcommands(parser, default):
    """sample, inpaint, samplers, likelihood; ``default`` is the default sampler's settings."""
    commands = parser.add_subparsers(dest="command", title="subcommands (default: train)")
    subs = {}
    for name, what in (("sample", "draw new digits from a trained model and judge them"),
                       ("inpaint", "complete held-out digits with their lower or right half hidden"),
                       ("samplers", "compare the samplers at 10 to 420 network calls, judged alike"),
                       ("likelihood", "bits/dim of held-out digits: the model and three baselines"),
                       ("guided", "digits of a chosen class by classifier guidance, at scales 0, 1, 2, 4")):
        sub = commands.add_parser(name, help=what, description=f"{what}, from OUT/model.npz of a "
                                  "training run (no retraining)")
        sub.add_argument("--checkpoint", required=True, metavar="DIR",
                         help="the --out folder of a training run (it holds model.npz)")
        sub.add_argument("--seed", type=int, default=argparse.SUPPRESS, help="random seed")
        sub.add_argument("--out", default=argparse.SUPPRESS, help="folder for the figures and metrics")
        subs[name] = sub
    subs["sample"].add_argument("--n", type=positive_int, default=None,
                                help="digits to draw (default: the training run's)")
    subs["sample"].add_argument("--sampler", choices=digits_samplers.SAMPLERS, default=default["sampler"],
                                help=f"default {default['sampler']}")
    subs["sample"].add_argument("--method", choices=digits_samplers.METHODS, default=default["method"],
                                help=f"the ODE integrator of pf_ode (default {default['method']})")
    subs["sample"].add_argument("--levels", type=positive_int, default=None, metavar="L",
                                help="annealed: this many geometric noise levels from the schedule's "
                                     "largest to its smallest (default: the schedule's own"
                                     f"{', ' + str(default['levels']) + ' for the default sampler' if default.get('levels') else ''})")
    subs["sample"].add_argument("--steps", dest="sampler_steps", type=positive_int, default=None, metavar="K",
                                help="annealed: Langevin steps per noise level (step size scaled by "
                                     "the schedule's steps / K); reverse_sde, pc, pf_ode: time steps "
                                     f"(default {default['steps']} for the default sampler)")
    subs["inpaint"].add_argument("--n", type=positive_int, default=None,
                                 help="held-out digits to complete per mask (default: the training run's)")
    subs["inpaint"].add_argument("--steps", dest="sampler_steps", type=positive_int, default=None, metavar="K",
                                 help="Langevin steps per noise level (default: the training run's)")
    subs["samplers"].add_argument("--n", type=positive_int, default=500, help="digits per sampler (500)")
    subs["guided"].add_argument("--per-class", type=positive_int, default=20, help="digits per class (20)")
    subs["likelihood"].add_argument("--n", type=positive_int, default=100, help="held-out digits (100)")
    subs["likelihood"].add_argument("--exact", type=int, default=5,
                                    help="of them, how many also get the exact divergence (5; 0: none)")
    subs["likelihood"].add_argument("--ode-steps", type=positive_int, default=digits_likelihood.ODE_STEPS,
                                    help=f"RK4 steps of the ODE (default {digits_likelihood.ODE_STEPS})")


def from_checkpoint(args, study):
    """Run the subcommand ``args.command`` on the saved model; ``study`` is examples.digits."""
    model, settings = checkpoint.load(os.path.join(args.checkpoint, "model.npz"))
    args.data, args.size = settings["data"], settings["size"]
    (x_train, _), (x_test, y_test) = study.load(args)
    clf, reference = model["judge"], x_train[:2000]
    if args.command == "sample":
        n = args.n or model["n_samples"]
        default = study.DEFAULT_SAMPLER
        same = args.sampler == default["sampler"]
        steps = args.sampler_steps or (default["steps"] if same else None)
        levels = args.levels or (default.get("levels") if same else None)
        samples, calls = digits_samplers.draw(model, n, ms.backend.default_rng(args.seed + 2), args.sampler,
                                              steps, args.method, levels, progress=True)
        noise = ms.backend.default_rng(args.seed + 4).uniform(0.0, 1.0, samples.shape)
        table = study.judge_rows(clf, samples, x_test, noise, reference)
        name = digits_samplers.describe(args.sampler, steps, args.method, levels)
        study.show_table(f"Digits from {args.checkpoint}/model.npz, {n} samples, {name}: {calls} network calls",
                         table)
        plot.image_grid(samples[:100], f"{args.out}/samples.png", ncols=10,
                        title=f"NCSN-lite samples ({name}, {calls} network calls)")
        np.save(f"{args.out}/samples.npy", ms.backend.asnumpy(samples))
        metrics = {"sample_confidence": table["samples"]["confidence"], "n_samples": n, "sampler": name,
                   "n_score_evals": calls, "rows": table}
    elif args.command == "inpaint":
        n = min(args.n or model["n_inpaint"], x_test.shape[0])
        completions, noise_filled = study.inpaint(model, clf, x_test[:n], y_test[:n],
                                                  args.sampler_steps or model["inpaint_steps_each"],
                                                  ms.backend.default_rng(args.seed + 3), args.out)
        print(f"\nInpainting {n} held-out digits per mask: the judge agrees with the original label on "
              f"{completions} (the hidden half filled with noise: {noise_filled})")
        metrics = {"inpaint_agreement": sum(completions.values()) / len(completions),
                   "inpaint_agreement_by_mask": completions, "noise_filled": noise_filled}
    elif args.command == "samplers":
        metrics = sampler_study(args, model, clf, reference, x_test)
    elif args.command == "guided":
        metrics = guided(args, model, clf, reference, study)
    else:
        rows = digits_likelihood.table(model, x_train, x_test, min(args.n, x_test.shape[0]), args.exact,
                                       args.ode_steps, args.seed + 5)
        study.print_table("Bits/dim of held-out digits (17 levels, uniformly dequantized; lower is better)",
                          rows, ["bpd", "se", "n"])
        metrics = {"bits_per_dim": {name: row["bpd"] for name, row in rows.items()}, "rows": rows}
    with open(f"{args.out}/{args.command}_metrics.json", "w") as f:
        json.dump(dict(metrics, checkpoint=args.checkpoint, seed=args.seed), f, indent=2)
    return metrics


def sampler_study(args, model, clf, reference, x_test):
    """Every setting of the study's grid, n digits each at the same seed: samplers.csv, .png."""
    print(f"The sampler study: {args.n} digits per setting, judged by the example's classifier")
    rows = digits_samplers.study(model, clf, reference, args.n, args.seed + 2, digits_samplers.FULL_GRID)
    ceiling = sample_quality(clf, x_test[:args.n], reference)
    digits_samplers.write_study(rows, ceiling, args.out)
    best = digits_samplers.cheapest_meeting(rows)
    cheap = [row for row in rows if row["calls"] <= 20]
    best_cheap = max(cheap, key=lambda row: row["confidence"]) if cheap else None
    print(f"\ncheapest meeting the target: {best}\nbest at <= 20 calls: {best_cheap}")
    return {"rows": rows, "ceiling": ceiling, "cheapest_meeting_target": best, "best_within_20_calls": best_cheap}


def guided(args, model, judge, reference, study):
    """Train the noise-conditional classifier, report its accuracy per level, sample each class
    at every scale with the default sampler, keep the best scale's samples."""
    (x_train, y_train), (x_test, y_test) = study.load(args)
    rng = ms.backend.default_rng(args.seed + 6)
    params = digits_guidance.train_noisy_classifier(x_train, y_train, model["sigmas"], rng)
    accuracy = digits_guidance.accuracy_by_level(params, x_test, y_test, model["sigmas"], rng)
    print("noise-conditional classifier, held-out accuracy by noise level:")
    print("  " + "  ".join(f"{s:.3g}: {a:.2f}" for s, a in accuracy.items()))
    rows, drawn, labels = digits_guidance.study(model, judge, params, reference, args.per_class, args.seed + 2,
                                                study.DEFAULT_SAMPLER)
    study.print_table(f"Guided samples ({args.per_class} per class, {study.describe(**study.DEFAULT_SAMPLER)})",
                      {f"scale {s:g}": row for s, row in rows.items()},
                      ["requested_class", "confidence", "classes_present", "nn_distance_ratio"])
    best = digits_guidance.best_scale(rows)
    order = ms.backend.xp.concatenate([ms.backend.xp.arange(c * args.per_class, c * args.per_class + 10)
                                       for c in range(10)]) if args.per_class >= 10 else slice(None)
    plot.image_grid(drawn[best][order], f"{args.out}/guided.png", ncols=10,
                    title=f"classifier guidance at scale {best:g}: row c asks for digit c")
    np.save(f"{args.out}/guided_samples.npy", ms.backend.asnumpy(drawn[best]))
    np.save(f"{args.out}/guided_labels.npy", ms.backend.asnumpy(labels))
    return {"best_scale": best, "by_scale": {str(s): row for s, row in rows.items()},
            "classifier_accuracy_by_sigma": {str(s): a for s, a in accuracy.items()}}
