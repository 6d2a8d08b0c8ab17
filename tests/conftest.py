"""Shared fixtures: a fixed seed for every test, small image folders under tmp_path, a finished tiny run, and a
trained model of the modern space."""

import json
import logging
import random
from pathlib import Path

import cv2
import numpy as np
import pytest

SEED = 1337
TUNER_LOG_LEVEL = logging.getLogger("tuner").level


@pytest.fixture(autouse=True)
def seed():
    """Seed Python's and NumPy's global generators before every test, so failures reproduce."""
    random.seed(SEED)
    np.random.seed(SEED)
    return SEED


@pytest.fixture(autouse=True)
def tuner_log_level():
    """The tuner logger at its own level in every test: search.py --quiet, run in this process (a module's fixture
    included), raises it for whatever runs after it."""
    logger = logging.getLogger("tuner")
    logger.setLevel(TUNER_LOG_LEVEL)
    yield
    logger.setLevel(TUNER_LOG_LEVEL)


@pytest.fixture
def write_image():
    """A function write_image(path, image, ext=".png", **params) that encodes with OpenCV and writes bytes.

    `image` is BGR(A) or grayscale as OpenCV expects; `ext` picks the format (".jpg", ".webp", ...),
    independently of the file name, so a PNG can be written under a .jpg name.
    """

    def write(path, image, ext=".png", params=()):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, encoded = cv2.imencode(ext, image, list(params))
        assert ok, f"OpenCV could not encode {ext}"
        path.write_bytes(encoded.tobytes())
        return path

    return write


@pytest.fixture
def image_folder(tmp_path, write_image):
    """An image folder with 2 classes (cat, dog) x 8 random 32x32 colour PNGs: tmp_path/images."""
    rng = np.random.default_rng(SEED)
    root = tmp_path / "images"
    for name in ("cat", "dog"):
        for index in range(8):
            write_image(root / name / f"{name}{index}.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return root


@pytest.fixture
def in_tmp_cwd(tmp_path, monkeypatch):
    """Run the test from tmp_path, so default relative paths (data/sample, data/prepared) land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory):
    """The built-in sample written once per session (2 x 1,000 PNGs); tests must not change it."""
    from tuner.data.sample import write_sample

    return write_sample(tmp_path_factory.mktemp("sample") / "sample")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The run directory of a finished tiny grid search (see tests.helpers.tiny_run); tests must not change it."""
    from tests.helpers import tiny_run

    return tiny_run(tmp_path_factory)[1]


@pytest.fixture
def run_copy(run, tmp_path):
    """A copy of the tiny run for a test that changes it."""
    from tests.helpers import copy_run

    return copy_run(run, tmp_path)


MODERN_PICK = {"conv_layers": 2, "nodes": 8, "dense_layers": 0, "filters": "double", "batch_norm": True, "head": "gap",
               "dropout": 0.0, "learning_rate": 0.01, "augment": "off"}


@pytest.fixture(scope="module")
def modern_model(tmp_path_factory):
    """(dataset, a trained batch-norm + doubling + global-average-pooling model of the modern space, its model folder).

    The folder holds model.keras and metadata.json as report.py writes them, so predict.py can load it.
    """
    import keras

    from tests.tiny_data import write_tiny_prepared
    from tuner.data.cache import load_prepared
    from tuner.model.hypermodel import CNNHyperModel, build_model
    from tuner.model.pipeline import search_pipelines
    from tuner.model.training import fit

    base = tmp_path_factory.mktemp("modern")
    dataset = load_prepared(write_tiny_prepared(base / "prepared", side=16, per_class=(20, 8, 8)))
    keras.utils.set_random_seed(0)
    model = build_model(CNNHyperModel((16, 16, 1), 2, space="modern", decay_steps=6), MODERN_PICK)
    train, validation = search_pipelines(dataset, 16, 0)
    fit(model, train, validation, epochs=2, callbacks=[])
    folder = base / "best"
    folder.mkdir()
    model.save(folder / "model.keras")
    (folder / "metadata.json").write_text(json.dumps({"class_names": list(dataset.class_names), "img_size": 16,
                                                      "color": "grayscale", "hyperparameters": MODERN_PICK}))
    return dataset, model, folder
