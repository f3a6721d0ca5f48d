"""Downloader middlewares: the host allow-list and retries with backoff."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.response import response_status_message
from twisted.internet import reactor, task

from crawler.download import retry_after
from crawler.hosts import host_allowed

log = logging.getLogger(__name__)


class HostAllowListMiddleware:
    """Drop every request (redirects included) to a host not on SPEECHCRAWL_ALLOWED_HOSTS."""

    def __init__(self, allowed: list[str]):
        self.allowed = allowed

    @classmethod
    def from_crawler(cls, crawler):
        mw = cls(list(crawler.settings.getlist("SPEECHCRAWL_ALLOWED_HOSTS")))
        crawler.signals.connect(mw.spider_opened, signal=signals.spider_opened)
        return mw

    def spider_opened(self, spider):
        if host := urlsplit(getattr(spider, "base_url", "")).hostname:
            self.allowed.append(host)  # the source the crawl was pointed at

    def process_request(self, request):
        host = urlsplit(request.url).hostname or ""
        if not host_allowed(host, self.allowed):
            raise IgnoreRequest(f"host not allowed: {host}")
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
