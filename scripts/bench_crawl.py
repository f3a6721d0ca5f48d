"""Crawler benchmarks on loopback, politeness relaxed. Prints ratios, asserts nothing.

1. Download throughput: the crawl's own download MB/s (first byte requested to last file
   verified, from the crawl's stats) ÷ curl's MB/s fetching the same files with the same
   parallelism, in the same run, from the same server (target ≥ 0.8). Measured on one large
   file, where downloading dominates, and on the sample archive's many small files, where
   the window also holds metadata requests that feed the downloads.
2. Discovery + metadata: items per minute for a crawl of metadata-only items (nothing to fetch).
3. Memory: peak RSS of a crawl whose one file is 300 MB, beside one whose file is 30 MB
   (target < 300 MB: flat in file size).

    .venv/bin/python scripts/bench_crawl.py [--items 40] [--big-mb 300] [--meta-items 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from crawler.sample_archive.build import build
from crawler.sample_archive.server import serving
from manifests.catalog import Catalog, FileStatus

CRAWL = [sys.executable, "-m", "speechcrawl.cli", "crawl", "archive_org", "--query",
         "identifier:*", "--set", "SPEECHCRAWL_PROGRESS_INTERVAL=0"]


def write_item(root: Path, identifier: str, files: dict[str, Path | bytes], license_url: str):
    item = root / "items" / identifier
    item.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, data in files.items():
        path = item / name
        if isinstance(data, bytes):
            path.write_bytes(data)
        with path.open("rb") as f:
            h = hashlib.file_digest(f, "md5")
        fmt = "VBR MP3" if name.endswith(".mp3") else "SubRip"
        entries.append({"name": name, "source": "original", "format": fmt,
                        "size": str(path.stat().st_size), "md5": h.hexdigest(),
                        "mtime": "1500000000", "length": "1.0"})
    meta = {"metadata": {"identifier": identifier, "mediatype": "audio", "title": identifier,
                         "licenseurl": license_url}, "files": entries}
    (item / "_meta.json").write_text(json.dumps(meta))


def crawl_stats(workdir: Path) -> dict:
    with Catalog.reader(workdir / "catalog.sqlite") as catalog:
        return catalog.last_job()["stats"]


def run_crawl(workdir: Path, url: str) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one crawl in a child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([*CRAWL, "--workdir", str(workdir), "--base-url", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"crawl failed ({proc.returncode}); see {workdir / 'crawl.log'}")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024


def compare_with_curl(label: str, workdir: Path, url: str, tmp: Path) -> None:
    stats = crawl_stats(workdir)
    with Catalog.reader(workdir / "catalog.sqlite") as catalog:
        rows = [(f["item_id"], f["name"]) for f in catalog.file_records()
                if f["status"] == FileStatus.DOWNLOADED]
    nbytes = stats["bytes_downloaded"]
    crawl_s = stats["download_last_end"] - stats["download_first_start"]
    out = Path(tempfile.mkdtemp(dir=tmp))
    args = ["curl", "-s", "-S", "-L", "--no-progress-meter", "-Z", "--parallel-max", "4"]
    for k, (item, name) in enumerate(rows):
        args += [f"{url}/download/{quote(item)}/{quote(name)}", "-o", str(out / str(k))]
    t0 = time.perf_counter()
    subprocess.run(args, check=True)
    curl_s = time.perf_counter() - t0
    curl_bytes = sum(p.stat().st_size for p in out.iterdir())
    crawl_rate, curl_rate = nbytes / crawl_s / 1e6, curl_bytes / curl_s / 1e6
    print(f"download, {label}: crawl {nbytes / 1e6:.1f} MB in {crawl_s:.2f} s = "
          f"{crawl_rate:.0f} MB/s; curl {curl_bytes / 1e6:.1f} MB in {curl_s:.2f} s = "
          f"{curl_rate:.0f} MB/s; ratio crawl/curl = {crawl_rate / curl_rate:.2f} "
          "(target >= 0.8)")


def big_item(root: Path, mb: int) -> None:
    (root / "items" / "big-item").mkdir(parents=True)
    path = root / "items" / "big-item" / "big.mp3"
    block = b"ID3" + os.urandom((1 << 20) - 3)
    with path.open("wb") as f:
        for _ in range(mb):
            f.write(block)
    write_item(root, "big-item", {"big.mp3": path, "big.srt": b"1\n00:00:00,000 --> "
                                  b"00:00:01,000\nhello\n"},
               "https://creativecommons.org/licenses/by/4.0/")


def bench_large_files(tmp: Path, mb: int) -> None:
    peaks = {}
    for size in (mb // 10, mb):
        root = tmp / f"big-{size}"
        big_item(root, size)
        with serving(root) as url:
            wall, peaks[size] = run_crawl(tmp / f"big-crawl-{size}", url)
            if size == mb:
                compare_with_curl(f"one {mb} MB file", tmp / f"big-crawl-{size}", url, tmp)
    print(f"memory: peak RSS of the crawl process {peaks[mb // 10]:.0f} MB with a "
          f"{mb // 10} MB file, {peaks[mb]:.0f} MB with a {mb} MB file (target < 300 MB)")


def bench_sample_archive(tmp: Path, items: int) -> None:
    archive = build(tmp / "archive", items=items, log=open(os.devnull, "w"))  # noqa: SIM115
    with serving(archive) as url:
        wall, _ = run_crawl(tmp / "crawl", url)
        compare_with_curl(f"sample archive ({items} items)", tmp / "crawl", url, tmp)
    print(f"  whole sample-archive crawl, start-up and discovery included: {wall:.1f} s")


def bench_discovery(tmp: Path, n: int) -> None:
    root = tmp / "meta-only"
    for i in range(n):  # NC-licensed: recorded and judged, nothing fetched
        write_item(root, f"item-{i:05d}", {"a.srt": b"1\n00:00:00,000 --> 00:00:01,000\nhi\n"},
                   "https://creativecommons.org/licenses/by-nc/4.0/")
    with serving(root) as url:
        wall, _ = run_crawl(tmp / "meta-crawl", url)
    print(f"discovery + metadata: {n} items in {wall:.1f} s = {n / wall * 60:.0f} items/minute")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=40)
    p.add_argument("--big-mb", type=int, default=300)
    p.add_argument("--meta-items", type=int, default=2000)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-crawl-"))
    try:
        bench_large_files(tmp, args.big_mb)
        bench_sample_archive(tmp, args.items)
        bench_discovery(tmp, args.meta_items)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
