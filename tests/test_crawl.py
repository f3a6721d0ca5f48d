"""End-to-end crawls of the sample archive: outcomes, resumption, increments, faults."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import md5

from crawler.sample_archive.build import build
from crawler.sample_archive.server import FaultPlan, serving
from manifests.catalog import Catalog

EVERYTHING = "identifier:*"
REPO = Path(__file__).resolve().parents[1]


def crawl_cmd(workdir: Path, base_url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "speechcrawl.cli", "crawl", "archive_org", "--workdir",
            str(workdir), "--base-url", base_url, "--query", EVERYTHING, *extra]


def run_crawl(workdir: Path, base_url: str, *extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run(crawl_cmd(workdir, base_url, *extra), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr + _log_tail(workdir)
    return result


def _log_tail(workdir: Path) -> str:
    log = workdir / "crawl.log"
    return log.read_text()[-3000:] if log.exists() else ""


def db(workdir: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{workdir / 'catalog.sqlite'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def file_states(workdir: Path) -> set[tuple]:
    with db(workdir) as conn:
        return {(r["item_id"], r["name"], r["status"]) for r in conn.execute("SELECT * FROM files")}


@pytest.fixture(scope="module")
def crawled(base_url, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("crawl")
    run_crawl(workdir, base_url)
    return workdir


@pytest.fixture
def own_archive(archive, tmp_path) -> Path:
    """A private copy of the sample archive that a test may change."""
    return Path(shutil.copytree(archive, tmp_path / "archive"))


# -- outcomes ----------------------------------------------------------------------------------

def test_accepted_items_are_exactly_the_permissive_ones(crawled, defects):
    rows = pq.read_table(crawled / "manifests" / "items.parquet").to_pylist()
    assert {r["item_id"] for r in rows} == set(defects["licenses"])
    for r in rows:
        want = defects["licenses"][r["item_id"]]
        assert (r["decision"], r["license_spdx"], r["license_family"]) == (
            want["decision"], want["spdx"], want["family"]), r["item_id"]
        if r["decision"] == "rejected":
            assert r["reason"] and want["reason"] in r["reason"]
        else:
            assert r["reason"] is None
        evidence = json.loads(r["license_evidence"])
        if want["raw"] is not None:
            assert evidence and evidence[0]["field"] == "licenseurl" and evidence[0]["url"]


def test_items_parquet_has_the_design_columns(crawled):
    table = pq.read_table(crawled / "manifests" / "items.parquet")
    assert {"source", "item_id", "url", "title", "creator", "license_raw", "license_url",
            "license_spdx", "license_family", "decision", "reason",
            "crawled_at"} <= set(table.column_names)
    meta = table.schema.metadata
    assert meta[b"speechcrawl.schema_version"] and meta[b"speechcrawl.code_version"]
    assert str(table.schema.field("crawled_at").type) == "timestamp[ms, tz=UTC]"


def check_crawl_defects(workdir: Path, archive: Path, defects: dict) -> int:
    """Assert every crawl-stage defect of ``defects`` reached its outcome; return how many."""
    with db(workdir) as conn:
        files = {(r["item_id"], r["name"]): r for r in conn.execute("SELECT * FROM files")}
        pairs = {(r["item_id"], r["audio"]): r for r in conn.execute("SELECT * FROM pairs")}
        items = {r["item_id"]: r for r in conn.execute("SELECT * FROM items")}
    checked = 0
    for d in defects["defects"]:
        expect, item = d["expect"], d["item_id"]
        if expect["stage"] != "crawl":
            continue
        checked += 1
        f = files.get((item, d["file"]))
        for audio, transcript in expect.get("pair", {}).items():
            p = pairs[(item, audio)]
            assert p["transcript"] == transcript and p["status"] == "paired", (d, dict(p))
        if d["kind"] == "multi_file_pairing":
            for audio, transcript in expect["pairs"].items():
                p = pairs[(item, audio)]
                assert p["transcript"] == transcript and p["status"] == "paired"
        elif "file" in expect and expect["file"] in ("skipped", "corrupt"):
            assert f["status"] == expect["file"], (d, dict(f))
            assert expect["reason"] in f["reason"], (d, dict(f))
            assert not any(p["transcript"] == d["file"] for p in pairs.values()), d
        elif expect.get("file") == "duplicate":
            assert f["status"] == "duplicate" and f["duplicate_of"] == expect["duplicate_of"]
            assert not (workdir / "raw" / "archive_org" / item / d["file"]).exists()
        elif expect.get("flag") == "asr_caption":
            assert f["asr"] == 1 and f["asr_reason"]
            pair = next(p for p in pairs.values() if p["transcript"] == d["file"])
            assert "asr" in pair["reason"]
        elif expect.get("item") == "rejected":
            assert items[item]["decision"] == "rejected"
            assert expect["reason"] in items[item]["reason"], (d, items[item]["reason"])
            mine = [r for (i, _), r in files.items() if i == item]
            assert all(r["status"] != "downloaded" and r["attempts"] == 0 for r in mine), d
        elif expect.get("length") == "clock":
            truth = json.loads((archive / "truth" / item / f"{d['file']}.json").read_text())
            assert f["length_s"] is not None and abs(f["length_s"] - truth["duration"]) <= 1.0
            assert f["status"] == "downloaded", dict(f)
        else:
            pytest.fail(f"no check for crawl-stage defect {d['kind']}")
    return checked


def test_every_crawl_stage_defect_reaches_its_outcome(crawled, archive, defects):
    assert check_crawl_defects(crawled, archive, defects) >= 8


def test_archive_org_behaviours_planted_in_the_sample_archive_reach_their_outcomes(
        tmp_path_factory):
    """The plants at indices 24-29 (dark, access-restricted, mm:ss lengths, a source:metadata
    file dressed as a transcript, malformed file entries, files null), built alone."""
    archive = build(tmp_path_factory.mktemp("plants") / "a", only=list(range(24, 30)),
                    workers=2)
    defects = json.loads((archive / "defects.json").read_text())
    workdir = tmp_path_factory.mktemp("plants-crawl")
    dark = next(d["item_id"] for d in defects["defects"] if d["kind"] == "dark_item")
    with serving(archive) as url:
        run_crawl(workdir, url)
        # The fake answers as archive.org does for a withdrawn item.
        with urllib.request.urlopen(f"{url}/metadata/{dark}", timeout=30) as r:
            answer = json.loads(r.read())
        assert answer["is_dark"] is True and answer["metadata"]["identifier"] == dark
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}/download/{dark}/statement.mp3", timeout=30)
        assert refused.value.code == 403
    assert check_crawl_defects(workdir, archive, defects) == \
        sum(d["expect"]["stage"] == "crawl" for d in defects["defects"]) == 8
    rows = pq.read_table(workdir / "manifests" / "items.parquet").to_pylist()
    assert {r["item_id"] for r in rows} == set(defects["licenses"])  # every item recorded


def test_downloads_are_exactly_the_verified_files(crawled, archive):
    raw = crawled / "raw"
    on_disk = {str(p.relative_to(crawled)) for p in raw.rglob("*") if p.is_file()}
    with db(crawled) as conn:
        rows = conn.execute("SELECT * FROM files WHERE status = 'downloaded'").fetchall()
    assert on_disk == {r["local_path"] for r in rows}
    for r in rows:
        assert md5(crawled / r["local_path"]) == r["md5"] == \
            md5(archive / "items" / r["item_id"] / r["name"])
    assert not [p for p in on_disk if p.endswith(".part")]


def test_second_crawl_of_an_unchanged_source_downloads_nothing(crawled, base_url, tmp_path):
    workdir = Path(shutil.copytree(crawled, tmp_path / "again"))
    before = {p: p.stat().st_mtime_ns for p in (workdir / "raw").rglob("*") if p.is_file()}
    pairs_sql = "SELECT item_id, audio, transcript, status, reason FROM pairs ORDER BY 1, 2"
    with db(workdir) as conn:
        pairs_before = [tuple(r) for r in conn.execute(pairs_sql)]
    assert any(p[3] == "unusable" for p in pairs_before)  # the planted bad md5
    run_crawl(workdir, base_url)
    with db(workdir) as conn:
        assert [tuple(r) for r in conn.execute(pairs_sql)] == pairs_before  # verdicts kept
    with db(workdir) as conn:
        job = conn.execute("SELECT * FROM jobs ORDER BY job_id DESC LIMIT 1").fetchone()
        changes = conn.execute("SELECT COUNT(*) FROM changes WHERE job_id = ?",
                               (job["job_id"],)).fetchone()[0]
    stats = json.loads(job["stats"])
    assert job["status"] == "finished" and changes == 0
    assert "bytes_downloaded" not in stats and "files_downloaded" not in stats
    assert before == {p: p.stat().st_mtime_ns for p in (workdir / "raw").rglob("*") if p.is_file()}


def test_changes_at_the_source_are_recorded_with_both_versions(own_archive, defects, tmp_path):
    items = sorted(defects["licenses"])
    accepted = [i for i in items if defects["licenses"][i]["decision"] == "accepted"]
    relicensed, edited, removed = accepted[0], accepted[1], accepted[2]
    workdir = tmp_path / "w"
    with serving(own_archive) as url:
        run_crawl(workdir, url)
        # A license change, an edited transcript, an item gone, an item new.
        meta_path = own_archive / "items" / relicensed / "_meta.json"
        meta = json.loads(meta_path.read_text())
        old_license = meta["metadata"]["licenseurl"]
        meta["metadata"]["licenseurl"] = "https://creativecommons.org/licenses/by-nc/4.0/"
        meta_path.write_text(json.dumps(meta))
        meta_path = own_archive / "items" / edited / "_meta.json"
        meta = json.loads(meta_path.read_text())
        srt_entry = next(f for f in meta["files"] if f["name"].endswith(".srt"))
        srt_path = own_archive / "items" / edited / srt_entry["name"]
        srt_path.write_text(srt_path.read_text().replace(" the ", " THE ", 1))
        data = srt_path.read_bytes()
        srt_entry.update(size=str(len(data)), md5=hashlib.md5(data).hexdigest())
        meta_path.write_text(json.dumps(meta))
        shutil.rmtree(own_archive / "items" / removed)
        run_crawl(workdir, url)
    with db(workdir) as conn:
        changes = [(r["item_id"], r["what"], r["old"], r["new"])
                   for r in conn.execute("SELECT * FROM changes WHERE job_id = 2")]
        versions = conn.execute("SELECT * FROM item_versions WHERE item_id = ? ORDER BY version",
                                (relicensed,)).fetchall()
        srt_row = conn.execute("SELECT * FROM files WHERE item_id = ? AND name = ?",
                               (edited, srt_entry["name"])).fetchone()
    license_change = next(c for c in changes if c[0] == relicensed and c[1] == "license changed")
    assert json.dumps(old_license) in license_change[2] and "CC-BY-NC-4.0" in license_change[3]
    assert (relicensed, "decision changed", "accepted", "rejected") in changes
    assert len(versions) == 2 and versions[0]["license_spdx"] != versions[1]["license_spdx"]
    assert json.loads(versions[0]["metadata"])["licenseurl"] == old_license
    assert any(c[0] == edited and c[1] == f"file changed: {srt_entry['name']}" for c in changes)
    assert srt_row["status"] == "downloaded" and md5(workdir / srt_row["local_path"]) == \
        srt_entry["md5"]
    assert (removed, "item gone from the source", None, None) in changes
    rows = {r["item_id"]: r for r in
            pq.read_table(workdir / "manifests" / "items.parquet").to_pylist()}
    assert rows[removed]["gone_at"] is not None and rows[relicensed]["decision"] == "rejected"


def test_a_crawl_through_a_faulty_server_ends_like_a_clean_one(crawled, archive, tmp_path):
    faults = FaultPlan(rate=0.5, per_path=2, seed=7, drip_bytes_per_s=5_000_000)
    workdir = tmp_path / "faulty"
    with serving(archive, faults=faults) as url:
        run_crawl(workdir, url)
    kinds = {k for _, k in faults.injected}
    assert {"429", "503", "reset", "short"} <= kinds
    assert file_states(workdir) == file_states(crawled)
    with db(workdir) as conn:
        for r in conn.execute("SELECT * FROM files WHERE status = 'downloaded'"):
            assert md5(workdir / r["local_path"]) == r["md5"]
    assert not list(workdir.rglob("*.part"))


def _kill_when(cmd: list[str], ready, timeout: float = 120) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if ready():
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _downloaded(workdir: Path) -> int:
    try:
        with db(workdir) as conn:
            return conn.execute("SELECT COUNT(*) FROM files WHERE status = 'downloaded'"
                                ).fetchone()[0]
    except sqlite3.Error:
        return 0


def test_kill_9_at_any_point_then_resume(crawled, archive, tmp_path):
    """SIGKILL during discovery, mid-download and later; the resumed crawl is complete."""
    workdir = tmp_path / "killed"
    faults = FaultPlan(rate=1.0, kinds=("drip",), per_path=1, drip_bytes_per_s=400_000)
    with serving(archive, faults=faults) as url:
        cmd = crawl_cmd(workdir, url)
        _kill_when(cmd, lambda: (workdir / "catalog.sqlite").exists())
        _kill_when(cmd, lambda: any(p.stat().st_size > 0 for p in workdir.rglob(".*.part")))
        parts_after_kill = list(workdir.rglob(".*.part"))
        _kill_when(cmd, lambda: _downloaded(workdir) >= 8)
        run_crawl(workdir, url)
    assert parts_after_kill, "the kill was meant to land mid-download"
    assert file_states(workdir) == file_states(crawled)
    with db(workdir) as conn:
        rows = conn.execute("SELECT * FROM files WHERE status = 'downloaded'").fetchall()
        added = conn.execute("SELECT item_id, COUNT(*) n FROM changes WHERE what = 'item added' "
                             "GROUP BY item_id").fetchall()
    for r in rows:
        assert md5(workdir / r["local_path"]) == r["md5"]
    on_disk = {str(p.relative_to(workdir)) for p in (workdir / "raw").rglob("*") if p.is_file()}
    assert on_disk == {r["local_path"] for r in rows}  # no strays, no leftovers, no .part
    assert all(r["n"] == 1 for r in added)


def test_scrapy_crawl_runs_the_same_spider(base_url, tmp_path):
    listed = subprocess.run([sys.executable, "-m", "scrapy", "list"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert listed.stdout.split() == ["archive_org"]
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "archive_org", "-a", f"workdir={tmp_path}",
         "-a", f"base_url={base_url}", "-a", f"query={EVERYTHING}", "-a", "max_items=2",
         "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=0", "-s", "LOG_LEVEL=WARNING"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert pq.read_table(tmp_path / "manifests" / "items.parquet").num_rows == 2


def test_an_unreachable_source_fails_with_one_line(tmp_path):
    result = subprocess.run(crawl_cmd(tmp_path, "http://127.0.0.1:9", "--set",
                                      "RETRY_TIMES=0"), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    # found before Scrapy starts (no minutes of retries): one line naming the host and why
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(
        "speechcrawl crawl: crawl failed: cannot reach 127.0.0.1: connection refused on port 9")


def test_politeness_defaults_for_the_real_site(tmp_path):
    from crawler.run import crawl_settings
    from crawler.spiders.archive_org import ArchiveOrgSpider

    s = crawl_settings(tmp_path, "https://archive.org")
    ArchiveOrgSpider.update_settings(s)
    assert s.getbool("ROBOTSTXT_OBEY") and s.getbool("AUTOTHROTTLE_ENABLED")
    assert s.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 2
    assert s.getint("SPEECHCRAWL_DOWNLOADS_PER_HOST") == 2
    assert "contact:" in s.get("USER_AGENT")
    relaxed = crawl_settings(tmp_path, "http://127.0.0.1:8765")
    assert not relaxed.getbool("AUTOTHROTTLE_ENABLED") and relaxed.getfloat("DOWNLOAD_DELAY") == 0


# -- archive.org as it really is: a programmable stand-in for the search and metadata APIs -------

CC0 = "http://creativecommons.org/publicdomain/zero/1.0/"


class FakeArchiveOrg:
    """archive.org's search and metadata answers, programmable per test, on 127.0.0.1.

    Scrape pages of ``page_size`` with the offset as cursor; ``scrape_errors[cursor]`` answers
    that many ``{"error": …}`` first (``-1``: always; ``None`` key: the first page);
    ``adv_empty_from``: advanced search pages from this one are empty whatever ``numFound``
    says; ``metadata[id]``: the answer (a JSON-able value, or ``(status, bytes)``); ``blobs``:
    bytes served under /download/<id>/<name>. Every request is logged."""

    def __init__(self, ids: list[str], page_size: int = 2):
        self.ids, self.page_size = list(ids), page_size
        self.scrape_errors: dict = {}
        self.adv_empty_from: int | None = None
        self.metadata: dict = {}
        self.blobs: dict[tuple[str, str], bytes] = {}
        self.requests: list[tuple[str, dict]] = []

    def good(self, identifier: str, files=None) -> dict:
        return {"metadata": {"identifier": identifier, "title": identifier, "licenseurl": CC0,
                             "mediatype": "audio"}, "files": files or []}

    def answer(self, path: str, params: dict):
        self.requests.append((path, params))
        if path == "/services/search/v1/scrape":
            cursor = params.get("cursor")
            left = self.scrape_errors.get(cursor, 0)
            if left:
                self.scrape_errors[cursor] = left - 1 if left > 0 else left
                return 200, {"error": "The search engine timed out: try again"}
            start = int(cursor or 0)
            body = {"items": [{"identifier": i} for i in self.ids[start:start + self.page_size]],
                    "count": len(self.ids[start:start + self.page_size]), "total": len(self.ids)}
            if start + self.page_size < len(self.ids):
                body["cursor"] = str(start + self.page_size)
            return 200, body
        if path == "/advancedsearch.php":
            rows, page = int(params["rows"]), int(params["page"])
            start = (page - 1) * rows
            docs = [] if self.adv_empty_from and page >= self.adv_empty_from else \
                [{"identifier": i} for i in self.ids[start:start + rows]]
            return 200, {"responseHeader": {"status": 0},
                         "response": {"numFound": len(self.ids), "start": start, "docs": docs}}
        if path.startswith("/metadata/"):
            identifier = path.removeprefix("/metadata/")
            found = self.metadata.get(identifier, self.good(identifier))
            return found if isinstance(found, tuple) else (200, found)
        if path.startswith("/download/"):
            identifier, name = path.removeprefix("/download/").split("/", 1)
            blob = self.blobs.get((identifier, name))
            return (200, blob) if blob is not None else (404, b"")
        return 404, b""

    @contextlib.contextmanager
    def serving(self):
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                url = urllib.parse.urlsplit(self.path)
                params = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
                status, body = fake.answer(urllib.parse.unquote(url.path), params)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()

    def searches(self) -> list[tuple[str, str | None]]:
        return [(p.rsplit("/", 1)[-1], q.get("cursor") or q.get("page"))
                for p, q in self.requests if "search" in p]


def last_job(workdir: Path) -> dict:
    with Catalog.reader(workdir / "catalog.sqlite") as catalog:
        return catalog.last_job()


def changes(workdir: Path, what: str) -> list[str]:
    with db(workdir) as conn:
        return [r["item_id"] for r in conn.execute("SELECT * FROM changes WHERE what = ?",
                                                    (what,))]


def items_by_id(workdir: Path) -> dict[str, sqlite3.Row]:
    with db(workdir) as conn:
        return {r["item_id"]: r for r in conn.execute("SELECT * FROM items")}


def test_malformed_metadata_never_loses_an_item(archive, tmp_path):
    """Every identifier discovery returns reaches the catalog, with a reason when its metadata
    is malformed; bad file entries are skipped with reasons while good files still download."""
    item = next(p for p in (archive / "items").iterdir() if (p / "broadcast.mp3").exists())
    audio, srt_bytes = (item / "broadcast.mp3").read_bytes(), (item / "broadcast.srt").read_bytes()

    def entry(name, data, fmt):
        return {"name": name, "format": fmt, "source": "original", "size": str(len(data)),
                "md5": hashlib.md5(data).hexdigest()}

    fake = FakeArchiveOrg([])
    good_files = [entry("talk.mp3", audio, "VBR MP3"), entry("talk.srt", srt_bytes, "SubRip")]
    bad_files = [{"name": 7, "format": "VBR MP3", "size": "10"},
                 {"name": "x.srt", "format": "SubRip", "md5": ["a"]}, {"format": "SubRip"},
                 "junk", None, {"name": "y.mp3", "format": "VBR MP3", "size": "big"},
                 {"name": "z.mp3", "format": "VBR MP3", "length": "1e12", "size": "-1"}]
    base = fake.good("x")["metadata"]
    plants = {  # identifier → (answer, the reason expected, or None when accepted)
        "files-null": ({"metadata": base, "files": None}, "malformed metadata: files is null"),
        "files-missing": ({"metadata": base}, "files is missing"),
        "files-dict": ({"metadata": base, "files": {"a": 1}}, "files is a dict"),
        "files-string": ({"metadata": base, "files": "talk.mp3"}, "files is a str"),
        "metadata-list": ({"metadata": ["x"], "files": []}, "metadata is a list"),
        "metadata-null": ({"metadata": None, "files": []}, "metadata is missing"),
        "not-json": ((200, b"<html>busy</html>"), "metadata unavailable: the answer is not JSON"),
        "json-list": ([1, 2], "metadata unavailable: the answer is a list"),
        "empty": ({}, "metadata unavailable: empty answer"),
        "http-404": ((404, b"gone"), "metadata unavailable: HTTP 404"),
        "dark": ({"is_dark": True, "metadata": base, "files": good_files}, "dark item"),
        "dark-string": ({"is_dark": "true", "metadata": base, "files": good_files},
                        "dark item"),
        "restricted": ({"metadata": {**base, "access-restricted-item": "true"},
                        "files": good_files}, "access-restricted item"),
        "restricted-list": ({"metadata": {**base, "access-restricted-item": ["TRUE"]},
                             "files": good_files}, "access-restricted item"),
        # A dark item's answer may carry nothing but the flag and the server bookkeeping.
        "dark-bare": ({"is_dark": True, "created": 1700000000, "server": "ia800000"},
                      "dark item"),
        "bad-files": ({"metadata": {**base, "title": {"en": "t"}, "creator": 42},
                       "files": good_files + bad_files}, None),
        "title-list": ({"metadata": {**base, "title": ["First", "Second"]}, "files": []}, None),
    }
    for identifier, (answer, _) in plants.items():
        fake.metadata[identifier] = answer
        fake.ids.append(identifier)
    for identifier in ("dark", "dark-string", "restricted", "restricted-list", "bad-files"):
        fake.blobs[(identifier, "talk.mp3")] = audio
        fake.blobs[(identifier, "talk.srt")] = srt_bytes
    fake.ids.sort()
    # A licenseurl of the wrong type: recorded, never a crash.
    fake.metadata["license-int"] = {"metadata": {**base, "licenseurl": 4}, "files": []}
    fake.ids.append("license-int")
    with fake.serving() as url:
        run_crawl(tmp_path, url)
    items = items_by_id(tmp_path)
    assert set(items) == set(fake.ids)
    for identifier, (_, reason) in plants.items():
        row = items[identifier]
        if reason is None:
            assert row["decision"] == "accepted", (identifier, dict(row))
        else:
            assert row["decision"] == "rejected" and reason in row["reason"], dict(row)
    assert items["license-int"]["decision"] == "rejected" and items["license-int"]["reason"]
    assert items["bad-files"]["title"] is None and items["bad-files"]["creator"] == "42"
    assert items["title-list"]["title"] == "First"
    with db(tmp_path) as conn:
        rows = {(r["item_id"], r["name"]): r for r in conn.execute("SELECT * FROM files")}
    for identifier in ("dark", "dark-string", "restricted", "restricted-list"):  # no fetch
        for name in ("talk.mp3", "talk.srt"):
            r = rows[(identifier, name)]
            assert r["status"] == "skipped" and r["attempts"] == 0 and not r["local_path"]
        assert not any(p == f"/download/{identifier}/talk.mp3" for p, _ in fake.requests)
    assert rows[("bad-files", "talk.mp3")]["status"] == "downloaded"
    assert rows[("bad-files", "talk.srt")]["status"] == "downloaded"
    bad = {n: r["reason"] for (i, n), r in rows.items() if i == "bad-files" and
           n not in ("talk.mp3", "talk.srt")}
    assert all(reason.startswith("malformed file entry") for reason in bad.values()), bad
    assert {"x.srt", "y.mp3", "z.mp3"} <= set(bad) and len(bad) == len(bad_files)
    job = last_job(tmp_path)
    assert job["status"] == "finished", dict(job)

    # The next crawl cannot read a known item: it keeps what was stored, and says so.
    fake.metadata["title-list"] = (503, b"")
    fake.requests.clear()
    with fake.serving() as url:
        run_crawl(tmp_path, url, "--set", "RETRY_TIMES=0")
    assert items_by_id(tmp_path)["title-list"]["decision"] == "accepted"
    assert "title-list" in changes(tmp_path, "metadata unreadable")
    assert not changes(tmp_path, "item gone from the source")


def test_a_scrape_failure_mid_way_resumes_from_the_failed_cursor(tmp_path):
    fake = FakeArchiveOrg([f"item-{i}" for i in range(6)])
    fake.scrape_errors["2"] = 2  # the second page fails twice, then answers
    with fake.serving() as url:
        run_crawl(tmp_path, url)
    assert fake.searches() == [("scrape", None), ("scrape", "2"), ("scrape", "2"),
                               ("scrape", "2"), ("scrape", "4")]
    assert set(items_by_id(tmp_path)) == set(fake.ids)
    assert last_job(tmp_path)["status"] == "finished"

    # Failing for good mid-way: no restart at page 1, no fallback, nothing marked gone.
    fake.scrape_errors["2"] = -1
    fake.requests.clear()
    with fake.serving() as url:
        run_crawl(tmp_path, url)
    assert fake.searches() == [("scrape", None)] + [("scrape", "2")] * 3
    job = last_job(tmp_path)
    assert job["status"] == "incomplete"
    assert "cursor 2" in job["stats"]["discovery_incomplete"]
    assert not changes(tmp_path, "item gone from the source")


def test_an_empty_advanced_search_page_before_numfound_is_not_the_end(tmp_path):
    fake = FakeArchiveOrg([f"item-{i}" for i in range(6)])
    with fake.serving() as url:
        run_crawl(tmp_path, url)
    fake.scrape_errors[None] = -1  # the Scrape API is down: advanced search it is
    fake.adv_empty_from = 2
    fake.requests.clear()
    with fake.serving() as url:
        run_crawl(tmp_path, url, "--set", "SPEECHCRAWL_ADVANCEDSEARCH_ROWS=2")
    assert [s for s in fake.searches() if s[0] != "scrape"] == [
        ("advancedsearch.php", "1"), ("advancedsearch.php", "2")]
    job = last_job(tmp_path)
    assert job["status"] == "incomplete"
    assert "empty at 2 of 6" in job["stats"]["discovery_incomplete"]
    assert not changes(tmp_path, "item gone from the source")


def test_advanced_search_stops_at_its_result_window_without_marking_anything_gone(
        crawled, archive, tmp_path):
    """The sample archive's advanced search answers RANGE_OUT_OF_BOUNDS past its window (set
    small here; 10,000 on archive.org): discovery is incomplete, not finished."""
    workdir = Path(shutil.copytree(crawled, tmp_path / "w"))
    with serving(archive, search_window=4) as url:
        run_crawl(workdir, url, "--set", "SPEECHCRAWL_SCRAPE_PAGE=50",  # refused: 100-10000
                  "--set", "SPEECHCRAWL_ADVANCEDSEARCH_ROWS=2")
    job = last_job(workdir)
    stats = job["stats"]
    assert job["status"] == "incomplete" and "RANGE_OUT_OF_BOUNDS" in \
        stats["discovery_incomplete"]
    assert stats["items_discovered"] == 4
    assert not changes(workdir, "item gone from the source")


def test_a_sudden_large_drop_is_refused_and_a_small_one_is_recorded(tmp_path):
    fake = FakeArchiveOrg([f"item-{i:02d}" for i in range(10)], page_size=100)
    with fake.serving() as url:
        run_crawl(tmp_path, url)
        fake.ids = fake.ids[:7]  # 30 % gone at once: an index hiccup, not a mass deletion
        run_crawl(tmp_path, url)
        job = last_job(tmp_path)
        assert job["status"] == "suspicious" and job["stats"]["gone_refused"] == 3
        assert not changes(tmp_path, "item gone from the source")
        run_crawl(tmp_path, url, "--set", "SPEECHCRAWL_MAX_GONE_FRACTION=0.5")
        assert sorted(changes(tmp_path, "item gone from the source")) == \
            ["item-07", "item-08", "item-09"]
        assert last_job(tmp_path)["status"] == "finished"


# -- a full disk ---------------------------------------------------------------------------------

@contextlib.contextmanager
def small_tmpfs(path: Path, size: str):
    """A tmpfs of ``size`` at ``path`` (needs root and mount permission); None when not
    allowed here."""
    path.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, timeout=30).returncode == 0
    try:
        yield path if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def _limit_file_size(limit: int):
    def apply():  # in the child: writes past ``limit`` fail with EFBIG instead of killing it
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def _assert_failed_consistently(workdir: Path, result) -> None:
    assert result.returncode != 0, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert "could not write" in last and any(
        why in last for why in ("No space left", "disk is full", "too large", "I/O error")), last
    assert "WRITES FAILED" in result.stderr  # the progress line says so too
    with db(workdir) as conn:  # what was written is consistent: verified files only
        rows = conn.execute("SELECT * FROM files WHERE status = 'downloaded'").fetchall()
        job = conn.execute("SELECT * FROM jobs ORDER BY job_id DESC LIMIT 1").fetchone()
    assert job["status"] in ("failed", "running"), dict(job)  # "running": even that write failed
    for r in rows:
        assert md5(workdir / r["local_path"]) == r["md5"]


def test_a_disk_full_crawl_exits_non_zero_and_the_next_run_completes(crawled, archive, tmp_path):
    with small_tmpfs(tmp_path / "disk", "1500k") as disk:
        if disk is None:
            pytest.skip("mount -t tmpfs is not permitted here; the RLIMIT_FSIZE test covers "
                        "the same path")
        workdir = disk / "w"
        with serving(archive) as url:
            result = subprocess.run(crawl_cmd(workdir, url), capture_output=True, text=True,
                                    timeout=600)
            _assert_failed_consistently(workdir, result)
            remount = subprocess.run(["mount", "-o", "remount,size=64m", str(disk)],
                                     capture_output=True, timeout=30)
            assert remount.returncode == 0, remount.stderr
            run_crawl(workdir, url)
        assert file_states(workdir) == file_states(crawled)
        assert last_job(workdir)["status"] == "finished"
        assert not list(workdir.rglob("*.part"))


def test_a_crawl_whose_writes_fail_exits_non_zero_and_the_next_run_completes(
        crawled, archive, tmp_path):
    """The same with RLIMIT_FSIZE (no mount needed): every write past 400 kB fails (EFBIG)."""
    workdir = tmp_path / "w"
    with serving(archive) as url:
        result = subprocess.run(crawl_cmd(workdir, url), capture_output=True, text=True,
                                timeout=600, preexec_fn=_limit_file_size(400_000))
        _assert_failed_consistently(workdir, result)
        run_crawl(workdir, url)
    assert file_states(workdir) == file_states(crawled)
    assert not list(workdir.rglob("*.part"))


def test_an_oversized_metadata_answer_is_refused_and_recorded(tmp_path):
    """A metadata answer is parsed on the reactor thread: one over the limit is not read."""
    fake = FakeArchiveOrg(["huge", "small"])
    fake.metadata["huge"] = {**fake.good("huge"), "files": [
        {"name": f"f{i:06d}.xml", "format": "Metadata", "source": "metadata"}
        for i in range(20_000)]}  # about 1.2 MB
    with fake.serving() as url:
        run_crawl(tmp_path, url, "--set", "SPEECHCRAWL_METADATA_MAX_BYTES=500000")
    items = items_by_id(tmp_path)
    assert items["small"]["decision"] == "accepted"
    assert items["huge"]["decision"] == "rejected"
    assert "metadata unavailable" in items["huge"]["reason"] and \
        "500000" in items["huge"]["reason"]


def test_search_results_without_a_usable_identifier_leave_discovery_incomplete(tmp_path):
    """A result whose identifier is a number, missing, empty or absurdly long is counted and
    skipped; the rest are crawled; and since that result might be a known item, nothing is
    marked gone."""
    fake = FakeArchiveOrg(["a", "b", "c"], page_size=100)
    with fake.serving() as url:
        run_crawl(tmp_path, url)
        fake.ids = ["a", 5, None, "", "x" * 5000, "b"]  # "c" is not found any more
        run_crawl(tmp_path, url)
    job = last_job(tmp_path)
    stats = job["stats"]
    assert job["status"] == "incomplete" and stats["discovery_malformed"] == 4
    assert "identifier" in stats["discovery_incomplete"]
    assert set(items_by_id(tmp_path)) == {"a", "b", "c"}
    assert not changes(tmp_path, "item gone from the source")


def test_an_item_with_hundreds_of_files_is_paired_whole(tmp_path):
    """Pairing runs in a worker thread (PairingPipeline) by the source's rule: every audio file
    of a 300 + 300 item reaches the catalog with its own transcript."""
    fake = FakeArchiveOrg(["big"])
    files = [{"name": f"Talk {i:03d}.mp3", "format": "VBR MP3", "source": "original",
              "size": "1000", "md5": f"{i:032x}"} for i in range(300)]
    files += [{"name": f"talk_{i:03d}.en.srt", "format": "SubRip", "source": "original",
               "size": "100", "md5": f"{i + 1000:032x}"} for i in range(300)]
    fake.metadata["big"] = fake.good("big", files)
    with fake.serving() as url:
        run_crawl(tmp_path, url, "--set", "SPEECHCRAWL_DOWNLOAD_RETRIES=1")
    with db(tmp_path) as conn:
        pairs = {r["audio"]: r["transcript"] for r in conn.execute("SELECT * FROM pairs")}
    assert pairs == {f"Talk {i:03d}.mp3": f"talk_{i:03d}.en.srt" for i in range(300)}
