"""The license audit: facts, findings for every planted defect, the release gate, the report
opened in a real headless browser."""

from __future__ import annotations

import datetime
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_crawl import run_crawl

from crawler.sample_archive.build import build
from crawler.sample_archive.server import serving
from manifests.audit import build_audit
from manifests.audit_report import BAR, write_report

AUDIT = [sys.executable, "-m", "speechcrawl.cli", "audit"]
FIXED = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
# Which finding each planted defect must produce.
FINDING_FOR = {"asr_caption": "asr_caption", "missing_creator": "attribution_incomplete",
               "license_conflict": "conflicting_license_evidence"}


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """An 11-item archive crawled, then changed at the source (a license changed, an item
    removed) and crawled again: every defect the audit reports on is in it."""
    tmp = tmp_path_factory.mktemp("audit")
    archive = build(tmp / "archive", items=11)
    defects = json.loads((archive / "defects.json").read_text())
    workdir = tmp / "work"
    accepted = sorted(i for i, v in defects["licenses"].items() if v["decision"] == "accepted")
    relicensed, removed = accepted[0], accepted[1]
    with serving(archive) as url:
        run_crawl(workdir, url)
        meta_path = archive / "items" / relicensed / "_meta.json"
        meta = json.loads(meta_path.read_text())
        meta["metadata"]["licenseurl"] = "https://creativecommons.org/licenses/by-sa/4.0/"
        meta_path.write_text(json.dumps(meta))
        shutil.rmtree(archive / "items" / removed)
        run_crawl(workdir, url)
    return {"workdir": workdir, "defects": defects, "relicensed": relicensed,
            "removed": removed, "audit": build_audit(workdir, now=FIXED)}


def test_every_license_form_maps_as_expected(audited):
    items = {r["item_id"]: r for r in audited["audit"]["items"]}
    assert set(items) == set(audited["defects"]["licenses"])
    for item_id, want in audited["defects"]["licenses"].items():
        if item_id == audited["relicensed"]:
            continue
        got = items[item_id]
        assert (got["license_spdx"], got["license_family"], got["decision"]) == (
            want["spdx"], want["family"], want["decision"]), item_id
        raw = want["raw"] if isinstance(want["raw"], list) else [want["raw"]] if want["raw"] \
            else []
        assert [e["value"] for e in got["evidence"] if e["field"] == "licenseurl"] == raw


def test_every_planted_defect_appears_in_its_finding(audited):
    findings = audited["audit"]["findings"]
    kinds = {d["kind"] for d in audited["defects"]["defects"]}
    assert {"asr_caption", "missing_creator", "license_conflict"} <= kinds
    for d in audited["defects"]["defects"]:
        if d["kind"] in FINDING_FOR:
            assert any(f["kind"] == FINDING_FOR[d["kind"]] and f["item_id"] == d["item_id"]
                       for f in findings), d


def test_changes_at_the_source_become_findings(audited):
    findings = audited["audit"]["findings"]
    changed = [f for f in findings if f["kind"] == "license_changed"]
    assert [f["item_id"] for f in changed] == [audited["relicensed"]]
    assert "CC-BY-SA-4.0" in changed[0]["message"]
    assert not [f for f in findings if f["kind"] == "decision_changed"]  # still accepted
    gone = [f for f in findings if f["kind"] == "license_not_rechecked"]
    assert [f["item_id"] for f in gone] == [audited["removed"]]


def test_summary_adds_up(audited):
    a = audited["audit"]
    s = a["summary"]
    assert s["items_seen"] == len(a["items"]) == s["items_accepted"] + s["items_rejected"]
    assert sum(s["rejections_by_reason"].values()) == s["items_rejected"]
    assert sum(s["items_by_family"].values()) == s["items_accepted"]
    assert abs(sum(s["hours_by_license"].values()) - s["hours_downloaded"]) < 1e-3
    assert a["gate"]["passed"] and not a["release"]
    assert len(a["attribution"]) == s["items_accepted"]


def test_audit_is_deterministic_apart_from_its_date(audited, tmp_path):
    again = build_audit(audited["workdir"], now=FIXED)
    assert again == audited["audit"]
    one = write_report(again, tmp_path / "one")
    two = write_report(build_audit(audited["workdir"], now=FIXED), tmp_path / "two")
    for name in ("index.html", "audit.json", "items.csv", "findings.csv", "attribution.csv"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    later = build_audit(audited["workdir"])
    assert {k: v for k, v in later.items() if k != "generated_at"} == \
        {k: v for k, v in again.items() if k != "generated_at"}


def _release(tmp_path: Path, subsets: dict[str, list[str]], audited) -> Path:
    rel = tmp_path / "releases" / "v1"
    items = {r["item_id"]: r for r in audited["audit"]["items"]}
    for subset, ids in subsets.items():
        rows = [{"id": f"{i}-{k}", "item_id": i, "source": "archive_org",
                 "license_spdx": items[i]["license_spdx"], "duration_ms": 4000}
                for k, i in enumerate(ids)]
        path = rel / "data" / subset / "train-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), path)
    (rel / "release.json").write_text(json.dumps({"version": "v1"}))
    return rel


def _by_family(audited, family):
    return [r["item_id"] for r in audited["audit"]["items"]
            if r["license_family"] == family and r["decision"] == "accepted"]


def test_a_clean_release_passes_with_a_verdict_per_subset(audited, tmp_path):
    pd_by = _by_family(audited, "public-domain") + _by_family(audited, "by")
    rel = _release(tmp_path, {"clean": pd_by, "clean_sa": _by_family(audited, "by-sa")},
                   audited)
    out = tmp_path / "report"
    result = subprocess.run(AUDIT + ["--workdir", str(audited["workdir"]), "--release",
                                     str(rel), "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    audit = json.loads((out / "audit.json").read_text())
    verdicts = {s["name"]: s["verdict"] for s in audit["subsets"]}
    assert "attribution" in verdicts["clean"]
    assert re.search(r"must be distributed under CC BY-SA 4\.0", verdicts["clean_sa"])
    assert audit["summary"]["clips_in_release"] == len(pd_by) + len(_by_family(audited, "by-sa"))


def test_a_release_polluted_with_an_nc_item_fails_the_audit(audited, tmp_path):
    nc = next(i for i, v in audited["defects"]["licenses"].items()
              if v["reason"] == "non-commercial")
    rel = _release(tmp_path, {"clean": _by_family(audited, "by") + [nc]}, audited)
    result = subprocess.run(AUDIT + ["--workdir", str(audited["workdir"]), "--release",
                                     str(rel)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "license gate failed" in result.stderr.strip().splitlines()[-1]
    report = audited["workdir"] / "reports" / "audit-v1"
    audit = json.loads((report / "audit.json").read_text())
    blockers = [f for f in audit["findings"] if f["severity"] == "blocker"]
    assert [(f["kind"], f["item_id"]) for f in blockers] == [("not_permitted_in_release", nc)]
    assert "MUST NOT BE DISTRIBUTED" in audit["subsets"][0]["verdict"]


def test_a_release_that_relabels_a_license_fails(audited, tmp_path):
    by = _by_family(audited, "by")
    rel = _release(tmp_path, {"clean": by}, audited)
    shard = rel / "data" / "clean" / "train-00000-of-00001.parquet"
    rows = pq.read_table(shard).to_pylist()
    rows[0]["license_spdx"] = "CC0-1.0"
    pq.write_table(pa.Table.from_pylist(rows), shard)
    audit = build_audit(audited["workdir"], rel, now=FIXED)
    assert [(f["kind"], f["item_id"]) for f in audit["findings"]
            if f["severity"] == "blocker"] == [("license_mismatch_in_release", rows[0]["item_id"])]


def test_share_alike_outside_a_share_alike_subset_fails(audited, tmp_path):
    rel = _release(tmp_path, {"clean": _by_family(audited, "by-sa")}, audited)
    audit = build_audit(audited["workdir"], rel, now=FIXED)
    assert not audit["gate"]["passed"]
    assert [f["kind"] for f in audit["findings"] if f["severity"] == "blocker"] == [
        "share_alike_outside_sa_subset"]


CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--hide-scrollbars"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="set-up installs chromium")
def test_report_renders_in_a_real_browser(audited, tmp_path):
    from PIL import Image

    report = write_report(audited["audit"], tmp_path / "report")
    url = (report / "index.html").as_uri()
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run(CHROMIUM + profile + ["--dump-dom", url], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    shown = {k: v for k, v in re.findall(r'data-total="(\w+)">([^<]*)<', dom)}
    summary = audited["audit"]["summary"]
    assert shown and all(str(summary[k]) == v for k, v in shown.items())
    assert dom.count('class="bar"') >= 4 and 'data-gate="pass"' in dom
    assert "<script" not in (report / "index.html").read_text()  # self-contained, static
    assert not re.search(r'(src|href)="(?!https?://[^"]*/details/)(https?:)?//',
                         (report / "index.html").read_text())  # no external assets
    png = tmp_path / "shot.png"
    subprocess.run(CHROMIUM + profile + ["--window-size=1280,2000", f"--screenshot={png}", url],
                   capture_output=True, timeout=120, check=True)
    image = Image.open(png).convert("RGB")
    bar = tuple(int(BAR[i: i + 2], 16) for i in (1, 3, 5))
    bar_pixels = int((np.asarray(image) == bar).all(axis=-1).sum())
    assert image.size == (1280, 2000) and bar_pixels > 2000  # the charts were drawn


# -- the SPDX id itself, never the family column alone -----------------------------------------

def _tampered_catalog(audited, tmp_path, item_id: str, spdx: str) -> Path:
    """A copy of the audited catalog in which ``item_id`` is accepted as family ``by`` under
    ``spdx``: what the old gate wrote for ``licenses/by/4.0/nc/``, or a hand edit."""
    import sqlite3

    work = tmp_path / "work"
    work.mkdir()
    for p in audited["workdir"].glob("catalog.sqlite*"):
        shutil.copy2(p, work / p.name)
    conn = sqlite3.connect(work / "catalog.sqlite")
    with conn:
        conn.execute("UPDATE items SET license_spdx = ?, license_family = 'by' WHERE item_id = ?",
                     (spdx, item_id))
    conn.close()
    return work


@pytest.mark.parametrize("spdx", ["LicenseRef-CC-BY-4.0-NC", "CC-BY-NC-4.0",
                                  "LicenseRef-CC-BY-4.0-ND", "CC-BY-NC-ND-3.0-US",
                                  "CC-BY-4.0-NC", "CC-BY-3.0-XX", "CC-BY-9.0", "MIT"])
def test_a_by_family_with_an_nc_or_unknown_spdx_id_fails_the_release_audit(audited, tmp_path,
                                                                            spdx):
    victim = _by_family(audited, "by")[0]
    work = _tampered_catalog(audited, tmp_path, victim, spdx)
    rel = _release(tmp_path, {"clean": [victim]}, audited)
    shard = rel / "data" / "clean" / "train-00000-of-00001.parquet"
    t = pq.read_table(shard)
    pq.write_table(t.set_column(t.column_names.index("license_spdx"), "license_spdx",
                                pa.array([spdx] * t.num_rows)), shard)
    audit = build_audit(work, rel, now=FIXED)
    assert not audit["gate"]["passed"]
    blockers = {(f["kind"], f["item_id"]) for f in audit["findings"]
                if f["severity"] == "blocker"}
    assert blockers == {("not_permitted_in_release", victim), ("license_not_permitted", victim)}
    assert "MUST NOT BE DISTRIBUTED" in audit["subsets"][0]["verdict"]
    assert not audit["subsets"][0]["distributable"]


def test_an_nc_label_on_a_release_shard_fails_even_when_the_catalog_is_clean(audited, tmp_path):
    victim = _by_family(audited, "by")[0]
    rel = _release(tmp_path, {"clean": [victim]}, audited)
    shard = rel / "data" / "clean" / "train-00000-of-00001.parquet"
    t = pq.read_table(shard)
    pq.write_table(t.set_column(t.column_names.index("license_spdx"), "license_spdx",
                                pa.array(["LicenseRef-CC-BY-4.0-NC"] * t.num_rows)), shard)
    audit = build_audit(audited["workdir"], rel, now=FIXED)
    kinds = {f["kind"] for f in audit["findings"] if f["severity"] == "blocker"}
    assert kinds == {"license_mismatch_in_release", "not_permitted_in_release"}


def test_without_a_release_an_unacceptable_id_is_a_warning_and_no_candidate(audited, tmp_path):
    victim = _by_family(audited, "by")[0]
    work = _tampered_catalog(audited, tmp_path, victim, "LicenseRef-CC-BY-4.0-NC")
    audit = build_audit(work, now=FIXED)
    assert audit["gate"]["passed"]
    warned = [f for f in audit["findings"] if f["kind"] == "license_not_permitted"]
    assert [(f["severity"], f["item_id"]) for f in warned] == [("warning", victim)]
    assert all("LicenseRef-CC-BY-4.0-NC" not in s["licenses"] for s in audit["subsets"])


# -- each clip counted once; a sample config shown as a sample --------------------------------

def _shard(rel: Path, config: str, rows: list[dict], split: str = "train") -> None:
    path = rel / "data" / config / f"{split}-00000-of-00001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def _clips(audited, ids: list[str], per_item: int = 3) -> list[dict]:
    items = {r["item_id"]: r for r in audited["audit"]["items"]}
    return [{"id": f"{i}-{k:03d}", "item_id": i, "source": "archive_org",
             "license_spdx": items[i]["license_spdx"], "duration_ms": 1000 + 250 * k,
             "audio_hash": f"md5:{i}-{k}"} for i in ids for k in range(per_item)]


@pytest.mark.parametrize("sample", ["part", "all"])
def test_a_sample_config_is_counted_once_and_shown_as_a_sample(audited, tmp_path, sample):
    """The microset is drawn from the clean config: its clips are not added again to the
    release's totals, nor per item, nor per license; in a small release it may be all of
    clean, and is still the sample (release.json says it is capped)."""
    pd_by = _by_family(audited, "public-domain") + _by_family(audited, "by")
    clean = _clips(audited, pd_by)
    micro = clean[: len(clean) // 2] if sample == "part" else list(clean)
    rel = tmp_path / "releases" / "v1"
    _shard(rel, "clean", clean[1:], "train")
    _shard(rel, "clean", clean[:1], "test")  # one config in two splits: still one config
    _shard(rel, "microset", micro)
    (rel / "release.json").write_text(json.dumps({"version": "v1", "configs": {
        "clean": {"sample": False, "max_clips": None},
        "microset": {"sample": True, "max_hours": 10.0, "fraction": 0.1}}}))
    audit = build_audit(audited["workdir"], rel, now=FIXED)
    s = audit["summary"]
    assert s["clips_in_release"] == len(clean)
    assert s["hours_in_release"] == round(sum(c["duration_ms"] for c in clean) / 3.6e6, 4)
    assert sum(r["clips_used"] for r in audit["items"]) == len(clean)
    assert sum(s["hours_by_license"].values()) == pytest.approx(s["hours_in_release"], abs=2e-4)
    assert s["hours_by_source"] == {"archive_org": s["hours_in_release"]}
    subsets = {x["name"]: x for x in audit["subsets"]}
    assert subsets["clean"]["clips"] == len(clean) and subsets["clean"]["sample_of"] is None
    assert subsets["microset"]["clips"] == len(micro)
    assert subsets["microset"]["sample_of"] == ["clean"]
    out = write_report(audit, tmp_path / "report")
    page = (out / "index.html").read_text()
    assert 'data-sample-of="clean"' in page and "not added to the totals" in page
    assert f'<b data-total="clips_in_release">{len(clean)}</b>' in page


def test_a_subset_inside_another_is_a_sample_even_without_release_json_saying_so(audited,
                                                                               tmp_path):
    """A release.json without config records (an older release): containment decides."""
    clean = _clips(audited, _by_family(audited, "by"))
    rel = tmp_path / "releases" / "old"
    _shard(rel, "clean", clean)
    _shard(rel, "tiny", clean[:2])
    (rel / "release.json").write_text(json.dumps({"version": "old"}))
    audit = build_audit(audited["workdir"], rel, now=FIXED)
    assert audit["summary"]["clips_in_release"] == len(clean)
    assert {x["name"]: x["sample_of"] for x in audit["subsets"]} == {"clean": None,
                                                                    "tiny": ["clean"]}


def test_clips_without_an_id_are_told_apart_by_their_audio(audited, tmp_path):
    clean = [{k: v for k, v in c.items() if k != "id"}
             for c in _clips(audited, _by_family(audited, "by"))]
    rel = tmp_path / "releases" / "noid"
    _shard(rel, "clean", clean)
    _shard(rel, "microset", clean[:3])
    (rel / "release.json").write_text(json.dumps({"version": "noid"}))
    audit = build_audit(audited["workdir"], rel, now=FIXED)
    assert audit["summary"]["clips_in_release"] == len(clean)


@pytest.mark.parametrize("make", ["missing", "empty_dir", "workdir", "bad_json", "json_list",
                                  "release_json_is_a_dir"])
def test_auditing_something_that_is_not_a_release_is_an_error(audited, tmp_path, make):
    """A mistyped --release must not pass the gate with 0 clips: one line, non-zero exit,
    and no report written."""
    target = tmp_path / "releases" / "v9"
    if make == "empty_dir":
        target.mkdir(parents=True)
    elif make == "workdir":
        target = audited["workdir"]
    elif make in ("bad_json", "json_list"):
        _shard(target, "clean", _clips(audited, _by_family(audited, "by")))
        (target / "release.json").write_text("{not json" if make == "bad_json" else "[1, 2]")
    elif make == "release_json_is_a_dir":
        (target / "release.json").mkdir(parents=True)
    out = tmp_path / "report"
    result = subprocess.run(AUDIT + ["--workdir", str(audited["workdir"]), "--release",
                                     str(target), "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and result.returncode != 1, result.stderr  # 1: gate failed
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(target) in lines[0] and ("not a release" in lines[0] or
                                       "no release" in lines[0]), lines[0]
    assert not out.exists()
