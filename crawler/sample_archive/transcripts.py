"""Transcript files as real uploaders make them: SRT (accurate, coarse or shifted), VTT, TXT.

Written from a recording's ground truth with the field's own libraries (``srt``, ``webvtt-py``),
including the clutter the align stage must strip: cue numbers, line wrapping, speaker labels,
voice tags and sound descriptions that nobody speaks.
"""

from __future__ import annotations

import datetime
import math
import random
import textwrap

import srt
import webvtt

# style → what it models
SRT_STYLES = {
    "accurate": "one cue per sentence, timed to the speech",
    "grouped": "two or three sentences per cue",
    "coarse": "three to five sentences per cue, times rounded to whole seconds",
    "shifted": "accurate cues, all late by one to two and a half seconds",
}
SOUND_DESCRIPTIONS = ["[music]", "(applause)", "[laughter]", "[MUSIC PLAYING]", "(crosstalk)"]


def _td(seconds: float) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=round(max(0.0, seconds) * 1000))


def _wrap(text: str) -> str:
    return "\n".join(textwrap.wrap(text, width=42))


def _cues(rng: random.Random, sentences: list[dict], style: str) -> list[tuple[float, float, str]]:
    groups: list[list[dict]] = []
    i = 0
    while i < len(sentences):
        size = {"grouped": rng.randint(2, 3), "coarse": rng.randint(3, 5)}.get(style, 1)
        groups.append(sentences[i: i + size])
        i += size
    shift = rng.uniform(1.0, 2.5) if style == "shifted" else 0.0
    cues = []
    for group in groups:
        start, end = group[0]["start"] + shift, group[-1]["end"] + shift
        if style == "coarse":
            start, end = math.floor(start), math.ceil(end)
        cues.append((start, end, " ".join(s["text"] for s in group)))
    return cues


def _sprinkle(rng: random.Random, text: str) -> str:
    """Occasionally add a sound description that the audio does not contain."""
    if rng.random() < 0.12:
        return f"{rng.choice(SOUND_DESCRIPTIONS)} {text}"
    return text


def write_srt(rng: random.Random, sentences: list[dict], style: str) -> str:
    subs = [
        srt.Subtitle(i + 1, _td(start), _td(end), _wrap(_sprinkle(rng, text)))
        for i, (start, end, text) in enumerate(_cues(rng, sentences, style))
    ]
    return srt.compose(subs)


def write_asr_srt(rng: random.Random, sentences: list[dict], asr_text) -> str:
    """Machine captions: fixed-length cues that ignore sentence boundaries."""
    words: list[tuple[float, str]] = []
    for s in sentences:
        ws = asr_text(rng, s["text"]).split()
        step = (s["end"] - s["start"]) / max(1, len(ws))
        words += [(s["start"] + k * step, w) for k, w in enumerate(ws)]
    subs, chunk = [], 8
    for i in range(0, len(words), chunk):
        part = words[i: i + chunk]
        end = words[i + chunk][0] if i + chunk < len(words) else sentences[-1]["end"]
        subs.append(srt.Subtitle(len(subs) + 1, _td(part[0][0]), _td(end),
                                 " ".join(w for _, w in part)))
    return srt.compose(subs)


def write_vtt(rng: random.Random, sentences: list[dict], speaker: str) -> str:
    captions = []
    for start, end, text in _cues(rng, sentences, "accurate"):
        text = _wrap(_sprinkle(rng, text))
        if rng.random() < 0.3:
            text = f"<v {speaker}>{text}</v>"
        captions.append(webvtt.Caption(_vtt_time(start), _vtt_time(end), text))
    return webvtt.WebVTT(captions=captions).content


def _vtt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def write_txt(rng: random.Random, sentences: list[dict], speaker: str) -> str:
    """Plain paragraphs, sometimes with a speaker label or a sound description line."""
    paragraphs, i = [], 0
    while i < len(sentences):
        n = rng.randint(3, 6)
        body = " ".join(s["text"] for s in sentences[i: i + n])
        if rng.random() < 0.4:
            body = f"{speaker.upper()}: {body}"
        paragraphs.append(textwrap.fill(body, width=78))
        if rng.random() < 0.15:
            paragraphs.append(rng.choice(SOUND_DESCRIPTIONS))
        i += n
    return "\n\n".join(paragraphs) + "\n"
