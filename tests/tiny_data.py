"""Tiny prepared datasets written straight to disk, for tests of the steps after data_prep."""

import numpy as np

from tuner.data import save_prepared


def write_tiny_prepared(directory, side=16, per_class=(24, 8, 8), num_classes=2, channels=1, seed=0):
    """Write a prepared dataset whose classes differ in brightness, so a 1-epoch CNN learns something.

    Returns the directory. `per_class` is (train, validation, test) images per class.
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
    manifest = {"class_names": class_names, "img_size": side, "color": "grayscale" if channels == 1 else "rgb",
                "seed": seed}
    save_prepared(directory, arrays, manifest)
    return directory
