"""Command-line flags derived from the settings dataclasses (`max_trials` becomes `--max-trials`), and back to argv."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, TypeVar

from tuner.config.settings import ExecutionOptions, SearchSettings
from tuner.errors import TunerUsageError

SettingsT = TypeVar("SettingsT")
SEARCH_DESCRIPTION = "Find the best small CNN for a prepared dataset with KerasTuner."


def flag_of(field_name: str) -> str:
    """The command-line flag of a Settings field: max_trials -> --max-trials."""
    return "--" + field_name.replace("_", "-")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises TunerUsageError instead of exiting, so scripts keep one error path."""

    def error(self, message: str) -> typing.NoReturn:
        raise TunerUsageError(f"{message}; see {self.prog} --help.")


def build_parser(settings_classes: type | tuple[type, ...], prog: str, description: str) -> argparse.ArgumentParser:
    """Derive an argparse parser from one or more Settings dataclasses: `max_trials` becomes `--max-trials`.

    Args:
        settings_classes: a Settings dataclass, or several whose flags one script takes
            (search.py: SearchSettings and ExecutionOptions).
        prog: the script name shown in usage lines.
        description: the first line of --help.

    Returns:
        A parser whose parsed namespace has exactly the dataclasses' fields.
    """
    classes = settings_classes if isinstance(settings_classes, tuple) else (settings_classes,)
    parser = _Parser(prog=prog, description=description)
    seen: set[str] = set()
    for settings_class in classes:
        hints = typing.get_type_hints(settings_class)
        for item in dataclasses.fields(settings_class):
            if item.name in seen:  # a programming error: two dataclasses would fight over one flag
                raise ValueError(f"{item.name} is a field of more than one of {[c.__name__ for c in classes]}")
            seen.add(item.name)
            _add_flag(parser, item, hints[item.name])
    return parser


def _add_flag(parser: argparse.ArgumentParser, item: dataclasses.Field[Any], kind: Any) -> None:
    extras = dict(item.metadata["argparse"])
    help_text = _with_default(item.metadata["help"], item.default)
    positional = item.metadata["positional"]
    names = [item.name] if positional else [flag_of(item.name)]
    destination = {} if positional else {"dest": item.name}
    if kind is bool:
        parser.add_argument(*names, **destination, action="store_true", help=help_text)
        return
    args = typing.get_args(kind)
    if typing.get_origin(kind) is tuple:
        # Lists are tuples in Settings so the dataclass stays hashable and frozen.
        metavar = None if "choices" in extras else ("PATH" if positional else "N")
        parser.add_argument(*names, **destination, nargs="*" if positional else "+", type=args[0],
                            default=item.default, help=help_text, **{"metavar": metavar, **extras})
        return
    scalar = next((arg for arg in args if arg is not type(None)), kind)
    parser.add_argument(*names, **destination, type=scalar, default=item.default, help=help_text, **extras)


def _with_default(help_text: str, default: Any) -> str:
    if default is None or default is False or default == ():
        return help_text  # the help text says what happens then
    shown = " ".join(str(part) for part in default) if isinstance(default, tuple) else default
    return f"{help_text} (default: {shown})"


def parse_flags(settings_classes: tuple[type, ...], argv: list[str] | None, prog: str,
                description: str) -> tuple[Any, ...]:
    """Parse command-line flags into one validated instance of each Settings class (TunerUsageError on bad input)."""
    namespace = vars(build_parser(settings_classes, prog, description).parse_args(argv))
    values = {name: tuple(value) if isinstance(value, list) else value for name, value in namespace.items()}
    return tuple(settings_class(**{item.name: values[item.name] for item in dataclasses.fields(settings_class)})
                 for settings_class in settings_classes)


def parse_settings(settings_class: type[SettingsT], argv: list[str] | None, prog: str, description: str) -> SettingsT:
    """Parse command-line flags into a validated Settings instance (raises TunerUsageError on bad input)."""
    return parse_flags((settings_class,), argv, prog, description)[0]


def parse_search_flags(argv: list[str] | None, prog: str = "search.py",
                       description: str = SEARCH_DESCRIPTION) -> tuple[SearchSettings, ExecutionOptions]:
    """search.py's flags, from one parser: what the run is, and how this process takes part in it.

    Raises:
        TunerUsageError: a flag is unknown, malformed or out of range.
    """
    settings, options = parse_flags((SearchSettings, ExecutionOptions), argv, prog, description)
    return settings, options


def settings_to_argv(*settings: Any) -> list[str]:
    """The flags that parse back into `settings` (one or more Settings instances), to start another process.

    A field at its default is left out: the other process has the same defaults, and its
    command line (in `ps`) shows only what was chosen. The default is the value a Settings made
    with no arguments ends up with (a default resolved in __post_init__, as the tuner, included),
    unless the chosen fields resolve it to another value (the tuner of --space tutorial is grid, so
    its asha must be said).
    """
    argv: list[str] = []
    for instance in settings:
        fields = dataclasses.fields(instance)
        defaults = type(instance)()
        chosen = {item.name for item in fields if getattr(instance, item.name) != getattr(defaults, item.name)}
        # What the other process would make of the chosen flags alone: a field it resolves otherwise is said too.
        resolved = type(instance)(**{name: getattr(instance, name) for name in chosen})
        chosen |= {item.name for item in fields if getattr(resolved, item.name) != getattr(instance, item.name)}
        for item in fields:
            value = getattr(instance, item.name)
            if item.name not in chosen:
                continue
            flag = [] if item.metadata["positional"] else [flag_of(item.name)]
            if value is True:
                argv += flag
            elif isinstance(value, tuple):
                argv += [*flag, *(str(part) for part in value)]
            elif value is not None and value is not False:
                argv += [*flag, str(value)]
    return argv
