"""Workload timings for minimalscore: ``python -m bench --help``; bench/README.md defines W1-W6.

Not part of the package and not tests: it measures. ``workloads`` holds W1-W6 written with the
library's public functions, ``floors`` the hand-written NumPy versions of W1 and W6 they are
measured against, ``reference`` the float64 checks every workload passes before it is timed,
``timing`` the timer and the table.
"""
