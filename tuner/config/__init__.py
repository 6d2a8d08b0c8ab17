"""Settings for every step, one frozen dataclass each (settings), with command-line flags derived from the fields (flags)."""

from __future__ import annotations

from tuner.config.flags import (
    build_parser,
    flag_of,
    parse_flags,
    parse_search_flags,
    parse_settings,
    settings_to_argv,
)
from tuner.config.settings import (
    AUGMENT_CHOICES,
    COLOR_MODES,
    COMPARED_ON_RESUME,
    DEFAULT_PREPARED_DIR,
    DEFAULT_RUNS_DIR,
    DEFAULT_SAMPLE_DIR,
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_SEED,
    MAX_WORKERS,
    PREDICT_FORMATS,
    PRUNE_RULES,
    REPORT_FORMATS,
    ROLES,
    RUNTIMES,
    TUNER_NAMES,
    ExecutionOptions,
    PredictSettings,
    PrepSettings,
    ReportSettings,
    SearchSettings,
    settings_to_dict,
)
from tuner.config.spaces import smallest_side_for

__all__ = [
    "AUGMENT_CHOICES", "COLOR_MODES", "COMPARED_ON_RESUME", "DEFAULT_PREPARED_DIR", "DEFAULT_RUNS_DIR",
    "DEFAULT_SAMPLE_DIR", "MAX_BATCH_SIZE", "MAX_EPOCHS", "MAX_SEED", "MAX_WORKERS", "PREDICT_FORMATS", "PRUNE_RULES",
    "REPORT_FORMATS", "ROLES", "RUNTIMES", "TUNER_NAMES", "ExecutionOptions", "PredictSettings", "PrepSettings",
    "ReportSettings", "SearchSettings", "build_parser", "flag_of", "parse_flags", "parse_search_flags",
    "parse_settings", "settings_to_argv", "settings_to_dict", "smallest_side_for",
]
