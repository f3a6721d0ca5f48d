"""The crawl catalog: one SQLite file (WAL mode) that makes crawls resumable and incremental.

It remembers every item seen (with each version of its metadata and license), every file chosen
or skipped (and why), every audio↔transcript pair, and every crawl job. Each change is one short
transaction, so a crawl killed at any moment leaves a consistent catalog, and the next run picks up
exactly what is missing.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL, base_url TEXT, query TEXT,
    started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL, stats TEXT
);
CREATE TABLE IF NOT EXISTS items (
    source TEXT NOT NULL, item_id TEXT NOT NULL,
    url TEXT, title TEXT, creator TEXT,
    metadata TEXT NOT NULL, metadata_hash TEXT NOT NULL,
    license_raw TEXT, license_url TEXT, license_spdx TEXT, license_family TEXT,
    license_evidence TEXT, decision TEXT NOT NULL, reason TEXT,
    first_seen_at TEXT NOT NULL, crawled_at TEXT NOT NULL, last_job_id INTEGER,
    gone_at TEXT,
    PRIMARY KEY (source, item_id)
);
CREATE TABLE IF NOT EXISTS item_versions (
    source TEXT NOT NULL, item_id TEXT NOT NULL, version INTEGER NOT NULL,
    metadata TEXT NOT NULL, metadata_hash TEXT NOT NULL, license_spdx TEXT, decision TEXT,
    seen_at TEXT NOT NULL, job_id INTEGER,
    PRIMARY KEY (source, item_id, version)
);
CREATE TABLE IF NOT EXISTS changes (
    change_id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL, item_id TEXT NOT NULL, job_id INTEGER, at TEXT NOT NULL,
    what TEXT NOT NULL, old TEXT, new TEXT
);
CREATE TABLE IF NOT EXISTS files (
    source TEXT NOT NULL, item_id TEXT NOT NULL, name TEXT NOT NULL,
    role TEXT NOT NULL, format TEXT, size INTEGER, md5 TEXT, length_s REAL,
    file_source TEXT, asr INTEGER NOT NULL DEFAULT 0, asr_reason TEXT,
    status TEXT NOT NULL, reason TEXT, local_path TEXT, duplicate_of TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, bytes INTEGER, updated_at TEXT NOT NULL,
    PRIMARY KEY (source, item_id, name)
);
CREATE INDEX IF NOT EXISTS files_md5 ON files (md5, status);
CREATE TABLE IF NOT EXISTS alignments (
    source TEXT NOT NULL, item_id TEXT NOT NULL, audio TEXT NOT NULL, transcript TEXT,
    input_key TEXT NOT NULL, model_id TEXT, status TEXT NOT NULL, reason TEXT,
    clips INTEGER, clean INTEGER, other INTEGER, rejected INTEGER, audio_s REAL,
    manifest TEXT, done_at TEXT NOT NULL,
    PRIMARY KEY (source, item_id, audio)
);
CREATE TABLE IF NOT EXISTS pairs (
    source TEXT NOT NULL, item_id TEXT NOT NULL, audio TEXT NOT NULL, transcript TEXT NOT NULL,
    score REAL, status TEXT NOT NULL, reason TEXT, updated_at TEXT NOT NULL,
    PRIMARY KEY (source, item_id, audio)
);
"""



class FileStatus(StrEnum):
    """A file's state. "pending" files are what a crawl still has to fetch; settled ones are
    not fetched again while the source lists them with the same md5."""

    PENDING = "pending"
    DOWNLOADED = "downloaded"
    SKIPPED = "skipped"
    CORRUPT = "corrupt"
    DUPLICATE = "duplicate"  # the same bytes are stored under another item: counted once
    REMOVED = "removed"
    FAILED = "failed"


class ItemDecision(StrEnum):
    """The license gate's verdict on an item."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"


class PairStatus(StrEnum):
    """Whether an audio↔transcript pair may be aligned."""

    PAIRED = "paired"
    UNUSABLE = "unusable"
    REJECTED = "rejected"


class AlignmentStatus(StrEnum):
    """The align stage's outcome for one recording."""

    DONE = "done"
    FAILED = "failed"


class JobStatus(StrEnum):
    """How a crawl job ended ("running" while it runs, or when it died without saying)."""

    RUNNING = "running"
    FINISHED = "finished"
    INCOMPLETE = "incomplete"
    SUSPICIOUS = "suspicious"
    FAILED = "failed"


PENDING, DOWNLOADED, SKIPPED, CORRUPT, DUPLICATE, REMOVED = (
    FileStatus.PENDING, FileStatus.DOWNLOADED, FileStatus.SKIPPED, FileStatus.CORRUPT,
    FileStatus.DUPLICATE, FileStatus.REMOVED)
# Files of a rejected item are skipped for this reason, and fetched if the item is accepted later.
ITEM_REJECTED = "item rejected by the license gate"
# Skips decided by looking at fetched bytes; other skips are decided afresh at every crawl.
NOT_AUDIO, NOT_TEXT = "not audio: the content is not an audio or video stream", \
    "not a transcript: binary content"


# What a failed catalog read or write raises, for callers that must carry on without one.
CatalogError = sqlite3.Error


class TooManyGone(Exception):
    """A complete discovery would mark more of the known items gone than is believable."""

    def __init__(self, gone: int, known: int, limit: float):
        super().__init__(f"discovery no longer finds {gone} of {known} known items "
                         f"(more than {limit:.0%}); nothing marked gone, job recorded as "
                         "suspicious")
        self.gone, self.known = gone, known


def settled(row) -> bool:
    """Fetched or judged on its bytes: not fetched again while its md5 and size are the same."""
    return row["status"] in (DOWNLOADED, CORRUPT, DUPLICATE) or (
        row["status"] == SKIPPED and row["reason"] in (NOT_AUDIO, NOT_TEXT))


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


@dataclass
class FileRow:
    source: str
    item_id: str
    name: str
    role: str  # audio | transcript
    format: str | None
    size: int | None
    md5: str | None
    length_s: float | None
    status: str
    reason: str | None = None
    asr: bool = False
    asr_reason: str | None = None
    file_source: str | None = None
    local_path: str | None = None
    duplicate_of: str | None = None


@dataclass(frozen=True)
class Counts:
    """What the catalog holds, each thing counted once. Every report (the crawl's last line,
    the align report, the summary, the audit) reads these, so one figure is one number."""

    items: int
    accepted: int
    rejected: int
    gone: int
    files: dict[str, int]  # every file by status
    audio: dict[str, int]  # audio files by status: a recording stored twice is one downloaded
    audio_seconds: float  # of the downloaded recordings (a duplicate is not counted again)
    recordings_aligned: int
    recordings_failed: int
    aligned_seconds: float  # of the recordings aligned


@dataclass(frozen=True)
class Duplicate:
    """A file the crawl did not store again: the same bytes are stored as ``duplicate_of``."""

    source: str
    item_id: str
    name: str
    role: str
    duplicate_of: str  # "<item_id>/<name>" of the stored copy, same source


@dataclass(frozen=True)
class Alignment:
    """The align stage's record of one recording."""

    source: str
    item_id: str
    audio: str
    status: AlignmentStatus
    reason: str | None
    audio_s: float | None
    manifest: str | None
    extra: dict = field(default_factory=dict, compare=False, repr=False)


class Catalog:
    """The catalog. ``Catalog(path)`` opens (or creates) it for writing; ``Catalog.reader(path)``
    opens an existing one read-only, for the reports: reading never changes a workdir."""

    def __init__(self, path: Path, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._local = threading.local()
        if readonly:
            if not self.path.is_file():
                raise FileNotFoundError(f"no catalog at {self.path}: run a crawl first")
            self._conn()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._conn()
        conn.executescript(SCHEMA)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @classmethod
    def reader(cls, path: Path) -> Catalog:
        """An existing catalog, read-only; FileNotFoundError (saying so) when there is none."""
        return cls(path, readonly=True)

    def connect(self) -> _Tx:
        """A transaction on this thread's connection: ``with catalog.connect() as conn:``."""
        return _Tx(self._conn(), "DEFERRED" if self.readonly else "IMMEDIATE")

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections must not cross threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.readonly:  # a URI, so any character of the path is taken as it is
                conn = sqlite3.connect(self.path.absolute().as_uri() + "?mode=ro", uri=True,
                                       timeout=60, isolation_level=None)
                conn.row_factory = sqlite3.Row
            else:
                conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (a reader is done with the catalog)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _query(self, sql: str, *params) -> list[sqlite3.Row]:
        with self.connect() as conn:
            return conn.execute(sql, params).fetchall()

    # -- jobs ----------------------------------------------------------------------------------
    def start_job(self, source: str, base_url: str, query: str) -> int:
        with self.connect() as conn:
            cur = conn.execute(
                "INSERT INTO jobs (source, base_url, query, started_at, status) "
                "VALUES (?, ?, ?, ?, ?)", (source, base_url, query, now(), JobStatus.RUNNING))
            return cur.lastrowid

    def finish_job(self, job_id: int, status: str, stats: dict) -> None:
        with self.connect() as conn:
            conn.execute("UPDATE jobs SET finished_at = ?, status = ?, stats = ? WHERE job_id = ?",
                         (now(), status, json.dumps(stats, default=str, sort_keys=True), job_id))

    # -- items ---------------------------------------------------------------------------------
    def record_item(self, item: dict, files: list[FileRow] | None, pairs: list[dict],
                    job_id: int) -> list[FileRow]:
        """Write what one crawl saw of an item; return the files still to fetch.

        A new metadata version is stored (and the differences recorded as changes) whenever the
        metadata hash differs from the last one seen; files whose md5 changed are fetched again;
        files no longer listed are marked removed. ``files=None`` means the source gave no
        usable file list this time: the file and pair rows already stored are left as they are.
        """
        t = now()
        key = (item["source"], item["item_id"])
        with self.connect() as conn:
            old = conn.execute("SELECT * FROM items WHERE source = ? AND item_id = ?",
                               key).fetchone()
            if old is None or old["metadata_hash"] != item["metadata_hash"]:
                version = conn.execute(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM item_versions "
                    "WHERE source = ? AND item_id = ?", key).fetchone()[0]
                conn.execute(
                    "INSERT INTO item_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*key, version, json.dumps(item["metadata"], sort_keys=True),
                     item["metadata_hash"], item["license_spdx"], item["decision"], t, job_id))
            if old is not None:
                self._record_changes(conn, old, item, job_id, t)
            else:
                conn.execute("INSERT INTO changes (source, item_id, job_id, at, what, old, new) "
                             "VALUES (?, ?, ?, ?, 'item added', NULL, ?)",
                             (*key, job_id, t, item["decision"]))
            conn.execute(
                """INSERT INTO items (source, item_id, url, title, creator, metadata,
                       metadata_hash, license_raw, license_url, license_spdx, license_family,
                       license_evidence, decision, reason, first_seen_at, crawled_at,
                       last_job_id, gone_at)
                   VALUES (:source, :item_id, :url, :title, :creator, :metadata, :metadata_hash,
                       :license_raw, :license_url, :license_spdx, :license_family,
                       :license_evidence, :decision, :reason, :t, :t, :job_id, NULL)
                   ON CONFLICT (source, item_id) DO UPDATE SET
                       url = excluded.url, title = excluded.title, creator = excluded.creator,
                       metadata = excluded.metadata, metadata_hash = excluded.metadata_hash,
                       license_raw = excluded.license_raw, license_url = excluded.license_url,
                       license_spdx = excluded.license_spdx,
                       license_family = excluded.license_family,
                       license_evidence = excluded.license_evidence,
                       decision = excluded.decision, reason = excluded.reason,
                       crawled_at = excluded.crawled_at, last_job_id = excluded.last_job_id,
                       gone_at = NULL""",
                {**item, "metadata": json.dumps(item["metadata"], sort_keys=True),
                 "license_raw": json.dumps(item["license_raw"]),
                 "license_evidence": json.dumps(item["license_evidence"]), "t": t,
                 "job_id": job_id})
            if files is None:
                return []
            return self._record_files(conn, item, files, pairs, job_id, t)

    def record_unreadable(self, item: dict, job_id: int) -> None:
        """An item discovery found but whose metadata could not be read: a new one is recorded
        as rejected with the reason; a known one keeps what an earlier crawl stored, and the
        failed reading is recorded as a change."""
        t = now()
        key = (item["source"], item["item_id"])
        with self.connect() as conn:
            known = conn.execute("SELECT 1 FROM items WHERE source = ? AND item_id = ?",
                                 key).fetchone()
            if known:
                conn.execute("UPDATE items SET last_job_id = ? WHERE source = ? AND "
                             "item_id = ?", (job_id, *key))
                what = "metadata unreadable"
            else:
                conn.execute(
                    "INSERT INTO items (source, item_id, url, metadata, metadata_hash, "
                    "license_raw, license_evidence, decision, reason, first_seen_at, "
                    "crawled_at, last_job_id) VALUES (?, ?, ?, '{}', '', 'null', '[]', "
                    "?, ?, ?, ?, ?)", (*key, item["url"], ItemDecision.REJECTED, item["reason"],
                                       t, t, job_id))
                what = "item added"
            conn.execute("INSERT INTO changes (source, item_id, job_id, at, what, old, new) "
                         "VALUES (?, ?, ?, ?, ?, NULL, ?)", (*key, job_id, t, what,
                                                            item["reason"]))

    def _record_changes(self, conn, old, item: dict, job_id: int, t: str) -> None:
        def change(what, a, b):
            conn.execute("INSERT INTO changes (source, item_id, job_id, at, what, old, new) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (item["source"], item["item_id"], job_id, t, what, a, b))

        if old["gone_at"]:
            change("item returned", old["gone_at"], None)
        if old["metadata_hash"] == item["metadata_hash"]:
            return
        if (old["license_spdx"], old["license_raw"]) != (item["license_spdx"],
                                                         json.dumps(item["license_raw"])):
            change("license changed", f"{old['license_raw']} → {old['license_spdx']}",
                   f"{json.dumps(item['license_raw'])} → {item['license_spdx']}")
        if old["decision"] != item["decision"]:
            change("decision changed", old["decision"], item["decision"])
        change("metadata changed", old["metadata_hash"], item["metadata_hash"])

    def _record_files(self, conn, item: dict, files: list[FileRow], pairs: list[dict],
                      job_id: int, t: str) -> list[FileRow]:
        key = (item["source"], item["item_id"])
        existing = {r["name"]: r for r in conn.execute(
            "SELECT * FROM files WHERE source = ? AND item_id = ?", key)}
        known_item = bool(existing) or self._seen_before(conn, key)

        def change(what, a, b):
            conn.execute("INSERT INTO changes (source, item_id, job_id, at, what, old, new) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", (*key, job_id, t, what, a, b))

        todo = []
        for f in files:
            old = existing.pop(f.name, None)
            same = old is not None and (old["md5"], old["size"]) == (f.md5, f.size)
            if same and f.status == PENDING:
                if settled(old):
                    continue  # fetched or judged before, and unchanged since
                if old["status"] == PENDING:
                    todo.append(f)  # an interrupted run left it
                    continue
            if old is None and known_item:
                change(f"file added: {f.name}", None, f.md5)
            elif old is not None and not same:
                change(f"file changed: {f.name}", old["md5"], f.md5)
                if old["status"] == DOWNLOADED:  # its bytes are about to be replaced
                    conn.execute(
                        "UPDATE files SET status = ?, reason = ?, local_path = NULL, "
                        "duplicate_of = NULL, updated_at = ? WHERE duplicate_of = ? AND "
                        "status = ?", (PENDING, "its stored copy changed at the source", t,
                                       f"{item['item_id']}/{f.name}", DUPLICATE))
            conn.execute(
                """INSERT INTO files (source, item_id, name, role, format, size, md5, length_s,
                       file_source, asr, asr_reason, status, reason, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (source, item_id, name) DO UPDATE SET
                       role = excluded.role, format = excluded.format, size = excluded.size,
                       md5 = excluded.md5, length_s = excluded.length_s,
                       file_source = excluded.file_source, asr = excluded.asr,
                       asr_reason = excluded.asr_reason, status = excluded.status,
                       reason = excluded.reason, local_path = NULL, duplicate_of = NULL,
                       updated_at = excluded.updated_at""",
                (*key, f.name, f.role, f.format, f.size, f.md5, f.length_s, f.file_source,
                 int(f.asr), f.asr_reason, f.status, f.reason, t))
            if f.status == PENDING:
                todo.append(f)
        for name, old in existing.items():  # listed before, not any more
            if old["status"] != REMOVED:
                conn.execute("UPDATE files SET status = ?, reason = ?, updated_at = ? "
                             "WHERE source = ? AND item_id = ? AND name = ?",
                             (REMOVED, "no longer listed by the source", t, *key, name))
                change(f"file removed: {name}", old["md5"], None)
        conn.execute("DELETE FROM pairs WHERE source = ? AND item_id = ?", key)
        for p in pairs:
            conn.execute("INSERT INTO pairs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (*key, p["audio"], p["transcript"], p["score"], p["status"],
                          p.get("reason"), t))
        return todo

    @staticmethod
    def _seen_before(conn, key) -> bool:
        return conn.execute("SELECT COUNT(*) FROM item_versions WHERE source = ? AND item_id = ?",
                            key).fetchone()[0] > 1

    def mark_gone(self, source: str, seen: set[str], job_id: int,
                  max_fraction: float = 1.0) -> list[str]:
        """Items a complete discovery no longer finds: kept, marked gone, the change recorded.

        ``seen`` must hold every identifier the discovery returned, including those whose
        metadata could not be read this time. When more than ``max_fraction`` of the known
        items would go at once, nothing is marked and ``TooManyGone`` is raised."""
        t = now()
        with self.connect() as conn:
            known = [r["item_id"] for r in conn.execute(
                "SELECT item_id FROM items WHERE source = ? AND gone_at IS NULL", (source,))]
            gone = [i for i in known if i not in seen]
            if gone and len(gone) > max_fraction * len(known):
                raise TooManyGone(len(gone), len(known), max_fraction)
            for item_id in gone:
                conn.execute("UPDATE items SET gone_at = ? WHERE source = ? AND item_id = ?",
                             (t, source, item_id))
                conn.execute("INSERT INTO changes (source, item_id, job_id, at, what) "
                             "VALUES (?, ?, ?, ?, 'item gone from the source')",
                             (source, item_id, job_id, t))
        return gone

    # -- files ---------------------------------------------------------------------------------
    def file_done(self, f: FileRow, *, status: str, reason: str | None = None,
                  local_path: str | None = None, duplicate_of: str | None = None,
                  attempts: int = 0, nbytes: int | None = None) -> None:
        with self.connect() as conn:
            conn.execute(
                "UPDATE files SET status = ?, reason = ?, local_path = ?, duplicate_of = ?, "
                "attempts = attempts + ?, bytes = ?, updated_at = ? "
                "WHERE source = ? AND item_id = ? AND name = ?",
                (status, reason, local_path, duplicate_of, attempts, nbytes, now(), f.source,
                 f.item_id, f.name))

    # Of several copies of the same bytes, the one kept is the earliest published (then the
    # lowest item id and name): the same choice whichever download finishes first.
    _RANK = ("COALESCE(json_extract(i.metadata, '$.publicdate'), '9999'), f.item_id, f.name")

    def _ranked_copy(self, conn, md5: str, f: FileRow, not_item: tuple | None = None):
        """(the stored file with these bytes that ranks first, whether ``f`` ranks before it)."""
        mine = conn.execute(
            f"SELECT {self._RANK} FROM files f JOIN items i ON i.source = f.source AND "
            "i.item_id = f.item_id WHERE f.source = ? AND f.item_id = ? AND f.name = ?",
            (f.source, f.item_id, f.name)).fetchone()
        other_item = "AND NOT (f.source = ? AND f.item_id = ?) " if not_item else ""
        copy = conn.execute(
            f"SELECT f.*, {self._RANK} FROM files f JOIN items i ON i.source = f.source AND "
            "i.item_id = f.item_id WHERE f.md5 = ? AND f.status = ? AND NOT (f.source = ? AND "
            f"f.item_id = ? AND f.name = ?) {other_item}ORDER BY {self._RANK} LIMIT 1",
            (md5, DOWNLOADED, f.source, f.item_id, f.name, *(not_item or ()))).fetchone()
        if copy is None:
            return None, False
        first = mine is not None and tuple(mine) < tuple(copy)[-3:]
        return copy, first

    def settle_download(self, f: FileRow, md5: str, local_path: str, nbytes: int,
                        attempts: int, asr_reason: str | None = None
                        ) -> tuple[sqlite3.Row | None, sqlite3.Row | None]:
        """Mark a verified download as stored, unless the same content is stored already
        under an earlier-published item: returns (the copy ``f`` now points at, the copy
        ``f`` displaced). The caller deletes the file that is no longer used.

        Check and mark happen in one transaction, so two items downloading the same recording
        at the same time still end with one stored copy; the machine-caption flag is written in
        the same transaction.
        """
        with self.connect() as conn:
            copy, first = self._ranked_copy(conn, md5, f)
            if copy is not None and not first:
                self._duplicate(conn, f, copy, attempts, nbytes)
            else:
                conn.execute("UPDATE files SET status = ?, reason = NULL, local_path = ?, "
                             "duplicate_of = NULL, attempts = attempts + ?, bytes = ?, "
                             "updated_at = ? WHERE source = ? AND item_id = ? AND name = ?",
                             (DOWNLOADED, local_path, attempts, nbytes, now(), f.source,
                              f.item_id, f.name))
                if copy is not None:  # an earlier copy of a later upload: it becomes ours
                    conn.execute("UPDATE files SET status = ?, reason = ?, local_path = ?, "
                                 "duplicate_of = ?, updated_at = ? WHERE md5 = ? AND "
                                 "(status = ? OR status = ?) AND NOT (source = ? AND "
                                 "item_id = ? AND name = ?)",
                                 (DUPLICATE, "same content already stored", local_path,
                                  f"{f.item_id}/{f.name}", now(), md5, DOWNLOADED,
                                  DUPLICATE, f.source, f.item_id, f.name))
            if asr_reason:
                conn.execute("UPDATE files SET asr = 1, asr_reason = ? WHERE source = ? AND "
                             "item_id = ? AND name = ?", (asr_reason, f.source, f.item_id,
                                                          f.name))
            return (copy, None) if copy is not None and not first else (None, copy)

    def mark_duplicate(self, f: FileRow, copy: sqlite3.Row) -> None:
        with self.connect() as conn:
            self._duplicate(conn, f, copy, 0, None)

    @staticmethod
    def _duplicate(conn, f: FileRow, copy, attempts: int, nbytes: int | None) -> None:
        """Point ``f`` at the stored copy; a machine caption stays one under any name."""
        conn.execute("UPDATE files SET status = ?, reason = ?, local_path = ?, duplicate_of = ?, "
                     "attempts = attempts + ?, bytes = ?, updated_at = ?, "
                     "asr = MAX(asr, ?), asr_reason = COALESCE(asr_reason, ?) "
                     "WHERE source = ? AND item_id = ? AND name = ?",
                     (DUPLICATE, "same content already stored", copy["local_path"],
                      f"{copy['item_id']}/{copy['name']}", attempts, nbytes, now(),
                      copy["asr"], copy["asr_reason"], f.source, f.item_id, f.name))

    def set_pair(self, source: str, item_id: str, audio: str, status: str,
                 reason: str | None) -> None:
        with self.connect() as conn:
            conn.execute("UPDATE pairs SET status = ?, reason = ?, updated_at = ? "
                         "WHERE source = ? AND item_id = ? AND audio = ?",
                         (status, reason, now(), source, item_id, audio))

    def stored_copy(self, md5: str, f: FileRow,
                    not_item: tuple[str, str] | None = None) -> sqlite3.Row | None:
        """A file already downloaded with this content that ``f`` should point at instead of
        being fetched: one that ranks before ``f`` (see ``_RANK``)."""
        with self.connect() as conn:
            copy, first = self._ranked_copy(conn, md5, f, not_item)
        return None if copy is None or first else copy

    # -- alignment -------------------------------------------------------------------------
    def alignable(self) -> list[sqlite3.Row]:
        """Every usable audio↔transcript pair of an accepted item, with what alignment needs."""
        return self._query(
            """SELECT p.source, p.item_id, p.audio, p.transcript, a.local_path AS audio_path,
                      a.length_s, a.md5 AS audio_md5, t.local_path AS transcript_path,
                      t.md5 AS transcript_md5, t.asr, i.title, i.creator, i.url,
                      i.license_spdx, i.license_family, i.license_url
               FROM pairs p
               JOIN items i ON i.source = p.source AND i.item_id = p.item_id
               JOIN files a ON a.source = p.source AND a.item_id = p.item_id AND a.name = p.audio
               JOIN files t ON t.source = p.source AND t.item_id = p.item_id
                    AND t.name = p.transcript
               WHERE p.status = ? AND i.decision = ? AND i.gone_at IS NULL
                 AND a.status = ?  -- a duplicate recording is aligned once
                 AND t.status IN (?, ?)
               ORDER BY p.source, p.item_id, p.audio""", PairStatus.PAIRED, ItemDecision.ACCEPTED,
            DOWNLOADED, DOWNLOADED, DUPLICATE)

    def alignment(self, source: str, item_id: str, audio: str) -> sqlite3.Row | None:
        rows = self._query("SELECT * FROM alignments WHERE source = ? AND item_id = ? AND "
                          "audio = ?", source, item_id, audio)
        return rows[0] if rows else None

    def delete_alignment(self, source: str, item_id: str, audio: str) -> None:
        with self.connect() as conn:
            conn.execute("DELETE FROM alignments WHERE source = ? AND item_id = ? AND audio = ?",
                         (source, item_id, audio))

    def record_alignment(self, row: dict) -> None:
        with self.connect() as conn:
            conn.execute(
                """INSERT OR REPLACE INTO alignments (source, item_id, audio, transcript,
                       input_key, model_id, status, reason, clips, clean, other, rejected,
                       audio_s, manifest, done_at)
                   VALUES (:source, :item_id, :audio, :transcript, :input_key, :model_id,
                       :status, :reason, :clips, :clean, :other, :rejected, :audio_s,
                       :manifest, :done_at)""", {"done_at": now(), **row})

    def items(self, source: str | None = None) -> Iterator[sqlite3.Row]:
        sql = "SELECT * FROM items" + (" WHERE source = ?" if source else "") + \
            " ORDER BY source, item_id"
        yield from self._query(sql, *([source] if source else []))

    def files(self, source: str, item_id: str) -> list[sqlite3.Row]:
        return self._query("SELECT * FROM files WHERE source = ? AND item_id = ? ORDER BY name",
                           source, item_id)

    # -- the read API: every report counts through these -------------------------------------
    def counts(self) -> Counts:
        """Items, files by status, hours downloaded and aligned, read in one snapshot."""
        with self.connect() as conn:
            items, accepted, gone = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(decision = ?), 0), "
                "COALESCE(SUM(gone_at IS NOT NULL), 0) FROM items",
                (ItemDecision.ACCEPTED,)).fetchone()
            files: dict[str, int] = {}
            audio: dict[str, int] = {}
            for role, status, n in conn.execute(
                    "SELECT role, status, COUNT(*) FROM files GROUP BY role, status "
                    "ORDER BY role, status"):
                files[status] = files.get(status, 0) + n
                if role == "audio":
                    audio[status] = n
            (seconds,) = conn.execute(
                "SELECT COALESCE(SUM(length_s), 0) FROM files WHERE role = 'audio' AND "
                "status = ?", (DOWNLOADED,)).fetchone()
            done, failed, aligned = conn.execute(
                "SELECT COALESCE(SUM(status = ?), 0), COALESCE(SUM(status = ?), 0), "
                "COALESCE(SUM(CASE WHEN status = ? THEN audio_s END), 0) FROM alignments",
                (AlignmentStatus.DONE, AlignmentStatus.FAILED,
                 AlignmentStatus.DONE)).fetchone()
        return Counts(items=items, accepted=accepted, rejected=items - accepted, gone=gone,
                      files=files, audio=audio, audio_seconds=float(seconds),
                      recordings_aligned=done, recordings_failed=failed,
                      aligned_seconds=float(aligned))

    def audio_seconds(self) -> dict[tuple[str, str], float]:
        """Seconds of downloaded audio per (source, item_id); a duplicate is counted at the
        copy that is stored, never twice. The values add up to ``counts().audio_seconds``."""
        return {(r["source"], r["item_id"]): float(r["s"]) for r in self._query(
            "SELECT source, item_id, SUM(length_s) AS s FROM files WHERE role = 'audio' AND "
            "status = ? AND length_s IS NOT NULL GROUP BY source, item_id "
            "ORDER BY source, item_id", DOWNLOADED)}

    def duplicates(self, role: str | None = "audio") -> list[Duplicate]:
        """Files stored once because another item had the same bytes (of ``role``, or all)."""
        rows = self._query(
            "SELECT source, item_id, name, role, duplicate_of FROM files WHERE status = ? "
            + ("AND role = ? " if role else "") + "ORDER BY source, item_id, name",
            DUPLICATE, *([role] if role else []))
        return [Duplicate(r["source"], r["item_id"], r["name"], r["role"], r["duplicate_of"])
                for r in rows]

    def recordings(self) -> dict[tuple[str, str, str], str]:
        """Where each downloaded file lies, relative to the workdir, by (source, item, name)."""
        return {(r["source"], r["item_id"], r["name"]): r["local_path"] for r in self._query(
            "SELECT source, item_id, name, local_path FROM files WHERE status = ? AND "
            "local_path IS NOT NULL ORDER BY source, item_id, name", DOWNLOADED)}

    def alignments(self) -> list[Alignment]:
        """Every recording the align stage has a record of."""
        return [Alignment(r["source"], r["item_id"], r["audio"], AlignmentStatus(r["status"]),
                          r["reason"], r["audio_s"], r["manifest"], dict(r))
                for r in self._query("SELECT * FROM alignments ORDER BY source, item_id, audio")]

    def item_records(self) -> list[dict]:
        """Every item as a plain dict (gone ones too), in (source, item_id) order."""
        return [dict(r) for r in self.items()]

    def file_records(self) -> list[dict]:
        """Every file row as a plain dict, in (source, item_id, name) order."""
        return [dict(r) for r in self._query(
            "SELECT * FROM files ORDER BY source, item_id, name")]

    def last_job(self) -> dict | None:
        """The latest crawl job, its stats parsed (what a crawl's report and benchmarks read)."""
        rows = self._query("SELECT * FROM jobs ORDER BY job_id DESC LIMIT 1")
        if not rows:
            return None
        job = dict(rows[0])
        job["stats"] = json.loads(job["stats"]) if job.get("stats") else {}
        return job

    def paired_audio(self) -> set[tuple[str, str, str]]:
        """(source, item_id, audio) of every pair that may be aligned."""
        return {(r["source"], r["item_id"], r["audio"]) for r in self._query(
            "SELECT source, item_id, audio FROM pairs WHERE status = ?", PairStatus.PAIRED)}

    def license_changes(self) -> list[dict]:
        """Every recorded change of an item's license or decision, oldest first per item."""
        return [dict(r) for r in self._query(
            "SELECT * FROM changes WHERE what IN ('license changed', 'decision changed') "
            "ORDER BY source, item_id, change_id")]


class _Tx:
    """``with catalog.connect() as conn:`` runs the block in one IMMEDIATE transaction."""

    def __init__(self, conn: sqlite3.Connection, mode: str = "IMMEDIATE"):
        self.conn, self.mode = conn, mode

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute(f"BEGIN {self.mode}")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
