"""What a workdir holds, in the figures a job ends with: items seen, accepted and rejected (by
reason), hours downloaded, hours aligned, and clips and hours per tier."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from manifests.audit import reason_category

TIERS = ("clean", "other", "rejected")


def summarize(workdir: Path) -> dict:
    workdir = Path(workdir)
    out: dict = {"items": 0, "accepted": 0, "rejected": 0, "rejected_by_reason": {},
                 "hours_downloaded": 0.0, "recordings_aligned": 0, "recordings_failed": 0,
                 "hours_aligned": 0.0, "tiers": {t: {"clips": 0, "hours": 0.0} for t in TIERS}}
    items = workdir / "manifests" / "items.parquet"
    if items.exists():
        t = pq.read_table(items, columns=["decision", "reason"]).to_pylist()
        out["items"] = len(t)
        out["accepted"] = sum(r["decision"] == "accepted" for r in t)
        out["rejected"] = out["items"] - out["accepted"]
        out["rejected_by_reason"] = dict(sorted(Counter(
            reason_category(r["reason"]) for r in t if r["decision"] != "accepted").items()))
    catalog = workdir / "catalog.sqlite"
    if catalog.exists():
        db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
        try:
            (downloaded,) = db.execute(
                "SELECT COALESCE(SUM(length_s), 0) FROM files "
                "WHERE role = 'audio' AND status = 'downloaded'").fetchone()
            done, failed, aligned = db.execute(
                "SELECT COALESCE(SUM(status = 'done'), 0), COALESCE(SUM(status = 'failed'), 0),"
                " COALESCE(SUM(CASE WHEN status = 'done' THEN audio_s END), 0) "
                "FROM alignments").fetchone()
        finally:
            db.close()
        out.update(hours_downloaded=downloaded / 3600, recordings_aligned=done,
                   recordings_failed=failed, hours_aligned=aligned / 3600)
    clips = sorted((workdir / "manifests" / "clips").glob("*.parquet"))
    if clips:
        table = pa.concat_tables(pq.read_table(p, columns=["tier", "duration_s"]).cast(
            pa.schema([("tier", pa.string()), ("duration_s", pa.float64())])) for p in clips)
        # One thread: the same sum in the same order every time (the summary is compared).
        grouped = table.group_by("tier", use_threads=False).aggregate(
            [("duration_s", "count"), ("duration_s", "sum")])
        for row in grouped.to_pylist():
            out["tiers"][row["tier"]] = {"clips": row["duration_s_count"],
                                         "hours": row["duration_s_sum"] / 3600}
    return out


def format_summary(s: dict) -> str:
    lines = [
        f"items seen        {s['items']:>8}",
        f"  accepted        {s['accepted']:>8}",
        f"  rejected        {s['rejected']:>8}",
    ]
    lines += [f"    {reason[:40]:<40} {n:>5}" for reason, n in s["rejected_by_reason"].items()]
    lines += [
        f"hours downloaded  {s['hours_downloaded']:>8.2f}",
        f"hours aligned     {s['hours_aligned']:>8.2f}  ({s['recordings_aligned']} recordings,"
        f" {s['recordings_failed']} failed)",
        "clips by tier        clips     hours",
    ]
    lines += [f"  {t:<16} {v['clips']:>8} {v['hours']:>9.2f}" for t, v in s["tiers"].items()]
    return "\n".join(lines)
