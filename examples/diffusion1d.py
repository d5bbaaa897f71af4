"""What each diffusion sampler's steps buy, on the 1-D mixture of ``examples.gmm1d``: the forward
VE and VP processes as pictures, the error of every sampler against the exact p at t_min as the
number of score evaluations grows (with the exact score: pure discretisation error; with a learned
one: where the network's error takes over), and PF-ODE log-likelihoods against the analytic ones.

    python -m examples.diffusion1d            # full run, about 90 s on a 2-core CPU
    python -m examples.diffusion1d --quick    # about 25 s (the test runs this)

Figures (PNG) and metrics.json go to --out (default ./out/diffusion1d/); the tables print here.
The learned score is one noise-conditional MLP per SDE (``ms.models.noise_conditional_mlp``),
s(y, σ) = MLP(y/√(σ² + σ_data²), log σ)/σ, read as a score in time through
``ms.sde.sigma_conditioned`` (σ = sigma_t/alpha_t, y = x/alpha_t) and trained by continuous-time DSM
(``ms.objectives.dsm_sde``, λ(t) = sigma_t²). Every sampler starts from exact draws of p_1.
"""
import math

import autograd.numpy as anp

import minimalscore as ms
from minimalscore import models, train

from . import diffusion1d_exact as exact
from . import diffusion1d_figures as figures
from . import diffusion1d_measure as measure
from . import gmm1d
from .common import parse_args, print_table, save_metrics

# σ_max 50 as Song et al. 2021 on CIFAR-10, five times the largest distance between two data points
# (Song & Ermon 2020, Technique 1, asks at least that): at σ_max = 10 the prior N(0, σ_max²) still
# misses p_1's mean 0.65 by 0.065 σ_max, and the ODE carries that mismatch to the samples intact.
VE_SIGMAS = (0.01, 50.0)
VP_BETAS = (0.1, 20.0)  # Ho et al. 2020's β_1 = 1e-4 .. β_T = 0.02 at T = 1000 (Song et al. 2021 App. B)
HIDDEN, BATCH, LR, EMA_DECAY = (32, 32), 512, 1e-2, 0.995
SIGMA_DATA = 2.16  # the standard deviation of p
LAW_STEPS = 100  # RK4 steps for the learned ODE's law on a grid: converged, so it is the samplers' limit
# Run sizes: samples per error point with the exact score (cheap: many, for a low noise floor) and
# with the learned one, score-evaluation budgets, training points and Adam steps, held-out points,
# RK4 steps of the likelihood ODE, Hutchinson repeats, size of the sample standing for p_{t_min}.
FULL = dict(n_exact=30000, n_learned=5000, budgets=(10, 20, 50, 100, 200, 500, 1000), n_train=20000,
            train_steps=3000, n_heldout=300, ll_steps=50, repeats=8, n_reference=200000)
QUICK = dict(n_exact=20000, n_learned=2000, budgets=(10, 20, 50, 200, 600), n_train=10000,
             train_steps=1000, n_heldout=100, ll_steps=30, repeats=5, n_reference=100000)


def sdes():
    return {"VE": ms.sde.VE(*VE_SIGMAS), "VP": ms.sde.VP(*VP_BETAS)}


def train_score(sde, name, data, rng, n_steps):
    """One noise-conditional MLP trained by continuous-time DSM on ``sde`` (Song et al. 2021
    eq. 7, λ(t) = sigma_t²); returns (score(x, t), score(y, σ)) from its EMA weights."""
    def loss(params, batch, rng):
        return ms.objectives.dsm_sde(ms.sde.sigma_conditioned(net(params), sde), sde, batch, rng)

    params = models.noise_conditional_mlp_init(rng, 1, HIDDEN)
    ema = train.fit(loss, params, data, n_steps, batch_size=BATCH, rng=rng, lr=LR, ema_decay=EMA_DECAY,
                    desc=f"train the {name} score")[1]["ema"]
    return ms.sde.sigma_conditioned(net(ema), sde), net(ema)


def net(params):
    """s(y, σ) = MLP(c(σ) y, log σ)/σ: the noise-conditional MLP fed y scaled by
    c(σ) = 1/√(σ² + σ_data²), one over the standard deviation of p_σ (Karras et al. 2022,
    Table 1's c_in), so that its input is of unit size at σ = 0.01 and at σ = 150 alike."""
    return lambda y, sigma: models.noise_conditional_mlp(
        params, y / anp.sqrt(sigma ** 2 + SIGMA_DATA ** 2)[:, None], sigma)


def forward_pictures(sde_map, out, rng, quick):
    """p_t(x) over (t, x) for each SDE, with forward Euler-Maruyama paths of the SDE itself."""
    xp = ms.backend.xp
    times = [i / 300 for i in range(301)]
    spans = {"VE": 30.0, "VP": 6.0}
    titles = {"VE": f"VE SDE: no drift, noise grows from σ = {VE_SIGMAS[0]} to {VE_SIGMAS[1]}; "
                    "the mixture is blurred into a wide Gaussian",
              "VP": f"VP SDE, β from {VP_BETAS[0]} to {VP_BETAS[1]}: drift -½β(t)x shrinks, noise √β(t) "
                    "refills; the mixture becomes N(0, 1)"}
    paths = {}
    for name, sde in sde_map.items():
        grid = xp.linspace(-spans[name], spans[name], 400)[:, None]
        density = xp.stack([xp.exp(exact.marginal(sde, t).log_prob(grid)) for t in times])
        x, path = gmm1d.target().sample(6, rng).astype(xp.float64), []
        for t, t_next in zip(times, times[1:]):
            path.append(x[:, 0])
            dt = t_next - t
            x = x + sde.drift(x, t) * dt + sde.diffusion(t) * math.sqrt(dt) * rng.normal(x.shape, dtype=x.dtype)
        path.append(x[:, 0])
        paths[name] = figures.forward_process(
            times, ms.backend.asnumpy(grid[:, 0]), ms.backend.asnumpy(density),
            ms.backend.asnumpy(xp.stack(path, axis=1)), f"{out}/1_forward_{name}.png",
            titles[name] + quick)
    return paths


def _table(curves, budgets, metric):
    return {f"{sde} {family}": {f"{b} evals": v for b, v in zip(budgets, c[metric])}
            for sde, by_family in curves.items() for family, c in by_family.items()}


def _figure_curves(curves):
    return {f"{sde} SDE": {measure.SAMPLERS[f][0]: (f, c["nfe"], c) for f, c in by_family.items()}
            for sde, by_family in curves.items()}


def _floats(d):
    """The plain numbers of a result (its arrays are for the figures)."""
    return {k: v for k, v in d.items() if isinstance(v, (int, float))}


def study(args, size, rng):
    """Every measurement of the study, by score kind ("exact", "learned") and SDE name."""
    sde_map = sdes()
    data = gmm1d.target().sample(size["n_train"], rng)
    scores = {"exact": {name: (exact.exact_score(sde), exact.perturbed_score) for name, sde in sde_map.items()},
              "learned": {name: train_score(sde, name, data, rng, size["train_steps"])
                          for name, sde in sde_map.items()}}
    references = {name: exact.marginal(sde, sde.t_min).sample(size["n_reference"], rng)[:, 0]
                  for name, sde in sde_map.items()}
    floors = {kind: {name: measure.noise_floor(sde, size[f"n_{kind}"], references[name], rng)
                     for name, sde in sde_map.items()} for kind in scores}
    curves = {kind: {name: measure.error_curves(scores[kind][name], name, sde, size["budgets"],
                                                size[f"n_{kind}"], references[name], rng,
                                                f"{kind} score, {name} samplers")
                     for name, sde in sde_map.items()} for kind in scores}
    network = {}
    for name, sde in sde_map.items():
        j = exact.score_error(scores["learned"][name][0], sde, rng)
        network[name] = {"score error J": j, "KS bound": exact.ks_bound(j), "prior KL": exact.prior_kl(sde)}
    heldout = gmm1d.target().sample(size["n_heldout"], rng)
    laws = {kind: {name: measure.ode_law(scores[kind][name][0], sde, LAW_STEPS)
                   for name, sde in sde_map.items()} for kind in scores}
    likelihood = {kind: {name: measure.likelihoods(scores[kind][name][0], sde, heldout, size["ll_steps"],
                                                   size["repeats"], rng)
                         for name, sde in sde_map.items()} for kind in scores}
    return {"sdes": sde_map, "floors": floors, "curves": curves, "network": network, "heldout": heldout,
            "laws": laws, "likelihood": likelihood}


def draw(r, size, out, quick):
    floors = {kind: {f"{k} SDE": v for k, v in by.items()} for kind, by in r["floors"].items()}
    figures.error_vs_evaluations(_figure_curves(r["curves"]["exact"]), floors["exact"],
                                 f"{out}/2_error_exact_score.png",
                                 f"Exact score, {size['n_exact']} samples a point: the error left is the "
                                 "discretisation's" + quick)
    bounds = {}
    for name, law in r["laws"]["learned"].items():
        ode = "the learned ODE's own law (exact, by change of variables)"
        bounds[f"{name} SDE"] = {
            "w1": [(law["w1"], f"{ode}: {law['w1']:.3g}")],
            "ks": [(law["ks"], f"{ode}: {law['ks']:.3g}"),
                   (r["network"][name]["KS bound"],
                    f"reverse SDE with many steps ≤ √(J/2) = {r['network'][name]['KS bound']:.3g} (Pinsker)")]}
    figures.error_vs_evaluations(_figure_curves(r["curves"]["learned"]), floors["learned"],
                                 f"{out}/3_error_learned_score.png",
                                 f"Learned score, {size['n_learned']} samples a point: the error stops falling "
                                 "where the network's error begins" + quick,
                                 bounds)
    host, panels = ms.backend.asnumpy, {}
    x = host(r["heldout"][:, 0])
    for name in r["sdes"]:
        law, series = r["laws"]["learned"][name], {}
        for kind in ("exact", "learned"):
            result = r["likelihood"][kind][name]
            series[f"{kind} score, exact divergence"] = (host(result["error"]), None)
            series[f"{kind} score, Hutchinson: mean ± sd of {size['repeats']} probes"] = (
                host(result["hutchinson_error"]), host(result["spread"]))
        panels[f"{name} SDE, RK4 with {size['ll_steps']} steps"] = (
            host(law["grid"]), host(law["p"]), host(law["q"]), x, series)
    figures.likelihoods(panels, f"{out}/4_likelihood.png",
                        "PF-ODE log-likelihood against the analytic log p at t_min" + quick)


def report(r, size):
    budgets, columns = size["budgets"], [f"{b} evals" for b in size["budgets"]]
    floor = ", ".join(f"{k} {v['w1'][0]:.3g}" for k, v in r["floors"]["exact"].items())
    print_table(f"W1 to the exact p at t_min, EXACT score (discretisation error only; noise floor {floor})",
                _table(r["curves"]["exact"], budgets, "w1"), columns)
    floor = ", ".join(f"{k} {v['w1'][0]:.3g}" for k, v in r["floors"]["learned"].items())
    print_table(f"W1 to the exact p at t_min, LEARNED score (the network's error added; noise floor {floor})",
                _table(r["curves"]["learned"], budgets, "w1"), columns)
    last = f"{budgets[-1]} evals"
    ks = {kind: _table(r["curves"][kind], budgets, "ks") for kind in ("exact", "learned")}
    summary = {name: {"KS floor": r["floors"]["learned"][name]["ks"][0],
                      "learned RK4": ks["learned"][f"{name} rk4"][last],
                      "learned ODE law": r["laws"]["learned"][name]["ks"],
                      "learned EM": ks["learned"][f"{name} em"][last],
                      "EM bound": r["network"][name]["KS bound"],
                      "score error J": r["network"][name]["score error J"]} for name in r["sdes"]}
    print_table(f"KS at {last}: the learned ODE's samples against its exact law; the learned reverse SDE "
                "against Pinsker's bound √(J/2), J the network's likelihood-weighted score error",
                summary, list(next(iter(summary.values()))))
    rows = {f"{name} {kind}": _floats(r["likelihood"][kind][name]) for kind in ("exact", "learned")
            for name in r["sdes"]}
    print_table(f"PF-ODE log-likelihood of {size['n_heldout']} held-out points: mean and median |error| (nats), "
                "bits/dim (256 levels over [-6, 6]), Hutchinson's bias and sd, its probes' ε² (mean 1, variance 2)",
                rows, ["mean_abs_error", "median_abs_error", "bpd_true", "bpd_ode", "hutchinson_bias",
                       "hutchinson_sd", "probe_sq_mean", "probe_sq_var"])


def main(argv=None):
    args = parse_args("diffusion1d", __doc__.splitlines()[0], argv)
    rng = ms.backend.default_rng(args.seed)
    size = QUICK if args.quick else FULL
    quick = " (quick run)" if args.quick else ""
    forward_pictures(sdes(), args.out, rng, quick)
    r = study(args, size, rng)
    draw(r, size, args.out, quick)
    report(r, size)
    return save_metrics(args, {
        "curves": r["curves"], "floors": r["floors"], "network": r["network"],
        "ode_law": {kind: {name: _floats(v) for name, v in laws.items()} for kind, laws in r["laws"].items()},
        "likelihood": {kind: {name: _floats(v) for name, v in by.items()} for kind, by in r["likelihood"].items()},
        "size": {k: list(v) if isinstance(v, tuple) else v for k, v in size.items()},
        "labels": {f: v[0] for f, v in measure.SAMPLERS.items()},
        "sdes": {"VE": {"sigma_min": VE_SIGMAS[0], "sigma_max": VE_SIGMAS[1]},
                 "VP": {"beta_min": VP_BETAS[0], "beta_max": VP_BETAS[1]}}})


if __name__ == "__main__":
    main()
