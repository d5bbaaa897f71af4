"""The figures (matplotlib, Agg backend): every function draws one titled, labelled figure and
saves it to a PNG file; nothing opens a window. Inputs are host arrays or backend arrays
(converted with ``backend.asnumpy``); no numerics happen here.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

from . import backend  # noqa: E402

COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]


def _host(*arrays):
    return [backend.asnumpy(a) for a in arrays]


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def density_and_score(grid, density, score, path, title="A 1-D Gaussian mixture and its score"):
    """Density p(x) above its score d/dx log p(x), with arrows showing that the score points
    towards higher density (seed 000, fig. 1)."""
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
    return _save(fig, path)


def denoising_targets(x_tilde, targets, grid, curves, path, title, binned=None):
    """DSM targets (x - x~)/sigma^2 scattered at x~ beside score curves {label: values on grid}
    (seed 000, fig. 3): the targets scatter around the perturbed score, matching it on average;
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
    return _save(fig, path)


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
    return _save(fig, path)


def sample_histograms(grid, density, samples, path, title="Samples vs the true density"):
    """One panel per sampler {label: 1-D samples}: a histogram over the true density."""
    grid, density = _host(grid, density)
    fig, axes = plt.subplots(1, len(samples), figsize=(5 * len(samples), 3.8), sharey=True)
    for ax, (label, x), color in zip(list(getattr(axes, "flat", [axes])), samples.items(), COLORS):
        ax.hist(backend.asnumpy(x).ravel(), bins=80, range=(grid[0], grid[-1]), density=True,
                alpha=0.6, color=color, label="samples")
        ax.plot(grid, density, color="k", lw=1.5, label="true density")
        ax.set_title(label)
        ax.set_xlabel("x")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def _robust_limits(values, pad=0.15):
    """y-limits from the 1st-99th percentiles, so a few wild values do not flatten a figure."""
    ordered = backend.asnumpy(values).ravel().copy()
    ordered.sort()
    last = len(ordered) - 1
    low, high = ordered[int(0.01 * last)], ordered[int(0.99 * last)]
    span = max(high - low, 1e-6)
    return low - pad * span, high + pad * span
