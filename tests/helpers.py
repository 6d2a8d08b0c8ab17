"""A real tiny search (and its reported winner), made once per test session and copied by tests that change it."""

import dataclasses
import json
import shutil
from collections import Counter
from pathlib import Path

from tests.tiny_data import write_tiny_prepared
from tuner.config import ExecutionOptions, SearchSettings
from tuner.rundir import Run
from tuner.trials.records import FINISHED, iter_trials

# Session-wide cache: report and predict tests share one search instead of each running their own.
_MADE = {}


def tiny_run(tmp_path_factory):
    """A prepared 16x16 two-class dataset and a finished grid search over it: (prepared dir, run dir).

    The grid is conv_layers 1, 2, 3 x nodes 4 x dense_layers 0 with 2 epochs each; three
    conv+pool blocks do not fit 16x16 images, so trial 2 fails and trials 0 and 1 complete.
    It has no confirm runs (search_args' --confirm 0), so report.py's tests train their own.
    """
    if "run" not in _MADE:
        from tuner.execution.roles import run_search

        base = tmp_path_factory.mktemp("tiny_run")
        prepared = write_tiny_prepared(base / "prepared", side=16, per_class=(20, 8, 8))
        run_search(*search_args(data=str(prepared), run_dir=str(base / "run"), epochs=2, conv_layers=(1, 2, 3),
                                nodes=(4,), dense_layers=(0,), patience=0, quiet=True, workers="0"))
        _MADE["run"] = (Path(prepared), base / "run")
    return _MADE["run"]


def search_args(**values):
    """The (SearchSettings, ExecutionOptions) of run_search from one set of field values, as search.py's flags give both.

    The tutorial's space (and so its grid) unless `space` is given: these tests search tiny grids whose trial
    counts they know; the default space and search run in test_execution's as-a-user-runs-it tests.
    """
    # No confirm runs unless a test asks: they would add trainings to every tiny search (the as-a-user tests have them).
    values = {"space": "tutorial", "confirm": (0,), **values}
    names = {field.name for field in dataclasses.fields(SearchSettings)}
    settings = SearchSettings(**{name: value for name, value in values.items() if name in names})
    return settings, ExecutionOptions(**{name: value for name, value in values.items() if name not in names})


def tiny_winner(tmp_path_factory):
    """A copy of the tiny run on which `python report.py` has retrained and saved the winner: (prepared, run)."""
    if "winner" not in _MADE:
        import report as report_script

        prepared, run = tiny_run(tmp_path_factory)
        copy = copy_run(run, tmp_path_factory.mktemp("tiny_winner"))
        # The tiny run's search confirmed nothing (search_args): report.py confirms as a grid search's default does.
        assert report_script.main(["--run-dir", str(copy), "--confirm", "3", "2", "--workers", "0"]) == 0
        _MADE["winner"] = (prepared, copy)
    return _MADE["winner"]


def copy_run(run, destination):
    """A copy of a run directory under `destination`, for tests that change it."""
    target = Path(destination) / "run"
    shutil.copytree(run, target)
    return target


def edit_json(path, change):
    """Rewrite a JSON file through `change(data)`, which edits it in place."""
    data = json.loads(Path(path).read_text())
    change(data)
    Path(path).write_text(json.dumps(data))


def finished_configurations(run_dir):
    """How often each configuration finished (COMPLETED or FAILED), over all trial files."""
    return Counter(
        json.dumps(record.hyperparameters, sort_keys=True)
        for record in iter_trials(Run(Path(run_dir)))
        if record.status in FINISHED
    )


def one_error_line(capsys, message):
    """Assert that stderr holds exactly one line, an `error:` containing `message`."""
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
