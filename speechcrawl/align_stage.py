"""The align stage's orchestration: which recordings to align, in which worker, and the
bookkeeping that makes it resumable and idempotent. The work itself is
``align.recording.align_recording``; the records are the catalog and the clip manifests."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pyarrow.parquet as pq
import torch

from align.filters import FilterConfig
from align.models import load_model
from align.recording import RecordingFailed, RecordingJob, align_recording
from manifests.catalog import AlignmentStatus, Catalog
from manifests.parquet import table_from_rows, write_atomic
from manifests.paths import remote_path
from manifests.schema import CLIPS
from speechcrawl.specs import DEFAULT_MODEL

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


def _init(model: str, device: str, config: FilterConfig | None,
          threads: int | None = None) -> None:
    if threads:
        torch.set_num_threads(threads)  # workers share the cores instead of oversubscribing
    _worker.update(model=load_model(model, device), config=config)


# Failures that are ours, not the recording's (a bug, memory, a full disk, a dead worker) are
# retried by later runs, up to MAX_INTERNAL_ATTEMPTS in all for the same inputs; then recorded as
# failed for good. The count lives in the reason: "internal error (attempt 2 of 3): …".
# What the input causes raises RecordingFailed and is never retried.
INTERNAL = "internal error: "
MAX_INTERNAL_ATTEMPTS = 3
_ATTEMPT = re.compile(r"internal error(?: \(attempt (\d+) of \d+\))?: ")
# A recording whose worker died because another one killed it: not its failure, not recorded.
NOT_ATTEMPTED = "not attempted: a worker process died while aligning another recording"


def internal_attempts(reason: str | None) -> int:
    """How many runs in a row failed these inputs with an internal error that is retried."""
    m = _ATTEMPT.match(reason or "")
    return int(m.group(1) or 1) if m else 0


def _count_attempt(reason: str, attempt: int) -> str:
    detail = reason.removeprefix(INTERNAL)
    if attempt >= MAX_INTERNAL_ATTEMPTS:
        return f"internal error ({attempt} attempts): {detail}"
    return f"internal error (attempt {attempt} of {MAX_INTERNAL_ATTEMPTS}): {detail}"


def _run(job: RecordingJob, workdir: Path) -> tuple[RecordingJob, list[dict] | None, str | None]:
    try:
        rows = align_recording(job, _worker["model"], _worker["config"], workdir / "clips",
                               workdir)
        return job, rows, None
    except RecordingFailed as exc:
        return job, None, str(exc)
    except Exception as exc:  # a bug, a full disk, out of memory: never stops the batch
        return job, None, f"{INTERNAL}{type(exc).__name__}: {exc}"


def filter_config(info, overrides: dict | None = None) -> FilterConfig:
    """The defaults, then the model's calibration, then the user's settings."""
    return FilterConfig().updated(dict(info.filter_defaults)).updated(overrides or {})


def run_align(workdir: Path, model: str = DEFAULT_MODEL, device: str = "cpu",
              workers: int = 1, filters: dict | None = None, out=None) -> dict:
    """Align every accepted pair not aligned yet with these inputs; return the counts.
    ``filters`` overrides filter settings (see ``align.filters.FilterConfig``)."""
    out = out or sys.stderr
    catalog = Catalog(workdir / "catalog.sqlite")
    _init(model, device, None)  # loaded here too: the model id keys the work
    info = _worker["model"].info
    config = _worker["config"] = filter_config(info, filters)
    if workers > 1:  # the workers load their own; the parent needed only the id
        _worker.pop("model")
    model_id = info.model_id
    config_key = hashlib.sha1(json.dumps(config.as_dict(), sort_keys=True).encode()).hexdigest()
    todo, current = [], set()
    for r in catalog.alignable():
        job = _job(r, workdir)
        current.add((job.source, job.item_id, job.audio_file))
        inputs = [r["audio_md5"], r["transcript_md5"], model_id, config_key, job.license_spdx,
                  job.license_family, job.attribution, job.asr_caption]
        key = hashlib.sha1(json.dumps(inputs, default=str).encode()).hexdigest()
        done = catalog.alignment(r["source"], r["item_id"], r["audio"])
        tried = internal_attempts(done["reason"]) if done and done["input_key"] == key else 0
        if done is None or done["input_key"] != key or 0 < tried < MAX_INTERNAL_ATTEMPTS:
            todo.append((job, key, tried))
    _forget_stale(catalog, workdir, current)
    # "recordings" counts those aligned (recorded as done) this run, as the catalog counts
    # them; failed ones and those a dead worker kept from being tried are not among them.
    totals = {"recordings": 0, "failed": 0, "clean": 0, "other": 0, "rejected": 0,
              "hours": 0.0}
    if not todo:
        print("align: nothing to do", file=out)
        _report(catalog, totals, out)
        return totals
    keys = {job.key: key for job, key, _ in todo}
    tried = {job.key: n for job, _, n in todo}
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        # spawn, not fork: a parent that touched CUDA cannot fork workers that use it.
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init, initargs=(model, device, config, threads))
        results = _pooled(pool, [j for j, _, _ in todo], workdir)
    else:
        pool, results = None, (_run(j, workdir) for j, _, _ in todo)
    try:
        for n, (job, rows, reason) in enumerate(results, 1):
            if reason == NOT_ATTEMPTED:  # retried next run, its attempts not counted
                print(f"align [{n}/{len(todo)}] {job.item_id}/{job.audio_file}: {reason}",
                      file=out, flush=True)
                continue
            if reason is not None and reason.startswith(INTERNAL):
                reason = _count_attempt(reason, tried[job.key] + 1)
            _record(catalog, workdir, job, keys[job.key], model_record(info), config, rows,
                    reason, totals)
            print(f"align [{n}/{len(todo)}] {job.item_id}/{job.audio_file}: "
                  + (f"failed: {reason}" if reason else f"{len(rows)} clips")
                  + f" | {totals['hours']:.2f} h aligned; clean {totals['clean']}, other "
                    f"{totals['other']}, rejected {totals['rejected']}, failed "
                    f"{totals['failed']}", file=out, flush=True)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    _report(catalog, totals, out)
    return totals


def _report(catalog: Catalog, totals: dict, out) -> None:
    """This run's figures, and the workdir's as the catalog counts them (what the summary
    shows): a recording is aligned once it is recorded as done, never while it only waits."""
    c = catalog.counts()
    print(f"align: {totals['recordings']} recordings aligned this run, {totals['failed']} "
          f"failed | in the workdir: {c.recordings_aligned} recordings aligned "
          f"({c.aligned_seconds / 3600:.2f} h), {c.recordings_failed} failed", file=out,
          flush=True)


def _pooled(pool: ProcessPoolExecutor, jobs: list[RecordingJob], workdir: Path):
    """Results in order; a worker that dies (killed for memory, say) ends the pool instead of
    the batch. The first unfinished recording (the likeliest cause) fails with an internal
    error, retried a bounded number of times; the others are not attempted this run, so a
    recording that kills its worker cannot use up the attempts of those queued behind it."""
    futures = [pool.submit(_run, job, workdir) for job in jobs]
    broken = False
    for job, fut in zip(jobs, futures, strict=True):
        try:
            yield fut.result()
        except BrokenProcessPool as exc:
            yield job, None, NOT_ATTEMPTED if broken else f"{INTERNAL}worker process died ({exc})"
            broken = True


def _forget_stale(catalog: Catalog, workdir: Path, current: set[tuple]) -> None:
    """Clips of recordings no longer alignable (item rejected, gone, file replaced) leave
    the manifests, so nothing downstream reads them."""
    for row in catalog.alignments():
        if (row.source, row.item_id, row.audio) not in current:
            _remove_outputs(workdir, row.manifest)
            catalog.delete_alignment(row.source, row.item_id, row.audio)


def _remove_outputs(workdir: Path, manifest: str | None) -> None:
    if not manifest or not (workdir / manifest).exists():
        return
    for clip in pq.read_table(workdir / manifest, columns=["clip_path"]).column(0).to_pylist():
        # a manifest written before paths were checked may name a file outside the workdir
        if clip and (workdir / clip).resolve().is_relative_to(workdir.resolve()):
            (workdir / clip).unlink(missing_ok=True)
    (workdir / manifest).unlink()


def model_record(info) -> dict:
    """What a release's data card must say of the model: its weights and their license."""
    return {"model_id": info.model_id, "name": info.name, "sha256": info.checksum,
            "weights_license": info.weights_license, "note": info.note}


def _record(catalog: Catalog, workdir: Path, job: RecordingJob, key: str, model: dict,
            config: FilterConfig, rows: list[dict] | None, reason: str | None,
            totals: dict) -> None:
    base = {"source": job.source, "item_id": job.item_id, "audio": job.audio_file,
            "transcript": job.transcript_file, "input_key": key, "model_id": model["model_id"]}
    if reason is not None:
        totals["failed"] += 1
        previous = catalog.alignment(job.source, job.item_id, job.audio_file)
        if previous is not None:  # an earlier success's clips must not outlive this failure
            _remove_outputs(workdir, previous["manifest"])
        catalog.record_alignment({**base, "status": AlignmentStatus.FAILED, "reason": reason,
                                  "clips": 0, "clean": 0, "other": 0, "rejected": 0,
                                  "audio_s": None, "manifest": None})
        return
    manifest = remote_path(workdir / "manifests" / "clips", f"{job.key}.parquet")
    write_atomic(table_from_rows(rows, CLIPS), manifest,
                 {"speechcrawl.filters": json.dumps(config.as_dict(), sort_keys=True),
                  "speechcrawl.model": json.dumps(model, sort_keys=True)})
    counts = {t: sum(1 for r in rows if r["tier"] == t) for t in ("clean", "other", "rejected")}
    for t, c in counts.items():
        totals[t] += c
    totals["recordings"] += 1
    totals["hours"] += (job.expected_s or 0) / 3600
    catalog.record_alignment({**base, "status": AlignmentStatus.DONE, "reason": None,
                              "clips": len(rows), **counts, "audio_s": job.expected_s,
                              "manifest": str(manifest.relative_to(workdir))})
