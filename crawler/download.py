"""Verified, resumable, streamed file downloads.

Scrapy keeps every response body in memory, which is wrong for multi-gigabyte recordings, so
files are fetched here with a streaming client instead: bytes go to a ``.part`` file beside the
destination while their md5 is computed, an interrupted transfer resumes with a ``Range`` request,
and only a file whose size and md5 match the source's metadata is fsynced and renamed into place.
Everything a lying or failing server can do ends in a retry with exponential backoff (honouring
``Retry-After``) or in a recorded reason; a bad file is never kept under its final name.
"""

from __future__ import annotations

import email.utils
import errno
import hashlib
import os
import queue
import re
import threading
import time
import urllib.robotparser
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from crawler import deadline
from crawler.hosts import connect_target, refusal

CHUNK = 256 * 1024  # reading back a partial file
READ = 256 * 1024  # the most one read from the network returns; it returns what has arrived
MAX_REDIRECTS = 5
ROBOTS_MAX_BYTES = 512 * 1024
# An attempt slower than this on average (after a grace period) is abandoned and resumed later,
# and every attempt has a deadline from the bytes it has to deliver at this rate (headers get
# GRACE_S), so a server that drips a byte a minute cannot hold a download slot for ever.
MIN_BYTES_PER_S = 16 * 1024
GRACE_S = 60.0
MAX_ATTEMPT_S = 4 * 3600.0  # the hard cap on one attempt, whatever the size
# Errors of this machine's storage, not of the server: a download that meets one is not retried
# (a full disk fails every attempt) but raised, and the crawl stops (crawler/pipelines.py).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})


@dataclass
class Fetched:
    status: str  # downloaded | corrupt | failed
    path: Path | None
    md5: str | None
    nbytes: int
    attempts: int
    reason: str | None = None


class _Retry(Exception):
    def __init__(self, reason: str, delay: float | None = None):
        super().__init__(reason)
        self.delay = delay


class _Mismatch(_Retry):
    """The bytes arrived but are not the ones the metadata describes."""


class _Fatal(Exception):
    """Retrying cannot help (403, 404, a disallowed redirect, over the size cap)."""


def part_path(dest: Path) -> Path:
    """Where the bytes of ``dest`` gather until they are verified (resumed from, after a kill)."""
    return dest.with_name(f".{dest.name}.part")


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,9}", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Downloader:
    """Fetches files for the crawl's worker threads: at most ``max_total`` at once, at most
    ``per_host`` at once from any one host actually connected to (a redirect to a data node
    counts against the data node, not the host first asked), robots.txt obeyed per origin."""

    def __init__(self, *, allowed_hosts: list[str], user_agent: str, max_bytes: int,
                 retries: int = 5, backoff_base: float = 1.0, backoff_max: float = 120.0,
                 timeout: tuple[float, float] = (10.0, 60.0), per_host: int = 2,
                 max_total: int = 8, obey_robots: bool = True,
                 min_bytes_per_s: float = MIN_BYTES_PER_S, grace_s: float = GRACE_S,
                 max_attempt_s: float = MAX_ATTEMPT_S):
        self.allowed_hosts = allowed_hosts
        self.max_bytes = max_bytes
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.obey_robots = obey_robots
        self.user_agent = user_agent
        self.min_bytes_per_s, self.grace_s = min_bytes_per_s, grace_s
        self.max_attempt_s = max_attempt_s
        self._local = threading.local()
        self._total = threading.BoundedSemaphore(max_total)
        self._slots: dict[tuple[str, int], threading.BoundedSemaphore] = defaultdict(
            lambda: threading.BoundedSemaphore(per_host))
        self._robots: dict[str, urllib.robotparser.RobotFileParser] = {}
        self._lock = threading.Lock()

    @property
    def session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = deadline.session()
            s.headers["User-Agent"] = self.user_agent
            self._local.session = s
        return s

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))

    def _slot(self, host: str, port: int) -> threading.BoundedSemaphore:
        with self._lock:
            return self._slots[(host, port)]

    def _robots_allow(self, url: str) -> bool:
        if not self.obey_robots:
            return True
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            parser = self._robots.get(origin)
        if parser is None:
            parser = urllib.robotparser.RobotFileParser()
            try:
                with deadline.Deadline(self.grace_s), \
                        self.session.get(origin + "/robots.txt", timeout=self.timeout,
                                         allow_redirects=False, stream=True) as resp:
                    body = resp.raw.read(ROBOTS_MAX_BYTES, decode_content=True)
                if resp.status_code >= 500:
                    parser.disallow_all = True
                elif resp.status_code >= 300:  # missing, or elsewhere: nothing to obey here
                    parser.allow_all = True
                else:
                    parser.parse(body.decode("utf-8", "replace").splitlines())
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
                parser.allow_all = True  # as Scrapy does when robots.txt cannot be fetched
            with self._lock:
                self._robots[origin] = parser
        return parser.can_fetch(self.user_agent, url)

    def fetch(self, url: str, dest: Path, *, size: int | None, md5: str | None,
              check=None) -> Fetched:
        """Fetch ``url`` into ``dest`` and verify it; never raises for network trouble.

        ``check(path)`` may inspect the verified bytes before they are renamed into place and
        return a reason to refuse them (status ``refused``): nothing refused is ever kept.
        """
        if size is not None and size > self.max_bytes:
            return Fetched("failed", None, None, 0, 0,
                           f"too large: {size} bytes is over the cap of {self.max_bytes}")
        if why := refusal(url, self.allowed_hosts):
            return Fetched("failed", None, None, 0, 0, why)  # nothing sent, nothing to retry
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = part_path(dest)
        last_reason, mismatch = "", False
        for attempt in range(1, self.retries + 1):
            try:
                digest, nbytes = self._attempt(url, part, size)
                if size is not None and nbytes < size:
                    raise _Retry(f"short: got {nbytes} of {size} bytes")  # resume next time
                if size is not None and nbytes != size:
                    raise _Mismatch(f"size mismatch: got {nbytes} bytes, metadata says {size}")
                if md5 and digest != md5.lower():
                    raise _Mismatch(f"md5 mismatch: got {digest}, metadata says {md5}")
                if check is not None and (why := check(part)):
                    part.unlink(missing_ok=True)
                    return Fetched("refused", None, digest, nbytes, attempt, why)
                _commit(part, dest)
                return Fetched("downloaded", dest, digest, nbytes, attempt)
            except _Fatal as exc:
                part.unlink(missing_ok=True)
                return Fetched("failed", None, None, 0, attempt, str(exc))
            except _Retry as exc:
                last_reason, mismatch = str(exc), isinstance(exc, _Mismatch)
                if mismatch:
                    part.unlink(missing_ok=True)  # start over: the bytes we have are wrong
                delay = exc.delay if exc.delay is not None else self._backoff(attempt)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
                    part.unlink(missing_ok=True)  # give the space back; nothing half-written
                    raise  # this machine cannot write: no retry helps, the caller stops
                last_reason, mismatch = f"{type(exc).__name__}: {exc}", False
                delay = self._backoff(attempt)
            if attempt < self.retries:
                time.sleep(min(delay, self.backoff_max))
        part.unlink(missing_ok=True)
        status = "corrupt" if mismatch else "failed"
        return Fetched(status, None, None, 0, self.retries,
                       f"{last_reason} (after {self.retries} attempts)")

    def _budget(self, todo: int | None) -> float:
        """Seconds an attempt may take to deliver ``todo`` bytes (unknown: the size cap) at the
        minimum rate."""
        todo = self.max_bytes if todo is None else min(todo, self.max_bytes)
        return min(self.max_attempt_s, max(self.grace_s, todo / self.min_bytes_per_s))

    def _attempt(self, url: str, part: Path, size: int | None) -> tuple[str, int]:
        """One try: resume ``part`` from where it stopped; return (md5, length) of the whole.

        The attempt has a wall-clock deadline: ``grace_s`` for each hop's headers, then what
        the remaining bytes need at ``min_bytes_per_s`` (at least ``grace_s``, at most
        ``max_attempt_s``); when it passes, the socket is shut and the attempt ends, to be
        resumed by the next one. Bytes are read as they arrive, so the average-rate check
        runs however slowly they come.
        """
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have > size:
            part.unlink()
            have = 0
        hasher = hashlib.md5()
        if have:
            with part.open("rb") as f:
                while chunk := f.read(CHUNK):
                    hasher.update(chunk)
        if size is not None and have == size and size > 0:
            return hasher.hexdigest(), have  # complete before an interruption
        with deadline.Deadline(self.grace_s) as clock:
            try:
                resp, release = self._open(url, have, clock)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
                if clock.expired:
                    raise _Retry(f"deadline: no response within {self.grace_s:g} s") from None
                raise
            try:
                return self._receive(resp, part, size, have, hasher, clock)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
                if clock.expired:
                    raise _Retry("deadline: the transfer took longer than its time budget"
                                 ) from None
                raise
            finally:
                resp.close()
                release()

    def _receive(self, resp: requests.Response, part: Path, size: int | None, have: int,
                 hasher, clock: deadline.Deadline) -> tuple[str, int]:
        if have and not _resumes_at(resp, have):  # range ignored or misplaced: start over
            have, hasher = 0, hashlib.md5()
            if resp.status_code == 206:
                part.unlink(missing_ok=True)
                raise _Retry("the server sent another range than the one asked for")
        stated = resp.headers.get("Content-Length", "")
        todo = size - have if size is not None else \
            int(stated) if stated.isascii() and stated.isdigit() and len(stated) < 20 else None
        budget = self._budget(todo)
        clock.extend(budget)
        started = time.monotonic()
        with part.open("ab" if have else "wb") as out, _BackgroundHash(hasher) as background:
            nbytes = have
            while chunk := resp.raw.read1(READ, decode_content=True):
                nbytes += len(chunk)
                if nbytes > self.max_bytes:
                    raise _Fatal(f"too large: over the cap of {self.max_bytes} bytes")
                background.update(chunk)
                out.write(chunk)
                elapsed = time.monotonic() - started
                if elapsed > self.grace_s and (nbytes - have) / elapsed < self.min_bytes_per_s:
                    raise _Retry(f"too slow: {(nbytes - have) / elapsed:.0f} B/s")
        if clock.expired:
            raise _Retry(f"deadline: the transfer took longer than its time budget "
                         f"({budget:g} s)")
        return hasher.hexdigest(), nbytes

    def _hold(self, host: str, port: int):
        """Take a slot on ``host:port``, then one of the global ones; return their release.
        In that order, so no thread holds a global slot while it waits for a busy host."""
        slot = self._slot(host, port)
        slot.acquire()
        self._total.acquire()

        def release() -> None:
            self._total.release()
            slot.release()
        return release

    def _open(self, url: str, offset: int, clock: deadline.Deadline):
        """Follow redirects by hand, checking each hop as the client will connect (allow-list,
        robots.txt of that origin) and re-sending ``Range`` to whichever host the hop is on.
        Returns the final response and the release of its host's download slot, held."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        for _ in range(MAX_REDIRECTS + 1):
            if why := refusal(url, self.allowed_hosts):
                raise _Fatal(why)
            if not self._robots_allow(url):
                raise _Fatal(f"disallowed by robots.txt: {url}")
            release = self._hold(*connect_target(url)[1:])
            try:
                clock.restart(self.grace_s)  # waiting for the slot is not the server's time
                resp = self.session.get(url, headers=headers, stream=True,
                                        allow_redirects=False, timeout=self.timeout)
            except BaseException:
                release()
                raise
            if not resp.is_redirect:
                try:
                    _check_status(resp)
                except BaseException:
                    resp.close()
                    release()
                    raise
                return resp, release
            resp.close()
            release()
            url = urljoin(url, resp.headers["Location"])
        raise _Fatal(f"more than {MAX_REDIRECTS} redirects")


def _check_status(resp: requests.Response) -> None:
    if resp.status_code in (429, 503) or resp.status_code >= 500:
        raise _Retry(f"HTTP {resp.status_code}", retry_after(resp.headers.get("Retry-After")))
    if resp.status_code == 416:
        raise _Mismatch("HTTP 416: the file is shorter than what we already have")
    if resp.status_code >= 400:
        raise _Fatal(f"HTTP {resp.status_code}")


class _BackgroundHash:
    """Hash on a second thread while this one receives and writes: md5 runs at about the speed
    of a fast local network, so doing both in turn would halve the download rate."""

    def __init__(self, hasher):
        self.hasher = hasher
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while (chunk := self.queue.get()) is not None:
            self.hasher.update(chunk)

    def update(self, chunk: bytes) -> None:
        self.queue.put(chunk)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.queue.put(None)
        self.thread.join()


def _resumes_at(resp: requests.Response, offset: int) -> bool:
    """Does this response continue the file at ``offset`` (a 206 whose range starts there)?"""
    if resp.status_code != 206:
        return False
    m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
    return bool(m) and int(m.group(1)) == offset


def _commit(part: Path, dest: Path) -> None:
    with part.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(part, dest)
    fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
