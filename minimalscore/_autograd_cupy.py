"""Teach autograd 1.9 CuPy arrays. Loaded by ``backend.use("cupy")``.

autograd's wrapped functions call the underlying NumPy function, and CuPy arrays implement
``__array_function__`` / ``__array_ufunc__``, so most forward computations dispatch to CuPy by
themselves. What does not is autograd's own bookkeeping, replaced here:

1. ``ArrayBox.register(cupy.ndarray)``: trace through CuPy arrays (numpy_boxes.py:136).
2. ``DeviceVSpace`` for ``cupy.ndarray``: every backward pass starts from ``vspace(ans).ones()``
   and accumulates into ``zeros()``; ``ArrayVSpace`` (numpy_vspaces.py:7-34) builds them with
   ``np.asarray``/``np.zeros``/``np.ones``, on the host.
3. The gradient rules of autograd 1.9.1 that build host arrays, call NumPy-only paths or turn
   float32 into float64, listed in ``_fixes`` with the file:line each replaces; the function
   doing each replacement says why.

Every replacement dispatches on the arrays it sees: for host (NumPy) arrays it runs autograd's
own rule, so installing this never changes a NumPy result; for device arrays it runs a
rewrite that computes the same values on the device and keeps float32 float32. A rule is
replaced in one of three ways: a module-level helper that autograd's rules look up at call time
is rebound (``numpy_vjps.repeat_to_match_shape``, ...); a gradient rule is re-registered for its
primitive (``defvjp``), wrapped to choose host or device; or a primitive whose forward pass is
host-only (``untake``, ``concatenate_args``, ...) gets a new forward function in place, so every
rule registered for it, and every reference to it, stays valid (``_replace_forward``).

This module and ``backend.py`` are the only package modules that name numpy or cupy. The rules
were found by running ``tests/test_device_purity.py`` against the strict stand-in
``tests/fake_cupy.py``; autograd is pinned to the minor version they were read from.
"""
import importlib.metadata
import math

import numpy
import autograd.numpy as anp
from autograd.core import primitive_jvps, primitive_vjps
from autograd.extend import SparseObject, VSpace, defjvp, defvjp, defvjp_argnum
from autograd.numpy import numpy_jvps, numpy_vjps, numpy_wrapper
from autograd.numpy.numpy_boxes import ArrayBox
from autograd.numpy.numpy_vspaces import ArrayVSpace
from autograd.tracer import getval

SUPPORTED_AUTOGRAD = "1.9"
_DEVICE = {}  # cupy.ndarray type -> its cupy module, for every module installed
_state = {"patched": False}


def install(cupy):
    """Register ``cupy.ndarray`` with autograd and replace the host-building gradient rules.
    Idempotent. RuntimeError on an autograd other than 1.9.x (the rules replaced were read
    from 1.9.1's source, and their internals change between minor versions)."""
    version = importlib.metadata.version("autograd")
    if version.split(".")[:2] != SUPPORTED_AUTOGRAD.split("."):
        raise RuntimeError(f"backend 'cupy': minimalscore teaches autograd {SUPPORTED_AUTOGRAD}.x "
                           f"CuPy arrays by replacing some of its gradient rules, but autograd "
                           f"{version} is installed; `pip install 'autograd>=1.9,<1.10'`")
    if cupy.ndarray not in _DEVICE:
        _DEVICE[cupy.ndarray] = cupy
        ArrayBox.register(cupy.ndarray)
        VSpace.register(cupy.ndarray, DeviceVSpace)
    if not _state["patched"]:
        _patch()
        _state["patched"] = True


# ---------------------------------------------------------------- which arrays are on the device
def _device_module(*values):
    """The cupy module of the first device array among ``values`` (boxed or not, also inside
    lists and tuples), or None when all are host values."""
    for value in values:
        value = getval(value)
        if isinstance(value, (list, tuple)):
            found = _device_module(*value)
            if found is not None:
                return found
        elif type(value) in _DEVICE:
            return _DEVICE[type(value)]
    return None


def _argsort(values):
    """argsort of a short sequence of Python ints, as a tuple (axes stay host-side ints)."""
    return tuple(sorted(range(len(values)), key=values.__getitem__))


# ---------------------------------------------------------------- the vector space
class DeviceVSpace(ArrayVSpace):
    """ArrayVSpace whose vectors live on the device (replaces numpy_vspaces.py:7-34 for
    cupy.ndarray: ``np.asarray(value)`` in __init__, ``np.zeros``/``np.ones``/``np.random.randn``
    build host arrays, and ``size`` was a NumPy integer)."""

    def __init__(self, value):
        self.shape, self.dtype, self._xp = value.shape, value.dtype, _DEVICE[type(value)]
        if self.dtype.kind == "c":
            raise NotImplementedError("autograd over complex CuPy arrays is not supported")

    @property
    def size(self):
        return math.prod(self.shape)

    def zeros(self):
        return self._xp.zeros(self.shape, dtype=self.dtype)

    def ones(self):
        return self._xp.ones(self.shape, dtype=self.dtype)

    def standard_basis(self):
        for index in numpy.ndindex(*self.shape):
            vect = self._xp.zeros(self.shape, dtype=self.dtype)
            vect[index] = 1
            yield vect

    def randn(self):
        """Standard normal draws (check_grads' random directions) from a seeded device
        generator, so that a gradient check is reproducible."""
        gen = _RANDN.setdefault(self._xp, self._xp.random.default_rng(0))
        dtype = self.dtype if self.dtype.char in "fd" else numpy.float64
        return gen.standard_normal(self.shape, dtype=dtype).astype(self.dtype)

    def _inner_prod(self, x, y):
        return self._xp.vdot(x, y)


_RANDN = {}


# ---------------------------------------------------------------- replacement machinery
def _override(table, fun, register):
    """Make ``fun``'s rule in ``table`` (primitive_vjps or primitive_jvps) choose: the rule that
    ``register()`` defines when the result or an argument is a device array, autograd's own
    otherwise. Both tables call rules as rule(argnums, [gs,] ans, args, kwargs)."""
    host = table[fun]
    register()
    device = table[fun]

    def rule(argnums, *rest):
        ans, args = rest[-3], rest[-2]
        return (device if _device_module(ans, args) is not None else host)(argnums, *rest)

    table[fun] = rule


def _replace_forward(prim, device_forward, on_device=None):
    """Give the autograd primitive ``prim`` a forward pass that runs ``device_forward`` for
    device arguments and the original otherwise. The primitive object stays the same, so its
    registered VJPs/JVPs and every module holding a reference to it keep working: only its
    closure cell ``f_raw`` (autograd/tracer.py:43-97) is rebound."""
    names = prim.__code__.co_freevars
    if "f_raw" not in names or prim.__closure__[names.index("f_raw")].cell_contents is not prim.fun:
        raise RuntimeError(f"backend 'cupy': autograd's primitive {prim.__name__} is not built as in "
                           "autograd 1.9.1 (tracer.primitive); cannot teach it CuPy arrays")
    host_forward = prim.fun
    on_device = on_device or (lambda *args, **kwargs: _device_module(*args) is not None)

    def forward(*args, **kwargs):
        return (device_forward if on_device(*args, **kwargs) else host_forward)(*args, **kwargs)

    prim.__closure__[names.index("f_raw")].cell_contents = forward
    prim.fun = forward


def _rebind(module, name, device_version):
    """Rebind the module-level helper ``module.name`` (looked up at call time by autograd's
    rules) to run ``device_version`` for device arrays and the original otherwise."""
    host_version = getattr(module, name)

    def helper(*args):
        return (device_version if _device_module(*args) is not None else host_version)(*args)

    setattr(module, name, helper)
    return helper


# ---------------------------------------------------------------- the rewritten rules
def repeat_to_match_shape(g, shape, dtype, axis, keepdims):
    """Replaces numpy_vjps.py:416-427 (the broadcast inside the VJPs of sum, mean, prod, var,
    std, max, min): it added ``onp.zeros(shape)``, a host array, reshaped g with a host int
    array, and returned the count as a NumPy int64, which NumPy 2 promotes with float32 to
    float64 (mean's cotangent g / count). Same values; device zeros, tuple shape, int count.
    (A read-only broadcast_to view would not do: autograd accumulates in place.)"""
    if shape == ():
        return g, 1
    axes = range(len(shape)) if axis is None else axis if isinstance(axis, (tuple, list)) else (axis,)
    axes = {a % len(shape) for a in axes}
    new_shape = tuple(1 if i in axes else n for i, n in enumerate(shape))
    zeros = _device_module(g).zeros(shape, dtype=dtype)
    return anp.reshape(g, new_shape) + zeros, math.prod(shape[a] for a in axes)


def _chooser_vjp(ans, x, axis=None, keepdims=None, **kwargs):
    """Replaces numpy_vjps.py:515-530 (VJP of max, min, amax, amin): it divided by
    ``onp.sum(locations)``, an int64 count, which turns a float32 gradient into float64.
    The count is cast to x's dtype."""
    shape, dtype = anp.shape(x), anp.result_type(x)

    def vjp(g):
        g_repeated, _ = numpy_vjps.repeat_to_match_shape(g, shape, dtype, axis, keepdims)
        locations = x == numpy_vjps.repeat_to_match_shape(ans, shape, dtype, axis, keepdims)[0]
        counts = getval(anp.sum(locations, axis=axis, keepdims=True)).astype(dtype)
        return g_repeated * locations / counts

    return vjp


def _chooser_jvp(g, ans, x, axis=None, keepdims=False, **kwargs):
    """Replaces numpy_jvps.py:208-226 (JVP of max, min): the same int64 count, cast."""
    if anp.isscalar(x):
        return g
    if not keepdims and axis is not None:
        for ax in sorted(axis if isinstance(axis, tuple) else (axis,)):
            ans = anp.expand_dims(ans, ax)
    chosen = x == ans
    counts = getval(anp.sum(chosen, axis=axis, keepdims=keepdims)).astype(anp.result_type(x))
    return anp.sum(g * chosen, axis=axis, keepdims=keepdims) / counts


def _untake(x, idx, vs):
    """Replaces the forward pass of ``untake`` (numpy_vjps.py:941-950; the VJP of indexing
    ``A[idx]``): it turned list indices into a host array and accumulated with
    ``onp.add.at``, a ufunc method CuPy does not implement (``x[:, i]`` failed, so did every
    trace). Integer-array indices use ``cupyx.scatter_add`` (the ``ndarray.scatter_add``
    method: unbuffered, repeated indices add up, as add.at); basic indices and masks, which
    cannot repeat an element, a plain ``A[idx] += x``."""
    if isinstance(idx, list) and (len(idx) == 0 or not isinstance(idx[0], slice)):
        idx = vs._xp.asarray(idx, dtype=numpy.int64)
    parts = idx if isinstance(idx, tuple) else (idx,)
    integer_arrays = any(isinstance(p, list) or (getattr(p, "dtype", None) is not None
                                                 and getattr(p, "ndim", 0) > 0 and p.dtype.kind in "iu")
                         for p in parts)

    def mut_add(A):
        if integer_arrays:
            A.scatter_add(idx, x)
        else:
            A[idx] += x
        return A

    return SparseObject(vs, mut_add)


def _concatenate_args(axis, *args):
    """Replaces numpy_wrapper.py:57-59: ``_np.concatenate(args, axis).view(ndarray)``; a CuPy
    array's ``view`` takes a dtype, not the type numpy.ndarray."""
    return _device_module(*args).concatenate(args, axis)


def _array_from_scalar_or_array(array_args, array_kwargs, scalar):
    """Replaces numpy_wrapper.py:100-102: ``_np.array(scalar)`` calls ``__array__``, which CuPy
    refuses (``anp.array(x)``, and so ``anp.stack``, failed on device arrays)."""
    return _device_module(scalar).array(scalar, *array_args, **array_kwargs)


def _array_from_args(array_args, array_kwargs, *args):
    """Replaces numpy_wrapper.py:105-107 (``anp.array`` of a list, ``anp.stack``): the same
    ``_np.array``; here the elements are stacked on the device."""
    xp = _device_module(*args)
    out = xp.stack([xp.asarray(a) for a in args])
    dtype = array_kwargs.get("dtype", array_args[0] if array_args else None)
    return out if dtype is None else out.astype(dtype)


def _make_diagonal(D, offset=0, axis1=0, axis2=1):
    """Replaces numpy_wrapper.py:171-185 (the VJP of ``diagonal``): it filled a host float64
    ``_np.zeros`` through a writeable diagonal view (CuPy's flags have no ``writeable``).
    Here D[..., i] * I_ij, in D's dtype."""
    if not (offset == 0 and axis1 == -1 and axis2 == -2):
        raise NotImplementedError("Currently make_diagonal only supports offset=0, axis1=-1, axis2=-2")
    return D[..., None] * _device_module(D).eye(D.shape[-1], dtype=D.dtype)


def _dot_adjoint_0(B, G, A_meta, B_meta):
    """Replaces numpy_vjps.py:615-624 (VJP of ``dot`` wrt A): ``onp.asarray(out, dtype)`` calls
    ``__array__``. Same contraction, cast on the device. (``@`` does not go through here.)"""
    xp, (_, A_ndim, A_dtype, _), (_, B_ndim, _, _) = _device_module(B, G), A_meta, B_meta
    if B_ndim == 0 or B_ndim == 1 or A_ndim == 0:
        out = xp.tensordot(G, B, max(0, B_ndim - (A_ndim != 0)))
    else:
        out = xp.tensordot(G, xp.swapaxes(B, -1, -2), B_ndim - 1)
    return xp.asarray(out, dtype=A_dtype)


def _dot_adjoint_1(A, G, A_meta, B_meta):
    """Replaces numpy_vjps.py:627-638 (VJP of ``dot`` wrt B): as ``_dot_adjoint_0``."""
    xp, (_, A_ndim, _, _), (_, B_ndim, B_dtype, _) = _device_module(A, G), A_meta, B_meta
    swap = (lambda x: xp.swapaxes(x, -1, -2)) if B_ndim > 1 and A_ndim != 0 else (lambda x: x)
    if A_ndim == 0 or A_ndim == 1 or B_ndim == 0:
        out = swap(xp.tensordot(G, A, max(0, A_ndim - (B_ndim != 0))))
    else:
        out = swap(xp.tensordot(G, A, [list(range(-A_ndim - B_ndim + 2, -B_ndim + 1)),
                                       list(range(A_ndim - 1))]))
    return xp.asarray(out, dtype=B_dtype)


def _summed_and_other(axes, A_ndim, B_ndim):
    axes0 = [axes[0]] if type(axes[0]) is int else list(axes[0])
    axes1 = [axes[1]] if type(axes[1]) is int else list(axes[1])
    summed = [a % A_ndim for a in axes0], [b % B_ndim for b in axes1]
    other = ([a for a in range(A_ndim) if a not in summed[0]],
             [b for b in range(B_ndim) if b not in summed[1]])
    return summed, other


def _tensordot_adjoint_0(B, G, axes, A_ndim, B_ndim):
    """Replaces numpy_vjps.py:666-691 (VJP of ``tensordot``/``inner`` wrt A): its axes and
    permutation were host int arrays (``onp.arange``, ``onp.delete``, ``onp.argsort``) handed
    to the device functions. The same index arithmetic in Python ints."""
    if B_ndim == 0:
        return G * B
    xp, G_ndim = _device_module(B, G), anp.ndim(G)
    if type(axes) is int:
        axes = max(axes, 0)
        return xp.tensordot(G, B, [list(range(A_ndim - axes, G_ndim)), list(range(axes, B_ndim))])
    summed, other = _summed_and_other(axes, A_ndim, B_ndim)
    out = xp.tensordot(G, B, [list(range(len(other[0]), G_ndim)), other[1]])
    order = _argsort(summed[1])
    return xp.transpose(out, _argsort(other[0] + [summed[0][i] for i in order]))


def _tensordot_adjoint_1(A, G, axes, A_ndim, B_ndim):
    """Replaces numpy_vjps.py:694-719 (VJP of ``tensordot``/``inner`` wrt B): as above."""
    if A_ndim == 0:
        return G * A
    xp = _device_module(A, G)
    if type(axes) is int:
        axes = max(axes, 0)
        return xp.tensordot(A, G, [list(range(A_ndim - axes)), list(range(A_ndim - axes))])
    summed, other = _summed_and_other(axes, A_ndim, B_ndim)
    out = xp.tensordot(A, G, [other[0], list(range(len(other[0])))])
    order = _argsort(summed[0])
    return xp.transpose(out, _argsort([summed[1][i] for i in order] + other[1]))


def _parse_einsum(subscripts, operands):
    """NumPy's einsum parser (numpy_wrapper.parse_einsum_input, numpy_vjps.py:821) calls
    ``asanyarray`` on the operands; it only needs their shapes, so give it zero-byte host
    stand-ins of the same shapes."""
    shapes = [numpy.broadcast_to(numpy.empty((), dtype=bool), anp.shape(op)) for op in operands]
    return numpy_wrapper._parse_einsum_input((subscripts, *shapes))


def _grad_einsum(argnum, ans, operands_, kwargs):
    """Replaces numpy_vjps.py:815-857 (VJP of ``einsum`` with a subscript string): the parser
    above (line 821), and the tensor of ones for indices summed out of one operand only, which
    was a host float64 ``onp.ones`` (line 839: breaks the device and promotes float32)."""
    if not isinstance(operands_[0], str):
        return numpy_vjps.grad_einsum(argnum, ans, operands_, kwargs)
    result_meta = anp.metadata(operands_[argnum])

    def vjp(g):
        in_subs, out_subs, _ = _parse_einsum(operands_[0], operands_[1:])
        operands = operands_[1:]
        in_subs_list, op_num = in_subs.split(","), argnum - 1
        subs_wrt = in_subs_list[op_num]
        rest_of_ops = operands[:op_num] + operands[op_num + 1:]
        rest_of_subs = in_subs_list[:op_num] + in_subs_list[op_num + 1:]
        other_named_subs = set("".join([out_subs] + rest_of_subs))
        naked_summed = [(i, sub) for i, sub in enumerate(subs_wrt) if sub not in other_named_subs]
        if naked_summed:
            dims, ones_subs = zip(*naked_summed)
            shape = tuple(anp.shape(operands[op_num])[d] for d in dims)
            ones = _device_module(g, *operands).ones(shape, dtype=anp.result_type(g))
            new_input_subs, new_operands = ",".join([out_subs, "".join(ones_subs)] + rest_of_subs), (g, ones)
        else:
            new_input_subs, new_operands = ",".join([out_subs] + rest_of_subs), (g,)
        result = anp.einsum(new_input_subs + "->" + subs_wrt, *new_operands, *rest_of_ops)
        return numpy_vjps.unbroadcast(result, result_meta)

    return vjp


def _grad_transpose(ans, x, axes=None):
    """Replaces numpy_vjps.py:407-410: the inverse permutation ``anp.argsort(axes)`` was a host
    int array handed to the device transpose. A tuple of ints."""
    if axes is not None:
        axes = _argsort([a % anp.ndim(x) for a in axes])
    return lambda g: anp.transpose(g, axes)


def _reshape_vjp(ans, x, shape=None, order=None):
    """Replaces numpy_vjps.py:192 and 199 (VJPs of reshape and ravel): they pass ``order=None``
    on, which CuPy refuses (its _normalize_order takes len(order)); None means 'C'."""
    return lambda g: anp.reshape(g, anp.shape(x), order=order or "C")


def _ravel_vjp(ans, x, order=None):
    return _reshape_vjp(ans, x, order=order)


def _unpermuter(g, permutation):
    """Replaces numpy_vjps.py:798-801 (VJPs of sort and partition): the inverse permutation was
    a host ``anp.zeros`` filled through a device index. It is argsort(permutation)."""
    return g[_device_module(permutation).argsort(permutation)]


def _balanced_eq(x, z, y):
    """Replaces numpy_vjps.py:911-912 (VJPs and JVPs of maximum, minimum, fmax, fmin):
    ``(x == z) / (1.0 + (x == y))`` divides booleans, which gives float64 whatever the inputs.
    The same ratio in the result's dtype."""
    dtype = anp.result_type(z)
    if dtype.kind != "f":
        return (x == z) / (1.0 + (x == y))
    return getval(x == z).astype(dtype) / (getval(x == y).astype(dtype) + 1)


def _where_vjps():
    """Replaces numpy_vjps.py:225-230 and numpy_jvps.py:147-152 (where's rules): the zeros were
    a host float64 ``anp.zeros(g.shape)`` (and made float32 cotangents float64 on NumPy too).
    Registered on the primitive ``anp._original_where``: ``anp.where`` is a Python wrapper
    around it (autograd/numpy/__init__.py:10-39)."""
    where = anp._original_where
    vjps = (None, lambda ans, c, x=None, y=None: lambda g: where(c, g, anp.zeros_like(g)),
            lambda ans, c, x=None, y=None: lambda g: where(c, anp.zeros_like(g), g))
    jvps = (None, lambda g, ans, c, x=None, y=None: where(c, g, anp.zeros_like(g)),
            lambda g, ans, c, x=None, y=None: where(c, anp.zeros_like(g), g))
    _override(primitive_vjps, where, lambda: defvjp(where, *vjps))
    _override(primitive_jvps, where, lambda: defjvp(where, *jvps))


def _trace_vjp(ans, x, offset=0):
    """Replaces numpy_vjps.py:206-211 (VJP of trace): it built a host float64 ``anp.eye``."""
    eye = _device_module(x).eye(x.shape[0], x.shape[1], k=offset, dtype=anp.result_type(x))
    return lambda g: anp.einsum("ij,...->ij...", eye, g)


def _log_constant_rules():
    """Replaces numpy_vjps.py:164, 167-168 and numpy_jvps.py:115, 118-119 (exp2, log2, log10):
    ``anp.log(2)`` is a NumPy float64 scalar, which NumPy 2 (and CuPy 14) promote float32 with;
    ``math.log(2)`` is a Python float, which they do not."""
    ln2, ln10 = math.log(2), math.log(10)
    rules = [(anp.exp2, lambda ans, x: lambda g: ans * ln2 * g, lambda g, ans, x: ans * ln2 * g),
             (anp.log2, lambda ans, x: lambda g: g / x / ln2, lambda g, ans, x: g / x / ln2),
             (anp.log10, lambda ans, x: lambda g: g / x / ln10, lambda g, ans, x: g / x / ln10)]
    for fun, vjp, jvp in rules:
        _override(primitive_vjps, fun, lambda fun=fun, vjp=vjp: defvjp(fun, vjp))
        _override(primitive_jvps, fun, lambda fun=fun, jvp=jvp: defjvp(fun, jvp))


def _chooser_rules():
    for fun in (anp.max, anp.min, anp.amax, anp.amin):
        _override(primitive_vjps, fun, lambda fun=fun: defvjp(fun, _chooser_vjp))
        _override(primitive_jvps, fun, lambda fun=fun: defjvp(fun, _chooser_jvp))


def _balanced_eq_rules():
    numpy_jvps.balanced_eq = _rebind(numpy_vjps, "balanced_eq", _balanced_eq)  # numpy_jvps imports it


def _fixes():
    """Every replaced rule of autograd 1.9.1: (the file:line it replaces, what broke, apply).
    The functions above say why each broke and what replaces it; ``tests/test_device_purity.py``
    exercises each, to second order, against NumPy and autograd's ``check_grads``."""
    return [
        ("numpy_vjps.py:416-427", "sum, mean, prod, var, std: host zeros, int64 count",
         lambda: _rebind(numpy_vjps, "repeat_to_match_shape", repeat_to_match_shape)),
        ("numpy_vjps.py:515-530", "max, min: int64 count -> float64", _chooser_rules),
        ("numpy_vjps.py:941-950", "indexing: onp.add.at", lambda: _replace_forward(
            numpy_vjps.untake, _untake, on_device=lambda x, idx, vs: isinstance(vs, DeviceVSpace))),
        ("numpy_wrapper.py:57-59", "concatenate: .view(ndarray)",
         lambda: _replace_forward(numpy_wrapper.concatenate_args, _concatenate_args)),
        ("numpy_wrapper.py:100-102", "array(x): __array__", lambda: _replace_forward(
            numpy_wrapper._array_from_scalar_or_array, _array_from_scalar_or_array)),
        ("numpy_wrapper.py:105-107", "array(list), stack: __array__",
         lambda: _replace_forward(numpy_wrapper.array_from_args, _array_from_args)),
        ("numpy_wrapper.py:171-185", "diagonal's VJP: host float64 zeros, flags.writeable",
         lambda: _replace_forward(numpy_wrapper.make_diagonal, _make_diagonal)),
        ("numpy_vjps.py:615-624", "dot wrt A: onp.asarray",
         lambda: _replace_forward(numpy_vjps.dot_adjoint_0, _dot_adjoint_0)),
        ("numpy_vjps.py:627-638", "dot wrt B: onp.asarray",
         lambda: _replace_forward(numpy_vjps.dot_adjoint_1, _dot_adjoint_1)),
        ("numpy_vjps.py:666-691", "tensordot, inner wrt A: host axes",
         lambda: _replace_forward(numpy_vjps.tensordot_adjoint_0, _tensordot_adjoint_0)),
        ("numpy_vjps.py:694-719", "tensordot, inner wrt B: host axes",
         lambda: _replace_forward(numpy_vjps.tensordot_adjoint_1, _tensordot_adjoint_1)),
        ("numpy_vjps.py:225-230", "where: host float64 zeros (and numpy_jvps.py:147-152)", _where_vjps),
        ("numpy_vjps.py:206-211", "trace: host float64 eye",
         lambda: _override(primitive_vjps, anp.trace, lambda: defvjp(anp.trace, _trace_vjp))),
        ("numpy_vjps.py:815-857", "einsum: asanyarray in the parser, host float64 ones",
         lambda: _override(primitive_vjps, anp.einsum, lambda: defvjp_argnum(anp.einsum, _grad_einsum))),
        ("numpy_vjps.py:407-410", "transpose: host argsort axes",
         lambda: _override(primitive_vjps, anp.transpose, lambda: defvjp(anp.transpose, _grad_transpose))),
        ("numpy_vjps.py:192", "reshape: order=None",
         lambda: _override(primitive_vjps, anp.reshape, lambda: defvjp(anp.reshape, _reshape_vjp))),
        ("numpy_vjps.py:199", "ravel: order=None",
         lambda: _override(primitive_vjps, anp.ravel, lambda: defvjp(anp.ravel, _ravel_vjp))),
        ("numpy_vjps.py:798-801", "sort, partition: host inverse permutation",
         lambda: _rebind(numpy_vjps, "unpermuter", _unpermuter)),
        ("numpy_vjps.py:911-912", "maximum, minimum: bool / float -> float64", _balanced_eq_rules),
        ("numpy_vjps.py:164-168", "exp2, log2, log10: NumPy float64 log(2) (and numpy_jvps.py:115-119)",
         _log_constant_rules),
    ]


def _patch():
    for _location, _what, apply in _fixes():
        apply()
