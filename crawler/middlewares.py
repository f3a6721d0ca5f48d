"""Downloader middlewares: the host allow-list and retries with backoff."""

from __future__ import annotations

import logging

from scrapy import signals
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.response import response_status_message
from twisted.internet import reactor, task

from crawler.download import retry_after
from crawler.hosts import RefusedURL, crawl_allow_list, refusal
from crawler.run import start_refusal

log = logging.getLogger(__name__)


class HostAllowListMiddleware:
    """Drop every request (redirects and robots.txt included) that would connect to a host
    outside the crawl's allow-list, checked as the HTTP client reads the URL
    (``crawler.hosts``). Until the spider opens, and for good when the crawl may not start at
    all (see ``crawler.run.start_refusal``), nothing is sent."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.allowed: list[str] = []
        self.blocked: str | None = "the spider has not opened yet"

    @classmethod
    def from_crawler(cls, crawler):
        mw = cls(crawler)
        crawler.signals.connect(mw.spider_opened, signal=signals.spider_opened)
        return mw

    def spider_opened(self, spider):
        base_url = getattr(spider, "base_url", "")
        settings = self.crawler.settings
        self.blocked = start_refusal(settings, base_url)
        if self.blocked is None:
            try:
                self.allowed = crawl_allow_list(
                    base_url, settings.getlist("SPEECHCRAWL_ALLOWED_HOSTS"))
            except RefusedURL as exc:
                self.blocked = str(exc)
        if self.blocked:  # every request is refused; the crawl ends with nothing fetched
            log.error("crawl refused: %s", self.blocked)

    def process_request(self, request):
        why = self.blocked or refusal(request.url, self.allowed)
        if why:
            self.crawler.stats.inc_value("speechcrawl/requests_refused")
            log.warning("not sent: %s (%s)", request.url[:300], why)
            raise IgnoreRequest(why)
        return None


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retries, but waiting before each one: Retry-After if the server sent it, else
    exponential backoff. Only the retried request waits; the rest of the crawl goes on."""

    def __init__(self, settings):
        super().__init__(settings)
        self.base = settings.getfloat("SPEECHCRAWL_BACKOFF_BASE")
        self.cap = settings.getfloat("SPEECHCRAWL_BACKOFF_MAX")

    async def _wait(self, retry, header: bytes | None) -> None:
        delay = retry_after(header.decode("latin-1")) if header else None
        if delay is None:
            delay = self.base * 2 ** (retry.meta.get("retry_times", 1) - 1)
        delay = min(delay, self.cap)
        if delay > 0:
            await maybe_deferred_to_future(task.deferLater(reactor, delay, lambda: None))

    async def process_response(self, request, response):
        if request.meta.get("dont_retry") or response.status not in self.retry_http_codes:
            return response
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            return response
        await self._wait(retry, response.headers.get("Retry-After"))
        return retry

    async def process_exception(self, request, exception):
        if request.meta.get("dont_retry") or not isinstance(exception, self.exceptions_to_retry):
            return None
        retry = self._retry(request, exception)
        if retry is not None:
            await self._wait(retry, None)
        return retry
