"""The digits study's training record, kept across --resume: the loss at each step (loss.csv,
drawn in loss.png), the judge's numbers on the preview samples (progress.csv), and the training
sessions listed in metrics.json."""
import csv
import json
import os

import numpy as np
from matplotlib.figure import Figure  # drawn straight to a file: no pyplot, no window


def append_rows(path, header, rows):
    """Append ``rows`` to the CSV file ``path``, writing ``header`` first if the file is new."""
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(header)
        writer.writerows(rows)


def record_losses(out, losses):
    """Append to OUT/loss.csv the steps it does not hold yet (a resumed run recomputes the steps
    after its checkpoint bit-identically, so rows already there stay), then draw OUT/loss.png:
    the loss, and the judge's confidence on the preview samples (OUT/progress.csv)."""
    path = f"{out}/loss.csv"
    last = 0
    if os.path.exists(path):
        with open(path) as f:
            last = max((int(row["step"]) for row in csv.DictReader(f)), default=0)
    append_rows(path, ["step", "loss"],
                [[step, repr(loss)] for step, loss in enumerate(losses, 1) if step > last])
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    ax.plot(np.arange(1, len(losses) + 1), losses, lw=0.6, color="0.6", label="each step's batch")
    width = max(1, len(losses) // 40)
    smooth = np.convolve(losses, np.ones(width) / width, mode="valid")
    ax.plot(np.arange(width, len(losses) + 1), smooth, lw=1.8, color="C0", label=f"mean of {width} steps")
    ax.set(xlabel="training step", ylabel="multi-scale DSM loss", yscale="log",
           title="NCSN-lite training loss (the objective weighted by sigma^2, summed over pixels)")
    ax.title.set_fontsize(9)
    lines = ax.get_lines()
    if os.path.exists(f"{out}/progress.csv"):
        with open(f"{out}/progress.csv") as f:
            rows = [(int(row["step"]), float(row["confidence"])) for row in csv.DictReader(f)]
        judge = ax.twinx()
        lines += judge.plot(*zip(*rows), "o-", color="C3", label="the judge's confidence on preview samples")
        judge.set(ylabel="judge's confidence", ylim=(0, 1))
    ax.legend(lines, [line.get_label() for line in lines], fontsize=7, ncol=3, loc="upper center",
              bbox_to_anchor=(0.5, -0.2))
    fig.tight_layout()
    fig.savefig(f"{out}/loss.png", dpi=110)


def previous_sessions(args):
    """The training sessions recorded in OUT/metrics.json, kept when this run resumes."""
    try:
        with open(f"{args.out}/metrics.json") as f:
            return list(json.load(f).get("training", [])) if args.resume else []
    except (OSError, ValueError):
        return []
