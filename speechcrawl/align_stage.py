"""The align stage's orchestration: which recordings to align, in which worker, and the
bookkeeping that makes it resumable and idempotent. The work itself is
``align.recording.align_recording``; the records are the catalog and the clip manifests."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from align.filters import FilterConfig
from align.models import load_model
from align.recording import RecordingFailed, RecordingJob, align_recording
from manifests.catalog import Catalog
from manifests.parquet import table_from_rows, write_atomic
from manifests.schema import CLIPS

_worker: dict = {}


def attribution(r) -> str:
    """TASL: title, author, source, license."""
    title = f'"{r["title"]}"' if r["title"] else "Untitled"
    by = f" by {r['creator']}" if r["creator"] else ""
    lic = r["license_spdx"] + (f" ({r['license_url']})" if r["license_url"] else "")
    return f"{title}{by}, {r['url']}, {lic}"


def _job(r, workdir: Path) -> RecordingJob:
    return RecordingJob(
        source=r["source"], item_id=r["item_id"], audio_file=r["audio"],
        audio_path=workdir / r["audio_path"], transcript_file=r["transcript"],
        transcript_path=workdir / r["transcript_path"], expected_s=r["length_s"],
        asr_caption=bool(r["asr"]), license_spdx=r["license_spdx"],
        license_family=r["license_family"], attribution=attribution(r))


def _init(model: str, device: str, config: FilterConfig, threads: int | None = None) -> None:
    if threads:
        torch.set_num_threads(threads)  # workers share the cores instead of oversubscribing
    _worker.update(model=load_model(model, device), config=config)


def _run(job: RecordingJob, workdir: Path) -> tuple[RecordingJob, list[dict] | None, str | None]:
    try:
        rows = align_recording(job, _worker["model"], _worker["config"], workdir / "clips",
                               workdir)
        return job, rows, None
    except RecordingFailed as exc:
        return job, None, str(exc)
    except Exception as exc:  # a bug or a broken file must not stop the batch
        return job, None, f"internal error: {type(exc).__name__}: {exc}"


def run_align(workdir: Path, model: str = "wav2vec2-base-960h", device: str = "cpu",
              workers: int = 1, config: FilterConfig | None = None, out=None) -> dict:
    """Align every accepted pair not aligned yet with these inputs; return the counts."""
    out = out or sys.stderr
    config = config or FilterConfig()
    catalog = Catalog(workdir / "catalog.sqlite")
    _init(model, device, config)  # loaded here too: the model id keys the work
    model_id = _worker["model"].info.model_id
    config_key = hashlib.sha1(json.dumps(config.as_dict(), sort_keys=True).encode()).hexdigest()
    todo = []
    for r in catalog.alignable():
        key = hashlib.sha1(f"{r['audio_md5']}|{r['transcript_md5']}|{model_id}|{config_key}"
                           .encode()).hexdigest()
        done = catalog.alignment(r["source"], r["item_id"], r["audio"])
        if done is None or done["input_key"] != key:
            todo.append((_job(r, workdir), key))
    totals = {"recordings": len(todo), "failed": 0, "clean": 0, "other": 0, "rejected": 0,
              "hours": 0.0}
    if not todo:
        print("align: nothing to do", file=out)
        return totals
    keys = {job.key: key for job, key in todo}
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        pool = ProcessPoolExecutor(workers, initializer=_init,
                                   initargs=(model, device, config, threads))
        results = pool.map(_run, [j for j, _ in todo], [workdir] * len(todo))
    else:
        pool, results = None, (_run(j, workdir) for j, _ in todo)
    try:
        for n, (job, rows, reason) in enumerate(results, 1):
            _record(catalog, workdir, job, keys[job.key], model_id, rows, reason, totals)
            print(f"align [{n}/{len(todo)}] {job.item_id}/{job.audio_file}: "
                  + (f"failed: {reason}" if reason else f"{len(rows)} clips")
                  + f" | {totals['hours']:.2f} h aligned; clean {totals['clean']}, other "
                    f"{totals['other']}, rejected {totals['rejected']}, failed "
                    f"{totals['failed']}", file=out, flush=True)
    finally:
        if pool:
            pool.shutdown()
    return totals


def _record(catalog: Catalog, workdir: Path, job: RecordingJob, key: str, model_id: str,
            rows: list[dict] | None, reason: str | None, totals: dict) -> None:
    base = {"source": job.source, "item_id": job.item_id, "audio": job.audio_file,
            "transcript": job.transcript_file, "input_key": key, "model_id": model_id}
    if reason is not None:
        totals["failed"] += 1
        catalog.record_alignment({**base, "status": "failed", "reason": reason, "clips": 0,
                                  "clean": 0, "other": 0, "rejected": 0, "audio_s": None,
                                  "manifest": None})
        return
    manifest = workdir / "manifests" / "clips" / f"{job.key}.parquet"
    write_atomic(table_from_rows(rows, CLIPS), manifest)
    counts = {t: sum(1 for r in rows if r["tier"] == t) for t in ("clean", "other", "rejected")}
    for t, c in counts.items():
        totals[t] += c
    totals["hours"] += (job.expected_s or 0) / 3600
    catalog.record_alignment({**base, "status": "done", "reason": None, "clips": len(rows),
                              **counts, "audio_s": job.expected_s,
                              "manifest": str(manifest.relative_to(workdir))})
