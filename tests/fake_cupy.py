"""A strict stand-in for the module ``cupy``: proves the CuPy backend device-pure on a CPU.

The device-purity tests put it in ``sys.modules["cupy"]``, so ``backend.use("cupy")`` runs the very
code path it runs on a GPU. Its ``ndarray`` computes with NumPy inside, but behaves like a CuPy
array that never goes to the host unless asked, and it is at least as strict as CuPy 14
(``cupy/_core/core.pyx``), stricter where CuPy would copy silently:

- ``__array__`` raises, as in CuPy, so ``numpy.asarray(x)``, ``np.array(x)`` and any NumPy function
  without ``__array_function__`` dispatch fail where they are called; so do ``tolist``,
  ``tobytes``, iteration and pickling (CuPy syncs for these; here they are refused);
- ``float``/``int``/``complex`` need a 0-d array and ``bool`` a one-element one (a sync in CuPy);
  there is no ``__index__`` (CuPy has none), so a device scalar cannot index a host sequence;
- a host ``numpy.ndarray`` operand (any ndim) in an operator, ufunc, array function, index or
  assignment raises TypeError; Python and NumPy scalars are fine, with NumPy 2 promotion
  (``float32 * np.float64(2)`` is float64, as on CuPy 14);
- NumPy ufuncs dispatch here only through ``__call__`` (CuPy: no ``reduce``/``at``/``accumulate``),
  NumPy functions only if CuPy has a function of that name (``_CUPY_FUNCTIONS``); ``a @ b`` calls
  CuPy's matmul directly, which does not defer to an autograd box on the right, as on CuPy;
- argument forms CuPy refuses are refused: ``order=None`` (CuPy's ``_normalize_order`` takes
  ``len(order)``), ``reshape(a, shape=...)`` (CuPy's keyword is ``newshape``), ``view(type)``,
  ``flags.writeable``; reductions return 0-d device arrays, never host scalars;
- ``cupy.random.Generator`` has CuPy's methods only (no ``permutation``/``choice``/``normal``), and
  its bit generator keeps its whole state in a device array ``_state`` (cuRAND's state on CuPy).

``asnumpy`` and ``ndarray.get()`` are the only ways to the host; ``asarray``/``array`` of host data
are the explicit way to the device. Every refusal is a ``HostTransferError`` (a TypeError) that
names the operation, so a traceback points at the line that leaked.
"""
import functools
import numbers
import sys
import types

import numpy as _np

__version__ = "14.0.0+fake"


class HostTransferError(TypeError):
    """An implicit device-to-host conversion, or host data mixed into a device computation."""


def _refuse(what):
    raise HostTransferError(f"fake cupy: {what} (an implicit host transfer; use cupy.asnumpy / "
                            f"cupy.asarray explicitly)")


# CuPy's own functions, by name (CuPy 13/14 API reference): NumPy functions with one of these
# names dispatch to the device; others raise TypeError, as on CuPy (NotImplemented there).
_CUPY_FUNCTIONS = frozenset("""
    abs absolute add all allclose amax amin angle any append arange arccos arccosh arcsin arcsinh
    arctan arctan2 arctanh argmax argmin argpartition argsort argwhere around array_equal
    array_split asanyarray ascontiguousarray astype atleast_1d atleast_2d atleast_3d average
    bincount bitwise_and bitwise_not bitwise_or bitwise_xor broadcast_arrays broadcast_to
    can_cast cbrt ceil choose clip column_stack compress concatenate conj conjugate copy copysign
    copyto corrcoef cos cosh count_nonzero cov cross cumprod cumsum deg2rad degrees diag diagflat
    diagonal diff digitize divide divmod dot dsplit dstack einsum empty empty_like equal exp exp2
    expand_dims expm1 extract eye fabs fill_diagonal fix flatnonzero flip fliplr flipud float_power
    floor floor_divide fmax fmin fmod full full_like greater greater_equal histogram hsplit hstack
    hypot identity imag indices inner invert isclose iscomplex iscomplexobj isfinite isinf isnan
    isreal isrealobj isscalar ix_ kron ldexp left_shift less less_equal lexsort linspace log log10
    log1p log2 logaddexp logaddexp2 logical_and logical_not logical_or logical_xor logspace matmul
    max maximum mean median meshgrid min minimum mod moveaxis multiply nan_to_num nanargmax
    nanargmin nanmax nanmean nanmin nanprod nanstd nansum nanvar ndim negative nextafter nonzero
    not_equal ones ones_like outer pad partition percentile place positive power prod ptp put
    quantile rad2deg radians ravel ravel_multi_index real reciprocal remainder repeat reshape
    result_type right_shift rint roll rollaxis rot90 round searchsorted select shape sign signbit
    sin sinc sinh size sort split sqrt square squeeze stack std subtract sum swapaxes take
    take_along_axis tan tanh tensordot tile trace transpose tri tril tril_indices tril_indices_from
    triu triu_indices triu_indices_from true_divide trunc unique unravel_index var vdot vsplit
    vstack where zeros zeros_like interp isin convolve correlate gradient ediff1d heaviside
""".split())
_CUPY_LINALG = frozenset("cholesky det eigh eigvalsh inv lstsq matrix_power norm pinv qr slogdet "
                         "solve svd tensorinv tensorsolve".split())
# methods of cupy.ndarray (those that also exist on numpy.ndarray and compute on the device)
_CUPY_METHODS = frozenset("""
    all any argmax argmin argpartition argsort astype choose clip compress conj conjugate copy
    cumprod cumsum diagonal dot fill flatten max mean min nonzero partition prod ptp put ravel
    repeat reshape round sort squeeze std sum swapaxes take trace transpose var
""".split())
# non-function names CuPy re-exports from NumPy (dtypes, constants, type objects)
_NUMPY_NAMES = frozenset("""
    bool_ complex64 complex128 complexfloating dtype e euler_gamma finfo float16 float32 float64
    floating generic iinfo inexact inf int8 int16 int32 int64 int_ integer intp nan newaxis number
    pi signedinteger uint8 uint16 uint32 uint64 unsignedinteger promote_types issubdtype
""".split())
_SCALAR_TYPES = (numbers.Number, _np.generic)  # CuPy's _scalar.scalar_type_set, roughly


def _is_foreign_array(obj):
    """An array-like of another library (an autograd Box, a torch tensor, ...)."""
    return not isinstance(obj, (ndarray, _np.ndarray, _np.generic, type)) and (
        hasattr(obj, "__array_ufunc__") or hasattr(obj, "__array__")
        or hasattr(obj, "__array_function__"))


def _unwrap(obj, where):
    """Device arrays -> their NumPy payload, recursively through lists, tuples and dicts. A host
    numpy.ndarray raises (CuPy refuses them as operands); so does another library's array-like,
    which CuPy's kernels cannot take either."""
    if isinstance(obj, ndarray):
        return obj._a
    if isinstance(obj, _np.ndarray):
        raise HostTransferError(f"fake cupy: {where} got a host numpy.ndarray {obj.shape} {obj.dtype}; "
                                f"CuPy refuses host arrays as operands (move it with cupy.asarray)")
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(_unwrap(o, where) for o in obj)
    if isinstance(obj, dict):
        return {k: _unwrap(v, where) for k, v in obj.items()}
    if isinstance(obj, type) and issubclass(obj, ndarray):
        raise TypeError(f"fake cupy: {where} got the type cupy.ndarray as an argument")
    if _is_foreign_array(obj):
        raise TypeError(f"fake cupy: {where} got a {type(obj).__module__}.{type(obj).__name__}; "
                        "CuPy's device functions take cupy.ndarray and scalars only")
    return obj


def _wrap(obj):
    """NumPy results -> device arrays; NumPy scalars become 0-d device arrays (CuPy's reductions
    return 0-d arrays). Python scalars, shapes, dtypes and the like are returned as they are."""
    if isinstance(obj, _np.ndarray):
        return ndarray._from(obj)
    if isinstance(obj, _np.generic) and not isinstance(obj, (_np.str_, _np.bytes_)):
        return ndarray._from(_np.asarray(obj))
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # named tuples (linalg results)
        return type(obj)(*(_wrap(o) for o in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(_wrap(o) for o in obj)
    return obj


def _check_kwargs(name, kwargs):
    """Argument forms CuPy refuses although NumPy accepts them."""
    if "order" in kwargs and kwargs["order"] is None:
        raise TypeError(f"fake cupy: {name}(order=None): CuPy's _normalize_order takes len(order); "
                        "pass 'C' (or omit it)")
    if name.endswith("reshape") and "shape" in kwargs:
        raise TypeError(f"fake cupy: {name}(shape=...): CuPy's keyword is newshape; pass the shape "
                        "positionally")


def _call(func, name, args, kwargs):
    _check_kwargs(name, kwargs)
    out = kwargs.get("out")
    result = func(*_unwrap(args, name), **_unwrap(kwargs, name))
    if out is not None:
        return out[0] if isinstance(out, tuple) and len(out) == 1 else out
    return _wrap(result)


@functools.lru_cache(maxsize=None)
def _device_function(module_name, name):
    """NumPy's ``module.name`` on device arrays, or None if CuPy has no such function."""
    if module_name == "numpy" and name in _CUPY_FUNCTIONS:
        target = getattr(_np, name)
    elif module_name == "numpy.linalg" and name in _CUPY_LINALG:
        target = getattr(_np.linalg, name)
    else:
        return None
    qualified = "cupy." + ("linalg." if module_name == "numpy.linalg" else "") + name

    def function(*args, **kwargs):
        return _call(target, qualified, args, kwargs)

    function.__name__ = function.__qualname__ = name
    return function


def _should_use_rop(x, y):
    """CuPy's rule (core.pyx): defer to y's reflected operator only if y opts out of ufuncs."""
    try:
        y_ufunc = y.__array_ufunc__
    except AttributeError:
        return getattr(x, "__array_priority__", 0) < getattr(y, "__array_priority__", 0)
    return y_ufunc is None


class _Flags:
    """cupy's flags: c_contiguous, f_contiguous, owndata, read-only (no ``writeable``)."""

    __slots__ = ("c_contiguous", "f_contiguous", "owndata")

    def __init__(self, a):
        for name in self.__slots__:
            object.__setattr__(self, name, bool(getattr(a.flags, name)))

    def __setattr__(self, name, value):
        raise AttributeError(f"fake cupy: flags.{name} cannot be set (CuPy's flags are read-only "
                             "and have no 'writeable')")


class ndarray:
    """A device array: computes with the NumPy array inside, never leaves the device implicitly."""

    __slots__ = ("_a",)
    __hash__ = None
    __array_priority__ = 100  # CuPy's

    def __init__(self, shape, dtype=float):
        object.__setattr__(self, "_a", _np.empty(shape, dtype=dtype))

    @classmethod
    def _from(cls, payload):
        self = object.__new__(cls)
        object.__setattr__(self, "_a", payload)
        return self

    # ---- NumPy protocols: dispatch in, refuse conversion out
    def __array__(self, *args, **kwargs):
        _refuse("__array__ of a device array (numpy.asarray, np.array or a NumPy function that "
                "does not dispatch)")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        outs = kwargs.get("out", ())
        if method != "__call__":
            return NotImplemented  # CuPy: only __call__ (np.add.at etc. raise TypeError)
        if ufunc.__name__ not in _CUPY_FUNCTIONS:
            return NotImplemented
        for x in inputs + tuple(outs):
            if not isinstance(x, (ndarray, _np.ndarray) + _SCALAR_TYPES):
                return NotImplemented  # e.g. an autograd box: let it handle the call
        for x in outs:
            if not isinstance(x, ndarray):
                _refuse(f"{ufunc.__name__}(out=...) into a host array")
        return _call(ufunc, ufunc.__name__, inputs, kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        function = _device_function(func.__module__, func.__name__)
        if function is None:
            return NotImplemented  # NumPy then raises TypeError: CuPy has no such function
        return function(*args, **kwargs)

    # ---- the explicit way to the host, and the one-element syncs CuPy allows
    def get(self, stream=None, order="C", out=None):
        if out is not None:
            out[...] = self._a
            return out
        return _np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        if not isinstance(arr, _np.ndarray) or arr.shape != self.shape or arr.dtype != self.dtype:
            raise TypeError("fake cupy: set() takes a numpy.ndarray of the same shape and dtype")
        self._a[...] = arr

    def tolist(self):
        _refuse("tolist() of a device array")

    def tobytes(self, order="C"):
        _refuse("tobytes() of a device array")

    def __iter__(self):
        _refuse(f"iteration over a device array of shape {self._a.shape} (CuPy launches one "
                "kernel per element)")

    def __reduce__(self):
        _refuse("pickling a device array")

    def _scalar(self, kind):
        if self._a.ndim != 0:
            _refuse(f"{kind}() of a device array of shape {self._a.shape} (only 0-d arrays)")
        return self._a[()]

    def __float__(self):
        return float(self._scalar("float"))

    def __int__(self):
        return int(self._scalar("int"))

    def __complex__(self):
        return complex(self._scalar("complex"))

    def __bool__(self):
        if self._a.size != 1:
            if self._a.size == 0:
                _refuse("bool() of an empty device array")
            raise ValueError("The truth value of an array with more than one element is ambiguous. "
                             "Use a.any() or a.all()")
        return bool(self._a.reshape(()))

    def item(self):
        if self._a.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self._a.reshape(()).item()

    def __len__(self):
        if self._a.ndim == 0:
            raise TypeError("len() of unsized object")
        return self._a.shape[0]

    def __repr__(self):
        return "fake_cupy." + repr(self._a)

    __str__ = __repr__

    def __format__(self, spec):
        return repr(self) if not spec else format(self._scalar("format"), spec)

    def __copy__(self):
        return ndarray._from(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray._from(self._a.copy())

    # ---- attributes
    shape = property(lambda self: self._a.shape)
    ndim = property(lambda self: self._a.ndim)
    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: _Flags(self._a))
    T = property(lambda self: ndarray._from(self._a.T))
    real = property(lambda self: ndarray._from(_np.asarray(self._a.real)))
    imag = property(lambda self: ndarray._from(_np.asarray(self._a.imag)))

    def __getattr__(self, name):
        # CuPy's methods run on the payload, device arguments unwrapped, results rewrapped
        if name not in _CUPY_METHODS:
            raise AttributeError(f"fake cupy: 'cupy.ndarray' has no attribute {name!r} in the "
                                 "stand-in (CuPy's ndarray methods only)")
        method = getattr(self._a, name)
        return lambda *args, **kwargs: _call(method, f"ndarray.{name}", args, kwargs)

    def __setattr__(self, name, value):
        if name != "shape":
            raise AttributeError(f"fake cupy: cannot set attribute {name!r}")
        self._a.shape = value

    def view(self, dtype=None):
        if isinstance(dtype, type) and not issubclass(dtype, _np.generic):
            raise TypeError(f"fake cupy: view({dtype.__name__}): CuPy's view takes a dtype only")
        return ndarray._from(self._a.view() if dtype is None else self._a.view(dtype))

    def scatter_add(self, slices, value):
        """cupyx.scatter_add(self, slices, value): unbuffered += (repeated indices add up)."""
        _np.add.at(self._a, _unwrap(slices, "scatter_add (index)"), _unwrap(value, "scatter_add"))

    # ---- indexing (lists of ints are fine, as in CuPy; host arrays are not)
    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key, "__getitem__ (index)")])

    def __setitem__(self, key, value):
        self._a[_unwrap(key, "__setitem__ (index)")] = _unwrap(value, "__setitem__ (value)")

    # ---- operators, with CuPy's dispatch rules (core.pyx)
    def __matmul__(self, other):
        if not isinstance(other, ndarray) and _should_use_rop(self, other):
            return NotImplemented
        return matmul(self, other)  # CuPy's matmul, called directly: an autograd box is refused

    def __rmatmul__(self, other):
        return matmul(other, self)


def _binary(ufunc):
    def op(self, other):
        if isinstance(other, ndarray):
            return _call(ufunc, ufunc.__name__, (self, other), {})
        if _should_use_rop(self, other):
            return NotImplemented
        return ufunc(self, other)  # NumPy's ufunc dispatch: __array_ufunc__ of both operands

    def rop(self, other):
        return ufunc(other, self)

    def iop(self, other):
        _call(ufunc, ufunc.__name__, (self, other), {"out": (self,)})  # CuPy: direct, in place
        return self

    return op, rop, iop


for _name, _ufunc in [("add", _np.add), ("sub", _np.subtract), ("mul", _np.multiply),
                      ("truediv", _np.true_divide), ("floordiv", _np.floor_divide),
                      ("mod", _np.remainder), ("pow", _np.power), ("and", _np.bitwise_and),
                      ("or", _np.bitwise_or), ("xor", _np.bitwise_xor), ("lshift", _np.left_shift),
                      ("rshift", _np.right_shift)]:
    _op, _rop, _iop = _binary(_ufunc)
    setattr(ndarray, f"__{_name}__", _op)
    setattr(ndarray, f"__r{_name}__", _rop)
    setattr(ndarray, f"__i{_name}__", _iop)
for _name, _ufunc in [("lt", _np.less), ("le", _np.less_equal), ("gt", _np.greater),
                      ("ge", _np.greater_equal), ("eq", _np.equal), ("ne", _np.not_equal)]:
    setattr(ndarray, f"__{_name}__", _binary(_ufunc)[0])
for _name, _ufunc in [("neg", _np.negative), ("abs", _np.absolute), ("invert", _np.invert)]:
    setattr(ndarray, f"__{_name}__", lambda self, _ufunc=_ufunc: _call(_ufunc, _ufunc.__name__, (self,), {}))
ndarray.__pos__ = lambda self: self


# ---------------------------------------------------------------- the module namespace
def matmul(x1, x2, out=None):
    """CuPy's matmul (a generalized ufunc taking cupy.ndarray operands)."""
    kwargs = {} if out is None else {"out": (out,)}
    return _call(_np.matmul, "cupy.matmul", (x1, x2), kwargs)


def asnumpy(a, stream=None, order="C", out=None):
    """The explicit device-to-host copy."""
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out)
    return _np.asarray(a, order=order)


def _host_value(a):
    """Input of asarray/array: device arrays (also inside lists, as CuPy accepts) unwrapped, host
    data taken as it is: the explicit host-to-device copy."""
    if isinstance(a, ndarray):
        return a._a
    if isinstance(a, (list, tuple)):
        return [_host_value(x) for x in a]
    if _is_foreign_array(a) and not isinstance(a, memoryview):
        raise TypeError(f"fake cupy: asarray of a {type(a).__name__}")
    return a


def asarray(a, dtype=None, order=None, *, blocking=False):
    if isinstance(a, ndarray) and (dtype is None or _np.dtype(dtype) == a.dtype):
        return a
    return ndarray._from(_np.array(_host_value(a), dtype=dtype, copy=not isinstance(a, ndarray) or None))


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    return ndarray._from(_np.array(_host_value(obj), dtype=dtype, copy=True, order=order, ndmin=ndmin))


def get_array_module(*args):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else _np


def __getattr__(name):
    """CuPy's functions that are NumPy's, device-wrapped; NumPy's dtypes and constants."""
    if name in _NUMPY_NAMES:
        return getattr(_np, name)
    function = _device_function("numpy", name)
    if function is None:
        raise AttributeError(f"fake cupy: module 'cupy' has no attribute {name!r} in the stand-in")
    return function


class _Linalg(types.ModuleType):
    def __getattr__(self, name):
        function = _device_function("numpy.linalg", name)
        if function is None:
            raise AttributeError(f"fake cupy: module 'cupy.linalg' has no attribute {name!r}")
        return function


linalg = _Linalg("cupy.linalg")


# ---------------------------------------------------------------- random: CuPy's Generator API
class XORWOW:
    """A bit generator whose whole state lives in a device array ``_state`` (int8), as cuRAND's
    state does on CuPy (``cupy/random/_bit_generator.pyx``): copying ``_state`` out and back in
    restores the stream. Inside, a NumPy PCG64 whose state is loaded from and stored to
    ``_state`` around every draw. ``state()`` is a method returning a pointer, as on CuPy."""

    _WORDS = 5  # state (128 bits), inc (128 bits), has_uint32, uinteger: 5 x 64-bit words

    def __init__(self, seed=None):
        if isinstance(seed, ndarray):
            seed = asnumpy(seed)
        self._seed_seq = _np.random.SeedSequence(seed)
        self._bits = _np.random.PCG64(self._seed_seq)
        self._state = ndarray._from(_np.zeros(8 * 2 * self._WORDS, dtype=_np.int8))
        self._store()

    def state(self):
        return self._state._a.ctypes.data  # a pointer, as on CuPy

    def _store(self):
        s = self._bits.state
        words = [s["state"]["state"], s["state"]["inc"]]
        halves = [w >> (64 * k) & (2 ** 64 - 1) for w in words for k in (0, 1)]
        packed = _np.array(halves + [s["has_uint32"], s["uinteger"], 0, 0, 0, 0], dtype=_np.uint64)
        self._state._a[...] = packed[:2 * self._WORDS].view(_np.int8)

    def _load(self):
        w = [int(v) for v in self._state._a.view(_np.uint64)]
        self._bits.state = {"bit_generator": "PCG64",
                            "state": {"state": w[0] | w[1] << 64, "inc": w[2] | w[3] << 64},
                            "has_uint32": w[4], "uinteger": w[5]}

    def _draw(self, method, *args, **kwargs):
        self._load()
        out = getattr(_np.random.Generator(self._bits), method)(*args, **kwargs)
        self._store()
        return ndarray._from(_np.asarray(out))


class Generator:
    """cupy.random.Generator's methods (``_generator_api.pyx``); draws are device arrays."""

    def __init__(self, bit_generator):
        self.bit_generator = bit_generator

    def random(self, size=None, dtype=_np.float64, out=None):
        return self.bit_generator._draw("random", size, dtype=dtype)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=_np.float64):
        return self.bit_generator._draw("uniform", low, high, size).astype(dtype)

    def standard_normal(self, size=None, dtype=_np.float64, out=None):
        if _np.dtype(dtype).char not in "fd":
            raise TypeError(f"Unsupported dtype {_np.dtype(dtype).name} for standard_normal")
        return self.bit_generator._draw("standard_normal", size, dtype=dtype)

    def standard_exponential(self, size=None, dtype=_np.float64, method="inv", out=None):
        return self.bit_generator._draw("standard_exponential", size, dtype=dtype)

    def exponential(self, scale=1.0, size=None):
        return self.standard_exponential(size) * scale

    def integers(self, low, high=None, size=None, dtype=_np.int64, endpoint=False):
        low, high = (0, int(low)) if high is None else (int(low), int(high))
        return self.bit_generator._draw("integers", low, high, size, dtype=dtype, endpoint=endpoint)


def default_rng(seed=None):
    return Generator(XORWOW(seed))


random = types.SimpleNamespace(default_rng=default_rng, Generator=Generator, XORWOW=XORWOW)
cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
                             get_device_id=lambda: 0)
