"""tuner.winner.retrain: the winner retrained, scored once on the test split, and published whole or not at all."""

import json
import os
import stat
from pathlib import Path

import pytest

import report as report_script
from tests.helpers import edit_json, one_error_line, tiny_winner
from tuner.report import rank_trials
from tuner.rundir import Run
from tuner.search.kerastuner import checkpoint_path
from tuner.winner.retrain import publish_winner


def test_retrained_winner_reloads_with_the_stored_test_accuracy(tmp_path_factory):
    import keras

    from tuner.data.cache import load_prepared

    prepared, run = tiny_winner(tmp_path_factory)
    metadata = json.loads((run / "best" / "metadata.json").read_text())
    results = json.loads((run / "results.json").read_text())
    # report.py ran with --confirm 3 2: the winner is the first row after confirming, retrained for
    # the median epoch of its best val_loss over the seeds.
    winner = results["ranking"][0]
    assert winner["seeds"] == 3 and metadata["trial_id"] == winner["trial"]
    assert metadata["epochs"] == winner["median_best_epoch"] and metadata["validation"]["seeds"] == 3
    assert results["winner"]["trial"] == winner["trial"] and results["winner"]["test"]["accuracy"] == metadata["test"]["accuracy"]
    assert metadata["class_names"] == ["class0", "class1"] and metadata["img_size"] == 16
    assert metadata["color"] == "grayscale" and metadata["hyperparameters"]["nodes"] == 4
    assert metadata["dataset"]["identity"]
    test = metadata["test"]
    assert test["images"] == 16 and sum(map(sum, test["confusion_matrix"])) == 16
    low, high = test["accuracy_interval"]
    assert low <= test["accuracy"] <= high and test["interval"].startswith("Wilson")
    assert results["winner"]["test"]["accuracy_interval"] == [low, high]
    assert [item["class"] for item in test["per_class"]] == ["class0", "class1"]
    dataset = load_prepared(prepared)
    model = keras.saving.load_model(run / "best" / "model.keras", safe_mode=True)
    scores = model.evaluate(dataset.x_test, dataset.y_test.astype("float32"), verbose=0, return_dict=True)
    assert scores["accuracy"] == pytest.approx(test["accuracy"], abs=1e-7)
    assert scores["loss"] == pytest.approx(test["loss"], rel=1e-5)
    assert (run / "tensorboard" / "best").is_dir() and any((run / "tensorboard" / "best").rglob("*tfevents*"))
    assert not list(run.glob(".best.*"))


def test_results_json_lists_the_winners_mistakes_most_confident_first(tmp_path_factory):
    from tuner.data.cache import load_prepared

    prepared, run = tiny_winner(tmp_path_factory)
    winner = json.loads((run / "results.json").read_text())["winner"]
    matrix, mistakes = winner_matrix(run), winner["misclassified"]
    assert len(mistakes) == sum(map(sum, matrix)) - sum(matrix[index][index] for index in range(len(matrix)))
    probabilities = [item["probability"] for item in mistakes]
    assert probabilities == sorted(probabilities, reverse=True) and all(0.5 <= value <= 1 for value in probabilities)
    dataset = load_prepared(prepared)
    for item in mistakes:
        assert item["file"] == dataset.test_files[item["index"]]
        assert item["true"] == dataset.class_names[dataset.y_test[item["index"]]] == item["file"].split("/")[0]
        assert item["predicted"] != item["true"] and item["predicted"] in dataset.class_names


def winner_matrix(run):
    return json.loads((run / "best" / "metadata.json").read_text())["test"]["confusion_matrix"]


def test_no_retrain_saves_the_trials_own_weights(run_copy, capsys):
    assert report_script.main(["--run-dir", str(run_copy), "--no-retrain"]) == 0
    out = capsys.readouterr().out
    metadata = json.loads((run_copy / "best" / "metadata.json").read_text())
    assert metadata["epochs"] is None and "best-epoch weights" in metadata["source"]
    assert "test (16 images, scored once)" in out and "confusion matrix" in out and "precision" in out
    assert not (run_copy / "tensorboard" / "best").exists()
    mistakes = json.loads((run_copy / "results.json").read_text())["winner"]["misclassified"]
    matrix = winner_matrix(run_copy)
    assert len(mistakes) == matrix[0][1] + matrix[1][0]
    assert (f"{len(mistakes)} misclassified test image" if mistakes
            else "no misclassified test images") in out


class _BrokenModel:
    def save(self, path):
        Path(path).write_bytes(b"half a model")
        raise KeyboardInterrupt


def test_an_interrupted_save_leaves_the_previous_winner_whole(tmp_path):
    best = tmp_path / "best"
    best.mkdir()
    (best / "model.keras").write_text("old model")
    (best / "metadata.json").write_text("{}")
    with pytest.raises(KeyboardInterrupt):
        publish_winner(Run(tmp_path), _BrokenModel(), {"trial_id": "0"})
    assert (best / "model.keras").read_text() == "old model" and sorted(path.name for path in tmp_path.iterdir()) == ["best"]


class _TinyModel:
    def save(self, path):
        Path(path).write_bytes(b"a model")


def test_the_published_winner_keeps_the_users_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        best = publish_winner(Run(tmp_path), _TinyModel(), {"trial_id": "0"})
    finally:
        os.umask(previous)
    assert stat.S_IMODE(best.stat().st_mode) == 0o755
    assert stat.S_IMODE((best / "metadata.json").stat().st_mode) == 0o644


def test_a_changed_dataset_is_refused(run_copy, capsys):
    edit_json(run_copy / "settings.json", lambda settings: settings["dataset"].update(identity="0123456789abcdef"))
    assert report_script.main(["--run-dir", str(run_copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the prepared dataset at ") and "changed since this run's search" in err
    assert err.count("\n") == 1
    edit_json(run_copy / "settings.json", lambda settings: settings["dataset"].update(path=str(run_copy / "gone")))
    assert report_script.main(["--run-dir", str(run_copy), "--no-retrain"]) == 2
    one_error_line(capsys, "the dataset this run was searched on cannot be loaded: no prepared dataset in")


def test_a_damaged_checkpoint_is_refused_naming_it(run_copy, capsys):
    winner = rank_trials(Run(run_copy))[0][0].trial
    checkpoint = checkpoint_path(Run(run_copy).trial_dir(winner))
    checkpoint.write_bytes(b"not hdf5")
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "0", "--no-retrain"]) == 2
    one_error_line(capsys, f"'{checkpoint}' is damaged")
    assert not (run_copy / "best").exists()
