"""tuner.search.tuners: what a trial is: the tuner for each algorithm, the size of the space and the trial's callbacks."""

import keras
import pytest

from tuner.config import SearchSettings
from tuner.model.hypermodel import CNNHyperModel
from tuner.rundir import Run
from tuner.search.tuners import (
    HyperbandSearchTuner,
    SearchTuner,
    make_tuner,
    space_size,
    trial_plan,
)
from tuner.model.training import CurveWriter, build_callbacks


def test_space_size_counts_the_optional_dimensions_only_when_searched():
    assert space_size(SearchSettings(space="tutorial")) == 27
    assert space_size(SearchSettings(space="tutorial", learning_rates=(0.001, 0.0003), dropouts=(0.0, 0.25, 0.5))) == 162


@pytest.mark.parametrize("name, max_trials", [("grid", 4), ("random", 10), ("bayesian", 10)])
def test_each_tuner_name_gets_its_oracle_and_trial_budget(tmp_path, name, max_trials):
    settings = SearchSettings(space="tutorial", tuner=name, conv_layers=(1, 2), nodes=(4, 8), dense_layers=(0,))
    tuner = make_tuner(settings, CNNHyperModel((16, 16, 1), 2, conv_layers=(1, 2), nodes=(4, 8), dense_layers=(0,)),
                       Run(tmp_path))
    assert isinstance(tuner, SearchTuner) and tuner.oracle.max_trials == max_trials
    assert (tmp_path / "trials").is_dir()  # KerasTuner's project is the run's


def test_hyperband_is_keras_tuners_own(tmp_path):
    tuner = make_tuner(SearchSettings(tuner="hyperband", epochs=4), CNNHyperModel((16, 16, 1), 2), Run(tmp_path))
    assert isinstance(tuner, HyperbandSearchTuner) and tuner.oracle.max_epochs == 4


def test_patience_adds_early_stopping_and_0_leaves_it_out(tmp_path):
    kinds = [type(callback) for callback in build_callbacks(trial_plan(Run(tmp_path), "0", patience=3))[0]]
    assert kinds == [keras.callbacks.TensorBoard, keras.callbacks.EarlyStopping, CurveWriter]
    assert [type(callback) for callback in build_callbacks(trial_plan(Run(tmp_path), "0", patience=0))[0]] == [
        keras.callbacks.TensorBoard, CurveWriter]


def test_augment_counts_in_the_space_size():
    assert space_size(SearchSettings(space="tutorial", augment=("off", "on"))) == 54
