import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import predict as predict_script
from tests.helpers import one_error_line, tiny_winner
from tuner.model.head import decide
from tuner.winner.predict import SOME_SKIPPED

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def winner(tmp_path_factory):
    """(prepared dataset, RUN/best) of a tiny search whose winner report.py retrained."""
    prepared, run = tiny_winner(tmp_path_factory)
    return prepared, run / "best"


@pytest.fixture(scope="module")
def test_images(winner, tmp_path_factory):
    """The test split written out as PNG files, with the arrays they came from."""
    from tuner.data.cache import load_prepared

    dataset = load_prepared(winner[0])
    folder = tmp_path_factory.mktemp("test_split")
    paths = []
    for index, image in enumerate(dataset.x_test):
        path = folder / f"{index:02d}.png"
        assert cv2.imwrite(str(path), image)
        paths.append(path)
    return paths, dataset


def _lines(out):
    return [line.split("\t") for line in out.splitlines()]


def test_files_get_one_line_each(winner, test_images, capsys):
    paths, _ = test_images
    assert predict_script.main(["--model", str(winner[1]), str(paths[0]), str(paths[-1])]) == 0
    out, err = capsys.readouterr()
    lines = _lines(out)
    assert [line[0] for line in lines] == [str(paths[0]), str(paths[-1])]
    for path, label, probability in lines:
        assert label in ("class0", "class1") and 0.5 <= float(probability) <= 1.0


def test_the_test_split_as_files_gives_the_same_predictions_as_the_model_in_memory(winner, test_images, capsys):
    import keras

    paths, dataset = test_images
    # A batch size that does not divide the 16 images exercises the last, short batch.
    assert predict_script.main(["--model", str(winner[1]), "--batch-size", "5", "--format", "json",
                                str(paths[0].parent)]) == 0
    rows = json.loads(capsys.readouterr().out)
    model = keras.saving.load_model(winner[1] / "model.keras", safe_mode=True)
    indices, probabilities = decide(model.predict(dataset.x_test, verbose=0))
    assert [row["path"] for row in rows] == [str(path) for path in paths]
    assert [row["label"] for row in rows] == [f"class{index}" for index in indices]
    assert np.allclose([row["probability"] for row in rows], probabilities, rtol=0, atol=1e-6)


def test_csv_has_a_header_and_parses(winner, test_images, capsys):
    paths, _ = test_images
    assert predict_script.main(["--model", str(winner[1]), "--format", "csv", *map(str, paths[:3])]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["path"] for row in rows] == [str(path) for path in paths[:3]]
    assert all(set(row) == {"path", "label", "probability"} for row in rows)


def test_a_folder_with_junk_classifies_the_images_and_skips_the_rest(winner, test_images, tmp_path, capsys):
    paths, _ = test_images
    (tmp_path / "nested").mkdir()
    shutil.copy(paths[0], tmp_path / "a.png")
    shutil.copy(paths[1], tmp_path / "nested" / "b.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"ignored: hidden files are not walked")
    assert predict_script.main(["--model", str(winner[1]), str(tmp_path)]) == SOME_SKIPPED == 3
    out, err = capsys.readouterr()
    assert [line[0] for line in _lines(out)] == [str(tmp_path / "a.png"), str(tmp_path / "nested" / "b.png")]
    skipped = [line for line in err.splitlines() if line.startswith("skipped ")]
    assert sorted(line.split(":")[0] for line in skipped) == [f"skipped {tmp_path / 'empty.jpg'}",
                                                              f"skipped {tmp_path / 'notes.txt'}"]
    assert ".hidden" not in err


def test_nothing_readable_exits_2(winner, tmp_path, capsys):
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    assert predict_script.main(["--model", str(winner[1]), str(tmp_path / "junk.jpg")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"skipped {tmp_path / 'junk.jpg'}: ")
    assert err[1].startswith("error: none of the 1 file(s) could be read as an image") and len(err) == 2


def test_the_default_model_is_the_latest_runs_best(winner, test_images, tmp_path, capsys, monkeypatch):
    shutil.copytree(winner[1], tmp_path / "runs" / "grid" / "best")
    (tmp_path / "runs" / "grid" / "settings.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert predict_script.main([str(test_images[0][0])]) == 0
    assert len(_lines(capsys.readouterr().out)) == 1


def test_bad_input_exits_2_with_one_line(winner, test_images, tmp_path, capsys, monkeypatch):
    image = str(test_images[0][0])
    (tmp_path / "no_metadata").mkdir()
    shutil.copy(winner[1] / "model.keras", tmp_path / "no_metadata" / "model.keras")
    cases = [
        (["--model", str(winner[1]), str(tmp_path / "missing.jpg")], "'" + str(tmp_path / "missing.jpg") + "' does not exist"),
        (["--model", str(tmp_path / "no_metadata"), image], "has no readable metadata.json"),
        (["--model", str(tmp_path / "nowhere"), image], "model folder"),
        (["--model", str(winner[1])], "no images given"),
        (["--format", "xml", image], "argument --format: invalid choice: 'xml'"),
        (["--batch-size", "0", image], "--batch-size must be a whole number of at least 1, got 0"),
    ]
    for argv, message in cases:
        assert predict_script.main(argv) == 2
        one_error_line(capsys, message)
    monkeypatch.chdir(tmp_path)
    assert predict_script.main([image]) == 2
    one_error_line(capsys, "found no run under 'runs/'")


def test_help_answers_without_importing_tensorflow():
    result = subprocess.run([sys.executable, "-X", "importtime", "predict.py", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--model" in result.stdout
    assert "tensorflow" not in result.stderr and "keras" not in result.stderr


@pytest.mark.parametrize("fmt", ["tsv", "csv", "json"])
def test_litert_gives_the_keras_labels_in_the_same_format(winner, test_images, capsys, fmt):
    paths, _ = test_images
    folder = str(paths[0].parent)
    assert predict_script.main(["--model", str(winner[1]), "--format", fmt, "--batch-size", "5", folder]) == 0
    keras_out = capsys.readouterr().out
    assert predict_script.main(["--model", str(winner[1]), "--format", fmt, "--batch-size", "5", "--runtime", "litert",
                                folder]) == 0
    litert_out, err = capsys.readouterr()
    assert err == ""  # the interpreter's own "XNNPACK delegate" line is kept off stderr
    if fmt == "json":
        keras_rows, litert_rows = json.loads(keras_out), json.loads(litert_out)
        assert [(row["path"], row["label"]) for row in litert_rows] == [(row["path"], row["label"]) for row in keras_rows]
        assert np.allclose([row["probability"] for row in litert_rows], [row["probability"] for row in keras_rows], atol=1e-5)
    else:
        separator = "\t" if fmt == "tsv" else ","
        paths_and_labels = [[line.split(separator)[:2] for line in out.splitlines()] for out in (litert_out, keras_out)]
        assert paths_and_labels[0] == paths_and_labels[1] and len(paths_and_labels[0]) == len(paths) + (fmt == "csv")


def test_litert_never_imports_tensorflow(winner, test_images):
    paths, _ = test_images
    probe = ("import sys, predict; status = predict.main(sys.argv[1:]); "
             "print('loaded:', sorted(m for m in ('tensorflow', 'keras', 'keras_tuner') if m in sys.modules), file=sys.stderr); "
             "sys.exit(status)")
    result = subprocess.run([sys.executable, "-c", probe, "--runtime", "litert", "--model", str(winner[1]), str(paths[0]),
                             str(paths[1])], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 2
    assert result.stderr.strip() == "loaded: []"


def test_litert_refuses_a_missing_or_damaged_export_naming_the_file(winner, test_images, tmp_path, capsys):
    folder = tmp_path / "best"
    shutil.copytree(winner[1], folder)
    image = str(test_images[0][0])
    assert predict_script.main(["--model", str(folder), "--runtime", "litert-int8", image]) == 2
    one_error_line(capsys, f"'{folder}' has metadata.json but no model_int8.tflite; run python report.py --int8")
    (folder / "model.tflite").write_bytes(b"TFL3 but not really")
    assert predict_script.main(["--model", str(folder), "--runtime", "litert", image]) == 2
    one_error_line(capsys, f"'{folder / 'model.tflite'}' is not a LiteRT model")
    (folder / "model.tflite").unlink()
    assert predict_script.main(["--model", str(folder), "--runtime", "litert", image]) == 2
    one_error_line(capsys, "no model.tflite; run python report.py (without --no-export)")
    shutil.copy(winner[1] / "model.tflite", folder / "model.tflite")
    _edit_metadata(folder, img_size=32)
    assert predict_script.main(["--model", str(folder), "--runtime", "litert", image]) == 2
    one_error_line(capsys, "model.tflite' takes (16, 16, 1) images and has 1 output unit(s), but metadata.json describes (32, 32, 1)")


def _edit_metadata(folder, **changes):
    path = folder / "metadata.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize("damage, message", [
    (lambda folder: (folder / "model.keras").write_text("not a zip"), "model.keras' cannot be loaded as a Keras model in safe mode"),
    (lambda folder: _edit_metadata(folder, img_size=32), "takes (16, 16, 1) images and has 1 output unit(s), but metadata.json describes (32, 32, 1)"),
    (lambda folder: _edit_metadata(folder, color="rgb"), "but metadata.json describes (16, 16, 3) images"),
    (lambda folder: _edit_metadata(folder, class_names=["a", "b", "c"]), "describes (16, 16, 1) images of 3 classes"),
    (lambda folder: _edit_metadata(folder, class_names="ab"), "metadata.json' is damaged (class_names must be a list"),
    (lambda folder: _edit_metadata(folder, img_size=True), "metadata.json' is damaged (img_size must be a whole number"),
    (lambda folder: _edit_metadata(folder, color="sepia"), "metadata.json' is damaged (color must be one of"),
])
def test_a_damaged_model_or_metadata_is_refused_naming_the_file(winner, test_images, tmp_path, capsys, damage, message):
    folder = tmp_path / "best"
    shutil.copytree(winner[1], folder)
    damage(folder)
    assert predict_script.main(["--model", str(folder), str(test_images[0][0])]) == 2
    one_error_line(capsys, message)


def test_a_model_with_code_in_it_is_refused_by_safe_mode(winner, test_images, tmp_path, capsys):
    import keras

    folder = tmp_path / "best"
    shutil.copytree(winner[1], folder)
    inputs = keras.Input((16, 16, 1), dtype="uint8")
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(keras.layers.Lambda(lambda x: x * 1.0)(inputs)))
    keras.Model(inputs, outputs).save(folder / "model.keras")
    assert predict_script.main(["--model", str(folder), str(test_images[0][0])]) == 2
    one_error_line(capsys, "cannot be loaded as a Keras model in safe mode")


def test_odd_names_never_break_or_forge_the_output(winner, test_images, tmp_path, capsys):
    import os

    folder = tmp_path / "odd"
    folder.mkdir()
    names = ["tab\there.png", "new\nline.png", "esc\x1b[31m.png", os.fsdecode(b"bad\xff.png"), "back\\slash.png",
             "cat\u202egnp.exe", "iso\u2066late\u2069.png", "mark\u200f\u061c.png", "c1\x85\x9b.png"]
    for name in names:
        shutil.copy(test_images[0][0], folder / name)
    os.mkfifo(folder / "fifo.png")
    assert predict_script.main(["--model", str(winner[1]), str(folder)]) == SOME_SKIPPED
    out, err = capsys.readouterr()
    rows = _lines(out)
    assert len(rows) == len(names) and all(len(row) == 3 for row in rows)
    raw = "\x1b\u202e\u2066\u2069\u200f\u061c\x85\x9b"
    assert not set(raw) & set(out + err) and "fifo.png: not a regular file" in err
    shown = sorted(row[0].rsplit("/", 1)[-1] for row in rows)
    assert shown == sorted(["back\\\\slash.png", "bad\\\\xff.png", "esc\\x1b[31m.png", "new\\nline.png", "tab\\there.png",
                            "cat\\u202egnp.exe", "iso\\u2066late\\u2069.png", "mark\\u200f\\u061c.png", "c1\\x85\\x9b.png"])
    assert predict_script.main(["--model", str(winner[1]), "--format", "json", str(folder)]) == SOME_SKIPPED
    document = capsys.readouterr().out
    assert not set(raw) & set(document)  # JSON escapes them as \uNNNN; they come back raw only to a JSON parser
    paths = sorted(item["path"].rsplit("/", 1)[-1] for item in json.loads(document))
    assert paths == sorted(["tab\there.png", "new\nline.png", "esc\x1b[31m.png", "bad\\xff.png", "back\\slash.png",
                            "cat\u202egnp.exe", "iso\u2066late\u2069.png", "mark\u200f\u061c.png", "c1\x85\x9b.png"])
    assert predict_script.main(["--model", str(winner[1]), "--format", "csv", str(folder)]) == SOME_SKIPPED
    document = capsys.readouterr().out
    assert len(list(csv.reader(io.StringIO(document)))) == 1 + len(names) and not set(raw) & set(document)
    assert predict_script.main(["--model", str(winner[1]), str(folder / "fifo.png")]) == 2
    one_error_line(capsys, "is not a regular file (a FIFO, socket or device)")
