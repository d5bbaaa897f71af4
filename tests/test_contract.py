"""The argument contract of the public API, walked by introspection.

Every public callable of every module of minimalscore (functions, classes and the public
methods of their instances, names not starting with ``_``, defined in that module) is called
with good arguments from a table keyed by parameter name (``NAMES``, with per-function
overrides in ``TARGETS``), then once for each bad value of one parameter, all the others
good. A bad call must end in one of two ways:

- a ValueError or TypeError whose message names the bad parameter (an OSError naming it, for
  a path), or
- where the bad value is one a function may legitimately accept (a list for an array, an
  integer array, 5.0 for a count), a finite result of the documented shape;

never another exception, never NaN or inf, never a hang (each call has ``TIMEOUT_S``). A bad
value marked "must raise" (NaN, sigma <= 0, increasing sigmas, 2.5 or None for a count, a
score of the wrong shape, ...) that comes back as a result is a silent wrong answer and fails.

A public callable whose parameters the table cannot fill fails ``test_every_public_callable_
is_covered`` with "add it to the table", so a new function cannot slip by unchecked; what is
not an entry point is listed in ``EXCLUDED`` with the reason.
"""
import atexit
import functools
import importlib
import inspect
import math
import os
import pkgutil
import re
import shutil
import signal
import struct
import tempfile
from typing import Callable, NamedTuple

import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

import minimalscore as ms
from minimalscore import backend

N, D = 4, 2
TIMEOUT_S = 10
SETTINGS = settings(max_examples=4, derandomize=True, deadline=None, database=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck))
NAN, INF = float("nan"), float("inf")


# ---------------------------------------------------------------- what is not an entry point
EXCLUDED = {
    "_autograd_cupy": "private module: autograd's CuPy vector space, never called by users",
    "checks": "the checking vocabulary itself: each function takes the argument's name and "
              "raising is its job (tested in its own module's tests)",
    "plot": "figure writers for the examples (matplotlib, files); they draw arrays the "
            "library computed, not values a learner types",
    "ops": "array building blocks called inside traced graphs with arrays an entry point "
           "already checked; a check there would cost a host read per layer",
    "tree": "parameter-tree walkers (tree_map, tree_leaves, count_params) used by optim and "
            "train on trees those entry points check",
    "conv": "the conv2d primitive family, a building block of nn layers (checks its shapes)",
    "fused": "layers fused into single autograd primitives (softplus, dense, instance norm++, "
             "the half squared norm): building blocks inside traced graphs, like nn's",
    "checkpoint.check_settings": "the settings comparison that load(path, expect=...) runs; "
                                 "covered through load",
    "nn": "layers and activations called inside traced graphs (hot path; models.* and "
          "ncsn.apply are the entry points that check)",
    "backend.asarray": "the converter: accepts anything NumPy/CuPy can convert, by design",
    "backend.asnumpy": "the converter off the device: accepts anything, by design",
    "backend.is_array": "a predicate: returns False for anything that is not an array",
    "backend.RNG": "the generator class behind default_rng (covered there); its methods are "
                   "called by the library with shapes it computed",
    "distributions.logsumexp": "a building block of log_prob (same as ops.logsumexp)",
    "objectives.half_mean_squared_norm": "a building block of the objectives (a primitive)",
    "sde.SDE": "the record VE, VP and SubVP return; its members are covered through those",
    **{f"ncsn.{name}": "a building block of ncsn.apply / ncsn.init, the entry points"
       for name in ("cond_norm_init", "cond_norm")},
}
# the upsampling whose factor a learner types
INCLUDED_ANYWAY = {"ops.upsample_nearest"}


# ---------------------------------------------------------------- good values and bad ones
OMIT = object()  # a good value meaning "leave the parameter at its default"


def arr(a, dtype=None):
    return backend.asarray(np.asarray(a), dtype=dtype)


def draw(shape, seed=0, scale=1.0):
    return arr(scale * np.random.default_rng(seed).normal(size=shape))


def with_value(a, value, where=0):
    b = backend.asnumpy(a).copy()
    b.reshape(-1)[where] = value
    return arr(b, dtype=b.dtype)


class Bad(NamedTuple):
    label: str
    make: Callable  # (good value of this parameter, all good arguments) -> the bad value
    must_raise: bool = True
    mentions: tuple = None  # the names the error may name instead of the parameter's (a
    # mismatch between two arguments may be blamed on either)


class Role(NamedTuple):
    good: Callable  # (ctx) -> the good value, or OMIT
    bad: tuple = ()
    fuzz: Callable = None  # (good value, args) -> a hypothesis strategy of Bad


def const(value):
    return lambda g, a: value


NONE_STR = (Bad("None", const(None)), Bad("a string", const("5")))


def count_role(good, minimum=1):
    below = (Bad(f"{minimum - 1}", const(minimum - 1)),) if minimum > 0 else ()
    bad = (*below, Bad("-1", const(-1)),
           Bad("2.5", const(2.5)), Bad("NaN", const(NAN)), Bad("float of a count", const(float(good)), False),
           *NONE_STR)
    fuzz = lambda g, a: st.one_of(
        st.integers(-10, minimum - 1).map(lambda v: Bad(f"count {v}", const(v))),
        st.floats(-1e3, 1e3).filter(lambda v: v != int(v)).map(lambda v: Bad(f"count {v}", const(v))))
    return Role(lambda c: good, bad, fuzz)


def positive_role(good, zero_ok=False):
    bad = (Bad("-1", const(-1.0)), Bad("NaN", const(NAN)), Bad("inf", const(INF)),
           Bad("0", const(0.0), not zero_ok), *NONE_STR[:1], Bad("a string", const(str(good))))
    fuzz = lambda g, a: st.floats(max_value=-1e-300).map(lambda v: Bad(f"value {v}", const(v)))
    return Role(lambda c: good, bad, fuzz)


def interval_role(good, low=0.0, high=1.0):
    """A number in [low, high] (a probability, a decay, a jitter)."""
    bad = (Bad("below the interval", const(low - 0.5)), Bad("above the interval", const(high + 1.0)),
           Bad("NaN", const(NAN)), Bad("None", const(None)), Bad("a string", const(str(good))))
    fuzz = lambda g, a: st.one_of(st.floats(max_value=low, exclude_max=True),
                                  st.floats(min_value=high, exclude_min=True)).map(
        lambda v: Bad(f"value {v}", const(v)))
    return Role(lambda c: good, bad, fuzz)


def option_role(good, wrong="no-such-option"):
    return Role(lambda c: good, (Bad("unknown option", const(wrong)), Bad("None", const(None)),
                                 Bad("an int", const(5))))


def nonfinite_fuzz(g, a):
    """An array of the good value's shape with one entry NaN or +-inf, at any position."""
    size = int(np.prod(np.shape(g)))
    return st.tuples(st.integers(0, size - 1), st.sampled_from([NAN, INF, -INF])).map(
        lambda p: Bad(f"{p[1]} at flat index {p[0]}", lambda g, a: with_value(g, p[1], p[0])))


def batch_role(shape=(N, D), seed=0, wrong_width_raises=False, other_width=True, partners=(), axis=-1):
    """A batch-first float array: wrong ndim, empty, NaN, inf, None refused; a list or an
    integer array may be converted; another width is refused only where it is pinned (and not
    tried where only a user callable could notice it); ``partners``: the arguments a width
    mismatch may be blamed on instead; ``axis``: the one that is the width (1: an image's
    channels, which the network fixes, where its height and width are free)."""
    def wider(g, a):
        shape = list(g.shape)
        shape[axis] += 1
        return draw(tuple(shape), 7)

    bad = (Bad("without batch axis", lambda g, a: g.reshape(g.shape[0], -1)[:, 0]),
           Bad("empty batch", lambda g, a: g[:0]),
           Bad("NaN", lambda g, a: with_value(g, NAN)), Bad("inf", lambda g, a: with_value(g, INF, 1)),
           Bad("None", const(None)), Bad("a float", const(1.0)),
           Bad("a list", lambda g, a: backend.asnumpy(g).tolist(), False),
           Bad("integer array", lambda g, a: backend.xp.round(g * 3).astype(backend.xp.int64), False),
           Bad("another width", wider, wrong_width_raises, partners))
    return Role(lambda c: draw(shape, seed), bad if other_width else bad[:-1], nonfinite_fuzz)


def array_like_role(make, shape_label="x"):
    """An array shaped like another argument (a target score, a mask, a weight vector)."""
    return Role(make, (Bad("NaN", lambda g, a: with_value(g, NAN)),
                       Bad(f"shape (N, 1) against {shape_label}", lambda g, a: g.reshape(g.shape[0], -1)[:, :1]),
                       Bad(f"shape (N - 1, ...) against {shape_label}", lambda g, a: g[1:]),
                       Bad("None", const(None))), nonfinite_fuzz)


def callable_role(good, out_kind):
    """A user callable whose output is checked: ``out_kind`` "like" (shaped like x) or
    "per_example" ((N,))."""
    bad = [Bad("returns NaN", const(lambda x, *r: good(x, *r) * NAN)),
           Bad("not callable", lambda g, a: draw((N, D))), Bad("None", const(None))]
    if out_kind == "like":
        bad += [Bad("returns (N, 1)", const(lambda x, *r: good(x, *r)[:, :1])),
                Bad("returns (N - 1, ...)", const(lambda x, *r: good(x, *r)[1:])),
                Bad("returns a scalar", const(lambda x, *r: anp.sum(good(x, *r))))]
    else:
        bad += [Bad("sums the batch", const(lambda x, *r: anp.sum(good(x, *r)))),
                Bad("returns (N, 1)", const(lambda x, *r: good(x, *r)[:, None])),
                Bad("returns (N - 1,)", const(lambda x, *r: good(x, *r)[1:]))]
    return Role(lambda c: good, tuple(bad))


def gaussian_score(x, *noise_level):
    """The score of N(0, I), with or without a noise level or time argument (ignored)."""
    return -x


def log_prob(x):
    """log N(x; 0, I) up to a constant, one value per example."""
    return -0.5 * anp.sum(anp.reshape(x, (x.shape[0], -1)) ** 2, axis=1)


def sigmas_role(values=(1.0, 0.5, 0.1)):
    bad = (Bad("increasing", const(arr(values[::-1]))), Bad("equal levels", const(arr([0.5, 0.5, 0.1]))),
           Bad("a zero level", const(arr([1.0, 0.5, 0.0]))), Bad("negative", const(arr([1.0, -0.5, -1.0]))),
           Bad("NaN", const(arr([1.0, NAN, 0.1]))), Bad("empty", const(arr(np.zeros(0)))),
           Bad("2-D", const(arr([list(values)]))), Bad("None", const(None)),
           Bad("a list", const(list(values)), False))
    fuzz = lambda g, a: st.lists(st.floats(-2, 2), min_size=1, max_size=5).filter(
        lambda v: min(v) <= 0 or any(b <= c for b, c in zip(v, v[1:]))).map(
        lambda v: Bad(f"sigmas {v}", const(arr(v))))
    return Role(lambda c: arr(values), bad, fuzz)


def sigma_vector_role(value=0.5):
    """A per-example noise level (N,), as noise-conditional nets take it."""
    return Role(lambda c: arr(np.full(N, value)),
                (Bad("NaN", lambda g, a: with_value(g, NAN)), Bad("negative", lambda g, a: -g),
                 Bad("zero", lambda g, a: 0 * g), Bad("shape (N - 1,)", lambda g, a: g[1:]),
                 Bad("shape (N, 1)", lambda g, a: g[:, None]), Bad("None", const(None))),
                nonfinite_fuzz)


def rng_role():
    return Role(lambda c: backend.default_rng(0),
                (Bad("None", const(None)), Bad("an int seed", const(0), False),
                 Bad("NumPy's own Generator", const(np.random.default_rng(0)), False)))


def params_role(sizes):
    def mismatched(g, a):
        return ms.models.mlp_init(backend.default_rng(1), [sizes[0] + 1, *sizes[1:]])
    return Role(lambda c: ms.models.mlp_init(backend.default_rng(0), list(sizes)),
                (Bad("None", const(None)), Bad("an empty dict", const({}), mentions=TREES),
                 Bad("for another input width", mismatched, mentions=("x", *TREES))))


TREES = ("params", "grads", "ema")  # trees that must match one another


def tree_like_params_role(scale=0.1):
    """A tree shaped like the good ``params`` (gradients, an EMA)."""
    def nan_leaf(g, a):
        return ms.tree.tree_map(lambda v: v * NAN, g)
    return Role(lambda c: ms.tree.tree_map(lambda v: v * scale + scale,
                                           ms.models.mlp_init(backend.default_rng(0), [2, 4, 2])),
                (Bad("NaN leaves", nan_leaf), Bad("None", const(None)),
                 Bad("a tree of another structure", lambda g, a: {"layers": g["layers"][:1]},
                     mentions=TREES),
                 Bad("a leaf of another shape", lambda g, a: {"layers": [
                     {"W": g["layers"][0]["W"][:1], "b": g["layers"][0]["b"]}, g["layers"][1]]},
                     mentions=TREES)))


class Ctx:
    """Per-session files: a temporary folder with a checkpoint and tiny IDX files."""
    tmp = tempfile.mkdtemp(prefix="contract-")
    atexit.register(shutil.rmtree, tmp, True)

    @classmethod
    def path(cls, name):
        return os.path.join(cls.tmp, name)

    @classmethod
    def checkpoint(cls):
        path = cls.path("good.ckpt")
        if not os.path.exists(path):
            save = getattr(ms, "checkpoint", None)
            (save.save if save else ms.train.save_checkpoint)(path, checkpoint_state())
        return path

    @classmethod
    def idx(cls, name, values):
        values = np.asarray(values, dtype=np.uint8)
        path = cls.path(name)
        with open(path, "wb") as f:
            f.write(bytes([0, 0, 8, values.ndim]) + struct.pack(f">{values.ndim}I", *values.shape)
                    + values.tobytes())
        return path

    @classmethod
    def mnist_dir(cls):
        for split, n in (("train", 3), ("t10k", 2)):
            cls.idx(f"{split}-images-idx3-ubyte", np.arange(n * 28 * 28).reshape(n, 28, 28) % 256)
            cls.idx(f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
        return cls.tmp


def checkpoint_state():
    return {"params": ms.models.mlp_init(backend.default_rng(0), [2, 4, 2]), "step": 1}


def file_bad(kind):
    def make(g, a):
        path = Ctx.path(f"bad-{kind}")
        good = open(Ctx.checkpoint(), "rb").read()
        with open(path, "wb") as f:
            f.write({"truncated": good[:len(good) // 2], "empty": b"", "text": b"not a checkpoint\n",
                     "flipped": good[:len(good) // 2] + bytes([good[len(good) // 2] ^ 0xFF])
                     + good[len(good) // 2 + 1:]}[kind])
        return path
    return Bad(f"a {kind} file", make)


PATH_BAD = (Bad("None", const(None)), Bad("an int", const(12345)),  # 5 would open file descriptor 5
            Bad("a folder", lambda g, a: Ctx.tmp), Bad("a missing file", const(os.path.join(
                tempfile.gettempdir(), "contract-no-such-dir", "missing"))))


def dsm_loss(params, batch, rng):
    return ms.objectives.dsm(lambda y: ms.models.mlp(params, y), batch, 0.5, rng)


def classifier_log_prob(x, sigma):
    logits = anp.concatenate([x, -x[:, :1]], axis=1)  # K = 3 classes
    return logits - anp.log(anp.sum(anp.exp(logits), axis=1, keepdims=True))


def sde_role():
    return Role(lambda c: ms.sde.VE(0.01, 1.0),
                (Bad("None", const(None)), Bad("a string", const("VE")), Bad("an int", const(5))))


# The table keyed by parameter name: what a good argument of that name is, and its bad values.
NAMES = {
    "x": lambda: batch_role(), "x0": lambda: batch_role(seed=1), "x_T": lambda: batch_role(seed=2),
    "x_tilde": lambda: batch_role(seed=3),
    "score": lambda: callable_role(gaussian_score, "like"), "f": lambda: callable_role(gaussian_score, "like"),
    "log_prob": lambda: callable_role(log_prob, "per_example"),
    "target_score": lambda: array_like_role(lambda c: -draw((N, D))),
    "score_and_divergence": lambda: Role(lambda c: OMIT, (
        Bad("returns a trace (N, 1)", const(lambda x: (-x, anp.zeros((x.shape[0], 1)) - 2))),
        Bad("returns a trace (N - 1,)", const(lambda x: (-x, anp.zeros(x.shape[0] - 1) - 2))),
        Bad("returns NaN", const(lambda x: (-x * NAN, anp.zeros(x.shape[0]) - 2))),
        Bad("not callable", const(5)))),
    "sigma": lambda: positive_role(0.5), "sigmas": sigmas_role,
    "eps": lambda: positive_role(0.01), "step": lambda: positive_role(0.1),
    "n_steps": lambda: count_role(3), "n_steps_each": lambda: count_role(2),
    "n_leapfrog": lambda: count_role(2), "n_projections": lambda: count_role(2),
    "n": lambda: count_role(5), "batch_size": lambda: count_role(4), "chunk": lambda: count_role(2),
    "n_corrector": lambda: count_role(1, minimum=0), "factor": lambda: count_role(2),
    "rng": rng_role, "params": lambda: params_role((2, 4, 2)),
    "sigma_min": lambda: positive_role(0.01), "sigma_max": lambda: positive_role(1.0),
    "snr": lambda: positive_role(0.16), "lr": lambda: positive_role(1e-3, zero_ok=True),
    "jitter": lambda: interval_role(0.2), "decay": lambda: interval_role(0.9),
    "b1": lambda: interval_role(0.9), "b2": lambda: interval_role(0.999),
    "method": lambda: option_role("rk4"), "kind": lambda: option_role("gaussian"),
    "renoise": lambda: option_role("level"), "weighting": lambda: option_role(OMIT),
    "split": lambda: option_role("train"),
    "mask": lambda: Role(lambda c: arr(np.tile([1.0, 0.0], (N, 1))), (
        Bad("NaN", lambda g, a: with_value(g, NAN)), Bad("values 2", lambda g, a: 2 * g),
        Bad("shape (N - 1, D) against x", lambda g, a: g[1:]), Bad("None", const(None)),
        Bad("shape (N, 1), broadcast", lambda g, a: g[:, :1], False)), nonfinite_fuzz),
    "t": lambda: interval_role(0.5), "gamma": lambda: positive_role(1.2),
    "dim": lambda: count_role(2), "overlap": lambda: interval_role(0.5),
    "seed": lambda: Role(lambda c: 0, (Bad("-1", const(-1)), Bad("2.5", const(2.5)), *NONE_STR[1:])),
    "noise": lambda: positive_role(0.0, zero_ok=True),
    "path": lambda: Role(lambda c: Ctx.path("saved.ckpt"), PATH_BAD[:3]),
    "sde": sde_role,
    "beta_min": lambda: positive_role(0.1), "beta_max": lambda: positive_role(20.0),
    "eps_model": lambda: callable_role(gaussian_score, "like"),
    "betas": lambda: Role(lambda c: arr(np.linspace(1e-4, 0.02, 10)), (
        Bad("a beta of 1", const(arr([0.1, 1.0]))), Bad("negative", const(arr([0.1, -0.1]))),
        Bad("NaN", const(arr([0.1, NAN]))), Bad("empty", const(arr(np.zeros(0)))),
        Bad("2-D", const(arr([[0.1, 0.2]]))), Bad("None", const(None)))),
    "classifier_log_prob": lambda: Role(lambda c: classifier_log_prob, (
        Bad("returns (N,)", const(lambda x, s: classifier_log_prob(x, s)[:, 0])),
        Bad("returns NaN", const(lambda x, s: classifier_log_prob(x, s) * NAN)),
        Bad("not callable", const(5)))),
    "y": lambda: Role(lambda c: arr(np.arange(N) % 3), (
        Bad("a label out of range", const(arr([0, 1, 2, 7]))), Bad("shape (N - 1,)", const(arr([0, 1, 2]))),
        Bad("None", const(None)))),
    "scale": lambda: positive_role(1.0, zero_ok=True),
    "shape": lambda: Role(lambda c: (N, D), (Bad("an empty batch", const((0, D))),
                                             Bad("a float size", const((2.5, D))), Bad("None", const(None)))),
    "x_dim": lambda: count_role(2), "n_bins": lambda: count_role(256),
    "log_likelihood": lambda: Role(lambda c: arr(np.full(N, -3.0)), (
        Bad("NaN", lambda g, a: with_value(g, NAN)), Bad("shape (N, 1)", lambda g, a: g[:, None]),
        Bad("None", const(None))), nonfinite_fuzz),
    "prior_log_prob": lambda: Role(lambda c: OMIT, (
        Bad("returns (N, 1)", const(lambda x: log_prob(x)[:, None])),
        Bad("returns NaN", const(lambda x: log_prob(x) * NAN)), Bad("not callable", const(5)))),
    "progress": lambda: Role(lambda c: False),
    "log_prob_and_grad": lambda: Role(lambda c: ms.samplers.log_prob_and_grad(log_prob), (
        Bad("not callable", const(5)), Bad("None", const(None)))),
    "state": lambda: Role(lambda c: ms.samplers.chain_state(ms.samplers.log_prob_and_grad(log_prob), draw((N, D), 1)), (
        Bad("None", const(None)), Bad("x alone", lambda g, a: g[0]), Bad("NaN in x", lambda g, a: (
            with_value(g[0], NAN),) + tuple(g[1:])), Bad("two entries", lambda g, a: g[:2]))),
    "x_t": lambda: batch_role(seed=4, partners=("x_0",)), "x_0": lambda: batch_role(seed=5, partners=("x_t",)),
    "alpha_bar": lambda: interval_role(0.5), "alpha_bar_prev": lambda: interval_role(0.7),
    "n_total": lambda: count_role(10), "variance": lambda: option_role("beta"),
    "predictor": lambda: option_role(OMIT), "x0_model": lambda: callable_role(gaussian_score, "like"),
    "n_bisections": lambda: count_role(20), "data_range": lambda: positive_role(1.0),
    "alpha": lambda: positive_role(1.0),
}


class Target(NamedTuple):
    roles: dict = {}  # parameter name -> Role factory, overriding NAMES
    result: Callable = None  # (result, args) -> list of problems beyond non-finiteness
    consume: Callable = None  # (result, args) -> what to check (a generator's first item, ...)
    members: bool = False  # also walk the public methods of the good result


def like(name):
    def check(out, args):
        want = np.shape(args[name])
        if np.shape(out) != want:
            return [f"shape {np.shape(out)}, expected {want} like {name}"]
        return [] if np.asarray(out).dtype.kind == "f" else [f"dtype {np.asarray(out).dtype}"]
    return check


def per_example(name):
    def check(out, args):
        want = (np.shape(args[name])[0],)
        return [] if np.shape(out) == want else [f"shape {np.shape(out)}, expected {want}"]
    return check


def scalar(out, args):
    return [] if np.ndim(out) == 0 else [f"shape {np.shape(out)}, expected a scalar"]


def positive_scalar(out, args):
    return scalar(out, args) or ([] if float(out) > 0 else [f"{float(out)}, expected > 0"])


def first(check):
    return lambda out, args: check(out[0], args)


PINNED_X = {"x": lambda: batch_role(wrong_width_raises=True, partners=("params",))}
IMAGES = lambda: batch_role((2, 1, 8, 8), wrong_width_raises=True, partners=("params",), axis=1)
SAMPLE_2D = lambda seed: Role(lambda c: draw((8, D), seed), (
    Bad("NaN", lambda g, a: with_value(g, NAN)), Bad("empty", lambda g, a: g[:0]),
    Bad("3-D", lambda g, a: g[:, :, None]), Bad("None", const(None)),
    Bad("another width", lambda g, a: draw((8, D + 1), 9)),
    Bad("1-D", lambda g, a: g[:, 0], False), Bad("a list", lambda g, a: backend.asnumpy(g).tolist(), False)),
    nonfinite_fuzz)
SAMPLE_1D = lambda seed: Role(lambda c: draw((8,), seed), (
    Bad("NaN", lambda g, a: with_value(g, NAN)), Bad("empty", lambda g, a: g[:0]),
    Bad("(N, 2)", lambda g, a: draw((8, 2))), Bad("None", const(None)),
    Bad("(N, 1)", lambda g, a: g[:, None], False), Bad("a list", lambda g, a: backend.asnumpy(g).tolist(), False)),
    nonfinite_fuzz)
NC_PARAMS = lambda: params_role((3, 4, 2))


def times_role(mismatch=False):
    """Times t in [t_min, 1] per example (N,)."""
    bad = (Bad("NaN", lambda g, a: with_value(g, NAN)), Bad("negative", lambda g, a: g - 1.0),
           Bad("above 1", lambda g, a: g + 1.0), Bad("None", const(None)), Bad("a string", const("0.5")))
    if mismatch:
        bad += (Bad("shape (N - 1,)", lambda g, a: g[1:]),)
    return Role(lambda c: arr(np.full(N, 0.5)), bad, nonfinite_fuzz)


TARGETS_SDE_SAMPLING = {
    "reverse_sde": Target(result=like("x_T")), "predictor_corrector": Target(result=like("x_T")),
    "probability_flow": Target(result=like("x_T")), "langevin_corrector": Target(result=like("x")),
    "log_likelihood": Target({"n_steps": lambda: count_role(2), "rng": lambda: Role(lambda c: OMIT)},
                             per_example("x")),
    "bits_per_dim": Target(result=per_example("log_likelihood")),
}
ENERGY_PARAMS = lambda: params_role((2, 4, 1))
NC_SIGMAS = lambda: sigmas_role()


def ncsn_sigma_role(batch=True):
    """sigma (N,) for an NCSN of two 8x8 images; a level off the schedule may be interpolated.
    ``batch``: an x fixes N, so another length is refused."""
    return Role(lambda c: arr([1.0, 0.1]), (
        Bad("off the schedule", const(arr([1.0, 0.3])), False), Bad("NaN", const(arr([1.0, NAN]))),
        Bad("negative", const(arr([-1.0, 0.1]))), Bad("a float", const(0.5)),
        *((Bad("shape (N + 1,)", const(arr([1.0, 0.1, 0.5]))),) if batch else ())))
ALTERNATING = np.tile([1.0, -1.0], 32)

TARGETS = {
    # backend
    # the good value is the active backend, so a GPU run is not switched to NumPy by this test
    "backend.use": Target({"backend": lambda: Role(lambda c: backend.name, option_role(None, "gpu").bad)}),
    "backend.default_rng": Target(),
    # distributions
    "distributions.GaussianMixture": Target({
        "means": lambda: Role(lambda c: arr([[-1.0, 0.0], [1.0, 0.0]]), (
            Bad("1-D", const(arr([-1.0, 1.0]))), Bad("NaN", const(arr([[NAN, 0.0], [1.0, 0.0]]))),
            Bad("empty", const(arr(np.zeros((0, 2))))), Bad("None", const(None)))),
        "covs": lambda: Role(lambda c: arr([0.5, 0.5]), (
            Bad("negative", const(arr([-0.5, 0.5]))), Bad("NaN", const(arr([NAN, 0.5]))),
            Bad("K + 1 entries", const(arr([0.5, 0.5, 0.5]))),
            Bad("not symmetric", const(arr([[[1.0, 0.5], [0.0, 1.0]]] * 2))),
            Bad("not positive definite", const(arr([[[1.0, 2.0], [2.0, 1.0]]] * 2))), Bad("None", const(None)))),
        "weights": lambda: Role(lambda c: arr([0.3, 0.7]), (
            Bad("not summing to 1", const(arr([0.3, 0.3]))), Bad("negative", const(arr([-0.3, 1.3]))),
            Bad("K + 1 entries", const(arr([0.2, 0.3, 0.5]))), Bad("NaN", const(arr([NAN, 0.7]))),
            Bad("None", const(None)))),
        "dtype": lambda: Role(lambda c: OMIT, (Bad("unknown dtype", const("float33")),)),
    }, members=True),
    "distributions.GaussianMixture.log_prob": Target(PINNED_X, per_example("x")),
    "distributions.GaussianMixture.score": Target(PINNED_X, like("x")),
    "distributions.GaussianMixture.sample": Target(result=lambda out, a: [] if np.shape(out) == (a["n"], D)
                                                   else [f"shape {np.shape(out)}"]),
    "distributions.GaussianMixture.perturbed": Target(),
    "distributions.GaussianMixture.posterior_mean": Target({"x_tilde": lambda: batch_role(
        seed=3, wrong_width_raises=True)}, like("x_tilde")),
    "distributions.Gaussian": Target({
        "mean": lambda: Role(lambda c: arr([0.0, 1.0]), (
            Bad("2-D", const(arr([[0.0, 1.0]]))), Bad("NaN", const(arr([NAN, 1.0]))), Bad("None", const(None)))),
        "cov": lambda: Role(lambda c: arr([[1.0, 0.2], [0.2, 1.0]]), (
            Bad("negative", const(-1.0)), Bad("NaN", const(arr([[NAN, 0.0], [0.0, 1.0]]))),
            Bad("another size", const(arr(np.eye(3)))), Bad("None", const(None)))),
        "dtype": lambda: Role(lambda c: OMIT, (Bad("unknown dtype", const("float33")),)),
    }),
    # objectives
    "objectives.divergence": Target(result=per_example("x")),
    "objectives.explicit_sm": Target(result=scalar),
    "objectives.implicit_sm": Target(result=scalar),
    "objectives.projections": Target(result=lambda out, a: [] if np.shape(out)[0] == a["n_projections"] * N
                                      else [f"shape {np.shape(out)}"]),
    "objectives.sliced_sm": Target(result=scalar),
    "objectives.dsm": Target(result=scalar),
    "objectives.multiscale_dsm": Target(result=scalar),
    "objectives.dsm_sde": Target(result=scalar),
    # samplers
    "samplers.langevin": Target(result=like("x0")),
    "samplers.mala": Target(result=first(like("x0"))),
    "samplers.hmc": Target(result=first(like("x0"))),
    "samplers.annealed_langevin": Target(result=like("x0")),
    "samplers.inpaint": Target({"x0": lambda: Role(lambda c: OMIT, (
        Bad("another width", const(draw((N, D + 1)))), Bad("NaN", const(with_value(draw((N, D)), NAN))),
        Bad("a different batch size", const(draw((N + 1, D))))))}, like("x")),
    "guidance.guided_score": Target(consume=lambda out, a: out(draw((N, D)), arr(np.full(N, 0.5))),
                                    result=lambda out, a: [] if np.shape(out) == (N, D) else [f"{np.shape(out)}"]),
    # diffusion: the processes and their samplers
    **{f"sde_sampling.{k}": TARGETS_SDE_SAMPLING[k] for k in TARGETS_SDE_SAMPLING},
    **{f"sde.{k}": Target(consume=lambda out, a: out(draw((N, D)), arr(np.full(N, 0.5))),
                          result=lambda out, a: [] if np.shape(out) == (N, D) else [f"{np.shape(out)}"])
       for k in ("eps_to_score", "x0_to_score", "sigma_conditioned", "noise_conditioned")},
    "ddpm.vp_betas": Target({"n_steps": lambda: count_role(100, minimum=2)}),
    "ddpm.ddim_sample": Target({"n_steps": lambda: count_role(5)}, like("x_T")),
    "ddpm.ddpm_sample": Target(result=like("x_T")),
    "ddpm.ddim_step": Target({"eps": lambda: array_like_role(lambda c: draw((N, D), 2))}, like("x")),
    "ddpm.ddim_steps": Target({"n_steps": lambda: count_role(5)}),
    "ddpm.ddpm_posterior": Target({"i": lambda: Role(lambda c: 2, (
        Bad("-1", const(-1)), Bad("past the last step", const(10)), Bad("2.5", const(2.5)), *NONE_STR))},
        first(like("x_t"))),
    "objectives.ddpm_simple": Target(result=scalar),
    "samplers.log_prob_and_grad": Target(consume=lambda out, a: out(draw((N, D)))),
    "sde.VE": Target(members=True), "sde.VP": Target(members=True), "sde.SubVP": Target(members=True),
    "sde.*.drift": Target({"t": lambda: times_role(mismatch=True)}, like("x")),
    **{f"sde.*.{m}": Target({"t": times_role}) for m in ("diffusion", "marginal")},
    "sde.*.prior_sample": Target(result=lambda out, a: [] if np.shape(out) == tuple(a["shape"]) else ["shape"]),
    "sde.*.prior_log_prob": Target(result=per_example("x")),
    # optim
    "optim.adam_init": Target({"params": lambda: Role(
        lambda c: ms.models.mlp_init(backend.default_rng(0), [2, 4, 2]),
        (Bad("None", const(None)), Bad("a string", const("params")),
         Bad("NaN leaves", lambda g, a: ms.tree.tree_map(lambda v: v * NAN, g))))}),
    "optim.adam_update": Target({"grads": tree_like_params_role, "eps": lambda: positive_role(1e-8),
                                 "state": lambda: Role(lambda c: ms.optim.adam_init(
                                     ms.models.mlp_init(backend.default_rng(0), [2, 4, 2])), (
                                     Bad("None", const(None)), Bad("an empty dict", const({}))))}),
    "optim.ema_update": Target({"ema": tree_like_params_role}),
    # train
    "checkpoint.save": Target({"state": lambda: Role(lambda c: checkpoint_state(), (
        Bad("holding a function", const({"f": gaussian_score})), Bad("holding a NumPy object array",
                                                          const({"a": np.array([None, 1], dtype=object)})))),
        "settings": lambda: Role(lambda c: OMIT, (Bad("not a dict", const(5)),
                                                  Bad("holding an array", const({"x": arr([1.0])}))))}),
    "checkpoint.load": Target({"path": lambda: Role(lambda c: Ctx.checkpoint(), (
        *PATH_BAD, *(file_bad(k) for k in ("truncated", "empty", "text", "flipped")))),
        "expect": lambda: Role(lambda c: OMIT, (Bad("not a dict", const(5)),))}),
    "checkpoint.fingerprint": Target({"tree": lambda: Role(lambda c: checkpoint_state(), (
        Bad("holding a function", const({"f": gaussian_score})),))}),
    "train.fit": Target({
        "loss_fn": lambda: Role(lambda c: dsm_loss, (
            # a divergence, not a typo: the message names the loss (and step, parameter, lr)
            Bad("returns NaN", const(lambda p, b, r: dsm_loss(p, b, r) * NAN), mentions=("loss",)),
            Bad("returns (N,)", const(lambda p, b, r: anp.sum(ms.models.mlp(p, b), axis=1))),
            Bad("not callable", const(5)))),
        "x": lambda: batch_role((16, D), other_width=False), "n_steps": lambda: count_role(2),
        "params": lambda: Role(lambda c: ms.models.mlp_init(backend.default_rng(0), [2, 4, 2]),
                               (Bad("None", const(None)), Bad("a string", const("params")))),
        "ema_decay": lambda: Role(lambda c: OMIT, (Bad("2", const(2.0)), Bad("-0.1", const(-0.1)),
                                                  Bad("NaN", const(NAN)), Bad("a string", const("0.99")))),
        "checkpoint": lambda: Role(lambda c: OMIT, (Bad("an int", const(12345)),)),
        "checkpoint_every": lambda: count_role(500), "log_every": lambda: count_role(50),
        "callback": lambda: Role(lambda c: OMIT, (Bad("not callable", const(5)),)),
        "callback_every": lambda: count_role(1, minimum=0)},
        lambda out, a: [] if len(out[1]["losses"]) == a["n_steps"] else ["losses"]),
    # metrics
    "metrics.fisher_divergence": Target({"score_a": lambda: array_like_role(lambda c: -draw((N, D))),
                                         "score_b": lambda: array_like_role(lambda c: draw((N, D), 1)),
                                         "weights": lambda: Role(lambda c: OMIT, (
                                             Bad("negative", const(arr([1.0, -1.0, 1.0, 1.0]))),
                                             Bad("NaN", const(arr([1.0, NAN, 1.0, 1.0]))),
                                             Bad("all zero", const(arr(np.zeros(N)))),
                                             Bad("shape (N - 1,)", const(arr(np.ones(N - 1))))))}, scalar),
    "metrics.mode_weights": Target({"x": lambda: SAMPLE_2D(0), "centers": lambda: SAMPLE_2D(1)}),
    "metrics.wasserstein1_1d": Target({"x": lambda: SAMPLE_1D(0), "y": lambda: SAMPLE_1D(1)}, scalar),
    "metrics.ks_statistic": Target({"x": lambda: SAMPLE_1D(0), "y": lambda: SAMPLE_1D(1)}, scalar),
    "metrics.mmd": Target({"x": lambda: SAMPLE_2D(0), "y": lambda: SAMPLE_2D(1),
                           "bandwidth": lambda: Role(lambda c: OMIT, (Bad("0", const(0.0)), Bad("-1", const(-1.0)),
                                                                      Bad("NaN", const(NAN))))}, scalar),
    "metrics.sliced_wasserstein": Target({"x": lambda: SAMPLE_2D(0), "y": lambda: SAMPLE_2D(1),
                                          "n_projections": lambda: count_role(3)}, scalar),
    "metrics.effective_sample_size": Target({"chain": lambda: Role(
        lambda c: arr(np.cumsum(np.random.default_rng(0).normal(size=64)) * 0.1
                      + np.random.default_rng(1).normal(size=64)), (
            Bad("NaN", lambda g, a: with_value(g, NAN)), Bad("too short", lambda g, a: g[:3]),
            Bad("3-D", lambda g, a: g[:, None, None]), Bad("constant", lambda g, a: 0 * g),
            Bad("an alternating chain (ESS must stay positive)", const(arr(ALTERNATING)), False),
            Bad("None", const(None))), nonfinite_fuzz)}, positive_scalar),
    # schedule
    "schedule.max_pairwise_distance": Target(result=scalar),
    "schedule.shell_overlap": Target(result=scalar),
    "schedule.gamma_for_dim": Target({"dim": lambda: count_role(10)}, positive_scalar),
    "schedule.n_levels": Target({"gamma": lambda: Role(lambda c: 1.2, (
        Bad("gamma < 1", const(0.5)), Bad("gamma = 1", const(1.0)), Bad("NaN", const(NAN)), *NONE_STR)),
        "sigma_min": lambda: Role(lambda c: 0.01, (Bad("above sigma_max", const(2.0)), Bad("0", const(0.0)),
                                                   Bad("NaN", const(NAN))))}),
    "schedule.geometric_sigmas": Target({"n": lambda: count_role(5, minimum=2),
                                         "sigma_min": lambda: Role(lambda c: 0.01, (
                                             Bad("above sigma_max", const(2.0)), Bad("equal to sigma_max", const(1.0)),
                                             Bad("0", const(0.0)), Bad("NaN", const(NAN))))}),
    "schedule.langevin_variance_ratio": Target({"eps": lambda: positive_role(1e-5)}, positive_scalar),
    "schedule.langevin_eps": Target(result=positive_scalar),
    "schedule.ncsnv2_schedule": Target({"x": lambda: batch_role((8, 5)), "n_steps_each": lambda: count_role(5)}),
    # data
    "data.swiss_roll": Target(result=lambda out, a: [] if np.shape(out) == (a["n"], 2) else ["shape"]),
    "data.next_batch": Target({"cursor": lambda: Role(lambda c: OMIT, (
        Bad("an empty dict", const({})), Bad("an int", const(5))))}, first(lambda o, a: [])),
    "data.batches": Target(consume=lambda out, a: next(out)),
    "data.digits": Target({"size": lambda: Role(lambda c: 8, (
        Bad("not a multiple of 8", const(12)), Bad("0", const(0)), Bad("-8", const(-8)),
        Bad("8.0", const(8.0), False), *NONE_STR))}),
    "data.read_idx": Target({"path": lambda: Role(lambda c: Ctx.idx("good.idx", [1, 2, 3]), PATH_BAD),
                             "ndim": lambda: count_role(1)}),
    "data.mnist": Target({"data_dir": lambda: Role(lambda c: Ctx.mnist_dir(), PATH_BAD[:2] + PATH_BAD[3:])}),
    # models
    "models.mlp_init": Target({"sizes": lambda: Role(lambda c: [2, 4, 2], (
        Bad("a zero width", const([2, 0, 2])), Bad("a float width", const([2, 2.5, 2])),
        Bad("one width", const([2])), Bad("None", const(None)), Bad("a string", const("2,4,2"))))}),
    "models.mlp": Target(PINNED_X, like("x")),
    "models.noise_conditional_mlp_init": Target({"hidden": lambda: Role(lambda c: (4,), (
        Bad("a zero width", const((0,))), Bad("a float width", const((2.5,))), Bad("None", const(None))))}),
    "models.energy_mlp_init": Target({"hidden": lambda: Role(lambda c: (4,), (
        Bad("a zero width", const((0,))), Bad("a float width", const((2.5,))), Bad("None", const(None))))}),
    "models.noise_conditional_mlp": Target({**PINNED_X, "params": NC_PARAMS, "sigma": sigma_vector_role},
                                           like("x")),
    "models.energy_mlp": Target({**PINNED_X, "params": ENERGY_PARAMS}, per_example("x")),
    "models.energy_score": Target({**PINNED_X, "params": ENERGY_PARAMS}, like("x")),
    "models.mlp_score_and_divergence": Target(PINNED_X),
    # ncsn
    "ncsn.init": Target({"n_levels": lambda: count_role(3), "channels": lambda: count_role(4),
                         "image_channels": lambda: count_role(1)}),
    "ncsn.level_weights": Target({"sigma": lambda: ncsn_sigma_role(batch=False), "sigmas": NC_SIGMAS}),
    "ncsn.apply": Target({"params": lambda: Role(lambda c: ms.ncsn.init(backend.default_rng(0), 3, 4), (
        Bad("None", const(None)), Bad("for 3 image channels", mentions=("x",), make=lambda g, a: ms.ncsn.init(
            backend.default_rng(0), 3, 4, image_channels=3)))),
        "x": IMAGES, "sigma": lambda: ncsn_sigma_role(),
        "sigmas": NC_SIGMAS}, like("x")),
    # nn, ops: x comes from a layer above (no bad values), the factor from the user
    "ops.upsample_nearest": Target({"x": lambda: Role(lambda c: draw((2, 1, 4, 4))),
                                    "factor": lambda: count_role(2)},
                                   lambda out, a: [] if np.shape(out) == (2, 1, 4 * a["factor"], 4 * a["factor"])
                                   else [f"shape {np.shape(out)}"]),
}


# ---------------------------------------------------------------- walking the API
def public_callables(module):
    """(name, object) for the public callables defined in ``module`` (autograd primitives
    count as defined where their raw function is)."""
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or inspect.ismodule(obj) or not callable(obj):
            continue
        home = getattr(getattr(obj, "fun", obj), "__module__", None)
        if home == module.__name__:
            yield name, obj


@functools.lru_cache(maxsize=None)
def discover():
    """Every public callable of every module, as qualified names 'module.name' mapped to the
    callable (classes included; their exceptions left out)."""
    found = {}
    for info in pkgutil.iter_modules(ms.__path__):
        module = importlib.import_module(f"minimalscore.{info.name}")
        for name, obj in public_callables(module):
            if not (inspect.isclass(obj) and issubclass(obj, BaseException)):
                found[f"{info.name}.{name}"] = obj
    return found


def excluded(qualname):
    """The reason ``qualname`` is left out: its own entry, its module's, or for a member
    'module.Owner.member' the entry 'module.*.member'."""
    if qualname in INCLUDED_ANYWAY:
        return None
    parts = qualname.split(".")
    wildcard = ".".join([parts[0], "*", *parts[2:]]) if len(parts) == 3 else None
    return EXCLUDED.get(qualname) or EXCLUDED.get(wildcard) or EXCLUDED.get(parts[0])


def spec(qualname):
    """The Target entry of ``qualname``, or of 'module.*.member' for a member."""
    parts = qualname.split(".")
    wildcard = ".".join([parts[0], "*", *parts[2:]]) if len(parts) == 3 else None
    return TARGETS.get(qualname) or TARGETS.get(wildcard) or Target()


def role_of(qualname, parameter):
    factory = spec(qualname).roles.get(parameter.name) or NAMES.get(parameter.name)
    return factory() if factory else None


def parameters(fn):
    return [p for p in inspect.signature(fn).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def unfilled(qualname, fn):
    """The required parameters of ``fn`` the table has no good value for."""
    return [p.name for p in parameters(fn)
            if p.default is p.empty and role_of(qualname, p) is None]


def good_arguments(qualname, fn):
    """{name: (good value, Role)} for every parameter the table knows (OMIT ones left out)."""
    args, roles = {}, {}
    for p in parameters(fn):
        role = role_of(qualname, p)
        if role is None:
            continue
        roles[p.name] = role
        value = role.good(Ctx)
        if value is not OMIT:
            args[p.name] = value
    return args, roles


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"no answer within {TIMEOUT_S} s")


def call(qualname, fn, args):
    """fn(**args) (consumed as the table says) under a timeout."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIMEOUT_S)
    try:
        out = fn(**args)
        consume = spec(qualname).consume
        return consume(out, args) if consume else out
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def non_finite(out, depth=0):
    """Where ``out`` (arrays, numbers, tuples, lists, dicts) holds NaN, inf or a complex."""
    if depth > 6:
        return []
    if isinstance(out, complex):
        return [f"a complex number {out}"]
    if isinstance(out, (float, int)) and not isinstance(out, bool):
        return [] if math.isfinite(out) else [f"{out}"]
    if backend.is_array(out) or isinstance(out, (np.ndarray, np.generic)):
        a = backend.asnumpy(out)
        if a.dtype.kind == "c":
            return ["a complex array"]
        return [] if a.dtype.kind not in "f" or np.isfinite(a).all() else ["NaN or inf in an array"]
    if isinstance(out, (tuple, list)):
        return [p for o in out for p in non_finite(o, depth + 1)]
    if isinstance(out, dict):
        return [p for o in out.values() for p in non_finite(o, depth + 1)]
    return []


def result_problems(qualname, out, args):
    problems = non_finite(out)
    check = spec(qualname).result
    if not problems and check is not None:
        problems = check(out, args)
    return problems


def names(message, words, value):
    """True if the message names one of ``words`` (as a whole word) or quotes the bad path."""
    if any(re.search(rf"(?<![\w]){re.escape(w)}(?!\w)", message) for w in words):
        return True
    return isinstance(value, str) and len(value) > 3 and value in message


def judge(qualname, fn, args, name, bad):
    """None when the call keeps the contract, else what went wrong, in words."""
    value = args[name]
    try:
        out = call(qualname, fn, args)
    except Hang as err:
        return f"hang: {err}"
    except (ValueError, TypeError, OSError) as err:
        if isinstance(err, OSError) and name not in ("path", "data_dir", "checkpoint"):
            return f"confusing error {type(err).__name__}: {err}"
        words = (name, *(bad.mentions or ()))
        if names(str(err), words, value):
            return None
        return (f"confusing error (does not name {' or '.join(map(repr, words))}) "
                f"{type(err).__name__}: {str(err)[:200]}")
    except Exception as err:
        return f"confusing error {type(err).__name__}: {str(err)[:200]}"
    problems = result_problems(qualname, out, args)
    if problems:
        return f"wrong result: {'; '.join(problems)}"
    if bad.must_raise:
        return "accepted silently (a finite result)"
    return None


_INSTANCES = {}


def instance(qualname):
    """The good result of the class or factory ``qualname`` (its members are targets)."""
    if qualname not in _INSTANCES:
        fn = discover()[qualname]
        args, _ = good_arguments(qualname, fn)
        _INSTANCES[qualname] = fn(**args)
    return _INSTANCES[qualname]


def resolve(qualname):
    """The callable behind 'module.name' or 'module.Owner.member'."""
    parts = qualname.split(".")
    if len(parts) == 2:
        return discover()[qualname]
    return getattr(instance(".".join(parts[:2])), parts[2])


def member_names(qualname):
    try:
        obj = instance(qualname)
    except Exception:  # reported by test_good_arguments of the owner
        return []
    return [f"{qualname}.{m}" for m in dir(obj) if not m.startswith("_")
            and inspect.isroutine(getattr(obj, m)) and not inspect.isbuiltin(getattr(obj, m))]


def all_targets():
    targets = []
    for qualname, obj in discover().items():
        if excluded(qualname):
            continue
        targets.append(qualname)
        if inspect.isclass(obj) or spec(qualname).members:
            targets += [m for m in member_names(qualname) if not excluded(m)]
    return targets


TARGET_NAMES = all_targets()


def bad_cases():
    for qualname in TARGET_NAMES:
        try:
            _, roles = good_arguments(qualname, resolve(qualname))
        except Exception:  # reported by test_good_arguments
            continue
        for name, role in roles.items():
            for bad in role.bad:
                yield pytest.param(qualname, name, bad.label, id=f"{qualname}-{name}-{bad.label}")


def fuzz_cases():
    for qualname in TARGET_NAMES:
        try:
            _, roles = good_arguments(qualname, resolve(qualname))
        except Exception:
            continue
        for name, role in roles.items():
            if role.fuzz is not None:
                yield pytest.param(qualname, name, id=f"{qualname}-{name}")


GOOD = {}


def checked_good(qualname):
    """fn and its good arguments, once the good call is known to work (else skip: the failure
    is test_good_arguments')."""
    if qualname not in GOOD:
        try:
            fn = resolve(qualname)
            args, roles = good_arguments(qualname, fn)
            problems = result_problems(qualname, call(qualname, fn, args), args)
            GOOD[qualname] = (None if problems else (fn, roles)), problems
        except Exception as err:
            GOOD[qualname] = None, [f"{type(err).__name__}: {err}"]
    found, problems = GOOD[qualname]
    if found is None:
        pytest.skip(f"the good call of {qualname} fails ({problems}); see test_good_arguments")
    return found


def fresh_args(qualname, fn, name, make):
    args, roles = good_arguments(qualname, fn)
    good = args[name] if name in args else roles[name].good(Ctx) if name in roles else None
    if good is OMIT:
        good = None
    args[name] = make(good, args)
    return args


# ---------------------------------------------------------------- the tests
def test_every_public_callable_is_covered():
    """Each public callable is excluded with a reason or has every required parameter in the
    table (``test_the_tables_name_only_callables_that_exist`` keeps the table itself current)."""
    missing = []
    for qualname in TARGET_NAMES:
        try:
            gaps = unfilled(qualname, resolve(qualname))
        except Exception as err:
            missing.append(f"{qualname}: cannot build it ({type(err).__name__}: {err})")
            continue
        if gaps:
            missing.append(f"{qualname}: no good value for {gaps}; add it to the table "
                           "(NAMES, or TARGETS for this function) or to EXCLUDED with a reason")
    assert not missing, "\n".join(missing)


def test_the_tables_name_only_callables_that_exist():
    """A function renamed or removed leaves no stale entry behind in TARGETS, EXCLUDED or
    INCLUDED_ANYWAY (entries ending in ``.*.member`` name a member of every record and are skipped)."""
    def exists(name):
        module, *rest = name.split(".")
        obj = getattr(ms, module, None)
        for part in rest:
            if obj is None or part == "*":
                break
            obj = getattr(obj, part, None)
        return obj is not None
    stale = [name for name in (*TARGETS, *EXCLUDED, *INCLUDED_ANYWAY)
             if "." in name and not name.startswith("*") and not exists(name)]
    assert not stale, f"entries naming nothing: {stale}"


def test_exclusions_have_reasons():
    for key, reason in EXCLUDED.items():
        assert len(reason) > 20, key


@pytest.mark.parametrize("qualname", TARGET_NAMES)
def test_good_arguments(qualname):
    """The table's good arguments give a finite result of the documented shape."""
    fn = resolve(qualname)
    args, _ = good_arguments(qualname, fn)
    problems = result_problems(qualname, call(qualname, fn, args), args)
    assert not problems, f"{qualname} with good arguments: {problems}"


@pytest.mark.parametrize("qualname, name, label", list(bad_cases()))
def test_bad_argument(qualname, name, label):
    fn, roles = checked_good(qualname)
    bad = next(b for b in roles[name].bad if b.label == label)
    args = fresh_args(qualname, fn, name, bad.make)
    verdict = judge(qualname, fn, args, name, bad)
    if verdict is not None:
        pytest.fail(f"{qualname}({name}={label}): {verdict}", pytrace=False)


@pytest.mark.parametrize("qualname, name", list(fuzz_cases()))
@SETTINGS
@given(data=st.data())
def test_bad_argument_fuzzed(qualname, name, data):
    """For all bad values of a family (any non-positive float, any non-integral count, a NaN
    or inf at any position, any non-decreasing sigmas, ...): the same contract."""
    fn, roles = checked_good(qualname)
    args, _ = good_arguments(qualname, fn)
    good = args.get(name, None)
    bad = data.draw(roles[name].fuzz(good, args))
    args = fresh_args(qualname, fn, name, bad.make)
    verdict = judge(qualname, fn, args, name, bad)
    if verdict is not None:
        pytest.fail(f"{qualname}({name}={bad.label}): {verdict}", pytrace=False)
