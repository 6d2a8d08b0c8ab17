"""tuner.data: decoding every format and kind of junk, cleaning, splitting, the cache and its safety."""

import json
import os
import pickle
import shutil
import sys
import zipfile

import cv2
import numpy as np
import pytest

import tuner.cache as cache
import tuner.data as data
from tuner.config import PrepSettings
from tuner.data import (PreparedDataset, decode_image, ensure_prepared, format_summary, load_prepared,
                        prepare_dataset, save_prepared)
from tuner.errors import TunerUsageError


def two_tone(height=40, width=60):
    """A BGR image whose left half is pure red and right half pure blue, to check size, colour and channel order."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2, 2] = 255
    image[:, width // 2:, 0] = 255
    return image


def smooth(rng, height, width):
    """A photo-like BGR image (smooth colour fields plus noise), so JPEG behaves as it does on photos."""
    base = cv2.resize(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(base.astype(np.int16) + rng.integers(-8, 9, base.shape), 0, 255).astype(np.uint8)


def prepare(root, out, **overrides):
    settings = PrepSettings(data_dir=str(root), out=str(out), quiet=True, **overrides)
    return prepare_dataset(settings, progress=False)


def all_arrays(dataset):
    return [getattr(dataset, f"{kind}_{split}") for split in ("train", "val", "test") for kind in ("x", "y")]


# ---------------------------------------------------------------------------------------------- decode_image

LOSSLESS = [(".png", "a.png"), (".bmp", "a.bmp"), (".tiff", "a.tif"), (".webp", "a.webp"), (".png", "png named.jpg")]


@pytest.mark.parametrize("ext, name", LOSSLESS)
def test_lossless_formats_keep_colour_and_rgb_order(tmp_path, write_image, ext, name):
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == ".webp" else []  # 101 = lossless WebP
    path = write_image(tmp_path / name, two_tone(), ext, params)
    image, reason = decode_image(path, 20, "rgb")
    assert reason is None
    assert image.shape == (20, 20, 3) and image.dtype == np.uint8
    assert image[:, :10].mean(axis=(0, 1)).round().tolist() == [255, 0, 0]  # left half red, in RGB order
    assert image[:, 10:].mean(axis=(0, 1)).round().tolist() == [0, 0, 255]


@pytest.mark.parametrize("name", ["photo.jpg", "PHOTO.JPG", "no extension", "chat été 猫.jpeg"])
def test_jpeg_under_any_name(tmp_path, write_image, name):
    path = write_image(tmp_path / name, two_tone(), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95])
    gray, reason = decode_image(path, 16, "grayscale")
    assert reason is None and gray.shape == (16, 16, 1)
    rgb, _ = decode_image(path, 16, "rgb")
    assert abs(int(rgb[8, 2, 0]) - 255) < 12 and rgb[8, 2, 2] < 12  # red stays red


def test_gif_decodes(tmp_path, write_image):
    path = write_image(tmp_path / "anim.gif", two_tone(), ".gif")
    image, reason = decode_image(path, 20, "rgb")
    assert reason is None and image.shape == (20, 20, 3)
    assert image[:, :10, 0].mean() > 200 and image[:, :10, 2].mean() < 50


def test_cmyk_jpeg_decodes_to_the_right_colour(tmp_path):
    image_module = pytest.importorskip("PIL.Image")
    path = tmp_path / "cmyk.JPG"
    image_module.fromarray(two_tone()[..., ::-1].copy()).convert("CMYK").save(path, quality=95)
    image, reason = decode_image(path, 20, "rgb")
    assert reason is None and image.shape == (20, 20, 3)
    assert image[:, :8].mean(axis=(0, 1)).round().tolist()[0] > 240 and image[:, :8, 2].mean() < 15


def test_png_alpha_is_composited_onto_white(tmp_path, write_image):
    image = np.zeros((20, 20, 4), np.uint8)
    image[..., 2] = 255  # red everywhere ...
    image[:, :10, 3] = 255  # ... opaque on the left, fully transparent on the right
    path = write_image(tmp_path / "alpha.png", image)
    rgb, reason = decode_image(path, 20, "rgb")
    assert reason is None
    assert rgb[:, :10].reshape(-1, 3).mean(axis=0).round().tolist() == [255, 0, 0]
    assert rgb[:, 10:].reshape(-1, 3).mean(axis=0).round().tolist() == [255, 255, 255]


def test_opaque_alpha_is_simply_dropped(tmp_path, write_image):
    image = np.dstack([two_tone(20, 20), np.full((20, 20), 255, np.uint8)])
    rgb, reason = decode_image(write_image(tmp_path / "opaque.png", image), 20, "rgb")
    assert reason is None and rgb[5, 2].tolist() == [255, 0, 0]


def test_gray_with_alpha_png(tmp_path):
    image_module = pytest.importorskip("PIL.Image")
    path = tmp_path / "la.png"
    pixels = np.dstack([np.full((10, 10), 100, np.uint8), np.full((10, 10), 255, np.uint8)])
    image_module.fromarray(pixels, "LA").save(path)
    gray, reason = decode_image(path, 10, "grayscale")
    assert reason is None and gray.shape == (10, 10, 1) and int(gray.mean()) == 100


def test_16_bit_png_is_scaled_to_8_bits(tmp_path, write_image):
    image = np.zeros((10, 10), np.uint16)
    image[:, 5:] = 65535
    image[:, :5] = 32896  # 128 * 257
    gray, reason = decode_image(write_image(tmp_path / "deep.png", image), 10, "grayscale")
    assert reason is None and gray.dtype == np.uint8
    assert gray[:, :5].max() == 128 and gray[:, 5:].min() == 255


def test_float_tiff_is_scaled_to_8_bits(tmp_path, write_image):
    image = np.full((10, 10), 0.5, np.float32)
    gray, reason = decode_image(write_image(tmp_path / "float.tiff", image, ".tiff"), 10, "grayscale")
    assert reason is None and int(gray.mean()) in (127, 128)


def test_grayscale_source_becomes_rgb(tmp_path, write_image):
    path = write_image(tmp_path / "gray.png", np.full((12, 12), 77, np.uint8))
    rgb, reason = decode_image(path, 12, "rgb")
    assert reason is None and rgb.shape == (12, 12, 3) and set(rgb.ravel().tolist()) == {77}


def test_small_images_are_upscaled(tmp_path, write_image):
    image, reason = decode_image(write_image(tmp_path / "tiny.png", two_tone(4, 4)), 50, "grayscale")
    assert reason is None and image.shape == (50, 50, 1)


def test_large_jpeg_uses_reduced_decoding_with_little_loss(tmp_path, write_image, monkeypatch):
    path = write_image(tmp_path / "big.jpg", smooth(np.random.default_rng(0), 900, 1200), ".jpg")
    flags = []
    real_imdecode = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda buffer, flag: flags.append(flag) or real_imdecode(buffer, flag))
    reduced, _ = decode_image(path, 50, "grayscale")
    assert flags == [cv2.IMREAD_REDUCED_GRAYSCALE_8]  # 900 / 8 = 113 still covers 50
    decode_image(path, 200, "rgb")
    assert flags[-1] == cv2.IMREAD_REDUCED_COLOR_4  # 900 / 4 = 225 >= 200, 900 / 8 = 113 would not
    decode_image(path, 500, "rgb")
    assert flags[-1] == cv2.IMREAD_COLOR
    full = cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (50, 50), interpolation=cv2.INTER_AREA)
    assert np.abs(reduced[..., 0].astype(int) - full).mean() < 3


JUNK = [
    ("empty.jpg", b"", "empty file"),
    ("Thumbs.db", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "not an image (unknown format)"),
    (".DS_Store", b"\x00\x00\x00\x01Bud1" + bytes(100), "not an image (unknown format)"),
    ("notes.txt", b"these are my cats\n", "not an image (unknown format)"),
    ("photo.heic", b"\x00\x00\x00\x18ftypheic" + bytes(40), "HEIC image"),
    ("header only.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF", "truncated JPEG (cut off before the image data)"),
    ("garbage.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "undecodable PNG"),
]


@pytest.mark.parametrize("name, content, reason", JUNK)
def test_junk_files_give_a_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    image, why = decode_image(path, 28, "grayscale")
    assert image is None and why.startswith(reason)


def test_truncated_jpeg_is_skipped(tmp_path, write_image):
    whole = write_image(tmp_path / "whole.jpg", smooth(np.random.default_rng(1), 120, 160), ".jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    assert decode_image(tmp_path / "cut.jpg", 28, "grayscale") == (None, "truncated JPEG (no end marker)")


def test_data_after_the_jpeg_end_marker_is_fine(tmp_path, write_image):
    path = write_image(tmp_path / "motion.jpg", smooth(np.random.default_rng(2), 60, 80), ".jpg")
    path.write_bytes(path.read_bytes() + b"appended video data" * 50)
    assert decode_image(path, 28, "grayscale")[1] is None


def test_truncated_png_is_skipped(tmp_path, write_image):
    whole = write_image(tmp_path / "whole.png", smooth(np.random.default_rng(3), 60, 80)).read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    image, reason = decode_image(tmp_path / "cut.png", 28, "grayscale")
    assert image is None and reason.startswith("undecodable PNG")


def test_unreadable_paths_give_a_reason(tmp_path):
    assert decode_image(tmp_path / "missing.jpg", 28, "grayscale")[1].startswith("unreadable")
    assert decode_image(tmp_path, 28, "grayscale")[1] in ("not a regular file", "unreadable (Is a directory)")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX-only")
def test_named_pipe_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    assert decode_image(tmp_path / "pipe.jpg", 28, "grayscale") == (None, "not a regular file")


def test_libjpeg_warnings_do_not_reach_stderr(tmp_path, write_image, capfd):
    whole = write_image(tmp_path / "ok.jpg", smooth(np.random.default_rng(4), 200, 200), ".jpg").read_bytes()
    damaged = whole[:-2] + b"\x00\x01\x02\x03" + whole[-2:]  # "Corrupt JPEG data: 4 extraneous bytes before marker"
    (tmp_path / "damaged.jpg").write_bytes(damaged)
    image, reason = decode_image(tmp_path / "damaged.jpg", 28, "grayscale")
    assert reason is None
    print("still here", file=sys.stderr)
    assert capfd.readouterr().err == "still here\n"  # nothing from libjpeg, and stderr works afterwards


def test_libjpeg_warnings_from_worker_processes_do_not_reach_stderr(tmp_path, write_image, capfd):
    rng = np.random.default_rng(5)
    for index in range(70):
        whole = write_image(tmp_path / "src" / "ok.jpg", smooth(rng, 64, 64), ".jpg").read_bytes()
        target = tmp_path / "damaged" / ("a" if index % 2 else "b") / f"{index}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(whole[:-2] + b"\x00\x01\x02" + whole[-2:])
    dataset, _ = prepare(tmp_path / "damaged", tmp_path / "prepared", workers=2)
    assert sum(dataset.manifest["splits"].values()) == 70
    assert "Corrupt JPEG" not in capfd.readouterr().err


# ---------------------------------------------------------------------------------------------- prepare_dataset

def test_prepares_a_folder(image_folder, tmp_path):
    dataset, reused = prepare(image_folder, tmp_path / "prepared")
    assert reused is False
    assert dataset.class_names == ["cat", "dog"] and dataset.num_classes == 2
    assert (dataset.img_size, dataset.color, dataset.input_shape) == (50, "grayscale", (50, 50, 1))
    assert [len(dataset.y_train), len(dataset.y_val), len(dataset.y_test)] == [12, 2, 2]  # 8 per class: 6/1/1
    for split in ("train", "val", "test"):
        x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
        assert x.dtype == np.uint8 and x.shape[1:] == (50, 50, 1) and y.dtype == np.int32
        assert np.bincount(y, minlength=2).tolist() == [len(y) // 2] * 2  # stratified
    counts = dataset.manifest["counts"]["cat"]
    assert (counts["found"], counts["loaded"], counts["kept"], counts["train"]) == (8, 8, 8, 6)
    assert json.loads((tmp_path / "prepared" / "manifest.json").read_text()) == dataset.manifest


def test_relative_data_dir(image_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(image_folder)
    dataset, _ = prepare(".", tmp_path / "prepared")
    assert dataset.manifest["counts"]["cat"]["loaded"] == 8
    monkeypatch.chdir(image_folder / "cat")
    dataset, _ = prepare("..", tmp_path / "prepared2")
    assert dataset.manifest["counts"]["dog"]["loaded"] == 8


def test_rgb_and_custom_size(image_folder, tmp_path):
    dataset, _ = prepare(image_folder, tmp_path / "prepared", color="rgb", img_size=24)
    assert dataset.x_train.shape[1:] == (24, 24, 3) and dataset.input_shape == (24, 24, 3)


def test_rebuilding_an_unchanged_folder_gives_the_same_manifest(image_folder, tmp_path):
    first, _ = prepare(image_folder, tmp_path / "prepared")
    again, reused = prepare(image_folder, tmp_path / "prepared", force=True)
    assert not reused and again.manifest == first.manifest


def test_splits_are_disjoint_and_seeded(image_folder, tmp_path):
    first, _ = prepare(image_folder, tmp_path / "a", seed=5)
    again, _ = prepare(image_folder, tmp_path / "b", seed=5)
    other, _ = prepare(image_folder, tmp_path / "c", seed=6)
    assert all(np.array_equal(a, b) for a, b in zip(all_arrays(first), all_arrays(again)))
    assert not np.array_equal(first.x_train, other.x_train)
    rows = {x.tobytes() for split in ("train", "val", "test") for x in getattr(first, f"x_{split}")}
    assert len(rows) == 16  # every image in exactly one split


@pytest.mark.parametrize("workers, start_method", [(2, "fork"), (3, "fork"), (2, "spawn")])
def test_parallel_decoding_gives_the_same_result(tmp_path, write_image, monkeypatch, workers, start_method):
    if start_method not in data.multiprocessing.get_all_start_methods():
        pytest.skip(f"no {start_method} start method here")
    monkeypatch.setattr(data, "_start_method", lambda: start_method)
    rng = np.random.default_rng(0)
    for index in range(80):
        write_image(tmp_path / "many" / ("a" if index % 2 else "b") / f"{index}.png", rng.integers(0, 256, (20, 20), dtype=np.uint8))
    (tmp_path / "many" / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    serial, _ = prepare(tmp_path / "many", tmp_path / "serial", workers=1)
    parallel, _ = prepare(tmp_path / "many", tmp_path / "parallel", workers=workers)
    assert all(np.array_equal(a, b) for a, b in zip(all_arrays(serial), all_arrays(parallel)))
    assert parallel.manifest["skipped"] == [{"file": "a/broken.jpg", "reason": "truncated JPEG (cut off before the image data)"}]


def test_balancing_undersamples_to_the_smallest_class(image_folder, tmp_path, write_image):
    rng = np.random.default_rng(9)
    for index in range(4):
        write_image(image_folder / "cat" / f"extra{index}.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    balanced, _ = prepare(image_folder, tmp_path / "balanced")
    assert [balanced.manifest["counts"][name]["kept"] for name in ("cat", "dog")] == [8, 8]
    unbalanced, _ = prepare(image_folder, tmp_path / "unbalanced", no_balance=True)
    counts = unbalanced.manifest["counts"]
    assert [counts["cat"]["kept"], counts["dog"]["kept"]] == [12, 8]
    assert [counts["cat"][s] for s in ("train", "val", "test")] == [8, 2, 2]  # 12 * 0.15 = 1.8 -> 2
    assert "not balanced" in format_summary(unbalanced)


def test_split_fractions(image_folder, tmp_path):
    dataset, _ = prepare(image_folder, tmp_path / "prepared", val_fraction=0.25, test_fraction=0.25)
    assert [len(dataset.y_train), len(dataset.y_val), len(dataset.y_test)] == [8, 4, 4]


def test_duplicates_within_and_across_classes(image_folder, tmp_path):
    shutil.copy(image_folder / "cat" / "cat0.png", image_folder / "cat" / "cat0 copy.png")
    shutil.copy(image_folder / "cat" / "cat0.png", image_folder / "cat" / "cat0 copy 2.png")
    shutil.copy(image_folder / "dog" / "dog0.png", image_folder / "cat" / "actually a dog.png")
    dataset, _ = prepare(image_folder, tmp_path / "prepared", no_balance=True)
    counts = dataset.manifest["counts"]
    assert (counts["cat"]["loaded"], counts["cat"]["duplicates"], counts["cat"]["mislabelled"], counts["cat"]["kept"]) == (11, 2, 1, 8)
    assert (counts["dog"]["duplicates"], counts["dog"]["mislabelled"], counts["dog"]["kept"]) == (0, 1, 7)
    # The first copy in sorted path order is kept (" " sorts before ".").
    assert dataset.manifest["duplicates"] == [{"file": "cat/cat0 copy.png", "same_as": "cat/cat0 copy 2.png"},
                                              {"file": "cat/cat0.png", "same_as": "cat/cat0 copy 2.png"}]
    assert dataset.manifest["mislabelled"] == [{"files": ["cat/actually a dog.png", "dog/dog0.png"]}]
    assert "2 exact repeats within a class kept once; 2 images found under more than one class" in format_summary(dataset)


def test_messy_folder_gives_exact_counts(tmp_path, write_image):
    pil = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(11)
    root = tmp_path / "PetImages"
    for name in ("Cat", "Dog"):
        for index in range(10):
            write_image(root / name / f"{index}.jpg", smooth(rng, 60 + index, 80), ".jpg")
    write_image(root / "Cat" / "png in disguise.jpg", smooth(rng, 50, 50), ".png")
    write_image(root / "Cat" / "UPPER.JPG", smooth(rng, 50, 50), ".jpg")
    write_image(root / "Cat" / "nested" / "chat noir é.webp", smooth(rng, 50, 50), ".webp")
    pil.fromarray(smooth(rng, 40, 40)).convert("CMYK").save(root / "Dog" / "cmyk.jpg")
    write_image(root / "Dog" / "deep.png", (smooth(rng, 40, 40).astype(np.uint16) * 257))
    write_image(root / "Dog" / "old.bmp", smooth(rng, 40, 40), ".bmp")
    write_image(root / "Dog" / "scan.tiff", smooth(rng, 40, 40), ".tiff")
    write_image(root / "Dog" / "anim.gif", smooth(rng, 40, 40), ".gif")
    (root / "Cat" / "666.jpg").write_bytes(b"")
    (root / "Cat" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100))
    (root / "Dog" / "11702.jpg").write_bytes(b"")
    (root / "Dog" / "readme.txt").write_text("dogs")
    whole = (root / "Dog" / "3.jpg").read_bytes()
    (root / "Dog" / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    (root / ".git").mkdir()  # hidden folders are not classes
    (root / "Cat" / ".hidden").mkdir()
    write_image(root / "Cat" / ".hidden" / "x.png", smooth(rng, 20, 20))
    (root / "README.txt").write_text("top-level files are not in a class")

    dataset, _ = prepare(root, tmp_path / "prepared")
    manifest = dataset.manifest
    assert dataset.class_names == ["Cat", "Dog"]
    cat, dog = manifest["counts"]["Cat"], manifest["counts"]["Dog"]
    assert (cat["found"], cat["loaded"], cat["skipped"]) == (15, 13, {"empty file": 1, "not an image (unknown format)": 1})
    assert (dog["found"], dog["loaded"]) == (18, 15)
    assert dog["skipped"] == {"empty file": 1, "not an image (unknown format)": 1, "truncated JPEG (no end marker)": 1}
    assert (cat["kept"], dog["kept"]) == (13, 13)
    assert sorted(item["file"] for item in manifest["skipped"]) == [
        "Cat/666.jpg", "Cat/Thumbs.db", "Dog/11702.jpg", "Dog/cut.jpg", "Dog/readme.txt"]
    summary = format_summary(dataset)
    assert "skipped 5 files: 2 empty file, 2 not an image (unknown format), 1 truncated JPEG (no end marker)" in summary
    assert "  Dog/cut.jpg: truncated JPEG (no end marker)" in summary
    assert next(line for line in summary.splitlines() if line.startswith("total")).split() == ["total", "33", "28", "5", "0", "0", "26", "18", "4", "4"]


def test_summary_lists_at_most_max_files(image_folder, tmp_path):
    for index in range(5):
        (image_folder / "cat" / f"junk{index}.txt").write_text("x")
    dataset, _ = prepare(image_folder, tmp_path / "prepared")
    summary = format_summary(dataset.manifest, max_files=2)
    assert "skipped 5 files" in summary and "... and 3 more in manifest.json" in summary


def test_progress_bar_only_on_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    bar = data._ProgressBar(4, enabled=True, label="decoding")
    bar.update(4)
    bar.close()
    assert "4/4" in capsys.readouterr().err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    bar = data._ProgressBar(4, enabled=True, label="decoding")
    bar.update(4)
    bar.close()
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------- bad input

def test_missing_folder(tmp_path):
    with pytest.raises(TunerUsageError, match="data folder '.*nowhere' does not exist; pass --data-dir"):
        prepare(tmp_path / "nowhere", tmp_path / "out")


def test_file_given_as_folder(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(b"x")
    with pytest.raises(TunerUsageError, match="is a file, not a folder"):
        prepare(tmp_path / "photo.jpg", tmp_path / "out")


@pytest.mark.parametrize("classes, found", [((), "0 class folders"), (("cats",), r"1 class folder \(cats\)")])
def test_fewer_than_two_class_folders(tmp_path, classes, found):
    root = tmp_path / "imgs"
    root.mkdir()
    for name in classes:
        (root / name).mkdir()
    with pytest.raises(TunerUsageError, match=f"has {found}; need at least 2, one subfolder per class"):
        prepare(root, tmp_path / "out")


def test_class_without_a_loadable_image(image_folder, tmp_path):
    (image_folder / "bird").mkdir()
    (image_folder / "bird" / "a.jpg").write_bytes(b"")
    (image_folder / "bird" / "b.txt").write_text("tweet")
    with pytest.raises(TunerUsageError, match=r"class folder '.*bird' has no usable image \(2 files; 1 empty file, "
                                              r"1 not an image \(unknown format\); 0 also in another class\)"):
        prepare(image_folder, tmp_path / "out")


def test_fractions_that_leave_a_split_empty(image_folder, tmp_path):
    for path in sorted((image_folder / "dog").iterdir())[2:]:
        path.unlink()
    with pytest.raises(TunerUsageError, match="class 'cat' has 2 usable images, too few .* at least 1 image per class"):
        prepare(image_folder, tmp_path / "out")


def test_output_folder_that_is_a_file(image_folder, tmp_path):
    (tmp_path / "out").write_text("")
    with pytest.raises(TunerUsageError, match="--out '.*out' is a file"):
        prepare(image_folder, tmp_path / "out")


def test_output_folder_that_cannot_be_created(image_folder, tmp_path):
    (tmp_path / "blocker").write_text("")
    with pytest.raises(TunerUsageError, match="cannot write to output folder '.*blocker/out'.*pass a writable --out"):
        prepare(image_folder, tmp_path / "blocker" / "out")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_output_folder_without_permission(image_folder, tmp_path):
    (tmp_path / "locked").mkdir(mode=0o500)
    with pytest.raises(TunerUsageError, match="cannot write to output folder"):
        prepare(image_folder, tmp_path / "locked")


def test_output_inside_the_data_folder(image_folder):
    with pytest.raises(TunerUsageError, match="is inside the data folder"):
        prepare(image_folder, image_folder / "prepared")


# ---------------------------------------------------------------------------------------------- the cache

def test_up_to_date_cache_is_reused_and_changes_are_noticed(image_folder, tmp_path):
    out = tmp_path / "prepared"
    first, reused = prepare(image_folder, out)
    assert not reused
    second, reused = prepare(image_folder, out, workers=1, debug=True)  # settings that don't shape the output
    assert reused and all(np.array_equal(a, b) for a, b in zip(all_arrays(first), all_arrays(second)))
    assert prepare(image_folder, out, force=True)[1] is False
    assert prepare(image_folder, out, img_size=32)[1] is False  # a setting that shapes the output
    assert prepare(image_folder, out, img_size=32)[1] is True
    os.utime(image_folder / "cat" / "cat3.png", ns=(1, 1))  # a touched file
    assert prepare(image_folder, out, img_size=32)[1] is False
    (image_folder / "dog" / "dog7.png").unlink()  # a removed file
    dataset, reused = prepare(image_folder, out, img_size=32)
    assert not reused and dataset.manifest["counts"]["dog"]["found"] == 7


def test_cache_from_another_format_version_is_rebuilt(image_folder, tmp_path, monkeypatch):
    out = tmp_path / "prepared"
    prepare(image_folder, out)
    monkeypatch.setattr(cache, "FORMAT_VERSION", cache.FORMAT_VERSION + 1)
    assert prepare(image_folder, out)[1] is False
    monkeypatch.undo()
    with pytest.raises(TunerUsageError, match="another version of data_prep.py .* --force"):
        load_prepared(out)


def test_crash_while_writing_keeps_the_old_cache(image_folder, tmp_path, monkeypatch):
    out = tmp_path / "prepared"
    old, _ = prepare(image_folder, out)
    before = sorted(os.listdir(out))

    def crash(*args, **kwargs):
        raise OSError("simulated power cut")

    monkeypatch.setattr(data.os, "replace", crash)
    with pytest.raises(OSError, match="simulated power cut"):
        prepare(image_folder, out, force=True, seed=99)
    monkeypatch.undo()
    assert sorted(os.listdir(out)) == before  # no temporary files left behind
    kept = load_prepared(out)
    assert all(np.array_equal(a, b) for a, b in zip(all_arrays(old), all_arrays(kept)))


def test_crash_half_way_through_the_npz_keeps_the_old_cache(image_folder, tmp_path, monkeypatch):
    out = tmp_path / "prepared"
    old, _ = prepare(image_folder, out)

    def half_written(stream, **arrays):
        stream.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt  # the user pressed Ctrl-C mid-write

    monkeypatch.setattr(data.np, "savez", half_written)
    with pytest.raises(KeyboardInterrupt):
        prepare(image_folder, out, force=True)
    monkeypatch.undo()
    assert sorted(os.listdir(out)) == ["dataset.npz", "manifest.json"]
    assert np.array_equal(load_prepared(out).x_train, old.x_train)


def test_leftovers_of_a_killed_write_are_cleaned_up(image_folder, tmp_path):
    out = tmp_path / "prepared"
    out.mkdir()
    old, fresh = out / ".dataset.npz.dead.tmp", out / ".dataset.npz.live.tmp"
    old.write_bytes(b"PK\x03\x04 half")
    fresh.write_bytes(b"PK\x03\x04 being written")
    os.utime(old, (0, 0))
    prepare(image_folder, out)
    assert not old.exists() and fresh.exists()  # only a file nobody has written to for 10 minutes is removed


def test_load_prepared_accepts_the_npz_path(image_folder, tmp_path):
    dataset, _ = prepare(image_folder, tmp_path / "prepared")
    assert np.array_equal(load_prepared(tmp_path / "prepared" / "dataset.npz").x_val, dataset.x_val)


def test_manifest_json_is_regenerated_from_the_npz(image_folder, tmp_path):
    out = tmp_path / "prepared"
    dataset, _ = prepare(image_folder, out)
    (out / "manifest.json").unlink()
    assert load_prepared(out).manifest == dataset.manifest
    assert json.loads((out / "manifest.json").read_text()) == dataset.manifest
    (out / "manifest.json").write_text('{"class_names": ["edited"]}')
    load_prepared(out)
    assert json.loads((out / "manifest.json").read_text()) == dataset.manifest


class _Trap:
    def __reduce__(self):
        return (os.mkdir, (os.path.join(os.environ["TRAP_DIR"], "pwned"),))


def write_foreign(path, kind):
    if kind == "pickle":
        path.write_bytes(pickle.dumps({"x": _Trap()}))
    elif kind == "text":
        path.write_text("hello")
    elif kind == "npy":
        np.save(path.with_suffix(".npy"), np.zeros(3))
        path.with_suffix(".npy").rename(path)
    elif kind == "plain npz":
        np.savez(path, x_train=np.zeros((1, 8, 8, 1), np.uint8))
        path.with_suffix(".npz.npz").rename(path) if path.with_suffix(".npz.npz").exists() else None
    elif kind == "object npz":
        with open(path, "wb") as stream:
            np.savez(stream, manifest_json=np.array([{"format": data.FORMAT_TAG}], dtype=object))


FOREIGN = [("pickle", "Python pickle"), ("text", "not an .npz archive"), ("npy", "not an .npz archive"),
           ("plain npz", "no manifest_json entry"), ("object npz", "damaged")]


@pytest.mark.parametrize("kind, why", FOREIGN)
def test_foreign_cache_is_refused_and_never_unpickled(tmp_path, monkeypatch, kind, why):
    monkeypatch.setenv("TRAP_DIR", str(tmp_path))
    out = tmp_path / "prepared"
    out.mkdir()
    write_foreign(out / "dataset.npz", kind)
    with pytest.raises(TunerUsageError, match=f"is not a prepared dataset from data_prep.py \\(.*{why}.*refusing to load"):
        load_prepared(out)
    assert not (tmp_path / "pwned").exists()


def test_prepare_refuses_to_overwrite_a_foreign_cache_without_force(image_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAP_DIR", str(tmp_path))
    out = tmp_path / "prepared"
    out.mkdir()
    write_foreign(out / "dataset.npz", "pickle")
    with pytest.raises(TunerUsageError, match="Python pickle.*move it away or pass --force"):
        prepare(image_folder, out)
    dataset, reused = prepare(image_folder, out, force=True)
    assert not reused and load_prepared(out).num_classes == 2
    assert not (tmp_path / "pwned").exists()


def test_damaged_cache_is_refused(image_folder, tmp_path):
    out = tmp_path / "prepared"
    prepare(image_folder, out)
    content = (out / "dataset.npz").read_bytes()
    (out / "dataset.npz").write_bytes(content[: len(content) // 2])
    with pytest.raises(TunerUsageError, match="damaged"):
        load_prepared(out)


def test_missing_cache(tmp_path):
    with pytest.raises(TunerUsageError, match=r"no prepared dataset in '.*nothing' \(dataset.npz is missing\); "
                                              r"run python data_prep.py --out .*nothing first"):
        load_prepared(tmp_path / "nothing")


def test_save_prepared_accepts_a_minimal_manifest(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in (("train", 6), ("val", 2), ("test", 2)):
        arrays[f"x_{split}"] = rng.integers(0, 256, (count, 8, 8, 3), dtype=np.uint8)
        arrays[f"y_{split}"] = np.arange(count) % 2  # int64 is fine; stored as int32
    save_prepared(tmp_path / "tiny", arrays, {"class_names": ["a", "b"], "img_size": 8, "color": "rgb"})
    dataset = load_prepared(tmp_path / "tiny")
    assert isinstance(dataset, PreparedDataset) and dataset.input_shape == (8, 8, 3) and dataset.y_val.dtype == np.int32
    assert dataset.manifest["splits"] == {"train": 6, "val": 2, "test": 2}
    assert dataset.manifest["counts"]["a"] == {"train": 3, "val": 1, "test": 1, "kept": 5}
    assert "total" in format_summary(dataset)


@pytest.mark.parametrize("change, message", [
    (lambda arrays, manifest: manifest.pop("color"), "manifest needs class_names, img_size and color"),
    (lambda arrays, manifest: arrays.update(x_val=arrays["x_val"].astype(np.float32)), "x_val must be uint8"),
    (lambda arrays, manifest: arrays.update(y_test=arrays["y_test"][:1]), "y_test must be integer labels"),
    (lambda arrays, manifest: arrays.update(y_train=arrays["y_train"] + 5), "labels outside 0..1"),
])
def test_save_prepared_checks_its_input(tmp_path, change, message):
    arrays = {f"{kind}_{split}": (np.zeros((2, 8, 8, 1), np.uint8) if kind == "x" else np.array([0, 1]))
              for split in ("train", "val", "test") for kind in ("x", "y")}
    manifest = {"class_names": ["a", "b"], "img_size": 8, "color": "grayscale"}
    change(arrays, manifest)
    with pytest.raises(ValueError, match=message):
        save_prepared(tmp_path / "bad", arrays, manifest)
    assert not (tmp_path / "bad" / "dataset.npz").exists()


def test_ensure_prepared_makes_the_sample_only_in_the_default_folder(in_tmp_cwd):
    with pytest.raises(TunerUsageError, match="no prepared dataset in 'elsewhere'"):
        ensure_prepared("elsewhere")
    dataset = ensure_prepared("data/prepared", quiet=True)
    assert dataset.manifest["source"]["builtin_sample"] and dataset.img_size == 28
    assert (in_tmp_cwd / "data" / "prepared" / "dataset.npz").exists()
    assert np.array_equal(ensure_prepared(in_tmp_cwd / "data" / "prepared").x_test, dataset.x_test)


def test_the_npz_loads_without_pickle_and_holds_its_manifest(image_folder, tmp_path):
    out = tmp_path / "prepared"
    dataset, _ = prepare(image_folder, out)
    with np.load(out / "dataset.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(["manifest_json", "x_train", "y_train", "x_val", "y_val", "x_test", "y_test"])
        assert json.loads(archive["manifest_json"].tobytes()) == dataset.manifest
    with zipfile.ZipFile(out / "dataset.npz") as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())
