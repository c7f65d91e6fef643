"""What an upload is, decided by its first bytes and never by its name: an image, a video, or a
reject (HTTP 415). Also the safe name an upload is stored under."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

__all__ = ["SNIFF_BYTES", "Sniffed", "safe_name", "sniff"]

#: How many leading bytes :func:`sniff` needs.
SNIFF_BYTES = 512


@dataclass(frozen=True)
class Sniffed:
    kind: str  # "image" | "video"
    suffix: str  # the suffix the stored file gets, so the detector reads it as that kind
    format: str


# (prefix, offset, kind, suffix, format), checked in order.
_MAGIC: list[tuple[bytes, int, str, str, str]] = [
    (b"\xff\xd8\xff", 0, "image", ".jpg", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "image", ".png", "PNG"),
    (b"BM", 0, "image", ".bmp", "BMP"),
    (b"II*\x00", 0, "image", ".tif", "TIFF"),
    (b"MM\x00*", 0, "image", ".tif", "TIFF"),
    (b"GIF87a", 0, "image", ".gif", "GIF"),
    (b"GIF89a", 0, "image", ".gif", "GIF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "image", ".jp2", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", 0, "image", ".jp2", "JPEG 2000"),
    (b"qoif", 0, "image", ".qoi", "QOI"),
    (b"\x1a\x45\xdf\xa3", 0, "video", ".mkv", "Matroska/WebM"),
    (b"FLV\x01", 0, "video", ".flv", "FLV"),
    (b"\x00\x00\x01\xba", 0, "video", ".mpg", "MPEG-PS"),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", 0, "video", ".wmv", "ASF/WMV"),
]


def _riff(head: bytes) -> Sniffed | None:
    if head[:4] != b"RIFF" or len(head) < 12:
        return None
    if head[8:12] == b"WEBP":
        return Sniffed("image", ".webp", "WebP")
    if head[8:12] == b"AVI ":
        return Sniffed("video", ".avi", "AVI")
    return None


def _iso_bmff(head: bytes) -> Sniffed | None:
    # MP4, MOV, M4V, 3GP: a box size then "ftyp" (QuickTime files may open with moov/mdat/wide/free).
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        brand = head[8:12]
        if head[4:8] == b"ftyp" and brand in (b"avif", b"avis"):
            return Sniffed("image", ".avif", "AVIF")
        if head[4:8] == b"ftyp" and brand in (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"):
            return Sniffed("image", ".heic", "HEIF")  # detect reads it where a HEIF decoder is installed
        return Sniffed("video", ".mov" if brand == b"qt  " else ".mp4", "MP4/QuickTime")
    return None


def _netpbm(head: bytes) -> Sniffed | None:
    # PBM/PGM/PPM: "P1".."P6" then whitespace.
    if len(head) >= 3 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3] in b" \t\r\n":
        return Sniffed("image", ".ppm", "Netpbm")
    return None


def _mpeg_ts(head: bytes) -> Sniffed | None:
    if len(head) >= 377 and head[0] == head[188] == head[376] == 0x47:
        return Sniffed("video", ".ts", "MPEG-TS")
    return None


def sniff(head: bytes) -> Sniffed | None:
    """The kind of a file from its first :data:`SNIFF_BYTES` bytes, or ``None`` when it is neither an
    image nor a video format fakescope decodes."""
    for prefix, offset, kind, suffix, fmt in _MAGIC:
        if head[offset : offset + len(prefix)] == prefix:
            return Sniffed(kind, suffix, fmt)
    return _riff(head) or _iso_bmff(head) or _netpbm(head) or _mpeg_ts(head)


def safe_name(filename: str | None, suffix: str) -> str:
    """A stored file name from an uploaded one: its last path part (either slash), reduced to
    ``[A-Za-z0-9._-]``, at most 80 characters, with the sniffed ``suffix``; never empty, never a dot file."""
    raw = PureWindowsPath(PurePosixPath(filename or "").name).name
    stem = raw.rsplit(".", 1)[0] if "." in raw else raw
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:80] or "upload"
    return stem + suffix
