"""search.py, the script: flags, bad paths and --help, each answered with the exit-code contract."""

import subprocess
import sys
from pathlib import Path

import pytest

import search as search_script
from tests.tiny_data import write_tiny_prepared

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return write_tiny_prepared(tmp_path_factory.mktemp("prepared"))


@pytest.mark.parametrize("argv, message", [
    (["--nodes", "0"], "--nodes values must be between 1 and 4096, got 0"),
    (["--conv-layers", "-1"], "--conv-layers values must be between 1 and 8, got -1"),
    (["--nodes"], "argument --nodes: expected at least one argument"),
    (["--max-trials", "0"], "--max-trials must be a whole number of at least 1, got 0"),
    (["--epochs", "0"], "--epochs must be a whole number from 1 to 1000, got 0"),
    (["--epochs", "1000000"], "--epochs must be a whole number from 1 to 1000, got 1000000"),
    (["--seed", "-1"], "--seed must be a whole number from 0 to 4294967295, got -1"),
    (["--seed", str(2**32)], "--seed must be a whole number from 0 to 4294967295, got 4294967296"),
    (["--batch-size", "100000"], "--batch-size must be a whole number from 1 to 65536"),
    (["--tuner", "annealing"], "argument --tuner: invalid choice: 'annealing'"),
    (["--tuner", "hyperband", "--epochs", "1"], "--tuner hyperband needs --epochs of at least 2"),
    (["--tuner", "asha", "--epochs", "1"], "--tuner asha needs --epochs of at least 2"),
    (["--role", "worker"], "--role and --oracle go together"),
    (["--role", "worker", "--oracle", "127.0.0.1:8000", "--workers", "2"], "don't combine it with --role/--oracle"),
    (["--workers", "two"], "--workers must be auto or a number of processes from 0 to 1024, got 'two'"),
    # "00" once passed isdigit() and stopped the launcher with a ZeroDivisionError traceback.
    (["--workers", "00"], "--workers must be auto or a number of processes from 0 to 1024, got '00'"),
    (["--workers", "+1"], "--workers must be auto or a number of processes from 0 to 1024, got '+1'"),
    (["--workers", " 1"], "--workers must be auto or a number of processes from 0 to 1024, got ' 1'"),
    (["--workers", "1.0"], "--workers must be auto or a number of processes from 0 to 1024, got '1.0'"),
    (["--prune", "percentile"], "argument --prune: invalid choice: 'percentile'"),
    (["--prune-warmup-trials", "0"], "--prune-warmup-trials must be at least 1"),
    (["--lease-seconds", "2"], "--lease-seconds must be a whole number from 5 to 86400, got 2"),
])
def test_bad_flags_exit_2_with_one_line(argv, message, capsys):
    assert search_script.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_paths_exit_2_with_one_line(prepared, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    cases = [
        (["--data", str(prepared), "--run-dir", str(tmp_path / "file")], "is a file, expected a folder"),
        (["--data", str(tmp_path / "nowhere"), "--run-dir", str(tmp_path / "run")], "python data_prep.py"),
    ]
    for argv, message in cases:
        assert search_script.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_help_answers_without_importing_tensorflow():
    result = subprocess.run([sys.executable, "-X", "importtime", "search.py", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--conv-layers" in result.stdout
    assert "tensorflow" not in result.stderr and "keras" not in result.stderr
