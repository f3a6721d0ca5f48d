"""One truth for every number: the demo's figures, as a user reads them, against the data.

The demo runs once on the small sample archive. Every figure it prints (crawl, align, release,
export and audit lines, the summary) and every figure in the files a user opens (the audit's
index.html and audit.json, the release's data card, release.json, each export.json) is parsed
from the text itself and compared with a count taken here, straight from the Parquet files
(items.parquet, the clip manifests, the release's shards, the HF export's shards) with pyarrow.
The few figures no Parquet file holds (files stored, duplicates, hours of audio downloaded and
aligned) are counted from the files on disk and the catalog's raw tables, never through the
code under test.
"""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
import subprocess
import sys
from collections import defaultdict
from html.parser import HTMLParser

import pyarrow.parquet as pq
import pytest

SPEECHCRAWL = [sys.executable, "-m", "speechcrawl.cli"]
ITEMS = 6
# One demo run for the module, under whichever test comes first.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


# -- the run and the truth ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    workdir = tmp_path_factory.mktemp("numbers") / "w"
    result = subprocess.run(SPEECHCRAWL + ["demo", "--workdir", str(workdir), "--items",
                                           str(ITEMS)], capture_output=True, text=True,
                            timeout=1700)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"workdir": workdir, "lines": (result.stdout + "\n" + result.stderr).splitlines(),
            "release": workdir / "releases" / "demo"}


def category(reason: str | None) -> str:
    return (reason or "").split(":")[0].strip() or "unknown"


@pytest.fixture(scope="module")
def truth(demo) -> dict:
    """Every count, taken from the data itself."""
    w, rel = demo["workdir"], demo["release"]
    items = pq.read_table(w / "manifests" / "items.parquet").to_pylist()
    manifests = sorted((w / "manifests" / "clips").glob("*.parquet"))
    clips = [r for p in manifests for r in pq.read_table(
        p, columns=["clip_id", "tier", "duration_s"]).to_pylist()]
    shards = sorted((rel / "data").glob("*/*.parquet"))
    rows = [{**r, "config": p.parent.name, "split": p.name.split("-")[0]} for p in shards
            for r in pq.read_table(p, columns=["id", "item_id", "source", "license_spdx",
                                               "duration_ms"]).to_pylist()]
    distinct = {r["id"]: r for r in rows}
    conn = sqlite3.connect(f"file:{w / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        files = {s: n for s, n in conn.execute("SELECT status, COUNT(*) FROM files GROUP BY 1")}
        audio_dups = conn.execute("SELECT COUNT(*) FROM files WHERE role = 'audio' AND "
                                  "status = 'duplicate'").fetchone()[0]
        downloaded_s = conn.execute("SELECT SUM(length_s) FROM files WHERE role = 'audio' AND "
                                    "status = 'downloaded'").fetchone()[0]
        aligned = dict(conn.execute("SELECT status, COUNT(*) FROM alignments GROUP BY 1"))
        aligned_s = conn.execute("SELECT SUM(audio_s) FROM alignments WHERE status = 'done'"
                                 ).fetchone()[0]
    finally:
        conn.close()
    tiers = {t: {"clips": sum(c["tier"] == t for c in clips),
                 "hours": sum(c["duration_s"] for c in clips if c["tier"] == t) / 3600}
             for t in ("clean", "other", "rejected")}
    return {
        "items": len(items),
        "accepted": sum(r["decision"] == "accepted" for r in items),
        "rejected": sum(r["decision"] != "accepted" for r in items),
        "reasons": _count(category(r["reason"]) for r in items if r["decision"] != "accepted"),
        "stored_on_disk": sum(1 for p in (w / "raw").rglob("*") if p.is_file()),
        "files": files, "audio_duplicates": audio_dups,
        "hours_downloaded": downloaded_s / 3600,
        "manifests": len(manifests), "clips": len(clips), "tiers": tiers,
        "recordings_failed": aligned.get("failed", 0), "recordings_done": aligned.get("done", 0),
        "hours_aligned": aligned_s / 3600,
        "shards": {str(p.relative_to(rel)): pq.read_metadata(p).num_rows for p in shards},
        "rows": rows, "distinct": distinct,
    }


def _count(keys) -> dict:
    out: dict = defaultdict(int)
    for k in keys:
        out[k] += 1
    return dict(out)


def _sum(rows, key) -> dict:
    """{key: {"clips", "ms", "items"}} over release rows."""
    out: dict = defaultdict(lambda: {"clips": 0, "ms": 0, "items": set()})
    for r in rows:
        e = out[key(r)]
        e["clips"] += 1
        e["ms"] += r["duration_ms"]
        e["items"].add((r["source"], r["item_id"]))
    return dict(out)


def shown(text: str, value: float, *, places: int | None = None, slack: float = 1e-9) -> None:
    """A figure as printed agrees with ``value`` rounded to the places it is printed with."""
    digits = places if places is not None else (len(text.split(".")[1]) if "." in text else 0)
    assert abs(float(text) - value) <= 0.5 * 10 ** -digits + slack, (text, value)


def line(demo, pattern: str) -> re.Match:
    found = [m for m in (re.search(pattern, ln) for ln in demo["lines"]) if m]
    assert found, f"no line matches {pattern!r}"
    return found[-1]


# -- what the terminal shows ---------------------------------------------------------------------

def test_the_crawl_report_agrees_with_the_items_and_the_files_on_disk(demo, truth):
    m = line(demo, r"crawl finished: items (\d+) found, (\d+) accepted, (\d+) rejected.*?"
                   r"\| files (\d+) downloaded this run .*?\| catalog: files (\d+) stored "
                   r"\(([\d.]+) h of audio\), (\d+) duplicate, (\d+) corrupt, (\d+) failed")
    found, accepted, rejected, fetched, stored, hours, dup, corrupt, failed = m.groups()
    assert (int(found), int(accepted), int(rejected)) == (truth["items"], truth["accepted"],
                                                          truth["rejected"])
    assert int(stored) == truth["stored_on_disk"] == truth["files"].get("downloaded", 0)
    assert int(fetched) >= int(stored)  # a download may turn out a copy of another item's
    shown(hours, truth["hours_downloaded"])
    assert int(dup) == truth["files"].get("duplicate", 0) >= truth["audio_duplicates"] >= 1
    assert int(corrupt) == truth["files"].get("corrupt", 0)
    assert int(failed) == truth["files"].get("failed", 0)


def test_the_align_report_agrees_with_the_clip_manifests(demo, truth):
    progress = [re.match(r"align \[(\d+)/(\d+)\] (.*) \| ([\d.]+) h aligned; clean (\d+), "
                         r"other (\d+), rejected (\d+), failed (\d+)$", ln)
                for ln in demo["lines"] if ln.startswith("align [")]
    assert progress and all(progress)
    done = [m for m in progress if re.search(r": \d+ clips$", m[3])]
    failed = [m for m in progress if ": failed: " in m[3]]
    assert len(done) == truth["manifests"] == truth["recordings_done"]
    assert len(failed) == truth["recordings_failed"]
    assert sum(int(re.search(r"(\d+) clips$", m[3])[1]) for m in done) == truth["clips"]
    last = progress[-1]
    assert [int(last[i]) for i in (5, 6, 7, 8)] == [
        truth["tiers"]["clean"]["clips"], truth["tiers"]["other"]["clips"],
        truth["tiers"]["rejected"]["clips"], truth["recordings_failed"]]
    shown(last[4], truth["hours_aligned"])
    m = line(demo, r"align: (\d+) recordings aligned this run, (\d+) failed \| in the workdir: "
                   r"(\d+) recordings aligned \(([\d.]+) h\), (\d+) failed")
    assert [int(x) for x in m.group(1, 2, 3, 5)] == [truth["manifests"],
                                                    truth["recordings_failed"],
                                                    truth["manifests"],
                                                    truth["recordings_failed"]]
    shown(m[4], truth["hours_aligned"])


def test_the_summary_agrees_with_items_and_clip_manifests(demo, truth):
    text = "\n".join(demo["lines"])
    assert int(re.search(r"^items seen\s+(\d+)$", text, re.M)[1]) == truth["items"]
    assert int(re.search(r"^  accepted\s+(\d+)$", text, re.M)[1]) == truth["accepted"]
    assert int(re.search(r"^  rejected\s+(\d+)$", text, re.M)[1]) == truth["rejected"]
    reasons = {m[1].strip(): int(m[2]) for m in re.finditer(r"^    (.{40}) +(\d+)$", text, re.M)}
    assert reasons == {k[:40]: v for k, v in truth["reasons"].items()}
    shown(re.search(r"^hours downloaded\s+([\d.]+)$", text, re.M)[1], truth["hours_downloaded"])
    m = re.search(r"^hours aligned\s+([\d.]+)  \((\d+) recordings, (\d+) failed\)$", text, re.M)
    shown(m[1], truth["hours_aligned"])
    assert (int(m[2]), int(m[3])) == (truth["manifests"], truth["recordings_failed"])
    for tier, want in truth["tiers"].items():
        m = re.search(rf"^  {tier}\s+(\d+)\s+([\d.]+)$", text, re.M)
        assert int(m[1]) == want["clips"], tier
        shown(m[2], want["hours"])
    assert "speechcrawl.log" not in text or (demo["workdir"] / "speechcrawl.log").exists()


def test_the_release_export_and_audit_lines_agree_with_the_shards(demo, truth):
    printed = [re.search(r"release \[\d+/\d+\] (data/\S+\.parquet): (\d+) clips", ln)
               for ln in demo["lines"]]
    assert {m[1]: int(m[2]) for m in printed if m} == truth["shards"]
    clean = [r for r in truth["rows"] if r["config"] == "clean"]
    exports = [re.search(r"^export (\w+) of release demo: (\S+) \((\d+) clips, ([\d.]+) h\)",
                         ln) for ln in demo["lines"]]
    exports = [m for m in exports if m]
    assert {m[1] for m in exports} == {"hf", "nemo", "lhotse"}
    for m in exports:
        assert int(m[3]) == len(clean), m[0]
        shown(m[4], sum(r["duration_ms"] for r in clean) / 3.6e6, slack=1e-5)
    audit = json.loads((demo["workdir"] / "reports" / "audit-demo" / "audit.json").read_text())
    m = line(demo, r"audit: \S+ \((\d+) blocking, (\d+) other findings")
    severities = _count(f["severity"] for f in audit["findings"])
    assert (int(m[1]), int(m[2])) == (severities.get("blocker", 0),
                                      severities.get("warning", 0))


# -- what the files say --------------------------------------------------------------------------

class Tables(HTMLParser):
    """Every table of a page: rows of cells, each cell's text and the text of its <code>s;
    and every ``data-total`` card."""

    def __init__(self, page: str):
        super().__init__()
        self.tables, self.totals, self._cell, self._code, self._total = [], {}, None, None, None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag == "td":
            self._cell = {"text": "", "code": []}
        elif tag == "code" and self._cell is not None:
            self._code = ""
        elif tag == "b" and "data-total" in a:
            self._total, self.totals[a["data-total"]] = a["data-total"], ""

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.tables[-1][-1].append(self._cell)
            self._cell = None
        elif tag == "code" and self._code is not None:
            self._cell["code"].append(self._code)
            self._code = None
        elif tag == "b":
            self._total = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if self._code is not None:
            self._code += data
        if self._total is not None:
            self.totals[self._total] += data


def test_the_audit_counts_each_release_clip_once_in_html_and_json(demo, truth):
    report = demo["workdir"] / "reports" / "audit-demo"
    audit = json.loads((report / "audit.json").read_text())
    page = Tables((report / "index.html").read_text())
    distinct = truth["distinct"].values()
    total_ms = sum(r["duration_ms"] for r in distinct)
    per_item = _sum(distinct, lambda r: r["item_id"])
    per_license = _sum(distinct, lambda r: r["license_spdx"])
    per_config = _sum(truth["rows"], lambda r: r["config"])
    s = audit["summary"]
    for key, want in (("items_seen", truth["items"]), ("items_accepted", truth["accepted"]),
                      ("items_rejected", truth["rejected"]),
                      ("clips_in_release", len(truth["distinct"]))):
        assert s[key] == want == int(page.totals[key]), key
    for key, want in (("hours_downloaded", truth["hours_downloaded"]),
                      ("hours_in_release", total_ms / 3.6e6)):
        shown(str(s[key]), want, places=4)
        shown(page.totals[key], want, places=4)
    assert s["rejections_by_reason"] == truth["reasons"]
    for spdx, hours in s["hours_by_license"].items():
        shown(str(hours), per_license.get(spdx, {"ms": 0})["ms"] / 3.6e6, places=4)
    assert set(per_license) <= set(s["hours_by_license"])
    # per item: the JSON and the HTML's "Every item" table
    items = {r["item_id"]: r for r in audit["items"]}
    assert {i: r["clips_used"] for i, r in items.items() if r["clips_used"]} == \
        {i: e["clips"] for i, e in per_item.items()}
    for i, e in per_item.items():
        shown(str(items[i]["hours_used"]), e["ms"] / 3.6e6, places=4)
    every_item = next(t for t in page.tables if any(len(row) == 7 for row in t))
    html_clips = {row[0]["code"][0]: int(row[5]["text"]) for row in every_item if row}
    assert {i: n for i, n in html_clips.items() if n} == {i: e["clips"]
                                                          for i, e in per_item.items()}
    # per subset: each config its own rows; the microset a sample of clean, not added
    subsets = {x["name"]: x for x in audit["subsets"]}
    assert set(subsets) == set(per_config)
    for name, e in per_config.items():
        assert subsets[name]["clips"] == e["clips"], name
        shown(str(subsets[name]["hours"]), e["ms"] / 3.6e6, places=4)
    assert sum(x["clips"] for x in subsets.values()) > len(truth["distinct"])  # the sample
    assert subsets["microset"]["sample_of"] == ["clean"]
    micro = {r["id"] for r in truth["rows"] if r["config"] == "microset"}
    assert micro and micro <= {r["id"] for r in truth["rows"] if r["config"] == "clean"}
    subset_table = next(t for t in page.tables if any(len(row) == 5 for row in t))
    for row in subset_table:
        if not row:
            continue
        name = row[0]["text"].split("a sample of")[0].strip()
        assert int(row[1]["text"]) == per_config[name]["clips"], name
        shown(row[2]["text"], per_config[name]["ms"] / 3.6e6)
        assert ("a sample of clean" in row[0]["text"]) == (name == "microset")


def _md_table(text: str, first: str) -> list[list[str]]:
    """The rows of the markdown table whose header starts with ``| first |``."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"| {first} |"))
    out = []
    for ln in lines[start:]:
        if not ln.startswith("|"):
            break
        out.append([c.strip() for c in ln.strip().strip("|").split("|")])
    return [out[0]] + out[2:]  # the header, then the rows (not the --- line)


def test_the_data_card_and_release_json_agree_with_the_shards(demo, truth):
    rel = demo["release"]
    card = (rel / "README.md").read_text()
    meta = json.loads((rel / "release.json").read_text())
    distinct = list(truth["distinct"].values())
    total_ms = sum(r["duration_ms"] for r in distinct)
    items = {(r["source"], r["item_id"]) for r in distinct}
    m = re.search(r"(\d+) clips, ([\d.]+) hours from (\d+) source items", card)
    assert (int(m[1]), int(m[3])) == (len(distinct), len(items))
    shown(m[2], total_ms / 3.6e6)
    assert meta["totals"]["clips"] == len(distinct) and meta["totals"]["items"] == len(items)
    shown(str(meta["totals"]["hours"]), total_ms / 3.6e6, places=4)
    # per config and split: the card's table and release.json
    table = _md_table(card, "config")
    splits = [h.split(" (")[0] for h in table[0][3:]]
    by = _sum(truth["rows"], lambda r: (r["config"], r["split"]))
    for row in table[1:]:
        config = row[0].strip("`")
        for split, cell in zip(splits, row[3:], strict=True):
            e = by.get((config, split))
            if e is None:
                assert cell == "—", (config, split, cell)
                continue
            clips, hours = re.fullmatch(r"(\d+) / ([\d.]+) h", cell).groups()
            assert int(clips) == e["clips"], (config, split)
            shown(hours, e["ms"] / 3.6e6)
    for config, c in meta["configs"].items():
        e = _sum([r for r in truth["rows"] if r["config"] == config], lambda r: r["split"])
        assert c["rows"] == sum(x["clips"] for x in e.values()), config
        shown(str(c["hours"]), sum(x["ms"] for x in e.values()) / 3.6e6, places=4)
        assert set(c["splits"]) == set(e)
        for split, sv in c["splits"].items():
            assert sv["rows"] == e[split]["clips"]
            shown(str(sv["hours"]), e[split]["ms"] / 3.6e6, places=4)
            lic = _sum([r for r in truth["rows"] if (r["config"], r["split"]) == (config, split)],
                       lambda r: r["license_spdx"])
            assert {k: v["rows"] for k, v in sv["licenses"].items()} == \
                {k: v["clips"] for k, v in lic.items()}
    # per license and per source: each clip once
    per_license = _sum(distinct, lambda r: r["license_spdx"])
    rows = _md_table(card, "license")[1:]
    assert {r[0].strip("`") for r in rows} == set(per_license)
    for r in rows:
        e = per_license[r[0].strip("`")]
        assert (int(r[2]), int(r[3])) == (len(e["items"]), e["clips"]), r
        shown(r[4], e["ms"] / 3.6e6)
    per_source = _sum(distinct, lambda r: r["source"])
    for r in _md_table(card, "source")[1:]:
        assert int(r[1]) == len(per_source[r[0]]["items"])
        shown(r[2], per_source[r[0]]["ms"] / 3.6e6)
    # what went in and what was left out
    assert meta["inputs"] == {"clips": truth["clips"], "items": truth["items"]}
    assert meta["excluded"]["rejected"] == truth["tiers"]["rejected"]["clips"]
    assert meta["filter_config"]["clips_by_tier"] == {t: v["clips"] for t, v in
                                                      truth["tiers"].items() if v["clips"]}
    excluded = {r[0]: int(r[1]) for r in _md_table(card, "reason")[1:]}
    assert excluded["Rejected by the align stage's filters"] == \
        truth["tiers"]["rejected"]["clips"]
    dup = re.search(r"stored once: (\d+)", card)
    assert int(dup[1]) == meta["duplicates"]["downloads"] == truth["audio_duplicates"]


def test_every_export_json_agrees_with_the_release_and_its_own_files(demo, truth):
    clean = [r for r in truth["rows"] if r["config"] == "clean"]
    by_split = _sum(clean, lambda r: r["split"])
    by_license = _sum(clean, lambda r: r["license_spdx"])
    root = demo["workdir"] / "exports"
    for fmt in ("hf", "nemo", "lhotse"):
        record = json.loads((root / fmt / "export.json").read_text())
        assert record["configs"] == ["clean"] and record["from"] == "release"
        assert record["clips"] == len(clean), fmt
        shown(str(record["hours"]), sum(r["duration_ms"] for r in clean) / 3.6e6, places=4,
              slack=1e-5)
        assert {s: v["clips"] for s, v in record["splits"].items()} == \
            {s: e["clips"] for s, e in by_split.items()}
        for s, v in record["splits"].items():
            shown(str(v["hours"]), by_split[s]["ms"] / 3.6e6, places=4, slack=1e-5)
        assert {k: v["clips"] for k, v in record["licenses"].items()} == \
            {k: e["clips"] for k, e in by_license.items()}
    # what each export's own files hold
    hf = [r for p in sorted((root / "hf").rglob("*.parquet"))
          for r in pq.read_table(p, columns=["id"]).to_pylist()]
    assert sorted(r["id"] for r in hf) == sorted(r["id"] for r in clean)
    nemo = [json.loads(ln) for p in sorted((root / "nemo").rglob("*manifest.json"))
            for ln in p.read_text().splitlines() if ln.strip()]
    assert sorted(e["id"] for e in nemo) == sorted(r["id"] for r in clean)
    cuts = [json.loads(ln) for p in sorted((root / "lhotse").rglob("cuts*.jsonl.gz"))
            for ln in gzip.decompress(p.read_bytes()).decode().splitlines() if ln.strip()]
    assert len(cuts) == len(clean)
