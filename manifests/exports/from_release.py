"""Reading one config of a release for an export: exactly its rows, splits and audio bytes.

A release is a pure function of the manifests, so an export of it is a pure function of the
release's own files: ``release.json`` says which shards a config has and how many rows each
split holds, ``SHA256SUMS`` what every file's bytes are, the shards hold the rows with their
FLAC audio embedded. Anything that disagrees (a shard missing, extra, altered, a row count off,
a license the gate would not accept or outside the config's families, a clip id that is not a
plain file name) is refused: an export either is the release or is not made.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq

from manifests.exports.common import (
    CLIP_ID,
    SPLIT_NAME,
    Clip,
    ExportError,
    Part,
    num_samples,
)
from manifests.licenses import acceptable_spdx
from manifests.release.config import FAMILIES
from manifests.release.config import NAME as CONFIG_NAME
from manifests.release.inputs import SHARD_NAME

BATCH_ROWS = 64  # rows (with their audio) in memory at once while reading a shard


def read_meta(release: Path) -> dict:
    """release.json, or a one-line reason this is no release."""
    release = Path(release)
    path = release / "release.json"
    if not release.is_dir():
        raise ExportError(f"--release {release} is not a directory")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"--release {release} is not a release (no release.json)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ExportError(f"{path} cannot be read ({exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("configs"), dict):
        raise ExportError(f"{path} is not a release record (no configs)")
    return meta


def checksums(release: Path) -> dict[str, str]:
    """SHA256SUMS as path → digest."""
    path = release / "SHA256SUMS"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"--release {release} has no readable SHA256SUMS ({exc})") from None
    sums = {}
    for line in lines:
        digest, sep, name = line.partition("  ")
        if sep and len(digest) == 64:
            sums[name] = digest
    return sums


def parts(release: Path, meta: dict, configs: list[str]) -> list[Part]:
    """One part per config asked for (its own directory when there are several)."""
    available = [n for n, c in meta["configs"].items() if isinstance(c, dict) and c.get("rows")]
    if not configs:
        raise ExportError("name at least one release config to export")
    if len(set(configs)) != len(configs):
        raise ExportError(f"a config is named twice: {', '.join(configs)}")
    out = []
    for name in configs:
        if not isinstance(name, str) or not CONFIG_NAME.match(name) or name not in available:
            raise ExportError(f"release {meta.get('version')} has no config {name!r} with rows "
                              f"(it has: {', '.join(available) or 'none'})")
        c = meta["configs"][name]
        families = tuple(c.get("families") or ())
        splits = tuple((c.get("splits") or {}).keys())
        if not families or ("by-sa" in families) != name.endswith("_sa") or \
                set(families) - set(FAMILIES):
            raise ExportError(f"release config {name!r} has license families {list(families)}, "
                              "which a release never makes (share-alike only in configs "
                              "named *_sa)")
        if not splits or not all(isinstance(s, str) and SPLIT_NAME.match(s) for s in splits):
            raise ExportError(f"release config {name!r} has unusable split names "
                              f"{list(splits)}")
        out.append(Part(name, "" if len(configs) == 1 else name, families, splits=splits))
    return out


def read_part(release: Path, meta: dict, sums: dict[str, str], part: Part,
              audio_root: Path) -> list[Clip]:
    """The config's rows in the release's order (split by split, shard by shard), each
    clip's embedded audio written to ``audio_root/audio/<split>/<id>.flac``."""
    release = Path(release)
    config = meta["configs"][part.name]
    listed = {}
    for split in part.splits:
        entry = config["splits"][split]
        files = entry.get("files") if isinstance(entry, dict) else None
        if not isinstance(files, list) or not files:
            raise ExportError(f"release.json lists no files for {part.name}/{split}")
        for f in files:
            listed[f] = split
    present = {f"data/{part.name}/{p.name}" for p in (release / "data" / part.name).glob("*")}
    if set(listed) != present:
        extra, missing = sorted(present - set(listed)), sorted(set(listed) - present)
        raise ExportError(f"release config {part.name!r} does not match its release.json "
                          f"(missing: {', '.join(missing) or 'none'}; not listed: "
                          f"{', '.join(extra) or 'none'})")
    clips: list[Clip] = []
    seen: set[str] = set()
    for rel, split in listed.items():
        m = SHARD_NAME.match(Path(rel).name)
        if not m or m["split"] != split:
            raise ExportError(f"release file {rel} is not a shard of split {split}")
        shard = release / rel
        if sums.get(rel) != _sha256(shard):
            raise ExportError(f"release file {rel} differs from its SHA256SUMS entry (altered "
                              "or truncated): not exporting it")
        clips += _read_shard(shard, split, part, audio_root, seen)
    for split in part.splits:
        want = config["splits"][split].get("rows")
        got = sum(c.split == split for c in clips)
        if want != got:
            raise ExportError(f"release config {part.name!r} split {split}: release.json says "
                              f"{want} rows, its shards hold {got}")
    return clips


def _read_shard(shard: Path, split: str, part: Part, audio_root: Path,
                seen: set[str]) -> list[Clip]:
    out = []
    try:
        parquet = pq.ParquetFile(shard)
        schema = parquet.schema_arrow.remove_metadata()
        if part.schema is None:
            part.schema = schema
        elif not schema.equals(part.schema):
            raise ExportError(f"release shard {shard.name} of {part.name} has other columns "
                              "than the config's other shards")
        batches = parquet.iter_batches(batch_size=BATCH_ROWS)
        for batch in batches:
            for row in batch.to_pylist():
                out.append(_clip(row, split, part, audio_root, seen))
    except ExportError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ExportError(f"release shard {shard.name} of {part.name} cannot be read "
                          f"({type(exc).__name__}: {exc})") from None
    return out


def _clip(row: dict, split: str, part: Part, audio_root: Path, seen: set[str]) -> Clip:
    clip_id = row.get("id")
    if not isinstance(clip_id, str) or not CLIP_ID.match(clip_id):
        raise ExportError(f"release config {part.name!r} has a row whose id {clip_id!r} is not "
                          "a plain clip id")
    if clip_id in seen:
        raise ExportError(f"release config {part.name!r} holds clip {clip_id} twice")
    seen.add(clip_id)
    spdx = row.get("license_spdx")
    family = acceptable_spdx(spdx)
    if family is None or family not in part.families or row.get("license_family") != family:
        raise ExportError(f"release config {part.name!r}: clip {clip_id} has license {spdx!r} "
                          f"(family {row.get('license_family')!r}), which this config "
                          f"({', '.join(part.families)}) may not hold: not exporting it")
    audio = row.pop("audio", None)
    data = audio.get("bytes") if isinstance(audio, dict) else None
    if not isinstance(data, bytes) or not data:
        raise ExportError(f"release config {part.name!r}: clip {clip_id} has no audio")
    path = audio_root / "audio" / split / f"{clip_id}.flac"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    clip = Clip({**row, "clip_id": clip_id}, path, num_samples(path, clip_id), split)
    if abs(clip.duration_ms - (row.get("duration_ms") or 0)) > 1:
        raise ExportError(f"release config {part.name!r}: clip {clip_id} says "
                          f"{row.get('duration_ms')} ms, its audio lasts {clip.duration_ms} ms")
    return clip


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
