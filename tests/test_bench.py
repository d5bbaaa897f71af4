"""`python -m bench --quick` runs every workload and prints every key (timings are not checked:
they measure a shared machine, and a test must not depend on its load)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

KEYS = (["gemm", "dsm_ncsn_mlp", "floor_dsm_ncsn_mlp", "exact_sm_mlp", "ssm_mlp", "conv2d_fwd",
         "conv2d_fwd_bwd", "annealed_langevin", "floor_annealed_langevin"]
        + [f"scaling_{kind}_D{d}" for kind in ("exact_sm", "ssm", "dsm") for d in (2, 8, 32, 128)])


def test_quick_bench_prints_and_saves_every_workload(tmp_path):
    path = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "bench", "--quick", "--json", str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    table = run.stdout.split("median ms", 1)[1]
    for key in KEYS:
        assert f"\n{key} " in table, f"{key} missing from the table"
    results = json.loads(path.read_text())
    assert set(KEYS) <= set(results)
    for key in KEYS:
        assert set(results[key]) >= {"median_ms", "min_ms", "max_ms"}
    assert run.stdout.count(" OK") >= 10 and "FAIL" not in run.stdout  # the float64 checks ran
    # each speed target carries a plain mark (pass or fail: a quick run on a shared machine is
    # not a measurement, so only the mark's presence is checked)
    targets = [line for line in run.stdout.split("targets (ratios within this run)", 1)[1].splitlines()
               if "target" in line]
    assert len(targets) >= 5 and all(line.split()[0] in ("pass", "fail") for line in targets)
