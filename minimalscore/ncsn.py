"""NCSN-lite: a small noise-conditional score network for images (Song & Ermon 2019; 004 §5.3).

NCSN's ingredients, scaled down to train on a CPU in minutes:

- conditional instance normalisation++ (``nn.instance_norm_plus_plus``): one row of gamma,
  beta, alpha per noise level, picked by each example's sigma;
- pre-activation residual blocks (norm -> ELU -> conv, twice) whose later stages widen their
  receptive field with dilated convolutions (dilation 1, 1, 2, 4) instead of subsampling;
  images 16 pixels or wider are halved once, after the first stage (NCSN keeps its first
  subsampling layer), and 8x8 digits stay at full resolution;
- a 4-cascade RefineNet-lite path: each refine block fuses its inputs (norm -> conv each, upsampled
  to the largest, summed), applies one stage of chained residual *mean* pooling, and one
  residual conv unit;
- ELU activations, and the output divided by sigma (NCSNv2, Song & Ermon 2020 Technique 3): the
  network learns sigma * score, which is O(1) at every level, and with lambda = sigma^2 so is
  every level's loss (ermongroup/ncsn#9; ``tests/test_ncsn.py``).

    params = init(rng, n_levels=len(sigmas), channels=16)
    score = lambda x, sigma: apply(params, x, sigma, sigmas)    # objectives / samplers API

Size and speed (channels=16, one image channel): 182,577 parameters with 21 noise levels (8x8
digits), 233,649 with 49 (16x16); 26 convolutions, 24 conditional norms. One multi-scale DSM
training step (loss + gradient + Adam) on a batch of 64 8x8 digits takes 0.31 s on NumPy with one
BLAS thread of this project's 2-core CPU (loss + gradient alone: 0.30 s; batch 128: 0.63 s;
16x16, batch 64: 0.44 s).
"""
import autograd.numpy as anp

from . import backend, nn

DILATIONS = (1, 1, 2, 4)  # the four residual stages (004 §5.3: dilation doubles per cascade)


def sigma_index(sigma, sigmas, rtol=1e-3):
    """Index i of each sigma (N,) in the schedule ``sigmas`` (L,): the net is conditioned on the
    level, not on the value, so a sigma off the schedule is an error, not an interpolation."""
    xp = backend.xp
    log_gap = xp.abs(xp.log(xp.asarray(sigma))[:, None] - xp.log(xp.asarray(sigmas))[None, :])
    index = xp.argmin(log_gap, axis=1)
    if bool((log_gap.min(axis=1) > rtol).any()):
        raise ValueError(f"sigma: every value must be one of the {len(sigmas)} noise levels the "
                         f"network was trained on (relative tolerance {rtol})")
    return index


def one_hot(index, n):
    """(N,) integers in [0, n) -> (N, n) rows of the identity, in the float dtype."""
    return (index[:, None] == backend.xp.arange(n)[None, :]).astype(backend.float_dtype)


def cond_norm_init(rng, n_levels, channels):
    """NCSN's initialisation: gamma, alpha ~ N(1, 0.02^2), beta = 0, one row per noise level."""
    return {"gamma": 1 + 0.02 * rng.normal((n_levels, channels)),
            "alpha": 1 + 0.02 * rng.normal((n_levels, channels)),
            "beta": backend.xp.zeros((n_levels, channels), dtype=backend.float_dtype)}


def cond_norm(params, x, level):
    """CondInstanceNorm++ (Song & Ermon 2019 Appendix A): instance norm++ with each example's
    noise level's rows, picked by the one-hot matrix ``level`` (N, L) (a matrix product: its
    gradient is one more product, where fancy indexing would scatter-add row by row)."""
    return nn.instance_norm_plus_plus(x, anp.matmul(level, params["gamma"]),
                                      anp.matmul(level, params["beta"]), anp.matmul(level, params["alpha"]))


def residual_init(rng, n_levels, c_in, c_out):
    p = {"norm1": cond_norm_init(rng, n_levels, c_in), "conv1": nn.conv2d_init(rng, c_in, c_out),
         "norm2": cond_norm_init(rng, n_levels, c_out), "conv2": nn.conv2d_init(rng, c_out, c_out)}
    if c_in != c_out:
        p["shortcut"] = nn.conv2d_init(rng, c_in, c_out, kernel_size=1)
    return p


def residual(params, x, index, dilation=1):
    """Pre-activation residual block (He et al. 2016) with conditional norms and dilated 3x3 convs:
    x + conv(ELU(norm(conv(ELU(norm(x)))))), the skip through a 1x1 conv when widths differ."""
    h = nn.conv2d_layer(params["conv1"], nn.elu(cond_norm(params["norm1"], x, index)), dilation, dilation)
    h = nn.conv2d_layer(params["conv2"], nn.elu(cond_norm(params["norm2"], h, index)), dilation, dilation)
    skip = nn.conv2d_layer(params["shortcut"], x, padding=0) if "shortcut" in params else x
    return skip + h


def refine_init(rng, n_levels, c_ins, c_out):
    return {"fuse_norms": [cond_norm_init(rng, n_levels, c) for c in c_ins],
            "fuse_convs": [nn.conv2d_init(rng, c, c_out) for c in c_ins],
            "pool_norm": cond_norm_init(rng, n_levels, c_out), "pool_conv": nn.conv2d_init(rng, c_out, c_out),
            "out_norm": cond_norm_init(rng, n_levels, c_out), "out_conv": nn.conv2d_init(rng, c_out, c_out)}


def refine(params, xs, index):
    """RefineNet block, lite (Lin et al. 2017; NCSN's variant, 004 §5.3):

    multi-resolution fusion  h = sum_j up(conv_j(norm_j(x_j)))   (to the largest input's size)
    chained residual pooling h = ELU(h);  h = h + conv(avgpool5(norm(h)))   (one stage)
    output unit              h + conv(ELU(norm(h)))
    """
    size = max(x.shape[-1] for x in xs)
    h = 0
    for norm_p, conv_p, x in zip(params["fuse_norms"], params["fuse_convs"], xs):
        y = nn.conv2d_layer(conv_p, cond_norm(norm_p, x, index))
        h = h + (nn.upsample_nearest(y, size // y.shape[-1]) if y.shape[-1] < size else y)
    h = nn.elu(h)
    h = h + nn.conv2d_layer(params["pool_conv"], nn.avg_pool2d(cond_norm(params["pool_norm"], h, index)))
    return h + nn.conv2d_layer(params["out_conv"], nn.elu(cond_norm(params["out_norm"], h, index)))


def init(rng, n_levels, channels=16, image_channels=1):
    """Parameters of NCSN-lite for ``n_levels`` noise levels and base width ``channels``."""
    c, c2 = channels, 2 * channels
    return {"begin": nn.conv2d_init(rng, image_channels, c),
            "res": [residual_init(rng, n_levels, c, c), residual_init(rng, n_levels, c, c2),
                    residual_init(rng, n_levels, c2, c2), residual_init(rng, n_levels, c2, c2)],
            "refine": [refine_init(rng, n_levels, [c2], c2), refine_init(rng, n_levels, [c2, c2], c2),
                       refine_init(rng, n_levels, [c2, c2], c), refine_init(rng, n_levels, [c, c], c)],
            "end_norm": cond_norm_init(rng, n_levels, c),
            "end": nn.conv2d_init(rng, c, image_channels)}


def apply(params, x, sigma, sigmas):
    """s(x, sigma) = net(x, i(sigma)) / sigma for images x (N, C, H, W) and sigma (N,) drawn from
    the schedule ``sigmas`` (NCSNv2 Technique 3; DESIGN.md §3's noise-conditional signature)."""
    index = one_hot(sigma_index(sigma, sigmas), len(sigmas))
    h = nn.conv2d_layer(params["begin"], x)
    r1 = residual(params["res"][0], h, index, DILATIONS[0])
    r2 = r1 if x.shape[-1] < 16 else nn.mean_pool2(r1)
    r2 = residual(params["res"][1], r2, index, DILATIONS[1])
    r3 = residual(params["res"][2], r2, index, DILATIONS[2])
    r4 = residual(params["res"][3], r3, index, DILATIONS[3])
    y = refine(params["refine"][0], [r4], index)
    y = refine(params["refine"][1], [r3, y], index)
    y = refine(params["refine"][2], [r2, y], index)
    y = refine(params["refine"][3], [r1, y], index)
    out = nn.conv2d_layer(params["end"], nn.elu(cond_norm(params["end_norm"], y, index)))
    return out / anp.reshape(sigma, (-1, 1, 1, 1))
