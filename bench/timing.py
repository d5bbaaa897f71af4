"""Timing and reporting: median / min / max milliseconds per call, the table, the JSON file.

The machine this runs on is shared and its speed drifts, so a result is only meaningful next
to another measured in the same run: the table therefore ends with the ratios the targets are
stated in (library / NumPy floor, conv2d / GEMM, ...), each with a pass/fail mark, and
``--compare`` puts another framework's results (same JSON layout) beside ours.
"""
import json
import statistics
import time

from minimalscore import backend


def synchronize():
    """Wait for queued device work: CuPy launches kernels asynchronously, so a timer stopped
    without this would measure the launch, not the work. No-op on NumPy."""
    if backend.name == "cupy":
        backend.xp.cuda.get_current_stream().synchronize()


def measure(fns, quick=False, warmup=5, reps=20, min_time_s=2.0, max_reps=2000):
    """Time each callable of ``fns`` ({key: fn}): ``warmup`` calls, then at least ``reps`` timed
    calls (more, up to ``max_reps``, while under ``min_time_s``). Several callables are timed in turn, call by call, so a slow
    spell of the shared machine hits all of them alike and their ratio stays meaningful.
    Returns {key: {median_ms, min_ms, max_ms, reps}}."""
    if quick:
        warmup, reps, min_time_s = 1, 3, 0.0
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    synchronize()
    times, rounds, start = {key: [] for key in fns}, 0, time.perf_counter()
    while rounds < reps or (time.perf_counter() - start < min_time_s and rounds < max_reps):
        rounds += 1
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            synchronize()
            times[key].append((time.perf_counter() - t0) * 1e3)
    return {key: dict(median_ms=statistics.median(t), min_ms=min(t), max_ms=max(t), reps=len(t))
            for key, t in times.items()}


def with_gflops(result, flops):
    """Add the throughput at the median time: ``flops`` floating-point operations per call."""
    return dict(result, gflops=flops / result["median_ms"] / 1e6)


def best_of(passes):
    """Per key, the pass with the lowest median (a slow spell of the shared machine
    spoils one pass, not the result); ``pass_medians_ms`` keeps every pass's median."""
    best = {}
    for results in passes:
        for key, r in results.items():
            medians = best.get(key, {}).get("pass_medians_ms", []) + [round(r["median_ms"], 4)]
            if key not in best or r["median_ms"] < best[key]["median_ms"]:
                best[key] = dict(r)
            best[key]["pass_medians_ms"] = medians
    return best


def print_table(results, peers=None, peer_name="peer"):
    """One row per key: median, min, max ms, repetitions, GFLOP/s; with ``peers`` ({key: stats})
    also the peer's median and our median / peer's median."""
    head = f"{'workload':30s} {'median ms':>11s} {'min':>10s} {'max':>10s} {'reps':>5s} {'GFLOP/s':>8s}"
    if peers is not None:
        head += f" {peer_name + ' ms':>11s} {'ratio':>7s}"
    print(head)
    print("-" * len(head))
    for key, r in results.items():
        gflops = f"{r['gflops']:8.1f}" if "gflops" in r else " " * 8
        row = (f"{key:30s} {r['median_ms']:11.3f} {r['min_ms']:10.3f} {r['max_ms']:10.3f} "
               f"{r['reps']:5d} {gflops}")
        if peers is not None and key in peers:
            peer = peers[key]["median_ms"]
            row += f" {peer:11.3f} {r['median_ms'] / peer:7.2f}"
        print(row)


def ratio(results, a, b):
    """results[a] / results[b] by median, or None when either was not run."""
    if a in results and b in results:
        return results[a]["median_ms"] / results[b]["median_ms"]
    return None


def meets(value, target):
    """True when ``value`` satisfies ``target``, a string such as "<= 1.3" or ">= 0.40"."""
    op, bound = target.split()
    bound = float(bound)
    return {"<=": value <= bound, "<": value < bound, ">=": value >= bound, ">": value > bound}[op]


def print_targets(results, peers=None):
    """The speed targets, each a ratio computed within this run, with a plain pass/fail mark:
    the library within 1.3x of its NumPy floor (W1, W6), sliced SM within 2x of a DSM step,
    conv2d at 40% (forward) and 30% (forward + backward) of the backend's GEMM throughput, and,
    with ``--compare``, exact SM against the other framework as D grows ("-": shown, no target)."""
    lines = [("W1 library / NumPy floor", ratio(results, "dsm_ncsn_mlp", "floor_dsm_ncsn_mlp"), "<= 1.3"),
             ("W6 library / NumPy floor",
              ratio(results, "annealed_langevin", "floor_annealed_langevin"), "<= 1.3"),
             ("W3 sliced SM / W1 step", ratio(results, "ssm_mlp", "dsm_ncsn_mlp"), "<= 2")]
    for key, target in (("conv2d_fwd", ">= 0.40"), ("conv2d_fwd_bwd", ">= 0.30")):
        if key in results and "gemm" in results:
            share = results[key]["gflops"] / results["gemm"]["gflops"]
            lines.append((f"{key} GFLOP/s / GEMM GFLOP/s", share, target))
    exact_sm = {"exact_sm_mlp": "-", "scaling_exact_sm_D2": "-", "scaling_exact_sm_D8": "< 1",
                "scaling_exact_sm_D32": "< 1", "scaling_exact_sm_D128": "<= 0.5"}
    for key, target in exact_sm.items():
        if peers and key in results and key in peers:
            lines.append((f"{key} / peer", results[key]["median_ms"] / peers[key]["median_ms"], target))
    print("\ntargets (ratios within this run)")
    for name, value, target in lines:
        if value is not None:
            mark = "" if target == "-" else ("pass" if meets(value, target) else "fail")
            print(f"  {mark:4s}  {name:42s} {value:6.2f}   target {target}")


def write_json(path, results):
    """{key: {median_ms, min_ms, max_ms, reps[, gflops]}}."""
    with open(path, "w") as f:
        json.dump(results, f, indent=1)


def read_peer(path, framework="torch"):
    """Another framework's results, {framework: {key: {median_ms, ...}}}, the layout write_json
    writes under a framework's name."""
    with open(path) as f:
        return json.load(f)[framework]
