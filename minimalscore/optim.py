"""Adam (Kingma & Ba 2015, Algorithm 1) and an exponential moving average of parameters.

The optimiser is an (init, update) pair over any parameter tree (nested dicts/lists of
arrays); state is a plain dict, so it checkpoints like the parameters.
"""
import math

from . import backend
from .nn import tree_map


def adam_init(params):
    """Adam's state: first and second moment estimates m, v (zeros) and the step count t."""
    zeros = lambda tree: tree_map(backend.xp.zeros_like, tree)
    return {"m": zeros(params), "v": zeros(params), "t": 0}


def adam_update(params, grads, state, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """One step of Kingma & Ba Algorithm 1, with the bias corrections:

        m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
        theta <- theta - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)

    The corrections are folded into Python-float scalars (so float32 stays float32).
    Returns (params, state); the inputs are not modified.
    """
    t = state["t"] + 1
    m = tree_map(lambda m, g: b1 * m + (1 - b1) * g, state["m"], grads)
    v = tree_map(lambda v, g: b2 * v + (1 - b2) * (g * g), state["v"], grads)
    step = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    eps_hat = eps * math.sqrt(1 - b2 ** t)  # eps / sqrt(1 - b2^t) moved with the sqrt(v) factor
    params = tree_map(lambda p, m, v: p - step * m / ((v ** 0.5) + eps_hat), params, m, v)
    return params, {"m": m, "v": v, "t": t}


def ema_update(ema, params, decay=0.999):
    """Exponential moving average of parameters (NCSNv2 samples with decay 0.999):
    ema <- decay * ema + (1 - decay) * params. Start from a copy of the parameters."""
    return tree_map(lambda e, p: decay * e + (1 - decay) * p, ema, params)
