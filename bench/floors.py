"""The NumPy floors: W1 and W6 written by hand in plain array code, no autograd.

They bound what the library's abstractions (autograd's tape, parameter trees, the generic
objectives) may cost: the library's W1 step and W6 run should take at most 1.3x these. They
are also checks: the floor's loss, gradient and samples must equal the library's for the same
random draws (``workloads`` asserts it), and they draw their noise through the same ``rng``
calls in the same order as the library, so equal seeds give equal numbers.

Written on ``backend.xp``, so they run on CuPy too.
"""
import math

from minimalscore import backend, fused

from . import config

B1, B2, ADAM_EPS = 0.9, 0.999, 1e-8


# The elementwise functions are the library's own (plain array code when nothing is traced), so
# that the floor and the library do the same arithmetic and differ only in the bookkeeping.
softplus, sigmoid_from_softplus = fused.softplus, fused.sigmoid_from_softplus


def dsm_ncsn_loss_and_grads(params, x, rng):
    """W1's multi-scale DSM loss (Song & Ermon 2019 eq. 6, lambda = sigma^2) and its gradient, derived by hand.

    Forward: u = concat(x + sigma z, log sigma), h1 = sp(u W1 + b1), h2 = sp(h1 W2 + b2),
    s = (h2 W3 + b3) / sigma; the residual sigma s + z = h2 W3 + b3 + z (sigma cancels) and
    loss = 0.5 mean_n ||r_n||^2. Backward: dL/dr = r / N, then the chain rule layer by layer,
    through sp'(.) = sigmoid. ``params`` = [W1, b1, W2, b2, W3, b3]; returns (loss, their gradients).
    """
    xp = backend.xp
    w1, b1, w2, b2, w3, b3 = params
    n = x.shape[0]
    sigma = backend.asarray(config.SIGMAS)[rng.integers(0, len(config.SIGMAS), (n,))][:, None]
    z = rng.normal(x.shape, dtype=x.dtype)
    u = xp.concatenate([x + sigma * z, xp.log(sigma)], axis=1)
    h1 = u @ w1
    h1 += b1
    h1 = softplus(h1)
    h2 = h1 @ w2
    h2 += b2
    h2 = softplus(h2)
    r = h2 @ w3
    r += b3 + z
    loss = 0.5 * float(xp.vdot(r, r)) / n
    g3 = r / n
    g2 = g3 @ w3.T
    g2 *= sigmoid_from_softplus(h2)
    g1 = g2 @ w2.T
    g1 *= sigmoid_from_softplus(h1)
    return loss, [u.T @ g1, g1.sum(0), h1.T @ g2, g2.sum(0), h2.T @ g3, g3.sum(0)]


def adam_inplace(params, grads, m, v, t, lr=config.LR):
    """Kingma & Ba Algorithm 1, updating params, m, v in place (bias corrections folded into
    the step size and epsilon, as in ``optim.adam_update``)."""
    xp = backend.xp
    step = lr * math.sqrt(1 - B2 ** t) / (1 - B1 ** t)
    eps_hat = ADAM_EPS * math.sqrt(1 - B2 ** t)
    for p, g, m_, v_ in zip(params, grads, m, v):
        m_ *= B1
        m_ += (1 - B1) * g
        v_ *= B2
        v_ += (1 - B2) * (g * g)
        denom = xp.sqrt(v_)
        denom += eps_hat
        p -= step * m_ / denom


def dsm_ncsn_step(state, x, rng):
    """One floor W1 training step; ``state`` = {"params": [W1, b1, ...], "m", "v", "t"}."""
    loss, grads = dsm_ncsn_loss_and_grads(state["params"], x, rng)
    state["t"] += 1
    adam_inplace(state["params"], grads, state["m"], state["v"], state["t"])
    return loss


def dsm_ncsn_init(params):
    """The floor's state from a library parameter tree (copied: the floor trains in place)."""
    flat = [a.copy() for layer in params["layers"] for a in (layer["W"], layer["b"])]
    zeros = [backend.xp.zeros_like(a) for a in flat]
    return {"params": flat, "m": zeros, "v": [z.copy() for z in zeros], "t": 0}


def annealed_langevin(params, x0, sigmas, eps, n_steps_each, rng):
    """W6's annealed Langevin run (Song & Ermon 2019 Alg. 1), the bare loop: per level the
    constant log-sigma input folds into the first layer's bias; per step one forward pass of
    the net and the ULA update x + (alpha/2) s + sqrt(alpha) z, alpha = eps sigma^2/sigma_L^2."""
    (w1, b1), (w2, b2), (w3, b3) = [(l["W"], l["b"]) for l in params["layers"]]
    x = x0
    for sigma in (float(s) for s in sigmas):
        alpha = eps * sigma ** 2 / float(sigmas[-1]) ** 2
        bias1 = math.log(sigma) * w1[-1] + b1
        for _ in range(n_steps_each):
            u = x @ w1[:-1]
            u += bias1
            u = softplus(u) @ w2
            u += b2
            s = softplus(u) @ w3
            s += b3
            s *= alpha / 2 / sigma
            s += x
            x = s + math.sqrt(alpha) * rng.normal(x.shape, dtype=x.dtype)
    return x

