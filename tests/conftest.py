import os

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture
def numpy_backend():
    """Every test runs on NumPy unless it opts in to another backend."""
    import minimalscore as ms
    ms.backend.use("numpy")
    yield ms.backend
    ms.backend.use(os.environ.get("MINIMALSCORE_BACKEND", "numpy"))
