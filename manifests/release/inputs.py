"""Reading what a release is made from: the manifests, the clip files' headers, the previous
release. Everything that touches the disk before planning is here, so ``plan`` stays pure."""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from manifests.catalog import Catalog
from manifests.release.plan import Previous, item_key, plain
from manifests.release.splits import Assignment

SHARD_NAME = re.compile(r"^(?P<split>[a-z][a-z0-9_]*)-(?P<shard>\d{5})-of-(?P<of>\d{5})\.parquet$")
# Read from the clip manifests; ``words`` and the metrics ride along into the shards.
CLIP_COLUMNS = ["clip_id", "source", "item_id", "audio_file", "start_s", "end_s", "duration_s",
                "text", "text_raw", "tier", "reasons", "score", "cer", "language", "asr_caption",
                "words", "license_spdx", "license_family", "attribution", "clip_path", "model_id"]
ITEM_COLUMNS = ["source", "item_id", "url", "title", "creator", "license_url", "license_spdx",
                "license_family", "decision", "reason", "gone_at"]


FILTERS_KEY = b"speechcrawl.filters"  # the align stage's filter settings, per clip manifest
MODEL_KEY = b"speechcrawl.model"  # the model that aligned it: id, weights sha256 and license


def read_manifests(workdir: Path) -> tuple[pa.Table, pa.Table, list[dict], dict[str, dict]]:
    """(clips, items, filter settings, models) from ``manifests/``, dictionary columns
    decoded, in file order. The filter settings are each distinct set the clip manifests
    record, with the number of clips aligned under it (``settings`` None: a manifest that
    records none); models maps each model_id to the record the align stage wrote of it."""
    items_path = workdir / "manifests" / "items.parquet"
    if not items_path.exists():
        raise FileNotFoundError(f"no {items_path}: run a crawl first")
    items = plain(pq.read_table(items_path, columns=ITEM_COLUMNS))
    paths = sorted(p for p in (workdir / "manifests" / "clips").glob("*.parquet")
                   if not p.name.startswith("."))
    if not paths:
        raise FileNotFoundError(f"no clip manifests in {workdir / 'manifests' / 'clips'}: "
                                "run align first")
    tables, filters, models = [], {}, {}
    for p in paths:
        schema = pq.read_schema(p)
        t = plain(pq.read_table(p, columns=[c for c in CLIP_COLUMNS if c in schema.names]))
        tables.append(t)
        raw = (schema.metadata or {}).get(FILTERS_KEY)
        key = json.dumps(json.loads(raw), sort_keys=True) if raw else ""
        filters[key] = filters.get(key, 0) + t.num_rows
        if raw_model := (schema.metadata or {}).get(MODEL_KEY):
            record = json.loads(raw_model)
            models[record["model_id"]] = record
    settings = [{"settings": json.loads(k) if k else None, "clips": n}
                for k, n in sorted(filters.items())]
    return pa.concat_tables(tables, promote_options="default"), items, settings, models


def audio_hash(path: Path) -> tuple[str, int]:
    """(hash of the decoded audio, file size). A FLAC file carries the MD5 of its decoded
    samples in its STREAMINFO block (libsndfile fills it in), so identical audio is found by
    reading 42 bytes, whatever the encoder settings; where the MD5 is unset the file bytes'
    sha256 stands in."""
    with path.open("rb") as f:
        head = f.read(42)
        size = f.seek(0, 2)
        if head[:4] == b"fLaC" and head[4] & 0x7F == 0 and any(head[26:42]):
            return f"md5:{head[26:42].hex()}", size
        f.seek(0)
        return f"sha256:{hashlib.file_digest(f, 'sha256').hexdigest()}", size


def with_audio_facts(clips: pa.Table, workdir: Path, workers: int = 1) -> pa.Table:
    """The clips with ``audio_hash`` and ``audio_bytes`` for every clip that has a file."""
    paths = clips["clip_path"].to_pylist()

    def one(p: str | None) -> tuple[str | None, int | None]:
        if p is None:
            return None, None
        path = workdir / p
        if not path.exists():
            raise FileNotFoundError(f"clip audio {p} is in the manifests but not in the workdir "
                                    "(re-run align)")
        return audio_hash(path)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        facts = list(pool.map(one, paths, chunksize=256))
    return clips.append_column("audio_hash", pa.array([h for h, _ in facts], pa.string())) \
        .append_column("audio_bytes", pa.array([s for _, s in facts], pa.int64()))


def duplicate_downloads(workdir: Path) -> list[dict]:
    """Recordings the crawl stored once because another item had the same bytes: reported
    beside the release's own duplicates (the duplicate item has no clips of its own)."""
    db = workdir / "catalog.sqlite"
    if not db.exists():
        return []
    with Catalog.reader(db) as catalog:
        rows = catalog.duplicates(role="audio")
    return [{"item": f"{d.source}/{d.item_id}", "file": d.name,
             "duplicate_of": f"{d.source}/{d.duplicate_of}"} for d in rows]


def read_previous(release: Path) -> Previous:
    """A previous release's version, split assignment and rows, from its own files: its
    ``splits.json`` where it has one (else each item's split as its shards show it), and its
    shards' columns other than the audio."""
    release = Path(release)
    if not (release / "data").is_dir():
        raise FileNotFoundError(f"{release} is not a release (no data/ directory)")
    meta = json.loads((release / "release.json").read_text()) \
        if (release / "release.json").exists() else {}
    tables = []
    for shard in sorted((release / "data").glob("*/*.parquet")):
        m = SHARD_NAME.match(shard.name)
        if not m:
            continue
        names = pq.read_schema(shard).names
        want = [c for c in ("id", "source", "item_id", "duration_ms", "text", "license_spdx",
                            "attribution", "audio_hash") if c in names]
        t = plain(pq.read_table(shard, columns=want))
        t = t.append_column("config", pa.array([shard.parent.name] * t.num_rows, pa.string()))
        t = t.append_column("split", pa.array([m["split"]] * t.num_rows, pa.string()))
        tables.append(t)
    rows = pa.concat_tables(tables, promote_options="default") if tables else pa.table(
        {"id": pa.array([], pa.string()), "source": pa.array([], pa.string()),
         "item_id": pa.array([], pa.string())})
    rows = rows.rename_columns(["clip_id" if c == "id" else c for c in rows.column_names])
    rows = rows.append_column("item_key", item_key(rows["source"], rows["item_id"]))
    if (release / "splits.json").exists():
        data = json.loads((release / "splits.json").read_text())
        splits = {k: Assignment(v["split"], v["group"]) for k, v in data["items"].items()}
    else:
        splits = {}
        for r in rows.select(["item_key", "split"]).to_pylist():
            splits.setdefault(r["item_key"], Assignment(r["split"], f"item:{r['item_key']}"))
    if rows.num_rows:
        rows = rows.take(pc.sort_indices(rows, [("config", "ascending"),
                                                ("clip_id", "ascending")]))
    return Previous(meta.get("version") or release.name, splits, rows)
