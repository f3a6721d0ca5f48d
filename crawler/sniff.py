"""Is a downloaded file what its label says? Magic numbers, read from the first bytes."""

from __future__ import annotations

from pathlib import Path

AUDIO_MAGIC = [
    (0, b"ID3"), (0, b"OggS"), (0, b"fLaC"), (0, b"\x1a\x45\xdf\xa3"),  # mp3 tag, ogg, flac, mkv
    (4, b"ftyp"),  # mp4 / m4a / mov
]


def is_audio(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(16)
    if any(head[off: off + len(magic)] == magic for off, magic in AUDIO_MAGIC):
        return True
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI "):
        return True
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return True
    # A bare MPEG audio frame: 11 sync bits, then a valid layer.
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and \
        (head[1] & 0x06) != 0


def is_text(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(4096)
    return head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" not in head  # UTF-16 BOM
