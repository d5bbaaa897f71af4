"""The figures (matplotlib, Agg backend): every function draws one titled, labelled figure and
saves it to a PNG file; nothing opens a window. Inputs are host arrays or backend arrays
(converted with ``backend.asnumpy``); no numerics happen here.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from . import backend  # noqa: E402

COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]


def _host(*arrays):
    return [backend.asnumpy(a) for a in arrays]


def save(fig, path):
    """Lay out ``fig``, write it to ``path`` (PNG, 110 dpi), close it; returns the path."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def density_and_score(grid, density, score, path, title="A 1-D Gaussian mixture and its score"):
    """Density p(x) above its score d/dx log p(x), with arrows showing that the score points
    towards higher density (as in Johannes Fischer's "Denoising Score Matching")."""
    grid, density, score = _host(grid, density, score)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True)
    top.plot(grid, density, color="k")
    top.fill_between(grid, density, alpha=0.15, color="k")
    top.set_ylabel("p(x)")
    top.set_title(title)
    bottom.plot(grid, score, color="tab:blue")
    bottom.axhline(0, color="gray", lw=0.8)
    bottom.set_ylabel("score  d/dx log p(x)")
    bottom.set_xlabel("x")
    for x0 in grid[:: max(1, len(grid) // 14)]:
        i = abs(grid - x0).argmin()
        direction = 0.6 if score[i] > 0 else -0.6
        top.annotate("", xy=(x0 + direction, density[i]), xytext=(x0, density[i]),
                     arrowprops=dict(arrowstyle="->", color="tab:blue", lw=1))
    bottom.text(0.01, 0.04, "score > 0: density grows to the right; < 0: to the left",
                transform=bottom.transAxes, fontsize=8, color="tab:blue")
    return save(fig, path)


def denoising_targets(x_tilde, targets, grid, curves, path, title, binned=None):
    """DSM targets (x - x~)/sigma^2 scattered at x~ beside score curves {label: values on grid}:
    the targets scatter around the perturbed score, matching it on average;
    ``binned`` = (bin centres, mean target per bin) shows that average."""
    x_tilde, targets, grid = _host(x_tilde, targets, grid)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(x_tilde, targets, s=3, alpha=0.25, color="gray", label="DSM target (x - x~)/σ² at x~")
    for (label, values), color in zip(curves.items(), COLORS):
        ax.plot(grid, backend.asnumpy(values), color=color, lw=2, label=label)
    if binned is not None:
        centres, means = _host(*binned)
        ax.plot(centres, means, "o", color="k", ms=4, label="mean target per bin of x~")
    ax.set_ylim(*_robust_limits(targets))
    ax.set_xlabel("x~")
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save(fig, path)


def score_curves(grid, true_score, learned, path, density=None, title="Learned vs true score"):
    """Learned scores {label: values on grid} against the true score; the density, rescaled,
    shades where the data is (and is not)."""
    grid, true_score = _host(grid, true_score)
    fig, ax = plt.subplots(figsize=(8, 4.8))
    if density is not None:
        (density,) = _host(density)
        low, high = _robust_limits(true_score)
        ax.fill_between(grid, low, low + (high - low) * density / density.max(), color="k",
                        alpha=0.08, label="p(x) (rescaled): where the data is")
    ax.plot(grid, true_score, color="k", lw=2.5, label="true score")
    for (label, values), color in zip(learned.items(), COLORS):
        ax.plot(grid, backend.asnumpy(values), color=color, lw=1.5, label=label)
    ax.set_ylim(*_robust_limits(true_score))
    ax.set_xlabel("x")
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    return save(fig, path)


def sample_histograms(grid, density, samples, path, title="Samples vs the true density"):
    """One panel per sampler {label: 1-D samples}: a histogram (as a density) over the true
    density."""
    grid, density = _host(grid, density)
    fig, axes = plt.subplots(1, len(samples), figsize=(5 * len(samples), 3.8), sharey=True)
    for ax, (label, x), color in zip(list(getattr(axes, "flat", [axes])), samples.items(), COLORS):
        ax.hist(backend.asnumpy(x).ravel(), bins=80, range=(grid[0], grid[-1]), density=True,
                alpha=0.6, color=color, label="samples")
        ax.plot(grid, density, color="k", lw=1.5, label="true density")
        ax.set_title(label)
        ax.set_xlabel("x")
        ax.legend(fontsize=8)
    list(getattr(axes, "flat", [axes]))[0].set_ylabel("density")
    fig.suptitle(title)
    return save(fig, path)


def _robust_limits(values, pad=0.15):
    """y-limits from the 1st-99th percentiles, so a few wild values do not flatten a figure."""
    ordered = backend.asnumpy(values).ravel().copy()
    ordered.sort()
    last = len(ordered) - 1
    low, high = ordered[int(0.01 * last)], ordered[int(0.99 * last)]
    span = max(high - low, 1e-6)
    return low - pad * span, high + pad * span


def samples_over_density(extent, density, samples, path, title, max_points=3000):
    """One panel per sampler {label: (N, 2) samples} over the contours of a 2-D density given on
    a square grid ``density`` (n, n) spanning ``extent`` = (low, high) on both axes."""
    (density,) = _host(density)
    fig, axes = plt.subplots(1, len(samples), figsize=(4.6 * len(samples), 4.4), squeeze=False)
    for ax, (label, x), color in zip(axes[0], samples.items(), COLORS):
        x = backend.asnumpy(x)[:max_points]
        ax.contour(density, levels=8, extent=(*extent, *extent), origin="lower", colors="k",
                   linewidths=0.6)
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.4, color=color)
        ax.set_xlim(*extent)
        ax.set_ylim(*extent)
        ax.set_aspect("equal")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("x₁")
        ax.set_ylabel("x₂")
    fig.suptitle(title)
    return save(fig, path)


def score_fields(points, fields, data, path, title, extent):
    """One panel per model {label: (M, 2) score at ``points`` (M, 2)}: arrows of the learned
    score's direction (unit length) over the training data, coloured by its magnitude on a log
    scale, with each panel's colour bar (magnitudes differ by orders of magnitude between
    models)."""
    points, data = _host(points, data)
    fig, axes = plt.subplots(1, len(fields), figsize=(4.6 * len(fields), 4.6), squeeze=False)
    for ax, (label, field) in zip(axes[0], fields.items()):
        field = backend.asnumpy(field)
        magnitude = (field ** 2).sum(1) ** 0.5 + 1e-12
        ax.scatter(data[:, 0], data[:, 1], s=1, alpha=0.3, color="gray")
        arrows = ax.quiver(points[:, 0], points[:, 1], field[:, 0] / magnitude, field[:, 1] / magnitude,
                           magnitude, cmap="viridis", norm=LogNorm(), scale=30, width=0.004)
        fig.colorbar(arrows, ax=ax, orientation="horizontal", fraction=0.05, pad=0.15,
                     label="|score| (log scale)")
        ax.set_xlim(*extent)
        ax.set_ylim(*extent)
        ax.set_aspect("equal")
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.yaxis.set_major_locator(MaxNLocator(5))
        ax.set_xlabel("x₁")
        ax.set_ylabel("x₂")
        ax.set_title(label, fontsize=10)
    fig.suptitle(title)
    return save(fig, path)


def image_grid(images, path, ncols=10, title=None):
    """Grey-scale images (N, 1, H, W) or (N, H, W), values in [0, 1] (clipped), tiled row by row
    into one figure: 0 black, 1 white, each pixel a square (no smoothing, so 8x8 stays 8x8)."""
    (images,) = _host(images)
    images = images.reshape((images.shape[0],) + images.shape[-2:]).clip(0, 1)
    nrows = -(-images.shape[0] // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(0.8 * ncols, 0.8 * nrows + (0.4 if title else 0)),
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k < images.shape[0]:
            ax.imshow(images[k], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    return save(fig, path)
