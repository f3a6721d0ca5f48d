"""Serve a sample archive with archive.org's API shapes, on loopback by default.

Endpoints (the subset a crawler of archive.org uses):

- ``/advancedsearch.php``: ``q``, ``fl[]``, ``rows``, ``page``, ``sort[]``, ``output=json``.
- ``/services/search/v1/scrape``: ``q``, ``fields``, ``count`` (100–10000), ``cursor``, ``sorts``.
- ``/metadata/<identifier>``: the item's metadata and file list, every value a string; ``{}`` for
  an unknown identifier, as the real service answers.
- ``/download/<identifier>/<name>``: a 302 to a data-node path on a SECOND host (another
  listener: by default another port of the same address, or another loopback address such as
  127.0.0.2), as archive.org sends downloads to ``iaNNNNNN.us.archive.org``; the data node
  serves the bytes with ``Content-Length``, ``Range`` and ``HEAD`` support; private files and
  access-restricted items answer 403.
- ``/robots.txt``, on each host its own.

Only files listed in an item's ``_meta.json`` are ever served, and every path is resolved and
checked to lie inside ``<root>/items``; ``truth/`` and ``defects.json`` are never reachable. The
index is re-read when an item's ``_meta.json`` changes, so tests can add and remove items while
the server runs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from crawler.sample_archive.query import QueryError, compile_query

ROBOTS_TXT = """\
User-agent: *
Disallow: /control/
Disallow: /report/
Disallow: /private/
Crawl-delay: 1
"""
DATA_NODE_ROBOTS_TXT = """\
User-agent: *
Disallow: /private/
"""
SCRAPE_MIN_COUNT, SCRAPE_MAX_COUNT = 100, 10_000
# archive.org's advanced search serves no result past the 10,000th (page × rows); the Scrape API
# has no such limit. A test may set a smaller window (``make_server(search_window=…)``).
SEARCH_WINDOW = 10_000
CHUNK = 64 * 1024
MIME = {".srt": "application/x-subrip", ".vtt": "text/vtt", ".txt": "text/plain; charset=utf-8",
        ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".wav": "audio/x-wav", ".flac": "audio/flac",
        ".xml": "application/xml"}


FAULT_KINDS = ("429", "503", "reset", "short", "drip", "header_drip")
# header_drip costs a client its whole header deadline, so it is asked for by name only.
DEFAULT_FAULT_KINDS = ("429", "503", "reset", "short", "drip")


class FaultPlan:
    """Deterministic misbehaviour, for testing that crawls survive a flaky server.

    The n-th request for a path fails when ``hash(seed, path, n)`` falls under ``rate``, for the
    first ``per_path`` requests of each path only, so every request succeeds eventually. Search and
    metadata requests get 429/503 faults; file downloads get any of ``kinds``:
    ``429`` (with Retry-After), ``503``, ``reset`` (connection reset mid-body), ``short`` (the
    body ends before Content-Length), ``drip`` (the body trickles out slowly, but whole, in
    ``drip_chunk``-byte pieces), ``header_drip`` (the status line and headers come one byte
    every ``header_drip_s`` seconds: each read gets a byte well within any read timeout).
    """

    def __init__(self, rate: float, kinds=DEFAULT_FAULT_KINDS, per_path: int = 2, seed: int = 0,
                 drip_bytes_per_s: int = 1_000_000, drip_chunk: int = 16 * 1024,
                 header_drip_s: float = 1.0):
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        self.rate, self.kinds, self.per_path, self.seed = rate, tuple(kinds), per_path, seed
        self.drip_bytes_per_s, self.drip_chunk = drip_bytes_per_s, drip_chunk
        self.header_drip_s = header_drip_s
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self.injected: list[tuple[str, str]] = []  # (path, kind), for tests and logs

    def pick(self, path: str, for_file: bool) -> str | None:
        with self._lock:
            n = self._counts.get(path, 0)
            self._counts[path] = n + 1
        if n >= self.per_path:
            return None
        h = int(hashlib.sha256(f"{self.seed}|{path}|{n}".encode()).hexdigest()[:12], 16)
        if (h % 10_000) / 10_000 >= self.rate:
            return None
        kinds = self.kinds if for_file else tuple(k for k in self.kinds if k in ("429", "503"))
        if not kinds:
            return None
        kind = kinds[(h // 10_000) % len(kinds)]
        with self._lock:
            self.injected.append((path, kind))
        return kind


class ItemIndex:
    """The archive's items, loaded from ``<root>/items/*/_meta.json`` and kept fresh."""

    def __init__(self, root: Path):
        self.items_dir = (Path(root) / "items").resolve()
        if not self.items_dir.is_dir():
            raise FileNotFoundError(f"{root} has no items/ directory: not a sample archive")
        self._lock = threading.Lock()
        self._items: dict[str, tuple[int, dict]] = {}  # identifier → (mtime_ns, meta)

    def refresh(self) -> None:
        with self._lock:
            seen = {}
            for entry in os.scandir(self.items_dir):
                meta_path = Path(entry.path) / "_meta.json"
                try:
                    mtime = meta_path.stat().st_mtime_ns
                except FileNotFoundError:
                    continue
                cached = self._items.get(entry.name)
                if cached and cached[0] == mtime:
                    seen[entry.name] = cached
                    continue
                try:
                    seen[entry.name] = (mtime, json.loads(meta_path.read_text("utf-8")))
                except (OSError, ValueError):
                    continue  # half-written or broken: invisible until it is whole
            self._items = seen

    def meta(self, identifier: str) -> dict | None:
        self.refresh()
        found = self._items.get(identifier)
        return found[1] if found else None

    def docs(self) -> list[dict]:
        """Search documents: the metadata plus the formats of the item's files. Items planted
        with malformed metadata are still found (the search index and the metadata service
        are different systems on archive.org too)."""
        self.refresh()
        out = []
        for identifier, (_, meta) in sorted(self._items.items()):
            doc = dict(meta["metadata"]) if isinstance(meta.get("metadata"), dict) else {}
            doc["identifier"] = identifier
            files = _entries(meta)
            doc["format"] = sorted({f["format"] for f in files
                                    if isinstance(f.get("format"), str)})
            doc["item_size"] = str(sum(_int(f.get("size")) for f in files))
            out.append(doc)
        return out

    def file_path(self, identifier: str, name: str) -> Path | None:
        """The on-disk path of a listed file, or None; never a path outside the item."""
        item_dir = (self.items_dir / identifier).resolve()
        path = (item_dir / name).resolve()
        if item_dir.parent != self.items_dir or not path.is_relative_to(item_dir):
            return None
        return path if path.is_file() else None


def _entries(meta: dict) -> list[dict]:
    """The file entries of an item that are objects (a plant may list anything)."""
    files = meta.get("files")
    return [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def data_node(identifier: str) -> tuple[str, str]:
    """A stable fake data-node host and directory for an item, as archive.org assigns them."""
    h = int(hashlib.md5(identifier.encode()).hexdigest()[:8], 16)
    return f"ia80{h % 10000:04d}.us.archive.org", f"/{h % 40}/items/{identifier}"


def _sort_key(spec: str):
    field, _, order = spec.strip().partition(" ")
    return field, order.strip().lower() == "desc"


def _sorted(docs: list[dict], specs: list[str]) -> list[dict]:
    for spec in reversed([s for s in specs if s.strip()] or ["identifier asc"]):
        field, desc = _sort_key(spec)
        docs = sorted(docs, key=lambda d, f=field: str(d.get(f, "")), reverse=desc)
    return docs


def _project(doc: dict, fields: list[str]) -> dict:
    return {f: doc[f] for f in fields if f in doc}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "speechcrawl-sample-archive/1"
    index: ItemIndex  # set on the subclass made by make_server
    faults: FaultPlan | None = None
    search_window = SEARCH_WINDOW
    quiet = True
    data_node_origin: str | None = None  # on the API host: where downloads are redirected
    robots_txt = ROBOTS_TXT  # the data-node host has its own

    # -- plumbing --------------------------------------------------------------------------
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        if not self.quiet:
            super().log_message(format, *args)

    def _send_body(self, status: int, body: bytes, content_type: str,
                   headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj, status: int = 200) -> None:
        self._send_body(status, json.dumps(obj).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        params = parse_qs(url.query, keep_blank_values=True)
        path = unquote(url.path)
        try:
            is_file = re.match(r"/ia80\d{4}\.", path) is not None
            fault = self.faults.pick(self.path, is_file) if self.faults and path != \
                "/robots.txt" and not path.startswith("/download/") else None
            if fault in ("429", "503"):
                return self._send_body(int(fault), b"slow down", "text/plain",
                                       {"Retry-After": "1"} if fault == "429" else {})
            self._fault = fault
            data_path = re.fullmatch(
                r"/(ia80\d{4}\.us\.archive\.org)/\d+/items/([^/]+)/(.+)", path)
            if path == "/robots.txt":
                self._send_body(200, self.robots_txt.encode(), "text/plain")
            elif self.data_node_origin is None:  # the data-node host serves files only
                if data_path:
                    self._serve_file(*data_path.groups())
                else:
                    self._error(404, "not found")
            elif path == "/advancedsearch.php":
                self._advancedsearch(params)
            elif path == "/services/search/v1/scrape":
                self._scrape(params)
            elif m := re.fullmatch(r"/metadata/([^/]+)/?", path):
                self._metadata(m.group(1))
            elif m := re.fullmatch(r"/download/([^/]+)/(.+)", path):
                self._download(m.group(1), m.group(2))
            else:
                self._error(404, "not found")
        except (BrokenPipeError, ConnectionResetError):
            pass

    # -- search ----------------------------------------------------------------------------
    def _search(self, q: str) -> list[dict]:
        pred = compile_query(q)
        return [d for d in self.index.docs() if pred(d)]

    def _advancedsearch(self, params: dict) -> None:
        if params.get("output", [""])[0] != "json":
            return self._error(400, "only output=json is supported")
        q = params.get("q", [""])[0]
        fields = [f for v in params.get("fl[]", []) for f in v.split(",") if f] or ["identifier"]
        try:
            rows = int(params.get("rows", ["50"])[0])
            page = int(params.get("page", ["1"])[0])
            if rows < 0 or page < 1:
                raise ValueError
            docs = _sorted(self._search(q), params.get("sort[]", []))
        except ValueError as exc:
            msg = str(exc) if isinstance(exc, QueryError) else "rows and page must be integers"
            return self._error(400, msg)
        start = (page - 1) * rows
        if start + rows > self.search_window:
            # What archive.org answers past its result window (HTTP 400, an error object, no
            # "response"): a limit of the service, not the end of the data.
            return self._json({
                "responseHeader": {"status": 400, "QTime": 0},
                "error": {"code": "RANGE_OUT_OF_BOUNDS",
                          "msg": f"Result window is too large, page * rows must be less than "
                                 f"or equal to: [{self.search_window}] but was "
                                 f"[{start + rows}]. Use the scrape API "
                                 f"(/services/search/v1/scrape) to page deeper."}}, 400)
        self._json({
            "responseHeader": {"status": 0, "QTime": 0, "params": {
                "query": q, "qin": q, "fields": ",".join(fields), "wt": "json",
                "rows": str(rows), "start": start}},
            "response": {"numFound": len(docs), "start": start,
                         "docs": [_project(d, fields) for d in docs[start: start + rows]]},
        })

    def _scrape(self, params: dict) -> None:
        q = params.get("q", [""])[0]
        fields = [f for v in params.get("fields", []) for f in v.split(",") if f]
        fields = ["identifier"] + [f for f in fields if f != "identifier"]
        try:
            count = int(params.get("count", [str(SCRAPE_MAX_COUNT)])[0])
        except ValueError:
            return self._error(400, "count must be an integer")
        if not SCRAPE_MIN_COUNT <= count <= SCRAPE_MAX_COUNT:
            return self._error(400, f"count must be between {SCRAPE_MIN_COUNT} and "
                                    f"{SCRAPE_MAX_COUNT}")
        after = ""
        if cursor := params.get("cursor", [""])[0]:
            try:
                after = json.loads(base64.urlsafe_b64decode(cursor.encode()))["after"]
            except (ValueError, KeyError, TypeError):
                return self._error(400, "invalid cursor")
        try:
            docs = self._search(q)  # sorted by identifier: the cursor is the last one sent
        except QueryError as exc:
            return self._error(400, str(exc))
        rest = [d for d in docs if d["identifier"] > after]
        page = rest[:count]
        body = {"items": [_project(d, fields) for d in page], "count": len(page),
                "total": len(docs)}
        if len(rest) > count:
            token = json.dumps({"after": page[-1]["identifier"]}).encode()
            body["cursor"] = base64.urlsafe_b64encode(token).decode()
        self._json(body)

    # -- items -----------------------------------------------------------------------------
    def _metadata(self, identifier: str) -> None:
        meta = self.index.meta(identifier)
        if meta is None:
            return self._json({})
        node, directory = data_node(identifier)
        files = _entries(meta)
        mtimes = [_int(f.get("mtime")) for f in files] or [0]
        answer = {
            "created": max(mtimes),
            "d1": node,
            "d2": node.replace("ia80", "ia90"),
            "dir": directory,
            "files_count": len(files),
            "item_last_updated": max(mtimes),
            "item_size": sum(_int(f.get("size")) for f in files),
            "server": node,
            "uniq": int(hashlib.md5(identifier.encode()).hexdigest()[:8], 16),
            "workable_servers": [node, node.replace("ia80", "ia90")],
        }
        # Passed through as planted, whatever their type: the crawler must cope.
        answer.update({k: meta[k] for k in ("files", "metadata") if k in meta})
        if meta.get("is_dark"):  # as archive.org marks a withdrawn item: a top-level flag
            answer["is_dark"] = True
        self._json(dict(sorted(answer.items())))

    def _listed(self, identifier: str, name: str) -> tuple[dict, dict] | None:
        meta = self.index.meta(identifier)
        if meta is None:
            return None
        entry = next((f for f in _entries(meta) if f.get("name") == name), None)
        return (meta, entry) if entry else None

    def _forbidden(self, meta: dict, entry: dict) -> bool:
        """Private files, access-restricted items and dark items answer 403, as on archive.org."""
        md = meta.get("metadata") if isinstance(meta.get("metadata"), dict) else {}
        restricted = str(md.get("access-restricted-item", "")).lower() == "true"
        return restricted or bool(meta.get("is_dark")) or \
            str(entry.get("private", "")).lower() == "true"

    def _download(self, identifier: str, name: str) -> None:
        found = self._listed(identifier, name)
        if not found or self.index.file_path(identifier, name) is None:
            return self._error(404, "no such file")
        if self._forbidden(*found):
            return self._error(403, "this file is not available")
        node, directory = data_node(identifier)
        location = f"{self.data_node_origin}/{node}{directory}/{quote(name)}"
        self._send_body(302, b"", "text/plain", {"Location": location})

    def _serve_file(self, node: str, identifier: str, name: str) -> None:
        found = self._listed(identifier, name)
        path = self.index.file_path(identifier, name)
        if not found or path is None or data_node(identifier)[0] != node:
            return self._error(404, "no such file")
        if self._forbidden(*found):
            return self._error(403, "this file is not available")
        size = path.stat().st_size
        start, end = 0, size - 1
        status = 200
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{found[1].get("md5", "")}"',
                   "Last-Modified": formatdate(int(found[1].get("mtime", 0)), usegmt=True)}
        if rng := self.headers.get("Range"):
            parsed = _parse_range(rng, size)
            if parsed is None:
                return self._send_body(416, b"", "text/plain",
                                       {"Content-Range": f"bytes */{size}"})
            start, end = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(0, end - start + 1)
        ctype = MIME.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] \
            or "application/octet-stream"
        fault = getattr(self, "_fault", None)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        for k, v in headers.items():
            self.send_header(k, v)
        if fault == "header_drip":
            self._drip_headers()
        else:
            self.end_headers()
        if self.command == "HEAD":
            return
        cut = length // 2 if fault in ("reset", "short") else length
        chunk_size = self.faults.drip_chunk if fault == "drip" else CHUNK
        with path.open("rb") as f:
            f.seek(start)
            remaining = cut
            while remaining > 0:
                chunk = f.read(min(chunk_size, remaining))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)
                if fault == "drip":
                    self.wfile.flush()
                    time.sleep(len(chunk) / self.faults.drip_bytes_per_s)
        if fault == "reset":  # RST instead of FIN: the client sees "connection reset"
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
        elif fault == "short":
            self.close_connection = True


    def _drip_headers(self) -> None:
        """Send the buffered status line and headers one byte at a time."""
        head = b"".join(self._headers_buffer) + b"\r\n"
        self._headers_buffer = []
        for i in range(len(head)):
            self.wfile.write(head[i: i + 1])
            self.wfile.flush()
            time.sleep(self.faults.header_drip_s)


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range as (first, last) inclusive, or None when unsatisfiable."""
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):  # suffix: the last N bytes
        n = int(m.group(2))
        return (max(0, size - n), size - 1) if n > 0 and size > 0 else None
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) else size - 1
    if first >= size or last < first:
        return None
    return first, min(last, size - 1)


DEFAULT_PORT = 8765  # `sample-archive serve` and the job runner's sample archive


class SampleArchiveServer(ThreadingHTTPServer):
    """The API host with its data-node host beside it: serving one serves both."""

    daemon_threads = True
    data_node: ThreadingHTTPServer

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        thread = threading.Thread(target=self.data_node.serve_forever, name="sample-data-node",
                                  daemon=True)
        thread.start()
        try:
            super().serve_forever(poll_interval)
        finally:
            self.data_node.shutdown()
            thread.join(timeout=5)

    def server_close(self) -> None:
        super().server_close()
        self.data_node.server_close()


def make_server(root: Path, host: str = "127.0.0.1", port: int = 0, quiet: bool = True,
                faults: FaultPlan | None = None, data_host: str | None = None,
                data_robots: str = DATA_NODE_ROBOTS_TXT,
                search_window: int = SEARCH_WINDOW) -> SampleArchiveServer:
    """A ready server (not yet serving); ``port=0`` picks a free port. Downloads redirect to a
    data-node listener on ``data_host`` (default: ``host``, on another free port); a crawl
    whose allow-list must hold both names them in ``SPEECHCRAWL_ALLOWED_HOSTS``."""
    index = ItemIndex(root)
    common = {"index": index, "quiet": quiet, "faults": faults}
    data_handler = type("SampleDataNodeHandler", (Handler,), {**common, "robots_txt": data_robots})
    data = ThreadingHTTPServer((data_host or host, 0), data_handler)
    data.daemon_threads = True
    d_host, d_port = data.server_address[:2]
    handler = type("SampleArchiveHandler", (Handler,),
                   {**common, "data_node_origin": f"http://{d_host}:{d_port}",
                    "search_window": search_window})
    try:
        server = SampleArchiveServer((host, port), handler)
    except OSError:
        data.server_close()
        raise
    server.data_node = data
    return server


@contextmanager
def serving(root: Path, host: str = "127.0.0.1", port: int = 0,
            faults: FaultPlan | None = None, data_host: str | None = None,
            data_robots: str = DATA_NODE_ROBOTS_TXT,
            search_window: int = SEARCH_WINDOW) -> Iterator[str]:
    """Serve ``root`` (and its data node) in a background thread; yield the base URL; stop on
    exit."""
    server = make_server(root, host, port, faults=faults, data_host=data_host,
                         data_robots=data_robots, search_window=search_window)
    thread = threading.Thread(target=server.serve_forever, name="sample-archive", daemon=True)
    thread.start()
    try:
        h, p = server.server_address[:2]
        yield f"http://{h}:{p}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
