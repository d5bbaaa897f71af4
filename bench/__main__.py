"""python -m bench [--workload NAME] [--backend numpy|cupy] [--quick] [--json PATH] [--passes N]
[--compare PEERS.json]

Times the workloads of DESIGN.md §7 (float32, current backend) and prints median / min / max ms
per call, then the ratios issue 7's targets are stated in. ``--compare`` adds a peer's medians
(``../shared/peers`` results, e.g. PyTorch's) and our ratio to them: run the two back to back.
"""
import argparse
import time

import minimalscore as ms

from . import timing
from .workloads import WORKLOADS


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    ap.add_argument("--workload", choices=list(WORKLOADS), action="append",
                    help="run this workload (repeatable; default: all)")
    ap.add_argument("--backend", choices=["numpy", "cupy"], default=None,
                    help="array backend (default: MINIMALSCORE_BACKEND or numpy)")
    ap.add_argument("--quick", action="store_true", help="smoke run: a few repetitions, smaller W5, W6, GEMM")
    ap.add_argument("--json", metavar="PATH", help="write {key: {median_ms, min_ms, max_ms, ...}} here")
    ap.add_argument("--passes", type=int, default=1,
                    help="passes over the workloads; each key keeps its best pass (default 1)")
    ap.add_argument("--compare", metavar="PEERS_JSON", help="a peer's results file to put beside ours")
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
