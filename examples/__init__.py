"""Runnable studies: `python -m examples.NAME` (each with --quick, --seed, --out, --backend)."""
