"""Text files from the network as the pipeline reads them: capped in size, any common encoding.

Both the crawler (its checks of a transcript before keeping it) and the align stage (the labels
themselves) read transcripts; they must read the same text from the same bytes, and neither may
import the other, so the one reader lives here, below both.
"""

from __future__ import annotations

from pathlib import Path

import ftfy

# The largest transcript read: 12 hours of speech as word-timed WebVTT in UTF-16 stays below.
MAX_TEXT_BYTES = 8 << 20


class TextFileError(ValueError):
    """The file cannot be read as text; the message is the reason to record."""


def read_bytes(path: Path) -> bytes:
    """A text file's bytes; ``TextFileError`` beyond ``MAX_TEXT_BYTES`` (read no further than
    that, whatever the file system says)."""
    with Path(path).open("rb") as f:
        data = f.read(MAX_TEXT_BYTES + 1)
    if len(data) > MAX_TEXT_BYTES:
        raise TextFileError(f"transcript too large: over {MAX_TEXT_BYTES} bytes")
    return data


def decode(data: bytes) -> str:
    """Bytes of any common encoding → text, with mojibake repaired."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", errors="replace")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
    return ftfy.fix_text(text, normalization="NFC")


def read_text(path: Path) -> str:
    return decode(read_bytes(path))
