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
    tiers = ["clean"]         # workdir only

    [audit]

``[sample_archive]`` (``items``, ``seed``, ``port``) builds the offline sample archive in the
workdir and serves it on 127.0.0.1 for the crawls; that is what ``speechcrawl demo`` runs.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from crawler.settings import ARCHIVE_ORG_BASE_URL
from manifests.summary import format_summary, summarize

_TABLES = {"workdir": None, "sample_archive": {"items", "seed", "port"},
           "crawl": {"source", "base_url", "query", "max_items", "settings"},
           "align": {"model", "device", "workers", "filters"},
           "release": {"version", "previous", "config", "workers", "force"},
           "export": {"formats", "tiers", "out", "include_asr_captions", "configs", "link"},
           "audit": {"out"}}


class JobError(ValueError):
    """A job file that cannot run: said before any stage starts."""


@dataclass
class Job:
    workdir: Path
    sample_archive: dict | None = None
    crawl: list[dict] = field(default_factory=list)
    align: dict | None = None
    release: dict | None = None
    export: dict | None = None
    audit: dict | None = None

    @classmethod
    def from_dict(cls, data: dict, where: str = "job") -> Job:
        unknown = set(data) - set(_TABLES)
        if unknown:
            raise JobError(f"{where}: unknown tables {sorted(unknown)} "
                           f"(known: {', '.join(_TABLES)})")
        if "workdir" not in data:
            raise JobError(f"{where}: no workdir")
        crawls = data.get("crawl", [])
        crawls = [crawls] if isinstance(crawls, dict) else crawls
        tables = {name: data.get(name) for name in _TABLES if name not in ("workdir", "crawl")}
        for name, table in [*(("crawl", c) for c in crawls), *tables.items()]:
            if table is None:
                continue
            if not isinstance(table, dict):
                raise JobError(f"{where}: [{name}] must be a table")
            if bad := set(table) - _TABLES[name]:
                raise JobError(f"{where}: [{name}] has unknown keys {sorted(bad)} "
                               f"(known: {', '.join(sorted(_TABLES[name]))})")
        for c in crawls:
            if "source" not in c:
                raise JobError(f"{where}: every [[crawl]] needs a source")
        if tables["release"] is not None and "version" not in tables["release"]:
            raise JobError(f"{where}: [release] needs a version")
        return cls(Path(data["workdir"]), crawl=crawls, **tables)

    @classmethod
    def load(cls, path: Path) -> Job:
        try:
            data = tomllib.loads(Path(path).read_text())
        except tomllib.TOMLDecodeError as exc:
            raise JobError(f"{path}: not valid TOML: {exc}") from None
        return cls.from_dict(data, str(path))


def run_job(job: Job, out=sys.stdout) -> int:
    """Run every stage the job names; print the summary; 1 if the license gate failed."""
    workdir = job.workdir
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


def _sample_archive(spec: dict, workdir: Path, stack: ExitStack, out) -> str:
    """Build and serve the sample archive, on the same port each run when it is free: the
    item URLs (and so the attributions, which key the alignments) then stay the same, and a
    second run aligns nothing again."""
    from crawler.sample_archive.build import build
    from crawler.sample_archive.server import DEFAULT_PORT, serving

    archive = build(workdir / "sample-archive",
                    **{k: spec[k] for k in ("items", "seed") if k in spec})
    port = spec.get("port", DEFAULT_PORT)
    try:
        url = stack.enter_context(serving(archive, port=port))
    except OSError as exc:
        url = stack.enter_context(serving(archive))
        print(f"port {port} is not free ({exc.strerror}): the item URLs differ from an earlier "
              "run's, so their attributions change and their recordings are aligned again",
              file=out)
    print(f"sample archive: {archive}, served at {url}", file=out, flush=True)
    return url


def _crawl(spec: dict, workdir: Path, served: str | None, out) -> None:
    """In a child process: Scrapy's reactor runs once per process, and a job may crawl
    several sources."""
    base_url = spec.get("base_url") or served or ARCHIVE_ORG_BASE_URL
    cmd = [sys.executable, "-m", "speechcrawl.cli", "crawl", spec["source"],
           "--workdir", str(workdir), "--base-url", base_url]
    if spec.get("query"):
        cmd += ["--query", spec["query"]]
    if spec.get("max_items") is not None:
        cmd += ["--max-items", str(spec["max_items"])]
    for key, value in (spec.get("settings") or {}).items():
        cmd += ["--set", f"{key}={value}"]
    print(f"crawl {spec['source']} at {base_url} (log: {workdir / 'crawl.log'})", file=out,
          flush=True)
    # The child's progress and its one-line reason on failure go straight to the terminal.
    result = subprocess.run(cmd, stdin=subprocess.DEVNULL)
    if result.returncode:
        raise RuntimeError(f"crawl of {spec['source']} failed (exit {result.returncode}); the "
                           f"reason is printed above and in {workdir / 'crawl.log'}")


def _align(spec: dict, workdir: Path, out) -> None:
    from speechcrawl.align_stage import run_align

    totals = run_align(workdir, spec.get("model", "wav2vec2-base-960h"),
                       spec.get("device", "cpu"), spec.get("workers", 1),
                       spec.get("filters"), out=out)
    print(f"align: {totals['recordings']} recordings this run ({totals['failed']} failed)",
          file=out, flush=True)


def _release(spec: dict, workdir: Path, out) -> Path:
    from manifests.release import build_release

    config = spec.get("config")
    path = build_release(workdir, str(spec["version"]),
                         previous=Path(spec["previous"]) if spec.get("previous") else None,
                         config=Path(config) if isinstance(config, str) else config,
                         workers=spec.get("workers", 1), force=spec.get("force", False))
    print(f"release: {path}", file=out, flush=True)
    return path


def _export(spec: dict, workdir: Path, release_dir: Path | None, out) -> None:
    """Export the release this job built (its configs, default ``clean``), else the
    workdir's clips for a quick look (said so in each export.json)."""
    from manifests.exports import export

    root = Path(spec.get("out", workdir / "exports"))
    if release_dir is not None:
        source = {"release": release_dir, "configs": list(spec.get("configs") or ["clean"])}
    else:
        source = {"workdir": workdir, "tiers": list(spec.get("tiers", ["clean"])),
                  "include_asr_captions": spec.get("include_asr_captions", False),
                  "link": spec.get("link", False)}
    for fmt in spec.get("formats", ["hf", "nemo", "lhotse"]):
        summary = export(fmt, root / fmt, **source)
        what = f"release {release_dir.name}" if release_dir else "workdir (not a release)"
        print(f"export {fmt} of {what}: {summary.out} ({summary.clips} clips, "
              f"{summary.hours:.2f} h)", file=out, flush=True)


def _audit(spec: dict, workdir: Path, release_dir: Path | None, out) -> bool:
    from manifests.audit import build_audit
    from manifests.audit_report import write_report

    audit = build_audit(workdir, release_dir)
    tag = release_dir.name if release_dir else "latest"
    report = write_report(audit, Path(spec.get("out", workdir / "reports" / f"audit-{tag}")))
    gate = audit["gate"]
    print(f"audit: {report / 'index.html'} ({gate['blockers']} blocking, {gate['warnings']} "
          f"other findings; license gate {'passed' if gate['passed'] else 'FAILED'})",
          file=out, flush=True)
    return gate["passed"]
