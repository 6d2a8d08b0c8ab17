"""The one exception that means "the user gave bad input": scripts turn it into exit 2."""

from __future__ import annotations


class TunerUsageError(ValueError):
    """Bad input or usage; the message is one line saying what was expected, what was found and what to do."""


class SearchFailedError(RuntimeError):
    """The work could not be done (e.g. every trial failed); the message summarises why. Exit 1."""
