"""Transcript files (SRT, WebVTT, plain text) → the words that were spoken, with cue times.

Parsing is the field's libraries' job (``srt``, ``webvtt-py``); this module decides what in a
transcript is not speech: cue numbers, markup and voice tags, speaker labels, and sound
descriptions (``[music]``, ``(applause)``, ``♪``). Bytes are decoded whatever their encoding and
mojibake is repaired (``ftfy``). Sentences are found with ``pysbd``, which knows "Dr." and
"U.S." are not sentence ends.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import ftfy
import pysbd
import srt
import webvtt

SOUND = re.compile(r"\[[^\]]*\]|\([^)]*\)|[♪♫]+[^♪♫]*[♪♫]+|[♪♫]")
TAGS = re.compile(r"</?[a-zA-Z][^>]*>|\{\\[^}]*\}")  # <i>, <v Name>, <c.x>, {\an8}
# "NARRATOR:", "John Smith:", ">> ", "- " at the start of a line.
SPEAKER = re.compile(r"^\s*(?:-\s+|[A-Z][a-z]+(?: [A-Z][a-z]+)?:\s+)|>>+\s*|"
                     r"\b[A-Z][A-Z.'\-]+(?: [A-Z][A-Z.'\-]+){0,2}:\s+", re.M)


@dataclass(frozen=True)
class Cue:
    start: float | None  # seconds; None in untimed text
    end: float | None
    text: str  # what was said, cleaned, original spelling and punctuation kept


@dataclass(frozen=True)
class Transcript:
    kind: str  # srt | vtt | txt
    cues: tuple[Cue, ...]

    @property
    def timed(self) -> bool:
        return self.kind != "txt"

    @property
    def text(self) -> str:
        return " ".join(c.text for c in self.cues if c.text)


def decode(data: bytes) -> str:
    """Bytes of any common encoding → text, with mojibake repaired."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
    return ftfy.fix_text(text, normalization="NFC")


def clean(text: str) -> str:
    """Markup, speaker labels and sound descriptions out; spoken words in."""
    text = TAGS.sub("", text)
    text = SPEAKER.sub("", text)
    text = SOUND.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip()


def parse(text: str, kind: str) -> Transcript:
    if kind == "srt":
        cues = [Cue(s.start.total_seconds(), s.end.total_seconds(), clean(s.content))
                for s in srt.parse(text, ignore_errors=True)]
    elif kind == "vtt":
        cues = [Cue(c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000,
                    clean(c.raw_text))
                for c in webvtt.from_buffer(io.StringIO(text))]
    elif kind == "txt":
        cues = [Cue(None, None, clean(p)) for p in re.split(r"\n\s*\n", text)]
    else:
        raise ValueError(f"unknown transcript kind {kind!r}")
    return Transcript(kind, tuple(c for c in cues if c.text))


def read_transcript(path: Path) -> Transcript:
    kind = Path(path).suffix.lower().lstrip(".")
    return parse(decode(Path(path).read_bytes()), kind)


_SEGMENTER = pysbd.Segmenter(language="en", clean=False)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SEGMENTER.segment(text) if s.strip()]


def cue_spans(transcript: Transcript, parts: list[str]) -> list[tuple[float, float] | None]:
    """The subtitle time span each utterance falls in: from the start of the first cue its
    text touches to the end of the last. ``None`` for untimed text or text not found (the
    utterances are cut from ``transcript.text`` in order, so a forward search finds them)."""
    if not transcript.timed:
        return [None] * len(parts)
    bounds, pos = [], 0  # (first char, last char + 1, cue) in transcript.text
    for cue in (c for c in transcript.cues if c.text):
        bounds.append((pos, pos + len(cue.text), cue))
        pos += len(cue.text) + 1
    text, cursor, spans = transcript.text, 0, []
    for part in parts:
        a = text.find(part, cursor)
        if a < 0:
            spans.append(None)
            continue
        b, cursor = a + len(part), a + len(part)
        touched = [c for lo, hi, c in bounds if lo < b and hi > a]
        spans.append((min(c.start for c in touched), max(c.end for c in touched)))
    return spans
