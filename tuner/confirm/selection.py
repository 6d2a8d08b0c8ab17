"""Which configurations are confirmed, and the rule that crowns one: the baseline is the champion, and a challenger
takes its place only when its confirm runs beat it by more than the seed noise.

A search of a few dozen noisy trials on a validation split of a few hundred images finds, among its challengers,
one whose val_loss is lower than the baseline's by luck more often than one that is better (the winner's curse).
Ranking by the mean over seeds alone crowned such challengers on the benchmark splits, and they made more test
errors than the baseline (BENCHMARKS.md, "A search worth running"). So the modern space's baseline, which
successive halving always trains to the full epochs, is always confirmed, and it keeps the crown unless a
challenger's mean best val_loss is lower by more than CHALLENGE_Z standard errors of the difference.
"""

from __future__ import annotations

import math
from typing import Sequence

from tuner.config.spaces import MODERN, modern_baseline
from tuner.rundir import RunRecord
from tuner.stats import mean_and_std
from tuner.trials.rows import TrialRow

# A challenger must beat the champion's mean best val_loss by this many standard errors of the difference of the
# two means: about a one-sided 2% chance that a challenger no better than the champion takes its place.
CHALLENGE_Z = 2.0
# The least seed noise assumed of one run's best val_loss, as a share of the champion's mean: two or three seeds
# per configuration are too few to estimate it, and two runs that happen to agree would make any margin look clear.
# Over the two confirmed configurations of 4 sample splits (the search's run and one confirm run each), one run's best
# val_loss moved by 8% of its mean between seeds (root mean square; one seed that went astray, 0.10 and 0.33, left
# out) (BENCHMARKS.md, "A search worth running").
MIN_RELATIVE_NOISE = 0.08


def champion_trial(ranked: Sequence[TrialRow], record: RunRecord) -> str | None:
    """The ranked trial that trained the modern space's baseline (config.spaces.modern_baseline), the champion a
    challenger must clearly beat; None for the tutorial space, or when no ranked trial trained it."""
    search = record.search
    if search.space != MODERN:
        return None
    baseline = modern_baseline(search.conv_layers, search.nodes, search.dense_layers, record.dataset.img_size)
    return next((row.trial for row in ranked if row.configuration() == baseline), None)


def confirm_choice(ranked: Sequence[TrialRow], top: int, record: RunRecord) -> list[TrialRow]:
    """The configurations to confirm: the `top` best ranked, and the champion as well when it is not among them,
    so a challenger is always weighed against it over the same number of seeds."""
    if top < 1:
        return []
    chosen = list(ranked[:top])
    champion = champion_trial(ranked, record)
    if champion is not None and all(row.trial != champion for row in chosen):
        chosen += [row for row in ranked if row.trial == champion]
    return chosen


def seed_noise(val_losses_per_configuration: Sequence[Sequence[float]], champion_mean: float) -> float:
    """The standard deviation of one run's best val_loss between seeds: pooled over the configurations with two or
    more finite runs, and never below MIN_RELATIVE_NOISE of the champion's mean."""
    squares, freedom = 0.0, 0
    for losses in val_losses_per_configuration:
        finite = [value for value in losses if math.isfinite(value)]
        if len(finite) >= 2:
            spread = mean_and_std(finite)[1]
            squares += spread**2 * (len(finite) - 1)
            freedom += len(finite) - 1
    pooled = math.sqrt(squares / freedom) if freedom else 0.0
    return max(pooled, MIN_RELATIVE_NOISE * champion_mean)


def beats_champion(challenger: Sequence[float], champion: Sequence[float], noise: float) -> bool:
    """Whether a challenger's runs (best val_loss per seed) beat the champion's by more than CHALLENGE_Z standard
    errors of the difference of their means, each run's noise `noise` (seed_noise). A diverged run (inf) never
    beats anything, and a champion with a diverged run is beaten by any challenger whose runs are all finite."""
    if not challenger or not all(map(math.isfinite, challenger)):
        return False
    if not champion or not all(map(math.isfinite, champion)):
        return True
    margin = CHALLENGE_Z * noise * math.sqrt(1 / len(challenger) + 1 / len(champion))
    return mean_and_std(champion)[0] - mean_and_std(challenger)[0] > margin
