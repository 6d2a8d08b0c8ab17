"""PrepSettings: defaults, flags derived from the fields, and validation of bad values."""

import dataclasses
import json

import pytest

from tuner.config import (
    DEFAULT_PREPARED_DIR,
    PrepSettings,
    build_parser,
    parse_settings,
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
    from tuner.config import SearchSettings, parse_settings

    assert parse_settings(SearchSettings, ["--augment", "off", "on"], "search.py", "").augment == ("off", "on")
    with pytest.raises(TunerUsageError, match="invalid choice: 'maybe'"):
        parse_settings(SearchSettings, ["--augment", "maybe"], "search.py", "")
    with pytest.raises(TunerUsageError, match="lists a value twice"):
        SearchSettings(augment=("on", "on"))
    with pytest.raises(TunerUsageError, match="--augment values must be off or on"):
        SearchSettings(augment=("sideways",))
