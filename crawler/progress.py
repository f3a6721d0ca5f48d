"""A Scrapy extension that prints crawl progress to the terminal.

Items seen / accepted / rejected (and how many could not be read), files and bytes fetched this
run, the download rate, and failed writes (a full disk) — every few seconds and once at the end.
What the files came to (stored, duplicate, corrupt, failed, hours of audio) is read from the
catalog (``Catalog.counts``), the numbers the summary and the audit show: a download that turns
out to be a copy of another item's is one duplicate there, whichever finished first.
Scrapy's own log goes to the workdir's log file.
"""

from __future__ import annotations

import sys
import time

from scrapy import signals
from twisted.internet import task

from manifests.catalog import CatalogError, FileStatus


class Progress:
    def __init__(self, stats, interval: float, out=None):
        self.stats = stats
        self.interval = interval
        self.out = out or sys.stderr
        self.started = time.monotonic()
        self.loop = None
        self.spider = None

    @classmethod
    def from_crawler(cls, crawler):
        ext = cls(crawler.stats, crawler.settings.getfloat("SPEECHCRAWL_PROGRESS_INTERVAL"))
        crawler.signals.connect(ext.opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        return ext

    def opened(self, spider):
        self.started = time.monotonic()
        self.spider = spider
        if self.interval > 0:
            self.loop = task.LoopingCall(self.report)
            self.loop.start(self.interval, now=False)

    def closed(self, spider, reason):
        if self.loop and self.loop.running:
            self.loop.stop()
        self.report(final=True, reason=reason)

    def line(self, final: bool = False) -> str:
        """This run's figures; the last line adds the files as the catalog counts them (read
        once at the end: a count over the whole catalog is not for every few seconds)."""
        g = lambda k: self.stats.get_value(f"speechcrawl/{k}", 0)  # noqa: E731
        elapsed = max(time.monotonic() - self.started, 1e-6)
        mb = g("bytes_downloaded") / 1e6
        unreadable = g("metadata_unavailable")
        failed_writes = g("write_errors")
        stored = self.catalog_part() if final else None
        return (f"items {g('items_discovered')} found, {g('items_accepted')} accepted, "
                f"{g('items_rejected')} rejected"
                + (f" ({unreadable} unreadable)" if unreadable else "")
                + f" | files {g('files_downloaded')} downloaded this run ({mb:.1f} MB)"
                + (f" | {stored}" if stored else "")
                + f" | {mb / elapsed:.2f} MB/s, "
                f"{g('items_accepted') + g('items_rejected')} items in {elapsed:.0f} s"
                + (f" | {failed_writes} WRITES FAILED" if failed_writes else ""))

    def catalog_part(self) -> str | None:
        """The files as the catalog records them; None while there is no catalog to read
        (or it cannot be read: progress never stops a crawl)."""
        catalog = getattr(self.spider, "catalog", None)
        if catalog is None:
            return None
        try:
            c = catalog.counts()
        except CatalogError:
            return None
        n = lambda status: c.files.get(status, 0)  # noqa: E731
        return (f"catalog: files {n(FileStatus.DOWNLOADED)} stored "
                f"({c.audio_seconds / 3600:.2f} h of audio), {n(FileStatus.DUPLICATE)} duplicate, "
                f"{n(FileStatus.CORRUPT)} corrupt, {n(FileStatus.FAILED)} failed")

    def report(self, final: bool = False, reason: str | None = None) -> None:
        prefix = f"crawl {reason}: " if final else "crawl: "
        print(prefix + self.line(final), file=self.out, flush=True)
