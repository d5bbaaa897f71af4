"""minimalscore: score-based generative modelling from scratch, in NumPy and autograd.

    import minimalscore as ms
    ms.backend.use("numpy")   # or "cupy"

Modules, in the order data flows through them (docs/conventions.md has the public API):
backend, conv, nn, models, ncsn, optim, distributions, data, objectives, schedule, train, samplers, sde,
metrics, plot.
"""
from . import (backend, checks, ops, tree, conv, nn, models, ncsn, optim, distributions, data, objectives, schedule, train,
               samplers, sde, metrics)

__version__ = "0.1.0"
