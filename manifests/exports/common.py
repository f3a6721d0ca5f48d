"""What every export shares: choosing the clips, and replacing the output directory whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import soundfile as sf

from manifests import outdir
from manifests.hf import SAMPLE_RATE
from manifests.schema import SCHEMA_VERSION
from manifests.version import code_version

TIERS = ("clean", "other")  # rejected clips have no audio: nothing to export
RECORD = "export.json"  # says what an export holds and how it was made

# The license and provenance every export carries beside the label.
PROVENANCE = ("source", "item_id", "audio_file", "start_s", "end_s", "speech_start_s",
              "speech_end_s", "tier", "score", "cer", "language", "asr_caption",
              "license_spdx", "license_family", "attribution", "model_id")


class ExportError(ValueError):
    """A one-line reason the export cannot be made; the CLI prints it as it is."""


@dataclass(frozen=True)
class Clip:
    """One kept clip: its manifest row and what its FLAC file really holds."""

    row: dict
    path: Path  # absolute, so an export works from any directory
    num_samples: int

    @property
    def id(self) -> str:
        return self.row["clip_id"]

    @property
    def duration_s(self) -> float:
        return self.num_samples / SAMPLE_RATE

    @property
    def duration_ms(self) -> int:
        return round(self.num_samples * 1000 / SAMPLE_RATE)

    def words(self) -> list[dict]:
        """Word timings in seconds of the clip (the manifest has them in the recording's),
        kept inside it: forced alignment may put an edge word a few frames past the cut where
        two utterances touch (no padding there), and a clip holds no audio outside itself."""
        start, end = self.row["start_s"], self.duration_s

        def inside(t: float) -> float:
            return min(max(round(t - start, 3), 0.0), end)

        return [{**w, "start_s": inside(w["start_s"]), "end_s": inside(w["end_s"])}
                for w in self.row["words"] or []]


@dataclass(frozen=True)
class Summary:
    format: str
    out: Path
    clips: int
    hours: float


def hours(clips: list[Clip]) -> float:
    return sum(c.num_samples for c in clips) / SAMPLE_RATE / 3600


def resolve_tiers(tiers: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``all`` means every tier that has audio; order and repeats do not matter."""
    wanted = set()
    for t in tiers:
        if t == "all":
            wanted.update(TIERS)
        elif t in TIERS:
            wanted.add(t)
        else:
            raise ExportError(f"cannot export tier {t!r} (one of {', '.join(TIERS)}, all)")
    return tuple(t for t in TIERS if t in wanted)


def select(workdir: Path, tiers: tuple[str, ...], include_asr_captions: bool) -> list[Clip]:
    """The clips of ``tiers`` in clip_id order, the same whatever order align wrote them in.
    Clips cut from machine captions stay out unless asked for: their labels are a model's
    guess, not a transcript."""
    files = sorted((workdir / "manifests" / "clips").glob("*.parquet"))
    if not files:
        raise ExportError(f"no clip manifests in {workdir / 'manifests' / 'clips'} "
                          "(run speechcrawl align first)")
    total = captions = 0
    chosen = []
    for f in files:
        for row in pq.read_table(f).to_pylist():
            total += 1
            if row["tier"] not in tiers or not row["clip_path"]:
                continue
            if row["asr_caption"] and not include_asr_captions:
                captions += 1
                continue
            chosen.append(row)
    if not chosen:
        wanted = " or ".join(tiers)
        why = (f"its {captions} {wanted} clips are cut from machine captions "
               "(--include-asr-captions exports them)" if captions else
               f"none of its {total} clips is in tier {wanted}")
        raise ExportError(f"nothing to export from {workdir}: {why}")
    chosen.sort(key=lambda r: r["clip_id"])
    return [_clip(workdir, r) for r in chosen]


def _clip(workdir: Path, row: dict) -> Clip:
    path = (workdir / row["clip_path"]).absolute()
    try:
        info = sf.info(str(path))
    except sf.LibsndfileError as exc:
        raise ExportError(f"clip {row['clip_id']} cannot be read at {path} ({exc}); "
                          "run speechcrawl align again") from None
    if info.samplerate != SAMPLE_RATE or info.channels != 1:
        raise ExportError(f"clip {path} is {info.samplerate} Hz, {info.channels} channels; "
                          f"expected {SAMPLE_RATE} Hz mono")
    return Clip(row, path, info.frames)


@contextmanager
def replacing(out: Path, settings: dict, clips: list[Clip],
              workdir: Path | None = None) -> Iterator[Path]:
    """Yield an empty directory beside ``out`` to build the export in, then swap it in.

    A reader sees the old export or the new one, never half of one; a failed export leaves the
    old one as it was. Only an empty directory or an earlier export is replaced, never the
    workdir or anything else (``manifests.outdir``), so a mistyped ``--out`` cannot delete
    someone's data.
    """
    try:
        with outdir.replacing(out, "export", workdir) as tmp:
            yield tmp
            record = {**settings, "clips": len(clips), "hours": round(hours(clips), 4),
                      "schema_version": SCHEMA_VERSION, "code_version": code_version()}
            (tmp / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    except outdir.OutputRefused as exc:
        raise ExportError(str(exc)) from None
