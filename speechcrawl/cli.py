"""The ``speechcrawl`` command line (the contracts in docs/ARCHITECTURE.md).

Thin on purpose: each command parses its arguments and calls into ``crawler``, ``align`` or
``manifests``. A failure exits non-zero with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from crawler.sample_archive.server import DEFAULT_PORT
from crawler.settings import ARCHIVE_ORG_BASE_URL
from manifests.exports import FORMATS
from manifests.paths import NotAWorkdir, existing_workdir
from speechcrawl.specs import DEVICES, AlignSpec, AuditSpec, SampleArchiveSpec, given


def _sample_archive_build(args: argparse.Namespace) -> int:
    from crawler.sample_archive.build import build

    out = build(Path(args.out), items=args.items, seed=args.seed, workers=args.workers)
    print(out)
    return 0


def _sample_archive_serve(args: argparse.Namespace) -> int:
    from crawler.sample_archive.server import FaultPlan, make_server

    faults = FaultPlan(args.faults, args.fault_kinds.split(",")) if args.faults else None
    server = make_server(Path(args.root), args.host, args.port, quiet=not args.verbose,
                         faults=faults)
    host, port = server.server_address[:2]
    print(f"serving {args.root} at http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _crawl(args: argparse.Namespace) -> int:
    from crawler.run import crawl
    from speechcrawl.specs import CrawlSpec, parse_setting

    try:
        overrides = json.loads(args.settings) if args.settings else {}
    except ValueError as exc:
        raise ValueError(f"--settings takes a JSON object: {exc}") from None
    for pair in args.set or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set takes KEY=VALUE, got {pair!r}")
        overrides[key] = parse_setting(key, value)
    spec = CrawlSpec.from_table(given(source=args.source, base_url=args.base_url,
                                      query=args.query, max_items=args.max_items,
                                      settings=overrides), where="")
    workdir = Path(args.workdir)
    stats = crawl(spec.source, workdir, spec.base_url, spec.query, spec.max_items,
                  spec.settings)
    found = stats.get("speechcrawl/items_discovered", 0)
    if not found and not stats.get("speechcrawl/items_accepted"):
        reason = stats.get("finish_reason", "unknown")
        raise RuntimeError(f"discovery found no items at {args.base_url} (finish reason: "
                           f"{reason}; see {workdir / 'crawl.log'})")
    return 0


def _release(args: argparse.Namespace) -> int:
    from manifests.release import build_release
    from speechcrawl.specs import ReleaseSpec

    spec = ReleaseSpec.from_table(given(version=args.version, previous=args.previous,
                                        config=args.config, workers=args.workers,
                                        force=args.force), where="")
    out = build_release(existing_workdir(Path(args.workdir)), spec.version, spec.previous,
                        spec.config, out=Path(args.out) if args.out else None,
                        workers=spec.workers, force=spec.force)
    meta = json.loads((out / "release.json").read_text())
    sizes = ", ".join(f"{name} {c['rows']} clips ({c['hours']:.2f} h)"
                      for name, c in meta["configs"].items() if c["rows"])
    print(f"release {args.version} in {out}: {sizes or 'no clips'}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from manifests.audit import build_audit
    from manifests.audit_report import write_report
    from manifests.outdir import check_out

    workdir = existing_workdir(Path(args.workdir))
    if args.out:
        check_out(Path(args.out), "audit", workdir)  # before the work, not after it
    audit = build_audit(workdir, Path(args.release) if args.release else None)
    out = write_report(audit, AuditSpec.from_table(given(out=args.out), where="")
                       .report_dir(workdir, audit), workdir)
    gate = audit["gate"]
    print(f"audit written to {out / 'index.html'} ({len(audit['items'])} items, "
          f"{gate['blockers']} blocking and {gate['warnings']} other findings)")
    if not gate["passed"]:
        kinds = sorted({f["kind"] for f in audit["findings"] if f["severity"] == "blocker"})
        print(f"speechcrawl audit: license gate failed: {gate['blockers']} blocking findings "
              f"({', '.join(kinds)}); see {out / 'index.html'}", file=sys.stderr)
        return 1
    return 0


def _align(args: argparse.Namespace) -> int:
    import tomllib

    from speechcrawl.align_stage import run_align
    from speechcrawl.specs import AlignSpec

    filters = tomllib.loads(Path(args.filters).read_text()) if args.filters else {}
    if set(filters) - {"filters"}:
        raise ValueError(f"{args.filters}: unknown tables or keys "
                         f"{sorted(set(filters) - {'filters'})} (expected a [filters] table)")
    spec = AlignSpec.from_table(given(model=args.model, device=args.device,
                                      workers=args.workers, filters=filters.get("filters")),
                                where="")
    totals = run_align(existing_workdir(Path(args.workdir)), spec.model, spec.device,
                       spec.workers, spec.filters)
    print(f"align: {totals['recordings']} recordings aligned, {totals['failed']} failed, clips: "
          f"{totals['clean']} clean, {totals['other']} other, {totals['rejected']} rejected")
    return 0


def _export(args: argparse.Namespace) -> int:
    from manifests.exports import export
    from manifests.outdir import check_out

    if args.release:
        if args.tier or args.include_asr_captions:
            raise ValueError("--tier and --include-asr-captions choose clips from a workdir; a "
                             "release config already says which clips it holds (--config)")
        workdir = existing_workdir(Path(args.workdir)) if args.workdir else None
        source = {"release": Path(args.release), "configs": args.config or ["clean"]}
    elif args.workdir:
        if args.config:
            raise ValueError("--config names a release config: give --release DIR")
        workdir = existing_workdir(Path(args.workdir))
        source = {"workdir": workdir, "tiers": args.tier or ["clean"],
                  "include_asr_captions": args.include_asr_captions}
    else:
        raise ValueError("give --release DIR (or, for a quick look, --workdir W)")
    check_out(Path(args.out), "export", workdir)  # before the work, not after it
    summary = export(args.format, Path(args.out), against_recordings=args.against_recordings,
                     link=args.link, **source)
    parts = ", ".join(f"{name} {p['clips']} clips ({p['hours']:.2f} h)"
                      + (f" in {p['dir']}/" if p["dir"] not in (".", None) else "")
                      for name, p in summary.parts.items() if p["clips"])
    if summary.origin == "release":
        print(f"export {summary.format} of release {args.release}: {parts} in {summary.out}")
    else:
        print(f"export {summary.format} from workdir {args.workdir}: {parts} in {summary.out}")
        print("note: a workdir export is not a release (no splits, duplicates kept); export a "
              "release for training: speechcrawl export FORMAT --release DIR")
    return 0


def _run(args: argparse.Namespace) -> int:
    from speechcrawl.job import Job, run_job

    job = Job.load(Path(args.job))
    args.workdir = str(job.workdir)  # a failure's details go to this job's log
    return run_job(job)


def _demo(args: argparse.Namespace) -> int:
    from speechcrawl.demo import run_demo

    return run_demo(Path(args.workdir), items=args.items)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="speechcrawl",
        description="Build speech-recognition corpora from permissively licensed audio.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sa = sub.add_parser("sample-archive", help="build or serve the offline sample archive")
    sa_sub = sa.add_subparsers(dest="action", required=True, metavar="ACTION")
    b = sa_sub.add_parser("build", help="write a deterministic sample archive")
    b.add_argument("--out", required=True, help="directory to create")
    b.add_argument("--items", type=int, default=SampleArchiveSpec.items,
                   help=f"number of items (default {SampleArchiveSpec.items})")
    b.add_argument("--seed", type=int, default=SampleArchiveSpec.seed,
                   help=f"random seed (default {SampleArchiveSpec.seed})")
    b.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    b.set_defaults(func=_sample_archive_build)
    s = sa_sub.add_parser("serve", help="serve a sample archive with archive.org's API shapes")
    s.add_argument("--root", required=True, help="the archive directory")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port (default {DEFAULT_PORT}; 0 picks one)")
    s.add_argument("--verbose", action="store_true", help="log every request")
    s.add_argument("--faults", type=float, default=0.0, metavar="RATE",
                   help="misbehave on this share (0-1) of first requests, for testing")
    s.add_argument("--fault-kinds", default="429,503,reset,short,drip",
                   help="which faults to inject (default: all)")
    s.set_defaults(func=_sample_archive_serve)

    c = sub.add_parser("crawl", help="discover, license-check and download a source")
    c.add_argument("source", help="source name, e.g. archive_org")
    c.add_argument("--workdir", required=True)
    c.add_argument("--base-url", default=ARCHIVE_ORG_BASE_URL)
    c.add_argument("--query", default=None, help="search query (default: People's Speech's)")
    c.add_argument("--max-items", type=int, default=None)
    c.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a crawler setting (crawler/settings.py), e.g. "
                        "SPEECHCRAWL_CONTACT=me@example.org (VALUE read as Scrapy's -s reads "
                        "it: a,b for a list, 1/0 for a boolean)")
    c.add_argument("--settings", default=None, metavar="JSON",
                   help="crawler settings as one JSON object (how `speechcrawl run` passes a "
                        "job's [crawl.settings])")
    c.set_defaults(func=_crawl)

    a = sub.add_parser("align", help="cut accepted recordings into verified clips")
    a.add_argument("--workdir", required=True)
    a.add_argument("--model", default=None,
                   help=f"model name or path (default {AlignSpec.model})")
    a.add_argument("--device", choices=DEVICES, default=None,
                   help=f"default {AlignSpec.device}")
    a.add_argument("--workers", type=int, default=None,
                   help="recordings aligned in parallel, each worker loading the model once "
                        f"(default {AlignSpec.workers})")
    a.add_argument("--filters", default=None, help="a TOML file with a [filters] table")
    a.set_defaults(func=_align)

    r = sub.add_parser("release", help="build a reproducible corpus release")
    r.add_argument("--workdir", required=True)
    r.add_argument("--version", required=True)
    r.add_argument("--previous", default=None,
                   help="the previous release directory: its splits stay frozen, the diff is "
                        "against it")
    r.add_argument("--config", default=None, help="a TOML file with a [release] table")
    r.add_argument("--out", default=None,
                   help="release directory (default: WORKDIR/releases/VERSION)")
    r.add_argument("--workers", type=int, default=None,
                   help="threads reading clips and writing shards (the output does not "
                        "depend on it; default: the cores, at most 8)")
    r.add_argument("--force", action="store_true", default=None,
                   help="replace an existing release of that version whose content differs")
    r.set_defaults(func=_release)

    au = sub.add_parser("audit", help="write the license audit report")
    au.add_argument("--workdir", required=True)
    au.add_argument("--release", default=None, help="the release directory to audit")
    au.add_argument("--out", default=None,
                    help="report directory (default: WORKDIR/reports/audit-<release or date>)")
    au.set_defaults(func=_audit)

    e = sub.add_parser("export", help="export a release (or a workdir's clips) for another "
                       "toolkit")
    e.add_argument("format", choices=list(FORMATS))
    e.add_argument("--release", default=None,
                   help="the release directory to export (exactly its config's rows and splits)")
    e.add_argument("--config", action="append", default=None,
                   help="release config to export (default clean); repeat it for several, "
                        "each written to its own subdirectory")
    e.add_argument("--workdir", default=None,
                   help="without --release: export the workdir's clips for a quick look (not "
                        "a release: no splits, duplicates kept)")
    e.add_argument("--out", required=True, help="directory to write (an earlier export "
                   "there is replaced whole)")
    e.add_argument("--tier", action="append", choices=["clean", "other", "all"],
                   help="workdir: tier to export (default clean); repeat it, or 'all' for "
                        "clean and other")
    e.add_argument("--include-asr-captions", action="store_true",
                   help="workdir: also export clips whose labels are machine captions")
    e.add_argument("--against-recordings", action="store_true",
                   help="workdir, nemo: point at the source recordings (copied into the "
                        "export) with offset and duration instead of at the clip files")
    e.add_argument("--link", action="store_true",
                   help="workdir: hard-link the clip files into the export instead of copying "
                        "them (a copy where the file system cannot link)")
    e.set_defaults(func=_export)

    j = sub.add_parser("run", help="run every stage a job file names")
    j.add_argument("job", help="JOB.toml (examples: scripts/jobs/)")
    j.set_defaults(func=_run)

    d = sub.add_parser("demo", help="offline: sample archive → crawl → align → release → "
                       "export → audit")
    d.add_argument("--workdir", default="work/demo")
    d.add_argument("--items", type=int, default=SampleArchiveSpec.items,
                   help=f"sample archive size (default {SampleArchiveSpec.items})")
    d.set_defaults(func=_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("speechcrawl: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for the user; the traceback goes to the workdir log
        # not even a log file goes into a directory that is not a workdir
        where = None if isinstance(exc, NotAWorkdir) else _log_traceback(args)
        print(f"speechcrawl {args.command}: {exc}" + (f" (details: {where})" if where else ""),
              file=sys.stderr)
        return 2


def _log_traceback(args: argparse.Namespace) -> Path | None:
    workdir = getattr(args, "workdir", None)
    if not workdir:
        return None
    log = Path(workdir) / "speechcrawl.log"
    if not log.parent.is_dir():  # a mistyped workdir is not created just to hold a log
        return None
    try:
        with log.open("a", encoding="utf-8") as f:
            f.write(f"--- speechcrawl {' '.join(sys.argv[1:])}\n{traceback.format_exc()}")
    except OSError:
        return None
    return log


if __name__ == "__main__":
    sys.exit(main())
