"""Job files: every stage of a batch run named in one TOML file, run in order, resumably.

A job file says where the work lives and which stages to run; a table present means "run this
stage". Every stage is idempotent (a second run finds nothing to do), so re-running a job after
a crash or a kill carries on where it stopped. Relative paths are relative to the directory the
job is run from. Example files: ``scripts/jobs/``.

    workdir = "work/archive-org"

    [[crawl]]                 # one table per source; several are allowed
    source = "archive_org"
    query = "…"               # optional: default People's Speech's query
    max_items = 500
    settings = { DOWNLOAD_DELAY = 2 }    # Scrapy / crawler settings

    [align]
    model = "wav2vec2-base-960h"
    workers = 2
    filters = { clean_max_cer = 0.08 }   # overrides of align.filters.FilterConfig

    [release]
    version = "2026.11"
    previous = "work/archive-org/releases/2026.10"
    config = { salt = "my-corpus-splits-1" }   # ReleaseConfig settings, or a TOML path

    [export]                  # of the release this job builds; without [release], of
    formats = ["hf", "nemo", "lhotse"]   # the workdir (a quick look, not a release)
    configs = ["clean"]       # release configs, each in its own directory when several
    # tiers = ["clean"]       # without [release] only: the workdir's tiers
    out = "exports"           # optional: each format in OUT/FORMAT (default WORKDIR/exports)

    [audit]
    out = "reports/audit"     # optional (default WORKDIR/reports/audit-<version or date>)

``out`` (export, audit) and ``previous`` (release) are checked when the job loads, as the
CLI's ``--out`` is: an output is never ``/``, the home directory, the workdir, a directory
holding it, inside its ``raw``/``clips``/``manifests``, or a directory holding files
speechcrawl did not make there (an export's ``out`` itself may hold other files: only its
``out/FORMAT`` directories are replaced); ``previous`` must already be a release (with its
``release.json``). ``~`` is expanded in every path. A job without ``[sample_archive]`` or
``[[crawl]]`` works on an existing workdir (one holding ``catalog.sqlite``).

``[sample_archive]`` (``items``, ``seed``, ``port``) builds the offline sample archive in the
workdir and serves it on 127.0.0.1 for the crawls; that is what ``speechcrawl demo`` runs.

Every table is a typed spec (``speechcrawl.specs``) checked in full when the job loads, and
what this machine needs for it (model weights, a contact for a real site) before the first
stage: a mistake never surfaces hours in. SIGTERM stops the job as Ctrl-C does, child
processes included.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import tomllib
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from crawler.settings import ARCHIVE_ORG_BASE_URL
from manifests.summary import format_summary, summarize
from speechcrawl.specs import (
    AlignSpec,
    AuditSpec,
    CrawlSpec,
    ExportSpec,
    JobSpec,
    ReleaseSpec,
    SampleArchiveSpec,
    SpecError,
)

JobError = SpecError  # a job file that cannot run: said before any stage starts
CHILD_PID = "crawl.pid"  # in the workdir while a crawl child runs: its process id
STOP_GRACE_S = 3.0  # a child stopping gracefully gets this long, twice, before it is killed


class Job(JobSpec):
    """A job file's specs, loaded and checked."""

    @classmethod
    def load(cls, path: Path) -> Job:
        try:
            data = tomllib.loads(Path(path).read_text())
        except tomllib.TOMLDecodeError as exc:
            raise JobError(f"{path}: not valid TOML: {exc}") from None
        return cls.from_dict(data, str(path))


class StageFailed(RuntimeError):
    """A stage's child process failed; the message is its one-line reason."""


def run_job(job: JobSpec, out=sys.stdout) -> int:
    """Run every stage the job names; print the summary; 1 if the license gate failed."""
    if problems := job.environment_problems():
        raise JobError("; ".join(problems))
    workdir = job.workdir
    with _sigterm_interrupts():
        workdir.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            served = None
            if job.sample_archive is not None:
                served = _sample_archive(job.sample_archive, workdir, stack, out)
            for c in job.crawl:
                _crawl(c, workdir, served, out)
        if job.align is not None:
            _align(job.align, workdir, out)
        release_dir = None
        if job.release is not None:
            release_dir = _release(job.release, workdir, out)
        if job.export is not None:
            _export(job.export, workdir, release_dir, out)
        gate_passed = True
        if job.audit is not None:
            gate_passed = _audit(job.audit, workdir, release_dir, out)
    print("\n" + format_summary(summarize(workdir)), file=out, flush=True)
    return 0 if gate_passed else 1


@contextmanager
def _sigterm_interrupts():
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does, so the same cleanup runs (the crawl
    child is stopped, the sample archive server closed) instead of the process vanishing and
    leaving its child crawling. Either signal also stops this process's other children at
    once (align's worker pool), which would otherwise finish their recordings first: a
    signal sent to ``run`` alone (``kill``, a scheduler) reaches no child by itself."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        _stop_other_children()
        raise KeyboardInterrupt(f"stopped by signal {signum}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_managed: set[int] = set()  # children stopped by their own code (the crawl child: gracefully)


def child_pids(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (from /proc; none where there is no /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def _stop_other_children() -> None:
    for pid in child_pids(os.getpid()):
        if pid not in _managed:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def _sample_archive(spec: SampleArchiveSpec, workdir: Path, stack: ExitStack, out) -> str:
    """Build and serve the sample archive, on the same port each run when it is free: the
    item URLs (and so the attributions, which key the alignments) then stay the same, and a
    second run aligns nothing again."""
    from crawler.sample_archive.build import build
    from crawler.sample_archive.server import serving

    archive = build(workdir / "sample-archive", items=spec.items, seed=spec.seed)
    try:
        url = stack.enter_context(serving(archive, port=spec.port))
    except OSError as exc:
        url = stack.enter_context(serving(archive))
        print(f"port {spec.port} is not free ({exc.strerror}): the item URLs differ from an "
              "earlier run's, so their attributions change and their recordings are aligned "
              "again", file=out)
    print(f"sample archive: {archive}, served at {url}", file=out, flush=True)
    return url


def crawl_command(spec: CrawlSpec, workdir: Path, base_url: str) -> list[str]:
    """The child's command line: the settings travel as JSON, so lists and tables survive."""
    cmd = [sys.executable, "-m", "speechcrawl.cli", "crawl", spec.source,
           "--workdir", str(workdir), "--base-url", base_url]
    if spec.query:
        cmd += ["--query", spec.query]
    if spec.max_items is not None:
        cmd += ["--max-items", str(spec.max_items)]
    if spec.settings:
        cmd += ["--settings", json.dumps(spec.settings)]
    return cmd


def _crawl(spec: CrawlSpec, workdir: Path, served: str | None, out) -> None:
    """In a child process: Scrapy's reactor runs once per process, and a job may crawl
    several sources. Its progress goes to the terminal as it comes; its one-line reason on
    failure becomes this job's one line."""
    base_url = spec.base_url or served or ARCHIVE_ORG_BASE_URL
    print(f"crawl {spec.source} at {base_url} (log: {workdir / 'crawl.log'})", file=out,
          flush=True)
    prefix = "speechcrawl crawl: "
    reason = None
    pid_file = workdir / CHILD_PID
    child = subprocess.Popen(crawl_command(spec, workdir, base_url), stdin=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, errors="replace")
    _managed.add(child.pid)
    try:
        pid_file.write_text(f"{child.pid}\n")
        for line in child.stderr:
            if reason is not None:
                sys.stderr.write(prefix + reason)
            reason = line[len(prefix):] if line.startswith(prefix) else None
            if reason is None:
                sys.stderr.write(line)
                sys.stderr.flush()
        code = child.wait()
    except BaseException:  # Ctrl-C, SIGTERM, or a failure here: the child goes too
        stop_child(child)
        raise
    finally:
        pid_file.unlink(missing_ok=True)
        _managed.discard(child.pid)
    if code:
        raise StageFailed(reason.strip() if reason else
                          f"crawl of {spec.source} failed (exit {code}); see "
                          f"{workdir / 'crawl.log'}")
    if reason is not None:
        sys.stderr.write(prefix + reason)


def stop_child(child: subprocess.Popen) -> None:
    """SIGTERM (Scrapy stops gracefully), again (Scrapy stops at once), then SIGKILL."""
    for stop in (child.terminate, child.terminate, child.kill):
        if child.poll() is not None:
            return
        try:
            stop()
            child.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return
    child.wait()


def _align(spec: AlignSpec, workdir: Path, out) -> None:
    from speechcrawl.align_stage import run_align

    run_align(workdir, spec.model, spec.device, spec.workers, spec.filters, out=out)  # reports


def _release(spec: ReleaseSpec, workdir: Path, out) -> Path:
    from manifests.release import build_release

    path = build_release(workdir, spec.version, previous=spec.previous, config=spec.config,
                         workers=spec.workers, force=spec.force)
    print(f"release: {path}", file=out, flush=True)
    return path


def _export(spec: ExportSpec, workdir: Path, release_dir: Path | None, out) -> None:
    """Export the release this job built (its configs, default ``clean``), else the
    workdir's clips for a quick look (said so in each export.json)."""
    from manifests.exports import export

    root = spec.out or workdir / "exports"
    if release_dir is not None:
        source = {"release": release_dir, "configs": list(spec.configs or ("clean",))}
    else:
        source = {"workdir": workdir, "tiers": list(spec.tiers or ("clean",)),
                  "include_asr_captions": spec.include_asr_captions, "link": spec.link}
    for fmt in spec.formats:
        summary = export(fmt, root / fmt, **source)
        what = f"release {release_dir.name}" if release_dir else "workdir (not a release)"
        print(f"export {fmt} of {what}: {summary.out} ({summary.clips} clips, "
              f"{summary.hours:.2f} h)", file=out, flush=True)


def _audit(spec: AuditSpec, workdir: Path, release_dir: Path | None, out) -> bool:
    from manifests.audit import build_audit
    from manifests.audit_report import write_report

    audit = build_audit(workdir, release_dir)
    report = write_report(audit, spec.report_dir(workdir, audit))
    gate = audit["gate"]
    print(f"audit: {report / 'index.html'} ({gate['blockers']} blocking, {gate['warnings']} "
          f"other findings; license gate {'passed' if gate['passed'] else 'FAILED'})",
          file=out, flush=True)
    return gate["passed"]
