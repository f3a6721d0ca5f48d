"""Run a crawl from Python (the CLI's ``crawl`` command) with the project's settings."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from crawler import settings as defaults

SPIDERS = {"archive_org"}  # spider names in crawler/spiders/


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def crawl_settings(workdir: Path, base_url: str, overrides: dict | None = None) -> Settings:
    settings = Settings()
    settings.setmodule(defaults, priority="project")
    if is_loopback(base_url):  # the sample archive: politeness relaxed
        settings.setdict(defaults.RELAXED, priority="project")
    if contact := os.environ.get("SPEECHCRAWL_CONTACT"):
        settings.set("SPEECHCRAWL_CONTACT", contact, priority="project")
    settings.set("LOG_FILE", str(workdir / "crawl.log"), priority="project")
    settings.set("LOG_FILE_APPEND", True, priority="project")
    for key, value in (overrides or {}).items():
        settings.set(key, value, priority="cmdline")
    return settings


def crawl(source: str, workdir: Path, base_url: str, query: str | None = None,
          max_items: int | None = None, overrides: dict | None = None) -> dict:
    """Crawl ``source`` into ``workdir``; return the crawl's stats. Blocks until done."""
    if source not in SPIDERS:
        raise ValueError(f"unknown source {source!r}; known: {', '.join(sorted(SPIDERS))}")
    workdir.mkdir(parents=True, exist_ok=True)
    process = CrawlerProcess(crawl_settings(workdir, base_url, overrides))
    crawler = process.create_crawler(source)
    process.crawl(crawler, base_url=base_url, query=query, max_items=max_items,
                  workdir=str(workdir))
    process.start()
    stats = crawler.stats.get_stats()
    if failed := stats.get("speechcrawl/write_failed"):  # disk full, read-only, quota
        raise CrawlFailed(f"crawl failed: could not write ({failed}); what was written is "
                          f"consistent: free space and run it again (log: "
                          f"{workdir / 'crawl.log'})")
    return stats


class CrawlFailed(RuntimeError):
    """The crawl could not write its results; the CLI exits non-zero with this one line."""
