"""tuner.cli: every script's outcome mapped to the exit-code contract, with one `error:` line on stderr."""

import subprocess
import sys
from pathlib import Path

from tuner.cli import run_cli
from tuner.errors import SearchFailedError, TunerUsageError

ROOT = Path(__file__).resolve().parent.parent


def raising(error):
    def body(argv):
        raise error

    return body


def test_success_returns_what_the_body_returns(capsys):
    assert run_cli(lambda argv: 0, []) == 0
    assert run_cli(lambda argv: 3, ["x"]) == 3
    assert capsys.readouterr().err == ""


def test_bad_input_is_one_error_line_and_exit_2(capsys):
    assert run_cli(raising(TunerUsageError("need at least 2 classes; add a folder.")), []) == 2
    assert capsys.readouterr().err == "error: need at least 2 classes; add a folder.\n"


def test_failed_work_is_one_error_line_and_exit_1(capsys):
    assert run_cli(raising(SearchFailedError("all 3 trials failed: 3x too small")), []) == 1
    assert capsys.readouterr().err == "error: all 3 trials failed: 3x too small\n"


def test_debug_adds_the_traceback(capsys):
    assert run_cli(raising(TunerUsageError("bad")), ["--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith("error: bad\n")


def test_an_unexpected_exception_is_one_error_line_and_exit_1(capsys):
    assert run_cli(raising(RuntimeError("cannot decode\nrerun with --workers 1")), []) == 1
    err = capsys.readouterr().err
    assert err == "error: RuntimeError: cannot decode\\nrerun with --workers 1\n"
    assert run_cli(raising(KeyError("trial_3")), []) == 1
    assert capsys.readouterr().err == "error: KeyError: 'trial_3'\n"


def test_an_unexpected_exception_shows_its_traceback_under_debug(capsys):
    assert run_cli(raising(RuntimeError("boom")), ["--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom" in err and err.endswith("error: RuntimeError: boom\n")


def test_ctrl_c_exits_130_and_says_how_to_continue(capsys):
    assert run_cli(raising(KeyboardInterrupt()), []) == 130
    assert "run the same command again to continue" in capsys.readouterr().err


def test_a_closed_stdout_pipe_ends_quietly():
    # In a real process: the handler points stdout at /dev/null, which pytest's capture could not take.
    code = ("import sys; from tuner.cli import run_cli\n"
            "def body(argv):\n    raise BrokenPipeError\n"
            "sys.exit(run_cli(body, []))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == ""


def test_names_in_an_error_line_show_their_control_and_bidi_characters_escaped(capsys):
    name = "cat\u202egnp.exe\u2066\x85\x1b[2J"
    assert run_cli(raising(TunerUsageError(f"'{name}' is not an image folder.")), []) == 2
    err = capsys.readouterr().err
    assert err == "error: 'cat\\u202egnp.exe\\u2066\\x85\\x1b[2J' is not an image folder.\n"
