"""Adam (Kingma & Ba 2015, Algorithm 1) and an exponential moving average of parameters.

Adam, for gradients g_t of the loss at theta_{t-1}, with m_0 = v_0 = 0:

    m_t = b1 m_{t-1} + (1 - b1) g_t            (biased first moment estimate)
    v_t = b2 v_{t-1} + (1 - b2) g_t^2          (biased second raw moment estimate)
    m_hat = m_t / (1 - b1^t),   v_hat = v_t / (1 - b2^t)      (bias corrections)
    theta_t = theta_{t-1} - lr m_hat / (sqrt(v_hat) + eps)

The optimiser is an (init, update) pair over any parameter tree (nested dicts / lists of
arrays); its state is a plain dict, so it checkpoints like the parameters.
"""
import math

from . import backend, checks
from .tree import tree_map


def _moving_average(average, x, decay):
    """decay * average + (1 - decay) * x, computed as average + (1 - decay)(x - average) in one
    new array (three passes, no temporaries; the inputs are kept)."""
    new = x - average
    new *= 1 - decay
    new += average
    return new


def adam_init(params):
    """Adam's state: first and second moment estimates m, v (zeros) and the step count t."""
    checks.finite_tree("params", params, "Adam starts from finite parameters")
    zeros = lambda tree: tree_map(backend.xp.zeros_like, tree)
    return {"m": zeros(params), "v": zeros(params), "t": 0}


def adam_update(params, grads, state, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """One step of Algorithm 1 (the module docstring); returns (params, state), the inputs kept.

    The bias corrections are folded into two Python-float scalars (so float32 stays float32),
    multiplying the last line's numerator and denominator by sqrt(1 - b2^t):

        theta_t = theta_{t-1} - lr_t m_t / (sqrt(v_t) + eps_t),
        lr_t = lr sqrt(1 - b2^t) / (1 - b1^t),   eps_t = eps sqrt(1 - b2^t)

    the same number as Algorithm 1's (Kingma & Ba's Section 2 suggests this reordering with eps
    unscaled, which differs slightly; here eps is scaled, so nothing differs). A gradient with
    NaN or inf raises ``checks.NonFiniteError`` naming its first such leaf; no step is taken.
    """
    lr = checks.positive("lr", lr)
    b1 = checks.in_interval("b1", b1, 0, 1, closed=(True, False))
    b2 = checks.in_interval("b2", b2, 0, 1, closed=(True, False))
    eps = checks.positive("eps", eps)
    if not isinstance(state, dict) or set(state) != {"m", "v", "t"}:
        raise TypeError(f"state: expected adam_init's dict with m, v and t, got {checks.show(state)}")
    checks.count("state['t']", state["t"], minimum=0)
    checks.tree("params", params), checks.tree("grads", grads)
    checks.finite_tree("grads", grads, f"the step is not applied (lr = {lr})", like=params)
    t = state["t"] + 1
    m = tree_map(lambda m, g: _moving_average(m, g, b1), state["m"], grads)
    v = tree_map(lambda v, g: _moving_average(v, g * g, b2), state["v"], grads)
    lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    eps_t = eps * math.sqrt(1 - b2 ** t)
    params = tree_map(lambda p, m, v: _descend(p, m, v, lr_t, eps_t), params, m, v)
    return params, {"m": m, "v": v, "t": t}


def _descend(p, m, v, lr_t, eps_t):
    """p - lr_t m / (sqrt(v) + eps_t), in one new array (asarray: 0-d parameters too)."""
    update = backend.xp.asarray(backend.xp.sqrt(v))
    update += eps_t
    backend.xp.divide(m, update, out=update)
    update *= -lr_t
    update += p
    return update


def ema_update(ema, params, decay=0.999):
    """Exponential moving average of parameters (NCSNv2 samples with decay 0.999):
    ema <- decay * ema + (1 - decay) * params. Start from a copy of the parameters.
    Both trees are checked finite (two host reads): a NaN in either would stay in the average."""
    decay = checks.in_interval("decay", decay, 0, 1)
    checks.finite_tree("ema", checks.tree("ema", ema), "the average is not updated")
    checks.finite_tree("params", checks.tree("params", params), "the average is not updated", like=ema)
    return tree_map(lambda e, p: _moving_average(e, p, decay), ema, params)
