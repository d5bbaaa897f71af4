"""What every example shares: its command line, its output folder, and its metrics table."""
import argparse
import json
import os
import time

import minimalscore as ms


def parse_args(name, description, argv=None, extra=None):
    """The common flags: --quick (a few seconds, for tests), --seed, --out, --backend.
    ``description`` may be the module's docstring: --help shows its first paragraph."""
    summary = " ".join(description.strip().split("\n\n")[0].split())
    parser = argparse.ArgumentParser(prog=f"python -m examples.{name}", description=summary)
    parser.add_argument("--quick", action="store_true", help="a fast, smaller run (used by the tests)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")
    parser.add_argument("--out", default=os.path.join("out", name), help="folder for figures and metrics.json")
    parser.add_argument("--backend", choices=["numpy", "cupy"], default=None,
                        help="array backend (default: $MINIMALSCORE_BACKEND or numpy)")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    if args.backend:
        ms.backend.use(args.backend)
    os.makedirs(args.out, exist_ok=True)
    args.started = time.perf_counter()
    return args


def titled(args, title):
    """A figure title that says when the run was a --quick one (fewer steps, rougher results)."""
    return f"{title} (quick run)" if args.quick else title


def print_table(title, rows, columns):
    """A plain-text table: rows {name: {column: value}}; every column at least two characters
    wider than its header, so headers never run together."""
    first = max([14] + [len(str(name)) for name in rows])
    widths = [max(16, len(c) + 2) for c in columns]
    print(f"\n{title}")
    print(f"  {'':{first}s}" + "".join(f"{c:>{w}s}" for c, w in zip(columns, widths)))
    for name, row in rows.items():
        cells = "".join(f"{row[c]:{w}.4g}" if isinstance(row[c], float) else f"{str(row[c]):>{w}s}"
                        for c, w in zip(columns, widths))
        print(f"  {str(name):{first}s}{cells}")


def save_metrics(args, metrics):
    """Write metrics.json (with the run's wall time in seconds) and return the dict."""
    metrics = dict(metrics, seconds=round(time.perf_counter() - args.started, 2), quick=args.quick,
                   seed=args.seed, backend=ms.backend.name)
    path = os.path.join(args.out, "metrics.json")
    with open(path, "w") as f:
        json.dump(metrics, f, indent=2)
    print(f"\nwrote {path} and the figures in {args.out}/ ({metrics['seconds']} s)")
    return metrics
