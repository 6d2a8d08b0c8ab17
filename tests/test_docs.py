"""README.md: every flag of every script in its table, with the default the settings dataclasses really have."""

import dataclasses
import re
from pathlib import Path

import pytest

from tuner.config import ExecutionOptions, PredictSettings, PrepSettings, ReportSettings, SearchSettings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
# The flag tables in the README's order: data_prep.py, search.py, report.py, predict.py.
TABLE_CLASSES = [(PrepSettings,), (SearchSettings, ExecutionOptions), (ReportSettings,), (PredictSettings,)]


def flag_tables():
    """Each README table whose header starts with `flag`, as {flag: default cell} in document order."""
    tables, current = [], None
    for line in README.splitlines():
        if line.startswith("| flag"):
            current = {}
            tables.append(current)
        elif not line.startswith("|"):
            current = None
        elif current is not None and not line.startswith("| ---"):
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            for flag in re.findall(r"`(--[a-z0-9-]+)", cells[0]):
                current[flag] = cells[1]
    return tables


def shown(value):
    """A default as the README writes it: tuples as space-separated values."""
    return " ".join(str(part) for part in value) if isinstance(value, tuple) else str(value)


@pytest.mark.parametrize("settings_classes, table", zip(TABLE_CLASSES, flag_tables()),
                         ids=["data_prep", "search", "report", "predict"])
def test_each_flag_table_names_every_flag_with_its_default(settings_classes, table):
    fields = [item for settings_class in settings_classes for item in dataclasses.fields(settings_class)]
    flags = {"--" + item.name.replace("_", "-"): item for item in fields if not item.metadata.get("positional")}
    assert set(table) == set(flags), f"README flags {sorted(set(table) ^ set(flags))} differ from the dataclasses"
    for flag, item in flags.items():
        # A default of None, False or nothing is described in words ("the built-in sample", "off"): not checked.
        if item.default is None or isinstance(item.default, bool) or item.default == ():
            continue
        value = re.escape(shown(item.default))
        assert re.search(rf"(?<![\w.]){value}(?![\w.])", table[flag]), (
            f"README gives {flag} the default {table[flag]!r}; the dataclass says {shown(item.default)}")


def test_there_is_one_flag_table_per_script():
    assert len(flag_tables()) == len(TABLE_CLASSES)
    assert "PATH..." in README  # predict.py's positional paths


def test_readme_starts_with_the_two_commands():
    lines = [line.strip() for line in README.splitlines() if line.startswith("    ")]
    assert lines[0] == "pip install -r requirements.txt && python search.py && python report.py"
    assert lines[1] == "python -m pytest"
