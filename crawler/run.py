"""Run a crawl from Python (the CLI's ``crawl`` command) with the project's settings."""

from __future__ import annotations

import os
from pathlib import Path

from scrapy.crawler import CrawlerProcess
from scrapy.settings import BaseSettings, Settings

from crawler import settings as defaults
from crawler.hosts import RefusedURL, connect_target, is_loopback

SPIDERS = {"archive_org"}  # spider names in crawler/spiders/
__all__ = ["crawl", "crawl_settings", "is_loopback", "start_refusal"]


def start_refusal(settings: BaseSettings, base_url: str) -> str | None:
    """Why a crawl of ``base_url`` must not start, or None. Checked before any request: a base
    URL the HTTP clients would read differently, or a real site crawled without a contact for
    its operators (archive.org asks heavy users to say who they are)."""
    try:
        connect_target(base_url)
    except RefusedURL as exc:
        return f"base URL {base_url!r} refused: {exc}"
    contact = (settings.get("SPEECHCRAWL_CONTACT") or "").strip()
    if not is_loopback(base_url) and contact in ("", defaults.SPEECHCRAWL_CONTACT):
        return (f"set SPEECHCRAWL_CONTACT (your email or project URL) before crawling "
                f"{base_url}: it goes into the User-Agent so the site's operators can reach you")
    return None


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
    settings = crawl_settings(workdir, base_url, overrides)
    if why := start_refusal(settings, base_url):
        raise ValueError(why)
    workdir.mkdir(parents=True, exist_ok=True)
    process = CrawlerProcess(settings)
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
