"""Writing Parquet manifests: schema-checked, zstd-compressed, atomic."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from manifests.schema import SCHEMA_VERSION
from manifests.version import code_version


def table_from_rows(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Rows → a table of exactly ``schema``; a column the schema does not know is an error."""
    unknown = {k for r in rows for k in r} - set(schema.names)
    if unknown:
        raise ValueError(f"columns not in the schema: {sorted(unknown)}")
    columns = {name: [r.get(name) for r in rows] for name in schema.names}
    table = pa.table({n: pa.array(v, type=_plain(schema.field(n).type))
                      for n, v in columns.items()})
    return table.cast(schema)


def _plain(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def write_atomic(table: pa.Table, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write to a temporary name, fsync, rename: readers never see a half-written file.
    ``metadata`` goes into the file's key-value metadata (e.g. the settings that made it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(table.schema.metadata or {})
    meta.update({k.encode(): v.encode() for k, v in (metadata or {}).items()})
    meta.update({b"speechcrawl.schema_version": SCHEMA_VERSION.encode(),
                 b"speechcrawl.code_version": code_version().encode()})
    table = table.replace_schema_metadata(meta)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd", row_group_size=128 * 1024)
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
