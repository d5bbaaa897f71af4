"""minimalscore: score-based generative modelling from scratch, in NumPy and autograd.

    import minimalscore as ms
    ms.backend.use("numpy")   # or "cupy"

Modules, in the order data flows through them (docs/conventions.md has the public API):
backend, checks, ops, tree, conv, fused, nn, models, ncsn, optim, distributions, data, objectives,
schedule, checkpoint, train, samplers, guidance, sde, sde_sampling, ddpm, metrics, plot.
"""
from . import (backend, checks, ops, tree, conv, nn, models, ncsn, optim, distributions, data, objectives,
               schedule, checkpoint, train, samplers, guidance, sde, sde_sampling, ddpm, metrics)

__version__ = "0.1.0"
