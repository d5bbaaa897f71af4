"""Teach autograd 1.9 CuPy arrays (issue 9; DESIGN.md §5). Loaded by ``backend.use("cupy")``.

autograd's wrapped functions call the underlying NumPy function, and CuPy arrays implement
``__array_function__`` / ``__array_ufunc__``, so most forward computations already dispatch to
CuPy. What remains is autograd's own bookkeeping:

1. ``ArrayBox.register(cupy.ndarray)``: trace through CuPy arrays.
2. A device vector space for ``cupy.ndarray``: autograd starts every backward pass from
   ``vspace(ans).ones()`` and accumulates into ``zeros()``; ``ArrayVSpace``
   (``autograd/numpy/numpy_vspaces.py:9, 22-34``) builds them with NumPy, on the host.
3. The gradient rules of autograd 1.9.1 that build host arrays on our code paths, replaced
   below, each with the file:line it replaces and why. They compute the same values on NumPy
   (so the NumPy backend keeps working after ``install``) and keep float32 float32.

This module and ``backend.py`` are the only package modules that name numpy or cupy.
The rules were found by running ``tests/test_device_purity.py`` against the strict stand-in
``tests/fake_cupy.py``; autograd is pinned to the minor version they were read from.
"""
import autograd
import numpy as onp
import autograd.numpy as anp
from autograd.extend import SparseObject, VSpace, defjvp, defvjp, primitive, vspace
from autograd.util import func
from autograd.numpy import numpy_vjps
from autograd.numpy.numpy_boxes import ArrayBox
from autograd.numpy.numpy_vspaces import ArrayVSpace
from autograd.tracer import getval

SUPPORTED_AUTOGRAD = "1.9."
_installed = []  # the cupy modules installed for (idempotence)


def _xp_of(a):
    """The array module of ``a``'s payload: cupy for device arrays, numpy otherwise."""
    a = getval(a)
    for cupy in _installed:
        if isinstance(a, cupy.ndarray):
            return cupy
    return onp


def install(cupy):
    """Register ``cupy.ndarray`` with autograd and replace the host-building gradient rules.
    Idempotent; RuntimeError on an autograd other than 1.9.x."""
    version = getattr(autograd, "__version__", None)
    if version is None:
        from importlib.metadata import version as _version
        version = _version("autograd")
    if not version.startswith(SUPPORTED_AUTOGRAD):
        raise RuntimeError(f"backend 'cupy': minimalscore's CuPy support patches autograd "
                           f"{SUPPORTED_AUTOGRAD}x gradient rules, but autograd {version} is "
                           f"installed; `pip install 'autograd>=1.9,<1.10'`")
    if any(c is cupy for c in _installed):
        return
    _installed.append(cupy)
    ArrayBox.register(cupy.ndarray)
    VSpace.register(cupy.ndarray, lambda x: DeviceVSpace(x, cupy))
    _patch_rules()


class DeviceVSpace(ArrayVSpace):
    """ArrayVSpace whose vectors are built on the device (replaces numpy_vspaces.py:9-37 for
    cupy.ndarray: ``np.asarray(value)``, ``np.zeros``, ``np.ones``, ``np.random.randn``)."""

    def __init__(self, value, cupy):
        self.shape, self.dtype, self._xp = value.shape, value.dtype, cupy

    @property
    def size(self):
        return int(onp.prod(self.shape))

    def zeros(self):
        return self._xp.zeros(self.shape, dtype=self.dtype)

    def ones(self):
        return self._xp.ones(self.shape, dtype=self.dtype)

    def standard_basis(self):
        for idxs in onp.ndindex(*self.shape):
            vect = self._xp.zeros(self.shape, dtype=self.dtype)
            vect[idxs] = 1
            yield vect

    def randn(self):
        return self._xp.random.default_rng().standard_normal(self.shape).astype(self.dtype)

    def _inner_prod(self, x, y):
        return self._xp.dot(self._xp.ravel(x), self._xp.ravel(y))

    def __eq__(self, other):
        return type(self) == type(other) and (self.shape, self.dtype) == (other.shape, other.dtype)


_patched = []


def _patch_rules():
    if _patched:
        return
    _patched.append(True)
    numpy_vjps.repeat_to_match_shape = repeat_to_match_shape
    defvjp(anp.transpose, grad_transpose)
    defvjp(func(ArrayBox.__getitem__), lambda ans, A, idx: lambda g: untake(g, idx, vspace(A)))
    defvjp(untake, lambda ans, x, idx, _: lambda g: g[idx])
    defjvp(untake, "same")


def repeat_to_match_shape(g, shape, dtype, axis, keepdims):
    """Replaces autograd/numpy/numpy_vjps.py:416-427 (used by the sum, mean, max/min, var, std
    VJPs): it broadcast g with ``+ onp.zeros(shape)``, a host array, and returned the count as a
    NumPy int64, which NumPy 2 promotes with float32 to float64 (mean's cotangent g / count).
    Same values; the zeros come from g's own array module and the count is a Python int.
    (A plain broadcast_to view would be read-only, and autograd accumulates in place.)"""
    if shape == ():
        return g, 1
    axis = list(axis) if isinstance(axis, tuple) else axis
    new_shape = onp.array(shape)
    new_shape[axis] = 1
    num_reps = int(onp.prod(onp.array(shape)[axis]))
    zeros = _xp_of(g).zeros(shape, dtype=dtype)
    return numpy_vjps.anp.reshape(g, tuple(int(n) for n in new_shape)) + zeros, num_reps


def grad_transpose(ans, x, axes=None):
    """Replaces autograd/numpy/numpy_vjps.py:407-413: the inverse permutation was
    ``anp.argsort(axes)``, a host int64 array handed to the device transpose as its axes (CuPy
    may or may not iterate it; a strict device array refuses host arrays). A tuple of ints."""
    if axes is not None:
        axes = tuple(int(i) for i in onp.argsort(axes))
    return lambda g: anp.transpose(g, axes)


@primitive
def untake(x, idx, vs):
    """Replaces autograd/numpy/numpy_vjps.py:941-954, the VJP of indexing (``x[:, i]`` in
    ``objectives.divergence``): it scattered with ``onp.add.at(A, idx, x)``; on CuPy that is
    ``ufunc_at``, which calls ``cupy.asarray(idx)`` and so fails for slices and tuples of
    slices. Device arrays scatter with ``cupyx.scatter_add`` (repeated indices accumulate, as
    with add.at); NumPy arrays keep ``add.at``."""
    xp = _xp_of(x)
    if isinstance(idx, list) and (len(idx) == 0 or not isinstance(idx[0], slice)):
        idx = xp.asarray(idx, dtype="int64")

    def mut_add(A):
        if xp is onp:
            onp.add.at(A, idx, x)
        else:
            import cupyx
            cupyx.scatter_add(A, idx, x)
        return A
    return SparseObject(vs, mut_add)
