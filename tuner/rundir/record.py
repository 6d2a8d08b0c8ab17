"""settings.json as typed records: what a run searched (SearchSettings) and on which prepared dataset, decoded strictly."""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.data.cache import PreparedDataset, dataset_identity
from tuner.config import COMPARED_ON_RESUME, ExecutionOptions, SearchSettings, flag_of, settings_to_dict
from tuner.config.spaces import MODERN, TUTORIAL
from tuner.errors import TunerUsageError

# settings.json's format, written by every search. Raise it when the code reads or resumes what a run of the
# format before wrote differently, and add a row to the README's table of formats ("The run directory").
FORMAT_VERSION = 3
# A settings.json without format_version was written before the field existed.
FIRST_FORMAT = 1
# The modern recipe's dimensions (config.spaces.MODERN_RECIPE) and the format from which a run searched them: an older
# modern run's trials have no value for them (its models are built with the first, the tutorial's).
RECIPE_SINCE_FORMAT = {"convs_per_block": 3}

# Format 1 may hold how a search was executed (workers, quiet, ...) beside what defines it: those names are
# dropped on reading, so its runs still resume. From format 2 they, like any other unknown name, are damage.
_EXECUTION_FIELDS = frozenset(item.name for item in dataclasses.fields(ExecutionOptions))


class NewerFormatError(TunerUsageError):
    """settings.json has a format_version this code does not know: a newer release of the tool wrote it."""

    def __init__(self, version: int) -> None:
        super().__init__(
            f"has format_version {version}, newer than the formats {FIRST_FORMAT} to {FORMAT_VERSION} this tool reads; "
            f"search and report it with the release that wrote it, or search afresh with --overwrite or another --run-dir.")
        self.version = version


@dataclass(frozen=True)
class DatasetRecord:
    """Which prepared dataset a run searched: where it was, its identity, and what its images look like."""

    path: str
    identity: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    img_size: int
    color: str

    @classmethod
    def of(cls, dataset: PreparedDataset, path: str | os.PathLike) -> DatasetRecord:
        """The record of a prepared dataset loaded from `path`."""
        return cls(path=str(Path(path).resolve()), identity=dataset_identity(dataset),
                   class_names=tuple(dataset.class_names), input_shape=tuple(dataset.input_shape),
                   img_size=dataset.img_size, color=dataset.color)


@dataclass(frozen=True)
class RunRecord:
    """settings.json: the search settings a run was made with and the dataset it ran on."""

    search: SearchSettings
    dataset: DatasetRecord
    # The format it was read in; written, it is always FORMAT_VERSION.
    format_version: int = dataclasses.field(default=FORMAT_VERSION, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "search": settings_to_dict(self.search),
                "dataset": settings_to_dict(self.dataset)}

    @classmethod
    def from_json(cls, data: Any) -> RunRecord:
        """Parse settings.json's contents, checking every field's type (raises TypeError/ValueError/KeyError).

        Strict: an unknown field is damage, but for the execution options format 1 saved.

        Raises:
            NewerFormatError: its format_version is newer than FORMAT_VERSION (not damage: another release wrote it).
        """
        # The format first: a newer one may hold anything.
        version = format_version(data) if isinstance(data, dict) else FIRST_FORMAT
        if not isinstance(data, dict) or not isinstance(data.get("search"), dict) or not isinstance(data.get("dataset"), dict):
            raise ValueError("expected an object with 'search' and 'dataset' objects")
        unknown = sorted(set(data) - {"format_version", "search", "dataset"})
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}")
        search = dict(data["search"])
        if version == FIRST_FORMAT:
            search = {name: value for name, value in search.items() if name not in _EXECUTION_FIELDS}
            # A run of format 1 without a space was made before --space existed: it searched the tutorial's space,
            # which is no longer the default. From format 2 every settings.json names its space.
            search.setdefault("space", TUTORIAL)
        elif "space" not in search:
            raise ValueError("missing field(s) space")
        return cls(search=_typed(SearchSettings, search), dataset=_typed(DatasetRecord, data["dataset"]), format_version=version)

    def searched_without(self) -> list[str]:
        """The modern recipe's dimensions this run's format predates, so its search did not declare them."""
        if self.search.space != MODERN:
            return []
        return [name for name, since in RECIPE_SINCE_FORMAT.items() if self.format_version < since]

    def difference(self, other: RunRecord) -> str | None:
        """Why a search with `other` cannot resume this run (another space, tuner, training or dataset, or a modern
        space from before some of its dimensions existed), or None."""
        missing = self.searched_without()
        if missing:
            return (f"searched the modern space before it had {', '.join(missing)} (settings.json format_version "
                    f"{self.format_version}); report.py still reads it")
        for name in COMPARED_ON_RESUME:
            old, new = getattr(self.search, name), getattr(other.search, name)
            if old != new:
                return f"was made with {flag_of(name)} {_shown(old)}, not {_shown(new)}"
        if self.dataset.identity != other.dataset.identity:
            return f"was made from another prepared dataset than '{other.dataset.path}' holds now"
        return None


def _typed(record_class: type, values: dict[str, Any]) -> Any:
    """Build a frozen dataclass from JSON values, refusing an unknown field or a value of the wrong type.

    A field with a default may be missing: it is a setting added since the file was written, and its
    default is what the code did before the setting existed (a setting added that way needs no new
    format_version). Lists become tuples.
    """
    hints = typing.get_type_hints(record_class)
    fields = {item.name: item for item in dataclasses.fields(record_class)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}")
    missing = [name for name, item in fields.items() if name not in values
               and item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    return record_class(**{name: _as_type(name, value, hints[name]) for name, value in values.items()})


def format_version(data: dict[str, Any]) -> int:
    """settings.json's format_version: FIRST_FORMAT when it has none (raises TypeError/ValueError/NewerFormatError)."""
    version = data.get("format_version", FIRST_FORMAT)
    if not isinstance(version, int) or isinstance(version, bool):
        raise TypeError(f"format_version must be int, got {type(version).__name__} {version!r}")
    if version < FIRST_FORMAT:
        raise ValueError(f"format_version must be {FIRST_FORMAT} or more, got {version}")
    if version > FORMAT_VERSION:
        raise NewerFormatError(version)
    return version


def _as_type(name: str, value: Any, kind: Any) -> Any:
    options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
    if value is None and type(None) in options:
        return None
    target = next(option for option in options if option is not type(None))
    if typing.get_origin(target) is tuple:
        if not isinstance(value, list):
            raise TypeError(f"{name} must be a list, got {type(value).__name__}")
        return tuple(_as_type(name, item, typing.get_args(target)[0]) for item in value)
    if target is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    # JSON's true/false are Python ints too; a flag that takes a number must not accept them.
    if not isinstance(value, target) or (isinstance(value, bool) and target is not bool):
        raise TypeError(f"{name} must be {target.__name__}, got {type(value).__name__} {value!r}")
    return value


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(str(item) for item in value) or "(none)"
    return str(value)

