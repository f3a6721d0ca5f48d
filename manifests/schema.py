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

WORD = pa.struct([("word", pa.string()), ("start_s", pa.float64()), ("end_s", pa.float64()),
                  ("score", pa.float64())])

CLIPS = pa.schema([
    pa.field("clip_id", pa.string(), nullable=False),  # stable across re-runs
    pa.field("source", _CATEGORY, nullable=False),
    pa.field("item_id", pa.string(), nullable=False),
    pa.field("audio_file", pa.string(), nullable=False),
    pa.field("transcript_file", pa.string()),
    pa.field("start_s", pa.float64(), nullable=False),  # cut points, padding included
    pa.field("end_s", pa.float64(), nullable=False),
    pa.field("speech_start_s", pa.float64(), nullable=False),  # aligned speech, no padding
    pa.field("speech_end_s", pa.float64(), nullable=False),
    pa.field("duration_s", pa.float64(), nullable=False),
    pa.field("text", pa.string(), nullable=False),  # normalised: the training label
    pa.field("text_raw", pa.string()),
    pa.field("greedy_text", pa.string()),  # what the model heard in the clip's frames
    pa.field("tier", _CATEGORY, nullable=False),  # clean | other | rejected
    pa.field("reasons", pa.list_(pa.string())),
    pa.field("score", pa.float64()),  # ctc-segmentation confidence
    pa.field("cer", pa.float64()),
    pa.field("cer_start", pa.float64()),
    pa.field("cer_end", pa.float64()),
    pa.field("chars_per_s", pa.float64()),
    pa.field("language", _CATEGORY),
    pa.field("asr_caption", pa.bool_()),
    pa.field("silence_share", pa.float64()),
    # What the model heard in the gaps to the neighbouring utterances (≤ 1 s each): speech
    # there that the text lacks means the label is missing words at an edge.
    pa.field("heard_before", pa.string()),
    pa.field("heard_after", pa.string()),
    pa.field("words", pa.list_(WORD)),
    # The subtitle cue span the text came from (timed transcripts): a hint, trusted only when
    # the recording's cues agree with the alignment (see align.filters).
    pa.field("cue_start_s", pa.float64()),
    pa.field("cue_end_s", pa.float64()),
    pa.field("license_spdx", _CATEGORY),
    pa.field("license_family", _CATEGORY),
    pa.field("attribution", pa.string()),
    pa.field("clip_path", pa.string()),
    pa.field("model_id", _CATEGORY),
])
