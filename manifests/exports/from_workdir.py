"""Choosing clips straight from a workdir's clip manifests: a quick look, not a release (no
splits, no deduplication, no items-manifest checks), so its record says so.

Share-alike clips go to their own part, and a clip whose SPDX id the license gate would not
accept (NC, ND, unknown, misspelt; or a ``license_family`` column that disagrees with the id)
is never exported, whatever its row claims.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from manifests.exports.common import WORKDIR_SPLIT, Clip, ExportError, Part, num_samples
from manifests.licenses import acceptable_spdx

# The workdir's parts: share-alike material apart from everything else, as in a release.
PARTS = (("permissive", ("public-domain", "by")), ("share_alike", ("by-sa",)))
NOTE = ("exported from a workdir, not from a release: no splits (every clip is under "
        f"'{WORKDIR_SPLIT}'), duplicates not dropped; for training data export a release "
        "(speechcrawl export FORMAT --release DIR)")


def select(workdir: Path, tiers: tuple[str, ...],
           include_asr_captions: bool) -> tuple[list[Part], dict[str, int]]:
    """The clips of ``tiers``, in clip_id order, split into PARTS; with the number left out
    per reason. Clips cut from machine captions stay out unless asked for: their labels are a
    model's guess, not a transcript."""
    files = sorted(p for p in (workdir / "manifests" / "clips").glob("*.parquet")
                   if not p.name.startswith("."))
    if not files:
        raise ExportError(f"no clip manifests in {workdir / 'manifests' / 'clips'} "
                          "(run speechcrawl align first)")
    left_out = {"asr_caption": 0, "license_not_accepted": 0}
    total = 0
    chosen: dict[str, list[dict]] = {name: [] for name, _ in PARTS}
    for f in files:
        for row in pq.read_table(f).to_pylist():
            total += 1
            if row["tier"] not in tiers or not row["clip_path"]:
                continue
            if row["asr_caption"] and not include_asr_captions:
                left_out["asr_caption"] += 1
                continue
            family = acceptable_spdx(row["license_spdx"])
            if family is None or family != row["license_family"]:
                left_out["license_not_accepted"] += 1
                continue
            chosen[next(n for n, fams in PARTS if family in fams)].append(row)
    if not any(chosen.values()):
        wanted = " or ".join(tiers)
        if left_out["asr_caption"]:
            why = (f"its {left_out['asr_caption']} {wanted} clips are cut from machine "
                   "captions (--include-asr-captions exports them)")
        elif left_out["license_not_accepted"]:
            why = (f"its {left_out['license_not_accepted']} {wanted} clips have licenses the "
                   "gate does not accept")
        else:
            why = f"none of its {total} clips is in tier {wanted}"
        raise ExportError(f"nothing to export from {workdir}: {why}")
    parts = []
    for name, families in PARTS:
        rows = sorted(chosen[name], key=lambda r: r["clip_id"])
        parts.append(Part(name, name, families, [_clip(workdir, r) for r in rows]))
    return parts, left_out


def _clip(workdir: Path, row: dict) -> Clip:
    path = (workdir / row["clip_path"]).absolute()
    if not path.resolve().is_relative_to(workdir.resolve() / "clips"):
        raise ExportError(f"clip {row['clip_id']}: its clip_path {row['clip_path']!r} is not "
                          "in the workdir's clips/")
    if not path.is_file():
        raise ExportError(f"clip {row['clip_id']} cannot be read at {path}; "
                          "run speechcrawl align again")
    return Clip(row, path, num_samples(path, row["clip_id"]))
