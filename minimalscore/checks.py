"""Argument checks: one vocabulary for every public function.

Each check either returns the value it accepts or raises a ValueError or TypeError whose message
names the argument, shows the value and says what is expected, e.g.

    n_steps: expected a positive integer, got 2.5

Counts are Python or NumPy integers (``5.0`` is refused: a float count usually means a division
that went wrong upstream, so the caller is asked to write ``int(...)`` where they mean it).
Callables a user passes in (a score, a log-density, a classifier) are wrapped by :func:`returns`,
which checks the shape and finiteness of their first output and then gets out of the way.
"""
import math
import numbers

from autograd.tracer import getval

from . import backend
from .tree import tree_paths


class NonFiniteError(ValueError):
    """A computation produced NaN or inf; the message says where, and which setting to change."""


def show(value, limit=60):
    """A short repr of ``value`` for an error message."""
    if backend.is_array(value):
        return f"an array of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _real(name, value, expected):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected {expected}, got {show(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected {expected}, got {value}")
    return value


def count(name, value, minimum=1):
    """An integer >= ``minimum`` (default 1); returns it as a Python int."""
    expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected {expected}, got {show(value)}")
    if value < minimum:
        raise ValueError(f"{name}: expected {expected}, got {value}")
    return int(value)


def positive(name, value):
    """A finite real number > 0; returns it as a Python float."""
    value = _real(name, value, "a positive finite number")
    if value <= 0:
        raise ValueError(f"{name}: expected a positive finite number, got {value}")
    return value


def nonnegative(name, value):
    """A finite real number >= 0; returns it as a Python float."""
    value = _real(name, value, "a finite number >= 0")
    if value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value}")
    return value


def in_interval(name, value, low, high, closed=(True, True)):
    """A finite real number in [low, high] (``closed`` says which ends belong); returns a float."""
    interval = f"{'[' if closed[0] else '('}{low}, {high}{']' if closed[1] else ')'}"
    value = _real(name, value, f"a number in {interval}")
    above = value >= low if closed[0] else value > low
    below = value <= high if closed[1] else value < high
    if not (above and below):
        raise ValueError(f"{name}: expected a number in {interval}, got {value}")
    return value


def option(name, value, choices):
    """One of ``choices``; returns it."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}: expected one of {listed}, got {show(value)}")
    return value


def is_finite(a):
    """True when every entry of the (possibly traced) array ``a`` is finite: one host read."""
    return bool(backend.xp.isfinite(getval(a)).all())


def batch(name, x, min_ndim=2):
    """A non-empty, finite, floating, batch-first array of the active backend, ndim >= min_ndim."""
    value = getval(x)
    if not backend.is_array(value):
        raise TypeError(f"{name}: expected a {backend.name} array of shape (N, ...), got "
                        f"{show(value)}; convert it with minimalscore.backend.asarray")
    if value.ndim < min_ndim:
        raise ValueError(f"{name}: expected a batch-first array with ndim >= {min_ndim} "
                         f"(N, D) or (N, C, H, W), got shape {tuple(value.shape)}")
    if value.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point array, got dtype {value.dtype}; "
                        "convert it with minimalscore.backend.asarray(x, dtype=...)")
    if value.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one example, got an empty batch "
                         f"of shape {tuple(value.shape)}")
    if not is_finite(value):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return x


def sigmas(name, value):
    """A non-empty 1-D array of positive, finite noise levels, strictly decreasing (largest
    first, docs/conventions.md)."""
    value = getval(value)
    if not backend.is_array(value):
        raise TypeError(f"{name}: expected a 1-D {backend.name} array, got {show(value)}")
    if value.ndim != 1 or value.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D array, got shape {tuple(value.shape)}")
    if not is_finite(value) or not bool((value > 0).all()):
        raise ValueError(f"{name}: expected positive finite noise levels")
    if not bool((value[1:] < value[:-1]).all()):
        raise ValueError(f"{name}: expected strictly decreasing noise levels (largest first)")
    return value


def finite_or_raise(name, a, where, advice):
    """NonFiniteError naming ``where`` and ``advice`` unless ``a`` is finite."""
    if not is_finite(a):
        raise NonFiniteError(f"{name}: went non-finite (NaN or inf) {where}; {advice}")
    return a


CHECK_EVERY = 100  # steps between two finiteness checks of a sampler's state: each is one host read


def finite_every(name, a, step, n_steps, where, advice):
    """In a sampler's loop, after step ``step`` (0-based) of ``n_steps``: every ``CHECK_EVERY``
    steps and after the last, NonFiniteError unless ``a`` is finite, naming the steps since the
    previous check. The loop reads the device once in ``CHECK_EVERY`` steps, never every step."""
    if (step + 1) % CHECK_EVERY == 0 or step + 1 == n_steps:
        first = step - step % CHECK_EVERY + 1
        finite_or_raise(name, a, f"between steps {first} and {step + 1} {where}", advice)
    return a


def returns(name, fn, expected_shape, described):
    """``fn(x, ...)`` whose first output is checked: an array of shape ``expected_shape(x)``
    (``None`` entries match any size), finite; ``described`` says what it should return.
    Later calls go straight through, so the check costs one call's host read."""
    if not callable(fn):
        raise TypeError(f"{name}: expected a callable, got {show(fn)}")
    checked = False

    def wrapped(x, *args, **kwargs):
        nonlocal checked
        out = fn(x, *args, **kwargs)
        if not checked:
            shape = tuple(getattr(getval(out), "shape", ()))
            want = expected_shape(x)
            if (not backend.is_array(getval(out)) or len(shape) != len(want)
                    or any(w is not None and s != w for s, w in zip(shape, want))):
                want_text = "(" + ", ".join("*" if w is None else str(w) for w in want) + ")"
                raise ValueError(f"{name}: expected {described}, shape {want_text}, got "
                                 f"{show(getval(out))}")
            if getval(out).dtype.kind != "f":  # e.g. numpy functions applied to autograd's boxes
                raise TypeError(f"{name}: expected a floating-point array, got dtype "
                                f"{getval(out).dtype}; write it with autograd.numpy (import "
                                "autograd.numpy as anp), which autograd can differentiate")
            if not is_finite(out):
                raise ValueError(f"{name}: returned NaN or inf at its first call")
            checked = True
        return out

    return wrapped


def like_x(name, fn):
    """:func:`returns` for a callable whose output is shaped like its input (a score)."""
    return returns(name, fn, lambda x: tuple(getval(x).shape), "an array shaped like x")


def per_example(name, fn):
    """:func:`returns` for a callable with one value per example (a log-density): (N,)."""
    return returns(name, fn, lambda x: (getval(x).shape[0],), "one value per example")


def rng(name, value):
    """A random-number generator of the active backend, as ``backend.default_rng(seed)`` makes."""
    if not isinstance(value, backend.RNG):
        raise TypeError(f"{name}: expected minimalscore.backend.default_rng(seed) (a backend.RNG), "
                        f"got {show(value)}")
    if value.backend != backend.name:
        raise ValueError(f"{name}: a {value.backend} generator, but the active backend is "
                         f"{backend.name}; make it after backend.use(...)")
    return value


def flag(name, value):
    """True or False (a NumPy bool too); returns a Python bool."""
    if not (isinstance(value, bool) or type(value).__name__ == "bool_"):
        raise TypeError(f"{name}: expected True or False, got {show(value)}")
    return bool(value)


def array(name, value, ndim=None):
    """An array of the active backend (possibly traced), of ``ndim`` axes when given; its values
    are not read (no host transfer), so layers deep inside a network can afford it."""
    raw = getval(value)
    if not backend.is_array(raw):
        raise TypeError(f"{name}: expected a {backend.name} array, got {show(raw)}")
    if ndim is not None and raw.ndim != ndim:
        raise ValueError(f"{name}: expected an array with {ndim} axes, got shape {tuple(raw.shape)}")
    return value


def _leaves_like(tree, like, out):
    """Append tree's leaves to ``out``, walking ``like`` in step: False where their structure or
    a leaf's shape differs (a plain recursion: this runs once per training step)."""
    if isinstance(like, dict):
        return (isinstance(tree, dict) and tree.keys() == like.keys()
                and all(_leaves_like(tree[k], like[k], out) for k in like))
    if isinstance(like, (list, tuple)):
        return (isinstance(tree, (list, tuple)) and len(tree) == len(like)
                and all(_leaves_like(t, l, out) for t, l in zip(tree, like)))
    out.append(tree)
    return getattr(tree, "shape", None) == getattr(like, "shape", ())


def finite_tree(name, tree, advice, like=None):
    """A parameter tree of floating arrays, all finite: otherwise a NonFiniteError naming its first
    non-finite leaf by its path (``grads['layers'][0]['W']``). With ``like``, the tree must also have like's
    structure and shapes (a ValueError otherwise). One host read when all is well: the leaves'
    squared norms (one BLAS dot each) are added on the device, and a NaN or inf anywhere makes
    the total non-finite; paths are worked out only for the message."""
    leaves = []
    matches = _leaves_like(tree, tree if like is None else like, leaves)
    for leaf in leaves:  # duck-typed: autograd returns a 0-d parameter's gradient as a scalar
        if getattr(getattr(leaf, "dtype", None), "kind", None) != "f" or not hasattr(leaf, "shape"):
            path = next(p for p, l in tree_paths(tree, name) if l is leaf)
            raise TypeError(f"{name}: expected a tree (dicts / lists) of floating {backend.name} "
                            f"arrays, found {path or 'a leaf'} = {show(leaf)}")
    if not matches:
        got = [(path, tuple(leaf.shape)) for path, leaf in tree_paths(tree, name)]
        want = [(path, tuple(getattr(leaf, "shape", ()))) for path, leaf in tree_paths(like, name)]
        first = next(((g, w) for g, w in zip(got + [None] * len(want), want + [None] * len(got))
                      if g != w), (None, None))
        raise ValueError(f"{name}: expected the parameters' tree structure and shapes; first "
                         f"difference: {first[0]} where the parameters have {first[1]}")
    if math.isfinite(float(sum(backend.xp.vdot(leaf, leaf) for leaf in leaves))):
        return tree
    for path, leaf in tree_paths(tree, name):
        if not is_finite(leaf):
            raise NonFiniteError(f"{path} is non-finite (NaN or inf); {advice}")
    return tree  # every leaf finite, only their squared norms overflowed


def sigma_per_example(name, sigma, x):
    """One positive, finite noise level per example of the batch x: an array of shape (N,)."""
    raw = getval(sigma)
    if not backend.is_array(raw) or raw.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating {backend.name} array of shape (N,), one "
                        f"noise level per example, got {show(raw)}")
    n = getval(x).shape[0]
    if raw.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},), one noise level per example, got "
                         f"{tuple(raw.shape)}")
    if not bool(((raw > 0) & (raw < math.inf)).all()):  # one host read; NaN fails both
        raise ValueError(f"{name}: expected positive finite noise levels")
    return sigma


def tree(name, value):
    """A parameter tree's root: a dict, list or tuple (its leaves are checked where they are
    used); returns it. No walk and no read, so an optimiser step can afford it."""
    if not isinstance(value, (dict, list, tuple)):
        raise TypeError(f"{name}: expected a parameter tree (nested dicts / lists of arrays), got "
                        f"{show(value)}")
    return value


def times(name, t, n=None):
    """A diffusion time: a real number in [0, 1] (no device work), or a floating array of shape
    (N,), ``(n,)`` when given, every entry in [0, 1] (one host read). Returns t itself, so a time
    autograd traces keeps its trace."""
    raw = getval(t)
    if not backend.is_array(raw) or raw.ndim == 0:  # a number, or a 0-d array holding one
        in_interval(name, raw if not backend.is_array(raw) else raw.item(), 0.0, 1.0)
        return t
    if raw.dtype.kind != "f":
        raise TypeError(f"{name}: expected a time in [0, 1] or a floating array of times, got {show(raw)}")
    if raw.ndim != 1 or raw.shape[0] == 0 or (n is not None and raw.shape[0] != n):
        raise ValueError(f"{name}: expected one time per example, shape ({'N' if n is None else n},), "
                         f"got {tuple(raw.shape)}")
    if not bool(((raw >= 0) & (raw <= 1)).all()):  # one host read; NaN fails both
        raise ValueError(f"{name}: expected times in [0, 1], got values outside it or NaN")
    return t


def sde(name, value):
    """A diffusion process as ``minimalscore.sde.VE``, ``VP`` or ``SubVP`` make it (its unchecked
    coefficient functions are what the samplers call); returns it."""
    members = ("_drift", "_diffusion", "_marginal", "prior_log_prob")
    if not all(callable(getattr(value, m, None)) for m in members):
        raise TypeError(f"{name}: expected an SDE (minimalscore.sde.VE, VP or SubVP), got {show(value)}")
    return value
