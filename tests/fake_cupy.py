"""A strict stand-in for the ``cupy`` module, to prove the CuPy backend device-pure on a CPU.

Installed as ``sys.modules["cupy"]`` by the device-purity tests (issue 9). Its ``ndarray``
computes with NumPy inside but behaves like a device array that refuses every implicit trip to
the host, at least as strictly as CuPy:

- ``__array__``, ``__array_interface__``, ``tolist``, ``tobytes`` and iteration raise, so
  ``numpy.asarray(x)`` or ``list(x)`` on a device array fails where it happens;
- ``float``/``int``/``bool``/``item`` work only on one-element arrays (CuPy syncs for those);
- a host ``numpy.ndarray`` operand in an operator, ufunc or array function raises TypeError
  naming the operation (Python and NumPy scalars are fine, as in CuPy; NumPy scalars keep
  their NumPy 2 promotion, so ``float32 * np.float64(2)`` is float64 here too);
- reductions return 0-d device arrays, never host scalars.

``asnumpy`` and ``ndarray.get()`` are the only ways off the device; ``asarray``/``array`` of a
host array is the explicit way on. Module attributes not defined here are NumPy's functions,
wrapped: device arguments are unwrapped, host array arguments refused, array results rewrapped.
NumPy's own functions called on a device array dispatch here through ``__array_function__`` /
``__array_ufunc__``, as they do for CuPy arrays (that is how ``autograd.numpy`` reaches CuPy).
"""
import numbers
import types

import numpy as _np

__version__ = "14.0.0-fake"


class HostTransferError(TypeError):
    """An implicit device-to-host conversion or a host array mixed with device arrays."""


def _refuse(what):
    raise HostTransferError(f"fake cupy: {what} (implicit host transfer; use cupy.asnumpy)")


def _unwrap(obj, where):
    """Device arrays -> their NumPy payload, recursively through lists/tuples/dicts; a host
    ndarray with ndim > 0 raises (CuPy refuses them as operands)."""
    if isinstance(obj, ndarray):
        return obj._a
    if isinstance(obj, _np.ndarray):
        if obj.ndim > 0:
            raise HostTransferError(f"fake cupy: {where} got a host numpy.ndarray {obj.shape} "
                                    f"{obj.dtype} operand; move it with cupy.asarray first")
        return obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(o, where) for o in obj)
    if isinstance(obj, dict):
        return {k: _unwrap(v, where) for k, v in obj.items()}
    return obj


def _wrap(obj):
    """NumPy arrays and scalars -> device arrays (0-d for scalars), recursively in tuples/lists."""
    if isinstance(obj, _np.ndarray):
        return ndarray(obj)
    if isinstance(obj, _np.generic) and not isinstance(obj, (_np.str_, _np.bytes_)):
        return ndarray(_np.asarray(obj))
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return tuple(_wrap(o) for o in obj)
    if isinstance(obj, tuple):  # named tuples (linalg results)
        return type(obj)(*(_wrap(o) for o in obj))
    if isinstance(obj, list):
        return [_wrap(o) for o in obj]
    return obj


_SCALARS = (numbers.Number, _np.generic, type(None), slice, type(Ellipsis), str, _np.dtype, type)


def _foreign(objs):
    """True if some operand is neither ours, NumPy's, nor a scalar (e.g. an autograd Box): let
    it handle the operation (as CuPy does for objects of higher __array_priority__)."""
    for o in objs:
        if isinstance(o, (list, tuple)):
            if _foreign(o):
                return True
        elif not isinstance(o, (ndarray, _np.ndarray) + _SCALARS):
            return True
    return False


def _call(func, name, args, kwargs):
    out = kwargs.get("out")
    result = func(*_unwrap(args, name), **_unwrap(kwargs, name))
    if out is not None:  # ufuncs get out as a tuple (NumPy normalises it)
        return out[0] if isinstance(out, tuple) and len(out) == 1 else out
    return _wrap(result)


class ndarray:
    """A device array: a NumPy array that never leaves the 'device' implicitly."""

    __slots__ = ("_a",)
    __hash__ = None

    def __init__(self, a):
        if not isinstance(a, _np.ndarray):
            raise TypeError(f"fake cupy: ndarray wraps a numpy.ndarray, got {type(a).__name__}")
        object.__setattr__(self, "_a", a)

    # ---- NumPy protocols: dispatch in, refuse conversion out
    def __array__(self, *args, **kwargs):
        _refuse("__array__ called on a device array (numpy.asarray / np.array / a host function)")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if _foreign(inputs) or _foreign(kwargs.get("out", ())):
            return NotImplemented
        name = f"{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
        if method == "at" and not isinstance(inputs[1], ndarray):
            # CuPy's ufunc.at does cupy.asarray(indices): slices and tuples of them fail there
            raise TypeError(f"fake cupy: {name} takes a device integer index array, got "
                            f"{type(inputs[1]).__name__} (CuPy's ufunc_at calls cupy.asarray on "
                            "it); use cupyx.scatter_add for slices")
        return _call(getattr(ufunc, method), name, inputs, kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        if _foreign(args) or _foreign(tuple(kwargs.values())):
            return NotImplemented
        return _call(func, func.__name__, args, kwargs)

    # ---- host conversion: only explicit, or for one element (a sync in CuPy)
    def get(self):
        return self._a.copy()

    def tolist(self):
        _refuse("tolist() on a device array")

    def tobytes(self, *args, **kwargs):
        _refuse("tobytes() on a device array")

    def __iter__(self):
        _refuse(f"iteration over a device array of shape {self._a.shape}")

    def _one(self, kind):
        if self._a.size != 1:
            _refuse(f"{kind}() of a device array of shape {self._a.shape}")
        return self._a

    def __float__(self):
        return float(self._one("float").reshape(()))

    def __int__(self):
        return int(self._one("int").reshape(()))

    def __complex__(self):
        return complex(self._one("complex").reshape(()))

    def __bool__(self):
        return bool(self._one("bool").reshape(()))

    def __index__(self):
        if self._a.ndim != 0 or self._a.dtype.kind not in "iu":
            _refuse(f"__index__ of a device array of shape {self._a.shape} {self._a.dtype}")
        return int(self._a)

    def item(self):
        return self._one("item").reshape(()).item()

    def __len__(self):
        if self._a.ndim == 0:
            raise TypeError("len() of unsized object")
        return self._a.shape[0]

    def __repr__(self):
        return f"fake_cupy.{self._a!r}"

    __str__ = __repr__

    # ---- attributes
    shape = property(lambda self: self._a.shape)
    ndim = property(lambda self: self._a.ndim)
    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: ndarray(self._a.T))
    real = property(lambda self: ndarray(_np.asarray(self._a.real)))
    imag = property(lambda self: ndarray(_np.asarray(self._a.imag)))
    flags = property(lambda self: self._a.flags)

    def __getattr__(self, name):
        # methods (sum, mean, max, reshape, astype, ravel, transpose, copy, ...) run on the
        # payload with device arguments unwrapped and array results rewrapped
        if name.startswith("__") or name in ("base", "ctypes", "data", "flat"):
            raise AttributeError(f"fake cupy: ndarray has no attribute {name!r}")
        attr = getattr(self._a, name)
        if callable(attr):
            return lambda *args, **kwargs: _call(attr, f"ndarray.{name}", args, kwargs)
        return _wrap(attr)

    def __setattr__(self, name, value):
        if name == "shape":
            self._a.shape = value
            return
        raise AttributeError(f"fake cupy: cannot set attribute {name!r}")

    # ---- indexing
    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key, "__getitem__ (index)")])

    def __setitem__(self, key, value):
        self._a[_unwrap(key, "__setitem__ (index)")] = _unwrap(value, "__setitem__ (value)")


def _binary(ufunc, reflected=False):
    def op(self, other):
        if not isinstance(other, (ndarray, _np.ndarray, numbers.Number, _np.generic)):
            return NotImplemented
        return ufunc(other, self) if reflected else ufunc(self, other)
    return op


def _inplace(ufunc):
    def op(self, other):
        if not isinstance(other, (ndarray, _np.ndarray, numbers.Number, _np.generic)):
            return NotImplemented
        return ufunc(self, other, out=self)
    return op


for _name, _uf in [("add", _np.add), ("sub", _np.subtract), ("mul", _np.multiply),
                   ("truediv", _np.true_divide), ("floordiv", _np.floor_divide), ("mod", _np.remainder),
                   ("pow", _np.power), ("matmul", _np.matmul), ("and", _np.bitwise_and),
                   ("or", _np.bitwise_or), ("xor", _np.bitwise_xor), ("lshift", _np.left_shift),
                   ("rshift", _np.right_shift)]:
    setattr(ndarray, f"__{_name}__", _binary(_uf))
    setattr(ndarray, f"__r{_name}__", _binary(_uf, reflected=True))
    setattr(ndarray, f"__i{_name}__", _inplace(_uf))
for _name, _uf in [("lt", _np.less), ("le", _np.less_equal), ("gt", _np.greater),
                   ("ge", _np.greater_equal), ("eq", _np.equal), ("ne", _np.not_equal)]:
    setattr(ndarray, f"__{_name}__", _binary(_uf))
for _name, _uf in [("neg", _np.negative), ("pos", _np.positive), ("abs", _np.absolute),
                   ("invert", _np.invert)]:
    setattr(ndarray, f"__{_name}__", lambda self, _uf=_uf: _uf(self))


# ---- module level
float16, float32, float64 = _np.float16, _np.float32, _np.float64
int8, int16, int32, int64 = _np.int8, _np.int16, _np.int32, _np.int64
uint8, uint32, uint64 = _np.uint8, _np.uint32, _np.uint64
bool_, complex64, complex128 = _np.bool_, _np.complex64, _np.complex128
dtype, newaxis, pi, e, inf, nan = _np.dtype, None, _np.pi, _np.e, _np.inf, _np.nan


def asnumpy(a, stream=None):
    """The explicit device-to-host copy."""
    return a._a.copy() if isinstance(a, ndarray) else _np.asarray(a)


def _host_value(a):
    """Input of asarray/array: device arrays (also inside lists, as CuPy accepts) unwrapped;
    host arrays and Python data taken as they are (the explicit host-to-device copy)."""
    if isinstance(a, ndarray):
        return a._a
    if isinstance(a, (list, tuple)):
        return [_host_value(x) for x in a]
    return a


def asarray(a, dtype=None, order=None):
    if isinstance(a, ndarray) and (dtype is None or _np.dtype(dtype) == a.dtype):
        return a
    return ndarray(_np.asarray(_host_value(a), dtype=dtype))


def array(a, dtype=None, copy=True, ndmin=0):
    return ndarray(_np.array(_host_value(a), dtype=dtype, copy=copy, ndmin=ndmin))


def __getattr__(name):
    """Any other NumPy function, device-wrapped (see the module docstring)."""
    target = getattr(_np, name, None)
    if target is None or not callable(target) or isinstance(target, type):
        raise AttributeError(f"fake cupy: module has no attribute {name!r}")
    func = lambda *args, **kwargs: _call(target, f"cupy.{name}", args, kwargs)
    func.__name__ = name
    return func


class _Linalg(types.ModuleType):
    def __getattr__(self, name):
        target = getattr(_np.linalg, name)
        return lambda *args, **kwargs: _call(target, f"cupy.linalg.{name}", args, kwargs)


linalg = _Linalg("cupy.linalg")


class Generator:
    """cupy.random.Generator's used surface over numpy.random.Generator; draws are device arrays."""

    def __init__(self, seed=None):
        self._g = _np.random.default_rng(seed)
        self.bit_generator = self._g.bit_generator

    def standard_normal(self, size=None, dtype=_np.float64):
        return ndarray(_np.asarray(self._g.standard_normal(size, dtype=dtype)))

    def random(self, size=None, dtype=_np.float64):
        return ndarray(_np.asarray(self._g.random(size, dtype=dtype)))

    def integers(self, low, high=None, size=None, dtype=_np.int64, endpoint=False):
        return ndarray(_np.asarray(self._g.integers(low, high, size, dtype=dtype, endpoint=endpoint)))

    def permutation(self, n):
        if not isinstance(n, numbers.Integral):
            _refuse("Generator.permutation of an array (only an int n is supported here)")
        return ndarray(self._g.permutation(n))


random = types.SimpleNamespace(default_rng=Generator, Generator=Generator)
cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))


def _scatter_add(a, slices, value):
    """cupyx.scatter_add: a[slices] += value, accumulating repeated indices, on the device."""
    if not isinstance(a, ndarray):
        raise TypeError(f"fake cupyx: scatter_add needs a device array, got {type(a).__name__}")
    _np.add.at(a._a, _unwrap(slices, "cupyx.scatter_add (index)"),
               _unwrap(value, "cupyx.scatter_add (value)"))


cupyx = types.ModuleType("cupyx")
cupyx.scatter_add = _scatter_add
