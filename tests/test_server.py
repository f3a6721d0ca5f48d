"""The sample archive server: archive.org's response shapes, paging, ranges, and its fences."""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import urllib.parse
from pathlib import Path

import pytest
from helpers import fetch, get_json

from crawler.sample_archive.server import data_node, make_server, serving


def write_item(root: Path, identifier: str, files: dict[str, bytes], **metadata) -> None:
    """A minimal item in the archive layout (no audio needed for search and paging)."""
    item = root / "items" / identifier
    item.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, data in files.items():
        (item / name).write_bytes(data)
        entries.append({"name": name, "source": "original", "format": "Text",
                        "size": str(len(data)), "md5": hashlib.md5(data).hexdigest(),
                        "mtime": "1500000000"})
    meta = {"metadata": {"identifier": identifier, "mediatype": "audio", **metadata},
            "files": entries}
    (item / "_meta.json").write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """250 metadata-only items: more than one Scrape API page."""
    root = tmp_path_factory.mktemp("big")
    for i in range(250):
        write_item(root, f"item-{i:03d}", {"t.txt": b"x" * i},
                   licenseurl="http://creativecommons.org/licenses/by/4.0/" if i % 2 else
                   "http://creativecommons.org/licenses/by-nc/4.0/")
    (root / "secret.txt").write_text("outside items/")
    with serving(root) as url:
        yield root, url


def q(**params) -> str:
    return urllib.parse.urlencode(params, doseq=True)


# -- search ------------------------------------------------------------------------------------

def test_advancedsearch_response_shape(base_url, defects):
    body = get_json(f"{base_url}/advancedsearch.php?" + q(**{
        "q": "identifier:*", "fl[]": ["identifier", "title", "licenseurl"], "rows": 50,
        "page": 1, "output": "json"}))
    assert body["responseHeader"]["status"] == 0
    assert body["responseHeader"]["params"]["query"] == "identifier:*"
    resp = body["response"]
    assert resp["numFound"] == len(defects["licenses"]) and resp["start"] == 0
    assert [d["identifier"] for d in resp["docs"]] == sorted(defects["licenses"])
    assert all(set(d) <= {"identifier", "title", "licenseurl"} for d in resp["docs"])
    assert all("title" in d for d in resp["docs"])


def test_advancedsearch_pages_to_the_end(big):
    _, url = big
    seen, page = [], 1
    while page < 100:  # bounded
        resp = get_json(f"{url}/advancedsearch.php?" + q(
            q="mediatype:audio", **{"fl[]": "identifier"}, rows=40, page=page, output="json"))
        docs = resp["response"]["docs"]
        if not docs:
            break
        assert resp["response"]["start"] == (page - 1) * 40
        seen += [d["identifier"] for d in docs]
        page += 1
    assert seen == [f"item-{i:03d}" for i in range(250)]
    assert page == 8  # 7 pages of up to 40, then an empty one


def test_advancedsearch_sort_and_errors(big):
    _, url = big
    desc = get_json(f"{url}/advancedsearch.php?" + q(
        q="licenseurl:*by-nc*", **{"fl[]": "identifier", "sort[]": "identifier desc"}, rows=3,
        output="json"))
    assert [d["identifier"] for d in desc["response"]["docs"]] == ["item-248", "item-246",
                                                                   "item-244"]
    assert desc["response"]["numFound"] == 125
    assert fetch(f"{url}/advancedsearch.php?" + q(q="mediatype:audio"))[0] == 400  # no output
    assert fetch(f"{url}/advancedsearch.php?" + q(q="title:(", output="json"))[0] == 400
    assert fetch(f"{url}/advancedsearch.php?" + q(q="a", rows="x", output="json"))[0] == 400


def test_scrape_cursor_pages_to_the_end(big):
    _, url = big
    seen, cursor, pages = [], None, 0
    while pages < 20:  # bounded
        params = {"q": "licenseurl:*", "fields": "identifier,licenseurl", "count": 100}
        if cursor:
            params["cursor"] = cursor
        body = get_json(f"{url}/services/search/v1/scrape?" + q(**params))
        pages += 1
        assert body["total"] == 250 and body["count"] == len(body["items"])
        assert all(set(i) == {"identifier", "licenseurl"} for i in body["items"])
        seen += [i["identifier"] for i in body["items"]]
        cursor = body.get("cursor")
        if not cursor:
            break
    assert pages == 3 and seen == [f"item-{i:03d}" for i in range(250)]


def test_scrape_rejects_small_counts_and_bad_cursors(big):
    _, url = big
    for count in (10, 99, 10_001):
        status, _, body = fetch(f"{url}/services/search/v1/scrape?" + q(q="a", count=count))
        assert status == 400 and "count" in json.loads(body)["error"]
    assert fetch(f"{url}/services/search/v1/scrape?" + q(q="a", cursor="!!"))[0] == 400


def test_index_follows_items_added_and_removed_while_serving(tmp_path):
    write_item(tmp_path, "first", {"a.txt": b"a"})
    with serving(tmp_path) as url:
        count = lambda: get_json(  # noqa: E731
            f"{url}/services/search/v1/scrape?" + q(q="mediatype:audio", count=100))["total"]
        assert count() == 1
        write_item(tmp_path, "second", {"b.txt": b"b"})
        assert count() == 2
        shutil.rmtree(tmp_path / "items" / "first")
        assert count() == 1
        assert get_json(f"{url}/metadata/first") == {}


# -- metadata ----------------------------------------------------------------------------------

def test_metadata_shape(base_url, archive, defects):
    identifier = sorted(defects["licenses"])[0]
    body = get_json(f"{base_url}/metadata/{identifier}")
    on_disk = json.loads((archive / "items" / identifier / "_meta.json").read_text())
    assert body["metadata"] == on_disk["metadata"] and body["files"] == on_disk["files"]
    assert body["files_count"] == len(body["files"])
    assert body["dir"].endswith(f"/items/{identifier}") and body["server"] == body["d1"]
    assert isinstance(body["item_size"], int) and body["workable_servers"]


def test_metadata_of_an_unknown_item_is_empty_like_the_real_service(base_url):
    assert get_json(f"{base_url}/metadata/no-such-item") == {}


# -- downloads ---------------------------------------------------------------------------------

def _audio(archive, defects):
    d = next(d for d in defects["defects"] if d["kind"] == "intro_outro")
    return d["item_id"], d["file"], (archive / "items" / d["item_id"] / d["file"]).read_bytes()


def data_origin(url: str) -> str:
    """The data-node host the sample archive at ``url`` sends downloads to."""
    status, headers, _ = fetch(f"{url}/download/item-001/t.txt", follow=False)
    if status != 302:  # an archive without item-001: ask for any listed file
        raise AssertionError(status)
    parts = urllib.parse.urlsplit(headers["Location"])
    return f"{parts.scheme}://{parts.netloc}"


def test_download_redirects_to_a_data_node_on_another_host(base_url, archive, defects):
    identifier, name, data = _audio(archive, defects)
    status, headers, _ = fetch(f"{base_url}/download/{identifier}/{name}", follow=False)
    assert status == 302
    node, directory = data_node(identifier)
    location = urllib.parse.urlsplit(headers["Location"])
    assert location.path == f"/{node}{directory}/{name}"
    api = urllib.parse.urlsplit(base_url)
    assert location.scheme == "http" and (location.hostname, location.port) != (
        api.hostname, api.port)
    origin = f"http://{location.netloc}"
    # Each host serves its own part only, and has its own robots.txt.
    assert fetch(f"{base_url}/{node}{directory}/{name}")[0] == 404
    assert fetch(f"{origin}/metadata/{identifier}")[0] == 404
    assert fetch(f"{origin}/robots.txt")[2] != fetch(f"{base_url}/robots.txt")[2]
    status, headers, body = fetch(f"{base_url}/download/{identifier}/{name}")
    assert status == 200 and body == data
    assert int(headers["Content-Length"]) == len(data) and headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Type"] == "audio/mpeg"


def test_names_with_spaces_are_quoted_in_redirects(base_url, archive, defects):
    d = next(d for d in defects["defects"] if d["kind"] == "multi_file_pairing")
    name = next(iter(d["expect"]["pairs"]))
    assert " " in name
    url = f"{base_url}/download/{d['item_id']}/{urllib.parse.quote(name)}"
    status, headers, body = fetch(url, follow=False)
    assert status == 302 and " " not in headers["Location"]
    assert fetch(url)[2] == (archive / "items" / d["item_id"] / name).read_bytes()


@pytest.mark.parametrize("header, expect", [
    ("bytes=0-99", (0, 99)),
    ("bytes=1000-", (1000, None)),
    ("bytes=-500", (-500, None)),
    ("bytes=10-10", (10, 10)),
])
def test_range_requests(base_url, archive, defects, header, expect):
    identifier, name, data = _audio(archive, defects)
    status, headers, body = fetch(f"{base_url}/download/{identifier}/{name}",
                                  headers={"Range": header})
    first, last = expect
    want = data[first:] if last is None else data[first: last + 1]
    assert status == 206 and body == want
    assert int(headers["Content-Length"]) == len(want)
    start = first if first >= 0 else len(data) + first
    assert headers["Content-Range"] == f"bytes {start}-{start + len(want) - 1}/{len(data)}"


def test_unsatisfiable_range_is_416(base_url, archive, defects):
    identifier, name, data = _audio(archive, defects)
    status, headers, _ = fetch(f"{base_url}/download/{identifier}/{name}",
                               headers={"Range": f"bytes={len(data)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"


def test_head_gives_length_without_a_body(base_url, archive, defects):
    identifier, name, data = _audio(archive, defects)
    status, headers, _ = fetch(f"{base_url}/download/{identifier}/{name}", follow=False)
    # urllib turns HEAD into GET on redirects: ask the data node directly
    status, headers, body = fetch(headers["Location"], method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == len(data)


def test_zero_size_file_is_served_empty(base_url, defects):
    d = next(d for d in defects["defects"] if d["kind"] == "zero_size_file")
    status, headers, body = fetch(
        f"{base_url}/download/{d['item_id']}/{urllib.parse.quote(d['file'])}")
    assert status == 200 and body == b"" and headers["Content-Length"] == "0"


def test_private_files_and_restricted_items_are_forbidden(base_url, defects, tmp_path):
    d = next(d for d in defects["defects"] if d["kind"] == "private_file")
    assert fetch(f"{base_url}/download/{d['item_id']}/{urllib.parse.quote(d['file'])}")[0] == 403
    write_item(tmp_path, "locked", {"a.txt": b"secret"}, **{"access-restricted-item": "true"})
    with serving(tmp_path) as url:
        assert fetch(f"{url}/download/locked/a.txt")[0] == 403
        node, directory = data_node("locked")
        write_item(tmp_path, "item-001", {"t.txt": b"x"})
        assert fetch(f"{data_origin(url)}/{node}{directory}/a.txt")[0] == 403


def test_unknown_things_are_404(base_url, defects):
    identifier = sorted(defects["licenses"])[0]
    for path in ["/nope", f"/download/{identifier}/nope.mp3", "/download/nope/a.mp3",
                 f"/download/{identifier}/_meta.json", "/items/", "/defects.json",
                 f"/truth/{identifier}"]:
        assert fetch(base_url + path)[0] == 404, path


def raw_get(url: str, path: str) -> int:
    """Send ``path`` exactly as written (no client-side normalisation of ``..``)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_paths_outside_the_root_are_refused(big):
    root, url = big
    node, directory = data_node("item-001")
    data = data_origin(url)
    for path in [f"/{node}{directory}/../../../secret.txt",
                 f"/{node}{directory}/..%2F..%2F..%2Fsecret.txt"]:
        assert raw_get(data, path) in (404, 400), path
    for path in ["/download/item-001/../../secret.txt", "/download/item-001/..%2F..%2Fsecret.txt",
                 "/download/..%2Fsecret.txt/x", "/download/item-001/%2Fetc%2Fpasswd",
                 f"/{node}{directory}/../../../secret.txt",
                 f"/{node}{directory}/..%2F..%2F..%2Fsecret.txt", "/metadata/..%2F..",
                 "/download/item-001/t.txt/../../../secret.txt"]:
        assert raw_get(url, path) in (404, 400), path
    assert raw_get(url, "/download/item-001/t.txt") == 302  # the control


def test_data_node_must_match_the_item(big):
    _, url = big
    node, directory = data_node("item-001")
    data = data_origin(url)
    assert raw_get(data, f"/ia809999.us.archive.org{directory}/t.txt") in (404,)
    assert raw_get(data, f"/{node}{directory}/t.txt") == 200  # the control


def test_robots_txt(base_url):
    status, headers, body = fetch(f"{base_url}/robots.txt")
    assert status == 200 and b"User-agent: *" in body


def test_binds_loopback_by_default(archive):
    server = make_server(archive)
    try:
        assert server.server_address[0] == "127.0.0.1"
        assert server.data_node.server_address[0] == "127.0.0.1"
        assert server.data_node.server_address[1] != server.server_address[1]
    finally:
        server.server_close()


def test_the_data_node_can_be_another_loopback_address(tmp_path):
    write_item(tmp_path, "item-001", {"t.txt": b"payload"})
    with serving(tmp_path, data_host="127.0.0.2") as url:
        origin = data_origin(url)
        assert urllib.parse.urlsplit(origin).hostname == "127.0.0.2"
        assert fetch(f"{url}/download/item-001/t.txt")[2] == b"payload"
