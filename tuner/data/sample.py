"""The built-in sample: Animal-MNIST's 1,000 cats and 1,000 dogs written out once as an ordinary Cat/ Dog/ PNG folder."""

from __future__ import annotations

import gzip
import importlib.resources
import json
import logging
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from tuner.config import DEFAULT_SAMPLE_DIR
from tuner.errors import TunerUsageError
from tuner.files import read_json

logger = logging.getLogger(__name__)

SAMPLE_CLASSES = {2: "Cat", 4: "Dog"}  # Animal-MNIST labels are alphabetical: 2 is Cat, 4 is Dog.
IMAGES_PER_CLASS = 1000  # the package ships exactly 1,000 images per class
MARKER_NAME = ".sample-complete.json"  # written last, so a half-written sample is never taken as complete
_DATA_FILE = "animal_data_version_3.gz"
_LABEL_FILE = "animal_label_version_3.gz"


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The only globals a plain numpy array pickle needs, under both numpy 1 and numpy 2 module names."""
    try:
        from numpy._core import multiarray  # numpy 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return {
        ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds plain numpy arrays and refuses every other global, so a pickle can't run code."""

    _allowed = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only numpy arrays are allowed in this pickle"
            ) from None


def load_array_pickle(stream: BinaryIO) -> np.ndarray:
    """Read one numpy array from a pickle stream with `ArrayUnpickler`.

    Args:
        stream: a binary file object positioned at the pickle.

    Returns:
        The array. Raises pickle.UnpicklingError for anything that is not a plain array.
    """
    result = ArrayUnpickler(stream).load()
    if type(result) is not np.ndarray or result.dtype.hasobject:
        raise pickle.UnpicklingError(f"expected a plain numpy array, found {type(result).__name__}")
    return result


def load_animal_mnist() -> tuple[np.ndarray, np.ndarray]:
    """Animal-MNIST's 10,000 images (uint8, 28x28) and labels, read from the installed package's data files."""
    try:
        folder = importlib.resources.files("animal_mnist") / "data" / "Animal_MNIST"
    except ModuleNotFoundError:
        raise TunerUsageError(
            "the built-in sample needs the animal-mnist package, which is not installed; "
            "run pip install -r requirements.txt, or pass --data-dir DIR with your own images."
        ) from None
    with importlib.resources.as_file(folder / _DATA_FILE) as data_path, gzip.open(data_path, "rb") as stream:
        images = load_array_pickle(stream)
    with importlib.resources.as_file(folder / _LABEL_FILE) as label_path, gzip.open(label_path, "rb") as stream:
        labels = load_array_pickle(stream)
    if images.dtype != np.uint8 or images.ndim != 3 or labels.shape != images.shape[:1]:
        raise ValueError(f"unexpected Animal-MNIST contents: images {images.shape} {images.dtype}, labels {labels.shape}")
    return images, labels


def _is_complete(dest: Path) -> bool:
    try:
        marker = read_json(dest / MARKER_NAME, kind="marker")
    except ValueError:  # not a regular file, or past its cap: the sample is written again
        return False
    if not isinstance(marker, dict) or marker.get("classes") != {name: IMAGES_PER_CLASS for name in SAMPLE_CLASSES.values()}:
        return False
    # A user who deleted files by hand gets them back; extra files of their own are left alone.
    return all(
        sum(1 for path in (dest / name).glob("*.png")) >= IMAGES_PER_CLASS for name in SAMPLE_CLASSES.values()
    )


def write_sample(dest: str | Path = DEFAULT_SAMPLE_DIR) -> Path:
    """Write the built-in sample as `dest/Cat/*.png` and `dest/Dog/*.png`, unless a complete copy is already there.

    Args:
        dest: the folder to write (created if missing).

    Returns:
        The folder, ready to be prepared like any user's image folder.
    """
    import cv2  # imported here so that `import tuner.data.sample` stays light

    dest = Path(dest)
    if _is_complete(dest):
        return dest
    images, labels = load_animal_mnist()
    logger.info("Writing the built-in sample (Animal-MNIST, 1,000 cats and 1,000 dogs) to %s as PNG files", dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        (dest / MARKER_NAME).unlink(missing_ok=True)
        for label, name in SAMPLE_CLASSES.items():
            class_dir = dest / name
            class_dir.mkdir(exist_ok=True)
            class_images = images[labels == label]
            if len(class_images) != IMAGES_PER_CLASS:
                raise ValueError(f"Animal-MNIST has {len(class_images)} images of {name}, expected {IMAGES_PER_CLASS}")
            for index, image in enumerate(class_images):
                # Encoding in memory and writing with Python keeps non-ASCII destination paths working everywhere.
                ok, encoded = cv2.imencode(".png", image)
                if not ok:
                    raise ValueError(f"OpenCV could not encode sample image {name} #{index} as PNG")
                (class_dir / f"{name.lower()}_{index:04d}.png").write_bytes(encoded.tobytes())
        marker = {"source": "animal-mnist", "classes": {name: IMAGES_PER_CLASS for name in SAMPLE_CLASSES.values()}}
        (dest / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        raise TunerUsageError(
            f"cannot write the built-in sample to '{dest}' ({error.strerror or error}); "
            f"run from a writable folder, or pass --data-dir DIR with your own images."
        ) from None
    return dest
