"""minimalscore: score-based generative modelling from scratch, in NumPy and autograd.

    import minimalscore as ms
    ms.backend.use("numpy")   # or "cupy"

Modules (DESIGN.md §2), in the order data flows through them:
backend, conv, nn, models, ncsn, optim, distributions, data, objectives, schedule, train, samplers, sde,
metrics, plot.
"""
from . import (backend, checks, ops, tree, conv, nn, models, ncsn, optim, distributions, data, objectives, schedule, train,
               samplers, sde, metrics)

__version__ = "0.1.0"
