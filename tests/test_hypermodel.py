import keras
import keras_tuner
import numpy as np
import pytest

from tuner.config import smallest_side_for
from tuner.hypermodel import CNNHyperModel


def test_defaults_are_the_tutorials_first_configuration():
    hp = keras_tuner.HyperParameters()
    CNNHyperModel((28, 28, 1), 2).build(hp)
    assert hp.values == {"conv_layers": 1, "nodes": 32, "dense_layers": 0}


def test_optional_dimensions_are_declared_only_when_asked_for():
    hp = keras_tuner.HyperParameters()
    CNNHyperModel((28, 28, 1), 2, learning_rates=(0.01, 0.001), dropouts=(0.0, 0.5)).build(hp)
    assert hp.values == {"conv_layers": 1, "nodes": 32, "dense_layers": 0, "learning_rate": 0.01, "dropout": 0.0}


def _build(values, input_shape=(28, 28, 1), num_classes=2, **space):
    hp = keras_tuner.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    return CNNHyperModel(input_shape, num_classes, **space).build(hp)


def test_binary_model_has_one_sigmoid_unit_and_binary_loss():
    model = _build({"conv_layers": 2, "nodes": 64, "dense_layers": 2})
    assert model.output_shape == (None, 1)
    assert model.get_layer("output").activation.__name__ == "sigmoid"
    assert model.loss == "binary_crossentropy"
    assert [layer.name for layer in model.layers if layer.name.startswith(("conv_", "dense_"))] == [
        "conv_0", "conv_1", "dense_0", "dense_1"]
    assert model.get_layer("conv_1").filters == 64 and model.get_layer("dense_1").units == 64


def test_multiclass_model_uses_softmax_and_sparse_loss():
    model = _build({"conv_layers": 1, "nodes": 32, "dense_layers": 0}, num_classes=5)
    assert model.output_shape == (None, 5)
    assert model.loss == "sparse_categorical_crossentropy"
    assert not any(layer.name.startswith("dense_") for layer in model.layers)


def test_model_takes_uint8_and_rescales_inside():
    model = _build({"conv_layers": 1, "nodes": 8, "dense_layers": 1}, input_shape=(16, 16, 3))
    assert model.input.dtype == "uint8"
    assert isinstance(model.get_layer("rescale"), keras.layers.Rescaling)
    prediction = model.predict(np.full((2, 16, 16, 3), 255, np.uint8), verbose=0)
    assert prediction.shape == (2, 1) and np.all((prediction >= 0) & (prediction <= 1))


def test_dropout_and_learning_rate_reach_the_model():
    model = _build({"conv_layers": 1, "nodes": 8, "dense_layers": 0, "learning_rate": 0.01, "dropout": 0.5},
                   learning_rates=(0.01,), dropouts=(0.5,))
    assert model.get_layer("dropout").rate == 0.5
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)


def test_impossible_configuration_fails_as_a_trial_with_its_reason():
    with pytest.raises(keras_tuner.errors.FailedTrialError, match="3 conv\\+pool blocks need images of at least 22x22"):
        _build({"conv_layers": 3, "nodes": 8, "dense_layers": 0}, input_shape=(8, 8, 1))


@pytest.mark.parametrize("conv_layers", [1, 2, 3])
def test_smallest_side_is_exactly_the_limit(conv_layers):
    side = smallest_side_for(conv_layers)
    _build({"conv_layers": conv_layers, "nodes": 4, "dense_layers": 0}, input_shape=(side, side, 1))
    with pytest.raises(keras_tuner.errors.FailedTrialError):
        _build({"conv_layers": conv_layers, "nodes": 4, "dense_layers": 0}, input_shape=(side - 1, side - 1, 1))


def test_bad_problem_facts_are_refused_at_construction():
    with pytest.raises(ValueError, match="num_classes must be at least 2"):
        CNNHyperModel((28, 28, 1), 1)
    with pytest.raises(ValueError, match="needs at least one value"):
        CNNHyperModel((28, 28, 1), 2, nodes=())


def test_augmentation_is_an_optional_dimension_off_unless_asked_for():
    hp = keras_tuner.HyperParameters()
    CNNHyperModel((28, 28, 1), 2, augment=("off", "on")).build(hp)
    assert hp.values["augment"] == "off"
    model = _build({"conv_layers": 1, "nodes": 8, "dense_layers": 0, "augment": "off"}, augment=("off", "on"))
    assert not any(layer.name.startswith("augment_") for layer in model.layers)


def test_augmentation_acts_in_training_only_and_survives_a_safe_mode_reload(tmp_path):
    model = _build({"conv_layers": 1, "nodes": 8, "dense_layers": 0, "augment": "on"}, augment=("on",))
    assert [layer.name for layer in model.layers if layer.name.startswith("augment_")] == [
        "augment_flip", "augment_shift", "augment_zoom"]
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    first, second = model.predict(images, verbose=0), model.predict(images, verbose=0)
    np.testing.assert_array_equal(first, second)
    # In training the same images come out differently: the layers do act there.
    augmenting = keras.Model(model.input, model.get_layer("augment_zoom").output)
    assert not np.allclose(augmenting(images, training=True), augmenting(images, training=False))
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), first, rtol=1e-6)
