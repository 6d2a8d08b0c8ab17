"""tuner.data.cache: the prepared dataset on disk, written atomically, refused when foreign or damaged, never unpickled."""

import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import tuner.data.cache as cache
import tuner.files as files
from tests.tiny_data import all_arrays, prepare
from tuner.data.cache import PreparedDataset, load_prepared, save_prepared
from tuner.data.prepare import format_summary
from tuner.errors import TunerUsageError


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

    monkeypatch.setattr(files.os, "replace", crash)
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

    monkeypatch.setattr(cache.np, "savez", half_written)
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
            np.savez(stream, manifest_json=np.array([{"format": cache.FORMAT_TAG}], dtype=object))


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
    (lambda arrays, manifest: manifest.update(class_names="ab"), "class_names must be a list of at least 2 different"),
    (lambda arrays, manifest: manifest.update(class_names=["a", "a"]), "class_names must be a list of at least 2 different"),
    (lambda arrays, manifest: manifest.update(img_size=None), "img_size must be a whole number of pixels, got None"),
    (lambda arrays, manifest: manifest.update(img_size="8"), "img_size must be a whole number of pixels, got '8'"),
])
def test_save_prepared_checks_its_input(tmp_path, change, message):
    arrays = {f"{kind}_{split}": (np.zeros((2, 8, 8, 1), np.uint8) if kind == "x" else np.array([0, 1]))
              for split in ("train", "val", "test") for kind in ("x", "y")}
    manifest = {"class_names": ["a", "b"], "img_size": 8, "color": "grayscale"}
    change(arrays, manifest)
    with pytest.raises(ValueError, match=message):
        save_prepared(tmp_path / "bad", arrays, manifest)
    assert not (tmp_path / "bad" / "dataset.npz").exists()


def test_the_npz_loads_without_pickle_and_holds_its_manifest(image_folder, tmp_path):
    out = tmp_path / "prepared"
    dataset, _ = prepare(image_folder, out)
    with np.load(out / "dataset.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(["manifest_json", "x_train", "y_train", "x_val", "y_val", "x_test", "y_test"])
        assert json.loads(archive["manifest_json"].tobytes()) == dataset.manifest
    with zipfile.ZipFile(out / "dataset.npz") as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())


@pytest.mark.parametrize("change", [{"img_size": None}, {"class_names": "ab"}, {"class_names": ["a", "a"]}])
def test_a_damaged_embedded_manifest_is_refused_naming_the_file(image_folder, tmp_path, change):
    out = tmp_path / "prepared"
    prepare(image_folder, out)
    with np.load(out / "dataset.npz") as archive:
        arrays = {key: archive[key] for key in archive.files}
    manifest = {**json.loads(arrays["manifest_json"].tobytes()), **change}
    arrays["manifest_json"] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    np.savez(out / "dataset.npz", **arrays)
    with pytest.raises(TunerUsageError, match=f"'{out / 'dataset.npz'}' is not a prepared dataset .*--force"):
        load_prepared(out)


@pytest.mark.parametrize("change, problem", [
    (lambda manifest, name: manifest["counts"][name].update(train=999), "contradict the arrays: train 999 \\(the arrays hold"),
    (lambda manifest, name: manifest["counts"][name].update(kept=1), "contradict the arrays: kept 1"),
    (lambda manifest, name: manifest.update(splits={"train": 5, "val": 1, "test": 1}), "splits .* contradict the arrays' lengths"),
    (lambda manifest, name: manifest["counts"][name].update(found=-3), "must be whole numbers >= 0"),
    (lambda manifest, name: manifest["counts"][name].update(found=10**6), "found 1000000 is not loaded \\+ skipped"),
    (lambda manifest, name: manifest["counts"][name].update(loaded=1, found=1), "exceeds the 1 distinct images loaded"),
    (lambda manifest, name: manifest["counts"].update(zebra={}), "name classes that are not in class_names"),
    (lambda manifest, name: manifest.update(counts=[1, 2]), "must map each class name to its counts"),
])
def test_manifest_counts_the_arrays_contradict_are_refused_naming_the_file(image_folder, tmp_path, change, problem):
    out = tmp_path / "prepared"
    dataset, _ = prepare(image_folder, out)
    load_prepared(out)  # data_prep.py's own counts agree with its arrays
    with np.load(out / "dataset.npz") as archive:
        arrays = {key: archive[key] for key in archive.files}
    manifest = json.loads(arrays["manifest_json"].tobytes())
    change(manifest, dataset.class_names[0])
    arrays["manifest_json"] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    np.savez(out / "dataset.npz", **arrays)
    with pytest.raises(TunerUsageError, match=f"'{out / 'dataset.npz'}' is not a prepared dataset .*{problem}.*--force"):
        load_prepared(out)


def _rewrite_embedded_manifest(out, change):
    """Edit the manifest inside dataset.npz in place, as a damaged or older cache would hold it."""
    with np.load(out / "dataset.npz") as archive:
        arrays = {key: archive[key] for key in archive.files}
    manifest = json.loads(arrays["manifest_json"].tobytes())
    change(manifest)
    arrays["manifest_json"] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    np.savez(out / "dataset.npz", **arrays)


@pytest.mark.parametrize("change, problem", [
    (lambda manifest: manifest["test_files"].pop(), "test_files must name one file per test image: it names 1, y_test holds 2"),
    (lambda manifest: manifest["test_files"].append("cat/extra.png"), "it names 3, y_test holds 2"),
    (lambda manifest: manifest.update(test_files="cat/cat0.png"), "test_files must be a list of file names"),
    (lambda manifest: manifest["test_files"].__setitem__(0, 7), "test_files must be a list of file names"),
])
def test_test_files_that_do_not_fit_the_test_split_are_refused_naming_the_file(image_folder, tmp_path, change, problem):
    out = tmp_path / "prepared"
    dataset, _ = prepare(image_folder, out)
    assert len(dataset.test_files) == len(dataset.y_test) == 2
    _rewrite_embedded_manifest(out, change)
    with pytest.raises(TunerUsageError, match=f"'{out / 'dataset.npz'}' is not a prepared dataset .*{problem}.*--force"):
        load_prepared(out)


def test_a_cache_prepared_before_test_files_still_loads_and_is_reused(image_folder, tmp_path):
    out = tmp_path / "prepared"
    new, _ = prepare(image_folder, out)
    _rewrite_embedded_manifest(out, lambda manifest: manifest.pop("test_files"))
    old = load_prepared(out)
    assert old.test_files is None and "test_files" not in old.manifest
    # The source fingerprint does not cover the manifest's keys: data_prep.py reuses the older cache as it is,
    # and its identity is the one a run searched on it recorded, before and after a forced rebuild.
    again, reused = prepare(image_folder, out)
    assert reused and again.test_files is None
    assert cache.dataset_identity(old) == cache.dataset_identity(new)
    rebuilt, reused = prepare(image_folder, out, force=True)
    assert not reused and rebuilt.test_files == new.test_files
    assert cache.dataset_identity(rebuilt) == cache.dataset_identity(old)


def test_save_prepared_refuses_test_files_of_the_wrong_length(tmp_path):
    arrays = {f"{kind}_{split}": (np.zeros((2, 8, 8, 1), np.uint8) if kind == "x" else np.array([0, 1]))
              for split in ("train", "val", "test") for kind in ("x", "y")}
    manifest = {"class_names": ["a", "b"], "img_size": 8, "color": "grayscale", "test_files": ["a/0.png"]}
    with pytest.raises(ValueError, match="one file per test image: it names 1, y_test holds 2"):
        save_prepared(tmp_path / "bad", arrays, manifest)
    save_prepared(tmp_path / "good", arrays, {**manifest, "test_files": None})
    assert load_prepared(tmp_path / "good").test_files is None
