"""tuner.model.training: one trainer for a search trial, a confirm run and the retrain, with the same callbacks and curve rows."""

import json
import logging
import math

import keras
import pytest

from tests.tiny_data import write_tiny_prepared
from tuner.data.cache import load_prepared
from tuner.config import SearchSettings
from tuner.confirm.runs import train_configuration
from tuner.files import atomic_write_json
from tuner.model.hypermodel import CNNHyperModel, build_hypermodel, build_model
from tuner.search.pruning import MedianPruner
from tuner.rundir import Run
from tuner.search.tuners import footprint_tensorboard, make_tuner, run_trials, trial_plan
from tuner.model.training import CurveWriter, EpochProgress, TrainingPlan, build_callbacks
from tuner.winner.retrain import _fit_on_train_and_validation

# A learning rate no one would choose: the weights overflow in the first steps, so the losses are NaN or infinite.
DIVERGING = 1e38
LEARNS = 0.01
SETTINGS = SearchSettings(tuner="grid", space="tutorial", epochs=2, conv_layers=(1,), nodes=(4,), dense_layers=(0,),
                          learning_rates=(LEARNS, 0.5), patience=0)


def strict_json(text):
    def refuse(token):
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def kinds(callbacks):
    return [type(callback) for callback in callbacks]


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A real two-trial search on 16x16 images, one trial learning and one diverging: (dataset, run, curves by lr)."""
    base = tmp_path_factory.mktemp("training")
    dataset = load_prepared(write_tiny_prepared(base / "prepared", side=16, per_class=(8, 4, 4)))
    run = Run(base / "run")
    # The settings refuse a learning rate above 1, so the diverging one goes to the space directly.
    hypermodel = CNNHyperModel(dataset.input_shape, dataset.num_classes, conv_layers=(1,), nodes=(4,), dense_layers=(0,),
                               learning_rates=(LEARNS, DIVERGING))
    run_trials(make_tuner(SETTINGS, hypermodel, run), SETTINGS, run, dataset)
    curves = {}
    for path in sorted(run.history_dir.glob("trial_*.json")):
        trial_id = path.stem.removeprefix("trial_")
        state = json.loads(run.trial_state(trial_id).read_text())
        curves[state["hyperparameters"]["values"]["learning_rate"]] = (trial_id, path.read_text())
    return dataset, run, curves


def test_the_search_builds_tensorboard_early_stopping_and_the_curve_file(tmp_path):
    run = Run(tmp_path)
    pruner = MedianPruner(run, 1, 1)
    callbacks, curve = build_callbacks(trial_plan(run, "3", patience=2, pruner=pruner))
    assert kinds(callbacks) == [keras.callbacks.TensorBoard, keras.callbacks.EarlyStopping, CurveWriter]
    # KerasTuner adds the trial's folder and HParams under the run's TensorBoard root.
    assert callbacks[0].log_dir == str(run.tensorboard) and callbacks[1].patience == 2
    assert curve is callbacks[2] and curve.path == run.history("3") and curve.pruner is pruner
    assert curve.footprint_tensorboard == footprint_tensorboard(run, "3")
    assert kinds(build_callbacks(trial_plan(run, "3", patience=0))[0]) == [keras.callbacks.TensorBoard, CurveWriter]


def test_a_confirm_run_keeps_its_rows_in_memory_and_the_retrain_logs_its_epochs(tmp_path):
    confirm, curve = build_callbacks(TrainingPlan(tensorboard_dir=tmp_path / "confirm", patience=2))
    assert kinds(confirm) == [keras.callbacks.TensorBoard, keras.callbacks.EarlyStopping, CurveWriter]
    assert curve.path is None and curve.pruner is None and curve.footprint_tensorboard is None
    retrain, _ = build_callbacks(TrainingPlan(tensorboard_dir=tmp_path / "best", progress_label="retrain"))
    # No validation split is left in the retrain, so nothing can stop it early.
    assert kinds(retrain) == [keras.callbacks.TensorBoard, CurveWriter, EpochProgress]
    assert kinds(build_callbacks(TrainingPlan())[0]) == [CurveWriter]


def test_the_curve_is_on_disk_after_every_epoch(tmp_path):
    path = tmp_path / "history" / "trial_0.json"
    curve = CurveWriter(path, "0")
    curve.on_train_begin()
    curve.on_epoch_end(0, {"loss": 0.9, "val_loss": 0.7})
    first = json.loads(path.read_text())
    curve.on_epoch_end(1, {"loss": 0.5, "val_loss": 0.6})
    second = json.loads(path.read_text())
    assert [row["epoch"] for row in first["epochs"]] == [1] and [row["epoch"] for row in second["epochs"]] == [1, 2]
    assert second["trial_id"] == "0" and second["epochs"][1]["val_loss"] == 0.6 and second["seconds"] >= 0


def test_a_nan_or_infinite_epoch_is_written_as_null(tmp_path):
    path = tmp_path / "history" / "trial_0.json"
    curve = CurveWriter(path, "0")
    curve.on_train_begin()
    curve.on_epoch_end(0, {"loss": math.nan, "val_loss": math.inf, "accuracy": 0.5, "val_accuracy": 0.5})
    row = strict_json(path.read_text())["epochs"][0]
    assert row["loss"] is None and row["val_loss"] is None and row["accuracy"] == 0.5
    assert curve.epochs[0]["loss"] is None


def test_a_diverged_trials_curve_is_strict_json_with_null_losses(searched):
    _, _, curves = searched
    assert set(curves) == {LEARNS, DIVERGING}
    rows = strict_json(curves[DIVERGING][1])["epochs"]
    assert len(rows) == 2 and None in [row["val_loss"] for row in rows]
    assert all(isinstance(row["val_loss"], float) for row in strict_json(curves[LEARNS][1])["epochs"])


def test_confirm_runs_and_the_search_write_the_same_rows(searched):
    dataset, run, curves = searched
    trial_id, text = curves[DIVERGING]
    searched_rows = strict_json(text)["epochs"]
    values = {"conv_layers": 1, "nodes": 4, "dense_layers": 0, "learning_rate": DIVERGING}
    # Under the trial's own seed the confirm run trains exactly as the trial did, diverging at the same epochs.
    confirmed = train_configuration(SETTINGS, dataset, values, seed=SETTINGS.seed + int(trial_id))
    assert [set(row) for row in confirmed] == [set(row) for row in searched_rows]
    # A diverged epoch is None in both, never a float NaN in one and null in the other, and so on disk.
    assert [row["val_loss"] is None for row in confirmed] == [row["val_loss"] is None for row in searched_rows]
    atomic_write_json(run.confirm_record(trial_id, 1), {"epochs": confirmed})
    assert strict_json(run.confirm_record(trial_id, 1).read_text())["epochs"] == confirmed


def test_the_retrain_logs_each_epoch_and_records_the_same_keys(searched, tmp_path, caplog):
    dataset, _, curves = searched
    keys = set(strict_json(curves[LEARNS][1])["epochs"][0])
    keras.utils.set_random_seed(1)
    model = build_model(build_hypermodel(SETTINGS, dataset), {"conv_layers": 1, "nodes": 4, "dense_layers": 0,
                                                              "learning_rate": LEARNS})
    with caplog.at_level(logging.INFO, logger="tuner"):
        rows = _fit_on_train_and_validation(model, dataset, SETTINGS, 2, tmp_path / "best")
    assert [set(row) for row in rows] == [keys, keys]
    # The retrain has no validation split: its validation columns are there, empty.
    assert rows[0]["val_loss"] is None and rows[0]["loss"] is not None
    lines = [record.getMessage() for record in caplog.records if "retrain epoch" in record.getMessage()]
    assert [line.split(":")[0] for line in lines] == ["retrain epoch 1/2", "retrain epoch 2/2"]
    assert (tmp_path / "best").is_dir()


class FirstStepLearningRate(keras.callbacks.Callback):
    """Records the optimizer's learning rate and step count at the first batch of a fit."""

    def on_train_begin(self, logs=None):
        self.seen = None

    def on_train_batch_begin(self, batch, logs=None):
        if self.seen is None:
            optimizer = self.model.optimizer
            self.seen = (int(optimizer.iterations.numpy()), float(optimizer.learning_rate.numpy()))


def test_a_continued_fit_goes_on_along_the_full_length_learning_rate_schedule():
    import numpy as np
    import tensorflow as tf

    from tuner.model.training import fit, steps_per_epoch

    rng = np.random.default_rng(0)
    x = rng.random((40, 4)).astype("float32")
    train = tf.data.Dataset.from_tensor_slices((x, (x.sum(1) > 2).astype("float32"))).batch(8)
    steps = steps_per_epoch(train)
    assert steps == 5
    schedule = keras.optimizers.schedules.CosineDecay(0.01, decay_steps=steps * 6)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="binary_crossentropy")
    probe = FirstStepLearningRate()
    # A model that never trained (e.g. one whose earlier rung left only weights) starts at epoch 4 of 6.
    fit(model, train, epochs=6, callbacks=[probe], initial_epoch=4)
    assert probe.seen[0] == 4 * steps
    assert probe.seen[1] == pytest.approx(float(schedule(4 * steps)), rel=1e-6)
    assert probe.seen[1] < 0.01 / 2  # past the cosine's midpoint: not the schedule started again
    assert int(model.optimizer.iterations.numpy()) == 6 * steps


def test_a_halving_trial_saves_its_last_epoch_and_its_curve_continues_the_earlier_rung(tmp_path):
    from tuner.model.training import Rung

    earlier = ({"epoch": 1, "loss": 0.9, "val_loss": 0.8, "seconds": 2.0},)
    path = tmp_path / "history" / "trial_1.json"
    curve = CurveWriter(path, "1", pruned_tensorboard=tmp_path / "tensorboard" / "1",
                        rung=Rung(1, (1, 3, 9), "0", earlier, 2.0), last_weights=tmp_path / "last_epoch.weights.h5")
    curve.set_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    curve.on_train_begin()
    curve.on_epoch_end(1, {"loss": 0.7, "val_loss": 0.6})
    curve.on_train_end()
    record = json.loads(path.read_text())
    assert [row["epoch"] for row in record["epochs"]] == [1, 2] and record["epochs"][0] == earlier[0]
    assert record["seconds"] >= 2.0
    assert record["halving"] == {"rung": 1, "epochs": [1, 3, 9], "continues": "0"}
    assert (tmp_path / "last_epoch.weights.h5").is_file()
    assert not list(tmp_path.glob("partial.*"))
    assert (tmp_path / "tensorboard" / "1" / "promoted").is_dir()
