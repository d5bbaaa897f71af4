"""The training loop the examples share: mini-batches, Adam, a progress bar showing the loss,
an optional EMA of the parameters, and a guard that stops on a non-finite loss.

    loss_fn(params, batch, rng) -> scalar         (e.g. objectives.dsm(lambda x: ..., batch, s, rng))
    params, history = fit(loss_fn, params, x, n_steps=2000, batch_size=128, rng=rng)
"""
import math

from autograd import value_and_grad
from tqdm.auto import tqdm

from . import data, optim


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the message says at which step."""


def fit(loss_fn, params, x, n_steps, batch_size, rng, lr=1e-3, ema_decay=None,
        progress=True, desc="training", log_every=50):
    """Train ``params`` by Adam on mini-batches of ``x``; returns (params, info).

    info holds ``losses`` (one float per step), ``ema`` (the EMA parameters, when
    ``ema_decay`` is set) and ``opt_state``. A non-finite loss raises NonFiniteLossError
    naming the step and value, before the bad gradient is applied.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps: must be >= 1, got {n_steps}")
    step_fn = value_and_grad(loss_fn)
    opt_state = optim.adam_init(params)
    ema = params if ema_decay else None
    losses = []
    batch_iter = data.batches(x, batch_size, rng)
    bar = tqdm(range(n_steps), desc=desc, disable=not progress, leave=False)
    for step in bar:
        loss, grads = step_fn(params, next(batch_iter), rng)
        loss = float(loss)
        if not math.isfinite(loss):
            raise NonFiniteLossError(f"loss is {loss} at step {step}: lower the learning rate "
                                     f"(lr={lr}) or check the data and noise levels")
        params, opt_state = optim.adam_update(params, grads, opt_state, lr=lr)
        if ema is not None:
            ema = optim.ema_update(ema, params, ema_decay)
        losses.append(loss)
        if step % log_every == 0 or step == n_steps - 1:
            bar.set_postfix(loss=f"{loss:.4f}")
    return params, {"losses": losses, "ema": ema, "opt_state": opt_state}
