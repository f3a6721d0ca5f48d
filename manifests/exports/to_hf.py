"""The HuggingFace export: Parquet shards per split that ``datasets.load_dataset("parquet",
data_dir=…)`` reads as an ``Audio`` dataset, the FLAC bytes inside so the export travels as one
directory. A release's rows keep exactly the release's columns; a workdir's get the manifest's
provenance columns."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from manifests.exports.common import PROVENANCE, Clip, Part
from manifests.hf import AUDIO, write_parquet
from manifests.schema import CLIPS, WORD

MAX_SHARD_BYTES = 500 * 10**6  # the Hub's advice for Parquet shards

# Plain types: a reader should not need to know about Arrow dictionaries.
SCHEMA = pa.schema(
    [pa.field("id", pa.string()), pa.field("audio", AUDIO), pa.field("duration_ms", pa.int32()),
     pa.field("text", pa.string()), pa.field("text_raw", pa.string())]
    + [pa.field(n, CLIPS.field(n).type.value_type
                if pa.types.is_dictionary(CLIPS.field(n).type) else CLIPS.field(n).type)
       for n in PROVENANCE]
    + [pa.field("reasons", pa.list_(pa.string())),
       pa.field("words", pa.list_(WORD))])  # in seconds of the clip


def write_hf(part: Part, out: Path, max_shard_bytes: int = MAX_SHARD_BYTES,
             **_) -> list[Path]:
    """Write ``out/data/<split>-NNNNN-of-NNNNN.parquet`` for each split, which
    ``datasets.load_dataset("parquet", data_dir=out)`` reads as those splits; shards are
    planned from the FLAC file sizes first, so only one shard's audio is ever in memory."""
    paths = []
    for split in part.splits:
        clips = [c for c in part.clips if c.split == split]
        if clips:
            paths += _write_split(clips, split, out, max_shard_bytes, part.schema)
    return paths


def _write_split(clips: list[Clip], split: str, out: Path, max_shard_bytes: int,
                 release_schema: pa.Schema | None) -> list[Path]:
    shards: list[list[Clip]] = [[]]
    size = 0
    for clip in clips:
        n = clip.path.stat().st_size
        if shards[-1] and size + n > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(clip)
        size += n
    paths = []
    for k, shard in enumerate(shards):
        path = out / "data" / f"{split}-{k:05d}-of-{len(shards):05d}.parquet"
        if release_schema is None:
            table = pa.Table.from_pylist([_row(c) for c in shard], schema=SCHEMA)
        else:
            table = pa.Table.from_pylist([_release_row(c, release_schema) for c in shard],
                                         schema=release_schema)
        write_parquet(table, path)
        paths.append(path)
    return paths


def _release_row(clip: Clip, schema: pa.Schema) -> dict:
    """A release's row as the release holds it: its columns and values, the audio embedded
    the same way (no column added, none dropped, words in the recording's seconds)."""
    audio = {"bytes": clip.path.read_bytes(), "path": f"{clip.id}.flac"}
    return {n: audio if n == "audio" else clip.row.get(n) for n in schema.names}


def _row(clip: Clip) -> dict:
    """A workdir clip's manifest row, with its audio embedded and words in clip seconds."""
    r = clip.row
    return {"id": clip.id, "audio": {"bytes": clip.path.read_bytes(), "path": f"{clip.id}.flac"},
            "duration_ms": clip.duration_ms, "text": r["text"], "text_raw": r.get("text_raw"),
            **{n: r.get(n) for n in PROVENANCE}, "reasons": r.get("reasons"),
            "words": clip.words()}
