"""tuner.data.sample: the safe unpickler, the Animal-MNIST data files and the sample folder written from them."""

import gzip
import io
import os
import pickle

import cv2
import numpy as np
import pytest

import tuner.data.sample as sample
from tuner.config import PrepSettings
from tuner.data.prepare import prepare_dataset
from tuner.errors import TunerUsageError
from tuner.data.sample import (
    ArrayUnpickler,
    load_animal_mnist,
    load_array_pickle,
    write_sample,
)


class Payload:
    """A harmless custom class: the unpickler must refuse it all the same."""

    def __init__(self):
        self.value = 1


class RunsCode:
    def __reduce__(self):
        return (os.mkdir, (os.path.join(os.environ["TRAP_DIR"], "pwned"),))


@pytest.mark.parametrize("array", [np.arange(12, dtype=np.uint8).reshape(3, 4), np.arange(5, dtype=np.int64),
                                   np.zeros((2, 2), np.float32), np.array([], dtype=np.uint16)])
@pytest.mark.parametrize("protocol", [3, 4])  # 4 is what animal-mnist ships; 2 and 5 need more globals
def test_plain_arrays_load(array, protocol):
    loaded = load_array_pickle(io.BytesIO(pickle.dumps(array, protocol=protocol)))
    assert loaded.dtype == array.dtype and np.array_equal(loaded, array)


@pytest.mark.parametrize("payload", [
    RunsCode(), [RunsCode()], {"data": RunsCode()}, Payload(), os.system, np.float64(1.5),
    np.array([1, "two"], dtype=object), np.ma.masked_array([1, 2], mask=[0, 1])])
def test_everything_else_is_refused(payload, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAP_DIR", str(tmp_path))
    with pytest.raises(pickle.UnpicklingError):
        load_array_pickle(io.BytesIO(pickle.dumps(payload)))
    assert not (tmp_path / "pwned").exists()


def test_refusal_names_the_global():
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (posix|nt)\.system"):
        ArrayUnpickler(io.BytesIO(pickle.dumps(os.system))).load()


def test_animal_mnist_files_hold_10000_labelled_silhouettes():
    images, labels = load_animal_mnist()
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10


def test_missing_package_is_a_usage_error(monkeypatch):
    def missing(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(sample.importlib.resources, "files", missing)
    with pytest.raises(TunerUsageError, match="needs the animal-mnist package.*pip install -r requirements.txt"):
        load_animal_mnist()


def test_sample_folder_holds_the_cats_and_dogs_losslessly(sample_dir):
    images, labels = load_animal_mnist()
    assert sorted(path.name for path in sample_dir.iterdir()) == [".sample-complete.json", "Cat", "Dog"]
    for label, name in ((2, "Cat"), (4, "Dog")):
        files = sorted((sample_dir / name).glob("*.png"))
        assert len(files) == 1000
        for index in (0, 517, 999):
            decoded = cv2.imdecode(np.fromfile(files[index], np.uint8), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(decoded, images[labels == label][index])


def test_complete_sample_is_not_rewritten(tmp_path, monkeypatch):
    dest = write_sample(tmp_path / "sample")
    stamp = (dest / "Cat" / "cat_0000.png").stat().st_mtime_ns
    monkeypatch.setattr(sample, "load_animal_mnist", lambda: pytest.fail("a complete sample was rewritten"))
    assert write_sample(dest) == dest
    assert (dest / "Cat" / "cat_0000.png").stat().st_mtime_ns == stamp


def test_interrupted_write_is_finished_next_time(tmp_path, monkeypatch):
    calls = {"count": 0}
    real_imencode = cv2.imencode

    def dies_half_way(ext, image):
        calls["count"] += 1
        if calls["count"] == 1500:
            raise KeyboardInterrupt
        return real_imencode(ext, image)

    monkeypatch.setattr(cv2, "imencode", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        write_sample(tmp_path / "sample")
    monkeypatch.undo()
    assert not (tmp_path / "sample" / sample.MARKER_NAME).exists()  # half a sample is never taken as complete
    write_sample(tmp_path / "sample")
    assert len(list((tmp_path / "sample" / "Dog").glob("*.png"))) == 1000


def test_deleted_images_are_restored(tmp_path):
    dest = write_sample(tmp_path / "sample")
    (dest / "Dog" / "dog_0003.png").unlink()
    write_sample(dest)
    assert (dest / "Dog" / "dog_0003.png").exists()


def test_unwritable_destination(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(TunerUsageError, match="cannot write the built-in sample to .*--data-dir"):
        write_sample(tmp_path / "file" / "sample")


def test_the_sample_prepares_to_2_balanced_classes_of_992_split_70_15_15(in_tmp_cwd):
    dataset, reused = prepare_dataset(PrepSettings(quiet=True), progress=False)
    manifest = dataset.manifest
    assert not reused and manifest["source"]["builtin_sample"] and dataset.input_shape == (28, 28, 1)
    counts = manifest["counts"]
    assert sum(counts[name]["loaded"] for name in ("Cat", "Dog")) == 2000
    assert sum(counts[name]["duplicates"] for name in ("Cat", "Dog")) == 11  # exact repeats within a class
    assert sum(counts[name]["mislabelled"] for name in ("Cat", "Dog")) == 0
    for name in ("Cat", "Dog"):  # balanced to the smaller class, then 70/15/15 within each class
        assert [counts[name][key] for key in ("kept", "train", "val", "test")] == [992, 694, 149, 149]
    assert (in_tmp_cwd / "data" / "sample" / "Cat").is_dir()


def test_data_file_is_really_a_gzipped_pickle():
    # Guards the premise of the safe unpickler: if the package ever ships .npy files, read those instead.
    folder = sample.importlib.resources.files("animal_mnist") / "data" / "Animal_MNIST"
    with gzip.open(folder / "animal_label_version_3.gz", "rb") as stream:
        assert stream.read(1) == b"\x80"
