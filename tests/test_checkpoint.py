"""Checkpoints: resume continues bit-identically; every corrupt, truncated or foreign file is
refused with its path (never loaded as different numbers); a kill during a write leaves the
previous checkpoint whole and the next save clears the torn temporary file; a resume with other
settings is refused; nothing non-finite is ever written."""
import hashlib
import io
import json
import os
import pickle
import random
import re
import signal
import time
import zipfile

import autograd.numpy as anp
import numpy as np
import pytest

import minimalscore as ms
from minimalscore import checkpoint as ckpt
from minimalscore import models, objectives, train
from minimalscore.tree import tree_leaves

SIGMAS = (1.0, 0.3, 0.1)


def ncsn_mlp_loss(params, batch, rng):
    """Multi-scale DSM: draws sigma indices and noise from rng, so the RNG state matters."""
    sigmas = ms.backend.asarray(SIGMAS)
    score = lambda y, s: models.noise_conditional_mlp(params, y, s)
    return objectives.multiscale_dsm(score, batch, sigmas, rng)


def run(tmp_path, n_steps, resume=False, name="ckpt.npz", hidden=(16, 16), seed=1, lr=1e-2, settings=None):
    x = ms.data.swiss_roll(200)
    params = models.noise_conditional_mlp_init(ms.backend.default_rng(0), 2, hidden=hidden)
    return train.fit(ncsn_mlp_loss, params, x, n_steps, 32, ms.backend.default_rng(seed), lr=lr,
                     ema_decay=0.999, progress=False, checkpoint=str(tmp_path / name),
                     checkpoint_every=4, resume=resume, settings=settings)


def leaves(tree):
    return [ms.backend.asnumpy(a) for a in tree_leaves(tree) if a is not None]


def test_resume_is_bit_identical(tmp_path):
    # 7 batches of 32 from 200 points: the resumed run starts mid-epoch, so the batch cursor
    # must travel in the checkpoint too
    straight, info = run(tmp_path, 14, name="straight.npz")
    run(tmp_path, 7, name="split.npz")  # the interrupted run: stops after step 7
    resumed, info2 = run(tmp_path, 14, resume=True, name="split.npz")
    assert info2["start_step"] == 7 and info2["losses"] == info["losses"]
    for a, b in zip(leaves([straight, info["ema"], info["opt_state"]]),
                    leaves([resumed, info2["ema"], info2["opt_state"]])):
        assert np.array_equal(a, b)
    assert info2["opt_state"]["t"] == 14 and isinstance(info2["opt_state"]["t"], int)


def test_round_trip_keeps_structure_dtypes_and_plain_values(tmp_path):
    state = {"w": ms.backend.asarray(np.arange(3.0), dtype=np.float64), "t": 5, "cursor": None,
             "nested": [ms.backend.asarray(np.ones(2, np.float32)), "text", (1, 2.5, True)],
             "order": ms.backend.asarray(np.arange(4)), "rng": ms.backend.default_rng(3).get_state()}
    path = ckpt.save(str(tmp_path / "a.npz"), state, {"seed": 3})
    loaded, settings = ckpt.load(path)
    assert loaded["w"].dtype == np.float64 and np.array_equal(loaded["w"], state["w"])
    assert loaded["nested"][0].dtype == np.float32 and loaded["order"].dtype == state["order"].dtype
    assert loaded["t"] == 5 and loaded["cursor"] is None and loaded["nested"][1:] == ["text", (1, 2.5, True)]
    assert loaded["rng"] == state["rng"] and settings == {"seed": 3}
    assert os.listdir(tmp_path) == ["a.npz"]  # no temporary file left behind


def test_the_file_is_an_npz_with_a_json_header(tmp_path):
    """Readable with NumPy alone (no pickle) and any zip tool: the header says what is where."""
    run(tmp_path, 4)
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as npz:
        header = json.loads(npz["header.json"])
        assert header["format"] == ckpt.FORMAT and header["version"] == ckpt.VERSION
        assert header["state"]["step"] == 4 and header["settings"]["lr"] == 1e-2
        first = header["arrays"][0]
        assert first["path"] == "state['params']['layers'][0]['W']" and first["shape"] == [3, 16]
        assert npz[first["name"]].dtype.str == first["dtype"]
        assert set(header["state"]["rng_state"]) >= {"bit_generator", "state"}  # NumPy's: plain JSON


def _fit_checkpoint(tmp_path):
    run(tmp_path, 4)
    return (tmp_path / "ckpt.npz").read_bytes()


def test_every_flipped_byte_and_truncation_is_refused_with_the_path(tmp_path):
    """100 copies with 1-5 random bytes flipped and 100 truncations: each refused by name. The
    digest covers every byte but the digest itself, and a flip inside the digest breaks it."""
    good = _fit_checkpoint(tmp_path)
    reference = leaves(ckpt.load(tmp_path / "ckpt.npz")[0])
    rng = random.Random(0)
    path = str(tmp_path / "bad.npz")
    for case in range(200):
        data = bytearray(good)
        if case < 100:
            for position in rng.sample(range(len(data)), rng.randint(1, 5)):
                data[position] ^= rng.randint(1, 255)
        else:
            data = data[:rng.randrange(len(data))]
        with open(path, "wb") as f:
            f.write(data)
        with pytest.raises(ckpt.CheckpointError, match=f"^{path}: (corrupt|not a minimalscore)"):
            ckpt.load(path)
    assert all(np.array_equal(a, b) for a, b in zip(leaves(ckpt.load(tmp_path / "ckpt.npz")[0]), reference))


def reseal(data):
    """Bytes of an archive, with the seal a checkpoint ends with: a hand-made file."""
    archive = io.BytesIO(data)
    with zipfile.ZipFile(archive, "a") as z:
        z.comment = ckpt.SEAL + b"0" * 64
    body = archive.getvalue()[:-64]
    return body + hashlib.sha256(body).hexdigest().encode()


def seal(body):
    """``body`` followed by a valid seal: a file that passes the digest and fails later."""
    body += ckpt.SEAL
    return body + hashlib.sha256(body).hexdigest().encode()


def zip_of(members):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)
    return archive.getvalue()


def npy(array):
    out = io.BytesIO()
    np.lib.format.write_array(out, array, allow_pickle=True)
    return out.getvalue()


UNPICKLED = []


def mark_unpickled():
    UNPICKLED.append(True)


class Payload:
    """Unpickling it runs mark_unpickled: what a malicious pickle inside a file could do."""
    def __reduce__(self):
        return mark_unpickled, ()


def test_empty_foreign_and_hand_made_files_are_refused_with_the_path(tmp_path):
    header = {"format": ckpt.FORMAT, "version": ckpt.VERSION, "backend": "numpy", "settings": {},
              "state": {"w": {"__array__": "a0"}},
              "arrays": [{"name": "a0", "path": "state['w']", "shape": [2], "dtype": "<f4"}]}
    with_header = lambda h, a0: reseal(zip_of({"header.json": json.dumps(h), "a0.npy": npy(a0)}))
    two = np.ones(2, np.float32)
    cases = {
        "empty": (b"", "not a minimalscore checkpoint"),
        "text": (b"step,loss\n1,0.5\n" * 10, "not a minimalscore checkpoint"),
        "pickle": (pickle.dumps({"step": 1}), "not a minimalscore checkpoint"),
        "sealed pickle": (seal(pickle.dumps({"step": 1})), "malformed checkpoint.*pickled Python objects"),
        "sealed npy": (seal(npy(np.ones(3))), r"not a minimalscore checkpoint \(a single .npy array"),
        "zip without header": (reseal(zip_of({"a0.npy": npy(two)})), "without header.json"),
        "another format": (with_header(dict(header, format="other"), two), "format 'other'"),
        "a later version": (with_header(dict(header, version=2), two), "format version 2"),
        "wrong shape": (with_header(header, np.ones(3, np.float32)),
                        r"state\['w'\]: the header says <f4 \(2,\)"),
        "pickled object array": (with_header(dict(header, arrays=[dict(header["arrays"][0], dtype="|O")]),
                                             np.array([Payload(), None], dtype=object)),
                                 "malformed.*pickled Python objects"),
    }
    for name, (data, message) in cases.items():
        path = str(tmp_path / "x.npz")
        with open(path, "wb") as f:
            f.write(data)
        with pytest.raises(ckpt.CheckpointError, match=f"^{re.escape(path)}: .*{message}"):
            ckpt.load(path)
    assert UNPICKLED == []  # nothing in any of these files ran
    for path in (str(tmp_path / "missing.npz"), str(tmp_path)):
        with pytest.raises(ckpt.CheckpointError, match=f"^{path}: cannot read"):
            ckpt.load(path)
    ok = tmp_path / "ok.npz"
    ok.write_bytes(with_header(header, two))
    assert np.array_equal(ckpt.load(ok)[0]["w"], [1.0, 1.0])  # the hand-made file itself is fine


def test_failure_during_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "c.npz")
    ckpt.save(path, {"step": 1})

    def interrupted(fd):
        raise KeyboardInterrupt("interrupted before the data reached the disk")

    monkeypatch.setattr(ckpt.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save(path, {"step": 2})
    monkeypatch.undo()
    assert ckpt.load(path)[0]["step"] == 1
    assert os.listdir(tmp_path) == ["c.npz"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the kills need os.fork")
def test_sigkill_during_writes_keeps_the_previous_checkpoint_and_the_next_save_cleans_up(tmp_path):
    """20 children save 256 kB checkpoints in a loop and are SIGKILLed at random times: the name
    always holds a whole checkpoint (each one's array equals its step), a torn temporary file may
    stay beside it (no cleanup runs on SIGKILL), and the next save removes it."""
    path = str(tmp_path / "k.npz")
    state = lambda step: {"w": np.full(64_000, float(step), np.float32), "step": step}
    ckpt.save(path, state(0))
    timing, torn, steps = random.Random(0), 0, set()
    for kill in range(20):
        pid = os.fork()
        if pid == 0:  # the child: writes until killed (os._exit: never back into pytest)
            try:
                step = 1000 * (kill + 1)
                while True:
                    ckpt.save(path, state(step))
                    step += 1
            finally:
                os._exit(1)
        time.sleep(timing.uniform(0.02, 0.1))  # a write takes ~20 ms, mostly fsync
        os.kill(pid, signal.SIGKILL)
        assert os.waitpid(pid, 0)[1] == signal.SIGKILL
        torn += any(name.endswith(".tmp") for name in os.listdir(tmp_path))
        loaded, _ = ckpt.load(path)
        assert np.all(loaded["w"] == loaded["step"])
        steps.add(loaded["step"])
    assert torn >= 5 and len(steps) >= 5  # kills did land mid-write, and after whole writes
    ckpt.save(path, state(-1))
    assert os.listdir(tmp_path) == ["k.npz"]


def nan_at_half(kind):
    """w grows by about lr = 0.1 a step (Adam's first steps move each parameter by ~lr, the
    gradient being near -1 throughout); once w > 0.45, at step 5, either the loss turns NaN, or
    only its gradient does: the branch where() does not select is sqrt(0.45 - w) = NaN, and its
    gradient, 0 * NaN, poisons the sum while the loss stays finite."""
    def loss(p, batch, rng):
        w = p["w"][0]
        if kind == "loss":
            return anp.where(w > 0.45, anp.nan, -w * anp.mean(batch))
        return -w * anp.mean(batch) + 1e-3 * anp.where(w > 0.45, 0.0, anp.sqrt(0.45 - w))
    return loss


@pytest.mark.parametrize("kind", ["loss", "gradient"])
def test_non_finite_step_is_not_applied_and_the_kept_checkpoint_is_finite(tmp_path, kind):
    # checkpoints every 2 steps: step 4 is the last one written; step 5 would have written 6
    x = ms.backend.asarray(np.ones((8, 1)))
    path = str(tmp_path / "nan.npz")
    what = (r"nan and every gradient is finite" if kind == "loss"
            else r"-0\.5\d* and the gradient of params\['w'\]")
    with np.errstate(invalid="ignore"), pytest.raises(ms.checks.NonFiniteError, match=(
            rf"^step 5: the loss is {what}.*not applied.*at step 4, is kept in {path}.*lr=0\.1")):
        train.fit(nan_at_half(kind), {"w": ms.backend.asarray([0.0])}, x, 20, 4, ms.backend.default_rng(0),
                  lr=0.1, ema_decay=0.9, progress=False, checkpoint=path, checkpoint_every=2)
    saved, _ = ckpt.load(path)
    assert saved["step"] == 4 and 0.35 < float(saved["params"]["w"][0]) < 0.45
    assert all(np.isfinite(a).all() for a in leaves([saved["params"], saved["opt_state"], saved["ema"]]))
    assert np.isfinite(saved["losses"]).all() and len(saved["losses"]) == 4


def test_adam_overflow_is_not_written(tmp_path):
    # a finite gradient of 1e20 squares to inf in float32 (max 3.4e38): Adam's v overflows at
    # step 0 (its update is 0, the parameter stays finite), and at step 1 v's moving average
    # computes inf - inf = NaN, and so does the parameter: the checkpoint after it is not written
    x = ms.backend.asarray(np.ones((8, 1)))
    path = str(tmp_path / "overflow.npz")
    loss = lambda p, batch, rng: 1e20 * p["w"][0] * anp.mean(batch)
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(
            ms.checks.NonFiniteError, match=r"^step 1: params\['w'\] went NaN or inf with finite gradients"):
        train.fit(loss, {"w": ms.backend.asarray([0.0])}, x, 5, 4, ms.backend.default_rng(0),
                  progress=False, checkpoint=path, checkpoint_every=2)
    assert not os.path.exists(path)


@pytest.mark.parametrize("change, field", [
    (dict(hidden=(8, 16)), r"model\[\"params\['layers'\]\[0\]\['W'\]\"\]: 'float32 \(3, 16\)' in the "
                           r"checkpoint, 'float32 \(3, 8\)' now"),
    (dict(seed=2), "rng_at_start: '[0-9a-f]{16}' in the checkpoint, '[0-9a-f]{16}' now"),
    (dict(lr=2e-2), "lr: 0.01 in the checkpoint, 0.02 now"),
    (dict(settings={"seed": 5}), r"seed: '\(not recorded\)' in the checkpoint, 5 now"),
])
def test_resume_with_other_settings_is_refused(tmp_path, change, field):
    run(tmp_path, 8)
    path = str(tmp_path / "ckpt.npz")
    with pytest.raises(ckpt.CheckpointError, match=f"^{path}: {field}"):
        run(tmp_path, 12, resume=True, **change)
    with pytest.raises(ckpt.CheckpointError, match=f"^{path}: n_steps: 6 asked for, but the checkpoint is at "
                                                   "step 8"):
        run(tmp_path, 6, resume=True)
    assert ckpt.load(path)[0]["step"] == 8  # refused runs write nothing


def test_settings_travel_with_the_checkpoint(tmp_path):
    run(tmp_path, 4, settings={"seed": 0, "channels": 16})
    with pytest.raises(ckpt.CheckpointError, match="seed: 0 in the checkpoint, 1 now"):
        run(tmp_path, 8, resume=True, settings={"seed": 1, "channels": 16})
    _, info = run(tmp_path, 8, resume=True, settings={"seed": 0, "channels": 16})
    assert info["start_step"] == 4
