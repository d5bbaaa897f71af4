"""Guidance: the score of a class-conditional density by Bayes' rule,

    ∇_x log p_σ(x | y) = ∇_x log p_σ(x) + ∇_x log p_σ(y | x),

so an unconditional score model and a classifier of the noisy data sample p(x | y) with any sampler
(Song et al. 2021 §5, App. I). Scaling the classifier's term by w > 1 is Dhariwal & Nichol 2021's
classifier guidance: it samples ∝ p_σ(x) p_σ(y | x)^w, sharper and less diverse.
``samplers.guided_score`` is this module's function.
"""
from autograd import make_vjp

from . import backend, checks


def guided_score(score, classifier_log_prob, y, scale=1.0):
    """(x, σ) -> s(x, σ) + w ∇_x log p_σ(y | x) with w = ``scale``: at w = 1 the score of
    p_σ(x | y). ``classifier_log_prob(x, sigma) -> (N, K)`` gives the log-probabilities of the K
    classes for the noisy x (differentiable by autograd); ``y`` holds N integer labels in [0, K).
    The gradient of log p_σ(y_n | x_n) for every n is one VJP with the one-hot labels."""
    score = checks.like_x("score", score)
    classifier = checks.returns("classifier_log_prob", classifier_log_prob,
                                lambda x: (x.shape[0], None), "(N, K) log-probabilities")
    if not backend.is_array(y) or y.ndim != 1 or y.shape[0] == 0 or y.dtype.kind not in "iu":
        raise TypeError(f"y: expected a non-empty 1-D {backend.name} integer array of labels, got "
                        f"{checks.show(y)}")
    scale = checks.nonnegative("scale", scale)
    checked = False

    def guided(x, sigma):
        nonlocal checked
        vjp, log_probs = make_vjp(lambda x_: classifier(x_, sigma))(x)
        if not checked:
            n_classes = log_probs.shape[1]
            if y.shape[0] != x.shape[0]:
                raise ValueError(f"y: expected one label per example, {x.shape[0]}, got {y.shape[0]}")
            if not bool(((y >= 0) & (y < n_classes)).all()):
                raise ValueError(f"y: expected labels in [0, {n_classes}) (the classifier's K)")
            checked = True
        one_hot = (backend.xp.arange(log_probs.shape[1])[None, :] == y[:, None]).astype(x.dtype)
        return score(x, sigma) + scale * vjp(one_hot)

    return guided
