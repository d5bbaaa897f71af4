"""What every example shares: its command line, its output folder, and its metrics table."""
import argparse
import json
import os
import time

import minimalscore as ms


def parse_args(name, description, argv=None, extra=None):
    """The common flags: --quick (a few seconds, for tests), --seed, --out, --backend."""
    parser = argparse.ArgumentParser(prog=f"python -m examples.{name}", description=description)
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


def print_table(title, rows, columns):
    """A plain-text table: rows {name: {column: value}}."""
    print(f"\n{title}")
    print(f"  {'':14s}" + "".join(f"{c:>16s}" for c in columns))
    for name, row in rows.items():
        cells = "".join(f"{row[c]:16.4g}" if isinstance(row[c], float) else f"{str(row[c]):>16s}"
                        for c in columns)
        print(f"  {name:14s}{cells}")


def save_metrics(args, metrics):
    """Write metrics.json (with the run's wall time in seconds) and return the dict."""
    metrics = dict(metrics, seconds=round(time.perf_counter() - args.started, 2), quick=args.quick,
                   seed=args.seed, backend=ms.backend.name)
    path = os.path.join(args.out, "metrics.json")
    with open(path, "w") as f:
        json.dump(metrics, f, indent=2)
    print(f"\nwrote {path} and the figures in {args.out}/ ({metrics['seconds']} s)")
    return metrics
