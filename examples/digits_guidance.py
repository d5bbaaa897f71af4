"""Digits of a chosen class by classifier guidance (Song et al. 2021 §5, App. I; Dhariwal &
Nichol 2021): the unconditional score plus w ∇_x log p_σ(y | x̃) (``samplers.guided_score``),
sampled by the example's default sampler.

The noise-conditional classifier p_σ(y | x̃) is an MLP on the flattened noisy pixels and log σ,
trained by cross-entropy on x̃ = x + σz with σ drawn log-uniformly from the score model's
schedule [σ_L, σ_1], so it knows every noise level the samplers visit. The example's clean judge
(``digits_judge``), trained separately, decides whether the samples are of the requested class.
"""
import math

import autograd.numpy as anp

import minimalscore as ms
from minimalscore import models, nn, ncsn, ops, samplers, train

from .digits_judge import probabilities, sample_quality

SCALES = (0.0, 1.0, 2.0, 4.0)


def noisy_logits(params, x, sigma):
    """Logits (N, 10) of noisy digits x (N, 1, H, W) at noise levels sigma (N,)."""
    flat = anp.reshape(x, (x.shape[0], -1))
    features = anp.concatenate([flat, anp.reshape(anp.log(sigma), (-1, 1))], axis=1)
    return models.mlp(params, features, activation=nn.elu)


def log_probs(params, x, sigma):
    logits = noisy_logits(params, x, sigma)
    return logits - anp.reshape(ops.logsumexp(logits, axis=1), (-1, 1))


def train_noisy_classifier(x, y, sigmas, rng, steps=1500):
    """Cross-entropy on x + σz, log σ uniform on [log σ_L, log σ_1]; labels ride along as the
    last column so that mini-batches keep image and label together."""
    xp = ms.backend.xp
    flat = x.reshape(x.shape[0], -1)
    paired = xp.concatenate([flat, y[:, None].astype(flat.dtype)], axis=1)
    lo, hi = math.log(float(sigmas[-1])), math.log(float(sigmas[0]))

    def loss(p, batch, r):
        images = anp.reshape(batch[:, :-1], (-1,) + tuple(x.shape[1:]))
        sigma = xp.exp(r.uniform(lo, hi, (batch.shape[0],))).astype(flat.dtype)
        noisy = images + ops.per_example(sigma, 4) * r.normal(images.shape, dtype=flat.dtype)
        labels = batch[:, -1].astype(xp.int64)
        picked = xp.eye(10, dtype=flat.dtype)[labels]
        return -ops.mean(anp.sum(log_probs(p, noisy, sigma) * picked, axis=1), axis=0, keepdims=False)

    params = models.mlp_init(rng, [flat.shape[1] + 1, 256, 256, 10])
    params, _ = train.fit(loss, params, paired, steps, 128, rng, lr=2e-3, progress=False)
    return params


def accuracy_by_level(params, x, y, sigmas, rng):
    """The classifier's held-out accuracy at each level of the schedule: {σ: accuracy}."""
    xp, out = ms.backend.xp, {}
    for s in ms.backend.asnumpy(sigmas):
        sigma = xp.full((x.shape[0],), float(s), dtype=x.dtype)
        noisy = x + float(s) * rng.normal(x.shape, dtype=x.dtype)
        out[round(float(s), 4)] = float((log_probs(params, noisy, sigma).argmax(axis=1) == y).mean())
    return out


def guided_draw(model, clf_params, labels, scale, rng, setting):
    """Samples of the requested ``labels`` at guidance ``scale`` by the annealed sampler of
    ``setting`` (the default sampler's steps and levels), clipped to [0, 1]."""
    sigmas = model["sigmas"]
    score = samplers.guided_score(lambda x, s: ncsn.apply(model["score_model"], x, s, sigmas),
                                  lambda x, s: log_probs(clf_params, x, s), labels, scale)
    steps, levels = setting["steps"], setting.get("levels")
    xp = ms.backend.xp
    grid = sigmas if levels is None else xp.exp(xp.linspace(
        math.log(float(sigmas[0])), math.log(float(sigmas[-1])), levels)).astype(ms.backend.float_dtype)
    x0 = rng.uniform(0.0, 1.0, (labels.shape[0],) + tuple(model["shape"]))
    x = samplers.annealed_langevin(score, x0, grid, model["eps"] * model["n_steps_each"] / steps, steps, rng,
                                   denoise=True)
    return xp.clip(x, 0.0, 1.0)


def study(model, judge, clf_params, reference, per_class, seed, setting):
    """For each scale: the judge's share of samples in the requested class, their confidence,
    classes present, NN ratio. Returns (rows, {scale: samples}, labels)."""
    xp = ms.backend.xp
    labels = xp.repeat(xp.arange(10), per_class)
    rows, drawn = {}, {}
    for scale in SCALES:
        x = guided_draw(model, clf_params, labels, scale, ms.backend.default_rng(seed), setting)
        quality = sample_quality(judge, x, reference)
        rows[scale] = {"requested_class": float((probabilities(judge, x).argmax(axis=1) == labels).mean()),
                       "confidence": quality["confidence"], "classes_present": quality["classes_present"],
                       "nn_distance_ratio": quality["nn_distance_ratio"]}
        drawn[scale] = x
    return rows, drawn, labels


def best_scale(rows):
    """The scale with the largest share of the requested class among those whose samples are
    no closer to the training digits than real digits are (NN ratio >= 1: no copies)."""
    fair = [scale for scale, row in rows.items() if row["nn_distance_ratio"] >= 1.0] or list(rows)
    return max(fair, key=lambda scale: rows[scale]["requested_class"])
