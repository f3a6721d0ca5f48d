"""Exports of the kept clips for other toolkits: HuggingFace ``datasets`` Parquet, NeMo JSON
lines and Lhotse manifests.

An export is a view, not a release: no splits, no subsets, just the chosen tiers in clip_id
order, each row carrying its license and provenance so that whoever trains on it can still
attribute it. Every format is built in a temporary directory and swapped into place whole.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from manifests.exports.common import ExportError, Summary, hours, replacing, resolve_tiers, select

__all__ = ["FORMATS", "ExportError", "Summary", "export"]

# Imported when used: lhotse brings torch along, which the other formats need not pay for.
FORMATS = {"hf": "to_hf:write_hf", "nemo": "to_nemo:write_nemo",
           "lhotse": "to_lhotse:write_lhotse"}


def export(fmt: str, workdir: Path, out: Path, tiers: list[str] | tuple[str, ...] = ("clean",),
           include_asr_captions: bool = False, against_recordings: bool = False,
           **options) -> Summary:
    """Export the clips of ``tiers`` from ``workdir``'s clip manifests into ``out``;
    ``options`` go to the format's writer (``max_shard_bytes`` for hf)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
    if against_recordings and fmt != "nemo":
        raise ExportError("--against-recordings is for the nemo export only")
    wanted = resolve_tiers(tiers)
    clips = select(workdir, wanted, include_asr_captions)
    settings = {"format": fmt, "tiers": list(wanted),
                "include_asr_captions": include_asr_captions}
    if fmt == "nemo":
        settings["against_recordings"] = options["against_recordings"] = against_recordings
    module, name = FORMATS[fmt].split(":")
    write = getattr(import_module(f"manifests.exports.{module}"), name)
    with replacing(Path(out), settings, clips, workdir) as tmp:
        write(clips, tmp, workdir=workdir, **options)
    return Summary(fmt, Path(out).absolute(), len(clips), hours(clips))
