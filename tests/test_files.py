"""tuner.files: atomic writes that keep the old file on a crash and give new files the user's umask."""

import dataclasses
import json
import math
import os
import re
import signal
import socket
import stat
from pathlib import Path

import pytest

import tuner.files as files
from tuner.errors import TunerUsageError
from tuner.files import (
    UnreadableFileError,
    atomic_write_json,
    atomic_write_text,
    check_regular_file,
    make_staging_dir,
    read_bounded,
    read_json,
    read_json_or_problem,
)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_written_file_has_the_users_umask_not_mkstemps_0600(tmp_path, umask_022):
    atomic_write_text(tmp_path / "results.csv", "a,b\n")
    assert mode(tmp_path / "results.csv") == 0o644
    os.umask(0o077)
    atomic_write_text(tmp_path / "private.csv", "a,b\n")
    assert mode(tmp_path / "private.csv") == 0o600


def test_a_staging_folder_has_the_users_umask(tmp_path, umask_022):
    assert mode(make_staging_dir(tmp_path, ".best.new-")) == 0o755


def test_json_round_trips_and_damage_reads_as_none(tmp_path):
    atomic_write_json(tmp_path / "deep" / "state.json", {"name": "Zoë", "values": [1, 2.5, None]})
    assert read_json(tmp_path / "deep" / "state.json") == {"name": "Zoë", "values": [1, 2.5, None]}
    (tmp_path / "half.json").write_text('{"name": ')
    assert read_json(tmp_path / "half.json") is None
    assert read_json(tmp_path / "missing.json") is None


def test_json_is_strict_nan_and_infinities_are_written_as_null(tmp_path):
    def refuse(token):
        raise ValueError(f"{token} is not JSON")

    atomic_write_json(tmp_path / "curve.json", {"epochs": [{"loss": math.nan, "val_loss": math.inf}], "low": -math.inf,
                                                 "kept": (0.5, 2)})
    data = json.loads((tmp_path / "curve.json").read_text(), parse_constant=refuse)
    assert data == {"epochs": [{"loss": None, "val_loss": None}], "low": None, "kept": [0.5, 2]}


def test_a_nan_token_of_an_older_file_reads_as_missing(tmp_path):
    (tmp_path / "old.json").write_text('{"epochs": [{"epoch": 1, "loss": NaN, "val_loss": Infinity, "x": -Infinity}]}')
    assert read_json(tmp_path / "old.json") == {"epochs": [{"epoch": 1, "loss": None, "val_loss": None, "x": None}]}


def test_a_crash_mid_write_keeps_the_old_content_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "trial.json"
    atomic_write_text(target, "old")

    def crash(*args, **kwargs):
        raise OSError("simulated power cut")

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(OSError, match="simulated power cut"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["trial.json"]


def test_ctrl_c_while_the_writer_runs_keeps_the_old_content(tmp_path):
    target = tmp_path / "plot.png"
    atomic_write_text(target, "old")

    def interrupted(stream):
        stream.write(b"half a pic")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.atomic_write(target, interrupted)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["plot.png"]


# --- Bounded reads: whatever is found in a file's place, the read ends at once, naming it --------------------

@pytest.fixture
def no_hang():
    """Fail a read that blocks instead of hanging the suite."""
    def stop(signum, frame):
        raise TimeoutError("the read blocked")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _socket(path):
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))


@pytest.mark.parametrize("make, found", [
    (os.mkfifo, "is a FIFO (named pipe)"),
    (lambda path: path.symlink_to("/dev/zero"), "is a link to a character device ('/dev/zero')"),
    (lambda path: path.mkdir(), "is a directory"),
    (_socket, "is a socket"),
], ids=["fifo", "dev-zero", "directory", "socket"])
def test_what_is_not_a_regular_file_is_refused_naming_it_without_blocking(tmp_path, monkeypatch, no_hang, make, found):
    monkeypatch.chdir(tmp_path)  # AF_UNIX names are short: bind a relative one
    path = Path("settings.json")
    make(path)
    for read in (lambda: read_json(path, kind="settings"), lambda: read_bounded(path, "settings"),
                 lambda: check_regular_file(path, "settings")):
        with pytest.raises(UnreadableFileError) as caught:
            read()
        message = str(caught.value)
        assert message.startswith(f"'{path}' {found}; expected the run's settings.json") and "\n" not in message
        assert "a regular file of at most 1 MiB; restore it from a backup, or search afresh" in message
        assert isinstance(caught.value, TunerUsageError) and caught.value.path == path


def test_a_link_to_a_regular_file_is_read(tmp_path):
    (tmp_path / "real.json").write_text('{"a": 1}')
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    assert read_json(tmp_path / "link.json", kind="trial") == {"a": 1}


def test_a_file_past_its_kinds_cap_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "metadata.json"
    with open(path, "wb") as stream:
        stream.truncate(8 << 30)  # sparse: reading it would take 8 GiB of memory
    with pytest.raises(UnreadableFileError, match=re.escape(f"'{path}' is 8 GiB, more than any real one holds; "
                                                            f"expected the winner's metadata.json")):
        read_json(path, kind="metadata")
    with pytest.raises(UnreadableFileError, match="is 8 GiB, more than any real one holds; expected a model file"):
        check_regular_file(path, "model")
    assert check_regular_file(path, "dataset") == 8 << 30  # a dataset may be that large


def test_a_file_that_grows_while_it_is_read_is_refused_at_its_cap(monkeypatch):
    # /proc files report size 0 and hold more: what a file growing after the size check looks like.
    monkeypatch.setitem(files.KINDS, "settings", dataclasses.replace(files.KINDS["settings"], cap=64))
    with pytest.raises(UnreadableFileError, match="still growing past"):
        read_bounded("/proc/self/status", "settings")


def test_json_nested_past_the_limit_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "trial.json"
    path.write_text("[" * 100_000 + "]" * 100_000)  # Python's own parser would end in a RecursionError
    with pytest.raises(UnreadableFileError, match=re.escape(f"'{path}' is JSON nested deeper than 64 levels")):
        read_json(path, kind="trial")
    path.write_text("[" * 65 + "]" * 65)
    with pytest.raises(UnreadableFileError, match="nested deeper than 64"):
        read_json(path, kind="trial")
    path.write_text('{"a": ' * 63 + "1" + "}" * 63)
    assert read_json(path, kind="trial") is not None


def test_missing_or_cut_short_is_still_none_and_the_problem_is_listed_for_callers_that_go_on(tmp_path):
    (tmp_path / "half.json").write_text('{"epochs": [')
    assert read_json_or_problem(tmp_path / "half.json", "curve") == (None, None)
    assert read_json_or_problem(tmp_path / "missing.json", "curve") == (None, None)
    (tmp_path / "dangling.json").symlink_to(tmp_path / "nowhere")
    assert read_json(tmp_path / "dangling.json", kind="curve") is None
    os.mkfifo(tmp_path / "pipe.json")
    assert read_json_or_problem(tmp_path / "pipe.json", "curve") == (None, "a FIFO (named pipe)")
    with pytest.raises(FileNotFoundError):
        check_regular_file(tmp_path / "missing.keras", "model")


def test_every_kind_has_a_cap_far_above_a_real_file_and_says_what_to_do():
    for name, kind in files.KINDS.items():
        assert kind.cap >= 1 << 20 and kind.what and kind.remedy, name


def test_the_readme_states_every_cap():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    bullet = readme.split("**Bounded reads of the tool's own files**")[1].split("\n- ")[0]
    for name, kind in files.KINDS.items():
        if name not in ("json", "marker"):  # any other JSON file the tool writes, and the sample's marker
            assert files._size(kind.cap) in " ".join(bullet.split()), name
