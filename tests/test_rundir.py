"""tuner.rundir: one Run names every artifact; settings.json is a typed record of a format_version, refused when damaged."""

import dataclasses
import itertools
import json
import os
import time
from pathlib import Path

import pytest

from tests.helpers import one_error_line
from tuner.config import COMPARED_ON_RESUME, ExecutionOptions, SearchSettings
from tuner.errors import TunerUsageError
from tuner.rundir import DatasetRecord, Run, RunLock, RunRecord, latest_run, open_run
from tuner.rundir.record import FORMAT_VERSION

DATASET = DatasetRecord(path="/data/prepared", identity="0123456789abcdef", class_names=("cat", "dog"),
                        input_shape=(28, 28, 1), img_size=28, color="grayscale")


def record(**search):
    """A tutorial-space run's record (these tests change its extras) with `search` changed."""
    return RunRecord(SearchSettings(**{"space": "tutorial", **search}), DATASET)


def test_every_artifact_lives_under_the_root(tmp_path):
    run = Run(tmp_path / "run")
    paths = [run.settings, run.lock, run.project, run.tuner_state("tuner0"), run.trial_dir("03"),
             run.trial_state("03"), run.history_dir, run.history("03"), run.tensorboard,
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
    (lambda data: data.update(runs=[]) or data, "unknown field(s) runs"),
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


def format_1(run):
    """settings.json as a run of format 1 saved it: no format_version, with its execution options."""
    data = json.loads(run.settings.read_text())
    del data["format_version"]
    # One of them (workers) a number from before --workers auto existed.
    data["search"].update(data="data/prepared", run_dir=None, overwrite=False, workers=0, role=None, oracle=None,
                          connect_timeout=30, quiet=True, debug=False)
    return data


def test_a_new_run_writes_the_current_format_version(tmp_path):
    run = Run(tmp_path)
    run.write_record(record())
    assert json.loads(run.settings.read_text())["format_version"] == FORMAT_VERSION == 3


def test_a_run_of_format_1_drops_its_execution_options_and_still_resumes(tmp_path):
    run = Run(tmp_path)
    run.write_record(record())
    data = format_1(run)
    del data["search"]["augment"]  # a setting added since: its default is what the code did before it existed
    run.settings.write_text(json.dumps(data))
    assert run.read_record() == record()
    # Before --space existed every run searched the tutorial's space.
    del data["search"]["space"]
    run.settings.write_text(json.dumps(data))
    assert run.read_record() == record()


@pytest.mark.parametrize("change, why", [
    (lambda data: data["search"].update(workers=0), "unknown field(s) workers"),  # execution options only in format 1
    (lambda data: data["search"].pop("space"), "missing field(s) space"),
    (lambda data: data.update(format_version="2"), "format_version must be int, got str '2'"),
    (lambda data: data.update(format_version=2.0), "format_version must be int, got float 2.0"),
    (lambda data: data.update(format_version=True), "format_version must be int, got bool True"),
    (lambda data: data.update(format_version=None), "format_version must be int, got NoneType None"),
    (lambda data: data.update(format_version=0), "format_version must be 1 or more, got 0"),
])
def test_from_format_2_execution_options_a_missing_space_or_a_mistyped_format_version_are_damage(tmp_path, change, why):
    run = Run(tmp_path)
    run.write_record(record())
    data = json.loads(run.settings.read_text())
    change(data)
    run.settings.write_text(json.dumps(data))
    with pytest.raises(TunerUsageError, match="settings.json' is damaged") as error:
        run.read_record()
    assert why in str(error.value) and "\n" not in str(error.value)


def test_a_newer_format_version_is_refused_naming_the_file_not_as_damage(tmp_path):
    run = Run(tmp_path)
    # A newer release may change anything; the format is read first.
    run.settings.write_text(json.dumps({"format_version": FORMAT_VERSION + 1, "runs": []}))
    with pytest.raises(TunerUsageError) as error:
        run.read_record()
    message = str(error.value)
    assert message.startswith(f"'{run.settings}' has format_version {FORMAT_VERSION + 1}, newer than the formats 1 to "
                              f"{FORMAT_VERSION} this tool reads")
    assert "damaged" not in message and "--overwrite" in message and "\n" not in message


def test_every_search_setting_but_max_trials_and_confirm_is_compared_on_resume():
    # A finished search can be extended with more trials, or more confirm runs; anything else would mix trials.
    names = [item.name for item in dataclasses.fields(SearchSettings)]
    assert COMPARED_ON_RESUME == tuple(name for name in names if name not in ("max_trials", "confirm"))


def test_the_scripts_refuse_a_newer_format_version_with_exit_2_and_one_line(tmp_path, capsys):
    import report as report_script

    run = Run(tmp_path / "run")
    run.write_record(record())
    data = json.loads(run.settings.read_text())
    run.settings.write_text(json.dumps({**data, "format_version": FORMAT_VERSION + 1}))
    assert report_script.main(["--run-dir", str(run.root), "--confirm", "0", "--no-retrain"]) == 2
    one_error_line(capsys, f"'{run.settings}' has format_version {FORMAT_VERSION + 1}, newer than")


def test_the_readme_has_a_row_for_every_format_version():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    below = readme.split("| format_version | what changed |\n", 1)[1].splitlines()[1:]  # past the | --- | line
    table = itertools.takewhile(lambda line: line.lstrip().startswith("|"), below)
    rows = [line.split("|")[1].strip() for line in table]
    assert rows == [str(version) for version in range(1, FORMAT_VERSION + 1)]
