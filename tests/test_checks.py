"""The argument-checking vocabulary itself: what a learner's typical slips meet."""
import autograd.numpy as anp
import numpy as np
import pytest

import minimalscore as ms
from minimalscore import checks


def test_a_callable_written_with_numpy_on_autograds_boxes_is_named_with_the_fix():
    # np.stack over autograd's ArrayBoxes builds an object array: without the dtype check the
    # first-call finiteness test failed inside NumPy with "ufunc 'isfinite' not supported".
    x = np.random.default_rng(0).normal(size=(4, 2))
    numpy_classifier = lambda x, s: np.stack([-anp.sum(x ** 2, axis=1), -anp.sum((x - 1) ** 2, axis=1)], 1)
    guided = ms.samplers.guided_score(lambda x, s: -x, numpy_classifier, np.zeros(4, int))
    with pytest.raises(TypeError, match="classifier_log_prob: .*dtype object.*autograd.numpy"):
        guided(x, np.full(4, 0.5))


def test_counts_refuse_floats_and_name_the_argument():
    for bad, error in ((2.5, TypeError), (5.0, TypeError), (None, TypeError), ("5", TypeError),
                       (True, TypeError), (0, ValueError), (-3, ValueError)):
        with pytest.raises(error, match="^n_steps: expected a positive integer, got"):
            checks.count("n_steps", bad)
    assert checks.count("n_steps", np.int64(5)) == 5


def test_times_take_numbers_zero_d_arrays_and_one_time_per_example():
    assert checks.times("t", 0.5) == 0.5
    assert checks.times("t", np.array(0.5)) == 0.5
    assert checks.times("t", np.full(3, 0.5), n=3).shape == (3,)
    for bad in (1.5, np.array(-0.1), np.array([0.5, np.nan]), np.full((3, 1), 0.5)):
        with pytest.raises(ValueError, match="^t: "):
            checks.times("t", bad)
