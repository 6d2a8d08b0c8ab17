"""How sure a number is: the Wilson interval of a test accuracy, and whether two configurations' seeds differ."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

# The normal quantile of a two-sided 95% interval.
Z_95 = 1.959963984540054
# Below this p-value two configurations' val_loss over seeds are called distinguishable.
SIGNIFICANCE = 0.05


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default).

    Unlike the textbook p +- z*sqrt(p(1-p)/n), it never leaves [0, 1] and stays honest when
    the accuracy is near 1 or the test set is small (Wilson 1927; Brown, Cai & DasGupta 2001).

    Args:
        successes: correctly classified test images.
        trials: test images, at least 1.

    Returns:
        (low, high), both within [0, 1].
    """
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, got {successes} of {trials}")
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_and_std(values: Sequence[float]) -> tuple[float, float | None]:
    """The mean and the sample standard deviation (None for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((value - mean) ** 2 for value in values) / (len(values) - 1))


@dataclass(frozen=True)
class Comparison:
    """Whether the best configuration's val_loss over seeds is told apart from the runner-up's."""

    p_value: float | None
    distinguishable: bool


def compare_seeds(best: Sequence[float], runner_up: Sequence[float]) -> Comparison:
    """Welch's t-test (unequal variances) of two configurations' best val_loss over seeds.

    With 2-3 seeds each the test has little power: "not distinguishable" means the seeds
    cannot tell the two apart, not that they are equal.

    Returns:
        The two-sided p-value (None when either side has fewer than 2 finite values) and whether
        it is below SIGNIFICANCE.
    """
    from scipy import stats

    best = [value for value in best if math.isfinite(value)]
    runner_up = [value for value in runner_up if math.isfinite(value)]
    if len(best) < 2 or len(runner_up) < 2:
        return Comparison(None, False)
    if max(best) == min(best) and max(runner_up) == min(runner_up):
        # No spread on either side: the t statistic is undefined; identical means are not told apart.
        return Comparison(None, best[0] != runner_up[0])
    p_value = float(stats.ttest_ind(best, runner_up, equal_var=False).pvalue)
    return Comparison(p_value, p_value < SIGNIFICANCE)
