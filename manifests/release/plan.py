"""Planning a release: which clip goes into which subset, split and shard. Pure and vectorised.

``plan_release`` takes the clip and item manifests as Arrow tables (plus the previous release's
rows and splits) and decides everything a release holds without reading audio or writing a
file, so it can be timed on a synthetic million-clip manifest (``scripts/bench_release.py``).
Work is done by pyarrow kernels and numpy over whole columns; Python loops run over items (for
the salted hashes), subsets and splits, never over clips.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from manifests.licenses import acceptable_spdx
from manifests.release import dedup, splits
from manifests.release.config import FAMILIES, TIERS, ReleaseConfig, SubsetSpec
from manifests.release.diff import diff_rows
from manifests.release.splits import Assignment

# Why a clip is not in the release, in the order the reasons are tested (the first one counts).
EXCLUSIONS = {
    "not_accepted": "its item is not accepted by the license gate (or not in the items manifest)",
    "license_not_permitted": "its item's SPDX id is not one the license gate may accept (NC, ND, "
                             "unknown), or its license family column says otherwise",
    "gone": "its item is no longer at the source, so its license could not be re-checked",
    "stale_license": "its item's license changed after the clip was aligned (re-run align)",
    "rejected": "rejected by the align stage's filters",
    "no_audio": "it has no clip audio",
    "asr_caption": "its text is a machine (ASR) caption, not a human transcript",
    "no_subset": "no subset takes its tier and license family",
    "duplicate_audio": "its audio is identical to a clip that was kept",
    "duplicate_text": "its text is identical to a kept clip of another item",
}
_CODE = {name: i + 1 for i, name in enumerate(EXCLUSIONS)}
ROW_OVERHEAD_BYTES = 1024  # text, words and metrics of a row, for shard sizing
# What the diff compares: every column a release row is judged by.
VIEW = ["clip_id", "item_key", "source", "item_id", "duration_ms", "text", "license_spdx",
        "attribution", "audio_hash"]
OPTIONAL = {"audio_hash": pa.string(), "audio_bytes": pa.int64(), "attribution": pa.string()}
# Read from the items manifest; only the license family is copied onto every clip (the rest
# stays in ``Plan.items``, looked up through ``item_index``: a million copies cost memory).
ITEM_COLUMNS = ["decision", "gone_at", "license_spdx", "license_family"]
ITEM_TEXT = ["title", "creator", "url", "license_url", "reason"]  # null where a table lacks it


@dataclass
class Previous:
    """What a release needs of the one before it: its name, split assignment and rows."""

    version: str
    splits: dict[str, Assignment]
    rows: pa.Table  # VIEW columns (audio_hash may be null) + config, split


@dataclass
class Plan:
    clips: pa.Table  # every input clip, plain types, with item_index, item_key, decisions
    rows: pa.Table  # one per (config, clip): config, split, shard, num_shards, row + VIEW
    splits: dict[str, Assignment]
    excluded: dict[str, int]
    duplicates: dict[str, list[dict]]
    counts: dict
    diff: dict
    items: pa.Table  # the items manifest, plain types, with item_key
    config: ReleaseConfig = field(repr=False, default_factory=ReleaseConfig)

    def shards(self) -> list[tuple[str, str, int, int, np.ndarray]]:
        """(config, split, shard, of, input row indices in order) for every shard file."""
        cfg = self.rows["config"].to_numpy(zero_copy_only=False)
        spl = self.rows["split"].to_numpy(zero_copy_only=False)
        shard = self.rows["shard"].to_numpy()
        num = self.rows["num_shards"].to_numpy()
        row = self.rows["row"].to_numpy()
        out = []
        if not len(row):
            return out
        start = np.flatnonzero(np.r_[True, (cfg[1:] != cfg[:-1]) | (spl[1:] != spl[:-1])
                                     | (shard[1:] != shard[:-1])])
        for a, b in zip(start, np.r_[start[1:], len(row)], strict=True):
            out.append((cfg[a], spl[a], int(shard[a]), int(num[a]), row[a:b]))
        return out

    def as_previous(self, version: str) -> Previous:
        """This plan as the previous release of the next one (what the bench diffs against)."""
        return Previous(version, self.splits, self.rows.select(VIEW + ["config", "split"]))


def plain(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded: manifests written apart have differing dictionaries."""
    fields_ = [pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
               for f in table.schema]
    return table.cast(pa.schema(fields_))


def item_key(source, item_id) -> pa.Array:
    return pc.binary_join_element_wise(pc.cast(source, pa.string()), item_id, "/")


def _np(a) -> np.ndarray:
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    return np.asarray(pc.fill_null(a, False).to_numpy(zero_copy_only=False), dtype=bool)


def _arr(table: pa.Table, name: str) -> pa.Array:
    return table[name].combine_chunks()


def verified_family(spdx: pa.Array, family: pa.Array) -> pa.Array:
    """The family each SPDX id really has (``acceptable_spdx``), null where the id is not one
    the gate may accept or the family column disagrees with it: the release trusts the id, not
    the column. Asked once per distinct id, so a million clips cost a handful of calls."""
    ids = pc.unique(spdx)
    real = pa.array([acceptable_spdx(s) for s in ids.to_pylist()], pa.string())
    real = real.take(pc.index_in(spdx, value_set=ids))
    agree = pc.fill_null(pc.equal(real, family), False)
    return pc.if_else(agree, real, pa.scalar(None, pa.string()))


def plan_release(clips: pa.Table, items: pa.Table, config: ReleaseConfig | None = None,
                 previous: Previous | None = None) -> Plan:
    """Decide the release. ``clips`` needs the CLIPS columns the plan reads plus
    ``audio_hash`` and ``audio_bytes`` (from the clip files' headers; see inputs.py)."""
    config = config or ReleaseConfig()
    clips, items = plain(clips), plain(items)
    n = clips.num_rows
    for name, type_ in OPTIONAL.items():  # unknown: no dedup by audio, shards cut by count
        if name not in clips.column_names:
            clips = clips.append_column(name, pa.nulls(n, type_))
    if pc.count_distinct(clips["clip_id"]).as_py() != n:
        raise ValueError("the clip manifests hold one clip_id more than once")
    ckey = item_key(_arr(clips, "source"), _arr(clips, "item_id"))
    ikey = item_key(_arr(items, "source"), _arr(items, "item_id"))
    idx = pc.index_in(ckey, value_set=ikey)
    for c in ITEM_COLUMNS + ITEM_TEXT:
        if c not in items.column_names:
            items = items.append_column(c, pa.nulls(items.num_rows, pa.string()))
    item = {c: _arr(items, c).take(idx) for c in ITEM_COLUMNS}
    tier = _arr(clips, "tier")
    family = verified_family(item["license_spdx"], item["license_family"])

    reason = np.zeros(n, dtype=np.int8)

    def mark(code: str, mask: np.ndarray) -> None:
        reason[(reason == 0) & mask] = _CODE[code]

    mark("not_accepted", ~_np(pc.equal(item["decision"], "accepted")))
    mark("license_not_permitted", _np(pc.is_null(family)))
    if not config.include_gone_items:
        mark("gone", _np(pc.is_valid(item["gone_at"])))
    mark("stale_license", _np(pc.not_equal(_arr(clips, "license_spdx"), item["license_spdx"])))
    mark("rejected", _np(pc.equal(tier, "rejected")))
    mark("no_audio", _np(pc.is_null(_arr(clips, "clip_path"))))
    if not config.include_asr_captions:
        mark("asr_caption", _np(_arr(clips, "asr_caption")))
    in_spec = {name: _np(pc.and_(pc.is_in(tier, pa.array(spec.tiers)),
                                 pc.is_in(family, pa.array(spec.families))))
               for name, spec in config.subsets.items()}
    mark("no_subset", ~np.logical_or.reduce(list(in_spec.values())))

    clip_id = _arr(clips, "clip_id")
    prev_ids = previous.rows["clip_id"].combine_chunks() if previous else pa.array([], pa.string())
    order = [pa.array(~_np(pc.is_in(clip_id, prev_ids)), pa.bool_()),
             pc.index_in(tier, pa.array(TIERS)), pc.index_in(family, pa.array(FAMILIES)),
             ckey, clip_id]
    kept_instead = np.full(n, -1, dtype=np.int64)
    if config.dedup_audio:
        alive = pa.array(reason == 0)
        win = dedup.duplicate_audio(pc.if_else(alive, _arr(clips, "audio_hash"), None), order)
        dup = (win != np.arange(n)) & (reason == 0)
        mark("duplicate_audio", dup)
        kept_instead[dup] = win[dup]
    if config.dedup_text:
        alive = pa.array(reason == 0)
        key = pc.if_else(alive, dedup.normalised_text(_arr(clips, "text"),
                                                      config.dedup_text_min_chars), None)
        win = dedup.duplicate_text(key, ckey, order)
        dup = (win >= 0) & (reason == 0)
        mark("duplicate_text", dup)
        kept_instead[dup] = win[dup]
    alive = reason == 0

    # Splits, per item.
    live_keys = pc.unique(ckey.filter(pa.array(alive)))
    creators = _arr(items, "creator").take(pc.index_in(live_keys, value_set=ikey))
    assigned = splits.assign(list(zip(live_keys.to_pylist(), creators.to_pylist(),
                                      strict=True)),
                             config, previous.splits if previous else None)
    split_names = list(config.splits)
    keys_sorted = sorted(assigned)
    at = pc.index_in(ckey, value_set=pa.array(keys_sorted, pa.string()))
    split_of_key = pa.array([split_names.index(assigned[k].split) for k in keys_sorted],
                            pa.int8())
    split_code = np.where(alive, pc.fill_null(split_of_key.take(at), -1).to_numpy(), -1)
    rank_of_key = splits.item_order(live_keys.to_pylist(), config.salt)
    item_rank = np.zeros(n, dtype=np.uint64)
    live_at = pc.fill_null(pc.index_in(ckey, value_set=live_keys), 0).to_numpy()
    item_rank[alive] = rank_of_key[live_at[alive]]
    item_of = np.where(alive, live_at, -1)

    duration_ms = pc.cast(pc.round(pc.multiply(_arr(clips, "duration_s"), 1000.0)), pa.int64())
    table = clips.append_column("item_key", ckey).append_column("duration_ms", duration_ms)
    table = table.append_column("item_index", idx)
    family_at = table.column_names.index("license_family") \
        if "license_family" in table.column_names else None
    if family_at is None:
        table = table.append_column("license_family", family)
    else:  # the item's word is the current one (the clip's own spdx equals the item's if kept)
        table = table.set_column(family_at, "license_family", family)
    names = list(EXCLUSIONS)
    table = table.append_column("excluded", pa.array(
        [None, *names], pa.string()).take(pa.array(reason.astype(np.int32))))
    table = table.append_column("split", pa.array([*split_names, None], pa.string()).take(
        pa.array(np.where(split_code < 0, len(split_names), split_code).astype(np.int32))))

    rows = _rows(table, config, in_spec, alive, split_code, item_rank, item_of)
    counts = _counts(rows, config)
    duplicates = {kind: _duplicates(table, reason == _CODE[kind], kept_instead)
                  for kind in ("duplicate_audio", "duplicate_text")}
    excluded = {name: int(c) for name, c in
                zip(names, np.bincount(reason, minlength=len(names) + 1)[1:], strict=True)}
    items = items.append_column("item_key", ikey)
    plan = Plan(table, rows, assigned, excluded, duplicates, counts, {}, items, config)
    plan.diff = diff_rows(previous, rows, why_gone=lambda keys: why_missing(plan, keys))
    return plan


def sample(sel: np.ndarray, spec: SubsetSpec, item_of: np.ndarray, item_rank: np.ndarray,
           ms: np.ndarray) -> np.ndarray:
    """The clips of ``sel`` a sample subset keeps, in ``sel``'s order: whole items, taken in
    their salted hash order (``item_rank``) while the running totals stay within every cap —
    ``max_clips``, ``max_hours`` and ``fraction`` of ``sel``'s duration. Never empty while
    one item fits the absolute caps (``max_clips``, ``max_hours``): a corpus whose first item
    alone is over the fraction gets that item (or the first that fits), so a small release
    still has a sample, and a strict one as soon as it has two items."""
    items, first, inv = np.unique(item_of[sel], return_index=True, return_inverse=True)
    if not len(items):
        return sel
    clips = np.bincount(inv, minlength=len(items))
    dur = np.bincount(inv, weights=ms[sel].astype(np.float64), minlength=len(items))
    order = np.lexsort((items, item_rank[sel][first]))
    hard_ms = spec.max_hours * 3.6e6 if spec.max_hours is not None else np.inf
    budget = min(hard_ms, spec.fraction * dur.sum() if spec.fraction is not None else np.inf)
    cap = spec.max_clips if spec.max_clips is not None else np.inf
    fits = (np.cumsum(dur[order]) <= budget) & (np.cumsum(clips[order]) <= cap)
    chosen = order[:len(fits) if fits.all() else int(np.argmin(fits))]
    if not len(chosen):
        alone = (dur[order] <= hard_ms) & (clips[order] <= cap)
        chosen = order[[int(np.argmax(alone))]] if alone.any() else chosen
    return sel[np.isin(inv, chosen)]


def _rows(table: pa.Table, config: ReleaseConfig, in_spec: dict[str, np.ndarray],
          alive: np.ndarray, split_code: np.ndarray, item_rank: np.ndarray,
          item_of: np.ndarray) -> pa.Table:
    """The release rows, config by config and split by split, each in the global row order
    (item, recording, time), cut into shards of about ``max_shard_bytes``."""
    live = np.flatnonzero(alive)
    sort = pc.sort_indices(table.take(pa.array(live)).select(
        ["item_key", "audio_file", "start_s", "clip_id"]),
        [("item_key", "ascending"), ("audio_file", "ascending"), ("start_s", "ascending"),
         ("clip_id", "ascending")]).to_numpy()
    ordered = live[sort]
    size = pc.fill_null(_arr(table, "audio_bytes"), 0).to_numpy() + ROW_OVERHEAD_BYTES
    ms = pc.fill_null(_arr(table, "duration_ms"), 0).to_numpy()
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("config", "split", "shard", "num",
                                                          "row")}
    split_names = list(config.splits)
    for ci, (name, spec) in enumerate(config.subsets.items()):
        sel = ordered[in_spec[name][ordered]]
        if spec.sample:
            sel = sample(sel, spec, item_of, item_rank, ms)
        for si in range(len(split_names)):
            part = sel[split_code[sel] == si]
            if not len(part):
                continue
            sizes = size[part]
            start = np.cumsum(sizes) - sizes
            _, shard = np.unique(start // config.max_shard_bytes, return_inverse=True)
            parts["config"].append(np.full(len(part), ci, dtype=np.int32))
            parts["split"].append(np.full(len(part), si, dtype=np.int32))
            parts["shard"].append(shard.astype(np.int32))
            parts["num"].append(np.full(len(part), shard.max() + 1, dtype=np.int32))
            parts["row"].append(part)
    cat = {k: (np.concatenate(v) if v else np.zeros(0, dtype=np.int64)) for k, v in parts.items()}
    names = pa.array(list(config.subsets), pa.string())
    rows = pa.table({
        "config": names.take(pa.array(cat["config"].astype(np.int32))),
        "split": pa.array(split_names, pa.string()).take(pa.array(cat["split"]
                                                                  .astype(np.int32))),
        "shard": pa.array(cat["shard"].astype(np.int32)),
        "num_shards": pa.array(cat["num"].astype(np.int32)),
        "row": pa.array(cat["row"].astype(np.int64)),
    })
    view = table.select(VIEW + ["license_family"]).take(rows["row"])
    for c in view.column_names:
        rows = rows.append_column(c, view[c])
    return rows


def _counts(rows: pa.Table, config: ReleaseConfig) -> dict:
    """Rows and hours per config × split × license, in config order (release.json)."""
    g = rows.group_by(["config", "split", "license_spdx"], use_threads=False).aggregate(
        [("row", "count"), ("duration_ms", "sum")]).to_pylist()
    out: dict = {}
    for name in config.subsets:
        per_split = {}
        for split in config.splits:
            here = sorted((r for r in g if r["config"] == name and r["split"] == split),
                          key=lambda r: r["license_spdx"] or "")
            if not here:
                continue
            ms = sum(r["duration_ms_sum"] for r in here)
            per_split[split] = {
                "rows": sum(r["row_count"] for r in here), "hours": round(ms / 3.6e6, 4),
                "licenses": {r["license_spdx"]: {"rows": r["row_count"],
                                                 "hours": round(r["duration_ms_sum"] / 3.6e6, 4)}
                             for r in here}}
        out[name] = {"rows": sum(s["rows"] for s in per_split.values()),
                     "hours": round(sum(r["duration_ms_sum"] for r in g if r["config"] == name)
                                    / 3.6e6, 4),
                     "splits": per_split}
    return out


def _duplicates(table: pa.Table, mask: np.ndarray, kept_instead: np.ndarray) -> list[dict]:
    """Each dropped duplicate with the clip kept in its stead, by dropped clip id."""
    dropped = np.flatnonzero(mask)
    if not len(dropped):
        return []
    a = table.select(["clip_id", "item_key"]).take(pa.array(dropped)).to_pylist()
    b = table.select(["clip_id", "item_key"]).take(pa.array(kept_instead[dropped])).to_pylist()
    out = [{"dropped": x["clip_id"], "dropped_item": x["item_key"], "kept": y["clip_id"],
            "kept_item": y["item_key"]} for x, y in zip(a, b, strict=True)]
    return sorted(out, key=lambda d: d["dropped"])


def why_missing(plan: Plan, keys: list[str]) -> dict[str, str]:
    """Why each of these items has no row in this release, in words: from the items manifest,
    else from its clips' exclusion reasons."""
    if not keys:
        return {}
    wanted = pa.array(keys, pa.string())
    items = {r["item_key"]: r for r in plan.items.filter(pc.is_in(plan.items["item_key"], wanted))
             .select(["item_key", "decision", "reason", "gone_at"]).to_pylist()}
    reasons: dict[str, Counter] = {k: Counter() for k in keys}
    t = plan.clips.filter(pc.is_in(plan.clips["item_key"], wanted))
    for r in t.select(["item_key", "excluded"]).to_pylist():
        reasons[r["item_key"]][r["excluded"]] += 1
    out = {}
    for k in keys:
        it = items.get(k)
        if it is None:
            out[k] = "no longer in the items manifest"
        elif it["decision"] != "accepted":
            out[k] = "not accepted by the license gate" + (f": {it['reason']}" if it["reason"]
                                                           else "")
        elif it["gone_at"] is not None:
            out[k] = f"gone from the source (since {str(it['gone_at'])[:10]})"
        elif reasons[k]:
            out[k] = "no clip kept: " + ", ".join(
                f"{n} {why}" for why, n in sorted(reasons[k].items(),
                                                  key=lambda x: (-x[1], str(x[0]))))
        else:
            out[k] = "no clips in the manifests (not aligned, or its alignment failed)"
    return out
