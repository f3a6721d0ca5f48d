"""The NeMo export: one JSON-lines manifest per split, the shape NeMo's ASR datasets read.

Audio paths are relative (``audio/<split>/<id>.flac``) and the manifests lie beside ``audio/``:
NeMo resolves a relative path that names a directory against the manifest's own directory, so
the export keeps working wherever it is moved.
"""

from __future__ import annotations

import json
from pathlib import Path

from manifests.catalog import Catalog
from manifests.exports.common import PROVENANCE, ExportError, Part, place


def manifest_name(split: str) -> str:
    return f"{split}_manifest.json"


def write_nemo(part: Part, out: Path, workdir: Path | None = None,
               against_recordings: bool = False, link: bool = False, **_) -> list[Path]:
    """Point at the clip files, or with ``against_recordings`` at the source recordings
    (copied, or hard-linked, into ``out/recordings/``) with ``offset`` and ``duration``: NeMo
    then cuts at load time, and the context around each clip stays available to whoever
    wants other cuts."""
    recordings = _recordings(workdir) if against_recordings else {}
    placed: dict[str, str] = {}
    paths = []
    for split in part.splits:
        clips = [c for c in part.clips if c.split == split]
        if not clips:
            continue
        path = out / manifest_name(split)
        with path.open("w", encoding="utf-8") as f:
            for clip in clips:
                r = clip.row
                if against_recordings:
                    key = (r["source"], r["item_id"], r["audio_file"])
                    if key not in recordings:
                        raise ExportError(f"the recording of clip {clip.id} ({'/'.join(key)}) "
                                          "is not in the catalog as downloaded")
                    rel = _place_recording(recordings[key], workdir, out, link, placed)
                    entry = {"audio_filepath": rel, "offset": r["start_s"],
                             "duration": round(r["end_s"] - r["start_s"], 3)}
                else:
                    entry = {"audio_filepath": clip.audio_name, "duration": clip.duration_s}
                entry.update(text=r["text"], id=clip.id, **{n: r.get(n) for n in PROVENANCE})
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        paths.append(path)
    return paths


def _place_recording(src: str, workdir: Path, out: Path, link: bool,
                     placed: dict[str, str]) -> str:
    """``recordings/<its path in the workdir>``, put there once however many clips it has."""
    if src not in placed:
        try:
            rel = Path(src).resolve().relative_to(Path(workdir).resolve())
        except ValueError:
            raise ExportError(f"the catalog places a recording outside the workdir ({src}): "
                              "not exporting it") from None
        dest = Path("recordings") / rel
        place(Path(src), out / dest, link)
        placed[src] = dest.as_posix()
    return placed[src]


def _recordings(workdir: Path) -> dict[tuple[str, str, str], str]:
    """Where each downloaded recording lies, from the catalog, opened read-only: exporting
    never changes the workdir."""
    db = workdir / "catalog.sqlite"
    if not db.is_file():
        raise ExportError(f"no catalog at {db}: --against-recordings needs the crawl's workdir")
    with Catalog.reader(db) as catalog:
        rows = catalog.recordings()
    return {key: str((workdir / p).absolute()) for key, p in rows.items()}
