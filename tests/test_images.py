"""tuner.data.images: every format and every kind of junk file, decoded or skipped with a reason."""

import os
import sys

import cv2
import numpy as np
import pytest

from tests.tiny_data import smooth, two_tone
from tuner.data.images import decode_image

LOSSLESS = [(".png", "a.png"), (".bmp", "a.bmp"), (".tiff", "a.tif"), (".webp", "a.webp"), (".png", "png named.jpg")]


@pytest.mark.parametrize("ext, name", LOSSLESS)
def test_lossless_formats_keep_colour_and_rgb_order(tmp_path, write_image, ext, name):
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == ".webp" else []  # 101 = lossless WebP
    path = write_image(tmp_path / name, two_tone(), ext, params)
    image, reason = decode_image(path, 20, "rgb")
    assert reason is None
    assert image.shape == (20, 20, 3) and image.dtype == np.uint8
    assert image[:, :10].mean(axis=(0, 1)).round().tolist() == [255, 0, 0]  # left half red, in RGB order
    assert image[:, 10:].mean(axis=(0, 1)).round().tolist() == [0, 0, 255]


@pytest.mark.parametrize("name", ["photo.jpg", "PHOTO.JPG", "no extension", "chat été 猫.jpeg"])
def test_jpeg_under_any_name(tmp_path, write_image, name):
    path = write_image(tmp_path / name, two_tone(), ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95])
    gray, reason = decode_image(path, 16, "grayscale")
    assert reason is None and gray.shape == (16, 16, 1)
    rgb, _ = decode_image(path, 16, "rgb")
    assert abs(int(rgb[8, 2, 0]) - 255) < 12 and rgb[8, 2, 2] < 12  # red stays red


def test_gif_decodes(tmp_path, write_image):
    path = write_image(tmp_path / "anim.gif", two_tone(), ".gif")
    image, reason = decode_image(path, 20, "rgb")
    assert reason is None and image.shape == (20, 20, 3)
    assert image[:, :10, 0].mean() > 200 and image[:, :10, 2].mean() < 50


def test_cmyk_jpeg_decodes_to_the_right_colour(tmp_path):
    image_module = pytest.importorskip("PIL.Image")
    path = tmp_path / "cmyk.JPG"
    image_module.fromarray(two_tone()[..., ::-1].copy()).convert("CMYK").save(path, quality=95)
    image, reason = decode_image(path, 20, "rgb")
    assert reason is None and image.shape == (20, 20, 3)
    assert image[:, :8].mean(axis=(0, 1)).round().tolist()[0] > 240 and image[:, :8, 2].mean() < 15


def test_png_alpha_is_composited_onto_white(tmp_path, write_image):
    image = np.zeros((20, 20, 4), np.uint8)
    image[..., 2] = 255  # red everywhere ...
    image[:, :10, 3] = 255  # ... opaque on the left, fully transparent on the right
    path = write_image(tmp_path / "alpha.png", image)
    rgb, reason = decode_image(path, 20, "rgb")
    assert reason is None
    assert rgb[:, :10].reshape(-1, 3).mean(axis=0).round().tolist() == [255, 0, 0]
    assert rgb[:, 10:].reshape(-1, 3).mean(axis=0).round().tolist() == [255, 255, 255]


def test_opaque_alpha_is_simply_dropped(tmp_path, write_image):
    image = np.dstack([two_tone(20, 20), np.full((20, 20), 255, np.uint8)])
    rgb, reason = decode_image(write_image(tmp_path / "opaque.png", image), 20, "rgb")
    assert reason is None and rgb[5, 2].tolist() == [255, 0, 0]


def test_gray_with_alpha_png(tmp_path):
    image_module = pytest.importorskip("PIL.Image")
    path = tmp_path / "la.png"
    pixels = np.dstack([np.full((10, 10), 100, np.uint8), np.full((10, 10), 255, np.uint8)])
    image_module.fromarray(pixels, "LA").save(path)
    gray, reason = decode_image(path, 10, "grayscale")
    assert reason is None and gray.shape == (10, 10, 1) and int(gray.mean()) == 100


def test_16_bit_png_is_scaled_to_8_bits(tmp_path, write_image):
    image = np.zeros((10, 10), np.uint16)
    image[:, 5:] = 65535
    image[:, :5] = 32896  # 128 * 257
    gray, reason = decode_image(write_image(tmp_path / "deep.png", image), 10, "grayscale")
    assert reason is None and gray.dtype == np.uint8
    assert gray[:, :5].max() == 128 and gray[:, 5:].min() == 255


def test_float_tiff_is_scaled_to_8_bits(tmp_path, write_image):
    image = np.full((10, 10), 0.5, np.float32)
    gray, reason = decode_image(write_image(tmp_path / "float.tiff", image, ".tiff"), 10, "grayscale")
    assert reason is None and int(gray.mean()) in (127, 128)


def test_grayscale_source_becomes_rgb(tmp_path, write_image):
    path = write_image(tmp_path / "gray.png", np.full((12, 12), 77, np.uint8))
    rgb, reason = decode_image(path, 12, "rgb")
    assert reason is None and rgb.shape == (12, 12, 3) and set(rgb.ravel().tolist()) == {77}


def test_small_images_are_upscaled(tmp_path, write_image):
    image, reason = decode_image(write_image(tmp_path / "tiny.png", two_tone(4, 4)), 50, "grayscale")
    assert reason is None and image.shape == (50, 50, 1)


def test_large_jpeg_uses_reduced_decoding_with_little_loss(tmp_path, write_image, monkeypatch):
    path = write_image(tmp_path / "big.jpg", smooth(np.random.default_rng(0), 900, 1200), ".jpg")
    flags = []
    real_imdecode = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda buffer, flag: flags.append(flag) or real_imdecode(buffer, flag))
    reduced, _ = decode_image(path, 50, "grayscale")
    assert flags == [cv2.IMREAD_REDUCED_GRAYSCALE_8]  # 900 / 8 = 113 still covers 50
    decode_image(path, 200, "rgb")
    assert flags[-1] == cv2.IMREAD_REDUCED_COLOR_4  # 900 / 4 = 225 >= 200, 900 / 8 = 113 would not
    decode_image(path, 500, "rgb")
    assert flags[-1] == cv2.IMREAD_COLOR
    full = cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (50, 50), interpolation=cv2.INTER_AREA)
    assert np.abs(reduced[..., 0].astype(int) - full).mean() < 3


JUNK = [
    ("empty.jpg", b"", "empty file"),
    ("Thumbs.db", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "not an image (unknown format)"),
    (".DS_Store", b"\x00\x00\x00\x01Bud1" + bytes(100), "not an image (unknown format)"),
    ("notes.txt", b"these are my cats\n", "not an image (unknown format)"),
    ("photo.heic", b"\x00\x00\x00\x18ftypheic" + bytes(40), "HEIC image"),
    ("header only.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF", "truncated JPEG (cut off before the image data)"),
    ("garbage.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "undecodable PNG"),
]


@pytest.mark.parametrize("name, content, reason", JUNK)
def test_junk_files_give_a_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    image, why = decode_image(path, 28, "grayscale")
    assert image is None and why.startswith(reason)


def test_truncated_jpeg_is_skipped(tmp_path, write_image):
    whole = write_image(tmp_path / "whole.jpg", smooth(np.random.default_rng(1), 120, 160), ".jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    assert decode_image(tmp_path / "cut.jpg", 28, "grayscale") == (None, "truncated JPEG (no end marker)")


def test_data_after_the_jpeg_end_marker_is_fine(tmp_path, write_image):
    path = write_image(tmp_path / "motion.jpg", smooth(np.random.default_rng(2), 60, 80), ".jpg")
    path.write_bytes(path.read_bytes() + b"appended video data" * 50)
    assert decode_image(path, 28, "grayscale")[1] is None


def test_truncated_png_is_skipped(tmp_path, write_image):
    whole = write_image(tmp_path / "whole.png", smooth(np.random.default_rng(3), 60, 80)).read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    image, reason = decode_image(tmp_path / "cut.png", 28, "grayscale")
    assert image is None and reason.startswith("undecodable PNG")


def test_unreadable_paths_give_a_reason(tmp_path):
    assert decode_image(tmp_path / "missing.jpg", 28, "grayscale")[1].startswith("unreadable")
    assert decode_image(tmp_path, 28, "grayscale")[1] in ("not a regular file", "unreadable (Is a directory)")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX-only")
def test_named_pipe_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    assert decode_image(tmp_path / "pipe.jpg", 28, "grayscale") == (None, "not a regular file")


def test_libjpeg_warnings_do_not_reach_stderr(tmp_path, write_image, capfd):
    whole = write_image(tmp_path / "ok.jpg", smooth(np.random.default_rng(4), 200, 200), ".jpg").read_bytes()
    damaged = whole[:-2] + b"\x00\x01\x02\x03" + whole[-2:]  # "Corrupt JPEG data: 4 extraneous bytes before marker"
    (tmp_path / "damaged.jpg").write_bytes(damaged)
    image, reason = decode_image(tmp_path / "damaged.jpg", 28, "grayscale")
    assert reason is None
    print("still here", file=sys.stderr)
    assert capfd.readouterr().err == "still here\n"  # nothing from libjpeg, and stderr works afterwards


def test_images_claiming_too_many_pixels_are_skipped_before_decoding(tmp_path):
    import struct
    import zlib

    import cv2

    from tuner.data.images import MAX_FILE_BYTES, decode_image

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    # A 1 kB PNG whose header claims 100,000 x 100,000 pixels: 10 GB once decoded.
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    (tmp_path / "bomb.png").write_bytes(png)
    ok, encoded = cv2.imencode(".jpg", np.zeros((16, 16), np.uint8))
    jpeg = bytearray(encoded.tobytes())
    frame = jpeg.find(b"\xff\xc0")
    jpeg[frame + 5:frame + 9] = (60_000).to_bytes(2, "big") * 2
    (tmp_path / "bomb.jpg").write_bytes(bytes(jpeg))
    for name, size in (("bomb.png", "100000x100000"), ("bomb.jpg", "60000x60000")):
        image, reason = decode_image(tmp_path / name, 16, "grayscale")
        assert image is None and reason.startswith(f"too many pixels ({size};")
    # A file far bigger than any image accepted is not read at all (a sparse file: no disk used).
    with open(tmp_path / "huge.png", "wb") as stream:
        stream.write(png[:33])
        stream.truncate(MAX_FILE_BYTES + 1)
    image, reason = decode_image(tmp_path / "huge.png", 16, "grayscale")
    assert image is None and reason.startswith("file too large (")
