"""Verified, resumable downloads against real servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_server import write_item

from crawler.download import Downloader, retry_after
from crawler.hosts import RefusedURL, connect_target, crawl_allow_list, refusal
from crawler.run import crawl_settings, start_refusal
from crawler.sample_archive.server import FaultPlan, data_node, serving

DATA = bytes(range(256)) * 4096  # 1 MiB


def downloader(**kw) -> Downloader:
    opts = dict(allowed_hosts=["127.0.0.1"], user_agent="speechcrawl-test", max_bytes=10**8,
                retries=6, backoff_base=0.05, backoff_max=1.5, obey_robots=True)
    opts.update(kw)
    return Downloader(**opts)


@pytest.fixture
def site(tmp_path):
    write_item(tmp_path / "root", "item", {"data.bin": DATA, "small.txt": b"hello\n"})
    return tmp_path / "root"


def test_fetch_verifies_and_renames_atomically(site, tmp_path):
    with serving(site) as url:
        r = downloader().fetch(f"{url}/download/item/data.bin", tmp_path / "out" / "data.bin",
                               size=len(DATA), md5=hashlib.md5(DATA).hexdigest())
    assert r.status == "downloaded" and r.attempts == 1
    assert (tmp_path / "out" / "data.bin").read_bytes() == DATA
    assert not list((tmp_path / "out").glob(".*.part"))


def test_md5_mismatch_ends_corrupt_and_keeps_nothing(site, tmp_path):
    dest = tmp_path / "out" / "data.bin"
    with serving(site) as url:
        r = downloader(retries=3).fetch(f"{url}/download/item/data.bin", dest, size=len(DATA),
                                        md5="0" * 32)
    assert r.status == "corrupt" and "md5 mismatch" in r.reason and r.attempts == 3
    assert not dest.exists() and not list(dest.parent.glob(".*"))


def test_size_mismatch_and_size_cap(site, tmp_path):
    with serving(site) as url:
        r = downloader(retries=2).fetch(f"{url}/download/item/small.txt", tmp_path / "s.txt",
                                        size=5, md5=None)
        assert r.status == "corrupt" and "size mismatch" in r.reason
        r = downloader(max_bytes=1000).fetch(f"{url}/download/item/data.bin",
                                             tmp_path / "big", size=None, md5=None)
        assert r.status == "failed" and "too large" in r.reason and not (tmp_path / "big").exists()
        r = downloader(max_bytes=1000).fetch(f"{url}/download/item/data.bin",
                                             tmp_path / "big", size=len(DATA), md5=None)
        assert r.status == "failed" and r.attempts == 0  # refused before any request


def test_resumes_a_partial_file_with_a_range_request(site, tmp_path):
    dest = tmp_path / "data.bin"
    part = tmp_path / ".data.bin.part"
    part.write_bytes(DATA[:300_000])
    seen = []
    with serving(site) as url:
        d = downloader()
        original = d.session.get

        def spy(u, headers=None, **kw):
            seen.append(dict(headers or {}))
            return original(u, headers=headers, **kw)

        d.session.get = spy
        r = d.fetch(f"{url}/download/item/data.bin", dest, size=len(DATA),
                    md5=hashlib.md5(DATA).hexdigest())
    assert r.status == "downloaded" and dest.read_bytes() == DATA
    assert {"Range": "bytes=300000-"} in seen


@pytest.mark.parametrize("kind", ["429", "503", "reset", "short", "drip"])
def test_survives_every_fault_kind(site, tmp_path, kind):
    faults = FaultPlan(rate=1.0, kinds=(kind,), per_path=2, drip_bytes_per_s=4_000_000)
    with serving(site, faults=faults) as url:
        r = downloader().fetch(f"{url}/download/item/data.bin", tmp_path / "d.bin",
                               size=len(DATA), md5=hashlib.md5(DATA).hexdigest())
    assert r.status == "downloaded" and (tmp_path / "d.bin").read_bytes() == DATA
    # A drip is slow but whole, so one is enough; the others fail twice, then succeed.
    tries = 1 if kind == "drip" else 3
    assert [k for _, k in faults.injected] == [kind] * min(tries, 2)
    assert r.attempts == tries


def test_a_drip_slower_than_the_minimum_rate_is_abandoned_and_resumed(site, tmp_path):
    faults = FaultPlan(rate=1.0, kinds=("drip",), per_path=1, drip_bytes_per_s=200_000)
    with serving(site, faults=faults) as url:
        d = downloader(min_bytes_per_s=400_000, grace_s=0.5)
        r = d.fetch(f"{url}/download/item/data.bin", tmp_path / "d.bin", size=len(DATA),
                    md5=hashlib.md5(DATA).hexdigest())
    assert r.status == "downloaded" and r.attempts == 2  # gave up on the drip, then resumed
    assert (tmp_path / "d.bin").read_bytes() == DATA


class WrongRange(BaseHTTPRequestHandler):
    """Answers every Range request with 206 for bytes it was not asked for."""

    def do_GET(self):  # noqa: N802
        body = DATA[10:]
        self.send_response(206 if self.headers.get("Range") else 200)
        if self.headers.get("Range"):
            self.send_header("Content-Range", f"bytes 10-{len(DATA) - 1}/{len(DATA)}")
        else:
            body = DATA
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_misplaced_range_is_not_appended(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), WrongRange)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (tmp_path / ".d.bin.part").write_bytes(DATA[:5000])
        r = downloader(obey_robots=False).fetch(
            f"http://127.0.0.1:{server.server_address[1]}/d", tmp_path / "d.bin",
            size=len(DATA), md5=None)  # no md5: only the range check can catch it
    finally:
        server.shutdown()
        server.server_close()
    assert r.status == "downloaded" and (tmp_path / "d.bin").read_bytes() == DATA


def test_a_check_can_refuse_verified_bytes_before_they_are_kept(site, tmp_path):
    with serving(site) as url:
        r = downloader().fetch(f"{url}/download/item/small.txt", tmp_path / "out" / "s.txt",
                               size=6, md5=None, check=lambda p: "not what we wanted")
    assert r.status == "refused" and r.reason == "not what we wanted"
    assert not list((tmp_path / "out").iterdir())


class Redirector(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self):  # noqa: N802
        self.send_response(302)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_redirects_only_to_allowed_hosts(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        Redirector.target = f"http://localhost:{port}/elsewhere"
        r = downloader(obey_robots=False).fetch(f"http://127.0.0.1:{port}/x", tmp_path / "x",
                                                size=None, md5=None)
        assert r.status == "failed" and "host not allowed: localhost" in r.reason
        Redirector.target = "/again"  # a loop
        r = downloader(obey_robots=False).fetch(f"http://127.0.0.1:{port}/x", tmp_path / "x",
                                                size=None, md5=None)
        assert r.status == "failed" and "redirects" in r.reason
    finally:
        server.shutdown()
        server.server_close()
    assert not list(tmp_path.iterdir())


def test_forbidden_and_missing_files_fail_at_once(site, tmp_path):
    write_item(site, "locked", {"a.txt": b"x"}, **{"access-restricted-item": "true"})
    with serving(site) as url:
        r = downloader().fetch(f"{url}/download/locked/a.txt", tmp_path / "a", size=1, md5=None)
        assert r.status == "failed" and r.reason == "HTTP 403" and r.attempts == 1
        node, directory = data_node("item")
        r = downloader().fetch(f"{url}/{node}{directory}/nope", tmp_path / "n", size=1, md5=None)
        assert r.status == "failed" and r.reason == "HTTP 404"


def test_robots_txt_is_obeyed(site, tmp_path):
    with serving(site) as url:
        r = downloader().fetch(f"{url}/private/x", tmp_path / "p", size=None, md5=None)
    assert r.status == "failed" and "robots.txt" in r.reason


def test_retry_after_forms():
    assert retry_after("7") == 7
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past
    assert retry_after("soon") is None and retry_after(None) is None
    assert retry_after("\u00b2") is None  # a digit to str.isdigit, not to float()



# -- the network boundary: URLs as the client connects, hosts a crawl may reach -------------------

@pytest.fixture
def outsider():
    """A listener on another loopback address that must never see a connection: (port, seen)."""
    sock = socket.create_server(("127.0.0.3", 0))
    sock.settimeout(0.1)
    seen: list = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, addr = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            seen.append(addr)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1], seen
    stop.set()
    thread.join(timeout=2)
    sock.close()


@pytest.mark.parametrize("url, why", [
    ("http://evil.example\\@127.0.0.1/x", "backslash"),  # urllib3 and Twisted go to evil
    ("http://127.0.0.1:8000\\@evil.example/", "backslash"),
    ("http://a@b@127.0.0.1/", "userinfo"),
    ("http://user:pw@127.0.0.1/", "userinfo"),
    ("http://127.0.0.1\t.evil.example/", "'\\t'"),  # urlsplit drops tabs and newlines
    ("http://127.0.0.1\n/", "'\\n'"),
    (" http://127.0.0.1/", "' '"),
    ("http://127\u30020\u30020\u30021/", "non-ASCII"),  # IDNA would read ideographic dots
    ("http://[::ffff:127.0.0.2]/", "IPv4"),
    ("http://[::127.0.0.1]/", "IPv4"),
    ("http://%31%32%37.0.0.1/", "percent"),  # urllib3 decodes the host, urlsplit does not
    ("http://archive.org./", "trailing dot"),
    ("http://2130706433/", "numeric"),  # inet_aton reads these as 127.0.0.1
    ("http://0x7f.0.0.1/", "numeric"),
    ("http://127.1/", "numeric"),
    ("http://0177.0.0.1/", "numeric"),
    ("http://127.0.0.1:99999/", "port"),
    ("http://127.0.0.1:+80/", "port"),
    ("file:///etc/passwd", "scheme"),
    ("http:///x", "no host"),
    ("http://exa_mple.org/", "plain DNS name"),
])
def test_urls_the_clients_could_read_differently_are_refused(url, why):
    with pytest.raises(RefusedURL, match=re.escape(why) if why.startswith("'") else why):
        connect_target(url)
    assert refusal(url, ["127.0.0.1", "evil.example", "*.archive.org"]).startswith("refused URL")


@pytest.mark.parametrize("url, target", [
    ("https://Archive.ORG/metadata/x?q=a@b", ("https", "archive.org", 443)),
    ("http://ia800204.us.archive.org/4/items/x/a%20b.mp3", ("http", "ia800204.us.archive.org",
                                                            80)),
    ("http://127.0.0.1:8765/download/a/b#@evil", ("http", "127.0.0.1", 8765)),
    ("http://[::1]:8080/", ("http", "::1", 8080)),
])
def test_plain_urls_go_where_every_parser_says(url, target):
    assert connect_target(url) == target


def test_a_loopback_crawl_allows_only_its_own_host():
    default = ["archive.org", "*.archive.org"]
    loop = crawl_allow_list("http://127.0.0.1:8765", default)
    assert loop == ["127.0.0.1"]
    assert refusal("https://ia800204.us.archive.org/4/items/x/a.mp3", loop) == \
        "host not allowed: ia800204.us.archive.org"
    assert refusal("https://archive.org/metadata/x", loop) == "host not allowed: archive.org"
    assert refusal("http://127.0.0.2:8765/x", loop) == "host not allowed: 127.0.0.2"
    assert refusal("http://localhost:8765/x", loop) == "host not allowed: localhost"
    assert refusal("http://127.0.0.1:9999/x", loop) is None  # its data node on another port
    real = crawl_allow_list("https://archive.org", default)
    assert real == default and refusal("https://ia800204.us.archive.org/x", real) is None
    assert refusal("https://archive.org.evil.example/x", real) is not None
    assert refusal("https://127.0.0.1/x", real) == "host not allowed: 127.0.0.1"
    # Whoever serves the fake on two addresses names both; then both, and only both, are allowed.
    two = crawl_allow_list("http://127.0.0.1:8765", ["127.0.0.1", "127.0.0.2"])
    assert refusal("http://127.0.0.2:1/x", two) is None
    assert refusal("http://127.0.0.3:1/x", two) == "host not allowed: 127.0.0.3"
    with pytest.raises(RefusedURL):
        crawl_allow_list("http://127.0.0.3:1\\@127.0.0.1:1", default)


def test_crafted_urls_and_redirects_never_reach_another_host(tmp_path, outsider):
    port, seen = outsider
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    here = f"127.0.0.1:{server.server_address[1]}"
    try:
        d = downloader(obey_robots=False, retries=2)
        for url in [f"http://127.0.0.3:{port}\\@{here}/x",  # urlsplit: here; urllib3: 127.0.0.3
                    f"http://127.0.0.3:{port}/x", f"http://{here}@127.0.0.3:{port}/x",
                    f"http://%31%32%37.0.0.3:{port}/x", f"http://2130706435:{port}/x"]:
            r = d.fetch(url, tmp_path / "x", size=None, md5=None)
            assert r.status == "failed" and r.attempts == 0, url
            assert r.reason.startswith(("refused URL", "host not allowed")), r.reason
        for target in [f"http://127.0.0.3:{port}/x", f"http://127.0.0.3:{port}\\@{here}/x",
                       f"http://[::ffff:127.0.0.3]:{port}/x", f"//127.0.0.3:{port}/x"]:
            Redirector.target = target
            r = d.fetch(f"http://{here}/start", tmp_path / "x", size=None, md5=None)
            assert r.status == "failed" and r.attempts == 1, target
            assert r.reason.startswith(("refused URL", "host not allowed")), r.reason
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [] and not list(tmp_path.iterdir())
    # The control: allowed, the same listener is reached at once.
    downloader(allowed_hosts=["127.0.0.3"], obey_robots=False, retries=1).fetch(
        f"http://127.0.0.3:{port}/x", tmp_path / "y", size=None, md5=None)
    assert len(seen) == 1


def scrapy_crawl(workdir, base_url: str, env: dict | None = None,
                 *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "speechcrawl.cli", "crawl", "archive_org", "--workdir",
           str(workdir), "--base-url", base_url, "--query", "identifier:*", "--set",
           "RETRY_TIMES=0", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env=env or {k: v for k, v in os.environ.items()
                                      if k != "SPEECHCRAWL_CONTACT"})


def test_scrapy_requests_redirected_to_another_host_are_dropped(tmp_path, outsider):
    port, seen = outsider
    Redirector.target = f"http://127.0.0.3:{port}/everything"
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = scrapy_crawl(tmp_path, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 2 and "discovery found no items" in result.stderr
    log = (tmp_path / "crawl.log").read_text()
    assert "host not allowed: 127.0.0.3" in log
    assert seen == []


def test_a_crafted_base_url_is_refused_before_any_request(tmp_path, outsider):
    port, seen = outsider
    result = scrapy_crawl(tmp_path, f"http://127.0.0.3:{port}\\@127.0.0.1:{port}")
    assert result.returncode == 2 and seen == []
    assert "refused" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "catalog.sqlite").exists()


def test_a_real_crawl_needs_a_contact(tmp_path):
    result = scrapy_crawl(tmp_path / "w", "https://archive.org")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "SPEECHCRAWL_CONTACT" in lines[0]
    assert not (tmp_path / "w").exists()  # nothing made, nothing sent
    s = crawl_settings(tmp_path, "https://archive.org", {"SPEECHCRAWL_CONTACT": "  "})
    assert "SPEECHCRAWL_CONTACT" in start_refusal(s, "https://archive.org")
    s = crawl_settings(tmp_path, "https://archive.org", {"SPEECHCRAWL_CONTACT": "me@example.org"})
    assert start_refusal(s, "https://archive.org") is None
    s = crawl_settings(tmp_path, "http://127.0.0.1:8765")
    assert start_refusal(s, "http://127.0.0.1:8765") is None  # the sample archive needs none


def test_the_middleware_checks_urls_as_scrapy_sends_them():
    from scrapy import Request
    from scrapy.exceptions import IgnoreRequest
    from scrapy.utils.test import get_crawler

    from crawler.middlewares import HostAllowListMiddleware
    from crawler.spiders.archive_org import ArchiveOrgSpider

    crawler = get_crawler(ArchiveOrgSpider, {"SPEECHCRAWL_ALLOWED_HOSTS": ["archive.org",
                                                                         "*.archive.org"]})
    mw = HostAllowListMiddleware.from_crawler(crawler)
    with pytest.raises(IgnoreRequest, match="not opened"):
        mw.process_request(Request("http://127.0.0.1:8765/x"))
    mw.spider_opened(ArchiveOrgSpider(base_url="http://127.0.0.1:8765"))
    assert mw.process_request(Request("http://127.0.0.1:8765/metadata/x")) is None
    for url in ["https://archive.org/metadata/x", "http://evil.example\\@127.0.0.1:8765/",
                "http://127.0.0.1:8765@evil.example/", "http://u@127.0.0.1:8765/",
                "http://127\u30020\u30020\u30022:8765/"]:
        with pytest.raises(IgnoreRequest):
            mw.process_request(Request(url))


def test_the_scrape_request_waits_as_long_as_the_official_client():
    from scrapy.utils.test import get_crawler

    from crawler.run import crawl_settings as settings_for
    from crawler.spiders.archive_org import ArchiveOrgSpider

    s = settings_for(Path("/nonexistent"), "https://archive.org")
    crawler = get_crawler(ArchiveOrgSpider, {k: s[k] for k in (
        "SPEECHCRAWL_SCRAPE_TIMEOUT", "SPEECHCRAWL_SCRAPE_PAGE", "DOWNLOAD_TIMEOUT")})
    spider = ArchiveOrgSpider.from_crawler(crawler)
    assert spider._scrape_page(None).meta["download_timeout"] == 300
    assert "download_timeout" not in spider._advancedsearch_page(1).meta
    assert crawler.settings.getint("DOWNLOAD_TIMEOUT") == 120  # every other request's


# -- deadlines: drips of headers or body cannot hold a download ---------------------------------

def test_headers_that_drip_are_cut_off_at_the_deadline(site, tmp_path):
    faults = FaultPlan(rate=1.0, kinds=("header_drip",), per_path=1, header_drip_s=0.5)
    with serving(site, faults=faults) as url:
        started = time.monotonic()
        r = downloader(grace_s=1.0).fetch(f"{url}/download/item/data.bin", tmp_path / "d.bin",
                                          size=len(DATA), md5=hashlib.md5(DATA).hexdigest())
        took = time.monotonic() - started
    assert [k for _, k in faults.injected] == ["header_drip"]
    assert r.status == "downloaded" and r.attempts == 2  # cut off, then a clean attempt
    assert took < 5  # the dripped headers alone would take ~100 s; each byte is in time


def test_headers_that_always_drip_fail_in_bounded_time(site, tmp_path):
    faults = FaultPlan(rate=1.0, kinds=("header_drip",), per_path=10, header_drip_s=0.3)
    with serving(site, faults=faults) as url:
        started = time.monotonic()
        r = downloader(grace_s=0.8, retries=2).fetch(
            f"{url}/download/item/data.bin", tmp_path / "d.bin", size=len(DATA), md5=None)
        took = time.monotonic() - started
    assert r.status == "failed" and "deadline" in r.reason and r.attempts == 2
    assert took < 2 * 0.8 + 2  # two grace periods, one short backoff, slack
    assert not (tmp_path / "d.bin").exists()


def test_a_byte_drip_is_abandoned_at_once_and_resumed(site, tmp_path):
    # 512-byte pieces at 2 kB/s: a 256 KiB read would wait two minutes before any rate check.
    faults = FaultPlan(rate=1.0, kinds=("drip",), per_path=1, drip_bytes_per_s=2000,
                       drip_chunk=512)
    seen = []
    with serving(site, faults=faults) as url:
        d = downloader(min_bytes_per_s=200_000, grace_s=0.5)
        original = d.session.get

        def spy(u, headers=None, **kw):
            seen.append((u, dict(headers or {})))
            return original(u, headers=headers, **kw)

        d.session.get = spy
        started = time.monotonic()
        r = d.fetch(f"{url}/download/item/data.bin", tmp_path / "d.bin", size=len(DATA),
                    md5=hashlib.md5(DATA).hexdigest())
        took = time.monotonic() - started
    assert r.status == "downloaded" and r.attempts == 2 and took < 5
    assert any(h.get("Range", "").startswith("bytes=") for _, h in seen)  # resumed, not redone


class Stall(BaseHTTPRequestHandler):
    """Promises the whole body, sends half, then holds the connection open, silent."""

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(DATA)))
        self.end_headers()
        self.wfile.write(DATA[: len(DATA) // 2])
        self.wfile.flush()
        time.sleep(20)

    def log_message(self, *args):
        pass


class Trickle(BaseHTTPRequestHandler):
    """An endless body without a length, just above any minimum rate: only a cap can end it."""

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.end_headers()
        for _ in range(2000):
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            time.sleep(0.01)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("handler, opts, reason", [
    (Stall, dict(min_bytes_per_s=1_000_000, grace_s=0.5), "deadline"),
    (Trickle, dict(min_bytes_per_s=10_000, grace_s=0.3, max_attempt_s=1.5), "deadline"),
])
def test_a_silent_or_endless_body_ends_at_its_deadline(tmp_path, handler, opts, reason):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.monotonic()
        r = downloader(obey_robots=False, retries=1, timeout=(5, 30), **opts).fetch(
            f"http://127.0.0.1:{server.server_address[1]}/f", tmp_path / "f", size=None,
            md5=None)
        took = time.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()
    assert r.status == "failed" and reason in r.reason
    assert took < 4  # the read timeout (30 s) never came into it
    assert not (tmp_path / "f").exists()


# -- data nodes: the host after the redirect --------------------------------------------------

def test_resume_across_a_redirect_to_another_host(site, tmp_path):
    part = tmp_path / ".d.bin.part"
    part.write_bytes(DATA[:300_000])
    seen = []
    with serving(site, data_host="127.0.0.2") as url:
        d = downloader(allowed_hosts=["127.0.0.1", "127.0.0.2"])
        original = d.session.get

        def spy(u, headers=None, **kw):
            seen.append((u, dict(headers or {})))
            return original(u, headers=headers, **kw)

        d.session.get = spy
        r = d.fetch(f"{url}/download/item/data.bin", tmp_path / "d.bin", size=len(DATA),
                    md5=hashlib.md5(DATA).hexdigest())
        refused = downloader().fetch(f"{url}/download/item/small.txt", tmp_path / "s.txt",
                                     size=6, md5=None)
    assert r.status == "downloaded" and (tmp_path / "d.bin").read_bytes() == DATA
    node = [(u, h) for u, h in seen if u.startswith("http://127.0.0.2:") and "/items/" in u]
    assert node and node[-1][1] == {"Range": "bytes=300000-"}
    assert refused.status == "failed" and refused.reason == "host not allowed: 127.0.0.2"
    assert not (tmp_path / "s.txt").exists()


def test_robots_txt_is_read_on_each_data_node(site, tmp_path):
    node, directory = data_node("item")
    robots = f"User-agent: *\nDisallow: /{node}{directory}/data.bin\n"
    with serving(site, data_robots=robots) as url:
        d = downloader()
        ok = d.fetch(f"{url}/download/item/small.txt", tmp_path / "s.txt", size=6, md5=None)
        r = d.fetch(f"{url}/download/item/data.bin", tmp_path / "d.bin", size=len(DATA),
                    md5=None)
    assert ok.status == "downloaded"
    assert r.status == "failed" and r.reason.startswith("disallowed by robots.txt: http://")
    assert f"/{node}{directory}/data.bin" in r.reason  # the data node's rule, not the API's
    assert not (tmp_path / "d.bin").exists()


class Counting(BaseHTTPRequestHandler):
    """A data node that records how many downloads it serves at once."""

    lock = threading.Lock()
    now: dict = {}
    peak: dict = {}
    total = [0, 0]  # (now, peak) over every node

    def do_GET(self):  # noqa: N802
        me = self.server.server_address[1]
        with self.lock:
            self.now[me] = self.now.get(me, 0) + 1
            self.peak[me] = max(self.peak.get(me, 0), self.now[me])
            self.total[0] += 1
            self.total[1] = max(self.total[1], self.total[0])
        time.sleep(0.3)
        with self.lock:
            self.now[me] -= 1
            self.total[0] -= 1
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"bytes")

    def log_message(self, *args):
        pass


def test_download_slots_are_per_data_node_with_a_global_cap(tmp_path):
    nodes = [ThreadingHTTPServer(("127.0.0.1", 0), Counting) for _ in range(3)]
    for n in nodes:
        threading.Thread(target=n.serve_forever, daemon=True).start()
    ports = [n.server_address[1] for n in nodes]

    class ToNode(BaseHTTPRequestHandler):  # the API host: every file lives on a data node
        def do_GET(self):  # noqa: N802
            node = ports[int(self.path.rsplit("/", 1)[1]) % len(ports)]
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{node}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    api = ThreadingHTTPServer(("127.0.0.1", 0), ToNode)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    d = downloader(obey_robots=False, per_host=1, max_total=2)
    results = []
    try:
        threads = [threading.Thread(target=lambda i=i: results.append(d.fetch(
            f"http://127.0.0.1:{api.server_address[1]}/f/{i}", tmp_path / f"f{i}", size=5,
            md5=None))) for i in range(9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        for s in [api, *nodes]:
            s.shutdown()
            s.server_close()
    assert [r.status for r in results] == ["downloaded"] * 9
    assert max(Counting.peak.values()) == 1  # one at a time on each data node
    assert Counting.total[1] == 2  # the global cap, reached: slots are not the API host's


class HugeLength(BaseHTTPRequestHandler):
    """States a 5,000-digit Content-Length (int() refuses it), then sends a short body."""

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "9" * 5000)
        self.end_headers()
        self.wfile.write(b"short")
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_a_stated_length_is_a_hint_not_a_crash(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), HugeLength)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        r = downloader(obey_robots=False, retries=1, grace_s=0.5).fetch(
            f"http://127.0.0.1:{server.server_address[1]}/f", tmp_path / "f", size=None,
            md5=None)
    finally:
        server.shutdown()
        server.server_close()
    # A recorded outcome, never an exception: the bytes as they came, the length ignored.
    assert r.status == "downloaded" and (tmp_path / "f").read_bytes() == b"short"


# -- whole crawls: the pipeline's downloader under the same rules --------------------------------

def file_rows(workdir) -> list[dict]:
    conn = sqlite3.connect(f"file:{workdir / 'catalog.sqlite'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    with conn:
        return [dict(r) for r in conn.execute("SELECT * FROM files")]


def test_a_crawl_follows_data_nodes_on_a_second_address_only_when_named(archive, tmp_path):
    faults = FaultPlan(rate=0.4, kinds=("header_drip",), per_path=1, seed=3, header_drip_s=0.5)
    env = {**os.environ, "SPEECHCRAWL_CONTACT": "tests@example.org"}
    with serving(archive, data_host="127.0.0.2", faults=faults) as url:
        started = time.monotonic()
        named = scrapy_crawl(tmp_path / "named", url, env, "--set",
                             "SPEECHCRAWL_ALLOWED_HOSTS=127.0.0.1,127.0.0.2", "--set",
                             "SPEECHCRAWL_DOWNLOAD_GRACE_S=1")
        took = time.monotonic() - started
        unnamed = scrapy_crawl(tmp_path / "unnamed", url, env)
    assert named.returncode == 0 and unnamed.returncode == 0, named.stderr[-2000:]
    assert ("header_drip" in {k for _, k in faults.injected}) and took < 240
    rows = file_rows(tmp_path / "named")
    assert any(r["status"] == "downloaded" for r in rows)
    assert not [r for r in rows if r["status"] == "failed" and r["reason"] and any(
        w in r["reason"] for w in ("deadline", "not allowed", "robots"))]
    refused = [r for r in file_rows(tmp_path / "unnamed") if r["status"] == "failed"]
    assert refused and all(r["reason"] == "host not allowed: 127.0.0.2" for r in refused
                           if "403" not in (r["reason"] or ""))
    assert not [r for r in file_rows(tmp_path / "unnamed") if r["status"] == "downloaded"]


def test_proxies_from_the_environment_are_never_used(tmp_path, outsider, base_url):
    """A proxy named in the environment would carry every request to a host the allow-list
    never sees: Scrapy's proxy middleware is off and the downloader ignores the environment."""
    port, seen = outsider
    proxy = f"http://127.0.0.3:{port}"
    env = {k: v for k, v in os.environ.items() if k != "SPEECHCRAWL_CONTACT"}
    env.update(http_proxy=proxy, HTTP_PROXY=proxy, https_proxy=proxy, all_proxy=proxy,
               no_proxy="")
    result = scrapy_crawl(tmp_path, base_url, env, "--max-items", "2")
    assert result.returncode == 0, result.stderr
    assert seen == []
    with sqlite3.connect(tmp_path / "catalog.sqlite") as conn:
        downloaded = conn.execute("SELECT COUNT(*) FROM files WHERE status = 'downloaded'"
                                  ).fetchone()[0]
    assert downloaded > 0


@pytest.mark.parametrize("url, allowed, why", [
    ("http://ia800.us.archive.org:6379/x", ["*.archive.org"], "port not allowed"),
    ("https://archive.org:22/x", ["archive.org"], "port not allowed"),
    ("http://mirror.example:8080/x", ["mirror.example:8081"], "host not allowed"),
    ("https://ia800.us.archive.org/x", ["*.archive.org"], None),
    ("http://archive.org:80/x", ["archive.org"], None),
    ("http://mirror.example:8080/x", ["mirror.example:8080"], None),
    ("http://127.0.0.1:22/x", ["127.0.0.1"], None),  # this machine: the fake's data node port
])
def test_off_this_machine_only_the_schemes_port_unless_named(url, allowed, why):
    got = refusal(url, allowed)
    assert (got is None) if why is None else got.startswith(why), got


def test_a_mirror_on_its_own_port_allows_that_port_alone():
    allowed = crawl_allow_list("http://mirror.example:8080", ["archive.org", "*.archive.org"])
    assert allowed == ["mirror.example:8080"]
    assert refusal("http://mirror.example:8080/download/x", allowed) is None
    assert refusal("http://mirror.example:6379/", allowed).startswith("host not allowed")
