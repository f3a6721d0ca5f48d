"""What every export shares: the clips and where their audio lies, the parts an export is made
of (share-alike never beside anything else), the counts its record states, and replacing the
output directory whole."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import soundfile as sf

from manifests import outdir
from manifests.hf import SAMPLE_RATE
from manifests.schema import SCHEMA_VERSION
from manifests.version import code_version

TIERS = ("clean", "other")  # rejected clips have no audio: nothing to export
RECORD = "export.json"  # says what an export holds and how it was made
# A workdir has no splits: its clips all go under this name, which HF readers expect.
WORKDIR_SPLIT = "train"
# Clip ids and split names become file names: anything else in a release is refused.
CLIP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
SPLIT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

# The license and provenance every export carries beside the label.
PROVENANCE = ("source", "item_id", "audio_file", "start_s", "end_s", "speech_start_s",
              "speech_end_s", "tier", "score", "cer", "language", "asr_caption",
              "license_spdx", "license_family", "attribution", "model_id")


class ExportError(ValueError):
    """A one-line reason the export cannot be made; the CLI prints it as it is."""


@dataclass(frozen=True)
class Clip:
    """One exported clip: its row (a manifest's or a release's), the FLAC file that holds its
    audio now, and the split it belongs to."""

    row: dict
    path: Path  # absolute
    num_samples: int
    split: str = WORKDIR_SPLIT

    @property
    def id(self) -> str:
        return self.row["clip_id"]

    @property
    def duration_s(self) -> float:
        return self.num_samples / SAMPLE_RATE

    @property
    def duration_ms(self) -> int:
        return round(self.num_samples * 1000 / SAMPLE_RATE)

    @property
    def audio_name(self) -> str:
        """Where the clip's file lies inside its part of the export (NeMo and Lhotse)."""
        return f"audio/{self.split}/{self.id}.flac"

    def words(self) -> list[dict]:
        """Word timings in seconds of the clip (the rows have them in the recording's),
        kept inside it: forced alignment may put an edge word a few frames past the cut where
        two utterances touch (no padding there), and a clip holds no audio outside itself."""
        start, end = self.row["start_s"], self.duration_s

        def inside(t: float) -> float:
            return min(max(round(t - start, 3), 0.0), end)

        return [{**w, "start_s": inside(w["start_s"]), "end_s": inside(w["end_s"])}
                for w in self.row["words"] or []]


@dataclass
class Part:
    """One directory of an export, under one set of license families: a release config, or
    the workdir's permissive or share-alike clips. Parts are never merged, so share-alike
    material never shares a file with anything else."""

    name: str
    dir: str  # inside the export; "" is its root
    families: tuple[str, ...]
    clips: list[Clip] = field(default_factory=list)
    splits: tuple[str, ...] = (WORKDIR_SPLIT,)
    # A release config's row columns, read from its shards: a format that keeps rows (HF)
    # keeps exactly these, so an export of a release carries the release's columns.
    schema: pa.Schema | None = None

    @property
    def share_alike(self) -> bool:
        return "by-sa" in self.families


@dataclass(frozen=True)
class Summary:
    format: str
    out: Path
    clips: int
    hours: float
    origin: str  # "release" or "workdir"
    parts: dict[str, dict]  # name → its entry in export.json


def hours(clips: list[Clip]) -> float:
    """Hours as a release counts them: the sum of each clip's rounded milliseconds."""
    return round(sum(c.duration_ms for c in clips) / 3.6e6, 4)


def counts(clips: list[Clip], splits: tuple[str, ...]) -> dict:
    """Clips and hours in all, per split and per license: what export.json states."""
    def entry(cs: list[Clip]) -> dict:
        return {"clips": len(cs), "hours": hours(cs)}

    licenses = sorted({c.row["license_spdx"] for c in clips})
    return {**entry(clips),
            "splits": {s: entry([c for c in clips if c.split == s]) for s in splits
                       if any(c.split == s for c in clips)},
            "licenses": {x: entry([c for c in clips if c.row["license_spdx"] == x])
                         for x in licenses}}


def num_samples(path: Path, clip_id: str) -> int:
    """The samples a clip's FLAC file holds, refusing anything but 16 kHz mono audio."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise ExportError(f"clip {clip_id}: its audio cannot be read ({exc})") from None
    if info.samplerate != SAMPLE_RATE or info.channels != 1 or info.frames <= 0:
        raise ExportError(f"clip {clip_id}: its audio is {info.samplerate} Hz, "
                          f"{info.channels} channels, {info.frames} samples; expected "
                          f"{SAMPLE_RATE} Hz mono")
    return info.frames


def place(src: Path, dest: Path, link: bool) -> None:
    """Put a copy of ``src`` at ``dest``, or with ``link`` a hard link (which, unlike a
    symbolic one, survives moving either directory); across file systems, a copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(src, dest)
            return
        except OSError:
            pass
    shutil.copyfile(src, dest)


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


@contextmanager
def replacing(out: Path, workdir: Path | None = None) -> Iterator[Path]:
    """Yield an empty directory beside ``out`` to build the export in, then swap it in.

    A reader sees the old export or the new one, never half of one; a failed export leaves the
    old one as it was. Only an empty directory or an earlier export is replaced, never the
    workdir, a release or anything else (``manifests.outdir``), so a mistyped ``--out`` cannot
    delete someone's data.
    """
    try:
        with outdir.replacing(out, "export", workdir) as tmp:
            yield tmp
    except outdir.OutputRefused as exc:
        raise ExportError(str(exc)) from None


def write_record(tmp: Path, record: dict) -> None:
    """export.json, in a fixed key order and with no clock or absolute path in it, so the
    same input exported twice gives the same bytes."""
    record = {**record, "schema_version": SCHEMA_VERSION, "code_version": code_version()}
    (tmp / RECORD).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n",
                              encoding="utf-8")
