"""Hostile files in a run directory: every one ends at once with one `error:` line naming it (or the note README
promises where the run goes on), nothing runs out of memory or blocks, and nothing in the run directory changes.

The whole table runs in one child process (tests.hostile), on copies of one tiny finished run.
"""

import json

import pytest

from tests import hostile
from tests.hostile import Case

# To add a row: Case(id, file, form, script, expect="error", match=""). `file` is a short name of hostile.FILES or a
# path inside the run; `form` a name of hostile.FORMS or any function that damages the file at the path it gets;
# `script` a name of hostile.SCRIPTS ("search" resumes the run, "report" ranks it without training, "predict"
# classifies one image with RUN/best); `expect` "error" (exit 2, one `error:` line naming the file, the run
# unchanged), "note" (exit 0, a `note:` line naming it) or "ok"; `match` is text the line must also hold.
# Ids must be unique; the rows run in one child process, so a new row costs about a second, not a TensorFlow import.
# A report row whose damage drops trial 0 from the ranking makes trial 1 the best, whose confirm run report.py would
# train (seconds): give it args=NO_CONFIRM["report"] unless it is about the confirm records.
NO_CONFIRM = {"report": ("--confirm", "0"), "search": ()}
HOSTILE_FORMS = ("fifo", "dev-zero", "socket", "directory", "oversized", "deep", "truncated", "not-json", "wrong-type")
JSON_FILES = {"settings": "search", "oracle": "search", "trial": "search", "curve": "search", "confirm": "search",
              "metadata": "predict"}
CASES = [
    *[Case(f"{name}-{form}", name, form, script) for name, script in JSON_FILES.items() for form in HOSTILE_FORMS],
    Case("confirm-fifo-report", "confirm", "fifo", "report"),
    Case("confirm-deep-report", "confirm", "deep", "report"),
    *[Case(f"model-{form}", "model", form, "predict")
      for form in ("fifo", "dev-zero", "socket", "directory", "oversized", "truncated", "not-json")],
    # report.py names an unreadable trial file in a note and ranks the others (README, Reliability); --confirm 0,
    # as the other trial, now the best, has no confirm run to read and would be trained one.
    *[Case(f"trial-{form}-report", "trial", form, "report", expect="note", args=NO_CONFIRM["report"])
      for form in ("fifo", "dev-zero")],
]


def _hold_lock(run):
    """A search still running on the copy: its lock taken here, in the test process, for as long as the table runs."""
    from tuner.rundir import Run, RunLock

    _HELD.append(RunLock(Run(run)).__enter__())


_HELD = []
# The run's lock file: never followed or read beyond its holder's line; a held lock refuses report.py and a second
# search alike (the "file" "." is the run directory, which the line names), and nothing is trained or written.
CASES += [
    *[Case(f"lock-{form}-{script}", ".search.lock", form, script, match="lock file")
      for form in ("fifo", "dev-zero", "socket", "directory") for script in ("report", "search")],
    *[Case(f"lock-held-{script}", ".", _hold_lock, script, match="is in use by process") for script in ("report", "search")],
]


def _edited(change):
    """A damage form that rewrites a JSON file through `change(data)`, which edits it in place."""
    def damage(path):
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return damage


# Values read back are checked against their ranges whatever their size (an int past a float's is never converted),
# a run's space must be settings.json's (an emptied one too), a curve's epochs must be possible, a trial file missing
# beside its curve is named, and a confirm record must be a whole run.
HUGE = 10**400
CASES += [
    *[Case(f"curve-huge-footprint-{script}", "curve", _edited(lambda data: data["footprint"].update(params=HUGE)), script,
           expect=expect, match="(401 digits)") for script, expect in (("search", "error"), ("report", "note"))],
    *[Case(f"trial-huge-score-{script}", "trial", _edited(lambda data: data.update(score=HUGE)), script,
           expect=expect, match="(401 digits)", args=NO_CONFIRM[script])
      for script, expect in (("search", "error"), ("report", "note"))],
    Case("curve-huge-seconds-report", "curve", _edited(lambda data: data.update(seconds=HUGE)), "report", expect="note",
         match="is not a duration"),
    Case("curve-epoch-0-report", "curve", _edited(lambda data: data["epochs"][0].update(epoch=0)), "report",
         expect="note", match="epoch 0 is outside 1..1"),
    Case("curve-epoch-repeated-report", "curve", _edited(lambda data: data.update(epochs=data["epochs"] * 2)), "report",
         expect="note", match="epoch 1 follows epoch 1"),
    Case("curve-epoch-beyond-report", "curve", _edited(lambda data: data["epochs"][0].update(epoch=2)), "report",
         expect="note", match="epoch 2 is outside 1..1"),
    Case("trial-missing-report", "trial", "missing", "report", expect="note", match="missing, but the trial has a curve",
         args=NO_CONFIRM["report"]),
    Case("oracle-emptied-space-search", "oracle", _edited(lambda data: data["hyperparameters"].update(space=[])),
         "search", match="hyperparameter space (empty)"),
    *[Case(f"confirm-no-epochs-{script}", "confirm", _edited(lambda data: data.update(epochs=[])), script,
           match="it has no epochs") for script in ("search", "report")],
]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    return hostile.run_cases(CASES, tmp_path_factory.mktemp("hostile_cases"), tmp_path_factory)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_hostile_file_is_named_and_nothing_changes(case, outcomes):
    hostile.check(outcomes[case.id])
