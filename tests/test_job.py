"""Job files: validated before anything runs, every stage they name run in order, resumable,
ending with the summary table; the shipped example files are valid jobs."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from manifests.summary import format_summary, summarize
from speechcrawl.job import Job, JobError

SPEECHCRAWL = [sys.executable, "-m", "speechcrawl.cli"]
JOBS = Path(__file__).resolve().parents[1] / "scripts" / "jobs"


@pytest.mark.parametrize("path", sorted(JOBS.glob("*.toml")), ids=lambda p: p.name)
def test_the_example_job_files_are_valid(path):
    job = Job.load(path)
    assert job.crawl and job.align and job.release and job.export is not None


@pytest.mark.parametrize("text, message", [
    ('[align]\nmodel = "demo"', "no workdir"),
    ('workdir = "w"\n[aling]\nmodel = "demo"', "unknown tables ['aling']"),
    ('workdir = "w"\n[align]\nmodle = "demo"', "[align] has unknown keys ['modle']"),
    ('workdir = "w"\n[[crawl]]\nquery = "x"', "every [[crawl]] needs a source"),
    ('workdir = "w"\n[release]\nprevious = "p"', "[release] needs a version"),
    ('workdir = "w"\nalign = 3', "[align] must be a table"),
    ('workdir = "w"\n[align\n', "not valid TOML"),
])
def test_a_bad_job_file_is_refused_before_anything_runs(tmp_path, text, message):
    path = tmp_path / "job.toml"
    path.write_text(text)
    with pytest.raises(JobError) as err:
        Job.load(path)
    assert message in str(err.value)
    result = subprocess.run(SPEECHCRAWL + ["run", str(path)], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_job_runs_its_stages_and_a_second_run_does_no_work(tmp_path):
    """The sample archive job on three items: crawl and align, then the same job again."""
    with socket.socket() as s:  # a port of this test's own: another suite may hold 8765
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    job = tmp_path / "job.toml"
    job.write_text(f'workdir = "work"\n[sample_archive]\nitems = 3\nport = {port}\n'
                   '[[crawl]]\nsource = "archive_org"\n[align]\nmodel = "demo"\n')
    first = subprocess.run(SPEECHCRAWL + ["run", str(job)], capture_output=True, text=True,
                           timeout=900, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    workdir = tmp_path / "work"
    summary = summarize(workdir)
    assert first.stdout.rstrip().endswith(format_summary(summary))
    items = pq.read_table(workdir / "manifests" / "items.parquet").to_pylist()
    assert summary["items"] == len(items) == 3
    assert summary["accepted"] == sum(r["decision"] == "accepted" for r in items)
    clips = [r for p in (workdir / "manifests" / "clips").glob("*.parquet")
             for r in pq.read_table(p, columns=["tier", "duration_s"]).to_pylist()]
    for tier, v in summary["tiers"].items():
        mine = [c for c in clips if c["tier"] == tier]
        assert v["clips"] == len(mine)
        assert v["hours"] == pytest.approx(sum(c["duration_s"] for c in mine) / 3600)
    assert sum(v["clips"] for v in summary["tiers"].values()) > 0
    assert summary["hours_aligned"] > 0 and summary["hours_downloaded"] >= \
        summary["hours_aligned"]

    second = subprocess.run(SPEECHCRAWL + ["run", str(job)], capture_output=True, text=True,
                            timeout=900, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "align: nothing to do" in second.stdout + second.stderr
    assert "0 downloaded" in second.stderr  # the crawl's progress line: nothing fetched again
    assert summarize(workdir) == summary
