"""python -m bench [--workload NAME] [--backend numpy|cupy] [--quick] [--json PATH] [--passes N]
[--compare OTHER.json]

Times the standard workloads W1-W6 (float32, current backend; run from the repository root),
prints median / min / max ms per call, then each speed target as a ratio within this run with a
pass/fail mark. Every workload first checks its loss and gradient against a float64 reference
and prints OK or FAIL. --compare adds another framework's medians (a JSON file in the
layout --json writes, under the framework's name) and our ratio to them: run the two back
to back.
"""
import argparse
import time

import minimalscore as ms

from . import timing
from .workloads import WORKLOADS


WORKLOADS_HELP = """workloads (all float32; --workload takes the names in brackets):
  W1 [dsm_ncsn_mlp]  one training step (loss, gradient, Adam) of multi-scale DSM: the
                     noise-conditional MLP concat(x, log sigma) (3) -> 128 -> 128 -> 2, softplus,
                     output / sigma; 10 geometric sigmas 1.0 .. 0.01, one per example; the 2-D
                     swiss roll; batch 512. Beside it, the same step written by hand in NumPy
                     (floor_dsm_ncsn_mlp).
  W2 [exact_sm_mlp]  MLP 2 -> 128 -> 128 -> 2, softplus; implicit SM with the exact trace;
                     batch 512; one training step.
  W3 [ssm_mlp]       W2's net; sliced SM, one Gaussian projection per example; batch 512.
  W4 [exact_sm_scaling]  MLP D -> 128 -> 128 -> D, batch 128, D in 2, 8, 32, 128: exact SM,
                     sliced SM and DSM (sigma 0.1) steps (scaling_<kind>_D<D>).
  W5 [conv2d]        x (128, 32, 16, 16), w (32, 32, 3, 3), padding 1: forward, and forward +
                     backward (dx, dw); with [gemm], the backend's float32 matrix product (2048^3)
                     that bounds it.
  W6 [annealed_langevin]  W1's net, 10,000 particles in 2-D, 10 levels x 100 steps, eps 2e-5
                     (step x + (eps_i/2) s + sqrt(eps_i) z, eps_i = eps sigma_i^2 / sigma_L^2);
                     beside it the NumPy loop (floor_annealed_langevin).
--quick: a few repetitions, GEMM 512^3, W5 on a batch of 16, W6 with 1,000 particles x 5 steps."""


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1],
                                 epilog=WORKLOADS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", choices=list(WORKLOADS), action="append",
                    help="run this workload (repeatable; default: all)")
    ap.add_argument("--backend", choices=["numpy", "cupy"], default=None,
                    help="array backend (default: MINIMALSCORE_BACKEND or numpy)")
    ap.add_argument("--quick", action="store_true", help="smoke run: a few repetitions, smaller W5, W6, GEMM")
    ap.add_argument("--json", metavar="PATH", help="write {key: {median_ms, min_ms, max_ms, ...}} here")
    ap.add_argument("--passes", type=int, default=1,
                    help="passes over the workloads; each key keeps its best pass (default 1)")
    ap.add_argument("--compare", metavar="OTHER_JSON", help="another framework's results to put beside ours")
    ap.add_argument("--framework", default="torch", help="the framework read from --compare (default torch)")
    ap.add_argument("--blas-threads", type=int, metavar="N",
                    help="limit BLAS to N threads for this run (threadpoolctl; default: as installed)")
    return ap.parse_args(argv)


def limit_blas_threads(n):
    """On a shared machine a multi-threaded GEMM waits for a busy core at every call, so small
    workloads measure the neighbours; one thread takes them out (PyTorch runs small ops on one
    thread by itself). Uses threadpoolctl's run-time call, no environment variable."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as err:
        raise SystemExit(f"--blas-threads needs threadpoolctl (pip install threadpoolctl): {err}")
    return threadpool_limits(n, user_api="blas")


def main(argv=None):
    args = parse_args(argv)
    if args.backend:
        ms.backend.use(args.backend)
    if args.blas_threads:
        limit_blas_threads(args.blas_threads)
    names = args.workload or list(WORKLOADS)
    threads = f", {args.blas_threads} BLAS thread(s)" if args.blas_threads else ""
    print(f"minimalscore bench: backend {ms.backend.name}, workloads {', '.join(names)}"
          f"{', quick' if args.quick else ''}{threads}", flush=True)
    start, passes = time.perf_counter(), []
    for p in range(args.passes):
        results = {}
        for name in names:
            print(f"[pass {p + 1}/{args.passes}] {name}", flush=True)
            results.update(WORKLOADS[name](args.quick))
        passes.append(results)
    results = timing.best_of(passes)
    peers = timing.read_peer(args.compare, args.framework) if args.compare else None
    print()
    timing.print_table(results, peers, args.framework)
    timing.print_targets(results, peers)
    print(f"\n{time.perf_counter() - start:.1f} s in all")
    if args.json:
        timing.write_json(args.json, results)


if __name__ == "__main__":
    main()
