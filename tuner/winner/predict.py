"""Classify image files with the saved winner, decoding them exactly as data_prep did."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from tuner.data.images import CHANNELS
from tuner.config import COLOR_MODES, DEFAULT_RUNS_DIR, PREDICT_FORMATS
from tuner.errors import TunerUsageError
from tuner.files import check_regular_file, read_json
from tuner.model.head import Head, decide
from tuner.names import as_text, for_terminal, tsv_cell
from tuner.rundir import FLOAT_FILE, INT8_FILE, METADATA_FILE, MODEL_FILE, latest_run

log = logging.getLogger(__name__)

# predict.py's exit status when some files were classified and others could not be read. Not 1,
# which every script keeps for an unexpected failure, and not 2, which means nothing could be done.
SOME_SKIPPED = 3
# The file each runtime loads from a saved winner's folder.
RUNTIME_FILES = {"keras": MODEL_FILE, "litert": FLOAT_FILE, "litert-int8": INT8_FILE}


@dataclass(frozen=True)
class Prediction:
    """One classified image: the predicted label and the model's probability for it."""

    path: str
    label: str
    probability: float


def default_model_dir() -> Path:
    """RUN/best of the most recent run under runs/."""
    try:
        return latest_run().best
    except TunerUsageError:
        raise TunerUsageError(
            f"found no run under '{DEFAULT_RUNS_DIR}/' to take the model from; run python search.py and "
            f"python report.py first, or pass --model RUN/best."
        ) from None


def find_images(paths: Sequence[str]) -> list[Path]:
    """The files to classify: each file as given, and every file under each folder (recursively, sorted).

    Hidden files (names starting with a dot) inside folders are left out. A path that does not
    exist is bad input, checked before any work starts.

    Raises:
        TunerUsageError: no path given, or a path that does not exist.
    """
    if not paths:
        raise TunerUsageError("no images given; pass one or more image files or folders, e.g. python predict.py photo.jpg.")
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            # Everything but folders: a FIFO or a broken link is then skipped with its reason, not left out unseen.
            files.extend(sorted(item for item in path.rglob("*") if not item.is_dir()
                                and not any(part.startswith(".") for part in item.relative_to(path).parts)))
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise TunerUsageError(f"'{given}' is not a regular file (a FIFO, socket or device); pass image files or folders.")
        else:
            raise TunerUsageError(f"'{given}' does not exist; pass image files or folders that exist.")
    if not files:
        raise TunerUsageError(f"found no files in {', '.join(repr(str(item)) for item in paths)}; pass image files or folders holding some.")
    return files


def metadata_problem(metadata: Any) -> str | None:
    """What is wrong with metadata.json's contents for classifying images, or None."""
    if not isinstance(metadata, dict):
        return "not a JSON object"
    names = metadata.get("class_names")
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(name, str) for name in names) \
            or len(set(names)) < len(names):
        return "class_names must be a list of at least 2 different names"
    size = metadata.get("img_size")
    if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 512:
        return "img_size must be a whole number of pixels from 8 to 512"
    if metadata.get("color") not in COLOR_MODES:
        return f"color must be one of {', '.join(COLOR_MODES)}"
    return None


@dataclass
class Classifier:
    """The saved winner with what it needs to read new images: class names, image size and colour mode.

    Attributes:
        model: the Keras model (it rescales uint8 input itself), or a litert.LiteRTModel of its export.
        metadata: the contents of metadata.json.
        directory: the folder it was loaded from.
        runtime: keras, litert or litert-int8 (config.RUNTIMES).
        classified: images classified so far by classify().
        skipped: (path, reason) of images that could not be read.
    """

    model: Any
    metadata: dict[str, Any]
    directory: Path
    runtime: str = "keras"
    classified: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def class_names(self) -> list[str]:
        return list(self.metadata["class_names"])

    @classmethod
    def load(cls, model_dir: str | Path | None = None, runtime: str = "keras") -> Classifier:
        """Load metadata.json and the model from a folder report.py wrote.

        With runtime keras, model.keras is loaded with Keras' safe mode; with litert (litert-int8),
        model.tflite (model_int8.tflite) is loaded with the LiteRT interpreter, and TensorFlow is
        never imported.

        Args:
            model_dir: the folder; None means RUN/best of the most recent run.
            runtime: one of config.RUNTIMES.

        Raises:
            TunerUsageError: the folder, its metadata or its model is missing or unusable.
        """
        if runtime not in RUNTIME_FILES:
            raise TunerUsageError(f"runtime must be one of {', '.join(RUNTIME_FILES)}, got {runtime!r}.")
        directory = Path(model_dir) if model_dir is not None else default_model_dir()
        metadata_path = directory / METADATA_FILE
        if not directory.is_dir():
            raise TunerUsageError(f"model folder '{directory}' does not exist; run python report.py first or pass --model RUN/best.")
        # Bounded: a FIFO, a device or a huge file in its place is an error naming it, never a hang or a full memory.
        metadata = read_json(metadata_path, kind="metadata")
        if metadata is None and not os.path.lexists(metadata_path):
            inside = directory / "best"
            hint = (f"pass --model {inside}" if (inside / METADATA_FILE).is_file()
                    else "pass the RUN/best folder report.py wrote, or run python report.py to write one")
            raise TunerUsageError(f"'{directory}' has no readable {METADATA_FILE}, so it is not a saved winner; {hint}.")
        problem = "not valid JSON" if metadata is None else metadata_problem(metadata)
        if problem:
            raise TunerUsageError(f"'{metadata_path}' is damaged ({problem}); run python report.py again to rewrite it.")
        model_path = directory / RUNTIME_FILES[runtime]
        try:
            check_regular_file(model_path, "model")  # Keras and LiteRT would block on a FIFO or read a device
        except FileNotFoundError:
            how = {"keras": "python report.py", "litert": "python report.py (without --no-export)",
                   "litert-int8": "python report.py --int8"}[runtime]
            raise TunerUsageError(f"'{directory}' has {METADATA_FILE} but no {model_path.name}; run {how} to write it.") from None
        model, model_input, units = _load_keras(model_path) if runtime == "keras" else _load_litert(model_path)
        classes = len(metadata["class_names"])
        expected_input = (metadata["img_size"], metadata["img_size"], CHANNELS[metadata["color"]])
        if units != Head(classes).units or model_input != expected_input:
            raise TunerUsageError(
                f"'{model_path}' takes {model_input} images and has {units} output unit(s), but {METADATA_FILE} describes "
                f"{expected_input} images of {classes} classes; run python report.py again so both come from the same run."
            )
        return cls(model=model, metadata=metadata, directory=directory, runtime=runtime)

    def classify(self, files: Iterable[str | Path], batch_size: int = 64,
                 on_skip: Callable[[str, str], None] | None = None) -> Iterator[Prediction]:
        """Classify images in batches, yielding each prediction as soon as its batch is done.

        Args:
            files: the image files, in output order.
            batch_size: images per forward pass.
            on_skip: called with (path, reason) for each file that cannot be decoded (default:
                a logged warning); such files are recorded in `skipped` and left out.
        """
        from tuner.data.images import decode_image

        batch: list[tuple[str, np.ndarray]] = []
        for path in files:
            image, reason = decode_image(str(path), int(self.metadata["img_size"]), str(self.metadata["color"]))
            if image is None:
                self.skipped.append((str(path), str(reason)))
                if on_skip is not None:
                    on_skip(str(path), str(reason))
                else:
                    log.warning("skipped %s: %s", path, reason)
                continue
            batch.append((str(path), image))
            if len(batch) >= batch_size:
                yield from self._classify_batch(batch)
                batch = []
        if batch:
            yield from self._classify_batch(batch)

    def _classify_batch(self, batch: list[tuple[str, np.ndarray]]) -> Iterator[Prediction]:
        images = np.stack([image for _, image in batch])
        if self.runtime == "keras":  # Keras' predict would split the batch into its default 32
            scores = self.model.predict(images, batch_size=len(images), verbose=0)
        else:
            scores = self.model.predict(images)
        indices, probabilities = decide(scores)
        names = self.class_names
        for (path, _), index, probability in zip(batch, indices, probabilities):
            self.classified += 1
            yield Prediction(path, names[int(index)], float(probability))


def _load_keras(model_path: Path) -> tuple[Any, tuple[int, ...], int]:
    """model.keras loaded in safe mode, with its input shape (without the batch) and output units."""
    import keras  # TensorFlow loads only once the inputs are known to be usable.

    try:
        # Safe mode refuses Lambda layers and other deserialised Python code, so a model file cannot run code.
        model = keras.saving.load_model(model_path, safe_mode=True)
    except Exception as error:  # Keras raises ValueError, zipfile/OSError or others for what is not its archive
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise TunerUsageError(f"'{model_path}' cannot be loaded as a Keras model in safe mode ({reason}); "
                              f"run python report.py again to save the winner afresh.") from None
    return model, tuple(model.input_shape[1:]), model.output_shape[-1]


def _load_litert(model_path: Path) -> tuple[Any, tuple[int, ...], int]:
    """A .tflite export opened with the LiteRT interpreter, with its input shape and output units."""
    from tuner.winner.litert import LiteRTModel

    model = LiteRTModel.load(model_path)
    return model, model.input_shape, model.units


def render(predictions: Iterable[Prediction], fmt: str) -> Iterator[str]:
    """Text chunks of the output document, one per prediction, so lines appear while batches run.

    Args:
        predictions: what Classifier.classify yields.
        fmt: tsv (path<TAB>label<TAB>probability, no header), csv (with a header) or json (a list of objects).

    File and class names are data: bytes that are not UTF-8 become \\xNN; TSV escapes backslashes,
    tabs, newlines, other control characters and the bidi controls that reorder a line (\\\\, \\t, \\n,
    \\xNN, \\u202e), CSV escapes the same characters and quotes as CSV does, and JSON escapes as JSON
    does (every non-ASCII character as \\uNNNN).
    """
    if fmt not in PREDICT_FORMATS:
        raise TunerUsageError(f"format must be one of {', '.join(PREDICT_FORMATS)}, got {fmt!r}.")
    if fmt == "json":
        yield "["
        for index, item in enumerate(predictions):
            entry = json.dumps({"path": as_text(item.path), "label": item.label, "probability": item.probability})
            yield ("," if index else "") + "\n  " + entry
        yield "\n]\n"
        return
    if fmt == "csv":
        yield "path,label,probability\n"
    for item in predictions:
        if fmt == "csv":
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerow([for_terminal(item.path), for_terminal(item.label),
                                                              f"{item.probability:.6f}"])
            yield buffer.getvalue()
        else:
            yield f"{tsv_cell(item.path)}\t{tsv_cell(item.label)}\t{item.probability:.6f}\n"


def exit_status(classifier: Classifier) -> int:
    """0 if every image was classified, SOME_SKIPPED (3) if some were skipped.

    Raises:
        TunerUsageError: none could be classified (exit 2).
    """
    if classifier.classified == 0:
        count = len(classifier.skipped)
        raise TunerUsageError(
            f"none of the {count} file(s) could be read as an image (e.g. {classifier.skipped[0][0]}: "
            f"{classifier.skipped[0][1]}); pass image files such as JPEG or PNG."
            if count else "no images to classify; pass image files or folders holding some."
        )
    return SOME_SKIPPED if classifier.skipped else 0
