"""tuner.stats: the Wilson interval of a test accuracy and the seeds comparison of two configurations."""

import pytest

from tuner.stats import compare_seeds, mean_and_std, wilson_interval


@pytest.mark.parametrize("successes, trials, low, high", [
    # Reference values from R's prop.test(x, n, correct = FALSE) / statsmodels' proportion_confint(method="wilson").
    (50, 100, 0.4038315, 0.5961685),
    (0, 10, 0.0, 0.2775328),
    (10, 10, 0.7224672, 1.0),
])
def test_wilson_interval_matches_reference_values(successes, trials, low, high):
    assert wilson_interval(successes, trials) == pytest.approx((low, high), abs=1e-6)


@pytest.mark.parametrize("successes, trials", [(288, 298), (1, 3), (137, 150), (700, 1000)])
def test_wilson_interval_agrees_with_scipy(successes, trials):
    from scipy.stats import binomtest

    reference = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(successes, trials) == pytest.approx((reference.low, reference.high), abs=1e-9)


def test_wilson_interval_narrows_with_more_images_and_refuses_impossible_counts():
    small, large = wilson_interval(29, 30), wilson_interval(2900, 3000)
    assert large[1] - large[0] < small[1] - small[0]
    for successes, trials in ((1, 0), (5, 4), (-1, 3)):
        with pytest.raises(ValueError):
            wilson_interval(successes, trials)


def test_mean_and_sample_standard_deviation():
    assert mean_and_std([1.0]) == (1.0, None)
    mean, std = mean_and_std([1.0, 2.0, 3.0])
    assert mean == 2.0 and std == pytest.approx(1.0)


def test_seeds_tell_two_configurations_apart_only_when_the_gap_beats_the_noise():
    apart = compare_seeds([0.20, 0.21, 0.205], [0.30, 0.31, 0.305])
    assert apart.distinguishable and apart.p_value < 0.01
    overlapping = compare_seeds([0.20, 0.25, 0.22], [0.21, 0.26, 0.23])
    assert not overlapping.distinguishable and overlapping.p_value > 0.05
    # One seed (or a diverged one left out) is not enough to test.
    assert compare_seeds([0.2], [0.3, 0.31]).p_value is None
    assert not compare_seeds([0.2, float("inf")], [0.3, 0.31]).distinguishable
