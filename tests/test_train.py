"""The training loop: reproducible, it learns, and it refuses bad arguments by name."""
import autograd.numpy as anp
import numpy as np
import pytest

import minimalscore as ms
from minimalscore import train


def quadratic_loss(params, batch, rng):
    return anp.mean((batch - params["mu"]) ** 2)


def test_fit_is_reproducible_and_learns():
    x = ms.backend.default_rng(0).normal((512, 2)) + 3.0
    runs = [train.fit(quadratic_loss, {"mu": ms.backend.asarray([0.0, 0.0])}, x, 400, 64,
                      ms.backend.default_rng(1), lr=0.05, ema_decay=0.9, progress=False) for _ in range(2)]
    (params, info), (params2, _) = runs
    assert np.array_equal(params["mu"], params2["mu"])
    assert np.allclose(params["mu"], 3.0, atol=0.15)  # batch means of 64 points: se ~ 0.13/coord
    assert info["losses"][-1] < info["losses"][0] / 4
    assert np.allclose(info["ema"]["mu"], 3.0, atol=0.15)


def test_fit_stops_on_a_non_finite_loss_before_applying_it():
    x = ms.backend.asarray(np.ones((8, 1)))
    exploding = lambda p, batch, rng: anp.sum(p["w"] * batch) / 0.0 * 0.0  # NaN from the first step
    with np.errstate(divide="ignore", invalid="ignore"), pytest.raises(
            ms.checks.NonFiniteError, match=r"^step 0: the loss is nan.*gradient of params\['w'\].*lr=0.001"):
        train.fit(exploding, {"w": ms.backend.asarray([1.0])}, x, 5, 4, ms.backend.default_rng(0),
                  progress=False)


def test_ema_decay_zero_follows_the_parameters():
    x = ms.backend.default_rng(0).normal((64, 2))
    params, info = train.fit(quadratic_loss, {"mu": ms.backend.asarray([1.0, 1.0])}, x, 5, 16,
                             ms.backend.default_rng(1), ema_decay=0.0, progress=False)
    assert np.array_equal(info["ema"]["mu"], params["mu"])


GOOD = dict(loss_fn=quadratic_loss, n_steps=3, batch_size=4)


@pytest.mark.parametrize("change, error, message", [
    (dict(lr=-1), ValueError, "lr: expected a positive finite number, got -1"),
    (dict(lr=float("nan")), ValueError, "lr: expected a positive finite number, got nan"),
    (dict(n_steps=0), ValueError, "n_steps: expected a positive integer, got 0"),
    (dict(n_steps=2.5), TypeError, "n_steps: expected a positive integer, got 2.5"),
    (dict(n_steps=5.0), TypeError, "n_steps: expected a positive integer, got 5.0"),
    (dict(n_steps=None), TypeError, "n_steps: expected a positive integer, got None"),
    (dict(batch_size=0), ValueError, "batch_size: expected a positive integer, got 0"),
    (dict(batch_size="8"), TypeError, "batch_size: expected a positive integer, got '8'"),
    (dict(ema_decay=1.0), ValueError, r"ema_decay: expected a number in \[0.0, 1.0\), got 1.0"),
    (dict(ema_decay=2), ValueError, r"ema_decay: expected a number in \[0.0, 1.0\), got 2"),
    (dict(ema_decay=-0.1), ValueError, r"ema_decay: expected a number in \[0.0, 1.0\)"),
    (dict(loss_fn=None), TypeError, "loss_fn: expected a callable"),
    (dict(params={"mu": [0.0, 0.0]}), TypeError, r"params\['mu'\]\[0\]: expected a tree of floating-point"),
    (dict(params={"mu": np.array([np.nan, 0.0])}), ValueError, r"params\['mu'\]: expected finite values"),
    (dict(x=[[1.0, 2.0]]), TypeError, "x: expected a numpy array"),
    (dict(x=np.ones((0, 2))), ValueError, "x: expected at least one example"),
    (dict(rng=np.random.default_rng(0)), TypeError, "rng: expected minimalscore.backend.default_rng"),
    (dict(checkpoint=3), TypeError, "checkpoint: expected a file path or None, got 3"),
    (dict(resume=True), ValueError, "resume: True needs a checkpoint path"),
    (dict(resume="yes", checkpoint="c.npz"), TypeError, "resume: expected True or False"),
    (dict(callback=1), TypeError, "callback: expected a callable"),
    (dict(callback_every=-1), ValueError, "callback_every: expected an integer >= 0, got -1"),
    (dict(checkpoint_every=0), ValueError, "checkpoint_every: expected a positive integer, got 0"),
    (dict(settings=[1]), TypeError, "settings: expected a dict"),
    (dict(loss_fn=lambda p, b, r: (b - p["mu"]) ** 2), ValueError, "loss_fn: expected a scalar loss"),
])
def test_fit_refuses_bad_arguments_by_name(change, error, message):
    arguments = dict(GOOD, params={"mu": ms.backend.asarray([0.0, 0.0])}, rng=ms.backend.default_rng(0),
                     x=ms.backend.asarray(np.ones((8, 2))), progress=False)
    arguments.update(change)
    with pytest.raises(error, match=f"^{message}"):
        train.fit(**arguments)
