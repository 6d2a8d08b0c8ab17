"""tuner.rundir: one Run names every artifact; settings.json is a typed record, refused when damaged."""

import dataclasses
import json
import os
import time

import pytest

from tuner.config import COMPARED_ON_RESUME, ExecutionOptions, SearchSettings
from tuner.errors import TunerUsageError
from tuner.rundir import DatasetRecord, Run, RunLock, RunRecord, latest_run, open_run

DATASET = DatasetRecord(path="/data/prepared", identity="0123456789abcdef", class_names=("cat", "dog"),
                        input_shape=(28, 28, 1), img_size=28, color="grayscale")


def record(**search):
    """A tutorial-space run's record (these tests change its extras) with `search` changed."""
    return RunRecord(SearchSettings(**{"space": "tutorial", **search}), DATASET)


def test_every_artifact_lives_under_the_root(tmp_path):
    run = Run(tmp_path / "run")
    paths = [run.settings, run.lock, run.project, run.oracle_state, run.tuner_state("tuner0"), run.trial_dir("03"),
             run.trial_state("03"), run.checkpoint("03"), run.history_dir, run.history("03"), run.tensorboard,
             run.trial_tensorboard("03"), run.retrain_tensorboard, run.plots, run.results("csv"), run.results("md"),
             run.best]
    assert all(path.is_relative_to(run.root) for path in paths) and len(set(paths)) == len(paths)
    assert run.trial_state("03") == run.root / "trials" / "trial_03" / "trial.json"
    assert run.history("03") == run.root / "history" / "trial_03.json"
    with pytest.raises(ValueError, match="results are written as csv, md"):
        run.results("xlsx")


def test_the_record_round_trips_through_settings_json(tmp_path):
    run = Run(tmp_path)
    written = record(nodes=(4, 8), learning_rates=(0.001, 0.0003), max_trials=5)
    run.write_record(written)
    assert run.read_record() == written
    data = json.loads(run.settings.read_text())
    assert data["search"]["nodes"] == [4, 8] and data["dataset"]["class_names"] == ["cat", "dog"]


def test_no_settings_json_is_no_record(tmp_path):
    assert Run(tmp_path).read_record() is None


def test_only_what_defines_the_run_is_saved(tmp_path):
    run = Run(tmp_path)
    run.write_record(record())
    saved = json.loads(run.settings.read_text())["search"]
    assert set(saved) == {item.name for item in dataclasses.fields(SearchSettings)}
    assert not set(saved) & {item.name for item in dataclasses.fields(ExecutionOptions)}


@pytest.mark.parametrize("damage, why", [
    (lambda data: "{\"search\": {", "expected an object with 'search' and 'dataset'"),
    (lambda data: data.pop("dataset") and data, "expected an object with 'search' and 'dataset'"),
    (lambda data: data["search"].update(nodes="4 8") or data, "nodes must be a list, got str"),
    (lambda data: data["search"].update(epochs=True) or data, "epochs must be int, got bool"),
    (lambda data: data["search"].update(epochs=0) or data, "--epochs must be a whole number"),
    (lambda data: data["dataset"].pop("identity") and data, "missing field(s) identity"),
    (lambda data: data["dataset"].update(input_shape=[28, "28", 1]) or data, "input_shape must be int, got str"),
    (lambda data: data["search"].update(a_future_flag=True) or data, "unknown field(s) a_future_flag"),
    (lambda data: data["dataset"].update(colour="rgb") or data, "unknown field(s) colour"),
])
def test_a_damaged_record_is_refused_naming_the_file(tmp_path, damage, why):
    run = Run(tmp_path)
    run.write_record(record())
    damaged = damage(json.loads(run.settings.read_text()))
    run.settings.write_text(damaged if isinstance(damaged, str) else json.dumps(damaged))
    with pytest.raises(TunerUsageError, match="settings.json' is damaged") as error:
        run.read_record()
    assert why in str(error.value) and "--overwrite" in str(error.value) and "\n" not in str(error.value)


def test_the_difference_names_the_first_changed_flag_and_a_changed_dataset():
    assert record().difference(record(max_trials=3, prune="median")) is None  # --max-trials may grow; prune unchanged
    assert record().difference(record(prune="none")) == "was made with --prune median, not none"
    assert record().difference(record(nodes=(4, 8))) == "was made with --nodes 32 64 128, not 4 8"
    assert record().difference(record(dropouts=(0.5,))) == "was made with --dropouts (none), not 0.5"
    other = RunRecord(SearchSettings(space="tutorial"), DatasetRecord(**{**DATASET.__dict__, "identity": "fedcba9876543210"}))
    assert record().difference(other) == "was made from another prepared dataset than '/data/prepared' holds now"


def test_clear_removes_everything_but_the_lock(tmp_path):
    run = Run(tmp_path)
    run.write_record(record())
    for folder in (run.trial_dir("0"), run.history_dir, run.trial_tensorboard("0"), run.plots, run.best):
        folder.mkdir(parents=True)
        (folder / "file").write_text("x")
    run.results("csv").write_text("x")
    with RunLock(run):
        run.clear()
    assert sorted(path.name for path in tmp_path.iterdir()) == [".search.lock"]


def test_the_lock_is_exclusive_and_released_on_exit(tmp_path):
    run = Run(tmp_path)
    with RunLock(run):
        with pytest.raises(TunerUsageError, match=f"is in use by process {os.getpid()}"):
            RunLock(run).__enter__()
    with RunLock(run):
        pass


def test_latest_run_and_open_run(tmp_path):
    for name in ("old", "new"):
        Run(tmp_path / name).write_record(record())
        time.sleep(0.01)
    assert latest_run(tmp_path) == Run(tmp_path / "new")
    with pytest.raises(TunerUsageError, match="found no run under"):
        latest_run(tmp_path / "empty")
    run, found = open_run(tmp_path / "old")
    assert run.root == tmp_path / "old" and found == record()
    with pytest.raises(TunerUsageError, match="does not exist"):
        open_run(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(TunerUsageError, match="is not a run directory"):
        open_run(tmp_path / "plain")


def test_an_older_runs_execution_options_are_dropped_and_it_still_resumes(tmp_path):
    run = Run(tmp_path)
    run.write_record(record())
    data = json.loads(run.settings.read_text())
    # As older versions saved them, one of them a number from before --workers auto existed.
    data["search"].update(data="data/prepared", run_dir=None, overwrite=False, workers=0, role=None, oracle=None,
                          connect_timeout=30, quiet=True, debug=False)
    del data["search"]["augment"]  # a setting added since: its default is what the older version did
    run.settings.write_text(json.dumps(data))
    assert run.read_record() == record()


def test_every_search_setting_but_max_trials_and_confirm_is_compared_on_resume():
    # A finished search can be extended with more trials, or more confirm runs; anything else would mix trials.
    names = [item.name for item in dataclasses.fields(SearchSettings)]
    assert COMPARED_ON_RESUME == tuple(name for name in names if name not in ("max_trials", "confirm"))
