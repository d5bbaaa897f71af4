"""The training loop the examples share: mini-batches, Adam, a progress bar showing the loss,
an optional EMA of the parameters, a guard that stops on a non-finite loss, and checkpoints.

    loss_fn(params, batch, rng) -> scalar         (e.g. objectives.dsm(lambda x: ..., batch, s, rng))
    params, history = fit(loss_fn, params, x, n_steps=2000, batch_size=128, rng=rng)

A checkpoint holds everything the next step depends on: parameters, Adam's state, the EMA,
the RNG state, the step, the batch cursor and the loss history. It is written atomically
(temporary file, fsync, ``os.replace``), so a run killed mid-write leaves the previous
checkpoint whole, and ``fit(..., resume=True)`` continues bit-identically on the same backend.
"""
import math
import os
import pickle
import tempfile

from autograd import value_and_grad
from tqdm.auto import tqdm

from . import backend, data, optim
from .nn import tree_map

CHECKPOINT_FORMAT = 1


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the message says at which step."""


def _to_host(tree):
    return tree_map(lambda a: backend.asnumpy(a) if backend.is_array(a) else a, tree)


def _to_device(tree):
    return tree_map(lambda a: backend.asarray(a, dtype=a.dtype) if hasattr(a, "shape") else a, tree)


def save_checkpoint(path, state):
    """Pickle ``state`` (a tree of arrays and plain values) to ``path`` atomically: write a
    temporary file beside it, flush it to disk, then rename it over ``path`` (``os.replace`` is
    atomic on POSIX and Windows). Readers see the old file or the new one, never half of one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(dict(_to_host(state), format=CHECKPOINT_FORMAT, backend=backend.name), f,
                        protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load_checkpoint(path):
    """The state saved by :func:`save_checkpoint`, its arrays back on the active backend."""
    with open(path, "rb") as f:
        state = pickle.load(f)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a minimalscore checkpoint (format {state.get('format')!r}, "
                         f"expected {CHECKPOINT_FORMAT})")
    if state["backend"] != backend.name:
        raise ValueError(f"{path}: written on the {state['backend']} backend, now on {backend.name}; "
                         "its RNG state only resumes on the backend that wrote it")
    return _to_device(state)


def fit(loss_fn, params, x, n_steps, batch_size, rng, lr=1e-3, ema_decay=None,
        progress=True, desc="training", log_every=50, checkpoint=None, checkpoint_every=500,
        resume=False, callback=None, callback_every=0):
    """Train ``params`` by Adam on mini-batches of ``x``; returns (params, info).

    info holds ``losses`` (one float per step), ``ema`` (the EMA parameters, when
    ``ema_decay`` is set), ``opt_state`` and ``start_step``. The EMA's decay at step t is
    min(ema_decay, (1 + t) / (10 + t)) (TensorFlow's ExponentialMovingAverage with num_updates):
    a short run's average forgets the random initialisation (0.999^1000 still weighs it 37%),
    and from t ~ 9000 on it is the plain ema_decay. A non-finite loss raises
    NonFiniteLossError naming the step and value, before the bad gradient is applied.

    ``checkpoint``: a file path; the state is saved there every ``checkpoint_every`` steps and at
    the end (never after a non-finite loss, so the last good one stays). ``resume=True`` with an
    existing checkpoint continues from it (``params`` and ``rng``'s state are replaced by the
    saved ones) up to ``n_steps`` in all. ``callback(step, params, ema)`` runs every
    ``callback_every`` steps (e.g. to draw sample grids while training).
    """
    if n_steps < 1:
        raise ValueError(f"n_steps: must be >= 1, got {n_steps}")
    step_fn = value_and_grad(loss_fn)
    resuming = bool(resume and checkpoint and os.path.exists(checkpoint))
    if resuming:
        saved = load_checkpoint(checkpoint)
        params, opt_state, ema = saved["params"], saved["opt_state"], saved["ema"]
        start, cursor, losses = saved["step"], saved["cursor"], list(saved["losses"])
        rng.set_state(saved["rng_state"])
    else:
        opt_state, ema = optim.adam_init(params), (params if ema_decay else None)
        start, cursor, losses = 0, None, []

    def state(step):
        return {"params": params, "opt_state": opt_state, "ema": ema, "rng_state": rng.get_state(),
                "step": step, "cursor": cursor, "losses": losses}

    saved_step = start if resuming else None
    bar = tqdm(range(start, n_steps), desc=desc, disable=not progress, leave=False,
               initial=start, total=n_steps)
    for step in bar:
        batch, cursor = data.next_batch(x, batch_size, rng, cursor)
        loss, grads = step_fn(params, batch, rng)
        loss = float(loss)
        if not math.isfinite(loss):
            kept = (f"; the last good checkpoint, at step {saved_step}, is kept in {checkpoint}"
                    if saved_step is not None else "")
            raise NonFiniteLossError(f"loss is {loss} at step {step}: lower the learning rate "
                                     f"(lr={lr}) or check the data and noise levels{kept}")
        params, opt_state = optim.adam_update(params, grads, opt_state, lr=lr)
        if ema is not None:
            ema = optim.ema_update(ema, params, min(ema_decay, (1 + step) / (10 + step)))
        losses.append(loss)
        if step % log_every == 0 or step == n_steps - 1:
            bar.set_postfix(loss=f"{loss:.4f}")
        if callback is not None and callback_every and (step + 1) % callback_every == 0:
            callback(step + 1, params, ema)
        if checkpoint and ((step + 1) % checkpoint_every == 0 or step == n_steps - 1):
            save_checkpoint(checkpoint, state(step + 1))
            saved_step = step + 1
    return params, {"losses": losses, "ema": ema, "opt_state": opt_state, "start_step": start}
