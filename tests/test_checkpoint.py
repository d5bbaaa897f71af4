"""Checkpoints: resume continues bit-identically; a kill during the write leaves the previous
checkpoint readable; a non-finite loss stops the run and keeps the last good checkpoint."""
import os
import pickle
import signal
import subprocess
import sys
import textwrap

import autograd.numpy as anp
import numpy as np
import pytest

import minimalscore as ms
from minimalscore import models, objectives, train


def ncsn_mlp_loss(params, batch, rng):
    """Multi-scale DSM: draws sigma indices and noise from rng, so the RNG state matters."""
    sigmas = ms.backend.asarray([1.0, 0.3, 0.1])
    return objectives.multiscale_dsm(lambda y, s: models.noise_conditional_mlp(params, y, s), batch, sigmas, rng)


def run(tmp_path, n_steps, resume=False, name="ckpt.pkl"):
    x = ms.data.swiss_roll(200)
    params = models.noise_conditional_mlp_init(ms.backend.default_rng(0), 2, hidden=(16, 16))
    return train.fit(ncsn_mlp_loss, params, x, n_steps, 32, ms.backend.default_rng(1), lr=1e-2,
                     ema_decay=0.999, progress=False, checkpoint=str(tmp_path / name),
                     checkpoint_every=4, resume=resume)


def leaves(tree):
    return [ms.backend.asnumpy(a) for a in ms.nn.tree_leaves(tree)]


def test_resume_is_bit_identical(tmp_path):
    # 7 batches of 32 from 200 points: the resumed run starts mid-epoch, so the batch cursor
    # must travel in the checkpoint too
    straight, info = run(tmp_path, 14, name="straight.pkl")
    run(tmp_path, 7, name="split.pkl")  # the interrupted run: stops after step 7
    resumed, info2 = run(tmp_path, 14, resume=True, name="split.pkl")
    assert info2["start_step"] == 7 and info2["losses"] == info["losses"]
    for a, b in zip(leaves([straight, info["ema"], info["opt_state"]]),
                    leaves([resumed, info2["ema"], info2["opt_state"]])):
        assert np.array_equal(a, b)
    assert info2["opt_state"]["t"] == 14 and isinstance(info2["opt_state"]["t"], int)


def test_checkpoint_round_trip_keeps_dtypes_and_plain_values(tmp_path):
    state = {"w": ms.backend.asarray(np.arange(3.0), dtype=np.float64), "t": 5, "cursor": None,
             "nested": [ms.backend.asarray(np.ones(2, np.float32)), "text"]}
    loaded = train.load_checkpoint(train.save_checkpoint(str(tmp_path / "a.pkl"), state))
    assert loaded["w"].dtype == np.float64 and np.array_equal(loaded["w"], state["w"])
    assert loaded["t"] == 5 and loaded["cursor"] is None and loaded["nested"][1] == "text"
    assert os.listdir(tmp_path) == ["a.pkl"]  # no temporary file left behind


def test_failure_during_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "c.pkl")
    train.save_checkpoint(path, {"step": 1})

    def half_then_fail(obj, f, protocol=None):
        f.write(pickle.dumps(obj)[:10])
        raise KeyboardInterrupt("interrupted mid-write")

    monkeypatch.setattr(train.pickle, "dump", half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        train.save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert train.load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["c.pkl"]


def test_kill_during_write_keeps_the_previous_checkpoint(tmp_path):
    # a real SIGKILL half-way through writing: no cleanup code runs, a temporary file may stay,
    # but the checkpoint's name still points at the previous, complete file
    path = tmp_path / "k.pkl"
    child = textwrap.dedent(f"""
        import os, pickle, signal
        from minimalscore import train
        train.save_checkpoint({str(path)!r}, {{"step": 1}})
        def half_then_die(obj, f, protocol=None):
            f.write(pickle.dumps(obj)[:10]); f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        train.pickle.dump = half_then_die
        train.save_checkpoint({str(path)!r}, {{"step": 2}})
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    assert train.load_checkpoint(str(path))["step"] == 1
    assert any(name.endswith(".tmp") for name in os.listdir(tmp_path))  # the torn write, beside it


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    # Adam moves w by about lr = 0.1 per step towards larger w; the loss turns NaN once w > 0.45,
    # i.e. at step 5 (w ~ 0.5). Checkpoints every 2 steps: the last good one is step 4.
    x = ms.backend.asarray(np.ones((8, 1)))
    loss = lambda p, batch, rng: anp.where(p["w"][0] > 0.45, anp.nan, -p["w"][0] * anp.mean(batch))
    path = str(tmp_path / "nan.pkl")
    with pytest.raises(train.NonFiniteLossError, match=r"step 5.*last good checkpoint, at step 4"):
        train.fit(loss, {"w": ms.backend.asarray([0.0])}, x, 20, 4, ms.backend.default_rng(0), lr=0.1,
                  progress=False, checkpoint=path, checkpoint_every=2)
    saved = train.load_checkpoint(path)
    assert saved["step"] == 4 and 0.35 < float(saved["params"]["w"][0]) < 0.45
    assert np.isfinite(saved["losses"]).all()


def test_checkpoint_from_another_backend_is_refused(tmp_path):
    path = str(tmp_path / "b.pkl")
    with open(path, "wb") as f:
        pickle.dump({"format": train.CHECKPOINT_FORMAT, "backend": "cupy"}, f)
    with pytest.raises(ValueError, match="written on the cupy backend"):
        train.load_checkpoint(path)
