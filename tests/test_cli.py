"""The command line: every command of the contract, one-line failures, serve and demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

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
    # the job's exports are of its release: the clean config, split by split
    assert list((workdir / "exports" / "nemo").glob("train_manifest.json"))
    assert list((workdir / "exports" / "lhotse").glob("cuts_train.jsonl.gz"))
    clean = {r["id"]: r["duration_ms"] / 1000
             for p in (workdir / "releases" / "demo" / "data" / "clean").glob("*.parquet")
             for r in pq.read_table(p, columns=["id", "duration_ms"]).to_pylist()}
    hf = datasets.load_dataset("parquet", split="train", data_files=str(
        workdir / "exports" / "hf" / "data" / "*.parquet"))
    assert sorted(hf["id"]) == sorted(clean)
    for row in hf.select(range(min(5, len(hf)))):
        samples = row["audio"].get_all_samples()
        assert samples.sample_rate == 16000
        assert samples.data.shape[-1] / 16000 == pytest.approx(clean[row["id"]], abs=0.002)


# -- the workdir must exist; --out replaces only speechcrawl's own output ------------------------

def speechcrawl(*argv, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(SPEECHCRAWL + [str(a) for a in argv], capture_output=True, text=True,
                          timeout=600, env=env)


# what reading a workdir may change: SQLite's WAL files, and the log of the failure
BOOKKEEPING = {"catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm", "speechcrawl.log"}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.name not in BOOKKEEPING}


def one_line_error(result: subprocess.CompletedProcess, *words: str) -> str:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


NEEDS_A_WORKDIR = {
    "align": ["align", "--model", "demo"],
    "release": ["release", "--version", "v1"],
    "audit": ["audit"],
    "export": ["export", "hf", "--out", "OUT"],
}


@pytest.mark.parametrize("command", NEEDS_A_WORKDIR)
def test_a_missing_or_foreign_workdir_is_an_error_and_is_not_created(command, tmp_path):
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in NEEDS_A_WORKDIR[command]]
    typo = tmp_path / "typo" / "work"
    one_line_error(speechcrawl(*argv, "--workdir", typo), "does not exist")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    one_line_error(speechcrawl(*argv, "--workdir", tmp_path / "mine"), "no catalog.sqlite")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no typo/, no out/
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


@pytest.fixture(scope="module")
def workdir(aligned, tmp_path_factory) -> Path:
    """A copy of the aligned workdir: these tests point --out at it on purpose."""
    import shutil

    return Path(shutil.copytree(aligned, tmp_path_factory.mktemp("outs") / "work"))


def out_args(command: str, workdir: Path, out: Path) -> list:
    return {"audit": ["audit", "--workdir", workdir, "--out", out],
            "release": ["release", "--workdir", workdir, "--version", "v1", "--out", out,
                        "--force"],
            "export": ["export", "hf", "--workdir", workdir, "--out", out]}[command]


@pytest.mark.parametrize("command", ["audit", "release", "export"])
@pytest.mark.parametrize("target", ["user-dir", "workdir", "above-workdir", "in-raw",
                                    "in-manifests", "file", "home", "other-output"])
def test_out_never_replaces_what_speechcrawl_did_not_make(command, target, workdir, tmp_path):
    from manifests.outdir import mark

    env = dict(os.environ)
    user = tmp_path / "user"
    (user / "sub").mkdir(parents=True)
    (user / "sub" / "thesis.tex").write_text("years of work")
    out = {"user-dir": user, "workdir": workdir, "above-workdir": workdir.parent,
           "in-raw": workdir / "raw" / "out", "in-manifests": workdir / "manifests",
           "file": user / "sub" / "thesis.tex", "home": tmp_path / "home",
           "other-output": tmp_path / "other"}[target]
    if target == "home":
        out.mkdir()  # empty, and still refused: it is $HOME
        env["HOME"] = str(out)
    if target == "other-output":  # another command's output (a release, say) is not ours
        out.mkdir()
        (out / "data.bin").write_bytes(b"x")
        mark(out, "sample-archive" if command != "audit" else "release")
    before, before_work = snapshot(tmp_path), snapshot(workdir)
    line = one_line_error(speechcrawl(*out_args(command, workdir, out), env=env), "--out",
                          "not writing there")
    assert snapshot(tmp_path) == before and snapshot(workdir) == before_work, line
    assert not (workdir / "raw" / "out").exists()


@pytest.mark.parametrize("command", ["audit", "release", "export"])
def test_out_replaces_an_earlier_output_of_the_same_command_whole(command, workdir, tmp_path):
    from manifests.outdir import MARKER

    out = tmp_path / "out"
    first = speechcrawl(*out_args(command, workdir, out))
    assert first.returncode in (0, 1), first.stderr  # audit: 1 when its gate fails
    marker = json.loads((out / MARKER).read_text())
    assert marker["made_by"] == f"speechcrawl {command}"
    assert set(marker["entries"]) == {p.relative_to(out).as_posix()
                                      for p in out.rglob("*")} - {MARKER}
    (out / "notes.txt").write_text("a file the user added to the output")
    again = out_args(command, workdir, out)
    if command == "release":  # different content, so --force really replaces it
        (tmp_path / "small.toml").write_text("[release]\nmax_shard_bytes = 200000\n")
        again += ["--config", tmp_path / "small.toml"]
    refused = speechcrawl(*again)  # the user's file is not speechcrawl's to delete
    assert refused.returncode != 0 and "did not make" in refused.stderr.strip().splitlines()[-1]
    assert (out / "notes.txt").read_text() == "a file the user added to the output"
    (out / "notes.txt").unlink()
    second = speechcrawl(*again)
    assert second.returncode == first.returncode, second.stderr
    assert (out / MARKER).is_file() and json.loads((out / MARKER).read_text()) == {
        "made_by": f"speechcrawl {command}",
        "entries": sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                          if p.name != MARKER)}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["out"] + (["small.toml"] if command == "release" else []))  # no temporaries left


def test_an_output_inside_another_output_is_refused(workdir, tmp_path):
    from manifests.outdir import MARKER, OutputRefused, check_out, mark

    (tmp_path / "rel").mkdir()
    mark(tmp_path / "rel", "release")
    with pytest.raises(OutputRefused, match="inside .*speechcrawl release"):
        check_out(tmp_path / "rel" / "audit", "audit")
    with pytest.raises(OutputRefused, match="root or the home"):
        check_out(Path("/"), "export")
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "x").write_text("x")
    (tmp_path / "fake" / MARKER).symlink_to(tmp_path / "rel" / MARKER)  # a marker by link
    with pytest.raises(OutputRefused, match="did not make"):
        check_out(tmp_path / "fake", "release")
    (tmp_path / "link").symlink_to(workdir)
    with pytest.raises(OutputRefused, match="workdir"):
        check_out(tmp_path / "link", "export", workdir)
