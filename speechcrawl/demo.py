"""``speechcrawl demo``: the whole pipeline on the offline sample archive, no network needed.

It is the sample-archive job (``scripts/jobs/sample_archive.toml``) in code: build the sample
archive inside the workdir, serve it on 127.0.0.1, crawl it, align it with the shipped demo
model, build a release, export the clean clips for HuggingFace, NeMo and Lhotse, audit the
licenses, and print where everything is.
"""

from __future__ import annotations

import sys
from pathlib import Path

from speechcrawl.job import Job, run_job

VERSION = "demo"


def demo_job(workdir: Path, items: int = 40) -> Job:
    return Job(workdir=workdir, sample_archive={"items": items},
               crawl=[{"source": "archive_org"}],
               align={"model": "demo"},
               # A demonstration, rebuilt whenever its inputs change (--items, say); a
               # real job keeps a version's content fixed and bumps the version instead.
               release={"version": VERSION, "force": True},
               export={"formats": ["hf", "nemo", "lhotse"], "configs": ["clean"]},
               audit={})


def run_demo(workdir: Path, items: int = 40, out=sys.stdout) -> int:
    status = run_job(demo_job(workdir, items), out=out)
    w = workdir
    # speechcrawl.log is written only when a command fails: name only the logs that exist.
    logs = [p for p in (w / "crawl.log", w / "speechcrawl.log") if p.exists()]
    print(f"""
where everything is:
  sample archive    {w / 'sample-archive'}  (its ground truth: truth/, defects.json)
  catalog           {w / 'catalog.sqlite'}
  items manifest    {w / 'manifests' / 'items.parquet'}
  downloads         {w / 'raw'}
  clip manifests    {w / 'manifests' / 'clips'}
  clips (FLAC)      {w / 'clips'}
  release           {w / 'releases' / VERSION}  (data card: README.md)
  exports           {w / 'exports'}  (hf, nemo, lhotse)
  license audit     {w / 'reports' / f'audit-{VERSION}' / 'index.html'}
  logs              {', '.join(str(p) for p in logs) or '(none)'}
The demo model is trained on synthetic speech only: use wav2vec2-base-960h for real corpora.""",
          file=out, flush=True)
    return status
