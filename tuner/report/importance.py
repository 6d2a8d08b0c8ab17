"""Which hyperparameters mattered: an importance per hyperparameter from a run's ranked trials (PED-ANOVA).

The method is PED-ANOVA (Watanabe et al. 2023, arXiv:2304.10255; optuna's PedAnovaImportanceEvaluator):
take the best trials (a top quantile by val_loss) and, for each hyperparameter, measure how far the
distribution of its values among them is from its distribution among all the trials, as the Pearson
divergence of the two. A hyperparameter the best trials all share a value of scores high; one they
chose as everyone did scores near 0. The scores are divided by their sum, so they sum to 1.

Why PED-ANOVA and not fANOVA, at the 20-100 trials a run here has: fANOVA fits a random forest to
the trials and reads the variance of its marginals, so at that size its answer moves with the
forest's seed and needs scikit-learn; PED-ANOVA only counts values, is deterministic, needs numpy
alone, and its question ("what do the good trials have in common?") is the one a reader asks. Each
value of a Choice (hypermodel.py) is a category, and the divergence is that of two categorical
distributions, smoothed by a small prior so a value no top trial chose does not divide by zero. A
continuous hyperparameter (the modern space's learning rate: every trial has a value of its own) would
be as many categories as trials, each chosen once, and say nothing; its values are binned into
QUANTILE_BINS bins of equal counts first (optuna's PED-ANOVA uses a kernel density on a continuous one;
bins need no bandwidth and, at these trial counts, say the same: which part of the range the top took).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Hashable, Sequence

import numpy as np

from tuner.trials.rows import TrialRow

METHOD = "PED-ANOVA"
# The best fifth of the trials are "the top": optuna's default tenth leaves 2-10 trials at 20-100 trials,
# too few for their value counts to say anything.
TOP_QUANTILE = 0.2
# PED-ANOVA's authors advise at least 5 trials above the baseline for a stable answer.
MIN_TOP_TRIALS = 5
# Below this many ranked trials the top holds fewer than MIN_TOP_TRIALS with some left to compare against,
# and the report says the importances mean little.
MIN_TRIALS = 10
# One pseudo-trial spread evenly over a hyperparameter's values, added to both distributions (optuna's prior_weight).
PRIOR_WEIGHT = 1.0
# A float hyperparameter with more distinct values than this is continuous and binned into this many quantile bins
# (quartiles): at 20-100 trials, 5-25 trials a bin, enough for its count among the top to mean something.
QUANTILE_BINS = 4


@dataclass(frozen=True)
class Importances:
    """The importance of each hyperparameter of a run, computed from its ranked trials.

    Attributes:
        method: how they were computed ("PED-ANOVA").
        trials: the number of ranked trials they were computed from.
        reliable: False when there were too few trials (or nothing to tell apart) for them to mean much.
        note: what a reader should know about them (too few trials, a hyperparameter with one value); None if nothing.
        values: (hyperparameter, importance) for every hyperparameter, highest first; they sum to 1 unless
            no hyperparameter took more than one value (then all are 0).
    """

    method: str
    trials: int
    reliable: bool
    note: str | None
    values: list[tuple[str, float]]

    def to_json(self) -> dict[str, Any]:
        """The importances as results.json holds them: method, trials, reliable, note and values, highest first."""
        return {"method": self.method, "trials": self.trials, "reliable": self.reliable, "note": self.note,
                "values": [{"hyperparameter": name, "importance": value} for name, value in self.values]}


def importances(rows: Sequence[TrialRow], names: Sequence[str]) -> Importances:
    """The importance of each hyperparameter, from the ranked trials of a run (PED-ANOVA).

    Args:
        rows: the ranked trials: the ranking and the trials a budget excluded (failed rows are left out).
            A confirmed trial counts with its mean val_loss over seeds, the others with their best val_loss.
        names: the hyperparameter names, in the order the space declared them (ties keep this order).

    Returns:
        Importances over every name; a name that took a single value in these trials gets 0.
    """
    ranked = [row for row in rows if not row.failed]
    losses = np.array([_loss(row) for row in ranked], dtype=np.float64)
    top = _top(losses)
    categories = {name: categories_of([row.hyperparameters.get(name) for row in ranked]) for name in names}
    varied = [name for name in names if len(set(categories[name])) > 1]
    scores = {name: _pearson_divergence(categories[name], top) for name in varied}
    total = sum(scores.values())
    if total > 0:
        shares = {name: scores.get(name, 0.0) / total for name in names}
    else:  # nothing varied, or the best trials chose every value as all trials did: no one stands out
        shares = {name: (1.0 / len(varied) if name in varied else 0.0) for name in names}
    values = sorted(shares.items(), key=lambda item: -item[1])  # stable: ties keep the space's order
    notes = _notes(len(ranked), names, varied, total)
    reliable = len(ranked) >= MIN_TRIALS and total > 0
    return Importances(METHOD, len(ranked), reliable, " ".join(notes) or None, values)


def _loss(row: TrialRow) -> float:
    # A configuration that diverged under a confirm seed has no mean; it is not among the best.
    if row.confirmed:
        return row.mean_val_loss if row.mean_val_loss is not None else math.inf
    return float(row.val_loss)  # type: ignore[arg-type]  # a ranked row has one


def _top(losses: np.ndarray) -> np.ndarray:
    """Which trials are the top: the best TOP_QUANTILE, at least MIN_TOP_TRIALS, and never all of them."""
    count = len(losses)
    if count == 0:
        return np.zeros(0, dtype=bool)
    size = max(math.ceil(TOP_QUANTILE * count), min(MIN_TOP_TRIALS, count - 1), 1)
    cutoff = np.sort(losses)[size - 1]
    return losses <= cutoff  # trials tied with the last of the top are in it too, as in optuna


def categories_of(values: Sequence[Any]) -> list[Hashable]:
    """The category of each trial's value of one hyperparameter: the value itself, or its quantile bin (0 to
    QUANTILE_BINS - 1) when the values are floats with more than QUANTILE_BINS distinct values (continuous)."""
    floats = [value for value in values if isinstance(value, float) and math.isfinite(value)]
    if len(floats) == len(values) and len(set(floats)) > QUANTILE_BINS:
        # Inner quantile edges; a value equal to an edge goes to the bin above it, so tied values share a bin.
        edges = np.quantile(np.array(floats), np.arange(1, QUANTILE_BINS) / QUANTILE_BINS)
        return [("bin", int(np.searchsorted(edges, value, side="right"))) for value in floats]
    # A conditional hyperparameter a trial did not set is None there: "unset" is a category of its own.
    return [(type(value).__name__, value) for value in values]  # True and 1 stay apart


def _pearson_divergence(categories: list[Hashable], top: np.ndarray) -> float:
    """The Pearson divergence of a hyperparameter's value distribution among the top trials from that among all.

    Both are counts smoothed by PRIOR_WEIGHT spread evenly over the values seen; the divergence is
    sum over values of p_all * (p_top / p_all - 1) ** 2.
    """
    seen = list(dict.fromkeys(categories))
    everyone = Counter(categories)
    best = Counter(category for category, is_top in zip(categories, top) if is_top)
    all_counts = np.array([everyone[value] for value in seen], dtype=np.float64)
    top_counts = np.array([best[value] for value in seen], dtype=np.float64)
    prior = PRIOR_WEIGHT / len(seen)
    p_all = (all_counts + prior) / (all_counts.sum() + PRIOR_WEIGHT)
    p_top = (top_counts + prior) / (top_counts.sum() + PRIOR_WEIGHT)
    return float(p_all @ (p_top / p_all - 1.0) ** 2)


def _notes(count: int, names: Sequence[str], varied: list[str], total: float) -> list[str]:
    notes = []
    if count < MIN_TRIALS:
        notes.append(f"only {count} ranked trial(s): too few for the importances to mean much "
                     f"({MIN_TRIALS} or more make them worth reading).")
    if not varied:
        notes.append("no hyperparameter took more than one value in these trials, so none can have mattered.")
    elif total == 0:
        notes.append("the best trials chose every hyperparameter's values as all trials did: none stands out.")
    constant = [name for name in names if name not in varied]
    if varied and constant:
        notes.append(f"{', '.join(constant)} took a single value in these trials, so "
                     f"{'its importance is' if len(constant) == 1 else 'their importances are'} 0.")
    return notes
