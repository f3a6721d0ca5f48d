"""Exports for other toolkits: HuggingFace ``datasets`` Parquet, NeMo JSON lines and Lhotse
manifests — of a release (exactly one or more of its configs, with their splits) or, for a
quick look, straight from a workdir.

An export is made of parts, each under one set of license families (a release config, or the
workdir's permissive and share-alike clips), each in its own directory: share-alike material
never shares a file with anything else. NeMo and Lhotse parts hold their audio as files under
``audio/<split>/`` and name them by relative paths, so an export keeps working after it (and
the workdir) is moved. Every export writes ``export.json`` with its counts, built in a
temporary directory and swapped into place whole.
"""

from __future__ import annotations

import hashlib
import shutil
from importlib import import_module
from pathlib import Path

from manifests.audit import is_sample, samples_of
from manifests.exports import from_release, from_workdir
from manifests.exports.common import (
    Clip,
    ExportError,
    Summary,
    counts,
    hours,
    place,
    replacing,
    resolve_tiers,
    write_record,
)

__all__ = ["FORMATS", "ExportError", "Summary", "export"]

# Imported when used: lhotse brings torch along, which the other formats need not pay for.
FORMATS = {"hf": "to_hf:write_hf", "nemo": "to_nemo:write_nemo",
           "lhotse": "to_lhotse:write_lhotse"}
STAGING = ".audio-staging"  # inside the build directory: a release's audio before HF embeds it


def export(fmt: str, out: Path, *, release: Path | None = None,
           configs: list[str] | tuple[str, ...] = ("clean",), workdir: Path | None = None,
           tiers: list[str] | tuple[str, ...] = ("clean",), include_asr_captions: bool = False,
           against_recordings: bool = False, link: bool = False, **options) -> Summary:
    """Export ``configs`` of ``release``, or the clips of ``tiers`` in ``workdir`` (not a
    release: said so in export.json), into ``out``. ``link`` hard-links a workdir's clip files
    instead of copying them; ``options`` go to the format's writer (``max_shard_bytes``)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
    if (release is None) == (workdir is None):
        raise ExportError("export from a release (--release DIR) or, for a quick look, from a "
                          "workdir (--workdir W without --release)")
    if against_recordings and (fmt != "nemo" or release is not None):
        raise ExportError("--against-recordings is for the nemo export of a workdir only (a "
                          "release holds clips, not recordings)")
    if link and release is not None:
        raise ExportError("--link is for exports of a workdir (a release's audio is inside its "
                          "shards: it is written out)")
    module, name = FORMATS[fmt].split(":")
    write = getattr(import_module(f"manifests.exports.{module}"), name)
    files_needed = fmt == "lhotse" or (fmt == "nemo" and not against_recordings)
    settings = {"format": fmt}
    if release is not None:
        release = Path(release)
        meta = from_release.read_meta(release)
        sums = from_release.checksums(release)
        parts = from_release.parts(release, meta, list(configs))
        settings["configs"] = [p.name for p in parts]
        record = {"from": "release", "release": _release_ref(release, meta),
                  "note": "exactly these configs of the release: its rows, splits and audio"}
        left_out = None
    else:
        workdir = Path(workdir)
        wanted = resolve_tiers(tiers)
        parts, left_out = from_workdir.select(workdir, wanted, include_asr_captions)
        settings.update(tiers=list(wanted), include_asr_captions=include_asr_captions,
                        against_recordings=against_recordings)
        record = {"from": "workdir", "release": None, "note": from_workdir.NOTE}
    audio = "embedded" if fmt == "hf" else "files" if files_needed else "recordings"
    with replacing(Path(out), workdir) as tmp:
        entries = {}
        for part in parts:
            if release is None and not part.clips:
                entries[part.name] = {"dir": None, "share_alike": part.share_alike,
                                      "license_families": list(part.families),
                                      **counts([], part.splits), "files": []}
                continue
            pdir = tmp / part.dir
            pdir.mkdir(parents=True, exist_ok=True)
            audio_root = pdir if files_needed else tmp / STAGING / part.name
            if release is not None:
                part.clips = from_release.read_part(release, meta, sums, part, audio_root)
            elif files_needed:
                for clip in part.clips:
                    place(clip.path, pdir / clip.audio_name, link)
            write(part, pdir, workdir=workdir, against_recordings=against_recordings, link=link,
                  **options)
            entries[part.name] = {"dir": part.dir or ".", "share_alike": part.share_alike,
                                  "license_families": list(part.families),
                                  **counts(part.clips, part.splits),
                                  "files": _manifest_files(pdir, tmp)}
        shutil.rmtree(tmp / STAGING, ignore_errors=True)
        if release is not None:
            _mark_samples(entries, parts, meta["configs"])
        # Each clip once, whichever parts hold it: a sample config (microset) repeats clips
        # of another, and totals that added them up would count those clips twice.
        distinct: dict[str, Clip] = {}
        for c in (c for p in parts for c in p.clips):
            distinct.setdefault(c.id, c)
        everything = list(distinct.values())
        write_record(tmp, {**settings, **record, "audio": audio,
                           "counted": "each clip once, whichever parts hold it",
                           "paths": "relative to each part's directory"
                                    if fmt != "hf" else None,
                           **counts(everything, tuple(dict.fromkeys(
                               s for p in parts for s in p.splits))),
                           "parts": entries,
                           **({"left_out": left_out} if left_out is not None else {})})
    return Summary(fmt, Path(out).absolute(), len(everything), hours(everything),
                   record["from"], entries)


def _mark_samples(entries: dict[str, dict], parts: list, configs: dict) -> None:
    """Say of each release config whether release.json makes it a sample and, by the audit's
    rule, which exported configs its clips come from (they count there, not again)."""
    of = samples_of({p.name: {c.id for c in p.clips} for p in parts}, configs)
    for p in parts:
        entries[p.name].update(sample=is_sample(configs.get(p.name)), sample_of=of.get(p.name))


def _manifest_files(pdir: Path, tmp: Path) -> list[str]:
    """The part's data and manifest files (not each audio file, not other parts')."""
    skip = [tmp / STAGING, pdir / "audio", pdir / "recordings"]
    return sorted(p.relative_to(pdir).as_posix() for p in pdir.rglob("*")
                  if p.is_file() and not any(p.is_relative_to(d) for d in skip))


def _release_ref(release: Path, meta: dict) -> dict:
    """Which release this is, by content rather than by where it lies: its name, version and
    the digest of its SHA256SUMS (which covers every file in it)."""
    return {"name": meta.get("name"), "version": meta.get("version"),
            "sha256sums_sha256": hashlib.sha256((release / "SHA256SUMS").read_bytes()
                                                ).hexdigest()}
