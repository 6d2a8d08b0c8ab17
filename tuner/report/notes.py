"""The report's sentences: how the trials ended, the winner against the runner-up, the budget, the Pareto front,
values at the edge of the space, and damaged files."""

from __future__ import annotations

from typing import Any, Sequence

from tuner.report.budget import Budget
from tuner.config import SearchSettings, flag_of, smallest_side_for
from tuner.config.spaces import MODERN, MODERN_RECIPE, TUTORIAL, FloatRange, modern_baseline
from tuner.confirm.runs import Confirmation
from tuner.confirm.selection import CHALLENGE_Z
from tuner.report.plot_data import format_value
from tuner.report.tables import over_seeds
from tuner.trials.rows import TrialRow
from tuner.rundir import RunRecord
from tuner.rundir.checks import run_space
from tuner.stats import compare_seeds
from tuner.trials.records import DamagedFile

# For each hyperparameter a flag sets (in the tutorial space; in the modern space only the core's): the
# SearchSettings field, and the lowest value the hyperparameter takes (a winner at that floor cannot be helped
# by widening downwards). The flag is the field's (config.flag_of).
_FIELDS_AND_FLOORS: dict[str, tuple[str, float | None]] = {
    "conv_layers": ("conv_layers", 1), "nodes": ("nodes", 1), "dense_layers": ("dense_layers", 0),
    "learning_rate": ("learning_rates", None), "dropout": ("dropouts", 0.0),
}
SEARCH_FLAGS: dict[str, tuple[str, str, float | None]] = {
    name: (field, flag_of(field), floor) for name, (field, floor) in _FIELDS_AND_FLOORS.items()}
# The hyperparameters whose flags set them in every space.
CORE = ("conv_layers", "nodes", "dense_layers")
# A continuous hyperparameter's winner within this share of either end of its range (on the range's own scale,
# log for a learning rate) is at the edge: sampled values rarely land on the end itself.
EDGE_SHARE = 0.1
# A winner at an edge is noted only when the best trial at the edge value has a val_loss at least this share below the
# best at the nearest value with trials: each trial is one seed of its configuration, so a smaller difference could
# come from the seeds alone and says nothing about which way the best lies.
EDGE_MARGIN = 0.03


def counts_line(ranked: Sequence[TrialRow], failed: Sequence[TrialRow], running: int, excluded: int = 0) -> str:
    """How the trials ended, e.g. "12 completed, 13 pruned, 2 failed, 0 running or interrupted" (+ ", 4 over the budget")."""
    pruned = sum(row.pruned is not None for row in ranked)
    over = f", {excluded} over the budget" if excluded else ""
    return (f"{len(ranked) - pruned} completed, {pruned} stopped early (pruned behind the median, or left at a low rung of asha), {len(failed)} failed, "
            f"{running} running or interrupted{over}")


def comparison_line(ranking: Sequence[TrialRow], confirmations: Sequence[Confirmation],
                    champion: str | None = None) -> str | None:
    """One sentence: is the winner's val_loss over seeds told apart from the runner-up's? None without confirm runs.

    When the winner is the `champion` (confirm.selection) and a runner-up has a lower mean, it says that this was
    within the seed noise, which is why the baseline kept its place."""
    if not confirmations:
        return None
    by_trial = {item.trial_id: item for item in confirmations}
    winner = by_trial[ranking[0].trial]
    winner_text = f"trial {winner.trial_id} (val_loss {_over_seeds(ranking[0])})"
    if len(confirmations) < 2:
        return f"Only the winner, {winner_text}, was confirmed: there is no runner-up to compare it with."
    runner_up = by_trial[ranking[1].trial]
    if winner.trial_id == champion and runner_up.mean < winner.mean:
        return (f"The winner is the recipe's baseline, {winner_text}: trial {runner_up.trial_id} "
                f"({_over_seeds(ranking[1])}) has a lower mean, but not by more than {CHALLENGE_Z:g} standard errors of "
                f"the seed noise, and a challenger replaces the baseline only when it is clearly better.")
    result = compare_seeds(winner.val_losses, runner_up.val_losses)
    test = f"Welch's t-test p = {result.p_value:.3f}" if result.p_value is not None else "no spread to test"
    both = f"The winner, {winner_text}, and the runner-up, trial {runner_up.trial_id} ({_over_seeds(ranking[1])}),"
    if result.distinguishable:
        return f"{both} are distinguishable over seeds ({test})."
    return f"{both} are not distinguishable over seeds ({test}): either is as good a pick; more seeds (--confirm K R) may tell them apart."


def _over_seeds(row: TrialRow) -> str:
    return over_seeds(row.mean_val_loss, row.std_val_loss, row.seeds, " over {} seeds")


def budget_line(budget: Budget, ranking: Sequence[TrialRow], excluded: Sequence[TrialRow]) -> str:
    """One sentence on the budget: how many trials fit, the winner's size and speed, and the best trial it excluded."""
    winner = ranking[0]
    text = (f"Budget ({budget.describe()}): {len(ranking)} of {len(ranking) + len(excluded)} ranked trials fit; the winner, "
            f"trial {winner.trial}, has {_size_and_speed(winner)}.")
    best_excluded = min(excluded, key=lambda row: (row.val_loss, row.trial), default=None)
    if best_excluded is not None and best_excluded.val_loss < winner.val_loss:
        text += (f" The best trial regardless of budget, trial {best_excluded.trial} (val_loss "
                 f"{best_excluded.val_loss:.4f}, {_size_and_speed(best_excluded)}), is excluded: {best_excluded.reason}.")
    return text


def _size_and_speed(row: TrialRow) -> str:
    if not row.measured:
        return "no recorded size or speed"
    return f"{row.params:,} parameters and takes {row.latency_ms:.3f} ms per image"


def front_line(front: Sequence[TrialRow]) -> str:
    """One sentence naming the Pareto front's trials, from the smallest model up."""
    shown = "; ".join(f"trial {row.trial} ({row.params:,} parameters, val_loss {row.val_loss:.4f})" for row in front)
    return f"Pareto front (no other trial is both smaller and lower in val_loss): {shown}."


def search_space(record: RunRecord, rows: Sequence[TrialRow], names: Sequence[str]) -> dict[str, list[Any]]:
    """The values searched for each hyperparameter: the run's space, else (a continuous one, or a name the space
    does not declare) the values its trials tried."""
    declared = run_space(record.search, record.searched_without())
    space: dict[str, list[Any]] = {}
    for name in names:
        dimension = declared.get(name)
        if isinstance(dimension, tuple) and dimension:
            space[name] = list(dimension)
        else:
            tried = {row.hyperparameters.get(name) for row in rows} - {None}
            space[name] = sorted(tried, key=_sort_key)
    return space


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def continuous_ranges(search: SearchSettings) -> dict[str, FloatRange]:
    """The run's continuous hyperparameters (the modern space's learning rate) and their ranges."""
    return {name: item for name, item in run_space(search).items() if isinstance(item, FloatRange)}


def boundary_warnings(winner: dict[str, Any], space: dict[str, list[Any]], image_side: int | None = None,
                      search: SearchSettings | None = None, trials: Sequence[TrialRow] | None = None) -> list[str]:
    """Say which of the winner's values sit at the edge of a range that could be widened, where the trials say
    val_loss improves toward that edge.

    The rule, for each hyperparameter:
      1. the winner is not the modern space's baseline configuration (config.spaces.modern_baseline):
         its values were set before the search (config.spaces.MODERN_BASELINE), so its place at an edge
         says nothing about where the best lies, and a baseline winner gets no such note;
      2. the winner's value is at an edge: its hyperparameter was searched over more than one value
         and the winner took the smallest or the largest (a continuous range: the winner's value lies
         in the outer EDGE_SHARE of it, on its own scale);
      3. the range can grow that way (no fewer than 1 conv layer, no more conv layers than the images
         are big enough for, no dropout below 0 or above 0.9);
      4. the trials point there: the best val_loss among the trials at the edge value beats the best
         at the nearest value that has trials by EDGE_MARGIN of it (a continuous range: the best in the
         outer EDGE_SHARE beats the best of the rest of the range). With no trial elsewhere there is no
         evidence, and no note.

    Args:
        winner: the winner's hyperparameters (the first ranked row's).
        space: hyperparameter name -> the values searched.
        image_side: the side of the images, to know whether one more conv layer would fit.
        search: the run's settings, which say which flag sets each range, which ranges are continuous and what
            the baseline is (None: the tutorial space's flags, no continuous range, no baseline).
        trials: the ranked rows weighed by step 4; None skips it (the edge alone decides).

    Returns:
        One message per hyperparameter at an edge.
    """
    configuration = {name: value for name, value in winner.items() if value is not None}
    if search is not None and search.space == MODERN and configuration == modern_baseline(
            search.conv_layers, search.nodes, search.dense_layers, image_side or smallest_side_for(max(search.conv_layers))):
        return []
    ranges = continuous_ranges(search) if search else {}
    messages = []
    for name, values in space.items():
        value = winner.get(name)
        # One or two convolutions per block is a choice of block, not a range with values beyond it.
        if not isinstance(value, (int, float)) or isinstance(value, bool) or name == "convs_per_block":
            continue
        how = _how_to_widen(name, search)
        if name in ranges:
            messages += _range_edge(name, value, ranges[name], how, trials)
            continue
        numeric = sorted({item for item in values if isinstance(item, (int, float)) and not isinstance(item, bool)})
        if len(numeric) < 2:
            continue
        floor = SEARCH_FLAGS.get(name, (name, "", None))[2]
        shown = f"{format_value(numeric[0])}..{format_value(numeric[-1])}"
        if value == numeric[-1] and _can_grow(name, value, image_side, winner.get("convs_per_block") or 1):
            evidence = _evidence(name, numeric[::-1], trials)
            if evidence is not None:
                messages.append(f"the winner's {name}={format_value(value)} is the largest value searched ({shown}); "
                                f"the best may lie beyond it: {how} upwards and search again{evidence}.")
        elif value == numeric[0] and (floor is None or value > floor):
            evidence = _evidence(name, numeric, trials)
            if evidence is not None:
                messages.append(f"the winner's {name}={format_value(value)} is the smallest value searched ({shown}); "
                                f"the best may lie below it: {how} downwards and search again{evidence}.")
    return messages


def _evidence(name: str, values: Sequence[Any], trials: Sequence[TrialRow] | None) -> str | None:
    """Step 4 of boundary_warnings, `values` running from the edge inwards: the words that say how the best at the
    edge beats the best at the nearest value with trials ("" when no trials are weighed), or None when it does not."""
    if trials is None:
        return ""
    best = [min((row.val_loss for row in trials if row.hyperparameters.get(name) == value), default=None)
            for value in values]
    inner = next((index for index in range(1, len(values)) if best[index] is not None), None)
    if inner is None or not _beats(best[0], best[inner]):
        return None
    return (f": the best val_loss at {format_value(values[0])}, {best[0]:.4f}, beats the {best[inner]:.4f} at "
            f"{format_value(values[inner])}")


def _beats(edge: float | None, inner: float | None) -> bool:
    return edge is not None and inner is not None and edge <= (1 - EDGE_MARGIN) * inner


def _how_to_widen(name: str, search: SearchSettings | None) -> str:
    flag = SEARCH_FLAGS.get(name, (name, "", None))[1]
    if flag and (search is None or search.space == TUTORIAL or name in CORE):
        return f"widen {flag}"
    if search is not None and search.space != TUTORIAL and name in MODERN_RECIPE:
        return f"widen its range in the {search.space} space (tuner/config/spaces.py)"
    return "widen its range"


def _range_edge(name: str, value: float, dimension: FloatRange, how: str, trials: Sequence[TrialRow] | None) -> list[str]:
    if not dimension.contains(value):
        return []
    position = dimension.position(value)
    shown = f"{format_value(dimension.low)}..{format_value(dimension.high)}{', log scale' if dimension.log else ''}"
    if position >= 1 - EDGE_SHARE:
        evidence = _band_evidence(name, dimension, trials, upper=True)
        return [] if evidence is None else [
            f"the winner's {name}={format_value(value)} lies in the top {EDGE_SHARE:.0%} of the range searched "
            f"({shown}); the best may lie beyond it: {how} upwards and search again{evidence}."]
    if position <= EDGE_SHARE:
        evidence = _band_evidence(name, dimension, trials, upper=False)
        return [] if evidence is None else [
            f"the winner's {name}={format_value(value)} lies in the bottom {EDGE_SHARE:.0%} of the range searched "
            f"({shown}); the best may lie below it: {how} downwards and search again{evidence}."]
    return []


def _band_evidence(name: str, dimension: FloatRange, trials: Sequence[TrialRow] | None, upper: bool) -> str | None:
    """Step 4 of boundary_warnings for a continuous range: the best in its outer EDGE_SHARE (top or bottom) against
    the best of the rest, in words ("" when no trials are weighed), or None when the band's best does not win."""
    if trials is None:
        return ""
    band: list[float] = []
    rest: list[float] = []
    for row in trials:
        if dimension.contains(row.hyperparameters.get(name)):
            position = dimension.position(row.hyperparameters[name])
            inside = position >= 1 - EDGE_SHARE if upper else position <= EDGE_SHARE
            (band if inside else rest).append(row.val_loss)
    edge, inner = min(band, default=None), min(rest, default=None)
    if not _beats(edge, inner):
        return None
    return f": the best val_loss there, {edge:.4f}, beats the {inner:.4f} of the rest of the range"


def _can_grow(name: str, value: Any, image_side: int | None, convs_per_block: int) -> bool:
    if name == "dropout":
        return value < 0.9
    if name == "conv_layers" and image_side is not None:
        return smallest_side_for(int(value) + 1, convs_per_block) <= image_side
    return True


def damage_warnings(damaged: Sequence[DamagedFile]) -> list[str]:
    """Say which trial files could not be read: a trial is never left out of the ranking without a word."""
    unreadable = [item for item in damaged if item.path.name == "trial.json"]
    curves = [item for item in damaged if item.path.name != "trial.json"]
    messages = []
    if unreadable:
        messages.append(f"{len(unreadable)} trial file(s) could not be read, so their trials are not ranked: "
                        f"{'; '.join(item.describe() for item in unreadable)}. Restore them from a backup, or search "
                        f"afresh with python search.py --overwrite.")
    if curves:
        messages.append(f"{len(curves)} curve file(s) are damaged; their trials are ranked with what is left (KerasTuner's "
                        f"record of the best epoch for a lost curve, no size or speed for a lost footprint): "
                        f"{'; '.join(item.describe() for item in curves)}.")
    return messages
