"""The catalog's bookkeeping: what a re-crawl fetches again, dedup, gone items."""

from __future__ import annotations

import sqlite3

import pytest

from manifests import catalog as cat


def item(item_id: str, license_spdx: str = "CC-BY-4.0", decision: str = "accepted",
         digest: str = "h1") -> dict:
    return {"source": "s", "item_id": item_id, "url": f"u/{item_id}", "title": "t",
            "creator": "c", "metadata": {"v": digest}, "metadata_hash": digest,
            "license_raw": "x", "license_url": None, "license_spdx": license_spdx,
            "license_family": "by", "license_evidence": [], "decision": decision,
            "reason": None}


def row(item_id: str, name: str, md5: str | None = "m1", status: str = cat.PENDING,
        reason: str | None = None, size: int = 10) -> cat.FileRow:
    return cat.FileRow("s", item_id, name, "audio", "VBR MP3", size, md5, 1.0, status, reason)


@pytest.fixture
def db(tmp_path):
    return cat.Catalog(tmp_path / "catalog.sqlite")


def sql(db: cat.Catalog, query: str, *params) -> list[sqlite3.Row]:
    """The raw tables, read past the catalog's API: what the tests check it against."""
    conn = sqlite3.connect(db.path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def names(rows):
    return [r.name for r in rows]


def test_a_file_skipped_at_selection_is_fetched_once_it_is_wanted(db):
    job = db.start_job("s", "b", "q")
    skipped = row("a", "a.mp3", status=cat.SKIPPED, reason="no transcript to pair with")
    assert names(db.record_item(item("a"), [skipped], [], job)) == []
    assert names(db.record_item(item("a", digest="h2"), [row("a", "a.mp3")], [], job)) == \
        ["a.mp3"]


def test_settled_files_are_not_fetched_again_unless_they_change(db):
    job = db.start_job("s", "b", "q")
    f = row("a", "a.mp3")
    assert names(db.record_item(item("a"), [f], [], job)) == ["a.mp3"]
    db.settle_download(f, "m1", "raw/s/a/a.mp3", 10, 1)
    assert db.record_item(item("a"), [row("a", "a.mp3")], [], job) == []
    # Content-refused files are settled too; a new size or md5 is a new file.
    assert names(db.record_item(item("a", digest="h2"), [row("a", "a.mp3", size=11)], [],
                                job)) == ["a.mp3"]
    db.file_done(row("a", "a.mp3", size=11), status=cat.SKIPPED, reason=cat.NOT_AUDIO)
    assert db.record_item(item("a", digest="h2"), [row("a", "a.mp3", size=11)], [], job) == []
    # Files without an md5 are compared by size.
    b = row("b", "b.mp3", md5=None)
    db.record_item(item("b"), [b], [], job)
    db.settle_download(b, "zz", "raw/s/b/b.mp3", 10, 1)
    assert db.record_item(item("b"), [row("b", "b.mp3", md5=None)], [], job) == []
    assert names(db.record_item(item("b", digest="h2"), [row("b", "b.mp3", md5=None, size=12)],
                                [], job)) == ["b.mp3"]


def test_duplicates_inherit_the_machine_caption_flag(db):
    job = db.start_job("s", "b", "q")
    a, b = row("a", "a.srt"), row("b", "b.srt")
    db.record_item(item("a"), [a], [], job)
    db.record_item(item("b"), [b], [], job)
    db.settle_download(a, "m1", "raw/s/a/a.srt", 10, 1, asr_reason="no capitals")
    copy, displaced = db.settle_download(b, "m1", "raw/s/b/b.srt", 10, 1)
    assert copy["name"] == "a.srt" and displaced is None
    (got,) = db.files("s", "b")
    assert got["status"] == cat.DUPLICATE and got["asr"] == 1 and got["asr_reason"]
    assert got["local_path"] == "raw/s/a/a.srt" and got["duplicate_of"] == "a/a.srt"


def test_a_changed_original_sends_its_duplicates_back_to_be_fetched(db):
    job = db.start_job("s", "b", "q")
    a, b = row("a", "a.mp3"), row("b", "b.mp3")
    db.record_item(item("a"), [a], [], job)
    db.record_item(item("b"), [b], [], job)
    db.settle_download(a, "m1", "raw/s/a/a.mp3", 10, 1)
    db.mark_duplicate(b, db.stored_copy("m1", b, not_item=("s", "b")))
    db.record_item(item("a", digest="h2"), [row("a", "a.mp3", md5="m2")], [], job)
    (got,) = db.files("s", "b")
    assert got["status"] == cat.PENDING and got["local_path"] is None
    assert names(db.record_item(item("b"), [row("b", "b.mp3")], [], job)) == ["b.mp3"]


def test_gone_items_and_returning_ones(db):
    job = db.start_job("s", "b", "q")
    for i in ("a", "b"):
        db.record_item(item(i), [], [], job)
    assert db.mark_gone("s", {"a"}, job) == ["b"]
    assert db.mark_gone("s", {"a"}, job) == []  # recorded once
    db.record_item(item("b"), [], [], job)
    whats = [r["what"] for r in sql(db, "SELECT what FROM changes WHERE item_id = 'b' "
                                         "ORDER BY change_id")]
    assert whats == ["item added", "item gone from the source", "item returned"]
    assert sql(db, "SELECT gone_at FROM items WHERE item_id = 'b'")[0]["gone_at"] is None


def test_the_earliest_upload_keeps_the_bytes_whichever_download_finishes_first(db):
    job = db.start_job("s", "b", "q")
    later, earlier = row("a", "copy.mp3"), row("b", "original.mp3")
    db.record_item({**item("a"), "metadata": {"publicdate": "2025-01-01 00:00:00"}}, [later],
                   [], job)
    db.record_item({**item("b"), "metadata": {"publicdate": "2012-06-01 00:00:00"}}, [earlier],
                   [], job)
    # The later upload finishes first and is stored ...
    assert db.settle_download(later, "m1", "raw/s/a/copy.mp3", 10, 1) == (None, None)
    # ... a later check sees that the original ranks first: fetch it rather than point at this.
    assert db.stored_copy("m1", earlier, not_item=("s", "b")) is None
    assert db.stored_copy("m1", later)  is None  # the stored one is itself
    copy, displaced = db.settle_download(earlier, "m1", "raw/s/b/original.mp3", 10, 1)
    assert copy is None and displaced["name"] == "copy.mp3"
    (a,), (b,) = db.files("s", "a"), db.files("s", "b")
    assert b["status"] == cat.DOWNLOADED and b["local_path"] == "raw/s/b/original.mp3"
    assert a["status"] == cat.DUPLICATE and a["duplicate_of"] == "b/original.mp3"
    assert a["local_path"] == "raw/s/b/original.mp3"
    # The same order of events the other way round ends the same.
    assert db.stored_copy("m1", later)["name"] == "original.mp3"


def test_an_item_without_a_usable_file_list_keeps_its_file_rows(db):
    job = db.start_job("s", "b", "q")
    f = row("a", "a.mp3")
    db.record_item(item("a"), [f], [{"audio": "a.mp3", "transcript": "a.srt", "score": 1.0,
                                     "status": "paired"}], job)
    db.settle_download(f, "m1", "raw/s/a/a.mp3", 10, 1)
    broken = {**item("a", decision="rejected", digest="h2"),
              "reason": "malformed metadata: files is null"}
    assert db.record_item(broken, None, [], job) == []
    files = db.files("s", "a")
    assert [(r["name"], r["status"], r["local_path"]) for r in files] == \
        [("a.mp3", cat.DOWNLOADED, "raw/s/a/a.mp3")]
    assert sql(db, "SELECT COUNT(*) FROM pairs")[0][0] == 1
    assert not db.alignable()  # rejected now: nothing of it is aligned
    changes = [r["what"] for r in sql(db, "SELECT what FROM changes WHERE item_id = 'a'")]
    assert "decision changed" in changes and not any("removed" in c for c in changes)


def test_an_unreadable_item_is_recorded_and_a_known_one_keeps_what_was_stored(db):
    job = db.start_job("s", "b", "q")
    db.record_unreadable({"source": "s", "item_id": "new", "url": "u/new",
                          "reason": "metadata unavailable: HTTP 404"}, job)
    db.record_item(item("old"), [row("old", "o.mp3")], [], job)
    job2 = db.start_job("s", "b", "q")
    db.record_unreadable({"source": "s", "item_id": "old", "url": "u/old",
                          "reason": "metadata unavailable: not JSON"}, job2)
    rows = {r["item_id"]: r for r in db.items()}
    assert (rows["new"]["decision"], rows["new"]["reason"]) == \
        ("rejected", "metadata unavailable: HTTP 404")
    assert rows["old"]["decision"] == "accepted" and rows["old"]["metadata_hash"] == "h1"
    assert rows["old"]["last_job_id"] == job2
    assert [tuple(r) for r in sql(db, "SELECT item_id, what, new FROM changes WHERE job_id = ?",
                                       job2)] == \
        [("old", "metadata unreadable", "metadata unavailable: not JSON")]


def test_marking_gone_refuses_a_sudden_large_drop(db):
    job = db.start_job("s", "b", "q")
    for i in range(10):
        db.record_item(item(f"i{i}"), [], [], job)
    with pytest.raises(cat.TooManyGone) as refused:
        db.mark_gone("s", {f"i{i}" for i in range(7)}, job, max_fraction=0.2)
    assert (refused.value.gone, refused.value.known) == (3, 10)
    assert not [r for r in db.items() if r["gone_at"]]  # nothing marked
    assert db.mark_gone("s", {f"i{i}" for i in range(8)}, job, max_fraction=0.2) == ["i8", "i9"]
    assert sorted(r["item_id"] for r in db.items() if r["gone_at"]) == ["i8", "i9"]


# -- the read API: what every report counts ---------------------------------------------------

@pytest.mark.parametrize("first", ["later", "earlier"])
def test_counts_hold_a_displaced_download_as_one_duplicate(db, first):
    """Whichever of two uploads of one recording finishes first, the catalog counts one
    recording downloaded (its seconds once) and one duplicate; every report reads that."""
    job = db.start_job("s", "b", "q")
    later, earlier = row("a", "copy.mp3"), row("b", "original.mp3")
    db.record_item({**item("a"), "metadata": {"publicdate": "2025-01-01 00:00:00"}}, [later],
                   [], job)
    db.record_item({**item("b"), "metadata": {"publicdate": "2012-06-01 00:00:00"}}, [earlier],
                   [], job)
    db.record_item(item("c", decision="rejected"), [], [], job)
    order = [later, earlier] if first == "later" else [earlier, later]
    for f in order:
        db.settle_download(f, "m1", f"raw/s/{f.item_id}/{f.name}", 10, 1)
    c = db.counts()
    assert (c.items, c.accepted, c.rejected, c.gone) == (3, 2, 1, 0)
    assert c.files == {"downloaded": 1, "duplicate": 1} == c.audio
    assert c.audio_seconds == 1.0  # row() gives each recording 1 s: counted once
    assert db.audio_seconds() == {("s", "b"): 1.0}
    assert db.duplicates() == [cat.Duplicate("s", "a", "copy.mp3", "audio", "b/original.mp3")]
    assert db.duplicates(role="transcript") == []
    assert db.recordings() == {("s", "b", "original.mp3"): "raw/s/b/original.mp3"}


def test_alignment_counts_are_what_is_recorded_done_or_failed(db):
    base = {"source": "s", "item_id": "a", "transcript": "a.srt", "input_key": "k",
            "model_id": "m", "clips": 1, "clean": 1, "other": 0, "rejected": 0,
            "manifest": "manifests/clips/a.parquet"}
    db.record_alignment({**base, "audio": "1.mp3", "status": cat.AlignmentStatus.DONE,
                         "reason": None, "audio_s": 30.0})
    db.record_alignment({**base, "audio": "2.mp3", "status": cat.AlignmentStatus.DONE,
                         "reason": None, "audio_s": 6.0})
    db.record_alignment({**base, "audio": "3.mp3", "status": cat.AlignmentStatus.FAILED,
                         "reason": "decode failed", "audio_s": None, "manifest": None})
    c = db.counts()
    assert (c.recordings_aligned, c.recordings_failed, c.aligned_seconds) == (2, 1, 36.0)
    got = db.alignments()
    assert [(a.audio, a.status) for a in got] == [("1.mp3", "done"), ("2.mp3", "done"),
                                                  ("3.mp3", "failed")]
    assert isinstance(got[2].status, cat.AlignmentStatus)


def test_a_reader_never_creates_or_changes_a_catalog(tmp_path, db):
    missing = tmp_path / "nowhere" / "catalog.sqlite"
    with pytest.raises(FileNotFoundError, match="no catalog at"):
        cat.Catalog.reader(missing)
    assert not missing.parent.exists()
    job = db.start_job("s", "b", "q")
    db.record_item(item("a"), [row("a", "a.mp3")], [], job)
    with cat.Catalog.reader(db.path) as reader:
        assert reader.counts().files == {"pending": 1}
        with pytest.raises(cat.CatalogError):  # read-only: a write is refused, not done
            reader.start_job("s", "b", "q")
    assert len(sql(db, "SELECT * FROM jobs")) == 1


def test_a_reader_opens_a_path_with_uri_characters(tmp_path):
    """The read-only connection is a URI: '?', '#' and '%' in the path are the path's."""
    path = tmp_path / "odd ?x=1#frag %41" / "catalog.sqlite"
    writer = cat.Catalog(path)
    writer.start_job("s", "b", "q")
    with cat.Catalog.reader(path) as reader:
        assert reader.counts().items == 0
    assert {p.name for p in path.parent.iterdir()} <= {"catalog.sqlite", "catalog.sqlite-wal",
                                                       "catalog.sqlite-shm"}


def test_statuses_are_enums_equal_to_their_stored_text(db):
    assert cat.FileStatus.DOWNLOADED == "downloaded" == cat.DOWNLOADED
    job = db.start_job("s", "b", "q")
    db.record_item(item("a"), [row("a", "a.mp3")], [], job)
    (got,) = db.files("s", "a")
    assert cat.FileStatus(got["status"]) is cat.FileStatus.PENDING
    assert sql(db, "SELECT typeof(status) AS t FROM files")[0]["t"] == "text"


def test_the_crawl_report_reads_the_catalogs_count_not_its_own_tally(db):
    """When the later upload of a recording finishes first, this run's tally counts two
    downloads and no duplicate; the crawl's last line says what the catalog (and so the
    summary and the audit) says: one stored, one duplicate, its hours once."""
    import io
    import types

    from scrapy.utils.test import get_crawler

    from crawler.progress import Progress

    job = db.start_job("s", "b", "q")
    later, earlier = row("a", "copy.mp3"), row("b", "original.mp3")
    db.record_item({**item("a"), "metadata": {"publicdate": "2025-01-01 00:00:00"}}, [later],
                   [], job)
    db.record_item({**item("b"), "metadata": {"publicdate": "2012-06-01 00:00:00"}}, [earlier],
                   [], job)
    for f in (later, earlier):
        db.settle_download(f, "m1", f"raw/s/{f.item_id}/{f.name}", 10, 1)
    stats = get_crawler().stats
    stats.set_value("speechcrawl/files_downloaded", 2)
    stats.set_value("speechcrawl/audio_seconds", 7200.0)
    out = io.StringIO()
    progress = Progress(stats, 0, out=out)
    progress.spider = types.SimpleNamespace(catalog=db)
    assert "catalog" not in progress.line()  # a few seconds in: this run's figures only
    progress.report(final=True, reason="finished")
    last = out.getvalue().strip()
    assert last.startswith("crawl finished: ")
    assert "files 2 downloaded this run" in last
    assert "catalog: files 1 stored (0.00 h of audio), 1 duplicate, 0 corrupt, 0 failed" in last
    progress.spider = types.SimpleNamespace()  # no catalog opened (it failed to open)
    assert "catalog" not in progress.line(final=True)
