"""Atomic file writes: a kill at any moment leaves the old file or the new one, with the user's umask."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def shared_mode(directory: bool = False) -> int:
    """The mode a plain open() or mkdir() would give under the user's umask.

    mkstemp and mkdtemp create 0600 files and 0700 folders, so a result renamed into place
    would be private; on a shared cluster file system the team could not read a finished run.
    """
    return (0o777 if directory else 0o666) & ~_umask()


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Write a file through `write(stream)` so that a crash at any moment leaves the old content or the new.

    The data goes to a temporary file in the same folder, is flushed to disk, and replaces
    the target with one rename, which POSIX makes atomic; the folder is synced too, so the
    rename itself survives a power cut where the OS allows it.

    Args:
        path: the file to write (its folder is created if missing).
        write: called once with a binary stream.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            os.fchmod(stream.fileno(), shared_mode())
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError, AttributeError):
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write bytes atomically (see atomic_write)."""
    return atomic_write(path, lambda stream: stream.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically (see atomic_write)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write indented, strict JSON atomically (see atomic_write): NaN and infinities become null.

    Python's json writes them as the bare tokens NaN and Infinity, which are not JSON: other
    readers (jq, JavaScript, pandas' strict mode) refuse the whole file. A non-finite number is
    a missing value here (a diverged epoch's loss), and read_json reads it back as None.
    """
    text = json.dumps(finite_or_null(data), indent=2, ensure_ascii=False, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def finite_or_null(data: Any) -> Any:
    """`data` with every NaN or infinite float, at any depth of its dicts, lists and tuples, replaced by None."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: finite_or_null(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite_or_null(value) for value in data]
    return data


def make_staging_dir(parent: Path, prefix: str) -> Path:
    """A new hidden folder in `parent` with the user's umask, to fill and then rename into place."""
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    os.chmod(staging, shared_mode(directory=True))
    return staging


def read_json(path: str | os.PathLike) -> Any | None:
    """Read a JSON file, or None if it is missing or not valid JSON (e.g. cut short by a crash).

    A bare NaN, Infinity or -Infinity token (KerasTuner writes them, and a run of settings.json format 1
    may hold them) is read as None, a missing value, as atomic_write_json writes it.
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=_missing)
    except (OSError, ValueError):
        return None


def _missing(token: str) -> None:
    # json.loads calls this for the non-JSON tokens NaN, Infinity and -Infinity only.
    return None
