"""Run a crawl from Python (the CLI's ``crawl`` command) with the project's settings."""

from __future__ import annotations

import os
import socket
import threading
from functools import cache
from pathlib import Path

from scrapy.crawler import CrawlerProcess
from scrapy.settings import BaseSettings, Settings, default_settings
from scrapy.spiderloader import SpiderLoader

from crawler import settings as defaults
from crawler.hosts import RefusedURL, connect_target, is_loopback

__all__ = ["crawl", "crawl_settings", "is_loopback", "setting_defaults", "spider_names",
           "start_refusal", "unreachable"]
# How long the first connection to a source may take before the crawl gives up on it.
REACH_TIMEOUT_S = 20.0


@cache
def spider_names() -> tuple[str, ...]:
    """The sources a crawl can name: the spiders Scrapy finds in ``SPIDER_MODULES``."""
    settings = Settings()
    settings.setmodule(defaults, priority="project")
    return tuple(sorted(SpiderLoader.from_settings(settings).list()))


@cache
def setting_defaults() -> dict:
    """Every setting a crawl may override, with its default: Scrapy's own settings, then
    this project's (``crawler/settings.py``). A name outside them is a typo: Scrapy would
    ignore it without a word."""
    return {name: getattr(module, name) for module in (default_settings, defaults)
            for name in dir(module) if name.isupper()}


def unreachable(base_url: str, timeout: float = REACH_TIMEOUT_S) -> str | None:
    """Why a crawl cannot reach ``base_url``'s host at all (DNS fails, the port refuses or
    never answers), or None. One connection, before Scrapy starts: otherwise robots.txt and
    every discovery request are retried with backoff for minutes, and the reason is only in
    the log. Crawls never use a proxy (crawler/settings.py), so this is the path they take."""
    _, host, port = connect_target(base_url)
    found: dict = {}

    def resolve() -> None:
        try:
            found["addresses"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            found["error"] = exc

    # getaddrinfo has no timeout of its own: a resolver that never answers is waited for
    # in a thread the process does not wait for.
    thread = threading.Thread(target=resolve, name="resolve", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return f"cannot reach {host}: DNS lookup gave no answer within {timeout:.0f} s"
    if "error" in found:
        exc = found["error"]
        return f"cannot reach {host}: DNS lookup failed ({exc.strerror or exc})"
    errors = []
    for family, kind, proto, _, address in found["addresses"]:
        try:
            with socket.socket(family, kind, proto) as s:
                s.settimeout(timeout)
                s.connect(address)
            return None
        except TimeoutError:
            errors.append(f"no answer on port {port} within {timeout:.0f} s")
        except ConnectionRefusedError:
            errors.append(f"connection refused on port {port}")
        except OSError as exc:
            errors.append(f"{exc.strerror or exc} (port {port})")
    return f"cannot reach {host}: {errors[0] if errors else 'no address'}"


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
    if source not in spider_names():
        raise ValueError(f"unknown source {source!r}; known: {', '.join(spider_names())}")
    settings = crawl_settings(workdir, base_url, overrides)
    if why := start_refusal(settings, base_url):
        raise ValueError(why)
    if why := unreachable(base_url):
        raise CrawlFailed(f"crawl failed: {why}")
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
