"""Verified, resumable downloads against real servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_server import write_item

from crawler.download import Downloader, retry_after, safe_relpath
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


@pytest.mark.parametrize("name, expected", [
    ("talk.mp3", "talk.mp3"),
    ("Session 1 - Opening Remarks.mp3", "Session 1 - Opening Remarks.mp3"),
    ("sub/dir/file.srt", "sub/dir/file.srt"),
    ("../../etc/passwd", "_/_/etc/passwd~"),
    ("/abs/path.mp3", "_/abs/path~"),
    ("..\\..\\win.txt", "_/_/win~"),
    ("a\x00b\nc.mp3", "abc~"),
    (".hidden", "hidden~"),
    ("what?*<>|.mp3", "what_____~"),
])
def test_remote_names_are_sanitised(name, expected, tmp_path):
    rel = str(safe_relpath(name))
    assert rel == expected if "~" not in expected else rel.startswith(expected)
    assert (tmp_path / rel).resolve().is_relative_to(tmp_path)


def test_names_that_sanitise_alike_never_share_a_path():
    names = ["a?b.mp3", "a_b.mp3", "a*b.mp3", "a/b.mp3", "a\\b.mp3", "A?B.mp3"]
    assert len({safe_relpath(n) for n in names}) == len(names)


def test_retry_after_forms():
    assert retry_after("7") == 7
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past
    assert retry_after("soon") is None and retry_after(None) is None
    assert retry_after("\u00b2") is None  # a digit to str.isdigit, not to float()


def test_a_lying_server_path_never_leaves_the_destination(tmp_path):
    assert Path(tmp_path / safe_relpath("../../../../tmp/x")).resolve().is_relative_to(tmp_path)
