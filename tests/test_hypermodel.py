import keras
import keras_tuner
import numpy as np
import pytest

from tuner.config import smallest_side_for
from tuner.model.hypermodel import CNNHyperModel, block_filters, build_hypermodel, build_model, steps_per_epoch


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


MODERN_DEFAULTS = {"conv_layers": 1, "nodes": 32, "dense_layers": 0, "filters": "constant", "convs_per_block": 1, "batch_norm": False,
                   "head": "flatten", "dropout": 0.0, "learning_rate": 0.001, "augment": "off"}
MODERN_PICK = {"conv_layers": 3, "nodes": 32, "dense_layers": 1, "filters": "double", "convs_per_block": 1, "batch_norm": True, "head": "gap",
               "dropout": 0.3, "learning_rate": 0.005, "augment": "off"}


def test_the_modern_space_declares_the_core_and_the_whole_recipe_with_the_tutorials_values_as_defaults():
    hp = keras_tuner.HyperParameters()
    CNNHyperModel((28, 28, 1), 2, space="modern").build(hp)
    assert hp.values == MODERN_DEFAULTS
    kinds = {item.name: type(item).__name__ for item in hp.space}
    assert kinds == {"conv_layers": "Choice", "nodes": "Choice", "dense_layers": "Choice", "filters": "Choice",
                     "convs_per_block": "Choice", "batch_norm": "Boolean", "head": "Choice", "dropout": "Choice", "learning_rate": "Float",
                     "augment": "Choice"}
    rate = hp._hps["learning_rate"][0]
    assert (rate.min_value, rate.max_value, rate.sampling) == (1e-4, 1e-2, "log")


def test_the_tutorial_space_ignores_the_decay_steps_and_keeps_its_constant_learning_rate():
    hp = keras_tuner.HyperParameters()
    model = CNNHyperModel((28, 28, 1), 2, decay_steps=50).build(hp)
    assert hp.values == {"conv_layers": 1, "nodes": 32, "dense_layers": 0}
    assert not isinstance(model.optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.001)


def test_batch_norm_doubling_and_global_average_pooling_build_named_layers():
    model = build_model(CNNHyperModel((28, 28, 1), 3, space="modern", decay_steps=10), MODERN_PICK)
    names = [layer.name for layer in model.layers]
    assert names == ["image", "rescale", "conv_0", "bn_0", "relu_0", "pool_0", "conv_1", "bn_1", "relu_1", "pool_1",
                     "conv_2", "bn_2", "relu_2", "pool_2", "gap", "dense_0", "dropout", "output"]
    assert [model.get_layer(f"conv_{index}").filters for index in range(3)] == [8, 16, 32]
    assert not any(model.get_layer(f"conv_{index}").use_bias for index in range(3))
    assert model.get_layer("dense_0").units == 32 and model.get_layer("dropout").rate == 0.3
    assert model.output_shape == (None, 3)


def test_doubling_ends_at_nodes_in_the_last_block_and_never_goes_below_one_filter():
    assert block_filters(64, 3, "constant") == [64, 64, 64]
    assert block_filters(64, 3, "double") == [16, 32, 64]
    assert block_filters(64, 1, "double") == [64]
    assert block_filters(2, 3, "double") == [1, 1, 2]


def test_the_learning_rate_decays_along_a_cosine_from_the_trials_value_to_zero_over_the_decay_steps():
    model = build_model(CNNHyperModel((16, 16, 1), 2, space="modern", decay_steps=100),
                        {**MODERN_PICK, "conv_layers": 1, "learning_rate": 0.004})
    schedule = model.optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay) and schedule.decay_steps == 100
    assert float(schedule(0)) == pytest.approx(0.004)
    assert float(schedule(50)) == pytest.approx(0.002, rel=1e-4)  # half-way down the cosine
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9) and float(schedule(150)) == pytest.approx(0.0, abs=1e-9)
    # A model trained for other steps than a trial's (the winner's retrain) gets a schedule over its own.
    retrain = build_model(CNNHyperModel((16, 16, 1), 2, space="modern", decay_steps=100), MODERN_PICK | {"conv_layers": 1},
                          total_steps=30)
    assert retrain.optimizer._learning_rate.decay_steps == 30


def test_the_decay_steps_are_the_steps_of_the_whole_epochs_on_the_train_split(tmp_path):
    from tests.tiny_data import write_tiny_prepared
    from tuner.data.cache import load_prepared
    from tuner.config import SearchSettings

    dataset = load_prepared(write_tiny_prepared(tmp_path / "prepared", per_class=(20, 8, 8)))  # 40 training images
    hypermodel = build_hypermodel(SearchSettings(space="modern", tuner="random", batch_size=16, epochs=3), dataset)
    assert steps_per_epoch(40, 16) == 3 and hypermodel.decay_steps == 9 and hypermodel.space == "modern"


def test_the_modern_space_refuses_the_tutorials_extras():
    with pytest.raises(ValueError, match="the modern space searches learning_rate, dropout and augment itself"):
        CNNHyperModel((28, 28, 1), 2, dropouts=(0.5,), space="modern")
    with pytest.raises(ValueError, match="space must be one of tutorial, modern"):
        CNNHyperModel((28, 28, 1), 2, space="fancy")


def test_blocks_of_two_convolutions_keep_their_size_until_the_pool():
    values = {**MODERN_PICK, "convs_per_block": 2, "nodes": 64}
    model = build_model(CNNHyperModel((8, 8, 1), 2, space="modern"), values)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(layer.name, layer.filters, layer.padding) for layer in convs] == [
        (f"conv_{block}_{conv}", filters, "same") for block, filters in enumerate((16, 32, 64)) for conv in (0, 1)]
    assert model.get_layer("pool_2").output.shape[1:3] == (1, 1)
    with pytest.raises(keras_tuner.errors.FailedTrialError, match="3 conv\\+pool blocks of two convolutions need images of at least 8x8"):
        build_model(CNNHyperModel((7, 9, 1), 2, space="modern"), values)
