"""What each stage is asked to do, typed and checked in full before anything runs.

A job file's tables and the CLI's arguments both become these specs (``from_table``), so a
mistake is found when the job loads, not hours into it after the crawl, and every default
lives here once. A wrong value is named with its table, key and what is accepted:
``[align] device: "gpu" is not one of cpu, cuda``. Values are never coerced: a job file is
typed TOML, and ``workers = "2"`` is a mistake to point out, not to guess at.

Checks that depend on this machine rather than on the file (model weights in the cache, a
GPU, a contact for a real site) are ``JobSpec.environment_problems``: run before the first
stage, but not when a job file is only read.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from crawler.sample_archive.build import DEFAULT_ITEMS, DEFAULT_SEED
from crawler.sample_archive.server import DEFAULT_PORT

if TYPE_CHECKING:
    from manifests.release.config import ReleaseConfig

DEFAULT_MODEL = "wav2vec2-base-960h"  # the one to use for real corpora (MIT weights)
DEVICES = ("cpu", "cuda")
MAX_WORKERS = 1024
_MISSING = object()


class SpecError(ValueError):
    """A job or command that cannot run: said before any stage starts, every problem at once."""


def default_release_workers() -> int:
    """Threads reading clips and writing shards: the cores, at most 8 (the output does not
    depend on it)."""
    return min(os.cpu_count() or 1, 8)


# -- checking values ---------------------------------------------------------------------------
def show(value) -> str:
    """A value as the job file spells it: strings in double quotes, true/false."""
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:
        return repr(value)


def kind(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _hint(value) -> str:
    """For a number written in quotes: how to write it."""
    if isinstance(value, str):
        try:
            number = json.loads(value.strip())
        except ValueError:
            return ""
        if isinstance(number, int | float) and not isinstance(number, bool):
            return f" (write {value.strip()} without quotes)"
    return ""


def nearest(name: str, known) -> str:
    """`` (did you mean X?)`` when a known name is close to ``name``."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


class Check:
    """The problems found in one table, each prefixed with where it is."""

    def __init__(self, where: str, table, problems: list[str] | None = None):
        self.where = where
        self.problems = problems if problems is not None else []
        self.table = table if isinstance(table, dict) else {}
        if not isinstance(table, dict):
            self.fail(None, f"must be a table, not {kind(table)} ({show(table)[:60]})")

    def fail(self, key: str | None, message: str) -> None:
        where = " ".join(w for w in (self.where, key) if w)
        self.problems.append(f"{where}: {message}")

    def keys(self, known) -> None:
        for key in self.table:
            if key not in known:
                self.fail(key, f"unknown key{nearest(key, known)}; known: {', '.join(known)}")

    def get(self, key: str, default=_MISSING, required: bool = False):
        if key not in self.table:
            if required:
                self.fail(key, "missing (it is required)")
            return default
        return self.table[key]

    def integer(self, key: str, default, low: int | None = None, high: int | None = None):
        value = self.get(key, _MISSING)
        if value is _MISSING:
            return default
        return check_integer(self, key, value, low, high, default)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.fail(key, f"{show(value)} is {kind(value)}, not true or false")
            return default
        return value

    def string(self, key: str, default=None, choices=None, required: bool = False):
        value = self.get(key, _MISSING, required)
        if value is _MISSING:
            return default
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"{show(value)} is {kind(value) if value != '' else 'empty'}, "
                           "not a non-empty string")
            return default
        if choices is not None and value not in choices:
            self.fail(key, f"{show(value)} is not one of {', '.join(choices)}"
                           f"{nearest(value, choices)}")
            return default
        return value

    def strings(self, key: str, default: tuple, choices) -> tuple[str, ...]:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, list) or not value:
            self.fail(key, f"{show(value)} is {kind(value)}, not a non-empty list of "
                           f"{', '.join(choices)}")
            return default
        bad = [v for v in value if v not in choices]
        for v in bad:
            self.fail(key, f"{show(v)} is not one of {', '.join(choices)}"
                           f"{nearest(v, choices) if isinstance(v, str) else ''}")
        return default if bad else tuple(dict.fromkeys(value))

    def subtable(self, key: str) -> dict:
        value = self.get(key, {})
        if not isinstance(value, dict):
            self.fail(key, f"must be a table, not {kind(value)} ({show(value)[:60]})")
            return {}
        return value

    def path(self, key: str, what: str) -> Path | None:
        """A path to something that must already exist (relative to the current directory)."""
        value = self.string(key)
        if value is None:
            return None
        if not Path(value).exists():
            self.fail(key, f"{show(value)}: no such {what} (relative paths are relative to "
                           f"{Path.cwd()})")
            return None
        return Path(value)


def check_integer(c: Check, key: str, value, low=None, high=None, default=None):
    if isinstance(value, bool) or not isinstance(value, int):
        c.fail(key, f"{show(value)} is {kind(value)}, not an integer{_hint(value)}")
        return default
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f"at least {low}"
        c.fail(key, f"{value} is out of range ({bounds})")
        return default
    return value


def _build(cls, table, where: str):
    """One spec from one table, or SpecError listing every problem in it."""
    problems: list[str] = []
    spec = cls.parse(Check(where, table, problems))
    if problems:
        raise SpecError("; ".join(problems))
    return spec


def given(**values) -> dict:
    """The CLI's arguments as a table: those left out (None) take the spec's defaults."""
    return {k: v for k, v in values.items() if v is not None}


# -- the stages --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampleArchiveSpec:
    """Build the offline sample archive in the workdir and serve it on 127.0.0.1."""

    items: int = DEFAULT_ITEMS
    seed: int = DEFAULT_SEED
    port: int = DEFAULT_PORT  # the same each run: item URLs (and attributions) stay the same

    KEYS = ("items", "seed", "port")

    @classmethod
    def parse(cls, c: Check) -> SampleArchiveSpec:
        c.keys(cls.KEYS)
        return cls(items=c.integer("items", cls.items, 1, 100_000),
                   seed=c.integer("seed", cls.seed, 0),
                   port=c.integer("port", cls.port, 0, 65535))

    @classmethod
    def from_table(cls, table: dict, where: str = "[sample_archive]") -> SampleArchiveSpec:
        return _build(cls, table, where)


@dataclass(frozen=True)
class CrawlSpec:
    """Discover, license-check and download one source."""

    source: str
    base_url: str | None = None  # default: the sample archive when served, else archive.org
    query: str | None = None  # default: the spider's (People's Speech's query)
    max_items: int | None = None
    settings: dict = field(default_factory=dict)  # Scrapy and crawler/settings.py settings

    KEYS = ("source", "base_url", "query", "max_items", "settings")

    @classmethod
    def parse(cls, c: Check) -> CrawlSpec:
        from crawler.hosts import RefusedURL, connect_target
        from crawler.run import spider_names

        c.keys(cls.KEYS)
        source = c.string("source", required=True)
        if source is not None and source not in spider_names():
            c.fail("source", f"{show(source)} is not one of {', '.join(spider_names())} (the "
                             f"spiders in crawler/spiders/){nearest(source, spider_names())}")
        base_url = c.string("base_url")
        if base_url is not None:
            try:
                connect_target(base_url)
            except RefusedURL as exc:
                c.fail("base_url", f"{show(base_url)} is refused: {exc}")
        return cls(source=source or "", base_url=base_url, query=c.string("query"),
                   max_items=c.integer("max_items", None, 1),
                   settings=check_settings(c, c.subtable("settings")))

    @classmethod
    def from_table(cls, table: dict, where: str = "[[crawl]]") -> CrawlSpec:
        return _build(cls, table, where)


def check_settings(c: Check, settings: dict) -> dict:
    """Crawler settings against the names Scrapy and crawler/settings.py define, each value of
    its default's type (any number where the default is a number)."""
    from crawler.run import setting_defaults

    known = setting_defaults()
    for name, value in settings.items():
        key = f"settings.{name}"
        if name not in known:
            c.fail(key, f"unknown setting{nearest(name, known)}; the names are Scrapy's "
                        "(docs.scrapy.org/en/latest/topics/settings.html) and "
                        "crawler/settings.py's")
            continue
        default = known[name]
        if default is None:
            continue
        if isinstance(default, bool):
            ok, want = isinstance(value, bool), "true or false"
        elif isinstance(default, int | float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            want = "a number"
        elif isinstance(default, str):
            ok, want = isinstance(value, str), "a string"
        elif isinstance(default, list | tuple):
            ok, want = isinstance(value, list), "a list"
        elif isinstance(default, dict):
            ok, want = isinstance(value, dict), "a table"
        else:
            ok, want = True, ""
        if not ok:
            c.fail(key, f"{show(value)} is {kind(value)}, not {want}{_hint(value)} (default: "
                        f"{show(default)})")
        elif why := setting_range_problem(name, value, default):
            c.fail(key, why)
    return dict(settings)


# Counts and sizes where 0 would stop the crawl from ever fetching anything.
AT_LEAST_ONE = ("SPEECHCRAWL_DOWNLOADS_PER_HOST", "SPEECHCRAWL_DOWNLOADS_TOTAL",
                "SPEECHCRAWL_SCRAPE_PAGE", "SPEECHCRAWL_ADVANCEDSEARCH_ROWS",
                "SPEECHCRAWL_DISCOVERY_TRIES", "SPEECHCRAWL_MAX_FILE_BYTES",
                "SPEECHCRAWL_METADATA_MAX_BYTES", "REACTOR_THREADPOOL_MAXSIZE",
                "DOWNLOAD_TIMEOUT")
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
# Numbers that may be fractional although Scrapy's default is a whole number (seconds, shares).
FRACTIONAL = ("DELAY", "TIMEOUT", "_S", "FRACTION", "CONCURRENCY", "BACKOFF", "INTERVAL")


def setting_range_problem(name: str, value, default) -> str | None:
    """Why a crawler setting's value of the right type still cannot work, or None: a count
    below 1 (no request would ever be made), a negative delay, an endless timeout, a share
    outside 0..1, a log level logging does not know."""
    if name == "LOG_LEVEL":
        return None if value in LOG_LEVELS else \
            f"{show(value)} is not one of {', '.join(LOG_LEVELS)}{nearest(value, LOG_LEVELS)}"
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or isinstance(default, bool):
        return None
    if not math.isfinite(value):
        return f"{value} is not a finite number"
    if isinstance(default, int) and isinstance(value, float) \
            and not any(part in name for part in FRACTIONAL):
        return f"{value} is a float, not an integer (default: {default})"
    if "FRACTION" in name and not 0 <= value <= 1:
        return f"{value} is not a fraction between 0 and 1"
    if value < 1 and (name in AT_LEAST_ONE or name.startswith("CONCURRENT_")):
        return f"{value} is out of range (at least 1)"
    if value < 0:
        return f"{value} is negative (it must be at least 0)"
    return None


def parse_setting(name: str, text: str):
    """A ``--set NAME=VALUE`` value, read as Scrapy's own ``-s`` reads it for the setting's
    default type (a list from ``a,b`` or JSON, a boolean from 1/0/true/false, a number, a
    JSON table); what does not read so stays text, for the check to name."""
    from crawler.run import setting_defaults

    default = setting_defaults().get(name)
    text = text.strip()
    if isinstance(default, bool):
        return {"1": True, "true": True, "0": False, "false": False}.get(text.lower(), text)
    if isinstance(default, list | tuple) and not text.startswith("["):
        return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(default, int | float | list | tuple | dict):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


@dataclass(frozen=True)
class AlignSpec:
    """Cut accepted recordings into verified clips with an acoustic model."""

    model: str = DEFAULT_MODEL  # a registry name (align.registry.list_models) or a path
    device: str = "cpu"
    workers: int = 1  # recordings aligned in parallel, each worker loading the model once
    filters: dict = field(default_factory=dict)  # overrides of align.filters.FilterConfig

    KEYS = ("model", "device", "workers", "filters")

    @classmethod
    def parse(cls, c: Check) -> AlignSpec:
        c.keys(cls.KEYS)
        model = c.string("model", cls.model)
        known = _model_names()
        if model not in known and not Path(model).exists():
            c.fail("model", f"{show(model)} is neither a known model ({', '.join(known)}) nor "
                            f"an existing path{nearest(model, known)}")
        filters = c.subtable("filters")
        where = f"{c.where[:-1]}.filters]" if c.where.endswith("]") else \
            f"{c.where} filters".strip()
        check_filters(Check(where, filters, c.problems), filters)
        device = c.get("device", cls.device)
        if isinstance(device, str) and device.strip().lower() == "gpu":
            c.fail("device", f'{show(device)} is not one of {", ".join(DEVICES)} (for a GPU, '
                             'write "cuda")')
            device = cls.device
        else:
            device = c.string("device", cls.device, DEVICES)
        return cls(model=model, device=device,
                   workers=c.integer("workers", cls.workers, 1, MAX_WORKERS),
                   filters=dict(filters))

    @classmethod
    def from_table(cls, table: dict, where: str = "[align]") -> AlignSpec:
        return _build(cls, table, where)

    def environment_problems(self) -> list[str]:
        """Weights missing from the cache, or a GPU asked for where torch sees none."""
        import torch

        from align.models import missing_weights

        problems = []
        if why := missing_weights(self.model):
            problems.append(f"[align] model: {why}")
        if self.device == "cuda" and not torch.cuda.is_available():
            problems.append('[align] device: "cuda", but torch sees no GPU here (use "cpu")')
        return problems


def _model_names() -> list[str]:
    from align.registry import list_models  # not align.models: that imports torch

    return list_models()


def check_filters(c: Check, filters: dict) -> None:
    """Filter overrides against ``FilterConfig``'s fields and their types."""
    from align.filters import FilterConfig

    kinds = {f.name: str(f.type) for f in fields(FilterConfig)}
    start = len(c.problems)
    for name, value in filters.items():
        if name not in kinds:
            c.fail(name, f"unknown filter setting{nearest(name, kinds)}; known: "
                         f"{', '.join(kinds)}")
        elif kinds[name] == "int":
            check_integer(c, name, value)
        elif kinds[name] == "float" and (isinstance(value, bool)
                                         or not isinstance(value, int | float)):
            c.fail(name, f"{show(value)} is {kind(value)}, not a number{_hint(value)}")
        elif kinds[name] == "str" and not isinstance(value, str):
            c.fail(name, f"{show(value)} is {kind(value)}, not a string")
    if len(c.problems) == start:  # every value of its type: now the ranges, and min against max
        for name, why in FilterConfig(**filters).problems():
            c.fail(name, why)


@dataclass(frozen=True)
class ReleaseSpec:
    """Build a reproducible release of the workdir's clips."""

    version: str
    previous: Path | None = None  # the previous release: its splits stay frozen
    config: ReleaseConfig | None = None  # None: ReleaseConfig's defaults
    workers: int = field(default_factory=default_release_workers)
    force: bool = False  # replace an existing release of that version whose content differs

    KEYS = ("version", "previous", "config", "workers", "force")

    @classmethod
    def parse(cls, c: Check) -> ReleaseSpec:
        from manifests.release.build import VERSION
        from manifests.release.config import ReleaseConfig

        c.keys(cls.KEYS)
        version = c.string("version", required=True)
        if version is not None and not VERSION.match(version):
            c.fail("version", f"{show(version)} must match {VERSION.pattern}")
        raw, config = c.get("config", None), None
        try:
            if isinstance(raw, dict):
                config = ReleaseConfig.from_dict(raw)
            elif raw is not None and (path := c.path("config", "TOML file")) is not None:
                config = ReleaseConfig.from_toml(path)
        except (ValueError, TypeError) as exc:
            c.fail("config", str(exc).removeprefix("release config: "))
        workers = c.integer("workers", None, 1, MAX_WORKERS)
        previous = c.string("previous")
        return cls(version=version or "", config=config, force=c.boolean("force", False),
                   previous=Path(previous).expanduser() if previous else None,
                   **({"workers": workers} if workers is not None else {}))

    @classmethod
    def from_table(cls, table: dict, where: str = "[release]") -> ReleaseSpec:
        spec = _build(cls, table, where)
        if why := spec.previous_problem(None):
            raise SpecError(f"{where} previous: {why}".strip())
        return spec

    def previous_problem(self, output: Path | None) -> str | None:
        """Why ``previous`` is not a release to freeze splits against, or None: it must be an
        existing release directory (with its release.json) now, not after hours of work, and
        not ``output``, the release this job builds (the build refuses that too)."""
        if self.previous is None:
            return None
        prev = self.previous
        if output is not None and prev.resolve() == Path(output).resolve():
            return f"{show(str(prev))} is the release this job builds, not an earlier one"
        if not prev.is_dir():
            return (f"{show(str(prev))}: no such release directory (relative paths are "
                    f"relative to {Path.cwd()})")
        if not (prev / "release.json").is_file():
            return f"{show(str(prev))} is not a release directory (it has no release.json)"
        return None


@dataclass(frozen=True)
class ExportSpec:
    """Export for other toolkits: the job's release (``configs`` of it, with their splits) or,
    in a job without a release, the workdir's clips of ``tiers`` for a quick look."""

    formats: tuple[str, ...] = ("hf", "nemo", "lhotse")
    configs: tuple[str, ...] | None = None  # release configs (default: clean)
    tiers: tuple[str, ...] | None = None  # a workdir export's tiers (default: clean)
    out: Path | None = None  # default: WORKDIR/exports/FORMAT
    include_asr_captions: bool = False  # a workdir export only
    link: bool = False  # a workdir export only: hard-link the clip files instead of copying

    KEYS = ("formats", "configs", "tiers", "out", "include_asr_captions", "link")

    @classmethod
    def parse(cls, c: Check) -> ExportSpec:
        from manifests.exports import FORMATS
        from manifests.exports.common import TIERS
        from manifests.release.config import NAME

        c.keys(cls.KEYS)
        configs = c.get("configs", None)
        if isinstance(configs, list):
            if not configs:
                c.fail("configs", "[] is empty: name at least one release config")
            for name in configs:
                if not isinstance(name, str) or not NAME.match(name):
                    c.fail("configs", f"{show(name)} is not a release config name "
                                      f"({NAME.pattern})")
        elif configs is not None:
            c.fail("configs", f"{show(configs)} is {kind(configs)}, not a list of release "
                              "config names")
        tiers = c.strings("tiers", None, (*TIERS, "all"))
        out = c.string("out")
        return cls(formats=c.strings("formats", cls.formats, tuple(FORMATS)),
                   configs=tuple(dict.fromkeys(configs)) if configs else None,
                   tiers=tiers, out=Path(out).expanduser() if out else None,
                   include_asr_captions=c.boolean("include_asr_captions", False),
                   link=c.boolean("link", False))

    @classmethod
    def from_table(cls, table: dict, where: str = "[export]") -> ExportSpec:
        return _build(cls, table, where)

    def out_problems(self, workdir: Path) -> list[str]:
        """``out`` refused now rather than after the release is built: each ``out/FORMAT``
        as ``check_out`` judges an export's ``--out``, and ``out`` itself never ``/``, the home
        directory or inside the workdir's own data (the formats' directories land there)."""
        from manifests.outdir import WORKDIR_DATA, OutputRefused, check_out

        if self.out is None:
            return []
        real, w = self.out.resolve(), Path(workdir).resolve()
        if real == Path(real.anchor) or real == Path.home().resolve():
            return [f"[export] out: {show(str(self.out))} is the root or the home directory; "
                    "choose a directory of its own (each format gets a directory in it)"]
        if any(real.is_relative_to(w / sub) for sub in WORKDIR_DATA):
            return [f"[export] out: {show(str(self.out))} is inside the workdir's own data "
                    f"({', '.join(WORKDIR_DATA)}); choose another directory"]
        problems = []
        for fmt in self.formats:
            try:
                check_out(self.out / fmt, "export", workdir)
            except OutputRefused as exc:
                problems.append(f"[export] out: {exc}")
        return problems

    def release_problems(self, release: ReleaseSpec | None) -> list[str]:
        """With a release in the job, the export is of it: ``configs`` must be among its
        configs, and workdir-only keys would be silently ignored, so they are errors."""
        from manifests.release.config import ReleaseConfig

        if release is None:
            return ([f"[export] configs: {show(list(self.configs))} needs a [release] in the "
                     "job (without one, the export is of the workdir's tiers)"]
                    if self.configs is not None else [])
        problems = [f"[export] {key}: is for an export of a workdir; this job exports its "
                    "release: choose its configs instead"
                    for key, value in (("tiers", self.tiers),
                                       ("include_asr_captions", self.include_asr_captions),
                                       ("link", self.link))
                    if value]
        known = list((release.config or ReleaseConfig()).subsets)
        problems += [f"[export] configs: {show(name)} is not one of the release's configs "
                     f"({', '.join(known)}){nearest(name, known)}"
                     for name in self.configs or () if name not in known]
        return problems


@dataclass(frozen=True)
class AuditSpec:
    """Write the license audit report."""

    out: Path | None = None  # default: WORKDIR/reports/audit-<release version or date>

    KEYS = ("out",)

    @classmethod
    def parse(cls, c: Check) -> AuditSpec:
        c.keys(cls.KEYS)
        out = c.string("out")
        return cls(out=Path(out).expanduser() if out else None)

    @classmethod
    def from_table(cls, table: dict, where: str = "[audit]") -> AuditSpec:
        return _build(cls, table, where)

    def report_dir(self, workdir: Path, audit: dict) -> Path:
        """``out``, or the workdir's reports named after the release audited, else the day."""
        if self.out:
            return self.out
        release = audit.get("release")
        tag = release["version"] if release else \
            datetime.date.fromisoformat(audit["generated_at"][:10]).isoformat()
        return Path(workdir) / "reports" / f"audit-{tag}"


# -- the job -----------------------------------------------------------------------------------
def duplicate_crawls(crawl: list[CrawlSpec]) -> list[str]:
    """Two [[crawl]] tables asking for the same thing: a copy-paste slip, never a plan."""
    seen: dict[tuple, int] = {}
    problems = []
    for i, c in enumerate(crawl, 1):
        key = (c.source, c.base_url, c.query)
        if key in seen:
            problems.append(f"[[crawl]] {i}: the same source, base_url and query as [[crawl]] "
                            f"{seen[key]} ({show(c.source)}); give each source once")
        seen.setdefault(key, i)
    return problems


def path_problems(workdir: Path, crawl: list, stages: dict) -> list[str]:
    """Every path the job names, judged before the first stage: a workdir that must exist
    already (no stage of this job creates it), outputs ``check_out`` would refuse, and a
    ``previous`` release that is not there."""
    from manifests.outdir import OutputRefused, check_out
    from manifests.paths import NotAWorkdir, existing_workdir

    problems = []
    if "sample_archive" not in stages and not crawl:
        try:
            existing_workdir(workdir)
        except NotAWorkdir as exc:
            problems.append(f"workdir: {exc}")
    if (export := stages.get("export")) is not None:
        problems += export.out_problems(workdir)
    if (audit := stages.get("audit")) is not None and audit.out is not None:
        try:
            check_out(audit.out, "audit", workdir)
        except OutputRefused as exc:
            problems.append(f"[audit] out: {exc}")
    release = stages.get("release")
    if release is not None and (why := release.previous_problem(
            workdir / "releases" / release.version)):
        problems.append(f"[release] previous: {why}")
    return problems


STAGES = {"sample_archive": SampleArchiveSpec, "align": AlignSpec, "release": ReleaseSpec,
          "export": ExportSpec, "audit": AuditSpec}
TABLES = ("workdir", "sample_archive", "crawl", *list(STAGES)[1:])


@dataclass
class JobSpec:
    """Every stage of a batch run; a stage present runs, in the order of ``TABLES``."""

    workdir: Path
    sample_archive: SampleArchiveSpec | None = None
    crawl: list[CrawlSpec] = field(default_factory=list)
    align: AlignSpec | None = None
    release: ReleaseSpec | None = None
    export: ExportSpec | None = None
    audit: AuditSpec | None = None

    def __post_init__(self) -> None:
        """Tables given as plain dicts (as ``speechcrawl demo`` writes them) are checked."""
        self.workdir = Path(self.workdir).expanduser()
        for name, cls in STAGES.items():
            if isinstance(getattr(self, name), dict):
                setattr(self, name, cls.from_table(getattr(self, name)))
        self.crawl = [CrawlSpec.from_table(c) if isinstance(c, dict) else c
                      for c in self.crawl]
        if self.export is not None and (problems := self.export.release_problems(self.release)):
            raise SpecError("; ".join(problems))

    @classmethod
    def from_dict(cls, data: dict, where: str = "job") -> JobSpec:
        problems: list[str] = []
        for name in data:
            if name not in TABLES:
                problems.append(f"[{name}]: unknown table{nearest(name, TABLES)}; known: "
                                f"{', '.join(TABLES)}")
        workdir = data.get("workdir")
        if workdir is None:
            problems.append("workdir: missing (it is required)")
        elif not isinstance(workdir, str) or not workdir.strip():
            problems.append(f"workdir: {show(workdir)} is {kind(workdir)}, not a path")
            workdir = None
        else:
            workdir = Path(workdir).expanduser()
        stages = {}
        for name, spec in STAGES.items():
            if name in data:
                stages[name] = spec.parse(Check(f"[{name}]", data[name], problems))
        crawls = data.get("crawl", [])
        crawls = [crawls] if isinstance(crawls, dict) else crawls
        if not isinstance(crawls, list):
            problems.append(f"[[crawl]]: must be a table or tables, not {kind(crawls)}")
            crawls = []
        many = len(crawls) > 1
        crawl = [CrawlSpec.parse(Check(f"[[crawl]] {i}" if many else "[[crawl]]", c, problems))
                 for i, c in enumerate(crawls, 1)]
        if "export" in stages:
            problems += stages["export"].release_problems(stages.get("release"))
        problems += duplicate_crawls(crawl)
        if workdir is not None:
            problems += path_problems(workdir, crawl, stages)
        if problems:
            raise SpecError(f"{where}: " + "; ".join(problems))
        return cls(workdir, crawl=crawl, **stages)

    def environment_problems(self) -> list[str]:
        """What this machine lacks for the job (weights, a GPU, a contact for a real site):
        checked before the first stage, so a job does not fail after its crawl."""
        from crawler.run import crawl_settings, start_refusal
        from crawler.settings import ARCHIVE_ORG_BASE_URL

        problems = []
        for c in self.crawl:
            if c.base_url is None and self.sample_archive is not None:
                continue  # the sample archive on loopback
            base_url = c.base_url or ARCHIVE_ORG_BASE_URL
            if why := start_refusal(crawl_settings(self.workdir, base_url, c.settings),
                                    base_url):
                problems.append(f"[[crawl]] {c.source}: {why}")
        if self.align is not None:
            problems += self.align.environment_problems()
        return problems
