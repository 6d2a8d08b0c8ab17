"""data_prep.py as users run it: the summary on stdout, and one `error:` line with exit 2 for every bad input."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import data_prep

ROOT = Path(__file__).resolve().parents[1]


def _fifo(path):
    os.mkfifo(path)
    return path


def run(capsys, *argv):
    code = data_prep.main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_docstring_shows_a_real_command():
    assert "python data_prep.py --data-dir" in data_prep.__doc__


def test_prepares_a_folder_then_reuses_it(image_folder, tmp_path, capsys):
    out = tmp_path / "prepared"
    code, stdout, stderr = run(capsys, "--data-dir", image_folder, "--out", out, "--quiet")
    assert code == 0, stderr
    assert stdout.startswith(f"Wrote the prepared dataset {out / 'dataset.npz'}")
    assert "2 classes, 50x50 grayscale" in stdout
    assert next(line for line in stdout.splitlines() if line.startswith("total")).split() == [
        "total", "16", "16", "0", "0", "0", "16", "12", "2", "2"]
    assert (out / "dataset.npz").exists() and (out / "manifest.json").exists()
    code, stdout, _ = run(capsys, "--data-dir", image_folder, "--out", out, "--quiet")
    assert code == 0 and stdout.startswith("Reused the up-to-date prepared dataset")
    code, stdout, _ = run(capsys, "--data-dir", image_folder, "--out", out, "--quiet", "--force")
    assert code == 0 and stdout.startswith("Wrote")


def test_no_arguments_prepares_the_sample(in_tmp_cwd, capsys):
    code, stdout, stderr = run(capsys)
    assert code == 0, stderr
    assert "from the built-in sample (data/sample)" in stdout and "28x28 grayscale" in stdout
    assert "duplicates: 11 exact repeats within a class kept once" in stdout
    assert (in_tmp_cwd / "data" / "prepared" / "dataset.npz").exists()


def test_skipped_files_are_listed_with_their_reason(image_folder, tmp_path, capsys):
    (image_folder / "cat" / "666.jpg").write_bytes(b"")
    (image_folder / "dog" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + bytes(64))
    code, stdout, _ = run(capsys, "--data-dir", image_folder, "--out", tmp_path / "out", "--quiet")
    assert code == 0
    assert "skipped 2 files: 1 empty file, 1 not an image (unknown format)" in stdout
    assert "  cat/666.jpg: empty file" in stdout and "  dog/Thumbs.db: not an image (unknown format)" in stdout


def _one_class(tmp_path):
    (tmp_path / "one" / "cats").mkdir(parents=True)
    return ["--data-dir", tmp_path / "one"]


def _unloadable_class(tmp_path):
    (tmp_path / "images" / "bird").mkdir()
    (tmp_path / "images" / "bird" / "x.jpg").write_bytes(b"")
    return ["--data-dir", tmp_path / "images"]


def _foreign_cache(tmp_path):
    (tmp_path / "prepared").mkdir()
    (tmp_path / "prepared" / "dataset.npz").write_bytes(pickle.dumps({"x": 1}))
    return ["--data-dir", tmp_path / "images", "--out", tmp_path / "prepared"]


def _file_as_out(tmp_path):
    (tmp_path / "out").write_text("")
    return ["--data-dir", tmp_path / "images", "--out", tmp_path / "out"]


def _unwritable_out(tmp_path):
    (tmp_path / "blocker").write_text("")
    return ["--data-dir", tmp_path / "images", "--out", tmp_path / "blocker" / "out"]


BAD_INPUT = [
    (lambda tmp: ["--data-dir", tmp / "nowhere"], "does not exist; pass --data-dir"),
    (lambda tmp: ["--data-dir", tmp / "images" / "cat" / "cat0.png"], "is a file, not a folder"),
    (lambda tmp: ["--data-dir", _fifo(tmp / "pipe")], "is a FIFO, socket or device, not a folder"),
    (_one_class, "need at least 2, one subfolder per class"),
    (_unloadable_class, "has no usable image"),
    (lambda tmp: ["--data-dir", tmp / "images", "--img-size", "5"], "--img-size must be between 8 and 512"),
    (lambda tmp: ["--data-dir", tmp / "images", "--color", "sepia"], "invalid choice: 'sepia'"),
    (lambda tmp: ["--data-dir", tmp / "images", "--val-fraction", "0.6", "--test-fraction", "0.5"], "training split"),
    (lambda tmp: ["--data-dir", tmp / "images", "--val-fraction", "0.01"], "at least 1 image per class"),
    (_file_as_out, "is a file; pass a folder"),
    (_unwritable_out, "cannot write to output folder"),
    (_foreign_cache, "Python pickle, which could run code"),
    (lambda tmp: ["--frobnicate"], "unrecognized arguments"),
]


@pytest.mark.parametrize("make_argv, message", BAD_INPUT)
def test_bad_input_is_one_error_line_and_exit_2(image_folder, tmp_path, capsys, make_argv, message):
    argv = make_argv(tmp_path)
    if "--out" not in argv:
        argv += ["--out", tmp_path / "default_out"]
    code, stdout, stderr = run(capsys, *argv, "--quiet")
    assert code == 2
    assert stdout == ""
    lines = [line for line in stderr.splitlines() if not line.startswith("Writing the built-in sample")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert "Traceback" not in stderr


def test_debug_shows_the_traceback(tmp_path, capsys):
    code, _, stderr = run(capsys, "--data-dir", tmp_path / "nowhere", "--debug")
    assert code == 2 and "Traceback" in stderr and "error: data folder" in stderr


def test_script_runs_without_tensorflow():
    # data_prep.py must start fast: it never imports TensorFlow or Keras.
    code = "import sys, data_prep, tuner.data.prepare; sys.exit(bool({'tensorflow', 'keras'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_help_exits_0():
    result = subprocess.run([sys.executable, "data_prep.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "100"})
    assert result.returncode == 0 and "--no-balance" in result.stdout and "--workers" in result.stdout


def test_odd_class_and_file_names_are_data_not_markup(tmp_path, write_image, capsys):
    import json

    import numpy as np

    rng = np.random.default_rng(3)
    root = tmp_path / "odd"
    folders = ["ca\tt", "d\x1b[31mog", os.fsdecode(b"\xffbad")]
    for folder in folders:
        for index in range(6):
            name = os.fsdecode(b"im\n\xfe%d.png" % index) if index == 0 else f"img{index}.png"
            write_image(root / folder / name, rng.integers(0, 256, (12, 12), dtype=np.uint8))
    os.mkfifo(root / "ca\tt" / "fifo.png")
    code, stdout, stderr = run(capsys, "--data-dir", root, "--out", tmp_path / "prepared", "--img-size", "8", "--quiet")
    assert code == 0, stderr
    assert "\x1b" not in stdout + stderr and "ca\\tt/fifo.png: not a regular file" in stdout
    assert "d\\x1b[31mog" in stdout and "\\xffbad" in stdout
    manifest = json.loads((tmp_path / "prepared" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["class_names"] == ["ca\tt", "d\x1b[31mog", "\\xffbad"]
    # Run again: the same names fingerprint the same, so the cache is reused.
    code, stdout, _ = run(capsys, "--data-dir", root, "--out", tmp_path / "prepared", "--img-size", "8", "--quiet")
    assert code == 0 and stdout.startswith("Reused")
