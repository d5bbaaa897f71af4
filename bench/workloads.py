"""The workloads W1-W6 (bench/README.md), written with the library's public functions.

Each workload is a function ``quick -> {key: timing}``. Training workloads time one whole step
(loss, parameter gradient by autograd, ``optim.adam_update``) the way a user writes it; unlike
a benchmark that draws the noise beforehand, the step draws its own noise through ``rng``
inside the objective, as the library's objectives do (a few microseconds). Before timing, each
checks its loss and gradient against the float64 ``reference`` on a small batch, and W1 / W6
check the NumPy ``floors`` against the library.
"""
import itertools

import numpy as np
from autograd import make_vjp, value_and_grad

from minimalscore import backend, conv, models, objectives, optim, samplers, tree

from . import config, floors, reference, variants
from .timing import measure, with_gflops


# ---------------------------------------------------------------- losses: (params, x, rng) -> scalar
def dsm_ncsn_loss(params, x, rng):
    """W1: multi-scale DSM of the noise-conditional MLP."""
    score = lambda y, sigma: models.noise_conditional_mlp(params, y, sigma)
    return objectives.multiscale_dsm(score, x, config.SIGMAS, rng)


def exact_sm_loss(params, x, rng):
    """W2 / W4: implicit SM, the trace in closed form (``models.mlp_score_and_divergence``)."""
    return objectives.implicit_sm(lambda y: models.mlp(params, y), x,
                                  score_and_divergence=lambda y: models.mlp_score_and_divergence(params, y))


def exact_sm_generic_loss(params, x, rng):
    """Implicit SM with the generic autograd trace ``objectives.divergence``, for comparison."""
    return objectives.implicit_sm(lambda y: models.mlp(params, y), x)


def exact_sm_replicated_loss(params, x, rng):
    """Implicit SM with the trace of ``variants.divergence_replicated`` (one backward pass)."""
    score = lambda y: models.mlp(params, y)
    score_and_trace = lambda y: (score(y), variants.divergence_replicated(score, y))
    return objectives.implicit_sm(score, x, score_and_divergence=score_and_trace)


def ssm_loss(params, x, rng):
    """W3 / W4: sliced SM, one Gaussian projection per example."""
    return objectives.sliced_sm(lambda y: models.mlp(params, y), x, rng)


def dsm_loss(params, x, rng):
    """W4: DSM at sigma = 0.1."""
    return objectives.dsm(lambda y: models.mlp(params, y), x, config.SCALING_SIGMA, rng)


REFERENCE_KIND = {dsm_ncsn_loss: "dsm_ncsn", exact_sm_loss: "exact_sm", exact_sm_generic_loss: "exact_sm",
                  exact_sm_replicated_loss: "exact_sm", ssm_loss: "ssm", dsm_loss: "dsm"}


# ---------------------------------------------------------------- checks and steps
def assert_float32(name, grads):
    """A float64 gradient doubles the memory traffic of every later operation: none may leak."""
    dtypes = {str(a.dtype) for a in tree.tree_leaves(grads)}
    if dtypes != {"float32"}:
        raise AssertionError(f"{name}: gradient dtypes {dtypes}, expected float32 only")


def check(name, loss, d_in, d_out):
    """The library's float32 loss and gradient on a small batch against the float64 reference
    (weights seed 1, data seed 123: a fixed check batch)."""
    params = config.init_mlp(config.sizes(d_in, d_out), seed=1)
    x = config.data_batches(d_out, config.CHECK_BATCH, n=1, seed=123)[0]
    rng = reference.RecordingRNG(seed=7)
    value, grads = value_and_grad(loss)(params, x, rng)
    assert_float32(name, grads)
    reference.compare(name, value, grads, reference.reference(REFERENCE_KIND[loss], params, x, rng.draws))


def training_step(loss, params, batches, rng):
    """One training step as a closure: loss and gradient by autograd, then Adam (lr 1e-3)."""
    loss_and_grad = value_and_grad(loss)
    state = {"params": params, "adam": optim.adam_init(params)}
    cycle = itertools.cycle(batches)

    def step():
        value, grads = loss_and_grad(state["params"], next(cycle), rng)
        state["params"], state["adam"] = optim.adam_update(state["params"], grads, state["adam"],
                                                           lr=config.LR)
        return value
    return step


def library_step(loss, d_in, d_out, batches):
    return training_step(loss, config.init_mlp(config.sizes(d_in, d_out)), batches, backend.default_rng(0))


# ---------------------------------------------------------------- workloads: quick -> {key: timing}
def gemm(quick):
    """The bound for W5: the backend's own float32 matrix product, n^3, in this run."""
    n = 512 if quick else config.GEMM_N
    rng = backend.default_rng(0)
    a, b = rng.normal((n, n)), rng.normal((n, n))
    return {"gemm": with_gflops(measure({"gemm": lambda: a @ b}, quick)["gemm"], 2 * n ** 3)}


def check_dsm_floor():
    """The floor's loss and gradient equal the library's for the same draws."""
    params = config.init_mlp(config.sizes(3, 2), seed=1)
    x = config.data_batches(2, config.CHECK_BATCH, n=1, seed=123)[0]
    value, grads = value_and_grad(dsm_ncsn_loss)(params, x, backend.default_rng(7))
    floor = floors.dsm_ncsn_loss_and_grads(floors.dsm_ncsn_init(params)["params"], x, backend.default_rng(7))
    reference.compare("floor_dsm_ncsn = library", value, grads, (floor[0], reference.flat(floor[1])))


def dsm_ncsn_mlp(quick):
    """W1, and beside it the NumPy floor (timed call by call, in turn)."""
    check("dsm_ncsn", dsm_ncsn_loss, 3, 2)
    check_dsm_floor()
    batches = config.data_batches(2, config.BATCH, data="swiss")
    floor_state = floors.dsm_ncsn_init(config.init_mlp(config.sizes(3, 2)))
    floor_batches, floor_rng = itertools.cycle(batches), backend.default_rng(0)
    floor_step = lambda: floors.dsm_ncsn_step(floor_state, next(floor_batches), floor_rng)
    library = library_step(dsm_ncsn_loss, 3, 2, batches)
    return measure({"dsm_ncsn_mlp": library, "floor_dsm_ncsn_mlp": floor_step}, quick)


def exact_sm_mlp(quick):
    """W2: exact SM with the closed-form trace; in full runs also the generic autograd trace and
    its replicated-batch variant."""
    check("exact_sm_D2 (closed form)", exact_sm_loss, 2, 2)
    check("exact_sm_D2 (generic)", exact_sm_generic_loss, 2, 2)
    check("exact_sm_D2 (replicated)", exact_sm_replicated_loss, 2, 2)
    batches = config.data_batches(2, config.BATCH, data="swiss")
    steps = {"exact_sm_mlp": library_step(exact_sm_loss, 2, 2, batches)}
    if not quick:
        steps["exact_sm_mlp_generic"] = library_step(exact_sm_generic_loss, 2, 2, batches)
        steps["exact_sm_mlp_replicated"] = library_step(exact_sm_replicated_loss, 2, 2, batches)
    return measure(steps, quick)


def ssm_mlp(quick):
    """W3: sliced SM, W2's net."""
    check("ssm_D2", ssm_loss, 2, 2)
    batches = config.data_batches(2, config.BATCH, data="swiss")
    return measure({"ssm_mlp": library_step(ssm_loss, 2, 2, batches)}, quick)


def exact_sm_scaling(quick):
    """W4: exact SM (closed form; in full runs also generic and replicated), sliced SM and DSM
    for D = 2..128."""
    check("exact_sm_D8 (closed form)", exact_sm_loss, 8, 8)
    check("exact_sm_D8 (generic)", exact_sm_generic_loss, 8, 8)
    check("exact_sm_D8 (replicated)", exact_sm_replicated_loss, 8, 8)
    check("ssm_D8", ssm_loss, 8, 8)
    check("dsm_D8", dsm_loss, 8, 8)
    losses = {"exact_sm": exact_sm_loss, "ssm": ssm_loss, "dsm": dsm_loss}
    if not quick:
        losses.update(exact_sm_generic=exact_sm_generic_loss, exact_sm_replicated=exact_sm_replicated_loss)
    out = {}
    for d in config.SCALING_DIMS:
        batches = config.data_batches(d, config.SCALING_BATCH)
        out.update(measure({f"scaling_{kind}_D{d}": library_step(loss, d, d, batches)
                            for kind, loss in losses.items()}, quick))
    return out


def conv2d(quick):
    """W5: conv.conv2d forward, and forward + backward (dx, dw) for an output cotangent g
    (quick: a batch of 16 instead of 128)."""
    small = config.conv_inputs(seed=5, x_shape=(2, 3, 6, 5), w_shape=(4, 3, 3, 3))
    vjp, y = make_vjp(conv.conv2d, argnum=(0, 1))(small[0], small[1], config.CONV_PADDING)
    reference.compare_arrays("conv2d y, dx, dw", (y, *vjp(small[2])),
                             reference.conv_reference(*small, config.CONV_PADDING))
    x_shape = (16,) + config.CONV_X[1:] if quick else config.CONV_X
    x, w, g = config.conv_inputs(x_shape=x_shape)
    forward = lambda: conv.conv2d(x, w, config.CONV_PADDING)
    forward_backward = lambda: make_vjp(conv.conv2d, argnum=(0, 1))(x, w, config.CONV_PADDING)[0](g)
    flops = 2 * np.prod(x_shape) * np.prod(config.CONV_W[:1] + config.CONV_W[2:])  # 2 N C H W O k^2
    r = measure({"conv2d_fwd": forward}, quick)
    r.update(measure({"conv2d_fwd_bwd": forward_backward}, quick))
    return {"conv2d_fwd": with_gflops(r["conv2d_fwd"], flops),
            "conv2d_fwd_bwd": with_gflops(r["conv2d_fwd_bwd"], 3 * flops)}


def check_langevin_floor(params, score):
    """A few steps of the library's sampler equal the floor's loop for the same seed."""
    x0 = config.langevin_start(64)
    run = lambda f: f(x0, config.SIGMAS, config.LANGEVIN_EPS, 3, backend.default_rng(3))
    ours = run(lambda *a: samplers.annealed_langevin(score, *a))
    floor = run(lambda *a: floors.annealed_langevin(params, *a))
    reference.compare_arrays("floor_annealed_langevin = library", (ours,), (backend.asnumpy(floor),))


def annealed_langevin(quick):
    """W6: 10 levels x 100 steps of annealed Langevin, 10,000 particles (quick: 1,000 x 5 steps),
    beside the floor's bare loop. Each run takes seconds, so 5 runs each after 1 warm-up."""
    params = config.init_mlp(config.sizes(3, 2))
    score = lambda x, sigma: models.noise_conditional_mlp(params, x, sigma)
    check_langevin_floor(params, score)
    n, steps = (1000, 5) if quick else (config.LANGEVIN_N, config.LANGEVIN_STEPS)
    x0, rng = config.langevin_start(n), backend.default_rng(0)
    args = (x0, config.SIGMAS, config.LANGEVIN_EPS, steps, rng)
    return measure({"annealed_langevin": lambda: samplers.annealed_langevin(score, *args),
                    "floor_annealed_langevin": lambda: floors.annealed_langevin(params, *args)},
                   quick, warmup=1, reps=5, min_time_s=0.0)


WORKLOADS = {"gemm": gemm, "dsm_ncsn_mlp": dsm_ncsn_mlp, "exact_sm_mlp": exact_sm_mlp, "ssm_mlp": ssm_mlp,
             "exact_sm_scaling": exact_sm_scaling, "conv2d": conv2d, "annealed_langevin": annealed_langevin}
