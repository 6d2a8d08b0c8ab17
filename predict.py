"""Classify images with the winner report.py saved: one line of path, label and probability per image.

    python predict.py --model runs/asha/best my_photo.jpg holiday_photos/
    python predict.py --runtime litert --model runs/asha/best my_photo.jpg     # the LiteRT export, no TensorFlow
"""

import sys

from tuner.cli import import_tensorflow_quietly, run_cli
from tuner.config import PredictSettings, parse_settings


def _predict(argv):
    settings = parse_settings(PredictSettings, argv, "predict.py", "Classify images with the best model report.py saved.")
    from tuner.names import for_terminal
    from tuner.winner.predict import Classifier, exit_status, find_images, render

    files = find_images(settings.paths)
    if settings.runtime == "keras":
        import_tensorflow_quietly()  # the LiteRT runtimes never load TensorFlow
    classifier = Classifier.load(settings.model, settings.runtime)

    def report_skip(path, reason):
        print(for_terminal(f"skipped {path}: {reason}"), file=sys.stderr, flush=True)  # a reason can quote a name too

    for chunk in render(classifier.classify(files, settings.batch_size, report_skip), settings.format):
        sys.stdout.write(chunk)
        sys.stdout.flush()
    return exit_status(classifier)


def main(argv=None):
    return run_cli(_predict, argv)


if __name__ == "__main__":
    sys.exit(main())
