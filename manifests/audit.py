"""The license audit: every fact a sign-off needs, gathered from the catalog (and a release).

``build_audit`` is a pure function of the workdir's catalog and, when given, a release
directory: the same inputs give the same audit, apart from the date it was made. Findings that
must stop a release (NC, ND or unknown licenses inside it, share-alike material outside a
share-alike subset) are *blockers*; the audit command exits non-zero when there is one.
"""

from __future__ import annotations

import datetime
import json
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq

from manifests.catalog import Catalog, ItemDecision
from manifests.licenses import acceptable_spdx
from manifests.version import code_version

SCHEMA_VERSION = 1
PERMITTED_FAMILIES = {"public-domain", "by", "by-sa"}
FAMILY_NAMES = {"public-domain": "Public domain", "by": "CC BY", "by-sa": "CC BY-SA",
                None: "Not permitted / unknown"}


class AuditError(ValueError):
    """The audit cannot be made as asked (no such release, say); a one-line reason."""


def reason_category(reason: str | None) -> str:
    """Reasons carry details after a colon ("non-commercial: CC-BY-NC-4.0"): the kind."""
    return (reason or "").split(":")[0].strip() or "unknown"


def read_release(release: Path) -> dict:
    """A release's rows per subset (clip id, item, license, duration) from its Parquet shards,
    and which subsets are samples of the others. A directory that is not a release is an
    error: a gate that passes on 0 clips because the path was mistyped passes nothing."""
    release = Path(release)
    if not release.is_dir():
        raise AuditError(f"no release at {release}: the directory does not exist")
    if not (release / "release.json").is_file():
        raise AuditError(f"{release} is not a release (no release.json)")
    try:
        meta = json.loads((release / "release.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AuditError(f"{release} is not a release: its release.json is not readable JSON "
                         f"({exc})") from None
    if not isinstance(meta, dict):
        raise AuditError(f"{release} is not a release: its release.json does not describe one")
    rows = []
    for shard in sorted((release / "data").glob("*/*.parquet")):
        cols = set(pq.read_schema(shard).names)  # the audio bytes are never read
        wanted = [c for c in ("id", "audio_hash", "item_id", "source", "license_spdx",
                              "duration_ms") if c in cols]
        for r in pq.read_table(shard, columns=wanted).to_pylist():
            rows.append({"subset": shard.parent.name, "shard": f"{shard.parent.name}/{shard.name}",
                         "clip": clip_identity(r), **r})
    configs = meta.get("configs") if isinstance(meta.get("configs"), dict) else {}
    ids: dict[str, set] = defaultdict(set)
    for r in rows:
        ids[r["subset"]].add(r["clip"])
    return {"version": meta.get("version") or release.name, "name": release.name, "rows": rows,
            "samples": samples_of(ids, configs)}


def clip_identity(row: dict) -> tuple:
    """What makes two release rows one clip: its id, else its decoded audio's hash, else the
    row itself (counted once per config it is in)."""
    if row.get("id"):
        return ("id", row["id"])
    if row.get("audio_hash"):
        return ("audio", row["audio_hash"])
    return ("row", row.get("shard"), id(row))


def is_sample(config) -> bool:
    """Whether release.json records this config as a sample (``sample``, or a cap on it)."""
    return isinstance(config, dict) and any(
        config.get(k) for k in ("sample", "max_clips", "max_hours", "fraction"))


def samples_of(ids: dict[str, set], configs: dict) -> dict[str, list[str]]:
    """Subsets that are samples of others ({sample: [the subsets its clips come from]}), given
    each subset's clips and release.json's configs: the ones release.json says are samples,
    and any whose clips all lie in another larger subset. Their clips are counted where they
    come from, never again (the audit and the exports both count by this rule)."""
    out = {}
    for name, mine in sorted(ids.items()):
        capped = is_sample(configs.get(name))
        homes = sorted(o for o, theirs in ids.items() if o != name and mine & theirs
                       and not is_sample(configs.get(o)))
        inside = set().union(*(ids[o] for o in homes)) >= mine if homes else False
        strict = any(mine < ids[o] for o in homes)
        if inside and (capped or strict):
            out[name] = homes
    return out


def permitted_family(item: dict | None) -> str | None:
    """An item's license family if it may be distributed: accepted by the gate, and its SPDX id
    one the gate may accept with that very family (never the family column alone)."""
    if not item or item.get("decision") != ItemDecision.ACCEPTED:
        return None
    family = acceptable_spdx(item.get("license_spdx"))
    return family if family == item.get("license_family") else None


def _verdict(spdx_ids: set[tuple[str | None, str | None]]) -> tuple[str, bool]:
    """A plain-language license verdict for one subset, and whether it may be distributed."""
    bad = sorted(s or "unknown" for s, f in spdx_ids if f not in PERMITTED_FAMILIES)
    if bad:
        return (f"MUST NOT BE DISTRIBUTED: contains {', '.join(bad)} material", False)
    sa = sorted({s for s, f in spdx_ids if f == "by-sa"})
    by = sorted({s for s, f in spdx_ids if f == "by"})
    if sa:
        versions = sorted({s.split("-")[3] if s.startswith("CC-") else s.split("-")[4]
                           for s in sa})
        return (f"contains CC BY-SA {' and '.join(versions)} material: must be distributed under "
                f"CC BY-SA {max(versions)}, with attribution for every item", True)
    if by:
        return ("contains CC BY material (" + ", ".join(by) + "): may be distributed under any "
                "terms that keep the attribution of every item (ATTRIBUTION.csv)", True)
    return "public-domain material only: no conditions (attribution is still courteous)", True


def build_audit(workdir: Path, release: Path | None = None,
                now: datetime.datetime | None = None) -> dict:
    # Read the release first: a mistyped --release fails before anything else is read.
    rel = read_release(Path(release)) if release is not None else None
    with Catalog.reader(Path(workdir) / "catalog.sqlite") as catalog:
        items = catalog.item_records()
        files = catalog.file_records()
        downloaded_s = catalog.audio_seconds()
        changes = catalog.license_changes()
    by_item_files = defaultdict(list)
    for f in files:
        by_item_files[(f["source"], f["item_id"])].append(f)

    # Each clip once per item, whichever configs (and samples of them) it is in.
    rel_use: dict[tuple, dict] = defaultdict(lambda: {"clips": {}, "subsets": set()})
    if rel:
        for r in rel["rows"]:
            use = rel_use[(r.get("source", "archive_org"), r.get("item_id"))]
            use["clips"][r["clip"]] = r.get("duration_ms") or 0
            use["subsets"].add(r["subset"])

    findings: list[dict] = []

    def finding(severity, kind, item, message, **details):
        findings.append({"severity": severity, "kind": kind, "source": item["source"],
                         "item_id": item["item_id"], "message": message,
                         "details": dict(sorted(details.items()))})

    out_items, attribution = [], []
    for it in items:
        key = (it["source"], it["item_id"])
        its_files = by_item_files[key]
        audio_hours = downloaded_s.get(key, 0.0) / 3600  # a duplicate is counted once
        asr = [f for f in its_files if f["asr"]]
        use = rel_use.get(key)
        evidence = json.loads(it["license_evidence"] or "[]")
        row = {
            "source": it["source"], "item_id": it["item_id"], "title": it["title"],
            "creator": it["creator"], "url": it["url"],
            "license_raw": json.loads(it["license_raw"]) if it["license_raw"] else None,
            "license_spdx": it["license_spdx"], "license_family": it["license_family"],
            "license_url": it["license_url"], "evidence": evidence,
            "decision": it["decision"], "reason": it["reason"], "crawled_at": it["crawled_at"],
            "gone_at": it["gone_at"], "hours_downloaded": round(audio_hours, 4),
            "asr_files": [f["name"] for f in asr],
            "clips_used": len(use["clips"]) if use else 0,
            "hours_used": round(sum(use["clips"].values()) / 3_600_000, 4) if use else 0.0,
            "subsets": sorted(use["subsets"]) if use else [],
        }
        out_items.append(row)
        for f in asr:
            finding("warning", "asr_caption", it,
                    f"{f['name']} is a machine (ASR) caption, not a human transcript; its clips "
                    "are excluded from releases by default", file=f["name"],
                    why=f["asr_reason"] or "")
        if it["decision"] == ItemDecision.ACCEPTED and permitted_family(it) is None:
            finding("blocker" if use else "warning", "license_not_permitted", it,
                    f"accepted as {it['license_family'] or 'no family'}, but its SPDX id "
                    f"{it['license_spdx'] or '(none)'} is not one the license gate may accept "
                    "with that family: re-crawl it", license=it["license_spdx"] or "unknown")
        if it["decision"] == ItemDecision.ACCEPTED and (not it["creator"] or not it["title"]):
            missing = [k for k in ("title", "creator") if not it[k]]
            finding("warning", "attribution_incomplete", it,
                    f"missing {' and '.join(missing)}: attribution (TASL) cannot be complete",
                    missing=missing)
        if (it["reason"] or "").startswith("conflicting"):
            finding("warning", "conflicting_license_evidence", it, it["reason"],
                    evidence=[f"{e['field']}: {e['value']}" for e in evidence])
        if it["gone_at"]:
            finding("warning", "license_not_rechecked", it,
                    f"no longer found at the source since {it['gone_at']}: its license evidence "
                    "could not be re-checked", gone_at=it["gone_at"])
        if it["decision"] == ItemDecision.ACCEPTED:
            attribution.append({
                "source": it["source"], "item_id": it["item_id"],
                "title": it["title"] or "", "author": it["creator"] or "",
                "source_url": it["url"], "license": it["license_spdx"],
                "license_url": it["license_url"] or ""})
    for c in changes:
        kind = c["what"].replace(" ", "_")
        finding("warning", kind, c, f"{c['what']}: {c['old']} → {c['new']}", at=c["at"],
                old=c["old"], new=c["new"])

    subsets = []
    by_key = {(r["source"], r["item_id"]): r for r in out_items}
    if rel:
        groups = defaultdict(list)
        for r in rel["rows"]:
            groups[r["subset"]].append(r)
        for name, rows in sorted(groups.items()):
            lic = set()
            for r in rows:
                item = by_key.get((r.get("source", "archive_org"), r.get("item_id")))
                family = permitted_family(item)
                spdx = (item or {}).get("license_spdx") or r.get("license_spdx")
                shard_spdx = r.get("license_spdx")
                if shard_spdx is not None and acceptable_spdx(shard_spdx) is None:
                    family = None  # the release's own label is not permitted either
                lic.add((spdx, family))
                if item and shard_spdx and shard_spdx != item["license_spdx"]:
                    finding("blocker", "license_mismatch_in_release",
                            {"source": r.get("source", "archive_org"),
                             "item_id": r.get("item_id")},
                            f"release subset '{name}' ({r['shard']}) labels it {shard_spdx}, "
                            f"the catalog says {item['license_spdx']}", subset=name,
                            license=shard_spdx)
                if family not in PERMITTED_FAMILIES:
                    why = "not in the catalog" if item is None else (
                        item["reason"] or f"license {spdx} is not permitted")
                    finding("blocker", "not_permitted_in_release",
                            {"source": r.get("source", "archive_org"),
                             "item_id": r.get("item_id")},
                            f"in release subset '{name}' ({r['shard']}) but {why}",
                            subset=name, license=spdx or "unknown")
            sa_here = sorted({s for s, f in lic if f == "by-sa"})
            if sa_here and not name.endswith("_sa") and "sa" not in name.split("_"):
                finding("blocker", "share_alike_outside_sa_subset",
                        {"source": "-", "item_id": "-"},
                        f"subset '{name}' holds share-alike material ({', '.join(sa_here)}) but "
                        "is not labelled share-alike", subset=name)
            verdict, ok = _verdict(lic)
            clips = {r["clip"]: r.get("duration_ms") or 0 for r in rows}
            subsets.append({"name": name, "clips": len(clips),
                            "hours": round(sum(clips.values()) / 3_600_000, 4),
                            "licenses": sorted(s or "unknown" for s, _ in lic),
                            "verdict": verdict, "distributable": ok,
                            "sample_of": rel["samples"].get(name)})
    else:
        for name, families in (("PD + CC BY", {"public-domain", "by"}),
                               ("CC BY-SA", {"by-sa"})):
            members = [r for r in out_items if permitted_family(r) in families]
            if members:
                lic = {(r["license_spdx"], r["license_family"]) for r in members}
                verdict, ok = _verdict(lic)
                subsets.append({"name": f"{name} (candidate)",
                                "clips": 0, "hours": round(sum(r["hours_downloaded"]
                                                               for r in members), 4),
                                "licenses": sorted(s for s, _ in lic), "verdict": verdict,
                                "distributable": ok})

    accepted = [r for r in out_items if r["decision"] == ItemDecision.ACCEPTED]
    # Every clip of the release once, whichever configs hold it (a sample adds nothing).
    release_clips = {r["clip"]: r.get("duration_ms") or 0 for r in rel["rows"]} if rel else {}

    def exact_hours(r: dict) -> float:
        """Unrounded, so a total is rounded once (the release card rounds it so too)."""
        key = (r["source"], r["item_id"])
        if rel:
            return sum(rel_use[key]["clips"].values()) / 3_600_000 if key in rel_use else 0.0
        return downloaded_s.get(key, 0.0) / 3600

    def hours_by(key) -> dict:
        sums: dict = defaultdict(float)
        for r in accepted:
            sums[key(r)] += exact_hours(r)
        return {k: round(v, 4) for k, v in sorted(sums.items())}

    summary = {
        "items_seen": len(out_items),
        "items_accepted": len(accepted),
        "items_rejected": len(out_items) - len(accepted),
        "items_gone": sum(1 for r in out_items if r["gone_at"]),
        "hours_downloaded": round(sum(downloaded_s.values()) / 3600, 4),
        "hours_in_release": round(sum(release_clips.values()) / 3_600_000, 4) if rel else None,
        "clips_in_release": len(release_clips) if rel else None,
        "items_by_family": dict(sorted(Counter(
            FAMILY_NAMES[r["license_family"]] for r in accepted).items())),
        "hours_by_license": hours_by(lambda r: r["license_spdx"]),
        "hours_by_source": hours_by(lambda r: r["source"]),
        "rejections_by_reason": dict(sorted(Counter(
            reason_category(r["reason"]) for r in out_items
            if r["decision"] != ItemDecision.ACCEPTED).items())),
    }
    findings.sort(key=lambda f: ({"blocker": 0, "warning": 1, "info": 2}[f["severity"]],
                                 f["kind"], f["source"] or "", f["item_id"] or "",
                                 f["message"]))
    blockers = sum(1 for f in findings if f["severity"] == "blocker")
    now = now or datetime.datetime.now(datetime.UTC)
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": now.isoformat(timespec="seconds"),
        "code_version": code_version(),
        "release": {"version": rel["version"], "name": rel["name"]} if rel else None,
        "gate": {"passed": blockers == 0, "blockers": blockers,
                 "warnings": sum(1 for f in findings if f["severity"] == "warning")},
        "summary": summary,
        "subsets": subsets,
        "findings": findings,
        "items": out_items,
        "attribution": attribution,
    }
