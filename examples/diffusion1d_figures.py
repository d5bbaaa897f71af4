"""The diffusion study's figures: a forward process as an image, sample error against the number of
score evaluations, and likelihood errors per held-out point. Inputs are host arrays or lists; no
numerics happen here."""
import matplotlib.pyplot as plt
from matplotlib.colors import PowerNorm

from minimalscore import plot  # its import selects the file-only (Agg) backend

# one colour and marker per sampler family, the same in every figure
STYLE = {"annealed": ("tab:gray", "v"), "em": ("tab:blue", "o"), "pc": ("tab:cyan", "s"),
         "heun": ("tab:orange", "^"), "rk4": ("tab:red", "D"), "ddpm": ("tab:green", "P"),
         "ddim": ("tab:purple", "X")}


def forward_process(times, grid, density, paths, path, title):
    """p_t(x) as an image over (t, x), with a few forward paths of the SDE drawn over it."""
    fig, ax = plt.subplots(figsize=(8, 4.6))
    image = ax.pcolormesh(times, grid, density.T, shading="auto", cmap="magma",
                          norm=PowerNorm(0.35, vmin=0, vmax=density.max()))
    for k, row in enumerate(paths):
        ax.plot(times, row, color="w", lw=0.7, alpha=0.8, label="forward SDE paths" if k == 0 else None)
    ax.set_ylim(grid[0], grid[-1])
    ax.set_xlabel("time t  (t = 0: the data;  t = 1: close to the prior, Gaussian)")
    ax.set_ylabel("position x")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.5)
    fig.colorbar(image, ax=ax, label="density p_t(x)  (colour ∝ density^0.35, to show the tails)")
    return plot.save(fig, path)


def error_vs_evaluations(curves, floors, path, title, bounds=None):
    """A 2 x 2 grid, rows W1 and KS, columns the two SDEs: one line per sampler over the number
    of score evaluations, the sampling-noise floor as a band, and optional horizontal bounds.
    curves {sde: {label: (family, nfe list, {"w1": list, "ks": list})}};
    floors {sde: {"w1": (mean, sd), "ks": (mean, sd)}}; bounds {sde: {"ks": (value, label)}}."""
    sdes = list(curves)
    fig, axes = plt.subplots(2, len(sdes), figsize=(6.2 * len(sdes), 8.2), sharex=True, squeeze=False)
    names = {"w1": "W1 distance to the exact p at t_min", "ks": "KS distance to the exact p at t_min"}
    for col, sde in enumerate(sdes):
        for row, metric in enumerate(("w1", "ks")):
            ax = axes[row, col]
            for label, (family, nfe, values) in curves[sde].items():
                color, marker = STYLE[family]
                ax.plot(nfe, values[metric], marker=marker, color=color, ms=5, lw=1.5, label=label)
            mean, sd = floors[sde][metric]
            ax.axhspan(1e-9, mean + 2 * sd, color="k", alpha=0.12,
                       label=f"within sampling noise: exact samples score {mean:.2g} (+ 2 sd: {mean + 2 * sd:.2g})")
            for (value, label), style in zip((bounds or {}).get(sde, {}).get(metric, []), ("--", ":")):
                ax.axhline(value, color="k", ls=style, lw=1.3, label=label)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_ylim(bottom=mean / 5)
            ax.grid(True, which="both", alpha=0.25)
            ax.set_ylabel(names[metric])
            if row == 0:
                ax.set_title(sde, fontsize=10)
            if row == 1:
                ax.set_xlabel("score evaluations per sample")
            ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=11)
    return plot.save(fig, path)


def likelihoods(panels, path, title):
    """Two rows, one column per SDE: above, p at t_min and the learned PF-ODE's density on a grid;
    below, per held-out point, the ODE's log-likelihood minus the analytic log p.
    panels {sde: (grid, p, q, x, {label: (errors, spread or None)})}."""
    fig, axes = plt.subplots(2, len(panels), figsize=(6.2 * len(panels), 8.2), squeeze=False,
                             gridspec_kw={"height_ratios": [1, 1.4]})
    colors = ["tab:gray", "tab:orange", "tab:red", "tab:blue"]
    for col, (sde, (grid, p, q, x, series)) in enumerate(panels.items()):
        top, bottom = axes[0, col], axes[1, col]
        top.fill_between(grid, p, color="k", alpha=0.15, label="exact p at t_min")
        top.plot(grid, q, color="tab:blue", lw=1.5, label="learned score's PF-ODE density (change of variables)")
        top.set_ylabel("density")
        top.set_title(sde, fontsize=10)
        top.legend(fontsize=7)
        for (label, (errors, spread)), color in zip(series.items(), colors):
            if spread is None:
                bottom.plot(x, errors, "o", ms=2.5, color=color, label=label, zorder=3)
            else:
                bottom.errorbar(x, errors, yerr=spread, fmt="o", ms=2, color=color, elinewidth=0.6,
                                alpha=0.5, label=label)
        bottom.axhline(0, color="k", lw=0.8)
        bottom.set_yscale("symlog", linthresh=1.0)  # linear within ±1 nat, logarithmic beyond: tails show
        bottom.set_xlim(grid[0], grid[-1])
        bottom.set_xlabel("position x (held-out points drawn from p)")
        bottom.set_ylabel("log-likelihood error (nats): ODE - analytic\n(linear within ±1, log scale beyond)")
        bottom.legend(fontsize=7)
    fig.suptitle(title, fontsize=11)
    return plot.save(fig, path)
