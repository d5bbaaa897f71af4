"""One quick run of an example, as its tests share it: the returned metrics equal the written
metrics.json, and every named figure was written (a blank PNG is a few kB; a drawn one > 10 kB)."""
import json
import os


def quick_run(example, out, figures, key, seed=0):
    """``example.main(["--quick", ...])`` into ``out``; checks metrics.json's ``key`` and the PNGs."""
    result = example.main(["--quick", "--out", str(out), "--seed", str(seed)])
    with open(os.path.join(out, "metrics.json")) as f:
        assert json.load(f)[key] == result[key]
    for name in figures:
        assert os.path.getsize(os.path.join(out, f"{name}.png")) > 10_000
    return result
