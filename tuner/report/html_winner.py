"""The sections of report.html on the winner: its test score, its exports, the test images it gets wrong, and the
health of the data it was trained on."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from tuner.data.cache import PreparedDataset
from tuner.files import read_json
from tuner.report.plots import format_value
from tuner.report.figures import thumbnail_png
from tuner.report.markup import MISSING, Markup, esc, facts, fmt, paragraph, png_image, table, unavailable
from tuner.trials.rows import TrialRow
from tuner.rundir import METADATA_FILE

# Enough mistakes to see a pattern (a mislabelled folder, a junk class) without a page of hundreds of images.
MISTAKES_SHOWN = 60
# Files listed per kind in the data's health; the manifest has them all.
FILES_SHOWN = 50


def winner_section(winner_json: dict[str, Any] | None, winner: TrialRow | None, dataset: PreparedDataset) -> list[str]:
    """The winner's test score with its interval, its hyperparameters, confusion matrix, per-class precision and
    recall, and its LiteRT exports."""
    if not isinstance(winner_json, dict):
        return [unavailable("not available: no winner was recorded")]
    test = winner_json.get("test") if isinstance(winner_json.get("test"), dict) else {}
    interval = test.get("accuracy_interval") or [None, None]
    how = (f"retrained for {winner_json.get('epochs')} epoch(s) on train + validation" if winner_json.get("retrained")
           else "the trial's own best-epoch weights")
    score = (f"{fmt(test.get('accuracy'))} (95% interval {fmt(interval[0], 3)} to {fmt(interval[1], 3)}, "
             f"{test.get('interval', 'Wilson score interval')}) on {fmt(test.get('images'))} test images, scored once")
    items: list[tuple[str, Any]] = [("trial", winner_json.get("trial")), ("model", how), ("test accuracy", score),
                                    ("test loss", test.get("loss")), ("saved in", winner_json.get("model"))]
    mirror = winner_json.get("mirror_average")
    if isinstance(mirror, dict):  # a winner saved before mirror averaging existed has none
        items.insert(2, ("mirror averaging", f"{'on' if mirror.get('used') else 'off'}: {mirror.get('reason')}"))
    if winner is not None and winner.trial == winner_json.get("trial"):
        items.insert(1, ("hyperparameters", ", ".join(f"{name}={format_value(value)}"
                                                      for name, value in winner.configuration().items())))
    parts: list[str] = [facts(items)]
    names, matrix = dataset.class_names, _confusion_matrix(winner_json, test)
    if matrix is not None and len(matrix) == len(names):
        parts += [Markup("<h3>Confusion matrix (rows: true class, columns: predicted class)</h3>"),
                  _matrix_table(names, matrix)]
    else:
        parts.append(unavailable("confusion matrix: not available"))
    per_class = [item for item in test.get("per_class") or [] if isinstance(item, dict)]
    parts += [Markup("<h3>Per class</h3>"),
              table(["class", "precision", "recall", "test images"],
                    [[item.get("class"), item.get("precision"), item.get("recall"), item.get("support")] for item in per_class]),
              paragraph("Precision: of the images predicted as the class, the share that are; recall: of the images "
                        "of the class, the share found. No precision for a class never predicted.")]
    parts += _exports(winner_json.get("exports"))
    return parts


def _confusion_matrix(winner_json: dict[str, Any], test: dict[str, Any]) -> list[list[int]] | None:
    """The confusion matrix from results.json when it holds one, else from the saved winner's metadata.json."""
    matrix = winner_json.get("confusion_matrix") or test.get("confusion_matrix")
    if matrix is None and winner_json.get("model"):
        metadata = read_json(Path(str(winner_json["model"])) / METADATA_FILE, kind="metadata")
        metadata_test = metadata.get("test") if isinstance(metadata, dict) else None
        matrix = metadata_test.get("confusion_matrix") if isinstance(metadata_test, dict) else None
    if not isinstance(matrix, list) or not all(isinstance(row, list) for row in matrix):
        return None
    return matrix


def _matrix_table(names: Sequence[str], matrix: list[list[int]]) -> Markup:
    head = "".join(f"<th>{esc(name)}</th>" for name in names)
    body = "".join(
        f"<tr><th>{esc(name)}</th>" + "".join(
            f'<td class="number {"diagonal" if row == column else ("error" if count else "")}">{esc(fmt(count))}</td>'
            for column, count in enumerate(counts)) + "</tr>"
        for row, (name, counts) in enumerate(zip(names, matrix)))
    return Markup(f'<div class="scroll"><table><thead><tr><th>true \\ predicted</th>{head}</tr></thead>'
                  f"<tbody>{body}</tbody></table></div>")


def _exports(exports: Any) -> list[str]:
    if not isinstance(exports, dict) or not exports:
        return [Markup("<h3>Exports</h3>"), unavailable("no LiteRT export (report.py --no-export)")]
    rows = []
    for kind, check in exports.items():
        check = check if isinstance(check, dict) else {}
        agreement = check.get("agreement")
        shown = f"{agreement:.2%}" if isinstance(agreement, (int, float)) else None
        rows.append([kind, check.get("file"), check.get("bytes"), shown, check.get("disagreements"),
                     check.get("accuracy"), check.get("keras_accuracy"), check.get("latency_ms"), check.get("threads")])
    return [Markup("<h3>LiteRT exports, each checked against the Keras model on the test split</h3>"),
            table(["kind", "file", "bytes", "same label as Keras", "different labels", "accuracy",
                   "Keras accuracy", "ms per image (batch 1)", "threads"], rows, digits={"ms per image (batch 1)": 3})]


def misclassified_section(winner_json: dict[str, Any] | None, dataset: PreparedDataset) -> list[str]:
    """The test images the winner gets wrong, most confident first: thumbnail, true and predicted class, the
    probability it gave, and the source file, so a mislabelled or broken image can be found and fixed."""
    mistakes = winner_json.get("misclassified") if isinstance(winner_json, dict) else None
    if not isinstance(mistakes, list):
        return [unavailable("not available: results.json does not list the winner's misclassified test images")]
    if not mistakes:
        return [paragraph("None: the winner classified every test image correctly.")]
    cards = []
    for mistake in mistakes[:MISTAKES_SHOWN]:
        mistake = mistake if isinstance(mistake, dict) else {}
        index = mistake.get("index")
        valid = isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(dataset.x_test)
        image = (png_image(thumbnail_png(dataset.x_test[index]), f"test image {index}", css="thumb") if valid
                 else unavailable("no image"))
        probability = mistake.get("probability")
        shown = f"{probability:.1%}" if isinstance(probability, (int, float)) else MISSING
        cards.append(f'<figure class="mistake">{image}<figcaption>true: <b>{esc(mistake.get("true", MISSING))}</b><br>'
                     f'predicted: <b>{esc(mistake.get("predicted", MISSING))}</b> ({esc(shown)})<br>'
                     f'<span class="file">{esc(mistake.get("file") or f"test image {index}")}</span></figcaption></figure>')
    parts: list[str] = [paragraph(f"{len(mistakes)} of {len(dataset.y_test)} test images misclassified, the most "
                                  "confident mistakes first (the probability is the one the winner gave its wrong "
                                  "answer). A confident mistake is often a mislabelled or broken image: the file "
                                  "name, relative to the data folder, says where to look."),
                        Markup('<div class="thumbs">' + "".join(cards) + "</div>")]
    if len(mistakes) > MISTAKES_SHOWN:
        parts.append(paragraph(f"... and {len(mistakes) - MISTAKES_SHOWN} more, listed in results.json (winner, misclassified)."))
    return parts


def data_section(manifest: dict[str, Any]) -> list[str]:
    """Per class: files found, loaded, skipped (with reasons), duplicates, mislabelled, kept and per split; then
    the skipped, duplicate and mislabelled files themselves, a few of each."""
    counts = manifest.get("counts") if isinstance(manifest.get("counts"), dict) else {}
    rows = []
    for name in manifest.get("class_names", []):
        entry = counts.get(name, {})
        skipped = entry.get("skipped") if isinstance(entry.get("skipped"), dict) else None
        reasons = (", ".join(f"{count} {reason}" for reason, count in skipped.items()) or "none") if skipped is not None else None
        rows.append([name, entry.get("found"), entry.get("loaded"), reasons, entry.get("duplicates"),
                     entry.get("mislabelled"), entry.get("kept"), entry.get("train"), entry.get("val"), entry.get("test")])
    source = manifest.get("source") if isinstance(manifest.get("source"), dict) else {}
    folder = str(source.get("data_dir", "not recorded")) + (" (the built-in sample)" if source.get("builtin_sample") else "")
    items: list[tuple[str, Any]] = [("image folder", folder), ("files found", source.get("files")),
                                    ("balanced", manifest.get("balanced")), ("split seed", str(manifest.get("seed", "not recorded")))]
    parts: list[str] = [facts(items), table(["class", "found", "loaded", "skipped", "duplicates", "mislabelled", "kept",
                                             "train", "validation", "test"], rows, sortable=True),
                        paragraph("Duplicates: exact repeats within a class, kept once. Mislabelled: the same image "
                                  "found under more than one class, dropped from all."
                                  + ("" if source else " A dash: not recorded (the dataset was not prepared by "
                                                       "data_prep.py from an image folder)."))]
    listed = [("Skipped files", ["file", "reason"], [[item.get("file"), item.get("reason")] for item in _items(manifest, "skipped")]),
              ("Duplicates", ["file", "same image as"], [[item.get("file"), item.get("same_as")] for item in _items(manifest, "duplicates")]),
              ("Mislabelled (in more than one class)", ["files"],
               [["; ".join(map(str, item.get("files", [])))] for item in _items(manifest, "mislabelled")])]
    for title, headers, found in listed:
        if found:
            parts += [Markup(f"<h3>{esc(title)} ({len(found)})</h3>"), table(headers, found[:FILES_SHOWN])]
            if len(found) > FILES_SHOWN:
                parts.append(paragraph(f"... and {len(found) - FILES_SHOWN} more, listed in the dataset's manifest.json."))
    return parts


def _items(manifest: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [item for item in manifest.get(key) or [] if isinstance(item, dict)]
