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

from speechcrawl.cli import NOT_BUILT, build_parser

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


@pytest.mark.parametrize("argv", [
    ["run", "{w}/job.toml"],
])
def test_stages_not_built_yet_fail_with_one_clear_sentence(argv, tmp_path):
    argv = [a.format(w=tmp_path) for a in argv]
    result = subprocess.run(SPEECHCRAWL + argv, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not built yet" in lines[0]
    assert any(stage in lines[0] for stage in NOT_BUILT.values())


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


def test_demo_builds_serves_and_crawls_the_sample_archive(tmp_path):
    workdir = tmp_path / "w"
    result = subprocess.run(SPEECHCRAWL + ["demo", "--workdir", str(workdir), "--items", "6"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "serving it at http://127.0.0.1:" in out
    assert "not built yet" in out
    facts = json.loads((workdir / "sample-archive" / "defects.json").read_text())
    items = pq.read_table(workdir / "manifests" / "items.parquet").to_pylist()
    assert items and {r["item_id"] for r in items} <= set(facts["licenses"])
    assert all(r["decision"] == facts["licenses"][r["item_id"]]["decision"] for r in items)
    assert str(workdir / "manifests" / "items.parquet") in out
    assert (workdir / "reports" / "audit-demo" / "index.html").is_file()
