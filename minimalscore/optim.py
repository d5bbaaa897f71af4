"""Adam (Kingma & Ba 2015, Algorithm 1) and an exponential moving average of parameters.

The optimiser is an (init, update) pair over any parameter tree (nested dicts/lists of
arrays); state is a plain dict, so it checkpoints like the parameters.
"""
import math

from . import backend
from .nn import tree_map


def moving_average(average, x, decay):
    """decay * average + (1 - decay) * x, computed as average + (1 - decay)(x - average) in one
    new array (three passes, no temporaries; the inputs are kept)."""
    new = x - average
    new *= 1 - decay
    new += average
    return new


def _adam_step(p, m, v, step, eps_hat):
    """p - step * m / (sqrt(v) + eps_hat), in one new array (asarray: 0-d parameters too)."""
    update = backend.xp.asarray(backend.xp.sqrt(v))
    update += eps_hat
    backend.xp.divide(m, update, out=update)
    update *= -step
    update += p
    return update


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
    m = tree_map(lambda m, g: moving_average(m, g, b1), state["m"], grads)
    v = tree_map(lambda v, g: moving_average(v, g * g, b2), state["v"], grads)
    step = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    eps_hat = eps * math.sqrt(1 - b2 ** t)  # eps / sqrt(1 - b2^t) moved with the sqrt(v) factor
    params = tree_map(lambda p, m, v: _adam_step(p, m, v, step, eps_hat), params, m, v)
    return params, {"m": m, "v": v, "t": t}


def ema_update(ema, params, decay=0.999):
    """Exponential moving average of parameters (NCSNv2 samples with decay 0.999):
    ema <- decay * ema + (1 - decay) * params. Start from a copy of the parameters."""
    return tree_map(lambda e, p: moving_average(e, p, decay), ema, params)
