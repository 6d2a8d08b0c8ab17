"""Atomic writes (a kill leaves the old file or the new one, with the user's umask) and bounded reads of files."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

from tuner.errors import TunerUsageError


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


# --- Bounded reads: every file the tool reads back, opened without blocking, capped in size and depth -----------

MiB = 1 << 20
GiB = 1 << 30
# JSON nesting deeper than this is refused: the deepest files the tool or KerasTuner writes (trial.json and oracle.json,
# with their search space) are about 10 levels deep, and Python's parser ends a deep enough one in a RecursionError
# that names no file.
MAX_JSON_DEPTH = 64


@dataclasses.dataclass(frozen=True)
class FileKind:
    """A kind of file read back: the most it may hold, what it is, and what to do when it is not that."""

    cap: int
    what: str
    remedy: str


_RESUME = "restore it from a backup, or search afresh with python search.py --overwrite"
_REPORT = "publish the winner again with python report.py"
# The caps are far above any real file (a run of thousands of trials keeps oracle.json in the megabytes), so they
# stop only a file that was replaced, or that grows without end, before it takes the machine's memory.
KINDS: dict[str, FileKind] = {
    "settings": FileKind(1 * MiB, "the run's settings.json as search.py writes it", _RESUME),
    "oracle": FileKind(256 * MiB, "KerasTuner's oracle state", _RESUME),
    "tuner": FileKind(16 * MiB, "a KerasTuner tuner state file", _RESUME),
    "trial": FileKind(16 * MiB, "a KerasTuner trial.json", _RESUME),
    "curve": FileKind(64 * MiB, "a trial's per-epoch curve file", _RESUME),
    "checkpoint": FileKind(4 * GiB, "a trial's checkpoint (Keras weights)", _RESUME),
    "confirm": FileKind(16 * MiB, "a confirm run's record",
                        "delete it, and the next search.py or report.py on this run retrains it"),
    "results": FileKind(256 * MiB, "results.json as report.py writes it", "run python report.py again"),
    "metadata": FileKind(1 * MiB, "the winner's metadata.json as report.py writes it", _REPORT),
    "model": FileKind(4 * GiB, "a model file report.py saved", _REPORT),
    "manifest": FileKind(256 * MiB, "the prepared dataset's manifest.json",
                         "rebuild it with python data_prep.py --force"),
    "dataset": FileKind(64 * GiB, "the prepared dataset.npz", "rebuild it with python data_prep.py --force"),
    "marker": FileKind(1 * MiB, "the built-in sample's marker file", "delete the sample folder to write it again"),
    "json": FileKind(64 * MiB, "a JSON file this tool wrote",
                     "restore it, or write it again with the step that made it"),
}

_TYPES = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class UnreadableFileError(TunerUsageError):
    """A file the tool reads back is not a regular file of its kind's size and depth; the message names it.

    `problem` says what was found in a few words, for callers that list damaged files instead of stopping.
    """

    def __init__(self, path: str | os.PathLike, problem: str, kind: str) -> None:
        spec = KINDS[kind]
        self.path, self.problem = Path(path), problem
        super().__init__(f"'{path}' is {problem}; expected {spec.what}, a regular file of at most "
                         f"{_size(spec.cap)}; {spec.remedy}.")


def _size(count: int) -> str:
    return f"{count / GiB:g} GiB" if count >= GiB else f"{count / MiB:g} MiB"


def _not_regular(path: Path, mode: int) -> str | None:
    """What a file of `mode` is when it is not a regular file, naming where a link leads; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    found = next((name for test, name in _TYPES if test(mode)), "not a regular file")
    return f"a link to {found} ('{os.path.realpath(path)}')" if path.is_symlink() else found


def check_regular_file(path: str | os.PathLike, kind: str) -> int:
    """Check that `path` is a regular file within its kind's cap, before a library opens it; returns its size.

    Keras, h5py and NumPy open what they are given and read it: a FIFO blocks them, /dev/zero fills memory.
    Raises FileNotFoundError for a missing file, UnreadableFileError for anything else that is not right.
    """
    path = Path(path)
    descriptor = _open(path, kind)
    try:
        return _checked(path, os.fstat(descriptor), kind)
    finally:
        os.close(descriptor)


def read_bounded(path: str | os.PathLike, kind: str) -> bytes:
    """The bytes of a regular file of `kind` (a key of KINDS), read without blocking and never past its cap.

    The file is opened with O_NONBLOCK, so a FIFO cannot block the open, and checked on the opened descriptor, so
    what is read is what was checked: a FIFO, socket, device or directory is refused (a link to a regular file is
    fine, a link to /dev/zero is a device). At most cap + 1 bytes are read, so a file that grows while it is read
    is refused too.

    Raises:
        FileNotFoundError: the file (or its folder) is missing.
        UnreadableFileError: anything else; the message names the file, what was found and what to do.
    """
    path = Path(path)
    cap = KINDS[kind].cap
    descriptor = _open(path, kind)
    try:
        _checked(path, os.fstat(descriptor), kind)  # before fdopen, which refuses a directory in its own words
    except BaseException:
        os.close(descriptor)
        raise
    with os.fdopen(descriptor, "rb") as stream:
        data = stream.read(cap + 1)
    if len(data) > cap:
        raise UnreadableFileError(path, f"still growing past {_size(cap)} while it was read", kind)
    return data


def _open(path: Path, kind: str) -> int:
    try:
        # O_NOCTTY: a terminal device named here must not become this process's controlling terminal.
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(path) from None
    except OSError as error:
        # Opening a socket fails (ENXIO); say what it is rather than the errno's wording.
        with contextlib.suppress(OSError):
            found = _not_regular(path, os.stat(path).st_mode)
            if found:
                raise UnreadableFileError(path, found, kind) from None
        raise UnreadableFileError(path, f"unreadable ({error.strerror})", kind) from None


def _checked(path: Path, info: os.stat_result, kind: str) -> int:
    found = _not_regular(path, info.st_mode)
    if found:
        raise UnreadableFileError(path, found, kind)
    if info.st_size > KINDS[kind].cap:
        raise UnreadableFileError(path, f"{_size(info.st_size)}, more than any real one holds", kind)
    return info.st_size


def read_json(path: str | os.PathLike, kind: str = "json") -> Any | None:
    """Read a JSON file of `kind` (a key of KINDS) through read_bounded: None if it is missing or not valid JSON.

    A missing file, or one cut short by a crash, is None, as each caller decides what that means; a file that is
    not a regular file, is past its kind's cap or nests deeper than MAX_JSON_DEPTH raises UnreadableFileError
    naming it. A bare NaN, Infinity or -Infinity token (KerasTuner writes them, and a run of settings.json format 1
    may hold them) is read as None, a missing value, as atomic_write_json writes it.
    """
    try:
        data = read_bounded(path, kind)
    except FileNotFoundError:
        return None
    deep = UnreadableFileError(path, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", kind)
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_missing)
    except RecursionError:
        raise deep from None
    except ValueError:
        return None
    if _deeper_than(value, MAX_JSON_DEPTH):
        raise deep
    return value


def read_json_or_problem(path: str | os.PathLike, kind: str) -> tuple[Any | None, str | None]:
    """read_json for callers that list damaged files and go on: (its value, None), or (None, what was found instead)."""
    try:
        return read_json(path, kind), None
    except UnreadableFileError as error:
        return None, error.problem


def _deeper_than(value: Any, limit: int) -> bool:
    # Iterative, so a value nested near Python's recursion limit is measured without reaching it.
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _missing(token: str) -> None:
    # json.loads calls this for the non-JSON tokens NaN, Infinity and -Infinity only.
    return None
