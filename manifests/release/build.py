"""Writing a release: shards, metadata, data card, checksums — under a temporary name, then
renamed into place.

Same manifests + same config → the same bytes, whatever the output directory or worker count:
rows are in a planned order, shards are cut by planned sizes, JSON is written in a fixed key
order, and nothing records a clock or a path outside the release. A build killed at any moment
leaves only ``.<version>.tmp-<pid>`` beside the final name, which the next build removes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from manifests import outdir
from manifests.audit import build_audit
from manifests.hf import AUDIO, write_parquet
from manifests.release import card
from manifests.release.config import ReleaseConfig
from manifests.release.inputs import (
    duplicate_downloads,
    read_manifests,
    read_previous,
    with_audio_facts,
)
from manifests.release.plan import EXCLUSIONS, Plan, plan_release
from manifests.schema import SCHEMA_VERSION
from manifests.version import code_version

RELEASE_SCHEMA_VERSION = 1
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
# Seconds to sleep after each shard: lets a test (or an operator rehearsing recovery) kill a
# build half-way through. Unset in normal use.
DELAY_ENV = "SPEECHCRAWL_RELEASE_SHARD_DELAY_S"
SHARD_COLUMNS = ["duration_ms", "text", "text_raw", "source", "item_id", "audio_file", "start_s",
                 "end_s", "creator", "license_spdx", "license_family", "attribution", "tier",
                 "score", "cer", "language", "words", "audio_hash"]


def build_release(workdir: Path, version: str, previous: Path | None = None,
                  config: ReleaseConfig | Path | dict | None = None, *, out: Path | None = None,
                  workers: int = 1, force: bool = False, log=None) -> Path:
    """Build release ``version`` of ``workdir``'s manifests into ``out`` (default
    ``workdir/releases/<version>``); return its directory. ``config``: a ``ReleaseConfig``, a
    TOML file with a ``[release]`` table, or that table's contents as a dict.

    An existing release of identical content is left as it is (a rebuild is a no-op); one of
    different content is replaced only with ``force``.
    """
    log = log or sys.stderr
    workdir = Path(workdir)
    if not VERSION.match(version):
        raise ValueError(f"release version {version!r} must match {VERSION.pattern}")
    if isinstance(config, dict):
        config = ReleaseConfig.from_dict(config)
    elif isinstance(config, str | Path):
        config = ReleaseConfig.from_toml(Path(config))
    config = config or ReleaseConfig()
    final = outdir.check_out(Path(out) if out else workdir / "releases" / version, "release",
                             workdir)
    if previous is not None and Path(previous).resolve() == final.resolve():
        raise ValueError(f"--previous {previous} is the release being built")
    prev = read_previous(Path(previous)) if previous is not None else None
    clips, items, filters, models = read_manifests(workdir)
    clips = with_audio_facts(clips, workdir, workers)
    plan = plan_release(clips, items, config, prev)
    if not plan.rows.num_rows:
        why = ", ".join(f"{n} {k}" for k, n in plan.excluded.items() if n)
        raise ValueError(f"nothing to release: all {clips.num_rows} clips are excluded ({why})")
    tmp = outdir.temp_beside(final)
    try:
        write_shards(plan, workdir, tmp, workers, log)
        write_metadata(plan, filters, version, tmp, duplicate_downloads(workdir), models)
        outdir.mark(tmp, "release", also=("SHA256SUMS",))  # in SHA256SUMS like every file
        write_checksums(tmp)
        audit_gate(workdir, tmp, version)
        install(tmp, final, force, log, workdir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def shard_table(plan: Plan, rows: np.ndarray, workdir: Path) -> pa.Table:
    """One shard's rows: the FLAC files' bytes as they are (not re-encoded), the metadata."""
    t = plan.clips.take(pa.array(rows))
    t = t.append_column("creator", plan.items["creator"].take(t["item_index"]))
    ids = t["clip_id"].combine_chunks()
    audio = pa.StructArray.from_arrays(
        [pa.array([(workdir / p).read_bytes() for p in t["clip_path"].to_pylist()], pa.binary()),
         pc.binary_join_element_wise(ids, pa.scalar(".flac"), "")],
        fields=list(AUDIO))
    cols = {"id": ids, "audio": audio}
    for c in SHARD_COLUMNS:
        cols[c] = t[c] if c in t.column_names else pa.nulls(t.num_rows, pa.string())
    return pa.table(cols)


def write_shards(plan: Plan, workdir: Path, dest: Path, workers: int, log) -> None:
    shards = plan.shards()
    delay = float(os.environ.get(DELAY_ENV) or 0)

    def one(spec) -> str:
        config, split, i, of, rows = spec
        rel = f"data/{config}/{split}-{i:05d}-of-{of:05d}.parquet"
        write_parquet(shard_table(plan, rows, workdir), dest / rel)
        if delay:
            time.sleep(delay)
        return rel

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for n, (rel, spec) in enumerate(zip(pool.map(one, shards), shards, strict=True), 1):
            print(f"release [{n}/{len(shards)}] {rel}: {len(spec[4])} clips", file=log,
                  flush=True)


def _items_used(plan: Plan, used: pa.Table) -> list[dict]:
    """Every source item with a row in the release (``used``: its clips, once each), with its
    TASL and what it contributes."""
    rows = plan.rows
    if not rows.num_rows:
        return []
    per = rows.group_by(["item_key", "config"], use_threads=False).aggregate([])
    configs: dict[str, list[str]] = {}
    order = list(plan.config.subsets)
    for r in per.to_pylist():
        configs.setdefault(r["item_key"], []).append(r["config"])
    g = used.select(["item_key", "duration_ms"]).group_by("item_key", use_threads=False
                                                          ).aggregate(
        [("duration_ms", "sum"), ("duration_ms", "count")])
    stats = {r["item_key"]: r for r in g.to_pylist()}
    heads = {r["item_key"]: r for r in plan.items.take(pc.unique(used["item_index"])).select(
        ["item_key", "source", "item_id", "title", "creator", "url", "license_spdx",
         "license_family", "license_url"]).to_pylist()}
    out = []
    for key in sorted(heads):
        h, s = heads[key], stats[key]
        out.append({"key": key, "source": h["source"], "item_id": h["item_id"],
                    "title": h["title"], "creator": h["creator"], "url": h["url"],
                    "license": h["license_spdx"], "license_family": h["license_family"],
                    "license_url": h["license_url"],
                    "configs": sorted(configs[key], key=order.index),
                    "clips": s["duration_ms_count"], "ms": s["duration_ms_sum"],
                    "hours": round(s["duration_ms_sum"] / 3.6e6, 4)})
    return out


def release_meta(plan: Plan, used: pa.Table, filters: list[dict], version: str,
                 downloads: list[dict], model_records: dict[str, dict]) -> dict:
    """release.json: how the release was made and what it holds, in a fixed key order."""
    config = plan.config
    files: dict[tuple[str, str], list[str]] = {}
    for c, s, i, of, _ in plan.shards():
        files.setdefault((c, s), []).append(f"data/{c}/{s}-{i:05d}-of-{of:05d}.parquet")
    configs = {}
    for name, spec in config.subsets.items():
        counts = plan.counts[name]
        configs[name] = {
            "tiers": list(spec.tiers), "families": list(spec.families),
            "max_clips": spec.max_clips, "max_hours": spec.max_hours, "fraction": spec.fraction,
            "sample": spec.sample, "rows": counts["rows"], "hours": counts["hours"],
            "splits": {s: {**v, "files": files[(name, s)]} for s, v in counts["splits"].items()}}
    models = sorted({m for m in used["model_id"].to_pylist() if m}) \
        if "model_id" in used.column_names else []
    tiers = plan.clips.group_by("tier", use_threads=False).aggregate([("clip_id", "count")])
    langs = sorted({x for x in used["language"].to_pylist() if x}) \
        if "language" in used.column_names else []
    return {
        "schema_version": RELEASE_SCHEMA_VERSION,
        "name": config.name,
        "version": version,
        "previous": plan.diff["previous"],
        "code_version": code_version(),
        "manifest_schema_version": SCHEMA_VERSION,
        "release_config": config.as_dict(),
        "filter_config": {
            # As each clip manifest records it; several when recordings were aligned apart.
            "recorded": [f for f in filters if f["settings"] is not None],
            "clips_without_record": sum(f["clips"] for f in filters if f["settings"] is None),
            "clips_by_tier": {r["tier"]: r["clip_id_count"]
                              for r in sorted(tiers.to_pylist(), key=lambda r: r["tier"])}},
        "models": [card.model_entry(m, model_records.get(m)) for m in models],
        "languages": langs,
        "inputs": {"clips": plan.clips.num_rows, "items": plan.items.num_rows},
        "totals": {"clips": used.num_rows, "items": len(pc.unique(used["item_key"])),
                   "hours": round(pc.sum(used["duration_ms"]).as_py() / 3.6e6, 4)
                   if used.num_rows else 0.0},
        "configs": configs,
        "excluded": plan.excluded,
        "duplicates": {"audio": len(plan.duplicates["duplicate_audio"]),
                       "text": len(plan.duplicates["duplicate_text"]),
                       "downloads": len(downloads)},
    }


def _dump(obj) -> str:
    return json.dumps(obj, indent=1, ensure_ascii=False) + "\n"


def write_metadata(plan: Plan, filters: list[dict], version: str, dest: Path,
                   downloads: list[dict], model_records: dict[str, dict]) -> None:
    used = plan.clips.take(pc.unique(plan.rows["row"]))  # every clip in the release, once
    meta = release_meta(plan, used, filters, version, downloads, model_records)
    items = _items_used(plan, used)
    words = {k: v[0].upper() + v[1:] for k, v in EXCLUSIONS.items()}
    files = {
        "release.json": _dump(meta),
        "splits.json": _dump({
            "schema_version": RELEASE_SCHEMA_VERSION, "salt": plan.config.salt,
            "shares": plan.config.splits,
            "items": {k: {"split": a.split, "group": a.group}
                      for k, a in sorted(plan.splits.items())}}),
        "dedup.json": _dump({"schema_version": RELEASE_SCHEMA_VERSION,
                             "duplicate_audio": plan.duplicates["duplicate_audio"],
                             "duplicate_text": plan.duplicates["duplicate_text"],
                             "duplicate_downloads": downloads}),
        "changes.json": _dump({"schema_version": RELEASE_SCHEMA_VERSION, "version": version,
                               **plan.diff}),
        "CHANGES.md": card.changes_md(meta, plan.diff),
        "README.md": card.readme(meta, plan.config, items, plan.diff, words),
        "ATTRIBUTION.csv": card.attribution_csv(items),
        "ATTRIBUTION.md": card.attribution_md(meta, items),
    }
    for name, text in files.items():
        _write(dest / name, text.encode("utf-8"))


def _write(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_checksums(dest: Path) -> None:
    """SHA256SUMS, last, in ``sha256sum -c`` format, sorted by path."""
    paths = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")
                   if p.is_file() and p.name != "SHA256SUMS")
    _write(dest / "SHA256SUMS",
           "".join(f"{_sha256(dest / p)}  {p}\n" for p in paths).encode())


def audit_gate(workdir: Path, release: Path, version: str) -> None:
    """The license audit's gate, run on the finished build before it is put in place: a
    release the audit would fail (NC, ND or unknown licenses in it, labels that disagree with
    the catalog, share-alike outside a share-alike subset) is removed, never installed."""
    audit = build_audit(workdir, release)
    if audit["gate"]["passed"]:
        return
    shutil.rmtree(release, ignore_errors=True)
    blockers = [f for f in audit["findings"] if f["severity"] == "blocker"]
    first = blockers[0]
    raise ValueError(f"release {version}: the license audit's gate fails on it "
                     f"({len(blockers)} blocking findings: "
                     f"{', '.join(sorted({f['kind'] for f in blockers}))}; first: "
                     f"{first['source']}/{first['item_id']}: {first['message']}); "
                     "nothing was released")


def install(tmp: Path, final: Path, force: bool, log, workdir: Path | None = None) -> None:
    """Swap the finished build into place (``manifests.outdir``: only over an earlier
    release). Same content already there: keep it, drop ours."""
    if final.is_dir() and any(final.iterdir()):
        sums = final / "SHA256SUMS"
        if sums.exists() and sums.read_bytes() == (tmp / "SHA256SUMS").read_bytes():
            print(f"release: {final} already holds this release, byte for byte", file=log)
            return
        if not force:
            raise FileExistsError(f"{final} exists with different content: choose a new version, "
                                  "or pass --force to replace it")
    outdir.swap_in(tmp, final, "release", workdir)
