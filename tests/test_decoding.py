"""tuner.data.decoding: parallel decoding gives the serial result, quietly, with a bar only on a terminal."""

import sys

import numpy as np
import pytest

import tuner.data.decoding as decoding
from tests.tiny_data import all_arrays, prepare, smooth


def test_libjpeg_warnings_from_worker_processes_do_not_reach_stderr(tmp_path, write_image, capfd):
    rng = np.random.default_rng(5)
    for index in range(70):
        whole = write_image(tmp_path / "src" / "ok.jpg", smooth(rng, 64, 64), ".jpg").read_bytes()
        target = tmp_path / "damaged" / ("a" if index % 2 else "b") / f"{index}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(whole[:-2] + b"\x00\x01\x02" + whole[-2:])
    dataset, _ = prepare(tmp_path / "damaged", tmp_path / "prepared", workers=2)
    assert sum(dataset.manifest["splits"].values()) == 70
    assert "Corrupt JPEG" not in capfd.readouterr().err


@pytest.mark.parametrize("workers, start_method", [(2, "fork"), (3, "fork"), (2, "spawn")])
def test_parallel_decoding_gives_the_same_result(tmp_path, write_image, monkeypatch, workers, start_method):
    if start_method not in decoding.multiprocessing.get_all_start_methods():
        pytest.skip(f"no {start_method} start method here")
    monkeypatch.setattr(decoding, "_start_method", lambda: start_method)
    rng = np.random.default_rng(0)
    for index in range(80):
        write_image(tmp_path / "many" / ("a" if index % 2 else "b") / f"{index}.png", rng.integers(0, 256, (20, 20), dtype=np.uint8))
    (tmp_path / "many" / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    serial, _ = prepare(tmp_path / "many", tmp_path / "serial", workers=1)
    parallel, _ = prepare(tmp_path / "many", tmp_path / "parallel", workers=workers)
    assert all(np.array_equal(a, b) for a, b in zip(all_arrays(serial), all_arrays(parallel)))
    assert parallel.manifest["skipped"] == [{"file": "a/broken.jpg", "reason": "truncated JPEG (cut off before the image data)"}]


def test_progress_bar_only_on_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    bar = decoding._ProgressBar(4, enabled=True, label="decoding")
    bar.update(4)
    bar.close()
    assert "4/4" in capsys.readouterr().err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    bar = decoding._ProgressBar(4, enabled=True, label="decoding")
    bar.update(4)
    bar.close()
    assert capsys.readouterr().err == ""
