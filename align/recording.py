"""One recording and its transcript → candidate clips with metrics, tiers and FLAC files.

A pure function of its inputs (the audio, the transcript, the model, the filter config), so the
stage can run it in any worker and on any engine. A recording that cannot be aligned raises
``RecordingFailed`` with the reason to record; nothing else stops the batch.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import py3langid

from align.acoustic import AcousticModel
from align.audio import DecodeError, decode, write_flac
from align.filters import FilterConfig, tier
from align.metrics import cer
from align.normalize import normalize
from align.segment import TextLongerThanAudio, segment
from align.transcripts import TranscriptError, cue_spans, read_transcript, sentences
from manifests.paths import remote_path

SAMPLE_RATE = 16_000
# Speaking rate used to guess whether an utterance would make a clip over the length limit.
EXPECTED_CHARS_PER_S = 14.0
NEXT_TO_S = 1.0  # how much audio beside a clip is listened to for speech its text lacks
# Neighbours' speech closer than this has no pause between them (``segment`` never lets them
# overlap: where no quiet was found, one ends exactly where the next begins).
JOINED_GAP_S = 0.02
# More transcript characters per second of audio than anyone speaks (fast speech is ~20): such a
# text cannot be the recording's, and is refused before any step whose cost grows with it.
MAX_TEXT_CHARS_PER_S = 60.0
# Transcript bytes per second of audio, markup included: word-timed WebVTT in UTF-16 of fast
# speech stays below a third of this. A larger file is refused before it is parsed (below
# TRANSCRIPT_BYTES_FLOOR parsing costs nothing, and the text is measured against the audio).
MAX_TRANSCRIPT_BYTES_PER_S = 1000.0
TRANSCRIPT_BYTES_FLOOR = 1 << 16


class RecordingFailed(Exception):
    """The reason this recording gave no clips (recorded, and the batch goes on). Raised for
    what the input caused, so the failure is permanent: the same input fails the same way."""


@dataclass(frozen=True)
class RecordingJob:
    source: str
    item_id: str
    audio_file: str  # name at the source
    audio_path: Path
    transcript_file: str
    transcript_path: Path
    expected_s: float | None
    asr_caption: bool
    license_spdx: str | None
    license_family: str | None
    attribution: str

    @property
    def key(self) -> str:
        return hashlib.sha1(f"{self.source}/{self.item_id}/{self.audio_file}".encode()
                            ).hexdigest()[:12]


def split_long(text: str, max_chars: int) -> list[str]:
    """Split at the clause boundary nearest the middle until every part fits (sentences are
    at most ``SBD_WINDOW`` characters, so the recursion is bounded)."""
    if len(text) <= max_chars:
        return [text]
    # (?<!\s): a run of spaces is tried once, not from each of its spaces
    cuts = [m.end() for m in re.finditer(r"[,;:—–]\s+|(?<!\s)\s+(?=(?:and|but|or|so|because|"
                                         r"while|which|when)\s)", text)]
    cuts = [c for c in cuts if 8 < c < len(text) - 8]
    if not cuts:
        return [text]
    mid = min(cuts, key=lambda c: abs(c - len(text) / 2))
    return split_long(text[:mid].strip(), max_chars) + split_long(text[mid:].strip(), max_chars)


def utterances(raw_text: str, config: FilterConfig) -> list[str]:
    """Sentences, then clauses for sentences too long to make one clip."""
    max_chars = int(config.max_duration_s * 0.9 * EXPECTED_CHARS_PER_S)
    return [part for s in sentences(raw_text) for part in split_long(s, max_chars)]


def _language(text: str) -> str:
    return py3langid.classify(text)[0] if text.strip() else "und"


def _silence_share(samples: np.ndarray, start_s: float, end_s: float) -> float:
    seg = samples[int(start_s * SAMPLE_RATE): int(end_s * SAMPLE_RATE)].astype(np.float32)
    n = seg.size // 160
    if n == 0:
        return 1.0
    db = 10 * np.log10(np.mean((seg[: n * 160].reshape(n, 160) / 32768.0) ** 2, axis=1)
                       + 1e-10)
    return float(np.mean(db < db.max() - 35))


def _greedy(emissions, f0: int, f1: int) -> str:
    """What the model hears in frames [f0, f1): its greedy CTC transcript."""
    return emissions.info.vocab.decode(emissions.log_probs[f0:f1].argmax(-1)) if f1 > f0 else ""


def _heard(emissions, start_s: float, end_s: float) -> str:
    """The greedy transcript of the frames strictly between two times."""
    return _greedy(emissions, int(start_s / emissions.frame_s) + 1, int(end_s / emissions.frame_s))


def outside_cues(segments, spans: list, config: FilterConfig) -> set[int]:
    """Utterances whose aligned speech lies outside their subtitle cue (± tolerance) — when
    the recording's cues have proved reliable, i.e. most aligned utterances lie within theirs.
    Shifted or invented cue times prove nothing and flag nothing."""
    tol = config.cue_tolerance_s
    inside = {s.index: spans[s.index][0] - tol <= s.speech_start_s
              and s.speech_end_s <= spans[s.index][1] + tol
              for s in segments if s.aligned and spans[s.index]}
    if len(inside) < 3 or sum(inside.values()) < config.cue_min_agreement * len(inside):
        return set()
    return {i for i, ok in inside.items() if not ok}


def align_recording(job: RecordingJob, model: AcousticModel, config: FilterConfig,
                    clip_dir: Path, workdir: Path) -> list[dict]:
    try:
        samples = decode(job.audio_path, job.expected_s)
    except DecodeError as exc:
        raise RecordingFailed(str(exc)) from None
    duration = len(samples) / SAMPLE_RATE
    size = job.transcript_path.stat().st_size
    if size > max(duration * MAX_TRANSCRIPT_BYTES_PER_S, TRANSCRIPT_BYTES_FLOOR):
        raise RecordingFailed(f"transcript too large: {size} bytes for {duration:.1f} s of audio "
                              f"(at most {MAX_TRANSCRIPT_BYTES_PER_S:g} a second)")
    try:
        transcript = read_transcript(job.transcript_path)
    except TranscriptError as exc:
        raise RecordingFailed(str(exc)) from None
    if not transcript.text:
        raise RecordingFailed("empty transcript: no spoken words in it")
    if duration < config.min_duration_s:
        raise RecordingFailed(f"audio too short: {duration:.3f} s, less than the shortest clip "
                              f"({config.min_duration_s:g} s)")
    if len(transcript.text) > duration * MAX_TEXT_CHARS_PER_S:
        raise RecordingFailed(f"text longer than audio: {len(transcript.text)} characters for "
                              f"{duration:.1f} s (at most {MAX_TEXT_CHARS_PER_S:g} a second)")
    raw_utts = utterances(transcript.text, config)
    vocab = model.info.vocab
    pairs = [(raw, normalize(raw, upper=vocab.upper)) for raw in raw_utts]
    pairs = [(raw, norm) for raw, norm in pairs if norm]
    if not pairs:
        raise RecordingFailed("empty transcript: nothing left after normalisation")
    emissions = model.emissions(samples)  # int16: scaled window by window
    try:
        segments = segment(emissions, [n for _, n in pairs], samples)
    except TextLongerThanAudio as exc:
        raise RecordingFailed(str(exc)) from None
    except ValueError as exc:
        raise RecordingFailed(f"alignment failed: {exc}") from None

    spans = cue_spans(transcript, [raw for raw, _ in pairs])
    suspect = outside_cues(segments, spans, config)
    recording_language = _language(transcript.text)
    rows = []
    for k, seg in enumerate(segments):
        raw, text = pairs[seg.index]
        prev_end = segments[k - 1].speech_end_s if k else 0.0
        next_start = segments[k + 1].speech_start_s if k + 1 < len(segments) else duration
        start = max(0.0, seg.speech_start_s - config.pad_s,
                    (prev_end + seg.speech_start_s) / 2 if k else 0.0)
        end = min(duration, seg.speech_end_s + config.pad_s,
                  (seg.speech_end_s + next_start) / 2 if k + 1 < len(segments) else duration)
        f0 = int(seg.speech_start_s / emissions.frame_s)
        f1 = max(f0 + 1, int(np.ceil(seg.speech_end_s / emissions.frame_s)))
        heard = _greedy(emissions, f0, f1)
        # What the model hears in the gap to each neighbour (at most a second of it).
        before = _heard(emissions, max(prev_end, seg.speech_start_s - NEXT_TO_S),
                        seg.speech_start_s)
        after = _heard(emissions, seg.speech_end_s,
                       min(next_start, seg.speech_end_s + NEXT_TO_S))
        want = vocab.text_case(text)
        n = config.edge_chars
        clip_language = _language(raw) if len(raw) >= 40 else recording_language
        metrics = {
            "aligned": seg.aligned,
            "score": seg.score,
            "cer": cer(want, heard),
            "cer_start": cer(want[:n], heard[:n]),
            "cer_end": cer(want[-n:], heard[-n:]),
            "duration_s": end - start,
            "chars_per_s": len(want) / max(seg.speech_end_s - seg.speech_start_s, 1e-3),
            "language": recording_language if recording_language != config.language
            else clip_language,
            "silence_share": _silence_share(samples, seg.speech_start_s, seg.speech_end_s),
            "asr_caption": job.asr_caption,
            "outside_cue": seg.index in suspect,
            "heard_before": before,
            "heard_after": after,
            # no pause between this utterance and a neighbour (a clause split): the cut
            # between them may clip a sound
            "joined": (k and seg.speech_start_s - prev_end < JOINED_GAP_S) or (
                k + 1 < len(segments) and next_start - seg.speech_end_s < JOINED_GAP_S),
        }
        verdict, reasons = tier(metrics, config)
        clip_id = f"{job.key}-{seg.index:05d}"
        clip_path = None
        if verdict != "rejected":
            path = remote_path(clip_dir, job.source, job.item_id, f"{clip_id}.flac")
            write_flac(path, samples[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)])
            clip_path = str(path.relative_to(workdir))
        rows.append({
            "clip_id": clip_id, "source": job.source, "item_id": job.item_id,
            "audio_file": job.audio_file, "transcript_file": job.transcript_file,
            "start_s": round(start, 3), "end_s": round(end, 3),
            "speech_start_s": round(seg.speech_start_s, 3),
            "speech_end_s": round(seg.speech_end_s, 3), "duration_s": round(end - start, 3),
            "text": text, "text_raw": raw, "greedy_text": heard, "tier": verdict,
            "reasons": reasons, "score": float(metrics["score"]), "cer": metrics["cer"],
            "cer_start": metrics["cer_start"], "cer_end": metrics["cer_end"],
            "chars_per_s": round(metrics["chars_per_s"], 3), "language": metrics["language"],
            "asr_caption": job.asr_caption, "silence_share": round(metrics["silence_share"], 3),
            # In recording seconds, as aligned: ``segment`` keeps them inside the speech
            # edges, so inside the cut (not clamped here, where a clamp would hide a cut
            # through a word).
            "words": [{"word": w.word, "start_s": round(w.start_s, 3),
                       "end_s": round(w.end_s, 3), "score": round(w.score, 4)}
                      for w in seg.words] if verdict != "rejected" else [],
            "heard_before": before, "heard_after": after,
            "cue_start_s": spans[seg.index][0] if spans[seg.index] else None,
            "cue_end_s": spans[seg.index][1] if spans[seg.index] else None,
            "license_spdx": job.license_spdx, "license_family": job.license_family,
            "attribution": job.attribution, "clip_path": clip_path,
            "model_id": model.info.model_id,
        })
    return rows
