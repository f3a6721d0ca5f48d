"""archive.org: discovery through the Scrape API (advanced search as fallback), then metadata.

Run as ``speechcrawl crawl archive_org --workdir W`` or, inside the Scrapy project,
``scrapy crawl archive_org -a workdir=W [-a base_url=…] [-a query=…] [-a max_items=N]``.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote, urlencode

import scrapy

from crawler.items import SourceItem
from crawler.selection import choose_files, pair_files
from crawler.settings import ARCHIVE_ORG_BASE_URL, ARCHIVE_ORG_QUERY
from manifests.version import code_version

SEARCH_FIELDS = "identifier,title,licenseurl"


def _first(value) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value)


class ArchiveOrgSpider(scrapy.Spider):
    name = "archive_org"
    source = "archive_org"

    def __init__(self, base_url: str | None = None, query: str | None = None,
                 max_items: int | str | None = None, workdir: str = "work", **kwargs):
        super().__init__(**kwargs)
        self.base_url = (base_url or ARCHIVE_ORG_BASE_URL).rstrip("/")
        self.query = query or ARCHIVE_ORG_QUERY
        self.max_items = int(max_items) if max_items not in (None, "") else None
        self.workdir = workdir
        self.seen: set[str] = set()  # every identifier discovery returned
        self.discovery_complete = False
        self.scrape_total = None

    @classmethod
    def update_settings(cls, settings):
        super().update_settings(settings)
        if not settings.get("USER_AGENT"):
            contact = settings.get("SPEECHCRAWL_CONTACT")
            settings.set("USER_AGENT", f"speechcrawl/{code_version()} (speech corpus builder; "
                                       f"contact: {contact})", priority="spider")

    async def start(self):
        yield self._scrape_page(None)

    # -- discovery -----------------------------------------------------------------------------
    def _scrape_page(self, cursor: str | None) -> scrapy.Request:
        params = {"q": self.query, "fields": SEARCH_FIELDS,
                  "count": self.settings.getint("SPEECHCRAWL_SCRAPE_PAGE")}
        if cursor:
            params["cursor"] = cursor
        return scrapy.Request(f"{self.base_url}/services/search/v1/scrape?{urlencode(params)}",
                              callback=self.parse_scrape, errback=self.scrape_failed,
                              dont_filter=True, cb_kwargs={"cursor": cursor})

    def _advancedsearch_page(self, page: int) -> scrapy.Request:
        params = [("q", self.query), ("fl[]", "identifier"), ("rows", "500"),
                  ("page", str(page)), ("output", "json"), ("sort[]", "identifier asc")]
        return scrapy.Request(f"{self.base_url}/advancedsearch.php?{urlencode(params)}",
                              callback=self.parse_advancedsearch, dont_filter=True,
                              cb_kwargs={"page": page})

    def _limited(self) -> bool:
        return self.max_items is not None and len(self.seen) >= self.max_items

    def _found(self, identifiers: list[str]):
        for identifier in identifiers:
            if self._limited():
                return
            if identifier and identifier not in self.seen:
                self.seen.add(identifier)
                self.crawler.stats.inc_value("speechcrawl/items_discovered")
                yield scrapy.Request(f"{self.base_url}/metadata/{quote(identifier)}",
                                     callback=self.parse_metadata,
                                     cb_kwargs={"identifier": identifier})

    def parse_scrape(self, response, cursor):
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            # An error page or an {"error": …} answer is a failed search, not an empty one.
            reason = data.get("error") if isinstance(data, dict) else "not JSON"
            self.logger.warning("Scrape API answered without items (%s)", reason)
            if cursor is None:
                yield self._advancedsearch_page(1)
            return  # mid-way: this crawl's discovery stays incomplete; nothing is marked gone
        self.scrape_total = data.get("total")
        yield from self._found([str(d.get("identifier", "")) for d in data["items"]])
        if self._limited():
            return
        if data.get("cursor") and data["cursor"] != cursor:
            yield self._scrape_page(data["cursor"])
        elif self.scrape_total is None or len(self.seen) >= int(self.scrape_total):
            self.discovery_complete = True
        else:
            self.logger.warning("discovery ended with %d of %s items; not marking any item "
                                "gone", len(self.seen), self.scrape_total)

    def scrape_failed(self, failure):
        self.logger.warning("Scrape API failed (%s); falling back to advanced search",
                            failure.getErrorMessage())
        yield self._advancedsearch_page(1)

    def parse_advancedsearch(self, response, page):
        try:
            data = response.json()["response"]
            docs = list(data["docs"])
        except (ValueError, KeyError, TypeError):
            self.logger.warning("advanced search answered without results; discovery incomplete")
            return
        yield from self._found([str(d.get("identifier", "")) for d in docs])
        if self._limited():
            return
        if docs and data.get("start", 0) + len(docs) < data.get("numFound", 0):
            yield self._advancedsearch_page(page + 1)
        else:
            self.discovery_complete = True

    # -- items ---------------------------------------------------------------------------------
    def parse_metadata(self, response, identifier):
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict):
            self.crawler.stats.inc_value("speechcrawl/metadata_unavailable")
            self.logger.warning("no metadata for %s; it will be tried again next crawl",
                                identifier)
            return  # still in self.seen: found by discovery, so never marked gone for this
        meta = data["metadata"]
        files = [f for f in data.get("files", []) if isinstance(f, dict) and f.get("name")]
        choices = choose_files(files)
        digest = hashlib.sha256(json.dumps({"metadata": meta, "files": files},
                                           sort_keys=True).encode()).hexdigest()
        yield SourceItem(
            source=self.source,
            item_id=identifier,
            url=f"{self.base_url}/details/{quote(identifier)}",
            title=_first(meta.get("title")),
            creator=_first(meta.get("creator")),
            metadata=meta,
            metadata_hash=digest,
            files=choices,
            pairs=pair_files(choices),
            download_urls={c.name: f"{self.base_url}/download/{quote(identifier)}/"
                                   f"{quote(c.name)}" for c in choices},
        )
