"""Clean, resize, deduplicate, balance, split and cache an image folder for the search:

    python data_prep.py --data-dir PetImages --img-size 50 --color grayscale
"""

import sys
from pathlib import Path

from tuner.cli import run_cli
from tuner.config import PrepSettings, parse_settings
from tuner.data.cache import DATASET_FILE, MANIFEST_FILE
from tuner.data.prepare import format_summary, prepare_dataset


def _prepare(argv):
    settings = parse_settings(PrepSettings, argv, prog="data_prep.py", description=__doc__.splitlines()[0])
    dataset, reused = prepare_dataset(settings, progress=not settings.quiet)
    out = Path(settings.out)
    verb = "Reused the up-to-date" if reused else "Wrote the"
    print(f"{verb} prepared dataset {out / DATASET_FILE} (details in {out / MANIFEST_FILE})")
    print(format_summary(dataset))
    return 0


def main(argv=None) -> int:
    return run_cli(_prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
