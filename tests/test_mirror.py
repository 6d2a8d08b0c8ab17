"""tuner.model.mirror and report.py --tta: the winner's answers averaged over each image and its mirror image."""

import json

import numpy as np
import pytest

import report as report_script
from tests.helpers import copy_run, tiny_winner
from tuner.model.head import decide
from tuner.winner.litert import LiteRTModel
from tuner.model.mirror import average_with_mirror, mirror_helps
from tuner.report import rank_trials
from tuner.rundir import Run
from tuner.search.kerastuner import checkpoint_path

SIDE = 8


def mirror_images(images):
    """Images of shape (N, H, W, C) mirrored left to right."""
    return images[:, :, ::-1, :]


def left_column_model():
    """A real Keras model (fixed weights, no training) that says class 1 when the image's left column is bright."""
    import keras

    inputs = keras.Input((SIDE, SIDE, 1), dtype="uint8")
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Flatten()(x)
    output = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model(inputs, output(x))
    weights = np.zeros((SIDE, SIDE), np.float32)
    weights[:, 0] = 2.0
    output.set_weights([weights.reshape(-1, 1), np.array([-SIDE], np.float32)])
    model.compile(loss="binary_crossentropy")
    return model


def edge_images(sides):
    """Dark images with one bright edge column per image: "left", "right", or None for no bright column."""
    images = np.zeros((len(sides), SIDE, SIDE, 1), np.uint8)
    for index, side in enumerate(sides):
        if side is not None:
            images[index, :, 0 if side == "left" else -1] = 255
    return images


def test_the_mirror_average_is_the_mean_of_the_answers_for_an_image_and_its_mirror(modern_model, tmp_path):
    import keras

    dataset, model, _ = modern_model
    x = dataset.x_test
    averaged = average_with_mirror(model)
    plain, mirrored = model.predict(x, verbose=0), model.predict(mirror_images(x), verbose=0)
    assert not np.allclose(plain, mirrored)  # so the mean below differs from either answer
    expected = (plain + mirrored) / 2
    np.testing.assert_allclose(averaged.predict(x, verbose=0), expected, atol=1e-6)
    # The same layers, not copies: one set of weights, plus the fixed mirror matrix.
    assert averaged.count_params() == model.count_params() + dataset.x_test.shape[2] ** 2
    # It evaluates as the search's models do: its loss is Keras' cross-entropy of its averaged answers.
    labels = dataset.y_test.astype(np.float32)
    loss = averaged.evaluate(x, labels, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(float(np.mean(keras.losses.binary_crossentropy(labels[:, None], expected))), rel=1e-4)
    averaged.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected, atol=1e-6)


def test_the_mirror_reverses_the_width_of_a_non_square_colour_image():
    from tuner.model.hypermodel import CNNHyperModel, build_model

    model = build_model(CNNHyperModel((12, 20, 3), 3, space="modern", decay_steps=1),
                        {"conv_layers": 1, "nodes": 4, "dense_layers": 0, "filters": "constant", "batch_norm": False,
                         "head": "flatten", "dropout": 0.0, "learning_rate": 0.001, "augment": "off"})
    x = np.random.default_rng(0).integers(0, 256, (4, 12, 20, 3), dtype=np.uint8)
    expected = (model.predict(x, verbose=0) + model.predict(x[:, :, ::-1, :], verbose=0)) / 2
    np.testing.assert_allclose(average_with_mirror(model).predict(x, verbose=0), expected, atol=1e-6)


def test_a_mirror_averaged_winner_exports_to_float_and_int8_with_the_keras_labels(modern_model):
    from tuner.winner.export import export_winner

    dataset, model, _ = modern_model
    averaged = average_with_mirror(model)
    expected = averaged.predict(dataset.x_test, verbose=0)
    exports = export_winner(model, dataset, decide(expected)[0], int8=True, seed=0, mirror=True)
    assert [item.check["agreement"] for item in exports] == [1.0, 1.0], [item.check for item in exports]
    float_model = LiteRTModel.load(exports[0].content)
    np.testing.assert_allclose(float_model.predict(dataset.x_test), expected, atol=1e-5)
    interpreter = LiteRTModel.load(exports[1].content).interpreter
    tensors = interpreter.get_tensor_details()
    # Full integer, the mirror included: no operation reads a float tensor.
    assert all(np.issubdtype(tensors[index]["dtype"], np.integer)
               for op in interpreter._get_ops_details() for index in op["inputs"] if index >= 0)


@pytest.mark.parametrize("classes", [2, 3])
def test_the_losses_compared_are_the_models_own_keras_loss(classes):
    import keras

    from tuner.model.head import Head
    from tuner.model.hypermodel import CNNHyperModel, build_model

    keras.utils.set_random_seed(classes)
    model = build_model(CNNHyperModel((SIDE, SIDE, 1), classes, space="modern", decay_steps=1),
                        {"conv_layers": 1, "nodes": 4, "dense_layers": 0, "filters": "constant", "batch_norm": False,
                         "head": "flatten", "dropout": 0.0, "learning_rate": 0.001, "augment": "off"})
    rng = np.random.default_rng(classes)
    x, y = rng.integers(0, 256, (50, SIDE, SIDE, 1), dtype=np.uint8), rng.integers(0, classes, 50)
    labels = Head(classes).labels(y)
    p, p_mirrored = model.predict(x, verbose=0), model.predict(mirror_images(x), verbose=0)

    def keras_loss(probabilities):
        if classes == 2:
            return float(np.mean(keras.losses.binary_crossentropy(labels[:, None], probabilities)))
        return float(np.mean(keras.losses.sparse_categorical_crossentropy(labels, probabilities)))

    decision = mirror_helps(model, x, labels)
    assert decision.val_loss_plain == pytest.approx(keras_loss(p), rel=1e-4)
    assert decision.val_loss_mirrored == pytest.approx(keras_loss((p + p_mirrored) / 2), rel=1e-4)
    assert decision.use == (decision.val_loss_mirrored < decision.val_loss_plain)


def test_auto_uses_the_mirror_where_an_image_and_its_mirror_share_their_label():
    # Class 1 has a bright column at either edge: the model sees only the left one, its mirror finds the right one.
    sides = ["left", "right"] * 4 + [None] * 8
    labels = np.array([1] * 8 + [0] * 8, np.float32)
    decision = mirror_helps(left_column_model(), edge_images(sides), labels)
    assert decision.use and decision.val_loss_mirrored < decision.val_loss_plain
    assert f"{decision.val_loss_plain:.4f} alone" in decision.reason


def test_auto_keeps_the_mirror_off_where_mirroring_changes_the_label():
    # Class 1 is bright on the left, class 0 on the right: a mirror image belongs to the other class.
    sides = ["left"] * 8 + ["right"] * 8
    labels = np.array([1] * 8 + [0] * 8, np.float32)
    decision = mirror_helps(left_column_model(), edge_images(sides), labels)
    assert not decision.use and decision.val_loss_mirrored > decision.val_loss_plain


def winner_files(run):
    import keras

    metadata = json.loads((run / "best" / "metadata.json").read_text())
    model = keras.saving.load_model(run / "best" / "model.keras", safe_mode=True)
    return metadata, model, json.loads((run / "results.json").read_text())["winner"]


@pytest.mark.parametrize("tta", ["on", "off"])
def test_report_tta_on_saves_and_scores_the_mirror_averaged_model_and_off_the_plain_one(tmp_path_factory, tmp_path,
                                                                                      tta, capsys):
    prepared, run = tiny_winner(tmp_path_factory)
    run_copy = copy_run(run, tmp_path)
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "0", "--tta", tta]) == 0
    assert f"mirror averaging (each image's answer averaged with its mirror image's): {tta}, as --tta {tta} asks" \
        in capsys.readouterr().out
    metadata, model, winner = winner_files(run_copy)
    assert metadata["mirror_average"] == winner["mirror_average"] == {
        "used": tta == "on", "reason": f"as --tta {tta} asks", "val_loss": None, "val_loss_mirrored": None}
    assert any(layer.name == "mirror_average" for layer in model.layers) == (tta == "on")
    # What was scored is what was saved, and the LiteRT export answers the same.
    from tuner.data.cache import load_prepared

    dataset = load_prepared(prepared)
    labels = decide(model.predict(dataset.x_test, verbose=0))[0]
    assert metadata["test"]["accuracy"] == float(np.mean(labels == dataset.y_test))
    assert metadata["exports"]["float"]["agreement"] == 1.0


def test_report_auto_decides_on_the_winners_checkpoint_and_says_how(tmp_path_factory):
    _, run = tiny_winner(tmp_path_factory)  # report.py with its defaults
    metadata, model, winner = winner_files(run)
    decision = metadata["mirror_average"]
    assert decision == winner["mirror_average"]
    assert decision["used"] == (decision["val_loss_mirrored"] < decision["val_loss"])
    assert decision["reason"].startswith(f"validation loss {decision['val_loss']:.4f} alone")
    assert any(layer.name == "mirror_average" for layer in model.layers) == decision["used"]


def test_auto_without_the_trials_weights_retrains_without_the_mirror(tmp_path_factory, tmp_path):
    _, run = tiny_winner(tmp_path_factory)
    run_copy = copy_run(run, tmp_path)
    winner = rank_trials(Run(run_copy))[0][0].trial  # the winner under --confirm 0
    checkpoint_path(Run(run_copy).trial_dir(winner)).unlink()
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "0"]) == 0
    metadata, _, _ = winner_files(run_copy)
    assert metadata["mirror_average"]["used"] is False
    assert metadata["mirror_average"]["reason"] == "the trial saved no weights to judge it on"


def test_a_damaged_checkpoint_is_refused_under_auto_and_not_read_under_tta_off(tmp_path_factory, tmp_path, capsys):
    _, run = tiny_winner(tmp_path_factory)
    run_copy = copy_run(run, tmp_path)
    winner = rank_trials(Run(run_copy))[0][0].trial  # the winner under --confirm 0
    checkpoint = checkpoint_path(Run(run_copy).trial_dir(winner))
    checkpoint.write_bytes(b"not hdf5")
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "0"]) == 2
    # One error line, which says how to go on without the file.
    err = capsys.readouterr().err
    assert err.startswith(f"error: '{checkpoint}' is damaged (") and err.count("\n") == 1, err
    assert err.rstrip().endswith("run report.py with --tta on or --tta off, which do not read it."), err
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "0", "--tta", "off"]) == 0
