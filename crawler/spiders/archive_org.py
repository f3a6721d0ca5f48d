"""archive.org: discovery through the Scrape API (advanced search as fallback), then metadata.

Run as ``speechcrawl crawl archive_org --workdir W`` or, inside the Scrapy project,
``scrapy crawl archive_org -a workdir=W [-a base_url=…] [-a query=…] [-a max_items=N]``.

Discovery is only ever *complete* when the service said so in full: the Scrape API ran out of
cursors having returned ``total`` identifiers, or advanced search returned ``numFound`` of them.
Anything else (an error answer, advanced search's 10,000-result window, an empty page before
``numFound``, a malformed entry) leaves it incomplete, and an incomplete discovery never marks an
item gone. A failed Scrape page is retried from its own cursor, a bounded number of times; only a
failure of the very first page falls back to advanced search.

Every identifier discovery returns reaches the catalog: with its metadata, or rejected with the
reason its metadata could not be used (malformed, dark, access-restricted, unreadable).
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote, urlencode

import scrapy
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.defer import CancelledError

from crawler.items import SourceItem
from crawler.selection import Choice, choose_files, pair_files
from crawler.settings import ARCHIVE_ORG_BASE_URL, ARCHIVE_ORG_QUERY
from manifests.version import code_version

SEARCH_FIELDS = "identifier,title,licenseurl"
MAX_IDENTIFIER_CHARS = 1000  # archive.org's are ≤ 100; anything longer is not an identifier


def _first(value) -> str | None:
    """A display field (title, creator) as text: the first usable value of a list; None for
    an object or anything else that is not a string or a number."""
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str | int | float)
                      and not isinstance(v, bool)), None)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value)


def _kind(value) -> str:
    return "missing" if value is None else f"a {type(value).__name__}"


def _truthy(value) -> bool:
    """archive.org's flags: true, "true", or a list holding one of them."""
    if isinstance(value, list):
        return any(_truthy(v) for v in value[:10])
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _int(value) -> int | None:
    try:
        return int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _error_of(data) -> str:
    """What an error answer says, short: archive.org answers ``{"error": …}`` in several
    shapes (a string, or an object with a code and a message)."""
    if not isinstance(data, dict):
        return "not a JSON object"
    err = data.get("error")
    if isinstance(err, dict):
        err = " ".join(str(err.get(k)) for k in ("code", "msg", "message") if err.get(k))
    return str(err or "no results in the answer")[:300]


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
        self.discovery_problem: str | None = None  # why discovery is incomplete, when known
        self.scrape_total = None

    @classmethod
    def update_settings(cls, settings):
        super().update_settings(settings)
        if not settings.get("USER_AGENT"):
            contact = settings.get("SPEECHCRAWL_CONTACT")
            settings.set("USER_AGENT", f"speechcrawl/{code_version()} (speech corpus builder; "
                                       f"contact: {contact})", priority="spider")

    def pair(self, files: list[Choice]) -> list[dict]:
        """Which transcript belongs to which audio file of one item (called off the reactor
        thread: an item may list thousands of files)."""
        return pair_files(files)

    async def start(self):
        yield self._scrape_page(None)

    # -- discovery -----------------------------------------------------------------------------
    def _tries(self) -> int:
        return max(1, self.settings.getint("SPEECHCRAWL_DISCOVERY_TRIES"))

    def _scrape_page(self, cursor: str | None, attempt: int = 1) -> scrapy.Request:
        params = {"q": self.query, "fields": SEARCH_FIELDS,
                  "count": self.settings.getint("SPEECHCRAWL_SCRAPE_PAGE")}
        if cursor:
            params["cursor"] = cursor
        return scrapy.Request(f"{self.base_url}/services/search/v1/scrape?{urlencode(params)}",
                              callback=self.parse_scrape, errback=self.scrape_failed,
                              dont_filter=True, cb_kwargs={"cursor": cursor, "attempt": attempt},
                              # slow wildcard queries: as long as the official client waits
                              meta={"download_timeout":
                                    self.settings.getint("SPEECHCRAWL_SCRAPE_TIMEOUT")})

    def _advancedsearch_page(self, page: int, attempt: int = 1) -> scrapy.Request:
        params = [("q", self.query), ("fl[]", "identifier"), ("rows", str(self._rows())),
                  ("page", str(page)), ("output", "json"), ("sort[]", "identifier asc")]
        return scrapy.Request(f"{self.base_url}/advancedsearch.php?{urlencode(params)}",
                              callback=self.parse_advancedsearch, errback=self.search_failed,
                              dont_filter=True, cb_kwargs={"page": page, "attempt": attempt})

    def _rows(self) -> int:
        return max(1, self.settings.getint("SPEECHCRAWL_ADVANCEDSEARCH_ROWS"))

    def _incomplete(self, why: str) -> None:
        if self.discovery_problem is None:  # the first cause is the one reported
            self.discovery_problem = why
            self.crawler.stats.set_value("speechcrawl/discovery_incomplete", why)
        self.logger.warning("discovery incomplete (%s); no item will be marked gone", why)

    def _limited(self) -> bool:
        return self.max_items is not None and len(self.seen) >= self.max_items

    def _found(self, docs: list) -> list[scrapy.Request]:
        """Metadata requests for new identifiers; malformed entries are counted and make the
        discovery incomplete (their item may be one we know)."""
        out = []
        for doc in docs:
            if self._limited():
                break
            identifier = doc.get("identifier") if isinstance(doc, dict) else None
            if not isinstance(identifier, str) or not identifier.strip() or \
                    len(identifier) > MAX_IDENTIFIER_CHARS:
                self.crawler.stats.inc_value("speechcrawl/discovery_malformed")
                self._incomplete(f"a search result without a usable identifier "
                                 f"({_kind(identifier)})")
                continue
            if identifier not in self.seen:
                self.seen.add(identifier)
                self.crawler.stats.inc_value("speechcrawl/items_discovered")
                limit = self.settings.getint("SPEECHCRAWL_METADATA_MAX_BYTES")
                out.append(scrapy.Request(f"{self.base_url}/metadata/{quote(identifier)}",
                                          callback=self.parse_metadata,
                                          errback=self.metadata_failed,
                                          cb_kwargs={"identifier": identifier},
                                          meta={"download_maxsize": limit,
                                                "download_warnsize": limit // 2}))
        return out

    def parse_scrape(self, response, cursor, attempt=1):
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            # An error page or an {"error": …} answer is a failed search, not an empty one.
            yield from self._scrape_retry(cursor, attempt, _error_of(data))
            return
        self.scrape_total = _int(data.get("total"))
        yield from self._found(data["items"])
        if self._limited():
            return
        next_cursor = data.get("cursor")
        if isinstance(next_cursor, str) and next_cursor and next_cursor != cursor:
            yield self._scrape_page(next_cursor)
        elif self.scrape_total is not None and len(self.seen) >= self.scrape_total:
            self.discovery_complete = self.discovery_problem is None
        else:
            self._incomplete(f"the Scrape API stopped after {len(self.seen)} of "
                             f"{self.scrape_total} items")

    def scrape_failed(self, failure):
        kw = failure.request.cb_kwargs
        yield from self._scrape_retry(kw.get("cursor"), kw.get("attempt", 1),
                                      self._failure_reason(failure))

    def _scrape_retry(self, cursor, attempt: int, reason: str):
        """The same cursor again, a bounded number of times: a failure mid-way never restarts
        discovery from the beginning. Only the first page falls back to advanced search."""
        if attempt < self._tries():
            self.logger.warning("Scrape API failed (%s); trying cursor %s again (%d of %d)",
                                reason, cursor or "(first page)", attempt + 1, self._tries())
            yield self._scrape_page(cursor, attempt + 1)
        elif cursor is None:
            self.logger.warning("Scrape API failed (%s); falling back to advanced search",
                                reason)
            yield self._advancedsearch_page(1)
        else:
            self._incomplete(f"the Scrape API failed at cursor {cursor[:40]} after "
                             f"{attempt} tries: {reason}")

    def parse_advancedsearch(self, response, page, attempt=1):
        try:
            data = response.json()
        except ValueError:
            data = None
        body = data.get("response") if isinstance(data, dict) else None
        docs = body.get("docs") if isinstance(body, dict) else None
        if not isinstance(docs, list):
            yield from self._search_retry(page, attempt, _error_of(data))
            return
        yield from self._found(docs)
        if self._limited():
            return
        start, total = _int(body.get("start")), _int(body.get("numFound"))
        if start is None or total is None:
            self._incomplete(f"advanced search page {page} has no start/numFound")
        elif docs and start + len(docs) < total:
            yield self._advancedsearch_page(page + 1)
        elif start + len(docs) >= total:
            self.discovery_complete = self.discovery_problem is None
        else:  # an empty page before the end is a failure, not the end of the data
            self._incomplete(f"advanced search page {page} was empty at {start} of {total}")

    def search_failed(self, failure):
        kw = failure.request.cb_kwargs
        yield from self._search_retry(kw.get("page", 1), kw.get("attempt", 1),
                                      self._failure_reason(failure))

    def _search_retry(self, page: int, attempt: int, reason: str):
        if "RANGE_OUT_OF_BOUNDS" in reason or "window is too large" in reason:
            # archive.org's advanced search pages no further than 10,000 results: retrying
            # cannot help, and it is not the end of the data.
            self._incomplete(f"advanced search cannot page past page {page - 1} "
                             f"({self._rows()} rows each): {reason}")
        elif attempt < self._tries():
            self.logger.warning("advanced search page %d failed (%s); trying again", page,
                                reason)
            yield self._advancedsearch_page(page, attempt + 1)
        else:
            self._incomplete(f"advanced search page {page} failed {attempt} times: {reason}")

    @staticmethod
    def _failure_reason(failure) -> str:
        if failure.check(HttpError):
            response = failure.value.response
            try:
                detail = _error_of(response.json())
            except ValueError:
                detail = response.text[:200] if hasattr(response, "text") else ""
            return f"HTTP {response.status}: {detail}"
        if failure.check(CancelledError):  # Scrapy cancels an answer over download_maxsize
            limit = failure.request.meta.get("download_maxsize") if failure.request else None
            return f"download cancelled (an answer over the {limit}-byte limit?)"
        return f"{failure.type.__name__}: {failure.getErrorMessage()}"[:300]

    # -- items ---------------------------------------------------------------------------------
    def metadata_failed(self, failure):
        identifier = failure.request.cb_kwargs["identifier"]
        yield self._unreadable(identifier, f"metadata unavailable: "
                                           f"{self._failure_reason(failure)}")

    def _unreadable(self, identifier: str, reason: str) -> SourceItem:
        """An item discovery found but whose metadata could not be read this time: recorded
        with the reason (never silently dropped) and tried again by the next crawl."""
        self.crawler.stats.inc_value("speechcrawl/metadata_unavailable")
        self.logger.warning("%s: %s", identifier, reason)
        return SourceItem(source=self.source, item_id=identifier,
                          url=f"{self.base_url}/details/{quote(identifier)}",
                          title=None, creator=None, metadata={}, metadata_hash="", files=[],
                          pairs=[], download_urls={}, problem=reason, files_known=False,
                          unreadable=True)

    def parse_metadata(self, response, identifier):
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            yield self._unreadable(identifier, f"metadata unavailable: the answer is "
                                               f"{'not JSON' if data is None else _kind(data)}")
            return
        if not data:  # archive.org's answer for an identifier it does not (or no longer) know
            yield self._unreadable(identifier, "metadata unavailable: empty answer (archive.org "
                                               "does not know this identifier now)")
            return
        problems = []
        meta = data.get("metadata")
        if not isinstance(meta, dict):
            problems.append(f"malformed metadata: metadata is {_kind(meta)}, not an object")
            meta = {}
        files = data.get("files")
        files_known = isinstance(files, list)
        if files is None:
            problems.append("malformed metadata: files is null" if "files" in data
                            else "malformed metadata: files is missing")
        elif not files_known:
            problems.append(f"malformed metadata: files is {_kind(files)}, not a list")
        if _truthy(data.get("is_dark")):
            problems.insert(0, "dark item: archive.org has withdrawn it from public access "
                               "(is_dark)")
        if _truthy(meta.get("access-restricted-item")):
            problems.insert(0, "access-restricted item: its files are not publicly "
                               "downloadable (access-restricted-item)")
        files = files if files_known else []
        choices = choose_files(files)
        for c in choices:
            if c.skip and c.skip.startswith("malformed file entry"):
                self.crawler.stats.inc_value("speechcrawl/files_malformed")
        hashed = {"metadata": meta, "files": files, **({"problems": problems} if problems
                                                        else {})}
        digest = hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()
                                ).hexdigest()
        fetchable = [c for c in choices if c.skip is None]
        yield SourceItem(
            source=self.source,
            item_id=identifier,
            url=f"{self.base_url}/details/{quote(identifier)}",
            title=_first(meta.get("title")),
            creator=_first(meta.get("creator")),
            metadata=meta,
            metadata_hash=digest,
            files=choices,
            pairs=[],  # paired off the reactor thread (PairingPipeline calls self.pair)
            download_urls={c.name: f"{self.base_url}/download/{quote(identifier)}/"
                                   f"{quote(c.name)}" for c in fetchable},
            problem=problems[0] if problems else None,
            files_known=files_known,
        )
