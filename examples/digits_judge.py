"""The judge of the digits study: a small classifier trained on the same split as the score
model, and the numbers it gives a set of images (confidence, the classes present, the distance to
the nearest training image), for samples, for held-out real digits and for noise alike."""
import autograd.numpy as anp

import minimalscore as ms
from minimalscore import models, nn, ops, train


def classifier_logits(params, x):
    """A one-hidden-layer MLP on the flattened pixels (64 -> 128 -> 10, ELU)."""
    return models.mlp(params, anp.reshape(x, (x.shape[0], -1)), activation=nn.elu)


def classifier_loss(params, x, labels, rng, outlier_weight=0.5):
    """Cross-entropy on the digits, plus outlier exposure (Hendrycks et al. 2019): cross-entropy
    to the uniform distribution on as many U[0, 1] noise images. Without it the MLP calls noise a
    digit with 93% confidence, and confidence could not tell a sample from noise."""
    logits = classifier_logits(params, x)
    picked = anp.sum(logits * ms.backend.xp.eye(10, dtype=logits.dtype)[labels], axis=1)
    noise_logits = classifier_logits(params, rng.uniform(0.0, 1.0, x.shape))
    outliers = ops.logsumexp(noise_logits, axis=1) - ops.mean(noise_logits, axis=1, keepdims=False)
    batch_mean = lambda a: ops.mean(a, axis=0, keepdims=False)
    return batch_mean(ops.logsumexp(logits, axis=1) - picked) + outlier_weight * batch_mean(outliers)


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


def nearest_distances(a, b, exclude_self=False):
    """Euclidean distance from each row of a to its nearest row of b (itself excluded if a is b)."""
    xp = ms.backend.xp
    d2 = ops.sq_distances(a.astype(xp.float64), b.astype(xp.float64))
    if exclude_self:
        d2 = d2 + xp.diag(xp.full(a.shape[0], xp.inf))
    return xp.sqrt(d2.min(axis=1))


def sample_quality(clf, images, x_train):
    """Mean classifier confidence, counts of the predicted classes, and the median distance to
    the nearest training image over the median nearest-neighbour distance among training
    images (about 1 for new digits as typical as the data, near 0 for copies of it)."""
    xp = ms.backend.xp
    p = probabilities(clf, images)
    typical = float(xp.median(nearest_distances(x_train, x_train, exclude_self=True)))
    counts = [int(c) for c in xp.bincount(p.argmax(axis=1), minlength=10)]
    return {"confidence": float(p.max(axis=1).mean()), "class_counts": counts,
            "classes_present": sum(c > 0 for c in counts),
            "nn_distance_ratio": float(xp.median(nearest_distances(images, x_train))) / typical}


def agreement(clf, completed, labels):
    """Share of completions the classifier gives the original digit's label."""
    return float((probabilities(clf, completed).argmax(axis=1) == labels).mean())
