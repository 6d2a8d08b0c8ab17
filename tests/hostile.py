"""Hostile inputs: a tiny finished run, one file of a copy damaged per case, every case run through a script's
main(argv) in one child Python process per table, with a memory limit and a per-case timeout.

A table is a list of `Case`s (see tests/test_hostile_inputs.py). The test process builds the run once per
session (`finished_run`), copies it per case, damages the copy (`FORMS`, or any function of the file's path),
takes a snapshot of the copy, and hands every case to one child (`python -m tests.hostile`), so TensorFlow is
imported once per table, not once per case. The child limits its address space to a few GiB above its size
after that import, so a reader that reads without bound fails with MemoryError instead of taking the machine,
and gives every case `CASE_SECONDS` before SIGALRM stops it, so a read that blocks (a FIFO) is reported as a
timeout instead of hanging the suite. `check` then asserts the outcome the case expects.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
# Far above what any refusal takes; only a case that blocks or loops reaches it (a timeout is a failure).
CASE_SECONDS = int(os.environ.get("HOSTILE_CASE_SECONDS", "30"))
# Address space the child may add after importing TensorFlow: ample for every script on the tiny run, far below
# what reading /dev/zero or an 8 GiB sparse file into memory takes.
MEMORY_HEADROOM = 4 << 30
# A sparse file this large is above every cap of tuner.files, the model's and the dataset's included.
OVERSIZED_BYTES = (64 << 30) + 1
# The lock file: a search or a report writes who holds it before it reads anything (tuner/rundir/lock.py).
UNCHECKED = {".search.lock"}
# Files up to this size are hashed for the snapshot; larger ones (the sparse oversized files) are known by size,
# inode and mtime alone.
HASHED_BYTES = 16 << 20

# The run: a tutorial grid of two configurations with one confirm run, retrained and published to RUN/best.
SEARCH_FLAGS = ("--space", "tutorial", "--tuner", "grid", "--epochs", "1", "--conv-layers", "1", "2", "--nodes", "4",
                "--dense-layers", "0", "--confirm", "1", "1", "--batch-size", "8", "--workers", "0", "--quiet")

# Each script a case can run: its module and its argv, with {run}, {data} and {image} filled in per case.
# A resume of the same search (search.py reads settings.json, oracle.json, trial files, curves, confirm
# records); a report that does not train (report.py --no-retrain); a prediction with the published winner.
SCRIPTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "search": ("search", ("--data", "{data}", "--run-dir", "{run}", *SEARCH_FLAGS)),
    "report": ("report", ("--run-dir", "{run}", "--confirm", "1", "1", "--no-retrain", "--no-export", "--no-html")),
    "predict": ("predict", ("--model", "{run}/best", "{image}")),
}

# Files of the finished run by a short name, so a table can say "trial" instead of a path (any relative path works).
FILES = {
    "settings": "settings.json",
    "oracle": "trials/oracle.json",
    "tuner": "trials/tuner0.json",
    "trial": "trials/trial_0/trial.json",
    "curve": "history/trial_0.json",
    "confirm": "confirm/trial_0/seed_1.json",
    "metadata": "best/metadata.json",
    "model": "best/model.keras",
    "results": "results.json",
}


def _replace(path: Path, make: Callable[[Path], None]) -> None:
    path.unlink(missing_ok=True)
    make(path)


def _socket(path: Path) -> None:
    # AF_UNIX names are limited to about 107 bytes, and tmp paths are long: bind a relative name from its folder.
    previous = os.getcwd()
    os.chdir(path.parent)
    try:
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(path.name)
    finally:
        os.chdir(previous)


def _oversized(path: Path) -> None:
    with open(path, "r+b") as stream:
        # Sparse: no disk space is used, and only a reader that trusts the file's size reads it.
        stream.truncate(OVERSIZED_BYTES)


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# Damage forms by name: each changes the file at `path` in place. A table may also give any function of the path.
FORMS: dict[str, Callable[[Path], None]] = {
    "fifo": lambda path: _replace(path, os.mkfifo),
    "dev-zero": lambda path: _replace(path, lambda target: target.symlink_to("/dev/zero")),
    "socket": lambda path: _replace(path, _socket),
    "directory": lambda path: _replace(path, lambda target: target.mkdir()),
    "oversized": _oversized,
    "deep": lambda path: path.write_text("[" * 100_000 + "]" * 100_000),
    "truncated": _truncated,
    "empty": lambda path: path.write_bytes(b""),
    "not-json": lambda path: path.write_bytes(b"\x00\xff this is not JSON \x1b[31m"),
    "wrong-type": lambda path: path.write_text("[1, 2, 3]\n"),
    "missing": lambda path: path.unlink(),
}


@dataclasses.dataclass(frozen=True)
class Case:
    """One hostile input: `form` applied to `file` of a copy of the run, then `script` run on the copy.

    expect: "error" (exit 2, stderr exactly one `error:` line naming the file, the run directory unchanged),
        "note" (exit 0, a `note:` line naming the file, the damaged file itself unchanged), or "ok" (exit 0).
    match: text the error or note line must also hold (e.g. "outside 1..2").
    args: more arguments for the script, after SCRIPTS' own.
    """

    id: str
    file: str
    form: str | Callable[[Path], None]
    script: str
    expect: str = "error"
    match: str = ""
    args: tuple[str, ...] = ()

    def path(self, run: Path) -> Path:
        return run / FILES.get(self.file, self.file)


@dataclasses.dataclass
class Outcome:
    """What one case did: the child's exit code (None if it timed out or raised), its output, and the snapshots."""

    case: Case
    path: Path
    key: str
    exit: int | None
    stderr: str
    stdout: str
    problem: str
    seconds: float | None
    before: dict
    after: dict


_BUILT: dict[str, tuple[Path, Path]] = {}


def finished_run(tmp_path_factory) -> tuple[Path, Path]:
    """(prepared dataset, run directory) of a tiny finished search with a confirm run and a published winner.

    Made once per test session (about 10 s) by search.py and report.py themselves; tests must not change it.
    """
    if "run" not in _BUILT:
        import report as report_script
        import search as search_script
        from tests.tiny_data import write_tiny_prepared

        base = tmp_path_factory.mktemp("hostile_run")
        prepared = write_tiny_prepared(base / "prepared", side=16, per_class=(12, 6, 6))
        run = base / "run"
        assert search_script.main(["--data", str(prepared), "--run-dir", str(run), *SEARCH_FLAGS]) == 0
        assert report_script.main(["--run-dir", str(run), "--confirm", "1", "1", "--workers", "0", "--no-export", "--no-html"]) == 0
        image = base / "image.png"
        import cv2
        import numpy as np

        cv2.imwrite(str(image), np.full((16, 16), 128, np.uint8))
        _BUILT["run"] = (Path(prepared), run)
    return _BUILT["run"]


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under `root` without following links or opening anything but regular files: path -> fingerprint.

    A regular file is (size, inode, mtime, sha256 up to HASHED_BYTES), so a file rewritten with the same content (an
    atomic write renames a new inode into place) counts as changed; a link is its target; anything else (a FIFO, a
    socket, a folder) is its type, so taking the snapshot can never block.
    """
    entries: dict[str, tuple] = {}
    for folder, folders, names in os.walk(root):
        for name in folders + names:
            path = Path(folder) / name
            info = path.lstat()
            key = path.relative_to(root).as_posix()
            if key in UNCHECKED:
                continue
            if stat.S_ISLNK(info.st_mode):
                entries[key] = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest() if info.st_size <= HASHED_BYTES else None
                entries[key] = ("file", info.st_size, info.st_ino, info.st_mtime_ns, digest)
            else:
                entries[key] = (stat.filemode(info.st_mode)[0],)
    return entries


def run_cases(cases: list[Case], tmp_path: Path, tmp_path_factory) -> dict[str, Outcome]:
    """Run every case of a table in one child process; returns each case's Outcome by its id."""
    ids = [case.id for case in cases]
    assert len(set(ids)) == len(ids), f"case ids must be unique: {ids}"
    prepared, run = finished_run(tmp_path_factory)
    image = run.parent / "image.png"  # written by finished_run, for predict.py
    jobs, copies = [], {}
    for case in cases:
        copy = tmp_path / case.id / "run"
        shutil.copytree(run, copy, symlinks=True)
        target = case.path(copy)
        (FORMS[case.form] if isinstance(case.form, str) else case.form)(target)
        copies[case.id] = (copy, target, snapshot(copy))
        module, argv = SCRIPTS[case.script]
        values = {"run": str(copy), "data": str(prepared), "image": str(image)}
        jobs.append({"id": case.id, "module": module, "argv": [arg.format(**values) for arg in (*argv, *case.args)]})
    spec, results = tmp_path / "cases.json", tmp_path / "results.jsonl"
    spec.write_text(json.dumps(jobs))
    child = subprocess.run([sys.executable, "-m", "tests.hostile", str(spec), str(results)], cwd=ROOT,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=CASE_SECONDS * len(cases) + 120)
    done = {}
    if results.exists():
        done = {line["id"]: line for line in map(json.loads, results.read_text().splitlines())}
    outcomes = {}
    for case in cases:
        copy, target, before = copies[case.id]
        ended = f"the child ended before this case: exit {child.returncode}, {child.stderr[-2000:]}"
        result = done.get(case.id, {"exit": None, "stderr": "", "stdout": "", "problem": ended})
        outcomes[case.id] = Outcome(case, target, target.relative_to(copy).as_posix(), result["exit"], result["stderr"],
                                    result["stdout"], result["problem"], result.get("seconds"), before, snapshot(copy))
    return outcomes


def check(outcome: Outcome) -> None:
    """Assert what the case expects (see Case.expect)."""
    case, path = outcome.case, str(outcome.path)
    shown = (f"{case.id}: exit {outcome.exit} after {outcome.seconds} s {outcome.problem}\n"
             f"stderr: {outcome.stderr}\nstdout: {outcome.stdout[-2000:]}")
    assert not outcome.problem, shown
    if case.expect == "error":
        assert outcome.exit == 2, shown
        lines = outcome.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), shown
        assert path in lines[0] and case.match in lines[0], shown
        changed = sorted(key for key in outcome.before.keys() | outcome.after.keys()
                         if outcome.before.get(key) != outcome.after.get(key))
        assert not changed, f"{case.id}: the run directory changed: {changed}\n{shown}"
    elif case.expect == "note":
        assert outcome.exit == 0, shown
        notes = [line for line in (outcome.stdout + outcome.stderr).splitlines()
                 if line.startswith("note:") and path in line and case.match in line]
        assert notes, shown
        same = outcome.after.get(outcome.key) == outcome.before.get(outcome.key)
        assert same, f"{case.id}: the damaged file changed\n{shown}"
    else:
        assert case.expect == "ok" and outcome.exit == 0, shown


class _CaseTimeout(BaseException):
    """Raised by SIGALRM; a BaseException, so the scripts' `except Exception` cannot swallow it."""


def _alarm(signum, frame):
    raise _CaseTimeout()


@contextlib.contextmanager
def _captured():
    """Send file descriptors 1 and 2 (Python's prints and native libraries' writes alike) to two files."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        texts = {}
        try:
            yield texts
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for name, stream in (("stdout", out), ("stderr", err)):
                stream.seek(0)
                texts[name] = stream.read().decode("utf-8", "replace")


def _child(spec: Path, results: Path) -> None:
    import importlib
    import resource

    from tuner.cli import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras  # noqa: F401  (the scripts' own imports, before the limit, so it measures a warm process)

    size = int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + MEMORY_HEADROOM, resource.getrlimit(resource.RLIMIT_AS)[1]))
    signal.signal(signal.SIGALRM, _alarm)
    with open(results, "w") as written:
        for job in json.loads(spec.read_text()):
            logging.root.handlers.clear()  # run_cli sets up logging once per process otherwise
            problem, code, start = "", None, time.monotonic()
            with _captured() as texts:
                signal.alarm(CASE_SECONDS)
                try:
                    code = importlib.import_module(job["module"]).main(job["argv"])
                except _CaseTimeout:
                    problem = f"timed out after {CASE_SECONDS} s"
                except BaseException as error:  # noqa: BLE001  (SystemExit too: a case must return, not exit)
                    problem = f"raised {type(error).__name__}: {error}"
                finally:
                    signal.alarm(0)
            seconds = round(time.monotonic() - start, 2)  # shown when a case fails, never asserted
            line = {"id": job["id"], "exit": code, "problem": problem, "seconds": seconds, **texts}
            written.write(json.dumps(line) + "\n")
            written.flush()
    # TensorFlow's teardown takes seconds and decides nothing: every result is written.
    os._exit(0)


if __name__ == "__main__":
    _child(Path(sys.argv[1]), Path(sys.argv[2]))
