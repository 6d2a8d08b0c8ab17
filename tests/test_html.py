"""tuner.report.html: RUN/report.html of a real tiny run parses, holds every section, needs nothing outside itself,
and shows class names, file names and values as text, never as markup."""

import contextlib
import html
import io
import json
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest

import report as report_script
from tests.helpers import search_args
from tests.tiny_data import write_tiny_prepared
from tuner.data.cache import load_prepared, save_prepared
from tuner.config import ReportSettings
from tuner.report import build_report
from tuner.report.figures import thumbnail_png
from tuner.report.html import SECTIONS, render_html
from tuner.report.html_winner import MISTAKES_SHOWN
from tuner.report.markup import facts, paragraph, table
from tuner.names import escape_character
from tuner.rundir import load_run_dataset

QUICK = ["--confirm", "0", "--no-retrain", "--no-export"]
# Elements that never have an end tag.
VOID = {"meta", "img", "br", "hr", "link", "input", "source", "col", "wbr", "area", "base", "embed", "track"}
HOSTILE_CLASS = "<script>alert(1)</script>"
HOSTILE_FILE = '<img src=x onerror="alert(2)">.jpg'
# Every bidi control, C0 controls but tab and newline, DEL and C1 controls: none may reach the page raw.
RAW = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\x00\x07\x1b\r\x7f\x85\x9b"


class Page(HTMLParser):
    """A strict reading of the page: every element closed in order, and every id, src, href and script collected."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.open, self.problems, self.ids, self.links, self.scripts, self.thumbs = [], [], set(), [], [], 0
        self.feed(text)
        self.close()
        if self.open:
            self.problems.append(f"never closed: {self.open}")

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.add(attributes["id"])
        self.links += [(tag, name, value or "") for name, value in attrs if name in ("src", "href")]
        if tag == "script":
            self.scripts.append(attributes)
        if tag == "img" and attributes.get("class") == "thumb":
            self.thumbs += 1
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()


def assert_self_contained(text):
    page = Page(text)
    assert not page.problems, page.problems
    assert {anchor for anchor, _ in SECTIONS} <= page.ids
    for tag, name, value in page.links:
        assert value.startswith(("data:", "#")), f"<{tag} {name}={value[:60]!r}> points outside the page"
    assert page.scripts and all("src" not in script for script in page.scripts)
    assert "url(" not in text and "@import" not in text
    return page


def test_report_writes_a_self_contained_page_and_no_html_writes_none(run_copy, capsys):
    assert report_script.main(["--run-dir", str(run_copy), *QUICK, "--no-html"]) == 0
    assert not (run_copy / "report.html").exists()
    assert report_script.main(["--run-dir", str(run_copy), *QUICK]) == 0
    assert f"wrote {run_copy / 'report.html'}" in capsys.readouterr().out
    text = (run_copy / "report.html").read_text(encoding="utf-8")
    assert_self_contained(text)
    assert text.count('src="data:image/png;base64,') >= 4  # curves, parallel coordinates, per value, Pareto
    for expected in ("class0", "Failed trials (1)", "need images of at least", "true \\ predicted", "PED-ANOVA", "test images misclassified",
                     "the search process itself (--workers 0)"):
        assert expected in text
    assert len(text) < 3_000_000
    winner = json.loads((run_copy / "results.json").read_text())["winner"]
    assert f"{winner['test']['accuracy']:.4f} (95% interval" in text
    mirror = winner["mirror_average"]
    assert f"<dt>mirror averaging</dt><dd>{'on' if mirror['used'] else 'off'}: {html.escape(mirror['reason'])}</dd>" in text


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A one-trial search and report on a dataset whose class and file names are markup."""
    from tuner.execution.roles import run_search

    base = tmp_path_factory.mktemp("hostile")
    dataset = load_prepared(write_tiny_prepared(base / "plain", side=16, per_class=(12, 4, 4)))
    arrays = {f"{kind}_{split}": getattr(dataset, f"{kind}_{split}") for split in ("train", "val", "test") for kind in "xy"}
    manifest = {"class_names": [HOSTILE_CLASS, f'b&"q{RAW}'], "img_size": 16, "color": "grayscale", "seed": 0,
                "skipped": [{"file": HOSTILE_FILE, "reason": "not an image"}, {"file": f"x{RAW}.jpg", "reason": "empty"}],
                "test_files": [f"cat{RAW}gnp.exe{row}" for row in range(len(dataset.y_test))]}
    save_prepared(base / "prepared", arrays, manifest)
    run_search(*search_args(data=str(base / "prepared"), run_dir=str(base / "run"), epochs=1, conv_layers=(1,),
                            nodes=(4,), dense_layers=(0,), patience=0, quiet=True, workers="0"))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert report_script.main(["--run-dir", str(base / "run"), *QUICK]) == 0
    return base / "run", out.getvalue() + err.getvalue()


def test_class_and_file_names_are_escaped_never_markup(hostile_run):
    text = (hostile_run[0] / "report.html").read_text(encoding="utf-8")
    assert_self_contained(text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>alert(1)" not in text
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;.jpg" in text and "<img src=x" not in text
    assert "b&amp;&quot;q" in text


def test_control_and_bidi_characters_in_names_are_shown_escaped_on_the_page_and_the_terminal(hostile_run):
    run, terminal = hostile_run
    shown = "".join(escape_character(character) for character in RAW)
    text = (run / "report.html").read_text(encoding="utf-8")
    assert [character for character in RAW if character in text] == []
    assert f"b&amp;&quot;q{shown}" in text  # the class name, in the data's and the winner's sections
    assert f"x{shown}.jpg" in text and f"cat{shown}gnp.exe" in text  # a skipped file and a misclassified one
    assert [character for character in RAW if character in terminal] == []
    assert f"cat{shown}gnp.exe" in terminal and f'b&"q{shown}' in terminal  # the winner's mistakes and classes


def test_string_cells_and_facts_are_escaped_like_names():
    text = table(["hyperparameter"], [[f"double{RAW}"]]) + facts([(f"k{RAW}", f"v{RAW}")]) + paragraph(RAW)
    assert [character for character in RAW if character in text] == [] and "double\\u061c" in text


def _report_and_dataset(run_dir):
    report = build_report(ReportSettings(run_dir=str(run_dir), confirm=(0,)))
    return report, load_run_dataset(report.record)


def _winner_json(dataset, count):
    """A winner's results.json entry with `count` misclassified test images, as winner.py records them."""
    names = dataset.class_names
    mistakes = [{"index": index % len(dataset.y_test), "file": f"{names[0]}/img{index}.png", "true": names[0],
                 "predicted": names[1], "probability": 0.99 - index / 1000} for index in range(count)]
    return {"trial": "0", "retrained": False, "epochs": None, "model": "/nowhere",
            "test": {"images": len(dataset.y_test), "loss": 0.5, "accuracy": 0.75, "accuracy_interval": [0.5, 0.9],
                     "interval": "Wilson score interval, 95%", "confusion_matrix": [[5, 3], [0, 8]],
                     "per_class": [{"class": name, "precision": None, "recall": 0.5, "support": 8} for name in names]},
            "exports": {}, "misclassified": mistakes}


@pytest.mark.parametrize("count", [5, MISTAKES_SHOWN + 7])
def test_the_misclassified_section_shows_a_thumbnail_per_mistake_up_to_the_cap(run_copy, count):
    report, dataset = _report_and_dataset(run_copy)
    text = render_html(report, _winner_json(dataset, count), dataset)
    page = assert_self_contained(text)
    assert page.thumbs == min(count, MISTAKES_SHOWN)
    assert ("... and 7 more" in text) == (count > MISTAKES_SHOWN)
    assert "class0/img0.png" in text and "99.0%" in text
    assert 'class="number diagonal">5<' in text  # the confusion matrix from results.json


def test_importances_are_drawn_and_tabled_when_results_json_has_them(run_copy):
    report, dataset = _report_and_dataset(run_copy)
    importances = {"method": "PED-ANOVA", "trials": 2, "reliable": False, "note": "only 2 trials: a rough guide",
                   "values": [{"hyperparameter": "conv_layers", "importance": 0.9},
                              {"hyperparameter": "nodes", "importance": 0.1}]}
    with_them = render_html(report, None, dataset, importances)
    without = render_html(report, None, dataset)
    section = with_them.split('id="importances"')[1].split("<section>")[0]
    assert "PED-ANOVA" in section and "conv_layers" in section and "only 2 trials" in section
    assert "data:image/png" in section
    assert "not available" in without.split('id="importances"')[1].split("<section>")[0]
    assert "no winner was recorded" in without


@pytest.mark.parametrize("shape", [(16, 16, 1), (32, 32, 3), (200, 100, 3)])
def test_thumbnails_are_readable_pngs_with_the_colours_of_the_array(shape):
    image = np.zeros(shape, np.uint8)
    image[..., 0] = 255  # red in RGB (white in grayscale)
    decoded = cv2.imdecode(np.frombuffer(thumbnail_png(image), np.uint8), cv2.IMREAD_UNCHANGED)
    assert max(decoded.shape[:2]) == 96
    if shape[2] == 3:
        assert tuple(decoded[0, 0]) == (0, 0, 255)  # BGR as OpenCV decodes it: still red
    else:
        assert decoded.ndim == 2 and decoded[0, 0] == 255
    # Nearest-neighbour: a small image is enlarged in whole blocks, not smoothed.
    assert len(np.unique(decoded)) == len(np.unique(image))


def test_a_folder_where_report_html_goes_is_refused_before_any_training(run_copy, capsys):
    (run_copy / "report.html").mkdir()
    assert report_script.main(["--run-dir", str(run_copy), "--confirm", "1", "1"]) == 2
    err = capsys.readouterr().err
    assert f"'{run_copy / 'report.html'}' is a folder where report.py writes a file" in err
    assert not (run_copy / "best").exists()


def test_a_continuous_dimension_shows_as_its_range_and_a_discrete_one_as_its_values():
    from tuner.config.spaces import FloatRange
    from tuner.report.html import searched_values

    shown = str(searched_values(FloatRange(1e-4, 1e-2, log=True), [0.00012, 0.0031, 0.0077]))
    assert shown == "<code>0.0001</code> to <code>0.01</code>, log scale (3 values tried)"
    assert str(searched_values((32, 64), [32, 64])) == "<code>32</code>, <code>64</code>"
