"""A trial's place in a successive-halving schedule read back: the trial it continues, checked across a run's trials.

KerasTuner's Hyperband and this tool's asha (search/halving.py) keep a trial's place in its hyperparameter values
(rundir/checks.py names the keys) and asha also in its curve file; a place the oracle could not have given (a trial
continuing itself, no trial, an unfinished one, or one already continued) would make a resume promote a trial twice
or load weights that are not there, so it is damage of the trial's file. None of these functions reads a file.
"""

from __future__ import annotations

from typing import Any

from tuner.rundir.checks import (
    BRACKET,
    CONTINUES,
    EPOCHS,
    INITIAL_EPOCH,
    ROUND,
    TUNER_VALUE_PREFIX,
    RunLimits,
    epoch_problem,
    is_whole_number,
    shown_number,
)


def schedule_problems(values: dict[str, dict[str, Any]], completed: set[str], unreadable: set[str]) -> dict[str, str]:
    """What is wrong with each trial's place in a successive-halving schedule (trial id -> problem); {} when sound.

    A trial at round r > 0 (asha's rung, or Hyperband's round) continues one trial: another, existing, completed
    trial at round r - 1 of the same configuration, from the epoch that one ended at; a first-round trial continues
    none; and a trial is continued once (the later trial that continues it again is the damaged one: the oracle
    promotes a trial only while no trial continues it). Trials without a round (the other tuners') have no place.

    Args:
        values: each readable trial's hyperparameter values, by trial id.
        completed: the ids of the trials KerasTuner recorded as COMPLETED.
        unreadable: the ids of trials whose trial.json could not be read (or is missing beside its curve): a trial
            continuing one of them is still read, with its own data.
    """
    problems: dict[str, str] = {}
    continued_by: dict[str, str] = {}
    # KerasTuner's ids in a run have one width, so their order is the order the trials were created in.
    for trial_id in sorted(values, key=lambda name: (len(name), name)):
        problem = _place_problem(trial_id, values, completed, unreadable)
        source = values[trial_id].get(CONTINUES)
        if problem is None and source is not None and source in continued_by:
            problem = f"it continues trial {source}, which trial {continued_by[source]} continues already"
        elif problem is None and source is not None:
            continued_by[source] = trial_id
        if problem:
            problems[trial_id] = problem
    return problems


def _place_problem(trial_id: str, values: dict[str, dict[str, Any]], completed: set[str],
                   unreadable: set[str]) -> str | None:
    own = values[trial_id]
    if ROUND not in own and CONTINUES not in own:
        return None
    round_number, source = own.get(ROUND), own.get(CONTINUES)
    for name in (ROUND, BRACKET):
        if name in own and (not is_whole_number(own[name]) or own[name] < 0):
            return f"{name} {shown_number(own[name])} is not a whole number from 0"
    if not round_number:
        if source is None:
            return None
        where = "round 0" if ROUND in own else f"no round ({ROUND} missing)"
        return f"it is at {where} but continues trial {shown_number(source)}"
    if not isinstance(source, str):
        return f"it is at round {round_number} but continues no trial ({CONTINUES} {shown_number(source)})"
    if source == trial_id:
        return "it continues itself"
    if source in unreadable:
        return None  # that trial's file is listed as damaged; this one's place cannot be checked, nor is it wrong
    if source not in values:
        return f"it continues trial {shown_number(source)}, which has no trial.json"
    earlier = values[source]
    if source not in completed:
        return f"it continues trial {source}, which has not completed"
    if earlier.get(ROUND) != round_number - 1:
        return f"it is at round {round_number} but continues trial {source} of round {shown_number(earlier.get(ROUND))}"
    if _configuration(earlier) != _configuration(own):
        return f"it trains another configuration than trial {source}, which it continues"
    if own.get(INITIAL_EPOCH) != earlier.get(EPOCHS):
        return (f"it goes on from epoch {shown_number(own.get(INITIAL_EPOCH))}, but trial {source}, which it continues, "
                f"trained {shown_number(earlier.get(EPOCHS))}")
    return None


def _configuration(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if not name.startswith(TUNER_VALUE_PREFIX)}


def halving_problem(halving: Any, limits: RunLimits) -> str | None:
    """What is wrong with a curve file's successive-halving record (rung, epochs, continues), or None."""
    if not isinstance(halving, dict):
        return "its successive-halving record is not an object"
    epochs = halving.get("epochs")
    if not isinstance(epochs, list) or not epochs or any(epoch_problem(epoch, limits, "rung epochs") for epoch in epochs):
        return f"its rungs' epochs {epochs!r} are not epochs of the run"
    rung, continues = halving.get("rung"), halving.get("continues")
    if not isinstance(rung, int) or isinstance(rung, bool) or not 0 <= rung < len(epochs):
        return f"its rung {rung!r} is none of 0..{len(epochs) - 1}"
    if (continues is None) != (rung == 0) or not (continues is None or isinstance(continues, str)):
        return f"rung {rung} continues {continues!r} (rung 0 continues no trial, every later rung one)"
    return None


def place_disagreement(halving: dict[str, Any], values: dict[str, Any]) -> str | None:
    """How a curve file's sound successive-halving record differs from its trial's schedule values, or None.

    The curve's record is written from those values (model/training.py), so the two say the same rung and trial.
    """
    told = (values.get(ROUND), values.get(CONTINUES))
    if (halving["rung"], halving["continues"]) == told:
        return None
    return (f"its successive-halving record (rung {halving['rung']}, continues {halving['continues']!r}) is not its "
            f"trial's ({ROUND} {shown_number(told[0])}, {CONTINUES} {shown_number(told[1])})")
