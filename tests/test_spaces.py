"""The two named spaces: the tutorial's exactly as it was (27 trials, old runs resume), the modern one end to end."""

import csv
import json

import keras_tuner
import pytest

import report as report_script
import search as search_script
from tests.helpers import one_error_line
from tests.tiny_data import write_tiny_prepared
from tuner.config import SearchSettings
from tuner.config.spaces import MODERN_RECIPE
from tuner.rundir import Run, RunRecord
from tuner.search.tuners import space_size
from tuner.rundir.checks import RunLimits, run_space
from tuner.trials.records import scan_trials

RECIPE = list(MODERN_RECIPE)


def test_the_default_space_is_modern_searched_by_asha_and_the_tutorial_space_plans_exactly_its_27_trials(tmp_path):
    from tuner.model.hypermodel import CNNHyperModel
    from tuner.search.oracles import planned_trials
    from tuner.search.tuners import make_tuner

    default = SearchSettings()
    assert (default.space, default.tuner, default.proposals) == ("modern", "asha", "random")
    assert list(run_space(default)) == ["conv_layers", "nodes", "dense_layers", *RECIPE]
    # 18 new configurations; the baseline and the best 5 others continued, the baseline and the best other in full.
    modern = CNNHyperModel((28, 28, 1), 2, space="modern")
    assert planned_trials(make_tuner(default, modern, Run(tmp_path / "modern")).oracle, space_size(default)) == 18 + 6 + 2

    settings = SearchSettings(space="tutorial")
    assert settings.tuner == "grid" and space_size(settings) == 27
    hp = keras_tuner.HyperParameters()
    CNNHyperModel((28, 28, 1), 2, settings.conv_layers, settings.nodes, settings.dense_layers).declare_hyperparameters(hp)
    assert [item.name for item in hp.space] == ["conv_layers", "nodes", "dense_layers"] == list(run_space(settings))
    tuner = make_tuner(settings, CNNHyperModel((28, 28, 1), 2), Run(tmp_path / "run"))
    assert planned_trials(tuner.oracle, space_size(settings)) == 27


def test_the_modern_search_starts_from_the_recipe_baseline_and_the_tutorial_grid_has_none(tmp_path):
    from tuner.model.hypermodel import CNNHyperModel
    from tuner.search.tuners import baseline_of, make_tuner

    default = SearchSettings()
    hypermodel = CNNHyperModel((28, 28, 1), 2, default.conv_layers, default.nodes, default.dense_layers, space="modern")
    baseline = {"conv_layers": 3, "nodes": 64, "dense_layers": 0, "filters": "double", "convs_per_block": 2,
                "batch_norm": True, "head": "gap", "dropout": 0.2, "learning_rate": 0.003, "augment": "on"}
    assert baseline_of(hypermodel) == baseline
    assert make_tuner(default, hypermodel, Run(tmp_path / "modern")).oracle.baseline == baseline
    # Every value is one the space holds, so the baseline is a configuration like any other.
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    assert {item.name: item.default for item in hp.space}.keys() == baseline.keys()
    for item in hp.space:
        value = baseline[item.name]
        # Compared with their types too: True == 1, and a Boolean given 1 would not be the Boolean's value.
        assert item.min_value <= value <= item.max_value if hasattr(item, "min_value") else any(
            value == choice and type(value) is type(choice) for choice in item.values)
    # 3 blocks of two padded convolutions need 8 px: on 6 px images the baseline has the most that fit.
    small = CNNHyperModel((6, 24, 1), 2, [1, 2, 3], [16, 128], [1, 2], space="modern")
    assert {name: baseline_of(small)[name] for name in ("conv_layers", "nodes", "dense_layers")} == {
        "conv_layers": 2, "nodes": 128, "dense_layers": 1}  # 128 is as near 64 as 32 is; 16 is farther
    assert baseline_of(CNNHyperModel((28, 28, 1), 2, default.conv_layers, default.nodes, default.dense_layers)) is None


def test_a_modern_run_from_before_blocks_of_two_is_reported_but_not_resumed():
    record = RunRecord.from_json({"format_version": 2, "search": {"space": "modern", "tuner": "asha"},
                                  "dataset": {"path": "/data", "identity": "x", "class_names": ["a", "b"],
                                              "input_shape": [28, 28, 1], "img_size": 28, "color": "grayscale"}})
    assert record.searched_without() == ["convs_per_block"]
    assert "convs_per_block" not in RunLimits.of(record).space
    assert "before it had convs_per_block (settings.json format_version 2); report.py still reads it" in record.difference(
        RunRecord(record.search, record.dataset))
    assert RunRecord.from_json(record.to_json()).searched_without() == []  # written, it is of the current format
    tutorial = RunRecord.from_json({**record.to_json(), "format_version": 2, "search": {"space": "tutorial"}})
    assert tutorial.searched_without() == [] and tutorial.difference(RunRecord(tutorial.search, tutorial.dataset)) is None


def test_a_settings_json_written_before_spaces_reads_as_the_tutorial_space_and_resumes():
    record = RunRecord.from_json({"search": {"tuner": "random", "epochs": 10, "conv_layers": [1, 2, 3]},
                                  "dataset": {"path": "/data", "identity": "x", "class_names": ["a", "b"],
                                              "input_shape": [28, 28, 1], "img_size": 28, "color": "grayscale"}})
    assert record.search.space == "tutorial"
    assert record.difference(RunRecord(SearchSettings(space="tutorial", tuner="random"), record.dataset)) is None
    assert "was made with --space tutorial, not modern" in record.difference(
        RunRecord(SearchSettings(space="modern", tuner="random"), record.dataset))
    assert record.to_json()["search"]["space"] == "tutorial"  # written from now on


@pytest.mark.parametrize("argv, message", [
    (["--tuner", "grid"], "--space modern (the default) searches a continuous learning rate, so it has no grid; use "
                          "--tuner asha"),
    (["--space", "modern", "--tuner", "grid"], "so it has no grid; use --tuner asha"),
    (["--dropouts", "0.5", "--augment", "on"], "so --dropouts and --augment must be left out; or add --space tutorial"),
    (["--space", "fancy"], "argument --space: invalid choice: 'fancy'"),
])
def test_what_the_modern_space_cannot_take_is_refused_in_one_line(argv, message, capsys):
    assert search_script.main(argv) == 2
    one_error_line(capsys, message)


def test_a_modern_random_search_runs_resumes_and_is_ranked_with_the_recipe_columns(tmp_path, capsys):
    prepared = write_tiny_prepared(tmp_path / "prepared", side=16, per_class=(20, 8, 8))
    run_dir = tmp_path / "run"
    argv = ["--data", str(prepared), "--run-dir", str(run_dir), "--space", "modern", "--tuner", "random",
            "--max-trials", "3", "--epochs", "2", "--conv-layers", "1", "2", "--nodes", "4", "8",
            "--dense-layers", "0", "1", "--workers", "0", "--quiet", "--confirm", "0"]
    assert search_script.main(argv) == 0
    run = Run(run_dir)
    assert json.loads(run.settings.read_text())["search"]["space"] == "modern"
    trials, damaged = scan_trials(run)
    assert len(trials) == 3 and not damaged  # every value within the modern space, learning rates by their range
    for trial in trials:
        assert list(trial.hyperparameters) == ["conv_layers", "nodes", "dense_layers", *RECIPE]
        assert 1e-4 <= trial.hyperparameters["learning_rate"] <= 1e-2
    # The same command resumes (the saved Float space is the run's) and finds nothing left to do.
    assert search_script.main(argv) == 0
    assert len(scan_trials(run)[0]) == 3
    capsys.readouterr()
    assert report_script.main(["--run-dir", str(run_dir), "--no-retrain", "--confirm", "0"]) == 0
    out = capsys.readouterr().out
    assert all(name in out.splitlines()[0] for name in RECIPE), out  # the ranking table shows the recipe
    with open(run_dir / "results.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) >= 1 and set(RECIPE) <= set(rows[0])
    assert (run_dir / "best" / "model.keras").is_file()
    # Retrained, a modern winner trains for twice its best epoch, its learning rate decaying over all of them.
    assert report_script.main(["--run-dir", str(run_dir), "--confirm", "0", "--tta", "off", "--no-html"]) == 0
    metadata = json.loads((run_dir / "best" / "metadata.json").read_text())
    assert metadata["epochs"] == 2 * metadata["validation"]["best_epoch"]


def test_a_winner_at_the_edge_of_the_modern_spaces_ranges_is_noted_with_where_to_widen_them():
    from tuner.report.notes import boundary_warnings

    search = SearchSettings(space="modern", tuner="random")
    space = {"learning_rate": [0.0002, 0.0095], "dropout": list(MODERN_RECIPE["dropout"]), "nodes": [32, 64, 128]}
    messages = boundary_warnings({"learning_rate": 0.0095, "dropout": 0.5, "nodes": 128}, space, 28, search)
    assert len(messages) == 3, messages
    assert ("learning_rate=0.0095 lies in the top 10% of the range searched (0.0001..0.01, log scale); the best may "
            "lie beyond it: widen its range in the modern space (tuner/config/spaces.py) upwards") in messages[0]
    assert "dropout=0.5 is the largest value searched (0..0.5)" in messages[1] and "spaces.py" in messages[1]
    assert "nodes=128 is the largest value searched" in messages[2] and "widen --nodes" in messages[2]
    low = boundary_warnings({"learning_rate": 0.00011, "dropout": 0.0, "nodes": 64}, space, 28, search)
    assert len(low) == 1 and "lies in the bottom 10% of the range searched" in low[0]
    # Inside the range, or at a floor that cannot go lower (dropout 0): nothing to say.
    assert boundary_warnings({"learning_rate": 0.001, "dropout": 0.0, "nodes": 64}, space, 28, search) == []
