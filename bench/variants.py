"""Formulations measured against the library's choice, kept here so the comparison can be rerun.

``divergence_replicated``: the exact trace through ONE backward pass over the batch replicated
D times (cotangent e_i on copy i), against ``objectives.divergence``'s D backward passes over
the batch. Same flops; fewer, larger operations; D times the memory. Measured as
``exact_sm_mlp_replicated`` and ``scaling_exact_sm_replicated_D*``.
"""
import autograd.numpy as anp
from autograd import make_vjp

from minimalscore import backend


def divergence_replicated(f, x):
    """tr(df/dx) per example, (N,): copy k of the batch gets cotangent e_k; the trace is the sum,
    over copies, of coordinate k of its VJP, i.e. sum(VJP * cotangent) per example."""
    xp = backend.xp
    n, dim = x.shape[0], x[0].size
    vjp, _ = make_vjp(f)(anp.concatenate([x] * dim, axis=0))
    basis = xp.repeat(xp.eye(dim, dtype=x.dtype), n, axis=0).reshape((dim * n,) + x.shape[1:])
    return anp.sum(anp.reshape(vjp(basis) * basis, (dim, n, dim)), axis=(0, 2))
