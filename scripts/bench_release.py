"""Release planning benchmark on a synthetic manifest (no audio). Prints figures, asserts nothing.

Plans a release of a synthetic clip manifest — exclusions, duplicate audio and text, frozen
splits against a previous release, subsets, shard cuts, and the diff against that previous
release (a variant of the same corpus: 1 % of items gone, 1 % new, 0.5 % of texts changed) —
and reports, for 1,000,000 and 100,000 clips:

1. the planning time (target < 60 s for 1M clips on this machine),
2. the peak RSS of the process that planned it,
3. the time ratio 1M ÷ 100k (target ≤ 12: linear).

Each size runs in its own child process, so peak RSS is that size's alone. The synthetic
manifest is built before the clock starts; the previous release is planned first, untimed.

    .venv/bin/python scripts/bench_release.py [--clips 1000000] [--small 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import peak_rss_mb, run_measured  # noqa: E402

from manifests.release import ReleaseConfig, plan_release  # noqa: E402

PER_ITEM = 100  # clips per item: a 10-minute recording in ~6 s clips
LICENSES = [("CC0-1.0", "public-domain", "accepted"), ("CC-BY-4.0", "by", "accepted"),
            ("CC-BY-3.0-US", "by", "accepted"), ("CC-BY-SA-4.0", "by-sa", "accepted"),
            ("CC-PDM-1.0", "public-domain", "accepted"),
            ("LicenseRef-US-Government-Work", "public-domain", "accepted"),
            ("CC-BY-NC-4.0", None, "rejected")]


def _s(a) -> pa.Array:
    return pc.cast(pa.array(a), pa.string())


def universe(n_items: int, seed: int = 7) -> dict[str, np.ndarray]:
    """Every item's and clip's random properties, drawn once so two releases share them."""
    rng = np.random.default_rng(seed)
    n = n_items * PER_ITEM
    g = np.arange(n)
    text = g.copy()
    dup_text = rng.random(n) < 0.005  # the same passage read in another item
    text[dup_text] = rng.integers(0, n, dup_text.sum())
    audio = g.copy()
    dup_audio = rng.random(n) < 0.001
    audio[dup_audio] = rng.integers(0, n, dup_audio.sum())
    return {
        "license": rng.choice(len(LICENSES), n_items, p=[.2, .3, .1, .15, .1, .1, .05]),
        "creator": np.where(rng.random(n_items) < 0.9, rng.integers(0, max(1, n_items // 3),
                                                                    n_items), -1),
        "gone": rng.random(n_items) < 0.01,
        "asr": rng.random(n_items) < 0.02,
        "tier": rng.choice(3, n, p=[0.6, 0.25, 0.15]),
        "duration": rng.uniform(1.0, 20.0, n),
        "text": text, "audio": audio,
    }


def manifests(u: dict, first: int, n_items: int, changed_text: float = 0.0,
              seed: int = 11) -> tuple[pa.Table, pa.Table]:
    """(clips, items) for items ``first`` … ``first + n_items - 1`` of the universe."""
    items = np.arange(first, first + n_items)
    lic = u["license"][items]
    item_id = pc.binary_join_element_wise("item", pc.utf8_lpad(_s(items), 7, "0"), "-")
    creator = pc.if_else(pa.array(u["creator"][items] >= 0),
                         pc.binary_join_element_wise("creator", _s(u["creator"][items]), " "),
                         pa.scalar(None, pa.string()))
    items_t = pa.table({
        "source": pa.array(["archive_org"] * n_items), "item_id": item_id,
        "title": item_id, "creator": creator, "url": item_id, "license_url": item_id,
        "license_spdx": pa.array([LICENSES[i][0] for i in lic]),
        "license_family": pa.array([LICENSES[i][1] for i in lic], pa.string()),
        "decision": pa.array([LICENSES[i][2] for i in lic]),
        "reason": pa.nulls(n_items, pa.string()),
        "gone_at": pa.array(np.where(u["gone"][items], 1_700_000_000_000, None),
                            pa.timestamp("ms", tz="UTC")),
    })
    g = np.arange(first * PER_ITEM, (first + n_items) * PER_ITEM)
    item_of = np.repeat(np.arange(n_items), PER_ITEM)
    k = np.tile(np.arange(PER_ITEM), n_items)
    clip_item = item_id.take(pa.array(item_of))
    clip_id = pc.binary_join_element_wise(clip_item, pc.utf8_lpad(_s(k), 5, "0"), "-")
    tier = pa.array(np.array(["clean", "other", "rejected"])[u["tier"][g]])
    text_n = u["text"][g].copy()
    if changed_text:
        rng = np.random.default_rng(seed)
        text_n[rng.random(len(g)) < changed_text] += 10**9
    text = pc.binary_join_element_wise("the quick brown fox number", _s(text_n),
                                       "jumps over the lazy dog", " ")
    rejected = u["tier"][g] == 2
    duration = np.round(u["duration"][g], 3)
    clips = pa.table({
        "clip_id": clip_id, "source": pa.array(["archive_org"] * len(g)),
        "item_id": clip_item, "audio_file": pa.array(["a.mp3"] * len(g)),
        "start_s": pa.array(k * 20.0), "end_s": pa.array(k * 20.0 + duration),
        "duration_s": pa.array(duration), "text": text, "tier": tier,
        "asr_caption": pa.array(u["asr"][items][item_of]),
        "license_spdx": items_t["license_spdx"].take(pa.array(item_of)),
        "attribution": clip_item, "model_id": pa.array(["demo@sha256:0"] * len(g)),
        "clip_path": pc.if_else(pa.array(rejected), pa.scalar(None, pa.string()), clip_id),
        "audio_hash": pc.if_else(pa.array(rejected), pa.scalar(None, pa.string()),
                                 pc.binary_join_element_wise("md5", _s(u["audio"][g]), ":")),
        "audio_bytes": pa.array(np.where(rejected, 0, (duration * 20_000).astype(np.int64))),
    })
    return clips, items_t


def child(n_clips: int) -> None:
    n_items = n_clips // PER_ITEM
    shift = max(1, n_items // 100)
    u = universe(n_items + shift)
    t0 = time.perf_counter()
    cur = manifests(u, 0, n_items)
    old = manifests(u, shift, n_items, changed_text=0.005)
    built = time.perf_counter() - t0
    config = ReleaseConfig()
    t0 = time.perf_counter()
    previous = plan_release(*old, config).as_previous("v1")
    prev_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    plan = plan_release(*cur, config, previous)
    seconds = time.perf_counter() - t0
    s = plan.diff["summary"]
    print(json.dumps({"clips": n_clips, "seconds": round(seconds, 2),
                      "previous_plan_s": round(prev_s, 2), "synth_s": round(built, 2),
                      "rows": plan.rows.num_rows, "shards": len(plan.shards()),
                      "excluded": plan.excluded, "diff": s, "rss_mb": peak_rss_mb()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=100_000)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    me = [sys.executable, str(Path(__file__).resolve())]
    results = {}
    for n in (args.small, args.clips):
        r = run_measured(me + ["--child", str(n)])
        results[n] = r
        print(f"{n:>9} clips: plan {r['seconds']:.2f} s (previous release planned in "
              f"{r['previous_plan_s']:.2f} s, synthetic manifest built in {r['synth_s']:.2f} s)"
              f", peak RSS {r['rss_mb']:.0f} MB; {r['rows']} rows in {r['shards']} shards; "
              f"diff: {json.dumps(r['diff'])}", flush=True)
    ratio = results[args.clips]["seconds"] / max(results[args.small]["seconds"], 1e-9)
    print(f"time ratio {args.clips} ÷ {args.small} clips: {ratio:.1f} (target ≤ "
          f"{12 * args.clips / args.small / 10:.0f}); {args.clips} clips in "
          f"{results[args.clips]['seconds']:.1f} s (target < 60 s)")


if __name__ == "__main__":
    main()
