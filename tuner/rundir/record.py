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
from tuner.config.spaces import TUTORIAL

# Older versions wrote how a search was executed (workers, quiet, ...) into settings.json beside what
# defines it; those names are dropped on reading, so their runs still resume. Any other unknown name is damage.
_EXECUTION_FIELDS = frozenset(item.name for item in dataclasses.fields(ExecutionOptions))


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

    def to_json(self) -> dict[str, Any]:
        return {"search": settings_to_dict(self.search), "dataset": settings_to_dict(self.dataset)}

    @classmethod
    def from_json(cls, data: Any) -> RunRecord:
        """Parse settings.json's contents, checking every field's type (raises TypeError/ValueError/KeyError).

        Strict: an unknown field is damage, but for the execution options older versions saved.
        """
        if not isinstance(data, dict) or not isinstance(data.get("search"), dict) or not isinstance(data.get("dataset"), dict):
            raise ValueError("expected an object with 'search' and 'dataset' objects")
        search = {name: value for name, value in data["search"].items() if name not in _EXECUTION_FIELDS}
        # Before --space existed every run searched the tutorial's space (the default has changed since).
        search.setdefault("space", TUTORIAL)
        return cls(search=_typed(SearchSettings, search), dataset=_typed(DatasetRecord, data["dataset"]))

    def difference(self, other: RunRecord) -> str | None:
        """Why a search with `other` cannot resume this run (another space, tuner, training or dataset), or None."""
        for name in COMPARED_ON_RESUME:
            old, new = getattr(self.search, name), getattr(other.search, name)
            if old != new:
                return f"was made with {flag_of(name)} {_shown(old)}, not {_shown(new)}"
        if self.dataset.identity != other.dataset.identity:
            return f"was made from another prepared dataset than '{other.dataset.path}' holds now"
        return None


def _typed(record_class: type, values: dict[str, Any]) -> Any:
    """Build a frozen dataclass from JSON values, refusing an unknown field or a value of the wrong type.

    A field with a default may be missing: it is a setting added since the file was written, and
    its default is what that older version did. Lists become tuples.
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

