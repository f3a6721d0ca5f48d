"""Duplicate resolution, vectorised: one sort per kind of duplicate, no per-row Python.

Two kinds, both settled the same way every time (the order below is total, ending in clip_id):

- *Duplicate audio*: clips whose decoded samples are identical (same ``audio_hash``: the MD5 of
  the samples that FLAC keeps in its STREAMINFO block). One clip is kept, the rest dropped.
- *Duplicate text*: one normalised text in clips of different items — the same passage read (or
  uploaded) twice. The item ranked first keeps every clip with that text; the other items' clips
  with it are dropped, so a passage never sits in two items, and so never in two splits.

The winner is the clip that was in the previous release (so a release does not churn), then the
cleaner tier, then the more permissive license family, then the lowest item key and clip id.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _numpy_bool(a) -> np.ndarray:
    return np.asarray(pc.fill_null(a, False).to_numpy(zero_copy_only=False), dtype=bool)


def first_of_runs(sorted_keys: pa.Array) -> np.ndarray:
    """True where a run of equal keys starts in a sorted array; a null key is a run of one."""
    n = len(sorted_keys)
    first = np.ones(n, dtype=bool)
    if n > 1:
        first[1:] = np.asarray(pc.fill_null(pc.not_equal(sorted_keys.slice(1),
                                                         sorted_keys.slice(0, n - 1)), True)
                               .to_numpy(zero_copy_only=False), dtype=bool)
    return first | _numpy_bool(pc.is_null(sorted_keys))


def winners(keys: pa.Array, order: list[pa.Array]) -> np.ndarray:
    """For each row, the index of the row that wins its key's group (itself where the key is
    null): the first in ``order`` (ascending columns, the last a unique tie-breaker)."""
    n = len(keys)
    table = pa.table({"k": keys, **{f"o{i}": a for i, a in enumerate(order)}})
    perm = pc.sort_indices(table, [("k", "ascending")] + [(f"o{i}", "ascending")
                                                          for i in range(len(order))]
                           ).to_numpy()  # nulls sort last
    first = first_of_runs(keys.take(perm))
    group = np.cumsum(first) - 1
    out = np.empty(n, dtype=np.int64)
    out[perm] = perm[np.flatnonzero(first)[group]]
    return out


def normalised_text(text: pa.Array, min_chars: int) -> pa.Array:
    """The text compared for duplicates: case, punctuation and spacing ignored; null when
    shorter than ``min_chars`` (short phrases recur without being duplicates)."""
    t = pc.utf8_lower(text)
    t = pc.replace_substring_regex(t, r"[^\w']+", " ")
    t = pc.utf8_trim_whitespace(t)
    return pc.if_else(pc.less(pc.utf8_length(t), min_chars), pa.scalar(None, pa.string()), t)


def duplicate_audio(audio_hash: pa.Array, order: list[pa.Array]) -> np.ndarray:
    """The winning row of each row's audio group; a row is a duplicate where it is not its own."""
    return winners(audio_hash, order)


def duplicate_text(text_key: pa.Array, item_key: pa.Array, order: list[pa.Array]) -> np.ndarray:
    """For each row, the clip kept in its stead, or -1 where it stays: rows of the winning item
    all stay, rows of other items with the same text go."""
    win = winners(text_key, order)
    same_item = _numpy_bool(pc.equal(item_key.take(pa.array(win)), item_key))
    return np.where(same_item, -1, win).astype(np.int64)
