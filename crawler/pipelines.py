"""Item pipelines: license gate → catalog → verified downloads (with dedup).

Every item seen is recorded, accepted or not; only accepted items' paired files are fetched. The
catalog is written before any download starts, and after each file, so a crawl killed at any
moment resumes with exactly the files still missing.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import sqlite3
import time
from pathlib import Path

import srt
import webvtt
from scrapy.exceptions import DropItem
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import reactor
from twisted.internet.defer import DeferredList
from twisted.internet.threads import deferToThread

from crawler.download import WRITE_ERRNOS, Downloader, part_path
from crawler.hosts import crawl_allow_list
from crawler.items import SourceItem
from crawler.licenses import Decision, decide
from crawler.sniff import is_audio, is_text
from manifests import catalog as cat
from manifests.parquet import table_from_rows, write_atomic
from manifests.paths import UnsafePath, remote_path
from manifests.schema import ITEMS
from manifests.textfile import TextFileError, read_text

log = logging.getLogger(__name__)

# A transcript whose timings run this far past the end of its audio belongs to other audio.
DURATION_SLACK_S = 10.0


class _Pipeline:
    """Scrapy ≥ 2.13 style: the crawler is given once; methods take no spider argument."""

    @classmethod
    def from_crawler(cls, crawler):
        obj = cls()
        obj.crawler = crawler
        obj.stats = crawler.stats
        obj.settings = crawler.settings
        return obj

    @property
    def spider(self):
        return self.crawler.spider


# Errors that mean "this machine cannot write" (not "this input is bad"): the crawl stops and
# exits non-zero; the catalog's transactions keep what was written consistent for the next run.
SQLITE_WRITE_CODES = {10, 13, 8}  # SQLITE_IOERR, SQLITE_FULL, SQLITE_READONLY (primary codes)


def write_failure(exc: BaseException) -> bool:
    """Whether an exception is a failed local write (the downloader raises those too)."""
    if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
        return True
    return isinstance(exc, sqlite3.OperationalError) and \
        (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in SQLITE_WRITE_CODES


def note_write_failure(stats, what: str) -> bool:
    """Count a failed write and keep the first one's words (what the CLI's one line says);
    True when it is the first. On the reactor thread."""
    stats.inc_value("speechcrawl/write_errors")
    if stats.get_value("speechcrawl/write_failed"):
        return False
    stats.set_value("speechcrawl/write_failed", what[:300])
    return True


def stop_on_write_failure(crawler, what: str) -> None:
    """Record the first failed write and close the spider: a full disk fails every later
    write too. Safe to call from any thread."""
    def stop():
        if note_write_failure(crawler.stats, what):
            log.error("write failed, stopping the crawl: %s", what)
            if crawler.engine and crawler.engine.spider is not None:
                deferred_from_coro(crawler.engine.close_spider_async(reason="write_failed"))
    reactor.callFromThread(stop)


class PairingPipeline(_Pipeline):
    """Audio paired with transcripts in a worker thread, by the source's own rule: an item with
    thousands of files must not hold up the reactor (and with it every other request)."""

    def process_item(self, item: SourceItem):
        if item.problem or item.unreadable or not item.files:
            return item
        d = deferToThread(self.spider.pair, item.files)
        d.addCallback(lambda pairs: setattr(item, "pairs", pairs) or item)
        return d


class LicenseGatePipeline(_Pipeline):
    def process_item(self, item: SourceItem):
        item.decision = _gate(item)
        stats = self.stats
        stats.inc_value(f"speechcrawl/items_{item.decision.decision}")
        if item.decision.reason:
            stats.inc_value(f"speechcrawl/rejected/{item.decision.reason.split(':')[0]}")
        return item


def _gate(item: SourceItem) -> Decision:
    """The license decision, overruled by an item-level problem (malformed, dark, restricted,
    unreadable): such an item is rejected with that reason, its license still recorded."""
    if item.unreadable:
        return Decision("rejected", item.problem, None)
    try:
        d = decide(item.metadata)
    except (TypeError, ValueError, AttributeError) as exc:  # statements of a shape not foreseen
        d = Decision("rejected", f"malformed metadata: license statements unreadable ({exc})",
                     None)
    if item.problem:
        return Decision("rejected", item.problem, d.license, d.raw, d.evidence)
    return d


def _file_rows(item: SourceItem) -> list[cat.FileRow]:
    paired = {p["audio"] for p in item.pairs} | {p["transcript"] for p in item.pairs}
    rows = []
    for c in item.files:
        if item.decision.decision != cat.ItemDecision.ACCEPTED:
            status, reason = cat.SKIPPED, (f"item rejected: {item.problem}" if item.problem
                                           else cat.ITEM_REJECTED)
        elif c.skip:
            status, reason = cat.SKIPPED, c.skip
        elif c.name not in paired:
            status, reason = cat.SKIPPED, ("no transcript to pair with" if c.role == "audio"
                                           else "not paired with any audio")
        else:
            status, reason = cat.PENDING, None
        rows.append(cat.FileRow(item.source, item.item_id, c.name, c.role, c.format, c.size,
                                c.md5, c.length_s, status, reason, c.asr, c.asr_reason,
                                c.file_source))
    return rows


class CatalogPipeline(_Pipeline):
    """Owns the catalog and the crawl job; writes items.parquet when the crawl ends."""

    def open_spider(self):
        spider = self.spider
        self.workdir = Path(spider.workdir)
        self.catalog = cat.Catalog(self.workdir / "catalog.sqlite")
        self.job_id = self.catalog.start_job(spider.source, spider.base_url, spider.query)
        spider.catalog, spider.job_id = self.catalog, self.job_id

    def process_item(self, item: SourceItem):
        d = item.decision
        raw = d.raw[0] if len(d.raw) == 1 else (json.dumps(d.raw) if d.raw else None)
        record = {
            "source": item.source, "item_id": item.item_id, "url": item.url,
            "title": item.title, "creator": item.creator, "metadata": item.metadata,
            "metadata_hash": item.metadata_hash, "license_raw": raw,
            "license_url": d.license.url if d.license else None,
            "license_spdx": d.spdx, "license_family": d.family,
            "license_evidence": [dataclasses.asdict(e) | {"url": item.url} for e in d.evidence],
            "decision": d.decision, "reason": d.reason,
        }
        try:
            if item.unreadable:
                self.catalog.record_unreadable(record, self.job_id)
            else:
                item.todo = self.catalog.record_item(
                    record, _file_rows(item) if item.files_known else None, item.pairs,
                    self.job_id)
        except (OSError, sqlite3.OperationalError) as exc:
            if not write_failure(exc):
                raise
            stop_on_write_failure(self.crawler, f"catalog write failed for {item.item_id}: {exc}")
            raise DropItem(f"not recorded: {exc}") from exc
        return item

    def close_spider(self):
        spider = self.spider
        stats = self.stats
        failed = bool(stats.get_value("speechcrawl/write_errors"))
        status = (cat.JobStatus.FINISHED if spider.discovery_complete or spider.max_items
                  else cat.JobStatus.INCOMPLETE)
        try:
            if spider.discovery_complete and not failed:
                status = self._mark_gone(spider, stats) or status
            write_items_parquet(self.catalog, self.workdir / "manifests" / "items.parquet")
        except (OSError, sqlite3.OperationalError) as exc:
            if not write_failure(exc):
                raise
            failed = True
            note_write_failure(stats, str(exc))
        try:
            self.catalog.finish_job(self.job_id, cat.JobStatus.FAILED if failed else status, {
                k.removeprefix("speechcrawl/"): v for k, v in stats.get_stats().items()
                if k.startswith("speechcrawl/")})
        except (OSError, sqlite3.OperationalError) as exc:  # the job stays "running": honest
            log.error("could not record the end of job %s: %s", self.job_id, exc)
            stats.inc_value("speechcrawl/write_errors")

    def _mark_gone(self, spider, stats) -> str | None:
        """Mark what a complete discovery no longer finds; refuse a sudden large drop (a
        search index hiccup looks exactly like a mass deletion), returning "suspicious"."""
        limit = self.settings.getfloat("SPEECHCRAWL_MAX_GONE_FRACTION")
        try:
            gone = self.catalog.mark_gone(spider.source, spider.seen, self.job_id, limit)
        except cat.TooManyGone as exc:
            log.error("refusing to mark items gone: %s", exc)
            stats.set_value("speechcrawl/gone_refused", exc.gone)
            return cat.JobStatus.SUSPICIOUS
        stats.set_value("speechcrawl/items_gone", len(gone))
        return None


def _ts(value: str | None):
    return datetime.datetime.fromisoformat(value) if value else None


def write_items_parquet(catalog: cat.Catalog, path: Path) -> None:
    rows = []
    for r in catalog.items():
        rows.append({
            "source": r["source"], "item_id": r["item_id"], "url": r["url"], "title": r["title"],
            "creator": r["creator"], "license_raw": json.loads(r["license_raw"]),
            "license_url": r["license_url"], "license_spdx": r["license_spdx"],
            "license_family": r["license_family"], "decision": r["decision"],
            "reason": r["reason"], "crawled_at": _ts(r["crawled_at"]),
            "license_evidence": r["license_evidence"], "first_seen_at": _ts(r["first_seen_at"]),
            "gone_at": _ts(r["gone_at"]), "metadata_hash": r["metadata_hash"],
        })
    write_atomic(table_from_rows(rows, ITEMS), path)


class DownloadPipeline(_Pipeline):
    """Fetch each pending file in a worker thread, verify it, dedupe it, record it."""

    def open_spider(self):
        spider = self.spider
        s = self.settings
        self.downloader = Downloader(
            allowed_hosts=crawl_allow_list(spider.base_url,
                                           s.getlist("SPEECHCRAWL_ALLOWED_HOSTS")),
            user_agent=s.get("USER_AGENT"),
            max_bytes=s.getint("SPEECHCRAWL_MAX_FILE_BYTES"),
            retries=s.getint("SPEECHCRAWL_DOWNLOAD_RETRIES"),
            backoff_base=s.getfloat("SPEECHCRAWL_BACKOFF_BASE"),
            backoff_max=s.getfloat("SPEECHCRAWL_BACKOFF_MAX"),
            per_host=s.getint("SPEECHCRAWL_DOWNLOADS_PER_HOST"),
            max_total=s.getint("SPEECHCRAWL_DOWNLOADS_TOTAL"),
            grace_s=s.getfloat("SPEECHCRAWL_DOWNLOAD_GRACE_S"),
            min_bytes_per_s=s.getfloat("SPEECHCRAWL_DOWNLOAD_MIN_RATE"),
            max_attempt_s=s.getfloat("SPEECHCRAWL_DOWNLOAD_MAX_ATTEMPT_S"),
            obey_robots=s.getbool("ROBOTSTXT_OBEY"))
        self.raw = Path(spider.workdir) / "raw"

    def process_item(self, item: SourceItem):
        """Each file in its own worker thread (a slow or retrying file never holds up the
        others); the pair checks run once all of the item's files are settled, every crawl,
        so a verdict is never lost to an interruption or a re-crawl."""
        spider = self.spider
        if not item.pairs or item.decision.decision != cat.ItemDecision.ACCEPTED:
            return item
        fetches = [deferToThread(self._fetch_one, item, f, spider) for f in item.todo]
        d = DeferredList(fetches, consumeErrors=True)
        d.addCallback(lambda _: deferToThread(self._check_pairs, spider.catalog, item))
        d.addCallback(lambda _: item)
        return d

    def _dest(self, item: SourceItem, name: str) -> Path:
        """One directory per item and one file per remote name, whatever the names hold
        (``manifests.paths``): never outside raw/, never shared by two items or files."""
        return remote_path(self.raw.resolve(), item.source, item.item_id, name)

    def _fetch_one(self, item: SourceItem, f: cat.FileRow, spider) -> None:
        catalog: cat.Catalog = spider.catalog
        try:
            self._fetch_file(catalog, _ThreadSafeStats(self.stats), item, f,
                             (item.source, item.item_id))
        except UnsafePath as exc:  # a name no file can be stored under: the input's fault
            catalog.file_done(f, status=cat.SKIPPED, reason=f"unsafe name: {exc}")
        except Exception as exc:  # one bad file never stops the batch
            if write_failure(exc):
                stop_on_write_failure(self.crawler, f"writing {item.item_id}/{f.name}: {exc}")
                return  # the row stays pending: the next crawl fetches it again
            log.exception("failed on %s/%s", item.item_id, f.name)
            try:
                catalog.file_done(f, status=cat.FileStatus.FAILED,
                                  reason=f"internal error: {exc}")
            except (OSError, sqlite3.OperationalError) as again:
                if not write_failure(again):
                    raise
                stop_on_write_failure(self.crawler, f"catalog write failed: {again}")

    def _fetch_file(self, catalog, stats, item: SourceItem, f: cat.FileRow, key) -> None:
        if f.md5 and (copy := catalog.stored_copy(f.md5, f, not_item=key)):
            catalog.mark_duplicate(f, copy)
            # Bytes of ours a kill left behind (a partial download, or a finished one renamed
            # into place before the catalog heard of it): a duplicate keeps none of its own.
            dest = self._dest(item, f.name)
            part_path(dest).unlink(missing_ok=True)
            dest.unlink(missing_ok=True)
            stats.inc_value("speechcrawl/files_duplicate")
            return
        dest = self._dest(item, f.name)
        rel = str(dest.relative_to(self.raw.parent.resolve()))
        check = _content_check(f.role)
        if dest.exists() and f.md5 and _md5(dest) == f.md5:  # renamed, then killed
            if why := check(dest):
                dest.unlink()
                catalog.file_done(f, status=cat.SKIPPED, reason=why)
                return
            asr = asr_by_content(dest) if f.role == "transcript" and not f.asr else None
            copy, displaced = catalog.settle_download(f, f.md5, rel, dest.stat().st_size, 0,
                                                      asr)
            self._drop_unused(dest, rel, copy, displaced)
            return
        started = time.time()
        result = self.downloader.fetch(item.download_urls[f.name], dest, size=f.size, md5=f.md5,
                                       check=check)
        if result.status == "refused":  # fetched, verified, and not what its label says
            stats.inc_value("speechcrawl/files_skipped")
            catalog.file_done(f, status=cat.SKIPPED, reason=result.reason,
                              attempts=result.attempts)
            return
        if result.status != "downloaded":
            stats.inc_value(f"speechcrawl/files_{result.status}")
            catalog.file_done(f, status=cat.CORRUPT if result.status == "corrupt"
                              else cat.FileStatus.FAILED,
                              reason=result.reason, attempts=result.attempts)
            return
        # The window the benchmark's MB/s is measured over.
        stats.min_value("speechcrawl/download_first_start", started)
        stats.max_value("speechcrawl/download_last_end", time.time())
        stats.inc_value("speechcrawl/bytes_downloaded", result.nbytes)
        asr = asr_by_content(dest) if f.role == "transcript" and not f.asr else None
        copy, displaced = catalog.settle_download(f, result.md5, rel, result.nbytes,
                                                  result.attempts, asr)
        self._drop_unused(dest, rel, copy, displaced)
        if copy is not None:  # an earlier upload stored the same bytes meanwhile
            stats.inc_value("speechcrawl/files_duplicate")
            return
        stats.inc_value("speechcrawl/files_downloaded")
        if f.role == "audio" and f.length_s:
            stats.inc_value("speechcrawl/audio_seconds", f.length_s)

    def _drop_unused(self, dest: Path, rel: str, copy, displaced) -> None:
        """Delete the bytes no row points at any more: ours when an earlier upload has them,
        the displaced copy's when ours is the earlier upload."""
        if copy is not None and copy["local_path"] != rel:
            dest.unlink(missing_ok=True)
        if displaced is not None and displaced["local_path"] != rel:
            (self.raw.parent.resolve() / displaced["local_path"]).unlink(missing_ok=True)

    def _check_pairs(self, catalog: cat.Catalog, item: SourceItem) -> None:
        files = {r["name"]: r for r in catalog.files(item.source, item.item_id)}
        for p in item.pairs:
            a, t = files.get(p["audio"]), files.get(p["transcript"])
            usable = {cat.DOWNLOADED, cat.DUPLICATE}
            if not a or not t or a["status"] not in usable or t["status"] not in usable:
                bad = a if not a or a["status"] not in usable else t
                catalog.set_pair(item.source, item.item_id, p["audio"], cat.PairStatus.UNUSABLE,
                                 f"{bad['name'] if bad else '?'}: "
                                 f"{bad['reason'] if bad else 'missing'}")
                continue
            end = transcript_end(self.raw.parent / t["local_path"])
            if end is not None and a["length_s"] and end > a["length_s"] + DURATION_SLACK_S:
                catalog.set_pair(item.source, item.item_id, p["audio"], cat.PairStatus.REJECTED,
                                 f"transcript runs to {end:.1f} s, audio is "
                                 f"{a['length_s']:.1f} s long")
            elif t["asr"]:
                catalog.set_pair(item.source, item.item_id, p["audio"], cat.PairStatus.PAIRED,
                                 f"asr caption: {t['asr_reason']}")


def _content_check(role: str):
    """What the bytes of a file of this role must look like before they are kept."""
    if role == "audio":
        return lambda path: None if is_audio(path) else cat.NOT_AUDIO
    return lambda path: None if is_text(path) else cat.NOT_TEXT


class _ThreadSafeStats:
    """Scrapy's stats collector is not thread-safe: run each update on the reactor thread."""

    def __init__(self, stats):
        self._stats = stats

    def __getattr__(self, name):
        method = getattr(self._stats, name)
        return lambda *args: reactor.callFromThread(method, *args)


def _md5(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def _read_text(path: Path) -> str | None:
    """The transcript's text, decoded as the align stage decodes it; None when it is larger
    than the align stage reads (it records why), so nothing here costs more than that."""
    try:
        return read_text(path)
    except TextFileError:
        return None


def transcript_end(path: Path) -> float | None:
    """The end time of the last cue of an SRT or VTT file; None for untimed or unreadable."""
    text = _read_text(path)
    if text is None:
        return None
    try:
        if path.suffix.lower() == ".srt":
            ends = [s.end.total_seconds() for s in srt.parse(text)]
        elif path.suffix.lower() == ".vtt":
            ends = [c.end_time.in_milliseconds() / 1000 for c in webvtt.from_string(text)]
        else:
            return None
    except Exception:  # a malformed file: the align stage reports it properly
        return None
    return max(ends) if ends else None


def asr_by_content(path: Path) -> str | None:
    """Signs in the text itself that a caption was made by speech recognition."""
    text = _read_text(path)
    if text is None:
        return None
    if "<c>" in text and path.suffix.lower() == ".vtt":
        return "word-timed <c> tags: YouTube automatic captions"
    if path.suffix.lower() == ".vtt" and "Kind: captions" in text and "Language:" in text and \
            "<00:" in text:
        return "inline word timestamps: automatic captions"
    words = "".join(ln for ln in text.splitlines()
                    if "-->" not in ln and not ln.strip().isdigit() and ln.strip() != "WEBVTT")
    letters = [ch for ch in words if ch.isalpha()]
    if len(letters) > 300 and not any(ch.isupper() for ch in letters) and \
            not any(p in words for p in ".?!"):
        return "no capitals and no sentence punctuation anywhere"
    return None
