"""tuner.config: settings defaults, flags derived from the fields (and back to argv), and validation of bad values."""

import dataclasses
import json

import pytest

from pathlib import Path

from tuner.config import (
    DEFAULT_PREPARED_DIR,
    ExecutionOptions,
    PrepSettings,
    SearchSettings,
    build_parser,
    parse_search_flags,
    parse_settings,
    settings_to_argv,
    settings_to_dict,
)
from tuner.errors import TunerUsageError


def parse(argv):
    return parse_settings(PrepSettings, argv, prog="data_prep.py", description="test")


def test_defaults_run_the_sample_into_data_prepared():
    settings = parse([])
    assert settings == PrepSettings()
    assert settings.data_dir is None
    assert settings.out == DEFAULT_PREPARED_DIR
    assert settings.img_size is None  # 50 for a user's folder, 28 for the sample: decided by data.py
    assert settings.color == "grayscale"
    assert (settings.val_fraction, settings.test_fraction) == (0.15, 0.15)
    assert (settings.no_balance, settings.force, settings.quiet, settings.workers) == (False, False, False, 0)


def test_every_field_has_a_flag():
    parser = build_parser(PrepSettings, "data_prep.py", "test")
    flags = {option for action in parser._actions for option in action.option_strings}
    for item in dataclasses.fields(PrepSettings):
        assert "--" + item.name.replace("_", "-") in flags


def test_flags_parse_into_settings():
    settings = parse(["--data-dir", "PetImages", "--out", "prep", "--img-size", "64", "--color", "rgb",
                      "--seed", "7", "--val-fraction", "0.2", "--test-fraction", "0.1", "--no-balance",
                      "--workers", "3", "--force", "--quiet", "--debug"])
    assert settings == PrepSettings(data_dir="PetImages", out="prep", img_size=64, color="rgb", seed=7,
                                    val_fraction=0.2, test_fraction=0.1, no_balance=True, workers=3,
                                    force=True, quiet=True, debug=True)


def test_settings_are_json_ready():
    settings = parse(["--img-size", "32"])
    assert json.loads(json.dumps(settings_to_dict(settings)))["img_size"] == 32


@pytest.mark.parametrize("size", [7, 513, 0, -50])
def test_img_size_outside_8_to_512_is_refused(size):
    with pytest.raises(TunerUsageError, match="--img-size must be between 8 and 512 pixels, got"):
        PrepSettings(img_size=size)


@pytest.mark.parametrize("size", [8, 50, 512])
def test_img_size_limits_are_accepted(size):
    assert PrepSettings(img_size=size).img_size == size


def test_unknown_color_is_refused_by_the_flag_and_the_dataclass():
    with pytest.raises(TunerUsageError, match="invalid choice: 'sepia'.*see data_prep.py --help"):
        parse(["--color", "sepia"])
    with pytest.raises(TunerUsageError, match="--color must be one of grayscale, rgb, got 'sepia'"):
        PrepSettings(color="sepia")


@pytest.mark.parametrize("flag, value", [("--val-fraction", "0"), ("--val-fraction", "1"),
                                         ("--test-fraction", "-0.1"), ("--test-fraction", "1.5")])
def test_fractions_must_be_between_0_and_1(flag, value):
    with pytest.raises(TunerUsageError, match=f"{flag} must be between 0 and 1"):
        parse([flag, value])


def test_fractions_must_leave_a_training_split():
    with pytest.raises(TunerUsageError, match="must leave room for a training split"):
        parse(["--val-fraction", "0.5", "--test-fraction", "0.5"])


def test_negative_workers_are_refused():
    with pytest.raises(TunerUsageError, match="--workers must be 0"):
        parse(["--workers", "-1"])


@pytest.mark.parametrize("argv, message", [(["--img-size", "big"], "invalid int value: 'big'"),
                                           (["--bogus"], "unrecognized arguments: --bogus"),
                                           (["--seed"], "expected one argument")])
def test_malformed_flags_become_usage_errors(argv, message):
    with pytest.raises(TunerUsageError, match=message):
        parse(argv)


def test_augment_takes_off_and_on_once_each():
    assert parse_settings(SearchSettings, ["--space", "tutorial", "--augment", "off", "on"], "search.py", "").augment == ("off", "on")
    with pytest.raises(TunerUsageError, match="invalid choice: 'maybe'"):
        parse_settings(SearchSettings, ["--augment", "maybe"], "search.py", "")
    with pytest.raises(TunerUsageError, match="lists a value twice"):
        SearchSettings(space="tutorial", augment=("on", "on"))
    with pytest.raises(TunerUsageError, match="--augment values must be off or on"):
        SearchSettings(space="tutorial", augment=("sideways",))


def test_search_flags_come_from_one_parser_over_both_dataclasses():
    parser = build_parser((SearchSettings, ExecutionOptions), "search.py", "test")
    flags = {option for action in parser._actions for option in action.option_strings}
    for settings_class in (SearchSettings, ExecutionOptions):
        for item in dataclasses.fields(settings_class):
            assert "--" + item.name.replace("_", "-") in flags
    assert parse_search_flags([]) == (SearchSettings(), ExecutionOptions())
    settings, options = parse_search_flags(["--tuner", "random", "--nodes", "4", "8", "--workers", "0", "--quiet",
                                            "--run-dir", "runs/x", "--max-trials", "3"])
    assert settings == SearchSettings(tuner="random", nodes=(4, 8), max_trials=3)
    assert options == ExecutionOptions(workers="0", quiet=True, run_dir="runs/x")


def test_the_run_directory_defaults_to_runs_slash_the_tuner():
    assert ExecutionOptions().resolved_run_dir(SearchSettings(tuner="bayesian")) == Path("runs/bayesian")
    assert ExecutionOptions(run_dir="elsewhere").resolved_run_dir(SearchSettings()) == Path("elsewhere")


def test_a_workers_argv_parses_back_into_the_same_run_as_a_worker_of_the_chief():
    settings = SearchSettings(space="tutorial", tuner="bayesian", max_trials=4, nodes=(4, 8), learning_rates=(0.001, 0.0003),
                              augment=("off", "on"), epochs=3)
    options = ExecutionOptions(data="prep", run_dir="runs/b", overwrite=True, workers="3", trials_per_process=5,
                               connect_timeout=9, quiet=True, debug=True)
    argv = settings_to_argv(settings, options.for_worker("127.0.0.1:8000"))
    assert "--overwrite" not in argv and "--workers" not in argv and "--tuner" in argv
    parsed_settings, parsed_options = parse_search_flags(argv)
    assert parsed_settings == settings
    assert parsed_options == ExecutionOptions(data="prep", run_dir="runs/b", trials_per_process=5, connect_timeout=9,
                                              quiet=True, debug=True, role="worker", oracle="127.0.0.1:8000")
    assert settings_to_argv(SearchSettings(), ExecutionOptions()) == []  # defaults need no flags, the tuner's neither
    assert settings_to_argv(SearchSettings(space="tutorial")) == ["--tuner", "grid", "--space", "tutorial"]
    # asha is the default tuner, but not the tutorial space's: a worker of such a search must be told it.
    tutorial_asha = SearchSettings(space="tutorial", tuner="asha")
    assert settings_to_argv(tutorial_asha) == ["--tuner", "asha", "--space", "tutorial"]
    assert parse_search_flags(settings_to_argv(tutorial_asha))[0] == tutorial_asha


@pytest.mark.parametrize("workers", ["auto", "0", "1", "2", "1024"])
def test_workers_takes_auto_or_a_plain_number(workers):
    assert ExecutionOptions(workers=workers).workers == workers


@pytest.mark.parametrize("workers", ["00", "01", "+1", " 1", "1 ", "1.0", "-1", "", "1025", "two", "Auto", "\u00b2"])
def test_workers_refuses_anything_else(workers):
    with pytest.raises(TunerUsageError, match="--workers must be auto or a number of processes from 0 to 1024, got"):
        ExecutionOptions(workers=workers)
