"""The array backend: NumPy by default, CuPy on request (docs/conventions.md, "The GPU backend").

This is the only module of the package that imports numpy or cupy by name. Everything else
computes with ``backend.xp`` (the active array namespace) or ``autograd.numpy`` and makes
arrays through :func:`asarray` and :func:`default_rng`.

    import minimalscore as ms
    ms.backend.use("cupy")          # or MINIMALSCORE_BACKEND=cupy before the first import

Default precision is float32 (``float_dtype``); identities are tested in float64.
"""
import os

import numpy

xp = numpy
name = "numpy"
host = numpy  # host-side arrays (files, plots) whichever backend computes
float_dtype = numpy.float32

_GPU_HINT = ("install the GPU extra with `pip install -e .[gpu]` (CuPy for CUDA 12; for CUDA 13 "
             "`pip install cupy-cuda13x` instead), or use the default backend with use(\"numpy\")")


def use(backend):
    """Select the array backend, "numpy" or "cupy"; returns the array namespace.

    Choosing "cupy" imports CuPy, checks that a GPU is visible and teaches autograd CuPy arrays
    (``minimalscore._autograd_cupy``). A missing CuPy or GPU raises a RuntimeError saying which.
    """
    global xp, name
    if backend == "numpy":
        xp, name = numpy, "numpy"
        return xp
    if backend != "cupy":
        raise ValueError(f"backend: unknown backend {backend!r}; choose 'numpy' or 'cupy'")
    try:
        import cupy
    except ImportError as err:
        raise RuntimeError(f"backend 'cupy': CuPy is not installed ({err}); {_GPU_HINT}") from err
    try:
        n_gpus = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDA driver missing or broken: CuPy raises its own runtime errors
        raise RuntimeError(f"backend 'cupy': CuPy is installed but no usable GPU was found ({err}); "
                           "run on a machine with an NVIDIA GPU and driver, or use('numpy')") from err
    if n_gpus < 1:
        raise RuntimeError("backend 'cupy': CuPy is installed but no GPU is visible; "
                           "run on a machine with an NVIDIA GPU, or use('numpy')")
    from . import _autograd_cupy
    _autograd_cupy.install(cupy)
    xp, name = cupy, "cupy"
    return xp


def asarray(a, dtype=None):
    """``a`` as an array of the active backend (float arrays default to ``float_dtype``)."""
    a = xp.asarray(a, dtype=dtype)
    if dtype is None and a.dtype.kind == "f" and a.dtype != float_dtype:
        a = a.astype(float_dtype)
    return a


def asnumpy(a):
    """``a`` as a host NumPy array: the one explicit way off the device."""
    if name == "cupy" and isinstance(a, xp.ndarray):
        return xp.asnumpy(a)
    return numpy.asarray(a)


def is_array(a):
    """True for an array of the active backend."""
    return isinstance(a, xp.ndarray)


class RNG:
    """One random-number interface over numpy.random.Generator and cupy.random.Generator.

    Every stochastic function takes one of these as ``rng``; draws land on the active backend
    in float32 unless a dtype is given. Same seed, same backend: same numbers.
    """

    def __init__(self, seed=None, generator=None):
        self._gen = generator if generator is not None else xp.random.default_rng(seed)
        self.backend, self._xp = name, xp

    def normal(self, shape, dtype=None):
        return self._gen.standard_normal(shape, dtype=dtype or float_dtype)

    def uniform(self, low, high, shape, dtype=None):
        u = self._gen.random(shape, dtype=dtype or float_dtype)
        return u * (high - low) + low

    def integers(self, low, high, shape):
        return self._gen.integers(low, high, shape)

    def rademacher(self, shape, dtype=None):
        return self._gen.integers(0, 2, shape).astype(dtype or float_dtype) * 2 - 1

    def choice(self, n, size, p=None):
        """Indices in [0, n) drawn with probabilities ``p`` (uniform when None)."""
        if p is None:
            return self.integers(0, n, size)
        cdf = xp.cumsum(xp.asarray(p, dtype=xp.float64))
        u = self._gen.random(size, dtype=xp.float64) * cdf[-1]
        return xp.minimum(xp.searchsorted(cdf, u, side="right"), n - 1)

    def permutation(self, n):
        """A random permutation of range(n). cupy.random.Generator has no ``permutation``: on
        CuPy it is the argsort of n uniform draws (ties have probability ~ n^2 / 2^53)."""
        if self.backend == "numpy":
            return self._gen.permutation(n)
        return self._xp.argsort(self._gen.random(n))

    def get_state(self):
        """The generator's state, to checkpoint (restore with :meth:`set_state`).

        NumPy: the bit generator's state dict. CuPy: its ``state`` is a method returning a
        device pointer; the stream lives in the cuRAND state array ``bit_generator._state``
        (cupy/random/_bit_generator.pyx), copied to the host here."""
        bits = self._gen.bit_generator
        if self.backend == "numpy":
            return bits.state
        return {"bit_generator": type(bits).__name__, "curand_state": self._xp.asnumpy(bits._state)}

    def set_state(self, state):
        bits = self._gen.bit_generator
        if self.backend == "numpy":
            bits.state = state
            return
        if state.get("bit_generator") != type(bits).__name__:
            raise ValueError(f"state: a {state.get('bit_generator')} state cannot restore a "
                             f"{type(bits).__name__} generator")
        bits._state[...] = self._xp.asarray(state["curand_state"], dtype=bits._state.dtype)


def default_rng(seed=None):
    """A seeded :class:`RNG` on the active backend; ``seed`` an integer >= 0, or None for fresh
    entropy."""
    from . import checks  # checks imports this module, so it is looked up at the call
    return RNG(None if seed is None else checks.count("seed", seed, minimum=0))


_env = os.environ.get("MINIMALSCORE_BACKEND")
if _env:
    use(_env)
