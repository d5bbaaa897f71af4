"""Independent float64 references, so a fast but wrong step fails before it is timed.

Written from the formulas, not from the library: plain float64 NumPy arrays, HIPS autograd for
the derivatives, softplus as logaddexp(0, u), the trace as D backward passes. Each takes the
random draws the library made (recorded by ``RecordingRNG``), so both compute the same
number.
"""
import autograd.numpy as anp
import numpy as np
from autograd import elementwise_grad, grad

from minimalscore import backend, tree

from . import config

TOLERANCE = 1e-4  # relative; float32 steps of ~1e4 flops each lose ~1e-6, a wrong formula O(1)


class RecordingRNG(backend.RNG):
    """A ``backend.RNG`` that keeps every draw, by method, so a reference can reuse them."""

    def __init__(self, seed):
        super().__init__(seed)
        self.draws = {"normal": [], "integers": []}

    def normal(self, shape, dtype=None):
        return self._keep("normal", super().normal(shape, dtype))

    def integers(self, low, high, shape):
        return self._keep("integers", super().integers(low, high, shape))

    def _keep(self, kind, a):
        self.draws[kind].append(backend.asnumpy(a))
        return a


def _mlp(layers, x):
    for k, (W, b) in enumerate(layers):
        x = x @ W + b
        if k < len(layers) - 1:
            x = anp.logaddexp(0.0, x)  # softplus, written independently of nn.softplus
    return x


def _loss(kind, layers, x, draws):
    """The workload's loss in float64 with the library's recorded draws."""
    if kind == "dsm_ncsn":
        sigma = config.SIGMAS.astype(np.float64)[draws["integers"][0]][:, None]
        z = draws["normal"][0].astype(np.float64)
        s = _mlp(layers, anp.concatenate([x + sigma * z, anp.log(sigma)], 1)) / sigma
        return anp.mean(0.5 * sigma[:, 0] ** 2 * anp.sum((s + z / sigma) ** 2, 1))
    if kind == "dsm":  # unweighted, as objectives.dsm (docs/conventions.md)
        z, sigma = draws["normal"][0].astype(np.float64), config.SCALING_SIGMA
        s = _mlp(layers, x + sigma * z)
        return anp.mean(0.5 * anp.sum((s + z / sigma) ** 2, 1))
    s = _mlp(layers, x)
    if kind == "exact_sm":
        column = lambda i: elementwise_grad(lambda y: _mlp(layers, y)[:, i])(x)[:, i]  # (ds_i/dx_i)_n
        trace = sum(column(i) for i in range(x.shape[1]))
        return anp.mean(0.5 * anp.sum(s ** 2, 1) + trace)
    if kind == "ssm":
        v = draws["normal"][0].astype(np.float64)
        jtv = elementwise_grad(lambda y: anp.sum(_mlp(layers, y) * v))(x)
        return anp.mean(anp.sum(jtv * v, 1) + 0.5 * anp.sum(s * v, 1) ** 2)
    raise ValueError(f"kind: unknown loss {kind!r}")


def flat(params):
    """A library parameter tree as one float64 host vector, in (W, b) layer order."""
    return np.concatenate([backend.asnumpy(a).astype(np.float64).ravel() for a in tree.tree_leaves(params)])


def reference(kind, params, x, draws):
    """(loss, flat parameter gradient) in float64 for the library's params (a tree) and draws."""
    layers = [(backend.asnumpy(l["W"]).astype(np.float64), backend.asnumpy(l["b"]).astype(np.float64))
              for l in params["layers"]]
    x = backend.asnumpy(x).astype(np.float64)
    loss = lambda ls: _loss(kind, ls, x, draws)
    return float(loss(layers)), np.concatenate([g.ravel() for pair in grad(loss)(layers) for g in pair])


def compare(name, loss, grads, ref, tol=TOLERANCE):
    """Raise AssertionError unless (loss, gradient tree) matches ``ref`` = (loss, flat gradient)."""
    ref_loss, ref_grad = ref
    loss_err = abs(float(loss) - ref_loss) / max(1.0, abs(ref_loss))
    grad_err = float(np.max(np.abs(flat(grads) - ref_grad)) / np.max(np.abs(ref_grad)))
    ok = loss_err < tol and grad_err < 10 * tol
    print(f"  check {name:30s} loss {float(loss):.6g} (ref {ref_loss:.6g})  rel. err loss {loss_err:.1e} "
          f"grad {grad_err:.1e}  {'OK' if ok else 'FAIL'}", flush=True)
    if not ok:
        raise AssertionError(f"{name}: loss or gradient disagrees with the float64 reference")


def conv_reference(x, w, g, padding):
    """conv2d forward, dx, dw in float64 as a sum of shifted products (the definition)."""
    x, w, g = (backend.asnumpy(a).astype(np.float64) for a in (x, w, g))
    kh, kw = w.shape[2:]
    ho, wo = x.shape[2] + 2 * padding - kh + 1, x.shape[3] + 2 * padding - kw + 1

    def conv(x, w):
        xp = anp.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), "constant")
        return sum(anp.einsum("nchw,oc->nohw", xp[:, :, i:i + ho, j:j + wo], w[:, :, i, j])
                   for i in range(kh) for j in range(kw))

    loss = lambda x, w: anp.sum(conv(x, w) * g)
    return conv(x, w), grad(loss, 0)(x, w), grad(loss, 1)(x, w)


def compare_arrays(name, ours, refs, tol=TOLERANCE):
    """Raise AssertionError unless each array of ``ours`` matches its float64 reference."""
    errs = [float(np.max(np.abs(backend.asnumpy(a) - r)) / np.max(np.abs(r))) for a, r in zip(ours, refs)]
    ok = max(errs) < tol
    print(f"  check {name:30s} rel. err {' '.join(f'{e:.1e}' for e in errs)}  {'OK' if ok else 'FAIL'}",
          flush=True)
    if not ok:
        raise AssertionError(f"{name}: disagrees with the float64 reference")
