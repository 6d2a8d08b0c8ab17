"""Decode one image file (any common format, recognised by content) into the uint8 array that training and prediction see."""

from __future__ import annotations

import logging
import os
import stat

# OpenCV (cv2) is imported inside the decoding functions: a parent process that only hands files to
# workers then never spends the time and memory to load it.
import numpy as np

from tuner.quiet import quiet_stderr

logger = logging.getLogger(__name__)

CHANNELS = {"grayscale": 1, "rgb": 3}  # colour mode -> channels of the decoded array
# Hostile files: an image whose header claims more pixels than this is skipped before decoding
# (PIL's MAX_IMAGE_PIXELS, the decompression-bomb limit), and a file bigger than any image of that
# size plausibly is, is skipped without being read. OpenCV applies the same pixel limit to every
# format whose header this module does not read itself (it reads the variable on first use).
MAX_PIXELS = 89_478_485
MAX_FILE_BYTES = 256 * 2**20
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))
# Enough of a file to find the size in a JPEG's header past a large EXIF block, before reading the rest.
_HEAD_BYTES = 64 * 1024

_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
          (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"))
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers carry the image size
_REDUCED_FLAGS = {  # OpenCV's DCT-scaled JPEG decoding (libjpeg skips most of the work at 1/2, 1/4, 1/8 size)
    "grayscale": ((8, "IMREAD_REDUCED_GRAYSCALE_8"), (4, "IMREAD_REDUCED_GRAYSCALE_4"),
                  (2, "IMREAD_REDUCED_GRAYSCALE_2"), (1, "IMREAD_GRAYSCALE")),
    "rgb": ((8, "IMREAD_REDUCED_COLOR_8"), (4, "IMREAD_REDUCED_COLOR_4"), (2, "IMREAD_REDUCED_COLOR_2"), (1, "IMREAD_COLOR")),
}


def _sniff(head: bytes) -> str | None:
    """The image format named by a file's first bytes, or None."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC"
    return None


def _jpeg_geometry(data: bytes) -> tuple[int, int, int] | None:
    """(height, width, offset of the first scan) read from a JPEG's markers, or None if they stop before the scan."""
    pos, size, end = 2, None, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:  # stray bytes between segments: libjpeg skips them too
            pos += 1
            continue
        marker = data[pos + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:  # fill byte or a marker without a length
            pos += 1 if marker == 0xFF else 2
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker in _SOF_MARKERS and pos + 9 <= end:
            size = (int.from_bytes(data[pos + 5:pos + 7], "big"), int.from_bytes(data[pos + 7:pos + 9], "big"))
        if marker == 0xDA:
            return (size[0], size[1], pos + 2 + length) if size else None
        if marker == 0xD9:
            return None
        pos += 2 + length
    return None


def _header_size(head: bytes, kind: str) -> tuple[int, int] | None:
    """(width, height) as a file's header states it, for the formats whose header says it plainly; else None."""
    if kind == "PNG" and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if kind == "GIF" and len(head) >= 10:
        return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    if kind == "BMP" and len(head) >= 26:
        return abs(int.from_bytes(head[18:22], "little", signed=True)), abs(int.from_bytes(head[22:26], "little", signed=True))
    if kind == "WebP" and head[12:16] == b"VP8X" and len(head) >= 30:
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    if kind == "JPEG":
        geometry = _jpeg_geometry(head)
        return (geometry[1], geometry[0]) if geometry else None
    return None


def _to_uint8(image: np.ndarray) -> np.ndarray | None:
    import cv2

    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:  # 16-bit PNG/TIFF: 65535 -> 255, rounded
        return cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)
    if image.dtype.kind == "f":  # floating-point TIFF, 0..1
        return cv2.convertScaleAbs(np.clip(image, 0.0, 1.0), alpha=255.0)
    return None


def _flatten_alpha(image: np.ndarray) -> np.ndarray:
    """Composite a transparent image onto white, as a browser shows it on a page; opaque alpha is just dropped."""
    if image.ndim == 3 and image.shape[2] in (2, 4):
        color, alpha = image[..., :-1], image[..., -1:]
        if alpha.min() < 255:
            alpha = alpha.astype(np.uint16)  # color*alpha + 255*(255-alpha) <= 65025 fits in uint16
            image = ((color * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
        else:
            image = color
    return image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image


def _decode_bytes(data: bytes, kind: str, img_size: int, color: str) -> tuple[np.ndarray | None, str | None]:
    import cv2

    buffer = np.frombuffer(data, np.uint8)
    if kind == "JPEG":
        geometry = _jpeg_geometry(data)
        if geometry is None:
            return None, "truncated JPEG (cut off before the image data)"
        height, width, scan_start = geometry
        if data.rfind(b"\xff\xd9", scan_start) < 0:  # no end-of-image marker after the scan: the file was cut short
            return None, "truncated JPEG (no end marker)"
        flag = getattr(cv2, next(name for factor, name in _REDUCED_FLAGS[color]
                                 if factor == 1 or -(-min(height, width) // factor) >= img_size))
        with quiet_stderr():
            image = cv2.imdecode(buffer, flag)
        if image is None:
            return None, "undecodable JPEG (corrupt data)"
    else:
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)  # keeps alpha and 16 bits, which the flags would mangle
        if image is None:
            return None, f"undecodable {kind} (corrupt or truncated)"
        converted = _to_uint8(image)
        if converted is None:
            return None, f"unsupported {kind} pixel type {image.dtype}"
        image = _flatten_alpha(converted)
        if color == "grayscale" and image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.shape[:2] != (img_size, img_size):
        shrinking = image.shape[0] >= img_size and image.shape[1] >= img_size
        image = cv2.resize(image, (img_size, img_size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    if color == "rgb":
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image[..., None] if image.ndim == 2 else image), None


def decode_image(path: str | os.PathLike, img_size: int, color: str) -> tuple[np.ndarray | None, str | None]:
    """Load one image file exactly as training and prediction both see it.

    The format is recognised from the file's first bytes, not its name. A file above MAX_FILE_BYTES
    is skipped unread, and an image whose header claims more than MAX_PIXELS pixels is skipped
    before decoding (OpenCV enforces the same limit for the other formats). Large JPEGs are decoded at
    1/2, 1/4 or 1/8 size when that still covers `img_size`; transparent images go onto white;
    16-bit images are scaled to 8 bits; then the image is resized to a square with INTER_AREA.

    Args:
        path: the image file.
        img_size: side of the square result, in pixels.
        color: "grayscale" (1 channel) or "rgb" (3 channels, RGB order).

    Returns:
        (uint8 array of shape (img_size, img_size, channels), None), or (None, why the file was skipped).
    """
    import cv2

    try:
        # O_NONBLOCK so that a named pipe in the folder can't hang us; it changes nothing for regular files.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(descriptor, "rb") as stream:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                return None, "not a regular file"
            if info.st_size > MAX_FILE_BYTES:
                return None, f"file too large ({info.st_size / 2**20:,.0f} MiB; files above {MAX_FILE_BYTES // 2**20} MiB are skipped unread)"
            head = stream.read(_HEAD_BYTES)
            if not head:
                return None, "empty file"
            kind = _sniff(head)
            if kind is None:
                return None, "not an image (unknown format)"
            if kind == "HEIC":
                return None, "HEIC image (OpenCV can't read it; convert it to JPEG)"
            size = _header_size(head, kind)
            if size is not None and size[0] * size[1] > MAX_PIXELS:
                return None, (f"too many pixels ({size[0]}x{size[1]}; images above {MAX_PIXELS / 1e6:.0f} megapixels "
                              f"are skipped before decoding)")
            data = head + stream.read()
    except OSError as error:
        return None, f"unreadable ({error.strerror or error})"
    try:
        return _decode_bytes(data, kind, img_size, color)
    except cv2.error:
        return None, f"undecodable {kind} (OpenCV refused it: corrupt, or above {MAX_PIXELS / 1e6:.0f} megapixels)"
