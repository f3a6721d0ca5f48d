"""What a workdir holds, in the figures a job ends with: items seen, accepted and rejected (by
reason), hours downloaded, hours aligned, and clips and hours per tier. The catalog's figures
come from its read API (``Catalog.counts``), the same numbers every other report shows."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from manifests.audit import reason_category
from manifests.catalog import Catalog, ItemDecision

TIERS = ("clean", "other", "rejected")


def summarize(workdir: Path) -> dict:
    workdir = Path(workdir)
    out: dict = {"items": 0, "accepted": 0, "rejected": 0, "rejected_by_reason": {},
                 "hours_downloaded": 0.0, "recordings_aligned": 0, "recordings_failed": 0,
                 "hours_aligned": 0.0, "tiers": {t: {"clips": 0, "hours": 0.0} for t in TIERS}}
    if (workdir / "catalog.sqlite").is_file():
        with Catalog.reader(workdir / "catalog.sqlite") as catalog:
            c = catalog.counts()
            reasons = Counter(reason_category(r["reason"]) for r in catalog.item_records()
                              if r["decision"] != ItemDecision.ACCEPTED)
        out.update(items=c.items, accepted=c.accepted, rejected=c.rejected,
                   rejected_by_reason=dict(sorted(reasons.items())),
                   hours_downloaded=c.audio_seconds / 3600,
                   recordings_aligned=c.recordings_aligned,
                   recordings_failed=c.recordings_failed,
                   hours_aligned=c.aligned_seconds / 3600)
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
