"""The NeMo export: one JSON object a line, the shape NeMo's ASR datasets read."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from manifests.exports.common import PROVENANCE, Clip, ExportError

NAME = "manifest.json"


def write_nemo(clips: list[Clip], out: Path, workdir: Path, against_recordings: bool = False,
               **_) -> Path:
    """Point at the clip files, or with ``against_recordings`` at the source recordings with
    ``offset`` and ``duration``: NeMo then cuts at load time, and the context around each
    clip stays available to whoever wants other cuts."""
    recordings = _recordings(workdir) if against_recordings else {}
    path = out / NAME
    with path.open("w", encoding="utf-8") as f:
        for clip in clips:
            r = clip.row
            if against_recordings:
                key = (r["source"], r["item_id"], r["audio_file"])
                if key not in recordings:
                    raise ExportError(f"the recording of clip {clip.id} ({'/'.join(key)}) is "
                                      "not in the catalog as downloaded")
                entry = {"audio_filepath": recordings[key], "offset": r["start_s"],
                         "duration": round(r["end_s"] - r["start_s"], 3)}
            else:
                entry = {"audio_filepath": str(clip.path), "duration": clip.duration_s}
            entry.update(text=r["text"], id=clip.id, **{n: r[n] for n in PROVENANCE})
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return path


def _recordings(workdir: Path) -> dict[tuple[str, str, str], str]:
    """Where each downloaded recording lies, from the catalog, opened read-only: exporting
    never changes the workdir."""
    db = workdir / "catalog.sqlite"
    if not db.is_file():
        raise ExportError(f"no catalog at {db}: --against-recordings needs the crawl's workdir")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT source, item_id, name, local_path FROM files "
                            "WHERE status = 'downloaded' AND local_path IS NOT NULL").fetchall()
    finally:
        conn.close()
    return {(s, i, n): str((workdir / p).absolute()) for s, i, n, p in rows}
