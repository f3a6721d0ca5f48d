"""Crawler settings (a Scrapy settings module: plain names, overridable per job with --set).

The defaults are polite to the real archive.org; ``RELAXED`` is what a crawl of the loopback
sample archive uses instead.
"""

BOT_NAME = "speechcrawl"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# The People's Speech discovery query: permissive licenseurl values, audio or video, captions
# present, nothing access-restricted. Slashes are escaped as archive.org's Lucene parser needs.
# It may find more than the license gate accepts, never less: every form the gate accepts is
# matched (tests/test_query.py), including CC's retired licenses/publicdomain (with and without
# the slash), archive.org's licenses/cc0/3.0/ and license names written as text.
ARCHIVE_ORG_QUERY = (
    "(licenseurl:*creativecommons.org\\/publicdomain\\/* OR "
    "licenseurl:*creativecommons.org\\/licenses\\/publicdomain* OR "
    "licenseurl:*creativecommons.org\\/licenses\\/cc0\\/* OR "
    "licenseurl:*creativecommons.org\\/licenses\\/by\\/* OR "
    "licenseurl:*creativecommons.org\\/licenses\\/by-sa\\/* OR "
    "licenseurl:*usa.gov\\/government-works* OR "
    "licenseurl:*usa.gov\\/copyright.shtml* OR "
    "licenseurl:*usa.gov\\/government-copyright* OR "
    "licenseurl:*Attribution* OR licenseurl:CC*BY* OR licenseurl:*CC0*) "
    "AND mediatype:(audio OR movies) "
    "AND (closed_captioning:yes OR format:SubRip OR format:\"Web Video Text Tracks\") "
    "AND NOT access-restricted-item:TRUE"
)
ARCHIVE_ORG_BASE_URL = "https://archive.org"

# Who we are: archive.org asks heavy users to say who they are and how to reach them.
SPEECHCRAWL_CONTACT = "set SPEECHCRAWL_CONTACT to your email or project URL"
USER_AGENT = None  # built from the version and SPEECHCRAWL_CONTACT by the spider

# Politeness.
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 1.0
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
DOWNLOAD_TIMEOUT = 120
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False

# Retries: 429 and 5xx back off exponentially, honouring Retry-After.
RETRY_ENABLED = True
RETRY_TIMES = 6
RETRY_HTTP_CODES = [408, 429, 500, 502, 503, 504, 522, 524]
SPEECHCRAWL_BACKOFF_BASE = 2.0  # seconds before the first retry; doubles each time
SPEECHCRAWL_BACKOFF_MAX = 300.0

# The hosts a crawl may contact (exact names, or *.suffix), archive.org and its data nodes. They
# apply only when they cover the base URL's host; a crawl of any other base URL (the loopback
# sample archive) contacts that one host alone (crawler/hosts.py: crawl_allow_list). Whoever serves
# a source on several hosts names them all here.
SPEECHCRAWL_ALLOWED_HOSTS = ["archive.org", "*.archive.org"]

# File downloads (streamed outside Scrapy, see crawler/download.py).
SPEECHCRAWL_MAX_FILE_BYTES = 4 * 1024**3
SPEECHCRAWL_DOWNLOAD_RETRIES = 5
SPEECHCRAWL_DOWNLOADS_PER_HOST = 2  # per host connected to: a data node after the redirect
SPEECHCRAWL_DOWNLOADS_TOTAL = 6  # over all hosts at once
# Each download attempt: headers within GRACE_S of each request, then the bytes at no less than
# MIN_RATE on average (after GRACE_S), by a deadline of max(GRACE_S, bytes left / MIN_RATE)
# capped at MAX_ATTEMPT_S; past either, the attempt is abandoned and resumed by the next.
SPEECHCRAWL_DOWNLOAD_GRACE_S = 60.0
SPEECHCRAWL_DOWNLOAD_MIN_RATE = 16 * 1024  # bytes per second
SPEECHCRAWL_DOWNLOAD_MAX_ATTEMPT_S = 4 * 3600.0
SPEECHCRAWL_PROGRESS_INTERVAL = 10.0  # seconds between progress lines
SPEECHCRAWL_SCRAPE_PAGE = 1000  # Scrape API page size (100-10000)
# Slow wildcard queries: the official client (internetarchive's Search) waits 300 s for a page.
SPEECHCRAWL_SCRAPE_TIMEOUT = 300
SPEECHCRAWL_ADVANCEDSEARCH_ROWS = 500  # advanced search page size (the fallback discovery)
# Tries of one failed discovery page (the same cursor) before discovery is left incomplete.
SPEECHCRAWL_DISCOVERY_TRIES = 3
# A complete discovery that would mark more than this share of the known items gone is refused
# (the job is "suspicious"): a search-index hiccup looks exactly like a mass deletion.
SPEECHCRAWL_MAX_GONE_FRACTION = 0.2
# A metadata answer is parsed on the reactor thread: a larger one is refused (the item recorded
# as unreadable) instead of stalling the crawl. The largest real items (~100,000 files) answer a
# few tens of MB.
SPEECHCRAWL_METADATA_MAX_BYTES = 128 * 1024**2

DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.HostAllowListMiddleware": 50,
    # Proxies from the environment (http_proxy, …) would send requests through a host the
    # allow-list never sees; the file downloader ignores them too (trust_env = False).
    "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.BackoffRetryMiddleware": 550,
}
ITEM_PIPELINES = {
    "crawler.pipelines.PairingPipeline": 50,
    "crawler.pipelines.LicenseGatePipeline": 100,
    "crawler.pipelines.CatalogPipeline": 200,
    "crawler.pipelines.DownloadPipeline": 300,
}
EXTENSIONS = {
    "scrapy.extensions.logstats.LogStats": None,
    "crawler.progress.Progress": 500,
}
REACTOR_THREADPOOL_MAXSIZE = 10
LOG_LEVEL = "INFO"

# For the sample archive on loopback: no throttling, short backoffs, more parallelism.
RELAXED = {
    "DOWNLOAD_DELAY": 0,
    "AUTOTHROTTLE_ENABLED": False,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
    "SPEECHCRAWL_BACKOFF_BASE": 0.2,
    "SPEECHCRAWL_BACKOFF_MAX": 3.0,
    "SPEECHCRAWL_DOWNLOADS_PER_HOST": 4,
    "SPEECHCRAWL_DOWNLOADS_TOTAL": 8,
    "SPEECHCRAWL_DOWNLOAD_GRACE_S": 5.0,
    "SPEECHCRAWL_PROGRESS_INTERVAL": 2.0,
}
