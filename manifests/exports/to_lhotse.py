"""The Lhotse export: recordings, supervisions and cuts per split, made and written by lhotse
itself so that ``lhotse.load_manifest`` reads exactly what it expects.

Recording paths are relative to the export (``audio/<split>/<id>.flac``): lhotse opens them as
given, so a reader loads the audio with ``.with_recording_path_prefix(export_dir)`` on the cuts
(``.with_path_prefix`` on recordings) or from inside the export, wherever it was moved.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

from lhotse import CutSet, MonoCut, Recording, RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.audio import AudioSource
from lhotse.supervision import AlignmentItem

from manifests.exports.common import PROVENANCE, Clip, Part
from manifests.hf import SAMPLE_RATE

# What travels in each supervision's ``custom``: the label's origin and license.
CUSTOM = tuple(n for n in PROVENANCE if n != "language") + ("text_raw",)


def manifest_names(split: str) -> dict[str, str]:
    return {k: f"{k}_{split}.jsonl.gz" for k in ("recordings", "supervisions", "cuts")}


def write_lhotse(part: Part, out: Path, **_) -> list[Path]:
    """Per split: one recording per clip file, one supervision spanning it (padding
    included, as the label does), one cut; streamed, so a large export does not sit in
    memory."""
    paths = []
    for split in part.splits:
        clips = [c for c in part.clips if c.split == split]
        if clips:
            paths += _write_split(clips, out, split)
    return paths


def _write_split(clips: list[Clip], out: Path, split: str) -> list[Path]:
    names = {"recordings": RecordingSet, "supervisions": SupervisionSet, "cuts": CutSet}
    plain = {k: out / v.removesuffix(".gz") for k, v in manifest_names(split).items()}
    writers = {k: names[k].open_writer(plain[k]) for k in names}
    try:
        for clip in clips:
            rec, sup = _recording(clip), _supervision(clip)
            writers["recordings"].write(rec)
            writers["supervisions"].write(sup)
            writers["cuts"].write(MonoCut(id=clip.id, start=0.0, duration=rec.duration,
                                          channel=0, recording=rec, supervisions=[sup]))
    finally:
        for w in writers.values():
            w.close()
    return [_gzip(p) for p in plain.values()]


def _recording(clip: Clip) -> Recording:
    return Recording(id=clip.id, sources=[AudioSource("file", [0], clip.audio_name)],
                     sampling_rate=SAMPLE_RATE, num_samples=clip.num_samples,
                     duration=clip.duration_s)


def _supervision(clip: Clip) -> SupervisionSegment:
    r = clip.row
    words = [AlignmentItem(symbol=w["word"], start=w["start_s"],
                           duration=round(w["end_s"] - w["start_s"], 3), score=w["score"])
             for w in clip.words()]
    return SupervisionSegment(
        id=clip.id, recording_id=clip.id, start=0.0, duration=clip.duration_s, channel=0,
        text=r["text"], language=r.get("language"), custom={n: r.get(n) for n in CUSTOM},
        alignment={"word": words} if words else None)


def _gzip(path: Path) -> Path:
    """Compress with no time stamp and no file name in the header (lhotse's own ``.gz``
    writer records both), so exporting the same clips twice gives the same bytes."""
    target = path.with_name(path.name + ".gz")
    with path.open("rb") as src, target.open("wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as dst:
        shutil.copyfileobj(src, dst)
    os.unlink(path)
    return target
