"""The Arrow schemas of every Parquet manifest: the single source of truth for their columns.

DESIGN.md fixes the names other parts rely on; columns may be added, none renamed without a
``SCHEMA_VERSION`` bump.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1"

_CATEGORY = pa.dictionary(pa.int32(), pa.string())

ITEMS = pa.schema([
    pa.field("source", _CATEGORY, nullable=False),
    pa.field("item_id", pa.string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("title", pa.string()),
    pa.field("creator", pa.string()),
    # The license statement as found: the value itself, or a JSON array when there were several.
    pa.field("license_raw", pa.string()),
    pa.field("license_url", pa.string()),
    pa.field("license_spdx", _CATEGORY),
    pa.field("license_family", _CATEGORY),  # public-domain | by | by-sa | null
    pa.field("decision", _CATEGORY, nullable=False),  # accepted | rejected
    pa.field("reason", pa.string()),
    pa.field("crawled_at", pa.timestamp("ms", tz="UTC"), nullable=False),
    # Where each license statement was found and what it normalised to (JSON).
    pa.field("license_evidence", pa.string()),
    pa.field("first_seen_at", pa.timestamp("ms", tz="UTC")),
    pa.field("gone_at", pa.timestamp("ms", tz="UTC")),  # no longer found at the source
    pa.field("metadata_hash", pa.string()),
])
