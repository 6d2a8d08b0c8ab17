"""tuner.files: atomic writes that keep the old file on a crash and give new files the user's umask."""

import json
import math
import os
import stat

import pytest

import tuner.files as files
from tuner.files import (
    atomic_write_json,
    atomic_write_text,
    make_staging_dir,
    read_json,
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
