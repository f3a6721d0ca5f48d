"""What changed between two releases, item by item and clip by clip (changes.json, CHANGES.md).

Both sides are release rows (one per config and clip), so a release made elsewhere can be
diffed from its shards alone. Comparison is columnar: rows are collapsed to one per clip (its
configs as a bit mask), matched by clip id, and compared field by field; Python only touches
the clips and items that did change.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from manifests.release.dedup import first_of_runs

# Compared per clip; the audio is compared only where both sides know its hash.
FIELDS = ["item_key", "text", "duration_ms", "license_spdx", "split", "audio_hash", "configs"]
SCHEMA = pa.schema([("clip_id", pa.string()), ("item_key", pa.string()),
                    ("config", pa.string()), ("split", pa.string()),
                    ("duration_ms", pa.int64()), ("text", pa.string()),
                    ("license_spdx", pa.string()), ("attribution", pa.string()),
                    ("audio_hash", pa.string())])
COLUMNS = SCHEMA.names


def _conform(rows: pa.Table) -> pa.Table:
    cols = {c: (rows[c] if c in rows.column_names else pa.nulls(rows.num_rows, SCHEMA.field(c)
                                                                .type)) for c in COLUMNS}
    return pa.table(cols).cast(SCHEMA)


def per_clip(rows: pa.Table, vocab: list[str]) -> pa.Table:
    """One row per clip; ``configs`` is a bit mask over ``vocab``."""
    t = _conform(rows)
    t = t.take(pc.sort_indices(t, [("clip_id", "ascending"), ("config", "ascending")]))
    first = first_of_runs(t["clip_id"].combine_chunks())
    bits = np.left_shift(np.int64(1), pc.index_in(t["config"], value_set=pa.array(
        vocab, pa.string())).to_numpy().astype(np.int64))
    starts = np.flatnonzero(first)
    mask = np.bitwise_or.reduceat(bits, starts) if len(starts) else np.zeros(0, np.int64)
    return t.filter(pa.array(first)).drop_columns(["config"]).append_column(
        "configs", pa.array(mask, pa.int64()))


def _per_item(clips: pa.Table) -> dict[str, dict]:
    t = clips.take(pc.sort_indices(clips, [("item_key", "ascending"), ("clip_id", "ascending")]))
    first = first_of_runs(t["item_key"].combine_chunks())
    starts = np.flatnonzero(first)
    if not len(starts):
        return {}
    counts = np.diff(np.r_[starts, t.num_rows])
    ms = np.add.reduceat(pc.fill_null(t["duration_ms"], 0).to_numpy(), starts)
    heads = t.select(["item_key", "license_spdx", "attribution"]).take(pa.array(starts))
    return {h["item_key"]: {"clips": int(c), "hours": round(int(m) / 3.6e6, 4),
                            "license": h["license_spdx"], "attribution": h["attribution"]}
            for h, c, m in zip(heads.to_pylist(), counts, ms, strict=True)}


def _changed(a, b, unknown_is_same: bool = False) -> np.ndarray:
    ne = pc.fill_null(pc.not_equal(a, b), True)
    both_null = pc.and_(pc.is_null(a), pc.is_null(b))
    if unknown_is_same:
        both_null = pc.or_(pc.is_null(a), pc.is_null(b))
    return np.asarray(pc.and_(ne, pc.invert(both_null)).to_numpy(zero_copy_only=False),
                      dtype=bool)


def _hours(rows: pa.Table) -> dict[str, float]:
    g = rows.group_by("config", use_threads=False).aggregate([("duration_ms", "sum")])
    return {r["config"]: round(r["duration_ms_sum"] / 3.6e6, 4) for r in g.to_pylist()}


def _names(mask: int, vocab: list[str]) -> list[str]:
    return [v for i, v in enumerate(vocab) if mask >> i & 1]


def diff_rows(previous, rows: pa.Table,
              why_gone: Callable[[list[str]], dict[str, str]] | None = None) -> dict:
    """The changes from ``previous`` (a ``Previous``, or None for a first release) to these
    release rows. Lists are sorted by item and clip id, so the same inputs give the same bytes."""
    cur_rows = _conform(rows)
    prev_rows = _conform(previous.rows) if previous is not None else SCHEMA.empty_table()
    vocab = sorted(set(pc.unique(cur_rows["config"]).to_pylist())
                   | set(pc.unique(prev_rows["config"]).to_pylist()))
    cur, prev = per_clip(cur_rows, vocab), per_clip(prev_rows, vocab)
    cur_items, prev_items = _per_item(cur), _per_item(prev)
    hours_now, hours_before = _hours(cur_rows), _hours(prev_rows)
    hours = {c: {"previous": hours_before.get(c, 0.0), "current": hours_now.get(c, 0.0),
                 "delta": round(hours_now.get(c, 0.0) - hours_before.get(c, 0.0), 4)}
             for c in vocab}
    added_items = sorted(set(cur_items) - set(prev_items))
    removed_items = sorted(set(prev_items) - set(cur_items))
    why = (why_gone or (lambda keys: {}))(removed_items)
    out = {
        "previous": previous.version if previous is not None else None,
        "hours": hours,
        "items": {
            "added": [{"item": k, **_public(cur_items[k])} for k in added_items],
            "removed": [{"item": k, **_public(prev_items[k]), "why": why.get(k, "")}
                        for k in removed_items]},
    }
    if previous is None:  # a first release: every item is new; clips are not listed one by one
        out["items"]["changed"] = []
        out["clips"] = None
        out["summary"] = _summary(out, cur.num_rows, 0, 0)
        return out

    at = pc.index_in(cur["clip_id"], value_set=prev["clip_id"])
    new = np.asarray(pc.is_null(at).to_numpy(zero_copy_only=False), dtype=bool)
    gone = ~np.asarray(pc.is_in(prev["clip_id"], value_set=cur["clip_id"])
                       .to_numpy(zero_copy_only=False), dtype=bool)
    both = cur.filter(pa.array(~new))
    before = prev.take(at.filter(pa.array(~new)))
    what = {f: _changed(both[f], before[f], unknown_is_same=f == "audio_hash") for f in FIELDS}
    any_change = np.logical_or.reduce(list(what.values())) if both.num_rows else \
        np.zeros(0, bool)
    changed = []
    idx = np.flatnonzero(any_change)
    a = both.take(pa.array(idx)).to_pylist()
    b = before.take(pa.array(idx)).to_pylist()
    for k, x, y in zip(idx, a, b, strict=True):
        fields = [f for f in FIELDS if what[f][k]]
        entry = {"id": x["clip_id"], "item": x["item_key"], "what": fields, "before": {},
                 "after": {}}
        for f in fields:
            if f == "audio_hash":
                continue
            old, now = y[f], x[f]
            if f == "configs":
                old, now = _names(old, vocab), _names(now, vocab)
            entry["before"][f], entry["after"][f] = old, now
        changed.append(entry)

    def listing(t: pa.Table, mask: np.ndarray) -> list[dict]:
        sel = t.filter(pa.array(mask)).select(["clip_id", "item_key"]).to_pylist()
        return [{"id": r["clip_id"], "item": r["item_key"]} for r in sel]

    clips = {"added": listing(cur, new), "removed": listing(prev, gone), "changed": changed}
    touched: dict[str, dict] = {}
    for kind, entries in clips.items():
        for e in entries:
            touched.setdefault(e["item"], {"added": 0, "removed": 0, "changed": 0})[kind] += 1
    items_changed = []
    for k in sorted(set(cur_items) & set(prev_items)):
        x, y = cur_items[k], prev_items[k]
        whats = []
        if x["license"] != y["license"]:
            whats.append(f"license {y['license']} → {x['license']}")
        if x["attribution"] != y["attribution"]:
            whats.append("attribution")
        t = touched.get(k)
        if t:
            whats.append(f"clips: {t['added']} added, {t['removed']} removed, "
                         f"{t['changed']} changed")
        if whats:
            items_changed.append({"item": k, "what": whats, "clips": x["clips"],
                                  "hours_delta": round(x["hours"] - y["hours"], 4)})
    out["items"]["changed"] = items_changed
    out["clips"] = clips
    out["summary"] = _summary(out, len(clips["added"]), len(clips["removed"]), len(changed))
    return out


def _public(item: dict) -> dict:
    return {"clips": item["clips"], "hours": item["hours"], "license": item["license"]}


def _summary(out: dict, added: int, removed: int, changed: int) -> dict:
    return {"items_added": len(out["items"]["added"]),
            "items_removed": len(out["items"]["removed"]),
            "items_changed": len(out["items"]["changed"]),
            "clips_added": added, "clips_removed": removed, "clips_changed": changed}
