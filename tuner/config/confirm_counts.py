"""How many confirm runs: `--confirm K R` of search.py and report.py, checked and resolved against the run's tuner."""

from __future__ import annotations

from tuner.errors import TunerUsageError

# --confirm by the run's tuner (None: any other): 3 x 2 shows a lucky winner drop (BENCHMARKS.md); asha's top
# rung already trained its best configurations in full, so 2 x 1 keeps its search + report near half the loop's time.
DEFAULT_CONFIRM: dict[str | None, tuple[int, int]] = {None: (3, 2), "asha": (2, 1)}
MAX_CONFIRM_TOP, MAX_CONFIRM_SEEDS = 100, 20


def require_confirm(confirm: tuple[int, ...]) -> None:
    """Refuse a --confirm that is not empty (the default), 0 (off) or K R within range."""
    if confirm not in ((), (0,)) and not (len(confirm) == 2 and 0 <= confirm[0] <= MAX_CONFIRM_TOP
                                          and 0 <= confirm[1] <= MAX_CONFIRM_SEEDS):
        raise TunerUsageError(
            f"--confirm takes K R (top configurations 0..{MAX_CONFIRM_TOP}, more seeds each 0..{MAX_CONFIRM_SEEDS}) "
            f"or 0 for off, got {' '.join(map(str, confirm)) or 'nothing'}; e.g. --confirm 3 2."
        )


def confirm_counts(confirm: tuple[int, ...], tuner: str | None) -> tuple[int, int]:
    """(K, R) of a --confirm value for a run searched by `tuner`: configurations to confirm and further seeds
    each; the tuner's default (DEFAULT_CONFIRM) when empty, and (0, 0) when off."""
    if confirm == (0,):
        return (0, 0)
    top, seeds = confirm or DEFAULT_CONFIRM.get(tuner, DEFAULT_CONFIRM[None])
    return (top, seeds) if top and seeds else (0, 0)
