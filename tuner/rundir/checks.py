"""What a run allows in its files, and what is wrong with a value read back from them: epochs, hyperparameters, losses, ids.

The readers (trials.records.scan_trials, search.oracles.damaged_state, confirm.runs.read_confirm_run) already refuse a
file of the wrong shape; these checks refuse one whose values the run could not have written: an
epoch past the run's --epochs, a hyperparameter value outside its space, a curve of another
trial, a loss no cross-entropy reaches. Each check returns a short phrase saying what is wrong
(for "'<file>' is damaged (<phrase>)") or None; none of them raises or reads a file.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from tuner.config.spaces import MODERN, MODERN_RECIPE, Dimension, FloatRange

if TYPE_CHECKING:
    from tuner.config import SearchSettings
    from tuner.rundir import RunRecord

# The largest val_loss (or loss) taken as read. Keras clips predicted probabilities to [1e-7, 1 - 1e-7]
# in its cross-entropies, so one image's loss is at most -ln(1e-7) ~ 16.1 and a mean can be no more;
# 1e6 leaves room for any loss this tool may train with, while the means, squares and sums the report
# takes of many such values stay far from float overflow (a value near 1.8e308 overflows at once).
MAX_LOSS = 1e6
# The longest duration (seconds) taken as read: over three years, far past any training this tool times, while
# the sums the report takes of a run's durations stay far from float overflow.
MAX_SECONDS = 1e8
# KerasTuner's own per-trial values (Hyperband's schedule); not part of the run's space.
TUNER_VALUE_PREFIX = "tuner/"
# The schedule's keys in a trial's values, as KerasTuner's Hyperband names them (search/halving.py writes them for
# asha too): the trial it continues, the epochs it trains to and from, its bracket and its round (a rung of asha).
# They are named here, at the bottom layer, because the run checks and the report read them as search/ writes them.
CONTINUES, EPOCHS, INITIAL_EPOCH, BRACKET, ROUND = (
    "tuner/trial_id", "tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round")


def run_space(search: SearchSettings, without: Sequence[str] = ()) -> dict[str, Dimension]:
    """The run's hyperparameter space (name -> the values it tries, or a FloatRange), as hypermodel.CNNHyperModel declares it.

    The tutorial space leaves a searched-over list that is empty undeclared (a fixed default, not a
    hyperparameter); the modern space declares its whole recipe (config.spaces.MODERN_RECIPE).
    tests/test_state_checks.py keeps this in step with declare_hyperparameters. `without`: recipe dimensions the
    run's format predates (RunRecord.searched_without).
    """
    space: dict[str, Dimension] = {"conv_layers": tuple(search.conv_layers), "nodes": tuple(search.nodes),
                                   "dense_layers": tuple(search.dense_layers)}
    if search.space == MODERN:
        return {**space, **{name: item for name, item in MODERN_RECIPE.items() if name not in without}}
    for name, values in (("learning_rate", search.learning_rates), ("dropout", search.dropouts),
                         ("augment", search.augment)):
        if values:
            space[name] = tuple(values)
    return space


@dataclass(frozen=True)
class RunLimits:
    """What a run's files may hold: epochs 1..epochs and hyperparameters within space (None: not known, not checked)."""

    epochs: int | None = None
    space: dict[str, Dimension] | None = field(default=None, hash=False)

    @classmethod
    def of(cls, record: RunRecord | None) -> RunLimits:
        """The limits of the run whose settings.json is `record` (no limits without one)."""
        if record is None:
            return cls()
        return cls(epochs=record.search.epochs, space=run_space(record.search, record.searched_without()))


def is_whole_number(value: Any) -> bool:
    """An int that is not a bool (JSON's true and false read as Python ints)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real_number(value: Any) -> bool:
    """An int or float that is not a bool; NaN and infinities included."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite_real(value: Any) -> bool:
    """A real number a float holds finitely: not NaN or infinite, and no int beyond a float's range.

    JSON's integers have no size limit, and math.isfinite and float() raise OverflowError on one past
    1.8e308, so an int is compared, never converted.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return -sys.float_info.max <= value <= sys.float_info.max
    return isinstance(value, float) and math.isfinite(value)


def epoch_problem(value: Any, limits: RunLimits, what: str = "epoch") -> str | None:
    """What is wrong with an epoch number (1, 2, ... up to the run's --epochs), or None."""
    if not is_whole_number(value):
        return f"{what} {value!r} is not a whole number"
    if limits.epochs is not None and not 1 <= value <= limits.epochs:
        return f"{what} {shown_number(value)} is outside 1..{limits.epochs} (the run's --epochs)"
    return f"{what} {shown_number(value)} is below 1" if value < 1 else None


def metric_problem(name: str, value: Any) -> str | None:
    """What is wrong with one value of an epoch row (a loss, an accuracy, seconds), or None.

    NaN and infinities of a loss or accuracy are a diverged epoch, read as missing; seconds are always finite.
    """
    if value is None:
        return None
    if not is_real_number(value):
        return f"{name} {value!r} is not a number"
    if name == "seconds" or name.endswith("_seconds"):
        if is_finite_real(value) and 0 <= value <= MAX_SECONDS:
            return None
        return f"{name} {shown_number(value)} is not a duration from 0 to {MAX_SECONDS:g} seconds"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if name.endswith("loss") and not 0 <= value <= MAX_LOSS:
        return f"{name} {shown_number(value)} is outside 0..{MAX_LOSS:g}"
    if name.endswith("accuracy") and not 0 <= value <= 1:
        return f"{name} {shown_number(value)} is outside 0..1"
    return None if is_finite_real(value) else f"{name} {shown_number(value)} is beyond a float's range"


def shown_number(value: Any) -> str:
    """A value for an error message: an int of hundreds of digits (or a long string) would swamp the one line, so its
    size is shown instead."""
    text = repr(value)
    unit = "digits" if is_whole_number(value) else "characters"
    return text if len(text) <= 24 else f"{text[:12]}...({len(text)} {unit})"


def curve_problem(rows: Any, limits: RunLimits) -> str | None:
    """What is wrong with a per-epoch curve (a list of rows with increasing epochs within the run's), or None."""
    if not isinstance(rows, list):
        return "its epochs are not a list"
    previous = 0
    for row in rows:
        if not isinstance(row, dict):
            return f"an epoch is {type(row).__name__}, not an object"
        problem = epoch_problem(row.get("epoch"), limits)
        if problem is None and row["epoch"] <= previous:
            problem = f"epoch {row['epoch']} follows epoch {previous} (epochs must increase)"
        problem = problem or next(filter(None, (metric_problem(name, value) for name, value in row.items()
                                                if name != "epoch")), None)
        if problem:
            return problem
        previous = row["epoch"]
    return None


def values_problem(values: dict[str, Any], limits: RunLimits) -> str | None:
    """What is wrong with a trial's hyperparameter values against the run's space (every name, each value in it), or None.

    KerasTuner's own `tuner/` values are Hyperband's epoch schedule: they must stay within the run's epochs.
    """
    for name, value in values.items():
        if name.startswith(TUNER_VALUE_PREFIX):
            problem = _schedule_problem(name, value, limits)
            if problem:
                return problem
    if limits.space is None:
        return None
    for name, value in values.items():
        if name.startswith(TUNER_VALUE_PREFIX):
            continue
        if name not in limits.space:
            return f"hyperparameter {name!r} is not in the run's space ({', '.join(limits.space)})"
        dimension = limits.space[name]
        if isinstance(dimension, FloatRange):
            if not is_finite_real(value) or not dimension.contains(value):
                return f"{name} {shown_number(value)} is outside the run's range {_shown_dimension(dimension)}"
        elif not any(_same_value(value, allowed) for allowed in dimension):
            return f"{name} {shown_number(value)} is not one of the run's values ({', '.join(str(allowed) for allowed in dimension)})"
    missing = [name for name in limits.space if name not in values]
    if missing:
        return f"it has no value for {', '.join(missing)}"
    return None


def _schedule_problem(name: str, value: Any, limits: RunLimits) -> str | None:
    if name == EPOCHS:
        return epoch_problem(value, limits, name)
    if name == INITIAL_EPOCH and value is not None:
        return step_problem(name, value, limits)
    return None


def step_problem(name: str, value: Any, limits: RunLimits) -> str | None:
    """What is wrong with a 0-based epoch index (0 up to the run's --epochs - 1), or None."""
    if not is_whole_number(value) or value < 0 or (limits.epochs is not None and value >= limits.epochs):
        top = limits.epochs - 1 if limits.epochs is not None else "the run's --epochs - 1"
        return f"{name} {shown_number(value)} is outside 0..{top}"
    return None


def _same_value(value: Any, allowed: Any) -> bool:
    # True == 1 and 1.0 == 1 in Python: a bool never stands for a number, a number may be written as 1 or 1.0.
    if isinstance(value, bool) or isinstance(allowed, bool):
        return value is allowed
    if is_real_number(value) and is_real_number(allowed):
        return value == allowed
    return type(value) is type(allowed) and value == allowed


def score_problem(score: Any, best_step: Any, limits: RunLimits) -> str | None:
    """What is wrong with KerasTuner's record of a trial's best epoch (score, 0-based best_step), or None."""
    if score is not None and not is_real_number(score):
        return f"score {score!r} is not a number"
    if score is not None and not (isinstance(score, float) and not math.isfinite(score)) and not 0 <= score <= MAX_LOSS:
        return f"score {shown_number(score)} is outside 0..{MAX_LOSS:g}"
    return None if best_step is None else step_problem("best_step", best_step, limits)


def space_difference(declared: Any, limits: RunLimits) -> str | None:
    """How a saved KerasTuner space (HyperParameters.get_config()) differs from the run's, or None.

    An emptied saved space differs too: KerasTuner saves oracle.json first when it hands out the first trial,
    after the tuner has declared the whole space, so no run it wrote has an empty one.
    """
    if limits.space is None:
        return None
    if not isinstance(declared, dict) or not isinstance(declared.get("space"), list):
        return "its hyperparameter space is not a list of Choice, Boolean and Float hyperparameters"
    saved: dict[str, Dimension] = {}
    for item in declared["space"]:
        named = _saved_dimension(item)
        if named is None:
            return "its hyperparameter space is not a list of Choice, Boolean and Float hyperparameters"
        saved[named[0]] = named[1]
    same = saved.keys() == limits.space.keys() and all(
        _same_dimension(saved[name], dimension) for name, dimension in limits.space.items())
    if same:
        return None
    return f"its hyperparameter space {_shown(saved)} is not settings.json's {_shown(limits.space)}"


def _saved_dimension(item: Any) -> tuple[str, Dimension] | None:
    """(name, dimension) of one saved hyperparameter of the kinds hypermodel.declare declares, or None."""
    config = item.get("config") if isinstance(item, dict) else None
    if not isinstance(config, dict) or not isinstance(config.get("name"), str):
        return None
    kind, name = item.get("class_name"), config["name"]
    if kind == "Boolean":
        return name, (False, True)
    if kind == "Float":
        low, high = config.get("min_value"), config.get("max_value")
        if not (is_real_number(low) and is_real_number(high) and low < high and (low > 0 or config.get("sampling") != "log")):
            return None
        return name, FloatRange(float(low), float(high), log=config.get("sampling") == "log")
    return (name, tuple(config["values"])) if isinstance(config.get("values"), list) else None


def _same_dimension(saved: Dimension, expected: Dimension) -> bool:
    if isinstance(saved, FloatRange) or isinstance(expected, FloatRange):
        return saved == expected
    return len(saved) == len(expected) and all(map(_same_value, saved, expected))


def _shown_dimension(dimension: Dimension) -> str:
    if isinstance(dimension, FloatRange):
        return f"{dimension.low:g}..{dimension.high:g}" + (" (log scale)" if dimension.log else "")
    return " ".join(str(value) for value in dimension)


def _shown(space: dict[str, Dimension]) -> str:
    if not space:
        return "(empty)"
    return "; ".join(f"{name} {_shown_dimension(dimension)}" for name, dimension in space.items())
