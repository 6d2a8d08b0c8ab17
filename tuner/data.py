"""Image folder -> cleaned, deduplicated, balanced, split uint8 arrays, cached as dataset.npz + manifest.json."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import multiprocessing
import os
import random
import stat
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

# OpenCV (cv2) is imported inside the decoding functions: a parent process that only hands files to
# workers then never spends the time and memory to load it.
import numpy as np

from tuner.config import DEFAULT_PREPARED_DIR, DEFAULT_SAMPLE_DIR, PrepSettings
from tuner.errors import TunerUsageError

try:  # CPython's built-in SHA-256, as the standard library's random.py does: hashlib would map OpenSSL's
    from _sha2 import sha256  # libcrypto (3.5 MB) into every run just for the source fingerprint. 3.12+
except ImportError:
    try:
        from _sha256 import sha256  # Python 3.10 and 3.11
    except ImportError:  # pragma: no cover - interpreters built without it
        from hashlib import sha256

logger = logging.getLogger(__name__)

FORMAT_TAG = "cnn-tuner-prepared-dataset"  # tells our cache from any other .npz
FORMAT_VERSION = 1  # bump when the arrays or the preprocessing change; older caches are rebuilt
DATASET_FILE = "dataset.npz"
MANIFEST_FILE = "manifest.json"
SPLITS = ("train", "val", "test")
DEFAULT_IMG_SIZE = 50  # the tutorial's size for a user's own photos
SAMPLE_IMG_SIZE = 28  # Animal-MNIST's native size: upscaling adds no information
CHANNELS = {"grayscale": 1, "rgb": 3}
_MIN_FILES_FOR_POOL = 64  # below this, starting processes costs more than it saves

# ---------------------------------------------------------------------------------------------- decoding one file

_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
          (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"))
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers carry the image size
_REDUCED_FLAGS = {  # OpenCV's DCT-scaled JPEG decoding (libjpeg skips most of the work at 1/2, 1/4, 1/8 size)
    "grayscale": ((8, "IMREAD_REDUCED_GRAYSCALE_8"), (4, "IMREAD_REDUCED_GRAYSCALE_4"),
                  (2, "IMREAD_REDUCED_GRAYSCALE_2"), (1, "IMREAD_GRAYSCALE")),
    "rgb": ((8, "IMREAD_REDUCED_COLOR_8"), (4, "IMREAD_REDUCED_COLOR_4"), (2, "IMREAD_REDUCED_COLOR_2"), (1, "IMREAD_COLOR")),
}
_stderr_lock = threading.Lock()
_stderr_state = {"depth": 0, "saved": -1, "silenced": False}


def _sniff(head: bytes) -> str | None:
    """The image format named by a file's first bytes, or None."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC"
    return None


def _jpeg_geometry(data: bytes) -> tuple[int, int, int] | None:
    """(height, width, offset of the first scan) read from a JPEG's markers, or None if they stop before the scan."""
    pos, size, end = 2, None, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:  # stray bytes between segments: libjpeg skips them too
            pos += 1
            continue
        marker = data[pos + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:  # fill byte or a marker without a length
            pos += 1 if marker == 0xFF else 2
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker in _SOF_MARKERS and pos + 9 <= end:
            size = (int.from_bytes(data[pos + 5:pos + 7], "big"), int.from_bytes(data[pos + 7:pos + 9], "big"))
        if marker == 0xDA:
            return (size[0], size[1], pos + 2 + length) if size else None
        if marker == 0xD9:
            return None
        pos += 2 + length
    return None


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null meanwhile: libjpeg prints its warnings there, past Python and OpenCV's log level."""
    if _stderr_state["silenced"]:
        yield
        return
    with _stderr_lock:  # nested and concurrent users share one redirection, so stderr always comes back
        if _stderr_state["depth"] == 0:
            try:
                sys.stderr.flush()
                saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
                _stderr_state["saved"] = saved
            except (OSError, ValueError, AttributeError):
                _stderr_state["saved"] = -1
        _stderr_state["depth"] += 1
    try:
        yield
    finally:
        with _stderr_lock:
            _stderr_state["depth"] -= 1
            if _stderr_state["depth"] == 0 and _stderr_state["saved"] >= 0:
                os.dup2(_stderr_state["saved"], 2)
                os.close(_stderr_state["saved"])
                _stderr_state["saved"] = -1


def _to_uint8(image: np.ndarray) -> np.ndarray | None:
    import cv2

    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:  # 16-bit PNG/TIFF: 65535 -> 255, rounded
        return cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)
    if image.dtype.kind == "f":  # floating-point TIFF, 0..1
        return cv2.convertScaleAbs(np.clip(image, 0.0, 1.0), alpha=255.0)
    return None


def _flatten_alpha(image: np.ndarray) -> np.ndarray:
    """Composite a transparent image onto white, as a browser shows it on a page; opaque alpha is just dropped."""
    if image.ndim == 3 and image.shape[2] in (2, 4):
        color, alpha = image[..., :-1], image[..., -1:]
        if alpha.min() < 255:
            alpha = alpha.astype(np.uint16)  # color*alpha + 255*(255-alpha) <= 65025 fits in uint16
            image = ((color * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
        else:
            image = color
    return image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image


def _decode_bytes(data: bytes, kind: str, img_size: int, color: str) -> tuple[np.ndarray | None, str | None]:
    import cv2

    buffer = np.frombuffer(data, np.uint8)
    if kind == "JPEG":
        geometry = _jpeg_geometry(data)
        if geometry is None:
            return None, "truncated JPEG (cut off before the image data)"
        height, width, scan_start = geometry
        if data.rfind(b"\xff\xd9", scan_start) < 0:  # no end-of-image marker after the scan: the file was cut short
            return None, "truncated JPEG (no end marker)"
        flag = getattr(cv2, next(name for factor, name in _REDUCED_FLAGS[color]
                                 if factor == 1 or -(-min(height, width) // factor) >= img_size))
        with _quiet_stderr():
            image = cv2.imdecode(buffer, flag)
        if image is None:
            return None, "undecodable JPEG (corrupt data)"
    else:
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)  # keeps alpha and 16 bits, which the flags would mangle
        if image is None:
            return None, f"undecodable {kind} (corrupt or truncated)"
        converted = _to_uint8(image)
        if converted is None:
            return None, f"unsupported {kind} pixel type {image.dtype}"
        image = _flatten_alpha(converted)
        if color == "grayscale" and image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.shape[:2] != (img_size, img_size):
        shrinking = image.shape[0] >= img_size and image.shape[1] >= img_size
        image = cv2.resize(image, (img_size, img_size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    if color == "rgb":
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image[..., None] if image.ndim == 2 else image), None


def decode_image(path: str | os.PathLike, img_size: int, color: str) -> tuple[np.ndarray | None, str | None]:
    """Load one image file exactly as training and prediction both see it.

    The format is recognised from the file's first bytes, not its name. Large JPEGs are decoded at
    1/2, 1/4 or 1/8 size when that still covers `img_size`; transparent images go onto white;
    16-bit images are scaled to 8 bits; then the image is resized to a square with INTER_AREA.

    Args:
        path: the image file.
        img_size: side of the square result, in pixels.
        color: "grayscale" (1 channel) or "rgb" (3 channels, RGB order).

    Returns:
        (uint8 array of shape (img_size, img_size, channels), None), or (None, why the file was skipped).
    """
    import cv2

    try:
        # O_NONBLOCK so that a named pipe in the folder can't hang us; it changes nothing for regular files.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(descriptor, "rb") as stream:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                return None, "not a regular file"
            head = stream.read(32)
            if not head:
                return None, "empty file"
            kind = _sniff(head)
            if kind is None:
                return None, "not an image (unknown format)"
            if kind == "HEIC":
                return None, "HEIC image (OpenCV can't read it; convert it to JPEG)"
            data = head + stream.read()
    except OSError as error:
        return None, f"unreadable ({error.strerror or error})"
    try:
        return _decode_bytes(data, kind, img_size, color)
    except cv2.error:
        return None, f"undecodable {kind} (OpenCV error)"


# ---------------------------------------------------------------------------------------------- decoding a folder

def _init_worker() -> None:
    # No cv2.setNumThreads(1) here: in a forked child of a process whose OpenCV thread pool has run, it
    # deadlocks destroying the pool's inherited condition variables. The images are small anyway.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # libjpeg warnings from thousands of files would flood the terminal
    os.close(devnull)
    _stderr_state["silenced"] = True


def _decode_batch(task: tuple[int, list[str], int, str]) -> tuple[int, np.ndarray, list[str | None]]:
    """Decode a batch of files; only the small uint8 images and the reasons for skipped files travel back."""
    start, paths, img_size, color = task
    images, reasons = [], []
    for path in paths:
        image, reason = decode_image(path, img_size, color)
        reasons.append(reason)
        if image is not None:
            images.append(image)
    shape = (len(images), img_size, img_size, CHANNELS[color])
    return start, (np.stack(images) if images else np.empty(shape, np.uint8)), reasons


class _ProgressBar:
    """A one-line progress bar on stderr, drawn only on a terminal and at most ten times a second."""

    def __init__(self, total: int, enabled: bool, label: str) -> None:
        self.total, self.done, self.label, self._last = total, 0, label, 0.0
        self.enabled = enabled and total > 0 and sys.stderr.isatty()

    def update(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.enabled and (now - self._last >= 0.1 or self.done >= self.total):
            self._last = now
            filled = 30 * self.done // self.total
            sys.stderr.write(f"\r{self.label} {self.done:>{len(str(self.total))}}/{self.total} "
                             f"[{'#' * filled}{'.' * (30 - filled)}] {100 * self.done // self.total:3d}%")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _resolve_workers(requested: int) -> int:
    if requested:
        return requested
    try:
        return len(os.sched_getaffinity(0))  # respects CPU pinning and container limits
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def _start_method() -> str:
    # fork starts workers in milliseconds, but is unsafe once TensorFlow's threads exist (search.py).
    if "fork" in multiprocessing.get_all_start_methods() and "tensorflow" not in sys.modules:
        return "fork"
    return "spawn"


def _decode_here(task: tuple[int, list[str], int, str]) -> tuple[int, np.ndarray, list[str | None]]:
    with _quiet_stderr():
        return _decode_batch(task)


def _run_batches(tasks: list[tuple[int, list[str], int, str]], workers: int, absorb: Any) -> None:
    """Decode every batch with `workers` processes in all: this one plus workers - 1 started for the purpose.

    This process decodes too, rather than waiting: one process fewer to start and to hold in memory.
    It takes batches from the back of the queue while the others take them from the front.
    """
    if workers == 1:
        for task in tasks:
            absorb(_decode_here(task))
        return
    method = _start_method()
    forking = method == "fork"
    if forking:
        # Load OpenCV before forking so the workers share its pages instead of each loading a copy, and
        # freeze the heap so that their garbage collector doesn't copy it page by page either.
        import cv2  # noqa: F401
        gc.freeze()
    try:
        pool = ProcessPoolExecutor(workers - 1, mp_context=multiprocessing.get_context(method), initializer=_init_worker)
        futures = [pool.submit(_decode_batch, task) for task in tasks]  # with fork, the workers start here
    finally:
        if forking:
            gc.unfreeze()
    try:
        outstanding = set(futures)
        for task, future in zip(reversed(tasks), reversed(futures)):
            if not future.cancel():  # a worker has it, and so every batch before it
                break
            outstanding.discard(future)
            absorb(_decode_here(task))
            for finished in [item for item in outstanding if item.done()]:
                outstanding.discard(finished)
                absorb(finished.result())
        for future in as_completed(outstanding):
            absorb(future.result())
    except BaseException as error:  # Ctrl-C or a failure: drop the queued batches instead of finishing them
        pool.shutdown(wait=False, cancel_futures=True)
        if isinstance(error, BrokenProcessPool):
            raise RuntimeError("a decoding process died (did OpenCV crash on a file?); "
                               "rerun with --workers 1 to see which file") from error
        raise
    pool.shutdown()


@dataclass
class _Decoded:
    images: np.ndarray  # (loaded, S, S, C) uint8, in the order the batches finished
    rows: np.ndarray  # file index -> row in `images`, or -1 if skipped
    reasons: list[str | None]


def _decode_all(paths: list[str], img_size: int, color: str, workers: int, progress: bool) -> _Decoded:
    total = len(paths)
    images = np.empty((total, img_size, img_size, CHANNELS[color]), np.uint8)
    decoded = _Decoded(images, np.full(total, -1, np.int64), [None] * total)
    loaded = 0
    workers = min(_resolve_workers(workers), max(1, total // 16))
    if total < _MIN_FILES_FOR_POOL:
        workers = 1
    batch = max(8, min(256, -(-total // (workers * 8))))  # ~8 batches per worker: small scheduling cost, even finish
    tasks = [(start, paths[start:start + batch], img_size, color) for start in range(0, total, batch)]
    bar = _ProgressBar(total, progress, f"decoding {total:,} files with {workers} process{'es' if workers > 1 else ''}")

    def absorb(result: tuple[int, np.ndarray, list[str | None]]) -> None:
        nonlocal loaded
        start, batch_images, reasons = result
        ok = [start + offset for offset, reason in enumerate(reasons) if reason is None]
        images[loaded:loaded + len(ok)] = batch_images
        decoded.rows[ok] = np.arange(loaded, loaded + len(ok))
        decoded.reasons[start:start + len(reasons)] = reasons
        loaded += len(ok)
        bar.update(len(reasons))

    try:
        _run_batches(tasks, workers, absorb)
    finally:
        bar.close()
    # Rows are in completion order; everything downstream goes through `rows`, so scheduling never changes results.
    decoded.images = images[:loaded]
    return decoded


# ---------------------------------------------------------------------------------------------- the source folder

@dataclass
class _Source:
    root: Path
    builtin: bool
    class_names: list[str]
    labels: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # POSIX paths relative to root, sorted within each class
    fingerprint: str = ""


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _find_classes(root: Path) -> list[str]:
    hint = "one subfolder per class (e.g. PetImages/ with Cat/ and Dog/)"
    if not root.exists():
        raise TunerUsageError(f"data folder '{root}' does not exist; pass --data-dir with a folder holding {hint}.")
    if not root.is_dir():
        raise TunerUsageError(f"--data-dir '{root}' is a file, not a folder; pass the folder holding {hint}.")
    with os.scandir(root) as entries:
        names = sorted(entry.name for entry in entries if entry.is_dir() and not _hidden(entry.name))
    if len(names) < 2:
        found = f"{len(names)} class folder{'' if len(names) == 1 else 's'}" + (f" ({names[0]})" if names else "")
        raise TunerUsageError(f"data folder '{root}' has {found}; need at least 2, {hint}.")
    return names


def _scan(root: Path, builtin: bool, class_names: list[str], output_key: dict[str, Any]) -> _Source:
    """List every file under each class folder and fingerprint the listing plus the settings that shape the output."""
    source = _Source(root, builtin, class_names)
    digest = sha256(json.dumps({**output_key, "data_dir": str(root.resolve()), "format": FORMAT_VERSION},
                               sort_keys=True).encode())
    prefix = len(str(root)) + 1
    for label, name in enumerate(source.class_names):
        for folder, subfolders, filenames in os.walk(os.path.join(str(root), name)):  # keeps "./" so prefix fits
            subfolders[:] = sorted(sub for sub in subfolders if not _hidden(sub))
            for filename in sorted(filenames):
                path = os.path.join(folder, filename)
                try:
                    info = os.stat(path)
                except OSError:  # a broken link; decoding will report it
                    info = os.lstat(path)
                relative = path[prefix:].replace(os.sep, "/")
                source.labels.append(label)
                source.files.append(relative)
                digest.update(f"{label}\0{relative}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    source.fingerprint = digest.hexdigest()
    return source


def _check_output(out: Path, root: Path) -> None:
    if out.exists() and not out.is_dir():
        raise TunerUsageError(f"--out '{out}' is a file; pass a folder for the prepared dataset (default {DEFAULT_PREPARED_DIR}).")
    if out.resolve().is_relative_to(root.resolve()):
        raise TunerUsageError(f"--out '{out}' is inside the data folder '{root}', where it would be read as a class; "
                              f"pass an --out outside it.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise TunerUsageError(f"cannot write to output folder '{out}' ({error.strerror or error}); "
                              f"pass a writable --out.") from None


# ---------------------------------------------------------------------------------------------- cleaning and splitting

def _group_identical(decoded: _Decoded) -> list[list[int]]:
    """Group the loaded files by identical pixels (file indices, in file order, groups ordered by first file).

    A 64-bit hash narrows the search and a byte comparison decides, so a hash collision can't merge two images.
    """
    buckets: dict[int, list[list[int]]] = defaultdict(list)
    groups: list[list[int]] = []
    for index in np.flatnonzero(decoded.rows >= 0).tolist():
        pixels = decoded.images[decoded.rows[index]]
        candidates = buckets[hash(pixels.tobytes())]
        for group in candidates:
            if np.array_equal(decoded.images[decoded.rows[group[0]]], pixels):
                group.append(index)
                break
        else:
            candidates.append([index])
            groups.append(candidates[-1])
    return groups


def _build(source: _Source, decoded: _Decoded, img_size: int,
           settings: PrepSettings) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Drop duplicates, balance and split; returns the arrays and the manifest describing every decision."""
    names, labels, files = source.class_names, source.labels, source.files
    counts: dict[str, dict[str, Any]] = {
        name: {"found": 0, "loaded": 0, "skipped": Counter(), "duplicates": 0, "mislabelled": 0} for name in names}
    skipped, identical = [], _group_identical(decoded)
    for index, (label, reason) in enumerate(zip(labels, decoded.reasons)):
        entry = counts[names[label]]
        entry["found"] += 1
        if reason is None:
            entry["loaded"] += 1
        else:
            entry["skipped"][reason] += 1
            skipped.append({"file": files[index], "reason": reason})
    # Same pixels under two classes: no way to tell which label is right, so every copy goes.
    # Same pixels twice in one class: keep the first, so no image can sit in both train and test.
    unique: list[list[int]] = [[] for _ in names]
    duplicates, mislabelled = [], []
    for group in identical:
        if len({labels[index] for index in group}) > 1:
            mislabelled.append({"files": [files[index] for index in group]})
            for index in group:
                counts[names[labels[index]]]["mislabelled"] += 1
            continue
        unique[labels[group[0]]].append(group[0])
        counts[names[labels[group[0]]]]["duplicates"] += len(group) - 1
        duplicates += [{"file": files[index], "same_as": files[group[0]]} for index in group[1:]]
    for name, indices in zip(names, unique):
        if not indices:
            entry = counts[name]
            reasons = ", ".join(f"{count} {reason}" for reason, count in entry["skipped"].most_common()) or "none skipped"
            raise TunerUsageError(
                f"class folder '{source.root / name}' has no usable image ({entry['found']} files; {reasons}; "
                f"{entry['mislabelled']} also in another class); add images to it or remove the folder.")

    # Python's own generator: numpy.random would cost 15 ms and 6 MB to import for a few shuffles.
    rng = random.Random(settings.seed)
    keep = None if settings.no_balance else min(map(len, unique))  # undersample to the smallest class
    parts: dict[str, list[int]] = {split: [] for split in SPLITS}
    for name, indices in zip(names, unique):
        chosen = rng.sample(indices, len(indices))[:keep]
        total = len(chosen)
        n_val, n_test = int(total * settings.val_fraction + 0.5), int(total * settings.test_fraction + 0.5)
        n_train = total - n_val - n_test
        if min(n_train, n_val, n_test) < 1:
            raise TunerUsageError(
                f"class '{name}' has {total} usable images, too few for --val-fraction {settings.val_fraction} and "
                f"--test-fraction {settings.test_fraction} (train/val/test would get {n_train}/{n_val}/{n_test}); "
                f"each split needs at least 1 image per class: add images or change the fractions.")
        parts["train"] += chosen[:n_train]
        parts["val"] += chosen[n_train:n_train + n_val]
        parts["test"] += chosen[n_train + n_val:]
        counts[name].update(kept=total, train=n_train, val=n_val, test=n_test)

    all_labels = np.asarray(labels, np.int32)
    arrays = {}
    for split in SPLITS:
        rng.shuffle(parts[split])  # mix the classes within each split
        indices = np.asarray(parts[split], np.int64)
        arrays[f"x_{split}"] = decoded.images[decoded.rows[indices]]
        arrays[f"y_{split}"] = all_labels[indices]
    manifest = {
        "class_names": names, "img_size": img_size, "color": settings.color, "seed": settings.seed,
        "val_fraction": settings.val_fraction, "test_fraction": settings.test_fraction,
        "balanced": not settings.no_balance, "fingerprint": source.fingerprint,
        "source": {"data_dir": str(source.root), "builtin_sample": source.builtin, "files": len(files)},
        "counts": {name: {**entry, "skipped": dict(entry["skipped"].most_common())} for name, entry in counts.items()},
        "skipped": skipped, "duplicates": duplicates,
        "mislabelled": mislabelled,
    }
    return arrays, manifest


# ---------------------------------------------------------------------------------------------- the cache on disk

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


class _NotOurs(Exception):
    """dataset.npz exists but is not a readable cache written by this module."""


def _complete_manifest(arrays: dict[str, np.ndarray],
                       manifest: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Check the arrays against the manifest and fill in what can be derived (format tag, split and class counts)."""
    missing = [key for key in ("class_names", "img_size", "color") if key not in manifest]
    if missing or manifest["color"] not in CHANNELS:
        raise ValueError(f"manifest needs class_names, img_size and color (grayscale or rgb); "
                         f"missing or wrong: {missing or 'color'}")
    names, size, channels = list(manifest["class_names"]), int(manifest["img_size"]), CHANNELS[manifest["color"]]
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
    counts = {name: {**derived[name], "kept": sum(derived[name].values()), **manifest.get("counts", {}).get(name, {})}
              for name in names}
    # No timestamp: the same input and settings give the same manifest, byte for byte, so whatever hashes it
    # (search.py's dataset identity) sees no change when an unchanged folder is prepared again.
    return checked, {**manifest, "format": FORMAT_TAG, "version": FORMAT_VERSION, "class_names": names, "img_size": size,
                     "channels": channels, "counts": counts,
                     "splits": {split: len(checked[f"y_{split}"]) for split in SPLITS}}


def _atomic_write(path: Path, write: Any) -> None:
    """Write through a temporary file in the same folder, fsync it, then rename it over `path` in one step."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would hide the cache from other users
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError, AttributeError):  # make the rename itself durable where the OS allows it
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _write_manifest_file(folder: Path, manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    _atomic_write(folder / MANIFEST_FILE, lambda stream: stream.write(text.encode("utf-8")))


def _save(out_dir: str | os.PathLike, arrays: dict[str, np.ndarray], manifest: dict[str, Any]) -> PreparedDataset:
    checked, manifest = _complete_manifest(arrays, manifest)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f".{DATASET_FILE}.*.tmp"):  # left by a kill mid-write; a live writer's file is fresh
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > 600:
                stale.unlink()
    embedded = np.frombuffer(json.dumps(manifest, ensure_ascii=False).encode("utf-8"), np.uint8)
    # dataset.npz carries its own manifest, so its rename is the single commit point of the whole cache.
    _atomic_write(out / DATASET_FILE, lambda stream: np.savez(stream, manifest_json=embedded, **checked))
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
    _save(out_dir, dataset_arrays, manifest)


def _read_archive(path: Path, with_arrays: bool) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The manifest (and arrays) inside dataset.npz; raises _NotOurs for anything else. Never unpickles."""
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
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
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
    if not path.is_file():
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
        if json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8")) == manifest:
            return PreparedDataset(**arrays, manifest=manifest)
    except (OSError, ValueError):
        pass
    try:  # manifest.json is a readable copy; the one inside dataset.npz is authoritative
        _write_manifest_file(folder, manifest)
        logger.info("Rewrote %s from the copy inside %s", folder / MANIFEST_FILE, DATASET_FILE)
    except OSError as error:
        logger.debug("could not rewrite %s: %s", folder / MANIFEST_FILE, error)
    return PreparedDataset(**arrays, manifest=manifest)


# ---------------------------------------------------------------------------------------------- the whole step

def _cached_fingerprint(out: Path) -> str | None:
    path = out / DATASET_FILE
    if not path.exists():
        return None
    try:
        manifest, _ = _read_archive(path, with_arrays=False)
    except _NotOurs as error:
        raise TunerUsageError(f"'{path}' is not a prepared dataset from data_prep.py ({error}); "
                              f"move it away or pass --force to replace it.") from None
    return manifest.get("fingerprint") if manifest.get("version") == FORMAT_VERSION else None


def prepare_dataset(settings: PrepSettings, progress: bool = True) -> tuple[PreparedDataset, bool]:
    """Turn an image folder (or the built-in sample) into a prepared dataset in `settings.out`.

    Args:
        settings: what to read, how to preprocess and split, where to write.
        progress: draw a progress bar on stderr while decoding (only on a terminal).

    Returns:
        (the dataset, True if an up-to-date cache was reused instead of decoding again).
    """
    builtin = settings.data_dir is None
    if builtin:
        from tuner.sample import write_sample  # only the sample needs it

        root = write_sample(DEFAULT_SAMPLE_DIR)
    else:
        root = Path(settings.data_dir)
    img_size = settings.img_size or (SAMPLE_IMG_SIZE if builtin else DEFAULT_IMG_SIZE)
    output_key = {"img_size": img_size, "color": settings.color, "seed": settings.seed, "balanced": not settings.no_balance,
                  "val_fraction": settings.val_fraction, "test_fraction": settings.test_fraction}
    class_names = _find_classes(root)
    out = Path(settings.out)
    _check_output(out, root)
    source = _scan(root, builtin, class_names, output_key)
    if not settings.force and _cached_fingerprint(out) == source.fingerprint:
        logger.debug("Reusing the prepared dataset in %s: the source folder and settings are unchanged", out)
        return load_prepared(out), True
    started = time.perf_counter()
    workers = _resolve_workers(settings.workers)
    logger.debug("Decoding %d files from %s with up to %d processes", len(source.files), root, workers)
    decoded = _decode_all([str(root / name) for name in source.files], img_size, settings.color, workers, progress)
    arrays, manifest = _build(source, decoded, img_size, settings)
    del decoded
    dataset = _save(out, arrays, manifest)
    splits = dataset.manifest["splits"]
    logger.info("Prepared %s of %s files in %.1f s: %s train, %s validation, %s test", f"{sum(splits.values()):,}",
                f"{len(source.files):,}", time.perf_counter() - started, *(f"{splits[name]:,}" for name in SPLITS))
    return dataset, False


def ensure_prepared(directory: str | os.PathLike, quiet: bool = False) -> PreparedDataset:
    """The prepared dataset in `directory`; if it is the default folder and still empty, prepare the built-in sample there.

    Args:
        directory: a prepared-dataset folder (search.py's --data).
        quiet: no progress bar.

    Returns:
        The dataset. Raises TunerUsageError if a non-default folder has none.
    """
    folder = Path(directory)
    if not (folder / DATASET_FILE).exists() and folder.resolve() == Path(DEFAULT_PREPARED_DIR).resolve():
        logger.info("No prepared dataset in %s yet: preparing the built-in sample there, as python data_prep.py does", folder)
        # The sample is 2,000 tiny PNGs: decoding in this process is quick and safe even with TensorFlow loaded.
        return prepare_dataset(PrepSettings(out=str(folder), workers=1, quiet=quiet), progress=not quiet)[0]
    return load_prepared(folder)


def format_summary(dataset_or_manifest: PreparedDataset | dict[str, Any], max_files: int = 20) -> str:
    """A readable summary: counts per class (found, loaded, skipped, duplicates, kept, per split) and skipped files.

    Args:
        dataset_or_manifest: a PreparedDataset or its manifest dict.
        max_files: list at most this many skipped files (the manifest has them all).

    Returns:
        Several lines of text, without a trailing newline.
    """
    manifest = dataset_or_manifest.manifest if isinstance(dataset_or_manifest, PreparedDataset) else dataset_or_manifest
    names, counts = manifest["class_names"], manifest.get("counts", {})
    source = manifest.get("source", {})
    origin = "the built-in sample" if source.get("builtin_sample") else source.get("data_dir", "arrays")
    lines = [f"{len(names)} classes, {manifest['img_size']}x{manifest['img_size']} {manifest['color']}, "
             f"from {origin}" + (f" ({source['data_dir']})" if source.get("builtin_sample") else "")
             + (f", seed {manifest['seed']}" if "seed" in manifest else "")]
    columns = ("found", "loaded", "skipped", "duplicates", "mislabelled", "kept", *SPLITS)
    rows = []
    for name in names:
        entry = counts.get(name, {})
        rows.append([name] + [sum(entry.get(c, {}).values()) if c == "skipped" else entry.get(c, 0) for c in columns])
    rows.append(["total"] + [sum(row[i + 1] for row in rows) for i in range(len(columns))])
    width = max(len(str(row[0])) for row in rows + [["class"]])
    lines.append(f"{'class':<{width}}  " + "  ".join(f"{c:>{max(len(c), 5)}}" for c in columns))
    lines += [f"{row[0]:<{width}}  " + "  ".join(f"{v:>{max(len(c), 5)}}" for c, v in zip(columns, row[1:])) for row in rows]
    total = rows[-1]
    if "duplicates" in manifest:
        lines.append(f"duplicates: {total[4]} exact repeats within a class kept once; {total[5]} images found "
                     f"under more than one class dropped as mislabelled")
    if "balanced" in manifest:
        lines.append(f"balanced: undersampled to {min(counts[n]['kept'] for n in names)} images per class"
                     if manifest["balanced"] else "not balanced (--no-balance)")
    skipped = manifest.get("skipped", [])
    if skipped:
        reasons = Counter(item["reason"] for item in skipped)
        lines.append(f"skipped {len(skipped)} files: " + ", ".join(f"{n} {reason}" for reason, n in reasons.most_common()))
        lines += [f"  {item['file']}: {item['reason']}" for item in skipped[:max_files]]
        if len(skipped) > max_files:
            lines.append(f"  ... and {len(skipped) - max_files} more in {MANIFEST_FILE}")
    return "\n".join(lines)
