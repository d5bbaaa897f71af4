"""Score networks built from ``nn``: (init, apply) pairs over dict parameters.

- ``mlp``: a score net s(x) = W_L a(... a(x W_1 + b_1) ...) + b_L on vectors (N, D).
- ``noise_conditional_mlp``: s(x, sigma) = MLP(concat(x, log sigma)) / sigma, NCSNv2's output
  scaling (Song & Ermon 2020, Technique 3): the net learns sigma * score, which is O(1).
- ``energy_mlp``: a scalar energy E(x), p(x) ~ exp(-E(x)); its score is -grad_x E
  (docs/conventions.md: the sign is the convention).
- ``mlp_score_and_divergence``: the exact Jacobian trace of a one- or two-hidden-layer MLP in
  closed form, a structured fast path for exact (implicit) score matching that the tests check
  against the generic autograd ``objectives.divergence``.
"""
import autograd.numpy as anp
from autograd import elementwise_grad
from autograd.tracer import getval

from . import checks, fused, nn


def mlp_init(rng, sizes):
    """Layers of widths ``sizes`` (e.g. [2, 128, 128, 2]), PyTorch's default initialisation."""
    if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
        raise ValueError(f"sizes: expected a list of at least two layer widths, got {checks.show(sizes)}")
    sizes = [checks.count(f"sizes[{i}]", s) for i, s in enumerate(sizes)]
    return {"layers": [nn.dense_init(rng, a, b) for a, b in zip(sizes[:-1], sizes[1:])]}


def mlp(params, x, activation=nn.softplus):
    """s(x) = W_L a(... a(x W_1 + b_1) ...) + b_L, batch first."""
    return _mlp(_layers(params, x), checks.batch("x", x), activation)


def _mlp(layers, x, activation):
    *hidden_layers, output_layer = layers  # unpacked once: each look-up is a traced node
    for layer in hidden_layers:
        x = nn.dense(layer, x, activation)
    return nn.dense(output_layer, x)


def _layers(params, x, extra=0):
    """``params["layers"]``, a non-empty list of dense layers whose first takes x's width plus
    ``extra`` inputs (checked: a clear error, not a KeyError or a matmul's; shapes only, no value
    is read, since a model runs every training step)."""
    try:
        layers = params["layers"]
        width = getval(params)["layers"][0]["W"].shape[0]  # read untraced: no extra graph node
    except (TypeError, KeyError, IndexError, AttributeError):
        raise TypeError(f"params: expected an MLP's parameters {{'layers': [{{'W': ..., 'b': ...}}, "
                        f"...]}}, got {checks.show(params)}") from None
    shape = tuple(getattr(checks.array("x", x), "shape", ()))
    if len(shape) < 2 or shape[-1] + extra != width:
        raise ValueError(f"x: expected shape (N, {width - extra}), the width params' first layer "
                         f"takes, got shape {shape}; params and x belong to different models")
    return layers


def _hidden_widths(hidden):
    if not isinstance(hidden, (list, tuple)):
        raise TypeError(f"hidden: expected a tuple of hidden-layer widths, got {checks.show(hidden)}")
    return [checks.count(f"hidden[{i}]", h) for i, h in enumerate(hidden)]


def noise_conditional_mlp_init(rng, dim, hidden=(128, 128)):
    """An MLP from (x, log sigma) (dim + 1) through ``hidden`` to dim."""
    dim = checks.count("dim", dim)
    return mlp_init(rng, [dim + 1, *_hidden_widths(hidden), dim])


def noise_conditional_mlp(params, x, sigma, activation=nn.softplus):
    """s(x, sigma) = MLP(concat(x, log sigma)) / sigma; ``sigma`` has shape (N,), one noise level
    per example (docs/conventions.md)."""
    layers = _layers(params, x, extra=1)
    checks.sigma_per_example("sigma", sigma, checks.batch("x", x))
    log_sigma = anp.log(sigma)[:, None]
    return _mlp(layers, anp.concatenate([x, log_sigma], axis=1), activation) / sigma[:, None]


def energy_mlp_init(rng, dim, hidden=(128, 128)):
    """An MLP from dim through ``hidden`` to one number, the energy."""
    return mlp_init(rng, [checks.count("dim", dim), *_hidden_widths(hidden), 1])


def energy_mlp(params, x, activation=nn.softplus):
    """E(x), shape (N,): an unnormalised model p(x) ~ exp(-E(x))."""
    return mlp(params, x, activation)[:, 0]


def energy_score(params, x, activation=nn.softplus):
    """score = grad_x log p = -grad_x E(x) (docs/conventions.md: the sign is the convention)."""
    checks.array("x", x)  # autograd's own error for a non-array would not name x
    return -elementwise_grad(lambda y: energy_mlp(params, y, activation))(x)


def mlp_score_and_divergence(params, x):
    """s(x) and tr(ds/dx) per example for a softplus MLP with one or two hidden layers.

    With row-vector layers h_1 = a(x W_1 + b_1), h_2 = a(h_1 W_2 + b_2), s = h_2 W_3 + b_3 and
    d_l = a'(pre-activation l), the Jacobian is W_3^T diag(d_2) W_2^T diag(d_1) W_1^T, and by
    the cyclic property of the trace

        tr(ds/dx) = d_1^T (W_2 ∘ (W_3 W_1)^T) d_2                  (two hidden layers)
        tr(ds/dx) = d_1 · diag((W_2 W_1)^T) = sum_k d_1k (W_1 ∘ W_2^T).sum(0)_k   (one)

    one (H, H) product per batch whatever the data dimension D, against D backward passes for
    the generic trace. softplus' derivative is read off its output, a'(u) = 1 - exp(-softplus(u)).
    """
    *hidden_layers, output_layer = _layers(params, x)  # unpacked once: each look-up is a traced node
    if len(hidden_layers) not in (1, 2):
        raise ValueError(f"params: the closed-form trace needs 1 or 2 hidden layers, got "
                         f"{len(hidden_layers)}; use objectives.divergence for other nets")
    h = checks.batch("x", x)
    hidden = []
    for layer in hidden_layers:
        h = nn.dense(layer, h, nn.softplus)
        hidden.append(h)
    score = nn.dense(output_layer, h)
    d = [fused.sigmoid_from_softplus(h) for h in hidden]
    w_first, w_last = hidden_layers[0]["W"], output_layer["W"]
    if len(hidden) == 1:
        return score, d[0] @ anp.sum(w_first * w_last.T, axis=0)
    coupling = hidden_layers[1]["W"] * (w_last @ w_first).T
    return score, anp.sum((d[0] @ coupling) * d[1], axis=1)
