"""Tiny images and prepared datasets generated for tests, and a quiet prepare() of an image folder."""

import cv2
import numpy as np

from tuner.data.cache import save_prepared
from tuner.config import PrepSettings
from tuner.data.prepare import prepare_dataset


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
    """data_prep.py's work on an image folder, without progress bar: (dataset, reused)."""
    settings = PrepSettings(data_dir=str(root), out=str(out), quiet=True, **overrides)
    return prepare_dataset(settings, progress=False)


def all_arrays(dataset):
    return [getattr(dataset, f"{kind}_{split}") for split in ("train", "val", "test") for kind in ("x", "y")]


def write_tiny_prepared(directory, side=16, per_class=(24, 8, 8), num_classes=2, channels=1, seed=0):
    """Write a prepared dataset whose classes differ in brightness, so a 1-epoch CNN learns something.

    Returns the directory. `per_class` is (train, validation, test) images per class; the manifest's
    test_files name each test image "classK/testNNN.png" after its class and row.
    """
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in zip(("train", "val", "test"), per_class):
        labels = np.repeat(np.arange(num_classes, dtype=np.int32), count)
        base = (labels * (200 // max(num_classes - 1, 1))).astype(np.int32)
        noise = rng.integers(0, 50, size=(len(labels), side, side, channels))
        arrays[f"x_{split}"] = np.clip(base[:, None, None, None] + noise, 0, 255).astype(np.uint8)
        arrays[f"y_{split}"] = labels
    class_names = [f"class{index}" for index in range(num_classes)]
    # Names as data_prep.py records them (class folder/file), so a report can name the winner's mistakes.
    test_files = [f"{class_names[label]}/test{row:03d}.png" for row, label in enumerate(arrays["y_test"])]
    manifest = {"class_names": class_names, "img_size": side, "color": "grayscale" if channels == 1 else "rgb",
                "seed": seed, "test_files": test_files}
    save_prepared(directory, arrays, manifest)
    return directory
