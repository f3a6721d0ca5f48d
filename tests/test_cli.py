"""The command line: every command of the contract, one-line failures, serve and demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from helpers import fetch

from speechcrawl.cli import build_parser

SPEECHCRAWL = [sys.executable, "-m", "speechcrawl.cli"]

CONTRACT = [
    ["sample-archive", "build", "--out", "D", "--items", "3", "--seed", "7"],
    ["sample-archive", "serve", "--root", "D", "--host", "127.0.0.1", "--port", "0"],
    ["crawl", "archive_org", "--workdir", "W", "--base-url", "http://127.0.0.1:1", "--query",
     "q", "--max-items", "3"],
    ["align", "--workdir", "W", "--model", "demo", "--device", "cpu", "--workers", "2"],
    ["release", "--workdir", "W", "--version", "v1", "--previous", "P"],
    ["audit", "--workdir", "W", "--release", "R", "--out", "O"],
    ["export", "hf", "--workdir", "W", "--out", "O"],
    ["export", "nemo", "--workdir", "W", "--out", "O"],
    ["export", "lhotse", "--workdir", "W", "--out", "O"],
    ["run", "JOB.toml"],
    ["demo", "--workdir", "W"],
]


@pytest.mark.parametrize("argv", CONTRACT, ids=lambda a: " ".join(a[:2]))
def test_every_contract_command_parses(argv):
    args = build_parser().parse_args(argv)
    assert callable(args.func)


def test_serve_defaults_to_loopback():
    args = build_parser().parse_args(["sample-archive", "serve", "--root", "D"])
    assert args.host == "127.0.0.1"


def test_a_failure_is_one_line_with_details_in_the_workdir_log(tmp_path):
    (tmp_path / "sample-archive").mkdir()
    (tmp_path / "sample-archive" / "mine.txt").write_text("not an archive")
    result = subprocess.run(SPEECHCRAWL + ["demo", "--workdir", str(tmp_path), "--items", "1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a sample archive" in lines[0]
    assert "Traceback" in (tmp_path / "speechcrawl.log").read_text()
    assert (tmp_path / "sample-archive" / "mine.txt").read_text() == "not an archive"


def test_build_then_serve_from_the_command_line(tmp_path):
    out = tmp_path / "arch"
    subprocess.run(SPEECHCRAWL + ["sample-archive", "build", "--out", str(out), "--items", "2"],
                   check=True, capture_output=True, timeout=300)
    assert (out / "defects.json").is_file()
    proc = subprocess.Popen(SPEECHCRAWL + ["sample-archive", "serve", "--root", str(out),
                                           "--port", "0"],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()  # "serving ... at http://127.0.0.1:PORT"
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        assert fetch(f"{url}/robots.txt")[0] == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_demo_runs_the_whole_pipeline_on_the_sample_archive(tmp_path):
    """Build, serve, crawl, align, release, export, audit; then the HF export loads with
    ``datasets`` and its audio decodes to the clips' durations."""
    import datasets

    from manifests.summary import format_summary, summarize

    workdir = tmp_path / "w"
    result = subprocess.run(SPEECHCRAWL + ["demo", "--workdir", str(workdir), "--items", "6"],
                            capture_output=True, text=True, timeout=1700)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "served at http://127.0.0.1:" in out
    facts = json.loads((workdir / "sample-archive" / "defects.json").read_text())
    items = pq.read_table(workdir / "manifests" / "items.parquet").to_pylist()
    assert items and {r["item_id"] for r in items} <= set(facts["licenses"])
    assert all(r["decision"] == facts["licenses"][r["item_id"]]["decision"] for r in items)
    assert format_summary(summarize(workdir)) in out
    for path in ["manifests/items.parquet", "manifests/clips", "releases/demo", "exports",
                 "reports/audit-demo/index.html"]:
        assert str(workdir / path) in out and (workdir / path).exists()
    assert (workdir / "releases" / "demo" / "SHA256SUMS").is_file()
    assert (workdir / "exports" / "nemo" / "manifest.json").is_file()
    assert (workdir / "exports" / "lhotse" / "cuts.jsonl.gz").is_file()
    clean = {r["clip_id"]: r["duration_s"] for p in (workdir / "manifests" / "clips").glob("*")
             for r in pq.read_table(p).to_pylist() if r["tier"] == "clean"}
    hf = datasets.load_dataset("parquet", split="train", data_files=str(
        workdir / "exports" / "hf" / "data" / "*.parquet"))
    assert sorted(hf["id"]) == sorted(clean)
    for row in hf.select(range(min(5, len(hf)))):
        samples = row["audio"].get_all_samples()
        assert samples.sample_rate == 16000
        assert samples.data.shape[-1] / 16000 == pytest.approx(clean[row["id"]], abs=0.002)
