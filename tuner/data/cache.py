"""The prepared-dataset cache: dataset.npz (arrays plus an embedded manifest) and manifest.json, written atomically."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tuner.errors import TunerUsageError
from tuner.files import atomic_write, atomic_write_text, check_regular_file, read_json
from tuner.data.images import CHANNELS

logger = logging.getLogger(__name__)

FORMAT_TAG = "cnn-tuner-prepared-dataset"  # tells our cache from any other .npz
FORMAT_VERSION = 1  # bump when the arrays or the preprocessing change; older caches are rebuilt
DATASET_FILE = "dataset.npz"
MANIFEST_FILE = "manifest.json"
SPLITS = ("train", "val", "test")

_ARRAY_KEYS = tuple(f"{kind}_{split}" for split in SPLITS for kind in ("x", "y"))


@dataclass(frozen=True, eq=False)
class PreparedDataset:
    """The prepared splits (x: uint8 (N, H, W, C), channels-last even for grayscale; y: int32 labels) and their manifest."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    manifest: dict[str, Any]

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["class_names"])

    @property
    def img_size(self) -> int:
        return int(self.manifest["img_size"])

    @property
    def color(self) -> str:
        return str(self.manifest["color"])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.img_size, self.img_size, CHANNELS[self.color])

    @property
    def num_classes(self) -> int:
        return len(self.manifest["class_names"])

    @property
    def test_files(self) -> list[str] | None:
        """Each test image's source file (relative to the data folder), aligned with y_test; None if unknown.

        Caches prepared before the manifest recorded them, and datasets saved from arrays, have none.
        """
        files = self.manifest.get("test_files")
        return None if files is None else list(files)


def dataset_identity(dataset: PreparedDataset) -> str:
    """A short hash of the prepared dataset's manifest, so a run notices when its data changed."""
    import hashlib  # here, not at the top: data_prep.py never needs it (see tuner.data.prepare on OpenSSL's cost)

    # test_files is provenance the fingerprint already covers (the source listing and the settings fix it), so leaving
    # it out keeps a run searched before the manifest recorded it resumable after the same folder is prepared again.
    manifest = {key: value for key, value in dataset.manifest.items() if key != "test_files"}
    text = json.dumps(manifest, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class _NotOurs(Exception):
    """dataset.npz exists but is not a readable cache written by this module."""


def _complete_manifest(arrays: dict[str, np.ndarray],
                       manifest: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Check the arrays against the manifest and fill in what can be derived (format tag, split and class counts)."""
    missing = [key for key in ("class_names", "img_size", "color") if key not in manifest]
    if missing or manifest["color"] not in CHANNELS:
        raise ValueError(f"manifest needs class_names, img_size and color (grayscale or rgb); "
                         f"missing or wrong: {missing or 'color'}")
    names, size = manifest["class_names"], manifest["img_size"]
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(name, str) for name in names) \
            or len(set(names)) < len(names):
        raise ValueError("manifest class_names must be a list of at least 2 different names")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 4096:
        raise ValueError(f"manifest img_size must be a whole number of pixels, got {size!r}")
    channels = CHANNELS[manifest["color"]]
    checked = {}
    for split in SPLITS:
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.shape[1:] != (size, size, channels):
            raise ValueError(f"x_{split} must be uint8 of shape (N, {size}, {size}, {channels}), "
                             f"got {getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
        if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu" or y.shape != x.shape[:1]:
            raise ValueError(f"y_{split} must be integer labels of shape ({len(x)},), "
                             f"got {getattr(y, 'dtype', type(y).__name__)} {getattr(y, 'shape', '')}")
        if len(y) and not 0 <= int(y.min()) <= int(y.max()) < len(names):
            raise ValueError(f"y_{split} has labels outside 0..{len(names) - 1}")
        checked[f"x_{split}"], checked[f"y_{split}"] = x, y.astype(np.int32, copy=False)
    per_class = {split: np.bincount(checked[f"y_{split}"], minlength=len(names)) for split in SPLITS}
    derived = {name: {split: int(per_class[split][label]) for split in SPLITS} for label, name in enumerate(names)}
    for name in names:
        derived[name]["kept"] = sum(derived[name].values())
    given = manifest.get("counts", {})
    _check_counts(given, derived, names)
    splits = {split: len(checked[f"y_{split}"]) for split in SPLITS}
    if "splits" in manifest and manifest["splits"] != splits:
        raise ValueError(f"manifest splits {manifest['splits']!r} contradict the arrays' lengths {splits}")
    _check_test_files(manifest.get("test_files"), splits["test"])
    counts = {name: {**derived[name], **given.get(name, {})} for name in names}
    # No timestamp: the same input and settings give the same manifest, byte for byte, so whatever hashes it
    # (search.py's dataset identity) sees no change when an unchanged folder is prepared again.
    return checked, {**manifest, "format": FORMAT_TAG, "version": FORMAT_VERSION, "class_names": names, "img_size": size,
                     "channels": channels, "counts": counts,
                     "splits": splits}


def _check_counts(given: Any, derived: dict[str, dict[str, int]], names: list[str]) -> None:
    """Refuse manifest counts per class that the arrays contradict, or that are not counts (ValueError).

    The split and kept counts must be the arrays' own; data_prep.py's other counts (found, loaded,
    duplicates, mislabelled, skipped per reason) are whole numbers >= 0 that add up: every file
    found was loaded or skipped, and no class keeps more images than it loaded once, in it alone.
    """
    if not isinstance(given, dict) or not all(isinstance(entry, dict) for entry in given.values()):
        raise ValueError("manifest counts must map each class name to its counts")
    if set(given) - set(names):
        raise ValueError(f"manifest counts name classes that are not in class_names: {sorted(set(given) - set(names))}")
    for name, entry in given.items():
        numbers = {key: value for key, value in entry.items() if key != "skipped"}
        skipped = entry.get("skipped", {})
        if not isinstance(skipped, dict) or not all(_is_count(value) for value in [*numbers.values(), *skipped.values()]):
            raise ValueError(f"manifest counts of class {name!r} must be whole numbers >= 0")
        wrong = [key for key, value in derived[name].items() if key in entry and entry[key] != value]
        if wrong:
            shown = ", ".join(f"{key} {entry[key]} (the arrays hold {derived[name][key]})" for key in wrong)
            raise ValueError(f"manifest counts of class {name!r} contradict the arrays: {shown}")
        if "found" in entry and "loaded" in entry and entry["found"] != entry["loaded"] + sum(skipped.values()):
            raise ValueError(f"manifest counts of class {name!r}: found {entry['found']} is not loaded + skipped")
        unique = entry.get("loaded", derived[name]["kept"]) - entry.get("duplicates", 0) - entry.get("mislabelled", 0)
        if unique < derived[name]["kept"]:
            raise ValueError(f"manifest counts of class {name!r}: kept {derived[name]['kept']} exceeds the "
                             f"{unique} distinct images loaded")


def _check_test_files(files: Any, test_images: int) -> None:
    """Refuse test_files that are not one file name per test image (ValueError); absent or None means unknown."""
    if files is None:
        return
    if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
        raise ValueError("manifest test_files must be a list of file names, one per test image")
    if len(files) != test_images:
        raise ValueError(f"manifest test_files must name one file per test image: it names {len(files)}, "
                         f"y_test holds {test_images}")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _write_manifest_file(folder: Path, manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    atomic_write_text(folder / MANIFEST_FILE, text)


def write_prepared(out_dir: str | os.PathLike, arrays: dict[str, np.ndarray], manifest: dict[str, Any]) -> PreparedDataset:
    """Write a prepared dataset atomically, as save_prepared() does, and return it.

    Args:
        out_dir, arrays, manifest: as for save_prepared().

    Returns:
        The dataset as written, with its completed manifest.
    """
    checked, manifest = _complete_manifest(arrays, manifest)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f".{DATASET_FILE}.*.tmp"):  # left by a kill mid-write; a live writer's file is fresh
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > 600:
                stale.unlink()
    embedded = np.frombuffer(json.dumps(manifest, ensure_ascii=False).encode("utf-8"), np.uint8)
    # dataset.npz carries its own manifest, so its rename is the single commit point of the whole cache.
    atomic_write(out / DATASET_FILE, lambda stream: np.savez(stream, manifest_json=embedded, **checked))
    _write_manifest_file(out, manifest)
    return PreparedDataset(**checked, manifest=manifest)


def save_prepared(out_dir: str | os.PathLike, dataset_arrays: dict[str, np.ndarray], manifest: dict[str, Any]) -> None:
    """Write a prepared dataset atomically: a crash at any moment leaves the old cache or the new one, never a mix.

    Args:
        out_dir: the prepared-dataset folder (created if missing).
        dataset_arrays: x_train, y_train, x_val, y_val, x_test, y_test; x uint8 (N, S, S, C), y integer labels.
        manifest: needs at least class_names, img_size and color; the format tag, version, channels,
            per-split totals and per-class split counts are filled in.
    """
    write_prepared(out_dir, dataset_arrays, manifest)


def _read_archive(path: Path, with_arrays: bool) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The manifest (and arrays) inside dataset.npz; raises _NotOurs for anything else. Never unpickles."""
    check_regular_file(path, "dataset")  # a FIFO would block open() and np.load, a device fill the memory
    with open(path, "rb") as stream:
        head = stream.read(4)
    if head[:1] == b"\x80":
        raise _NotOurs("it is a Python pickle, which could run code when loaded")
    if head != b"PK\x03\x04":
        raise _NotOurs("it is not an .npz archive")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "manifest_json" not in archive.files:
                raise _NotOurs("it has no manifest_json entry")
            manifest = json.loads(archive["manifest_json"].tobytes().decode("utf-8"))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_TAG:
                raise _NotOurs("its manifest lacks our format tag")
            arrays = {key: archive[key] for key in _ARRAY_KEYS} if with_arrays else {}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, RecursionError) as error:
        raise _NotOurs(f"it is damaged: {error}") from None
    return manifest, arrays


def load_prepared(directory: str | os.PathLike) -> PreparedDataset:
    """Load a prepared dataset written by `save_prepared` (data_prep.py), refusing anything else.

    Args:
        directory: the folder holding dataset.npz (and manifest.json, rewritten here if missing or stale).

    Returns:
        The dataset. Raises TunerUsageError, saying what to run, if it is missing, foreign or damaged.
    """
    folder = Path(directory)
    if folder.name == DATASET_FILE and folder.is_file():  # the file itself was named: accept it
        folder = folder.parent
    path = folder / DATASET_FILE
    rebuild = f"python data_prep.py --out {folder}"
    if not path.exists():  # a FIFO or a device in its place is refused by name when it is read
        raise TunerUsageError(f"no prepared dataset in '{folder}' ({DATASET_FILE} is missing); run {rebuild} first.")
    try:
        manifest, arrays = _read_archive(path, with_arrays=True)
        if manifest.get("version") != FORMAT_VERSION:
            raise TunerUsageError(f"'{path}' was written by another version of data_prep.py (format "
                                  f"{manifest.get('version')}, expected {FORMAT_VERSION}); rebuild it: {rebuild} --force.")
        arrays, _ = _complete_manifest(arrays, manifest)
    except (_NotOurs, ValueError) as error:
        if isinstance(error, TunerUsageError):
            raise
        raise TunerUsageError(f"'{path}' is not a prepared dataset from data_prep.py ({error}); refusing to load it. "
                              f"Rebuild it: {rebuild} --force.") from None
    try:
        if read_json(folder / MANIFEST_FILE, kind="manifest") == manifest:
            return PreparedDataset(**arrays, manifest=manifest)
    except (OSError, ValueError):
        pass
    try:  # manifest.json is a readable copy; the one inside dataset.npz is authoritative
        _write_manifest_file(folder, manifest)
        logger.info("Rewrote %s from the copy inside %s", folder / MANIFEST_FILE, DATASET_FILE)
    except OSError as error:
        logger.debug("could not rewrite %s: %s", folder / MANIFEST_FILE, error)
    return PreparedDataset(**arrays, manifest=manifest)


def cached_fingerprint(out: Path) -> str | None:
    """The source fingerprint recorded in the cache in `out`, to tell whether it can be reused.

    Args:
        out: the prepared-dataset folder.

    Returns:
        The fingerprint, or None if there is no cache or it has another format version.
        Raises TunerUsageError if dataset.npz is not a cache written by this module.
    """
    path = out / DATASET_FILE
    if not path.exists():
        return None
    try:
        manifest, _ = _read_archive(path, with_arrays=False)
    except _NotOurs as error:
        raise TunerUsageError(f"'{path}' is not a prepared dataset from data_prep.py ({error}); "
                              f"move it away or pass --force to replace it.") from None
    return manifest.get("fingerprint") if manifest.get("version") == FORMAT_VERSION else None
