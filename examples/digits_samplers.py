"""The digits model's samplers, each counted in network calls, and the study that compares them.

A saved NCSN-lite (``ncsn.apply``) knows s(x, σ) for σ in [σ_L, σ_1] of its training schedule.
The variance-exploding SDE with σ_min = σ_L and σ_max = σ_1 (Song et al. 2021 App. C) covers
exactly that range as t runs over [0, 1], and ``sde.sigma_conditioned`` turns the net into
s(x, t) = s(x, σ(t)); between the trained levels the net interpolates its norm tables in log σ.

    annealed      annealed Langevin (Song & Ermon 2019 Alg. 1), K steps at each of the L levels
                  with step ε·T/K (T the schedule's own steps per level: fewer, larger steps),
                  then Tweedie's denoising step: L K + 1 calls; starts from U[0, 1]. With
                  ``levels`` L' < L, over L' geometric levels from σ_1 to σ_L instead (the net
                  answers between its levels): L' K + 1 calls
    reverse_sde   Euler-Maruyama on the reverse SDE (Song et al. 2021 eq. 6), K steps: K calls
    pc            predictor-corrector (Song et al. 2021 Alg. 2), K steps of one Langevin
                  corrector (signal-to-noise ratio 0.16) then one Euler-Maruyama predictor: 2K calls
    pf_ode        the probability-flow ODE (Song et al. 2021 eq. 13), K Euler, Heun or RK4
                  steps: K, 2K or 4K calls

The SDE samplers start from the prior N(0, σ_1² I). Every sample is clipped to [0, 1].
"""
import csv
import math
import time

from matplotlib.figure import Figure  # drawn straight to a file: no pyplot, no window

import minimalscore as ms
from minimalscore import ncsn, samplers

from .digits_judge import sample_quality

SAMPLERS = ("annealed", "reverse_sde", "pc", "pf_ode")
METHODS = ("euler", "heun", "rk4")
CALLS_PER_STEP = {"euler": 1, "heun": 2, "rk4": 4}
WORDS = {"annealed": "annealed Langevin", "reverse_sde": "reverse SDE (Euler-Maruyama)",
         "pc": "predictor-corrector", "pf_ode": "probability-flow ODE"}


def counted(score):
    """``score`` and a list whose length is the number of times it has been called: each call
    evaluates the network once on the whole batch, one network call per sample."""
    calls = []

    def score_counted(x, sigma):
        calls.append(1)
        return score(x, sigma)
    return score_counted, calls


def ve_sde(model):
    """The VE SDE spanning the model's training schedule: σ(0) = σ_L, σ(1) = σ_1."""
    return ms.sde.VE(float(model["sigmas"][-1]), float(model["sigmas"][0]))


def expected_calls(model, sampler, steps, method="heun", levels=None):
    """Network calls per sample of a sampler (the study checks its own count against this)."""
    per_step = {"annealed": levels or len(model["sigmas"]), "reverse_sde": 1, "pc": 2,
                "pf_ode": CALLS_PER_STEP[method]}[sampler]
    return per_step * steps + (sampler == "annealed")


def draw(model, n, rng, sampler="annealed", steps=None, method="heun", levels=None, progress=False):
    """n samples (n, C, H, W) in [0, 1] and the network calls each took. ``steps`` is K above
    (default: the schedule's Langevin steps per level for ``annealed``, 20 otherwise)."""
    sigmas = model["sigmas"]
    score, calls = counted(lambda x, sigma: ncsn.apply(model["score_model"], x, sigma, sigmas))
    shape = (n,) + tuple(model["shape"])
    if sampler == "annealed":
        steps = steps or model["n_steps_each"]
        eps = model["eps"] * model["n_steps_each"] / steps
        xp = ms.backend.xp
        grid = sigmas if levels is None else xp.exp(xp.linspace(
            math.log(float(sigmas[0])), math.log(float(sigmas[-1])), levels)).astype(ms.backend.float_dtype)
        x = samplers.annealed_langevin(score, rng.uniform(0.0, 1.0, shape), grid, eps, steps, rng,
                                       denoise=True, progress=progress)
    else:
        steps = steps or 20
        sde = ve_sde(model)
        score_t, x_T = ms.sde.sigma_conditioned(score, sde), sde.prior_sample(shape, rng)
        if sampler == "reverse_sde":
            x = ms.sde.reverse_sde(score_t, sde, x_T, steps, rng, progress=progress)
        elif sampler == "pc":
            x = ms.sde.predictor_corrector(score_t, sde, x_T, steps, rng, progress=progress)
        elif sampler == "pf_ode":
            x = ms.sde.probability_flow(score_t, sde, x_T, steps, method=method, progress=progress)
        else:
            raise ValueError(f"sampler: expected one of {SAMPLERS}, got {sampler!r}")
    return ms.backend.xp.clip(x, 0.0, 1.0), len(calls)


def describe(sampler, steps, method="heun", levels=None):
    """A short name for a sampler setting, e.g. 'pf_ode heun K=10', 'annealed L=19 K=1'."""
    return (f"{sampler}{' ' + method if sampler == 'pf_ode' else ''}"
            f"{f' L={levels}' if sampler == 'annealed' and levels else ''} K={steps}")


# ---------------------------------------------------------------- the study
# annealed Langevin at the schedule's T = 20, at the cheaper T with larger steps, and on fewer
# levels; each SDE sampler from 10 to 100 calls
FULL_GRID = ([dict(sampler="annealed", steps=k) for k in (20, 5, 2, 1)]
             + [dict(sampler="annealed", steps=1, levels=n) for n in (19, 15)]
             + [dict(sampler="reverse_sde", steps=k) for k in (10, 20, 50, 100)]
             + [dict(sampler="pc", steps=k) for k in (5, 10, 25, 50)]
             + [dict(sampler="pf_ode", steps=k, method="euler") for k in (10, 20)]
             + [dict(sampler="pf_ode", steps=k, method="heun") for k in (5, 10, 25)]
             + [dict(sampler="pf_ode", steps=k, method="rk4") for k in (5, 25)])


def meets(row):
    """The quality target: the judge's confidence >= 0.85, all ten classes, NN ratio >= 1."""
    return row["confidence"] >= 0.85 and row["classes_present"] == 10 and row["nn_distance_ratio"] >= 1.0


# the full run's comparison beside its default and reference samplers: each SDE sampler at about
# 20 and 50 network calls (the whole grid is the ``samplers`` subcommand's)
RUN_GRID = ([dict(sampler="reverse_sde", steps=k) for k in (20, 50)]
            + [dict(sampler="pc", steps=k) for k in (10, 25)]
            + [dict(sampler="pf_ode", steps=10, method="heun"), dict(sampler="pf_ode", steps=5, method="rk4")])


def study_row(setting, calls, quality, seconds):
    """One row of the study: the setting, its network calls, the judge's numbers, the target met."""
    setting = dict(dict(method="heun", levels=None), **setting)
    sampler = setting["sampler"]
    row = {"sampler": sampler, "steps": setting["steps"],
           "method": setting["method"] if sampler == "pf_ode" else "", "levels": setting["levels"] or "",
           "calls": calls, "confidence": quality["confidence"],
           "classes_present": quality["classes_present"],
           "nn_distance_ratio": quality["nn_distance_ratio"], "seconds": round(seconds, 1)}
    print(f"  {describe(**setting):24s} {calls:4d} calls  confidence {row['confidence']:.3f}  classes "
          f"{row['classes_present']}  NN ratio {row['nn_distance_ratio']:.3f}  ({row['seconds']} s)", flush=True)
    return dict(row, meets=meets(row))


def study(model, clf, reference, n, seed, grid):
    """Each setting of ``grid`` draws n samples at the same seed and is judged (``study_row``)."""
    rows = []
    for setting in grid:
        setting = dict(dict(method="heun", levels=None), **setting)
        started = time.perf_counter()
        x, calls = draw(model, n, ms.backend.default_rng(seed), **setting)
        if calls != expected_calls(model, **setting):
            raise RuntimeError(f"{describe(**setting)}: {calls} network calls, expected "
                               f"{expected_calls(model, **setting)}")
        rows.append(study_row(setting, calls, sample_quality(clf, x, reference), time.perf_counter() - started))
    return rows


def write_study(rows, ceiling, out):
    """samplers.csv (one row per setting) and samplers.png in the folder ``out``."""
    with open(f"{out}/samplers.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    study_figure(rows, ceiling, f"{out}/samplers.png")


def cheapest_meeting(rows):
    """The row with the fewest calls that meets the target, or None."""
    good = [row for row in rows if row["meets"]]
    return min(good, key=lambda row: row["calls"]) if good else None


def study_figure(rows, ceiling, path):
    """Judge confidence and NN ratio against network calls, one line per sampler."""
    fig = Figure(figsize=(10, 4))
    panels = fig.subplots(1, 2)
    for ax, key, label, target in zip(panels, ("confidence", "nn_distance_ratio"),
                                      ("judge's mean confidence", "median NN distance ratio"), (0.85, 1.0)):
        families = {}
        for row in rows:
            name = WORDS[row["sampler"]] + (f" ({row['method']})" if row["method"] else "") + (
                f", {row['levels']} levels x 1 step" if row["levels"] else "")
            families.setdefault(name, []).append((row["calls"], row[key]))
        for name, points in families.items():
            points.sort()
            ax.plot(*zip(*points), "o-", label=name)
        ax.axhline(target, color="k", ls="--", lw=0.8, label=f"target {target}")
        ax.axhline(ceiling[key], color="0.5", ls=":", lw=1, label="held-out real digits")
        ax.axvline(20, color="C3", ls=":", lw=0.8)
        ax.set(xscale="log", xlabel="network calls per sample", ylabel=label)
    panels[0].legend(fontsize=7)
    fig.suptitle("Digits: sample quality against network calls (the same model, each sampler)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
