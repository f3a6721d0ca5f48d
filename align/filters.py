"""Clip metrics → a tier (``clean``, ``other``, ``rejected``) with reasons, from one config.

The defaults follow NeMo's CTC-segmentation tool (segment score threshold, CER and edge-CER
limits) and The People's Speech (1–20 s clips), stricter where People's Speech let wrong labels
through: a clip whose text does not match its audio must never be ``clean``.
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path


@dataclass(frozen=True)
class FilterConfig:
    min_duration_s: float = 1.0
    max_duration_s: float = 20.0
    clean_max_cer: float = 0.10
    other_max_cer: float = 0.30
    max_edge_cer: float = 0.60  # first/last few characters: a cut word shows here
    edge_chars: int = 5
    clean_min_score: float = -2.0  # ctc-segmentation confidence (log-probability)
    other_min_score: float = -5.0
    min_chars_per_s: float = 4.0
    max_chars_per_s: float = 28.0
    max_silence_share: float = 0.7
    language: str = "en"
    pad_s: float = 0.15  # kept at each edge, never reaching into a neighbouring utterance
    # Subtitle cue times are hints: trusted only when this share of a recording's aligned
    # utterances lies within its cues (± tolerance); then a clip outside its cue is suspect.
    cue_tolerance_s: float = 0.5
    cue_min_agreement: float = 0.8
    # Letters the model may hear in the second of audio next to a clip (up to the neighbouring
    # utterance) before the clip's text is suspect of missing words at its edges: a transcript
    # that drops the end of a sentence, or a reader who says "nineteen hundred and thirteen"
    # for "1913", leaves speech there that the label does not have.
    max_heard_outside: int = 2

    def updated(self, overrides: dict) -> FilterConfig:
        unknown = set(overrides) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown filter settings: {sorted(unknown)}")
        updated = replace(self, **overrides)
        if problems := updated.problems():
            raise ValueError("filter settings: " + "; ".join(f"{k}: {m}" for k, m in problems))
        return updated

    def problems(self) -> list[tuple[str, str]]:
        """Each field whose value cannot mean anything (negative lengths, NaN, a minimum
        above its maximum, a language the identifier never reports), as (field, why): such a
        config would silently tier every clip the same way."""
        found = []
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float | int) and not math.isfinite(value):
                found.append((f.name, f"{value} is not a finite number"))
            elif f.name in NON_NEGATIVE and value < 0:
                found.append((f.name, f"{value} is negative (it must be at least 0)"))
            elif f.name in SHARES and not 0 <= value <= 1:
                found.append((f.name, f"{value} is not a share between 0 and 1"))
        if not found:
            for low, high in ORDERED:
                if getattr(self, low) > getattr(self, high):
                    found.append((low, f"{getattr(self, low)} is above {high} "
                                       f"({getattr(self, high)})"))
        if self.language not in known_languages():
            found.append(("language", f"{self.language!r} is not a language code the language "
                                      "identifier (py3langid) reports, such as 'en'"))
        return found

    def as_dict(self) -> dict:
        return asdict(self)


NON_NEGATIVE = ("min_duration_s", "max_duration_s", "clean_max_cer", "other_max_cer",
                "max_edge_cer", "edge_chars", "min_chars_per_s", "max_chars_per_s", "pad_s",
                "cue_tolerance_s", "max_heard_outside")
SHARES = ("max_silence_share", "cue_min_agreement")
ORDERED = (("min_duration_s", "max_duration_s"), ("min_chars_per_s", "max_chars_per_s"),
           ("clean_max_cer", "other_max_cer"), ("other_min_score", "clean_min_score"))


@functools.cache
def known_languages() -> frozenset[str]:
    """The codes py3langid can report for a transcript (what ``language`` is compared with)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return frozenset(LanguageIdentifier.from_model_file(MODEL_FILE).labels)


def _letters(text: str | None) -> int:
    return sum(c.isalpha() for c in text or "")


def read_overrides(path: Path) -> dict:
    """The ``[filters]`` table of a TOML file (a model's calibration or a user's settings)."""
    data = tomllib.loads(Path(path).read_text()).get("filters", {})
    FilterConfig().updated(data)  # unknown names are an error here, not at align time
    return data


def tier(m: dict, config: FilterConfig) -> tuple[str, list[str]]:
    """The verdict on one clip's metrics, with every reason that counted against it. Each
    reason reads "kind: details", so reasons group by the text before the colon."""
    hard, soft = [], []
    if not m["aligned"]:
        hard.append("not aligned: the text could not be placed in the audio")
    if m["language"] != config.language:
        hard.append(f"language: {m['language']}, not {config.language}")
    if m["duration_s"] < config.min_duration_s:
        hard.append(f"too short: {m['duration_s']:.2f} s")
    if m["duration_s"] > config.max_duration_s:
        hard.append(f"too long: {m['duration_s']:.2f} s")
    if m["cer"] > config.other_max_cer:
        hard.append(f"text does not match the audio: CER {m['cer']:.2f}")
    elif m["cer"] > config.clean_max_cer:
        soft.append(f"CER above the clean limit: {m['cer']:.2f} > {config.clean_max_cer:.2f}")
    if m["score"] < config.other_min_score:
        hard.append(f"low alignment confidence: {m['score']:.2f}")
    elif m["score"] < config.clean_min_score:
        soft.append(f"alignment confidence below the clean limit: {m['score']:.2f} < "
                    f"{config.clean_min_score}")
    if max(m["cer_start"], m["cer_end"]) > config.max_edge_cer:
        soft.append(f"edges do not match: CER {m['cer_start']:.2f} at the start, "
                    f"{m['cer_end']:.2f} at the end")
    if not config.min_chars_per_s <= m["chars_per_s"] <= config.max_chars_per_s:
        soft.append(f"speaking rate: {m['chars_per_s']:.1f} characters/s")
    if m["silence_share"] > config.max_silence_share:
        soft.append(f"mostly silence: {m['silence_share']:.0%}")
    heard = max(_letters(m.get("heard_before")), _letters(m.get("heard_after")))
    if heard > config.max_heard_outside:
        soft.append(f"speech next to the clip that its text lacks: "
                    f"{m.get('heard_before') or ''!r} before, {m.get('heard_after') or ''!r} after")
    if m.get("outside_cue"):
        soft.append("outside its subtitle cue: the alignment and the subtitles disagree")
    if m.get("joined"):
        soft.append("no pause at an edge: the cut may clip a sound")
    if m["asr_caption"]:
        soft.append("asr caption: machine transcript, not ground truth")
    if hard:
        return "rejected", hard + soft
    return ("other", soft) if soft else ("clean", [])
