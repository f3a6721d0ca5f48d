"""Parquet files that HuggingFace ``datasets`` reads as an audio dataset, without importing it.

``datasets.load_dataset("parquet", …)`` turns a ``struct<bytes, path>`` column into an ``Audio``
feature when the file's ``huggingface`` schema metadata says so; every other column's feature is
written out too, so what the loader builds does not depend on its type inference. Both the
``hf`` export and the release shards are written here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SAMPLE_RATE = 16_000
AUDIO = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
ROWS_PER_GROUP = 100  # audio rows are large; small groups keep random access and streaming cheap

_VALUES = {
    pa.string(): "string", pa.large_string(): "large_string", pa.bool_(): "bool",
    pa.int8(): "int8", pa.int16(): "int16", pa.int32(): "int32", pa.int64(): "int64",
    pa.float32(): "float32", pa.float64(): "float64", pa.binary(): "binary",
}


def feature(t: pa.DataType) -> dict:
    """The ``datasets`` feature (as its JSON form) of one Arrow type."""
    if t == AUDIO:
        return {"sampling_rate": SAMPLE_RATE, "_type": "Audio"}
    if pa.types.is_dictionary(t):
        return feature(t.value_type)
    if pa.types.is_timestamp(t):
        return {"dtype": f"timestamp[{t.unit}" + (f", tz={t.tz}]" if t.tz else "]"),
                "_type": "Value"}
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return {"feature": feature(t.value_type), "_type": "List"}
    if pa.types.is_struct(t):
        return {t.field(i).name: feature(t.field(i).type) for i in range(t.num_fields)}
    if t in _VALUES:
        return {"dtype": _VALUES[t], "_type": "Value"}
    raise TypeError(f"no datasets feature for Arrow type {t}")


def with_features(table: pa.Table) -> pa.Table:
    """The table with the ``huggingface`` metadata describing every column."""
    info = {"info": {"features": {f.name: feature(f.type) for f in table.schema}}}
    meta = dict(table.schema.metadata or {})
    meta[b"huggingface"] = json.dumps(info, sort_keys=True).encode()
    return table.replace_schema_metadata(meta)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write atomically; the audio bytes are stored as they are (FLAC is compressed already,
    zstd would only spend time), every other column with zstd."""
    table = with_features(table)
    audio_columns = {f"{f.name}.bytes" for f in table.schema if f.type == AUDIO}
    leaves = _leaf_paths(table.schema)
    others = [c for c in leaves if c not in audio_columns]
    compression = {c: "none" if c in audio_columns else "zstd" for c in leaves}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression=compression, row_group_size=ROWS_PER_GROUP,
                   use_dictionary=others, write_statistics=others)
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _leaf_paths(schema: pa.Schema) -> list[str]:
    """Parquet column paths (``audio.bytes``, ``words.list.element.word``…) as pyarrow names
    them for per-column options."""
    paths = []

    def walk(prefix: str, t: pa.DataType) -> None:
        if pa.types.is_struct(t):
            for i in range(t.num_fields):
                walk(f"{prefix}.{t.field(i).name}", t.field(i).type)
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            walk(f"{prefix}.list.element", t.value_type)
        else:
            paths.append(prefix)

    for f in schema:
        walk(f.name, f.type)
    return paths
