import dataclasses
from pathlib import Path

import pytest

from tuner.config import PredictSettings, PrepSettings, ReportSettings, SearchSettings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("settings_class", [PrepSettings, SearchSettings, ReportSettings, PredictSettings])
def test_every_flag_is_documented_in_the_readme(settings_class):
    for item in dataclasses.fields(settings_class):
        if item.metadata.get("positional"):
            assert "PATH..." in README
        else:
            flag = "--" + item.name.replace("_", "-")
            assert f"`{flag}" in README, f"{flag} ({settings_class.__name__}) is not in README.md"


def test_readme_starts_with_the_two_commands():
    lines = [line.strip() for line in README.splitlines() if line.startswith("    ")]
    assert lines[0] == "pip install -r requirements.txt && python search.py && python report.py"
    assert lines[1] == "python -m pytest"
