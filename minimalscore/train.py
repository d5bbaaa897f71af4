"""The training loop the examples share: mini-batches, Adam, a progress bar showing the loss,
an optional EMA of the parameters, a guard that stops before a non-finite step, and checkpoints.

    loss_fn(params, batch, rng) -> scalar         (e.g. objectives.dsm(lambda x: ..., batch, s, rng))
    params, info = fit(loss_fn, params, x, n_steps=2000, batch_size=128, rng=rng)

A checkpoint (``minimalscore.checkpoint``) holds everything the next step depends on:
parameters, Adam's state, the EMA, the RNG state, the step, the batch cursor and the loss
history, with the settings a resumed run must share. ``fit(..., resume=True)`` continues from it
bit-identically on the same backend, and refuses to continue with another model, learning rate,
batch size, EMA decay, random generator or ``settings``.
"""
import math
import os

from autograd import value_and_grad
from tqdm.auto import tqdm

from . import backend, checkpoint as ckpt, checks, data, optim
from .tree import tree_paths


def fit(loss_fn, params, x, n_steps, batch_size, rng, lr=1e-3, ema_decay=None,
        progress=True, desc="training", log_every=50, checkpoint=None, checkpoint_every=500,
        resume=False, callback=None, callback_every=0, settings=None):
    """Train ``params`` by Adam on mini-batches of ``x``; returns (params, info).

    info holds ``losses`` (one float per step), ``ema`` (the EMA parameters, when
    ``ema_decay`` is set), ``opt_state`` and ``start_step``. The EMA's decay at step t is
    min(ema_decay, (1 + t) / (10 + t)) (TensorFlow's ExponentialMovingAverage with num_updates):
    a short run's average forgets the random initialisation (0.999^1000 still weighs it 37%),
    and from t ~ 9000 on it is the plain ema_decay.

    A step whose loss or any gradient is NaN or inf is not applied: ``checks.NonFiniteError``
    names the step, the first non-finite gradient and the learning rate, and no checkpoint is
    written after it, so the last one on disk is the last finite state.

    ``checkpoint``: a file path; the state is saved there every ``checkpoint_every`` steps and at
    the end. ``resume=True`` with an existing checkpoint continues from it (``params`` and
    ``rng``'s state are replaced by the saved ones) up to ``n_steps`` in all; the model's shapes,
    ``rng`` (its state before the first step: the seed), ``lr``, ``batch_size``, ``ema_decay``,
    the backend and ``settings`` (a dict of JSON values the caller adds, e.g. a seed) must be the
    ones it was written with, and ``n_steps`` at least its step. ``callback(step, params, ema)``
    runs every ``callback_every`` steps (e.g. to draw sample grids while training).
    """
    n_steps, batch_size = checks.count("n_steps", n_steps), checks.count("batch_size", batch_size)
    _check_arguments(loss_fn, params, x, rng, lr, ema_decay, log_every, checkpoint,
                     checkpoint_every, resume, callback, callback_every, settings)
    step_fn = value_and_grad(_scalar(loss_fn))
    must_match = dict(settings or {}, backend=backend.name, lr=float(lr), batch_size=batch_size,
                      ema_decay=ema_decay, model=_shapes(params),
                      rng_at_start=ckpt.fingerprint(rng.get_state())[:16])
    resuming = bool(resume and os.path.exists(checkpoint))
    if resuming:
        saved, _ = ckpt.load(checkpoint, expect=must_match)
        if n_steps < saved["step"]:
            raise ckpt.CheckpointError(f"{checkpoint}: n_steps: {n_steps} asked for, but the checkpoint is "
                                       f"at step {saved['step']} already; ask for n_steps >= {saved['step']}")
        params, opt_state, ema = saved["params"], saved["opt_state"], saved["ema"]
        start, cursor, losses = saved["step"], saved["cursor"], list(saved["losses"])
        rng.set_state(saved["rng_state"])
    else:
        opt_state, ema = optim.adam_init(params), (params if ema_decay is not None else None)
        start, cursor, losses = 0, None, []

    saved_step = start if resuming else None
    bar = tqdm(range(start, n_steps), desc=desc, disable=not progress, leave=False,
               initial=start, total=n_steps)
    for step in bar:
        batch, cursor = data.next_batch(x, batch_size, rng, cursor)
        loss, grads = step_fn(params, batch, rng)
        loss = float(loss)
        try:
            if not math.isfinite(loss):
                raise checks.NonFiniteError("loss")
            params, opt_state = optim.adam_update(params, grads, opt_state, lr=lr)  # checks grads
        except checks.NonFiniteError:
            raise checks.NonFiniteError(_stop_message(step, loss, grads, lr, checkpoint, saved_step)) from None
        if ema is not None:
            ema = optim.ema_update(ema, params, min(ema_decay, (1 + step) / (10 + step)))
        losses.append(loss)
        if step % log_every == 0 or step == n_steps - 1:
            bar.set_postfix(loss=f"{loss:.4f}")
        if callback is not None and callback_every and (step + 1) % callback_every == 0:
            callback(step + 1, params, ema)
        if checkpoint and ((step + 1) % checkpoint_every == 0 or step == n_steps - 1):
            state = {"params": params, "opt_state": opt_state, "ema": ema, "rng_state": rng.get_state(),
                     "step": step + 1, "cursor": cursor, "losses": losses}
            bad = next(filter(None, (_first_non_finite(part, name) for name, part in
                                     (("params", params), ("opt_state", opt_state), ("ema", ema)))), None)
            if bad is not None:  # finite gradients can still overflow Adam's moments (g^2 > 3e38)
                raise checks.NonFiniteError(f"step {step}: {bad} went NaN or inf with finite gradients; "
                                            f"not written to {checkpoint} (lr={lr})")
            ckpt.save(checkpoint, state, must_match)
            saved_step = step + 1
    return params, {"losses": losses, "ema": ema, "opt_state": opt_state, "start_step": start}


def _check_arguments(loss_fn, params, x, rng, lr, ema_decay, log_every, checkpoint, checkpoint_every,
                     resume, callback, callback_every, settings):
    if not callable(loss_fn):
        raise TypeError("loss_fn: expected a callable loss_fn(params, batch, rng), got "
                        f"{checks.show(loss_fn)}")
    for where, leaf in tree_paths(params, "params"):
        if not backend.is_array(leaf) or leaf.dtype.kind != "f":
            raise TypeError(f"{where}: expected a tree of floating-point {backend.name} arrays, "
                            f"got {checks.show(leaf)}")
    bad = _first_non_finite(params, "params")
    if bad is not None:
        raise ValueError(f"{bad}: expected finite values, got NaN or inf")
    checks.batch("x", x)
    checks.rng("rng", rng)
    checks.positive("lr", lr)
    if ema_decay is not None:
        checks.in_interval("ema_decay", ema_decay, 0.0, 1.0, closed=(True, False))
    checks.count("log_every", log_every)
    checks.count("checkpoint_every", checkpoint_every)
    checks.count("callback_every", callback_every, minimum=0)
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"checkpoint: expected a file path or None, got {checks.show(checkpoint)}")
    checks.flag("resume", resume)
    if resume and checkpoint is None:
        raise ValueError("resume: True needs a checkpoint path to resume from, got checkpoint=None")
    if callback is not None and not callable(callback):
        raise TypeError("callback: expected a callable callback(step, params, ema), got "
                        f"{checks.show(callback)}")
    if settings is not None and not isinstance(settings, dict):
        raise TypeError(f"settings: expected a dict of JSON values, got {checks.show(settings)}")


def _scalar(loss_fn):
    """``loss_fn``, refusing a loss that is not a scalar (shape ()) by name."""
    def checked(params, batch, rng):
        loss = loss_fn(params, batch, rng)
        if getattr(loss, "ndim", 0) != 0:
            raise ValueError(f"loss_fn: expected a scalar loss, got shape {tuple(loss.shape)}")
        return loss
    return checked


def _shapes(params):
    """{path: "float32 (16, 16)"} for the leaves of a parameter tree: the model a checkpoint fits."""
    return {where: f"{leaf.dtype} {tuple(leaf.shape)}" for where, leaf in tree_paths(params, "params")}


def _first_non_finite(tree, name):
    """The path of the first array of the tree ``name`` holding NaN or inf, or None."""
    return next((where for where, leaf in tree_paths(tree, name) if backend.is_array(leaf)
                 and not checks.is_finite(leaf)), None)


def _stop_message(step, loss, grads, lr, checkpoint, saved_step):
    bad = _first_non_finite(grads, "params")
    what = f"the gradient of {bad} is NaN or inf" if bad else "every gradient is finite"
    kept = (f"the last checkpoint, at step {saved_step}, is kept in {checkpoint}" if saved_step is not None
            else "no checkpoint was written")
    return (f"step {step}: the loss is {loss} and {what}; the step was not applied and {kept}. "
            f"Lower the learning rate (lr={lr}) or check the data, the noise levels and the loss")
