"""tuner.data.prepare: an image folder cleaned, deduplicated, balanced, split and cached; bad input refused."""

import json
import os
import shutil

import numpy as np
import pytest

from tests.tiny_data import all_arrays, prepare, smooth
from tuner.data.prepare import ensure_prepared, format_summary
from tuner.errors import TunerUsageError


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


def test_test_files_name_each_test_images_source_in_its_class_folder(image_folder, write_image, tmp_path):
    from tuner.data.images import decode_image

    write_image(image_folder / "dog" / "nested" / "dog 8.png", np.full((32, 32, 3), 77, np.uint8))
    dataset, _ = prepare(image_folder, tmp_path / "prepared", test_fraction=0.25, no_balance=True)
    files = dataset.test_files
    assert len(files) == len(dataset.y_test) == 4 and len(set(files)) == 4
    assert json.loads((tmp_path / "prepared" / "manifest.json").read_text())["test_files"] == files
    for row, (name, label) in enumerate(zip(files, dataset.y_test)):
        assert name.split("/")[0] == dataset.class_names[label]  # relative to the data folder, class folder first
        image, reason = decode_image(image_folder / name, dataset.img_size, dataset.color)
        assert reason is None and np.array_equal(image, dataset.x_test[row])  # row i of x_test is this very file


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


def test_ensure_prepared_makes_the_sample_only_in_the_default_folder(in_tmp_cwd):
    with pytest.raises(TunerUsageError, match="no prepared dataset in 'elsewhere'"):
        ensure_prepared("elsewhere")
    dataset = ensure_prepared("data/prepared", quiet=True)
    assert dataset.manifest["source"]["builtin_sample"] and dataset.img_size == 28
    assert (in_tmp_cwd / "data" / "prepared" / "dataset.npz").exists()
    assert np.array_equal(ensure_prepared(in_tmp_cwd / "data" / "prepared").x_test, dataset.x_test)
