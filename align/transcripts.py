"""Transcript files (SRT, WebVTT, plain text) → the words that were spoken, with cue times.

Parsing is the field's libraries' job (``srt``, ``webvtt-py``); this module decides what in a
transcript is not speech: cue numbers, markup and voice tags, speaker labels, and sound
descriptions (``[music]``, ``(applause)``, ``♪``). Bytes are decoded whatever their encoding and
mojibake is repaired (``ftfy``). Sentences are found with ``pysbd``, which knows "Dr." and
"U.S." are not sentence ends.

Every step is linear in the transcript's size, which is capped: the regular expressions cannot
backtrack across the text (no unbounded run is followed by something it could also match), and
``pysbd`` (superlinear on long inputs) sees windows of at most ``SBD_WINDOW`` characters.
A transcript that cannot be used raises ``TranscriptError`` with the reason to record.
"""

from __future__ import annotations

import bisect
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pysbd
import srt
import webvtt

from manifests.textfile import TextFileError as TranscriptError  # the reason to record
from manifests.textfile import read_text

# A bracket's contents stop at the next opening bracket, so an unclosed "[" or "<" costs the
# distance to the next one, never the rest of the text.
SOUND = re.compile(r"\[[^\[\]]*\]|\([^()]*\)|[♪♫]+[^♪♫]*[♪♫]+|[♪♫]")
TAGS = re.compile(r"</?[a-zA-Z][^<>]*>|\{\\[^{}]*\}")  # <i>, <v Name>, <c.x>, {\an8}
# "NARRATOR:", "John Smith:", ">> ", "- " at the start of a line. Words of a label are at most
# 30 characters: "A.A.A.…" has a word boundary at every letter.
SPEAKER = re.compile(r"^[ \t]*(?:-\s+|[A-Z][a-z]+(?: [A-Z][a-z]+)?:\s+)|>>+\s*|"
                     r"\b[A-Z][A-Z.'\-]{1,30}(?: [A-Z][A-Z.'\-]{1,30}){0,2}:\s+", re.M)
# pysbd's cost grows faster than its input: it sees windows of this many characters.
SBD_WINDOW = 2000
# ``srt`` logs every unparseable block in full: a hostile file would fill the log.
logging.getLogger("srt").setLevel(logging.ERROR)


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


def clean(text: str) -> str:
    """Markup, speaker labels and sound descriptions out; spoken words in."""
    text = TAGS.sub("", text)
    text = SPEAKER.sub("", text)
    text = SOUND.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip()


def parse(text: str, kind: str) -> Transcript:
    """Cues of a transcript; ``TranscriptError`` when the file is not what its kind says."""
    try:
        return _parse(text, kind)
    except (srt.SRTParseError, webvtt.errors.MalformedFileError,
            webvtt.errors.MalformedCaptionError, OverflowError, ValueError) as exc:
        if isinstance(exc, TranscriptError):
            raise
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise TranscriptError(f"malformed transcript ({kind}): {detail}") from None


def _parse(text: str, kind: str) -> Transcript:
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
        raise TranscriptError(f"unsupported transcript format: {kind[:20]!r}")
    return Transcript(kind, tuple(c for c in cues if c.text))


def read_transcript(path: Path) -> Transcript:
    kind = Path(path).suffix.lower().lstrip(".")
    return parse(read_text(path), kind)


_SEGMENTER = pysbd.Segmenter(language="en", clean=False)


def sentences(text: str) -> list[str]:
    """pysbd's sentences, found window by window: every sentence but a window's last is kept
    and the next window starts at that last one, so pysbd decides each boundary with the text
    around it. A window that is one sentence is cut at its last space (a hard limit: such a
    "sentence" is longer than any clip)."""
    out, start = [], 0
    while len(text) - start > SBD_WINDOW:
        window = text[start: start + SBD_WINDOW]
        found = [s for s in _SEGMENTER.segment(window) if s.strip()]
        last = window.rfind(found[-1].strip()) if len(found) > 1 else -1
        if last > 0:
            out += [s.strip() for s in found[:-1]]
            start += last
            continue
        cut = window.rfind(" ", SBD_WINDOW // 2) + 1 or SBD_WINDOW
        out.append(window[:cut].strip())
        start += cut
    return [s for s in out if s] + [s.strip() for s in _SEGMENTER.segment(text[start:])
                                    if s.strip()]


def cue_spans(transcript: Transcript, parts: list[str]) -> list[tuple[float, float] | None]:
    """The subtitle time span each utterance falls in: from the start of the first cue its
    text touches to the end of the last. ``None`` for untimed text or text not found (the
    utterances are cut from ``transcript.text`` in order, so a forward search finds them)."""
    if not transcript.timed:
        return [None] * len(parts)
    cues = [c for c in transcript.cues if c.text]
    starts, pos = [], 0  # each cue's first character in transcript.text
    for cue in cues:
        starts.append(pos)
        pos += len(cue.text) + 1
    text, cursor, spans = transcript.text, 0, []
    for part in parts:
        # Between consecutive parts lie spaces, or utterances with nothing to say ("…", "--"),
        # each a sentence of at most SBD_WINDOW characters: a bounded search keeps a part
        # that is not found from costing the rest of the text.
        a = text.find(part, cursor, cursor + len(part) + SBD_WINDOW)
        if a < 0:
            spans.append(None)
            continue
        b, cursor = a + len(part), a + len(part)
        first = bisect.bisect_right(starts, a) - 1  # the cue holding the part's first char
        last = bisect.bisect_left(starts, b) - 1  # the last cue starting before its end
        touched = cues[max(first, 0): last + 1]
        spans.append((min(c.start for c in touched), max(c.end for c in touched)))
    return spans
