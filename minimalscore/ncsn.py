"""NCSN-lite: a small noise-conditional score network for images (Song & Ermon 2019, §4.1, App. A).

    s(x, sigma) = net(x; gamma, beta, alpha tables at sigma) / sigma

for images x (N, C, H, W) and one noise level per example, sigma (N,). It is a hybrid of the two
NCSN papers. From NCSN (Song & Ermon 2019) it keeps the noise conditioning: every normalisation
is a conditional instance norm++ with one row of gamma, beta, alpha per noise level of the
training schedule ``sigmas``. From NCSNv2 (Song & Ermon 2020, Technique 3) it takes the output
divided by sigma: the network learns sigma * score, which is O(1) at every level, and with
lambda = sigma^2 so is every level's loss (ermongroup/ncsn#9; ``tests/test_ncsn.py``). NCSNv2
itself drops the per-level norms for that scaling alone; this network has both.

The layers, scaled down from NCSN's to train on a CPU in minutes:

- pre-activation residual blocks (norm -> ELU -> conv, twice) whose later stages widen their
  receptive field with dilated convolutions (dilation 1, 1, 2, 4) instead of subsampling;
  images 16 pixels or wider are halved once, after the first stage (NCSN keeps its first
  subsampling layer), and 8x8 digits stay at full resolution;
- a 4-cascade RefineNet-lite path: each refine block fuses its inputs (norm -> conv each,
  upsampled to the largest, summed), applies chained residual *mean* pooling, and an output unit.

Left out of NCSN's RefineNet: the residual conv units (RCU) on each refine block's inputs, the
second stage of chained residual pooling (one stage here), and bilinear upsampling in the fusion
(nearest-neighbour here; the only upsampling is 2x, at 16x16 and wider).

Noise levels between the schedule's are conditioned by interpolating the norms' tables linearly
in log sigma (``level_weights``), so the SDE samplers may query any sigma(t) without retraining.

    params = init(rng, n_levels=len(sigmas), channels=16)
    score = lambda x, sigma: apply(params, x, sigma, sigmas)    # objectives / samplers API
"""
import autograd.numpy as anp
from autograd.tracer import getval

from . import backend, checks, nn, ops

DILATIONS = (1, 1, 2, 4)  # the four residual stages: dilation doubles per cascade
ON_LEVEL = 1e-6  # |log sigma - log sigma_i| below this is level i: covers float32 rounding (6e-8)


def level_weights(sigma, sigmas):
    """The (N, L) weights with which each example mixes the L levels' norm tables.

    For sigma_i >= sigma >= sigma_{i+1} (``sigmas`` largest first), linear interpolation in
    log sigma: level i+1 gets w = (log sigma_i - log sigma) / (log sigma_i - log sigma_{i+1}),
    level i gets 1 - w, every other level 0. A sigma on a level (within ``ON_LEVEL`` in log)
    is a row of the identity, so that the trained levels are reproduced exactly; a sigma
    outside [sigma_L, sigma_1] is clamped to the nearer end (the net was trained on no other).
    Interpolation in log sigma because the schedule is geometric: its levels are evenly spaced
    there. It needs no retraining and keeps the trained per-level layers."""
    checks.sigma_per_example("sigma", sigma, sigma)  # (N,), positive, finite
    return _level_weights(sigma, checks.sigmas("sigmas", sigmas))


def _level_weights(sigma, sigmas):
    """:func:`level_weights` for arguments already checked (``apply`` checks its own)."""
    xp = backend.xp
    log_grid = xp.log(xp.asarray(sigmas, dtype=xp.float64))
    n_levels = log_grid.shape[0]
    log_s = xp.clip(xp.log(xp.asarray(getval(sigma), dtype=xp.float64)), log_grid[-1], log_grid[0])
    if n_levels == 1:
        return xp.ones((log_s.shape[0], 1), dtype=backend.float_dtype)
    # i: the bracket [sigma_{i+1}, sigma_i] holding sigma (the number of levels >= sigma, less 1)
    i = xp.clip(xp.searchsorted(-log_grid, -log_s, side="right") - 1, 0, n_levels - 2)
    w = (log_grid[i] - log_s) / (log_grid[i] - log_grid[i + 1])
    w = xp.where(log_grid[i] - log_s < ON_LEVEL, 0.0, xp.where(log_s - log_grid[i + 1] < ON_LEVEL, 1.0, w))
    levels = xp.arange(n_levels)[None, :]
    weights = (levels == i[:, None]) * (1 - w)[:, None] + (levels == i[:, None] + 1) * w[:, None]
    return weights.astype(backend.float_dtype)


def cond_norm_init(rng, n_levels, channels):
    """NCSN's initialisation: gamma, alpha ~ N(1, 0.02^2), beta = 0, one row per noise level."""
    checks.rng("rng", rng)
    n_levels, channels = checks.count("n_levels", n_levels), checks.count("channels", channels)
    return {"gamma": 1 + 0.02 * rng.normal((n_levels, channels)),
            "alpha": 1 + 0.02 * rng.normal((n_levels, channels)),
            "beta": backend.xp.zeros((n_levels, channels), dtype=backend.float_dtype)}


def cond_norm(params, x, level):
    """CondInstanceNorm++ (Song & Ermon 2019, App. A): instance norm++ with each example's rows
    of gamma, beta, alpha, mixed by the (N, L) ``level_weights`` (a matrix product: its
    gradient is one more product, where fancy indexing would scatter-add row by row)."""
    try:
        n_levels = params["gamma"].shape[0]
    except (TypeError, KeyError, IndexError, AttributeError):
        raise TypeError(f"params: expected cond_norm_init's tables, got {checks.show(params)}") from None
    if checks.array("level", level, ndim=2).shape[1] != n_levels:
        raise ValueError(f"level: expected (N, L) weights over the {n_levels} levels, "
                         f"got shape {tuple(getval(level).shape)}")
    return nn.instance_norm_plus_plus(x, anp.matmul(level, params["gamma"]),
                                      anp.matmul(level, params["beta"]), anp.matmul(level, params["alpha"]))


def _residual_init(rng, n_levels, c_in, c_out):
    p = {"norm1": cond_norm_init(rng, n_levels, c_in), "conv1": nn.conv2d_init(rng, c_in, c_out),
         "norm2": cond_norm_init(rng, n_levels, c_out), "conv2": nn.conv2d_init(rng, c_out, c_out)}
    if c_in != c_out:
        p["shortcut"] = nn.conv2d_init(rng, c_in, c_out, kernel_size=1)
    return p


def _residual(params, x, level, dilation=1):
    """Pre-activation residual block (He et al. 2016) with conditional norms and dilated 3x3 convs:
    x + conv(ELU(norm(conv(ELU(norm(x)))))), the skip through a 1x1 conv when widths differ."""
    h = nn.conv2d_layer(params["conv1"], nn.elu(cond_norm(params["norm1"], x, level)), dilation, dilation)
    h = nn.conv2d_layer(params["conv2"], nn.elu(cond_norm(params["norm2"], h, level)), dilation, dilation)
    skip = nn.conv2d_layer(params["shortcut"], x, padding=0) if "shortcut" in params else x
    return skip + h


def _refine_init(rng, n_levels, c_ins, c_out):
    return {"fuse_norms": [cond_norm_init(rng, n_levels, c) for c in c_ins],
            "fuse_convs": [nn.conv2d_init(rng, c, c_out) for c in c_ins],
            "pool_norm": cond_norm_init(rng, n_levels, c_out), "pool_conv": nn.conv2d_init(rng, c_out, c_out),
            "out_norm": cond_norm_init(rng, n_levels, c_out), "out_conv": nn.conv2d_init(rng, c_out, c_out)}


def _refine(params, xs, level):
    """RefineNet block, lite (Lin et al. 2017; NCSN's variant):

    multi-resolution fusion  h = sum_j up(conv_j(norm_j(x_j)))   (to the largest input's size)
    chained residual pooling h = ELU(h);  h = h + conv(avgpool5(norm(h)))   (one stage)
    output unit              h + conv(ELU(norm(h)))
    """
    size = max(x.shape[-1] for x in xs)
    h = 0
    for norm_p, conv_p, x in zip(params["fuse_norms"], params["fuse_convs"], xs):
        y = nn.conv2d_layer(conv_p, cond_norm(norm_p, x, level))
        h = h + (ops.upsample_nearest(y, size // y.shape[-1]) if y.shape[-1] < size else y)
    h = nn.elu(h)
    h = h + nn.conv2d_layer(params["pool_conv"], nn.avg_pool2d(cond_norm(params["pool_norm"], h, level)))
    return h + nn.conv2d_layer(params["out_conv"], nn.elu(cond_norm(params["out_norm"], h, level)))


def init(rng, n_levels, channels=16, image_channels=1):
    """Parameters of NCSN-lite for ``n_levels`` noise levels and base width ``channels``."""
    checks.rng("rng", rng)
    n_levels = checks.count("n_levels", n_levels)
    c, c_img = checks.count("channels", channels), checks.count("image_channels", image_channels)
    c2 = 2 * c
    return {"begin": nn.conv2d_init(rng, c_img, c),
            "res": [_residual_init(rng, n_levels, c, c), _residual_init(rng, n_levels, c, c2),
                    _residual_init(rng, n_levels, c2, c2), _residual_init(rng, n_levels, c2, c2)],
            "refine": [_refine_init(rng, n_levels, [c2], c2), _refine_init(rng, n_levels, [c2, c2], c2),
                       _refine_init(rng, n_levels, [c2, c2], c), _refine_init(rng, n_levels, [c, c], c)],
            "end_norm": cond_norm_init(rng, n_levels, c),
            "end": nn.conv2d_init(rng, c, c_img)}


def apply(params, x, sigma, sigmas):
    """s(x, sigma) = net(x; norms at sigma) / sigma for images x (N, C, H, W) and sigma (N,) > 0,
    conditioned on the training schedule ``sigmas`` (L,), largest first: on its levels as trained,
    between them by ``level_weights``' interpolation, outside them clamped to the nearer end
    (the division is by the sigma given)."""
    checks.batch("x", x, min_ndim=4)
    if getval(x).ndim != 4:
        raise ValueError(f"x: expected images (N, C, H, W), got shape {tuple(getval(x).shape)}")
    checks.sigma_per_example("sigma", sigma, x)
    checks.sigmas("sigmas", sigmas)
    try:
        n_levels = params["end_norm"]["gamma"].shape[0]
    except (TypeError, KeyError, IndexError, AttributeError):
        raise TypeError(f"params: expected ncsn.init's parameters, got {checks.show(params)}") from None
    if n_levels != len(sigmas):
        raise ValueError(f"sigmas: expected the {n_levels} noise levels params were built for, "
                         f"got {len(sigmas)}")
    level = _level_weights(sigma, sigmas)
    h = nn.conv2d_layer(params["begin"], x)
    r1 = _residual(params["res"][0], h, level, DILATIONS[0])
    r2 = r1 if x.shape[-1] < 16 else nn.mean_pool2(r1)
    r2 = _residual(params["res"][1], r2, level, DILATIONS[1])
    r3 = _residual(params["res"][2], r2, level, DILATIONS[2])
    r4 = _residual(params["res"][3], r3, level, DILATIONS[3])
    y = _refine(params["refine"][0], [r4], level)
    y = _refine(params["refine"][1], [r3, y], level)
    y = _refine(params["refine"][2], [r2, y], level)
    y = _refine(params["refine"][3], [r1, y], level)
    out = nn.conv2d_layer(params["end"], nn.elu(cond_norm(params["end_norm"], y, level)))
    return out / ops.per_example(sigma, 4)
