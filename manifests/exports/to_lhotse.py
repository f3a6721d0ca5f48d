"""The Lhotse export: recordings, supervisions and cuts, made and written by lhotse itself so
that ``lhotse.load_manifest`` reads exactly what it expects."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

from lhotse import CutSet, MonoCut, Recording, RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.audio import AudioSource
from lhotse.supervision import AlignmentItem

from manifests.exports.common import PROVENANCE, Clip
from manifests.hf import SAMPLE_RATE

# What travels in each supervision's ``custom``: the label's origin and license.
CUSTOM = tuple(n for n in PROVENANCE if n != "language") + ("text_raw",)


def write_lhotse(clips: list[Clip], out: Path, **_) -> list[Path]:
    """One recording per clip file, one supervision spanning it (padding included, as the
    label does), one cut; streamed, so a large export does not sit in memory."""
    names = {"recordings": RecordingSet, "supervisions": SupervisionSet, "cuts": CutSet}
    plain = {k: out / f"{k}.jsonl" for k in names}
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
    return Recording(id=clip.id, sources=[AudioSource("file", [0], str(clip.path))],
                     sampling_rate=SAMPLE_RATE, num_samples=clip.num_samples,
                     duration=clip.duration_s)


def _supervision(clip: Clip) -> SupervisionSegment:
    r = clip.row
    words = [AlignmentItem(symbol=w["word"], start=w["start_s"],
                           duration=round(w["end_s"] - w["start_s"], 3), score=w["score"])
             for w in clip.words()]
    return SupervisionSegment(
        id=clip.id, recording_id=clip.id, start=0.0, duration=clip.duration_s, channel=0,
        text=r["text"], language=r["language"], custom={n: r[n] for n in CUSTOM},
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
