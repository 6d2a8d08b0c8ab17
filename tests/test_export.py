"""tuner.winner.export and tuner.winner.litert: the winner as LiteRT files, each checked against the Keras model on the test split."""

import json

import numpy as np
import pytest

import report as report_script
from tests.helpers import copy_run, tiny_winner
from tuner.errors import SearchFailedError
from tuner.model.head import decide
from tuner.winner.litert import LiteRTModel


@pytest.fixture(scope="module")
def winner(tmp_path_factory):
    """(the prepared dataset, RUN/best) of the tiny run after a default report."""
    from tuner.data.cache import load_prepared

    prepared, run = tiny_winner(tmp_path_factory)
    return load_prepared(prepared), run / "best"


def test_the_float_export_gives_the_keras_models_labels_on_the_test_split(winner):
    import keras

    dataset, best = winner
    keras_model = keras.saving.load_model(best / "model.keras", safe_mode=True)
    expected = keras_model.predict(dataset.x_test, verbose=0)
    exported = LiteRTModel.load(best / "model.tflite")
    got = exported.predict(dataset.x_test)
    assert exported.input_shape == (16, 16, 1) and exported.units == 1
    assert list(decide(got)[0]) == list(decide(expected)[0])
    assert np.allclose(got, expected, atol=1e-5)
    check = json.loads((best / "metadata.json").read_text())["exports"]["float"]
    assert check["file"] == "model.tflite" and check["bytes"] == (best / "model.tflite").stat().st_size
    assert check["images"] == 16 and check["agreement"] == 1.0 and check["disagreements"] == 0
    truth = dataset.y_test.astype(np.int64)
    assert check["accuracy"] == check["keras_accuracy"] == float(np.mean(decide(expected)[0] == truth))
    assert check["latency_ms"] > 0 and check["threads"] == 1


def test_int8_writes_a_full_integer_model_checked_on_the_test_split(tmp_path_factory, tmp_path, capsys):
    _, run = tiny_winner(tmp_path_factory)
    run_copy = copy_run(run, tmp_path)
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "0", "--no-retrain", "--int8"]) == 0
    out = capsys.readouterr().out
    assert "LiteRT float export model.tflite" in out and "LiteRT int8 export model_int8.tflite" in out
    metadata = json.loads((run_copy / "best" / "metadata.json").read_text())
    check = metadata["exports"]["int8"]
    assert check["images"] == 16 and 0 <= check["agreement"] <= 1 and check["disagreements"] == round(16 * (1 - check["agreement"]))
    interpreter = LiteRTModel.load(run_copy / "best" / "model_int8.tflite").interpreter
    tensors = interpreter.get_tensor_details()
    operations = interpreter._get_ops_details()
    weighted = [op for op in operations if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED")]
    assert weighted and all(tensors[index]["dtype"] == np.int8 for op in weighted for index in op["inputs"][:2])
    # Integer only: no operation reads a float tensor, the input's cast included.
    assert all(np.issubdtype(tensors[index]["dtype"], np.integer) for op in operations for index in op["inputs"] if index >= 0)
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8 and interpreter.get_output_details()[0]["dtype"] == np.uint8
    results = json.loads((run_copy / "results.json").read_text())
    assert results["winner"]["exports"]["int8"] == check
    # The quantized input and output are converted by the reader: its labels match the check's accuracy.
    from tuner.data.cache import load_prepared

    dataset = load_prepared(json.loads((run_copy / "settings.json").read_text())["dataset"]["path"])
    labels, _ = decide(LiteRTModel.load(run_copy / "best" / "model_int8.tflite").predict(dataset.x_test))
    assert float(np.mean(labels == dataset.y_test)) == check["accuracy"]


def test_no_export_writes_no_litert_file(tmp_path_factory, tmp_path):
    _, run = tiny_winner(tmp_path_factory)
    run_copy = copy_run(run, tmp_path)
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "0", "--no-retrain", "--no-export"]) == 0
    assert sorted(path.name for path in (run_copy / "best").iterdir()) == ["metadata.json", "model.keras"]
    assert json.loads((run_copy / "best" / "metadata.json").read_text())["exports"] == {}


def test_a_float_export_that_disagrees_with_keras_is_refused(winner):
    from tuner.winner.export import check_export, refuse_a_float_export_that_disagrees

    dataset, best = winner
    content = (best / "model.tflite").read_bytes()
    own_labels, _ = decide(LiteRTModel.load(content).predict(dataset.x_test))
    agreeing = check_export("float", "model.tflite", content, dataset, own_labels)
    refuse_a_float_export_that_disagrees(agreeing.check)
    flipped = own_labels.copy()
    flipped[0] = 1 - flipped[0]  # one of 16 images: 6% disagreement
    disagreeing = check_export("float", "model.tflite", content, dataset, flipped)
    assert disagreeing.check["disagreements"] == 1
    with pytest.raises(SearchFailedError, match=r"1 of 16 test images \(6.2%; at most 0.5% is allowed\)"):
        refuse_a_float_export_that_disagrees(disagreeing.check)


@pytest.mark.parametrize("content", [b"", b"not a flatbuffer at all", b"\x00" * 64])
def test_what_is_not_a_litert_model_is_refused_naming_the_file(tmp_path, content):
    from tuner.errors import TunerUsageError

    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    with pytest.raises(TunerUsageError, match=f"'{path}' is not a LiteRT model"):
        LiteRTModel.load(path)


def test_a_batch_norm_gap_model_round_trips_safe_mode_and_predict_py_classifies_with_it(modern_model, tmp_path, capsys):
    import cv2
    import keras

    import predict as predict_script

    dataset, model, folder = modern_model
    assert {"bn_0", "bn_1", "gap"} <= {layer.name for layer in model.layers}
    expected = model.predict(dataset.x_test, verbose=0)
    reloaded = keras.saving.load_model(folder / "model.keras", safe_mode=True)
    np.testing.assert_array_equal(reloaded.predict(dataset.x_test, verbose=0), expected)
    # The cosine schedule is saved with the optimizer and comes back from safe mode.
    assert isinstance(reloaded.optimizer._learning_rate, keras.optimizers.schedules.CosineDecay)
    paths = []
    for index, image in enumerate(dataset.x_test):
        paths.append(tmp_path / f"{index:02d}.png")
        assert cv2.imwrite(str(paths[-1]), image)
    assert predict_script.main(["--model", str(folder), "--format", "json", str(tmp_path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    indices, probabilities = decide(expected)
    assert [row["label"] for row in rows] == [f"class{index}" for index in indices]
    assert np.allclose([row["probability"] for row in rows], probabilities, atol=1e-6)


def test_a_batch_norm_gap_model_exports_to_int8_with_bn_folded_and_the_keras_labels(modern_model, tmp_path):
    from tuner.winner.export import export_winner

    dataset, model, _ = modern_model
    labels, _ = decide(model.predict(dataset.x_test, verbose=0))
    exports = export_winner(model, dataset, labels, int8=True, seed=0)
    assert [item.kind for item in exports] == ["float", "int8"]
    assert exports[0].check["agreement"] == 1.0 and exports[1].check["agreement"] == 1.0, [item.check for item in exports]
    for item in exports:
        path = tmp_path / item.file_name
        path.write_bytes(item.content)
        operations = {op["op_name"] for op in LiteRTModel.load(path).interpreter._get_ops_details()}
        # Folded, batch normalization leaves no multiply-and-add of its own: only the convolutions' weights change.
        assert "CONV_2D" in operations and not operations & {"MUL", "ADD", "SUB", "RSQRT"}, operations
