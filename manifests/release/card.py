"""The human-facing files of a release: the data card (``README.md``) and the attribution list.

The card has the HuggingFace YAML header that makes each config load alone (every config's
``data_files`` name only its own directory: The People's Speech's ``clean`` once picked up every
subset's shards) and a datasheet body a reviewer can read without opening ``release.json``.
Nothing here reads a clock or a path outside the release, so the bytes repeat.
"""

from __future__ import annotations

import csv
import io
import json
import re

from manifests.release.config import ReleaseConfig, SubsetSpec

PUBLIC_DOMAIN = {
    "CC0-1.0": "public domain (CC0 1.0 dedication)",
    "CC-PDM-1.0": "public domain (marked with the Public Domain Mark 1.0)",
    "LicenseRef-US-Government-Work": "public domain in the U.S.: a work of the U.S. federal "
                                     "government (17 U.S.C. § 105)",
}
CONFIG_WORDS = {"clean": "clips whose text matches the audio closely",
                "other": "clips that passed the filters with a doubt (reasons kept per clip)"}
FAMILY_WORDS = {"public-domain": "public domain", "by": "CC BY", "by-sa": "CC BY-SA"}
# The ids the Hugging Face Hub accepts in a card's ``license`` field: the "Licenses" table of
# its documentation (huggingface/hub-docs, docs/hub/repositories-licenses.md). Any other value
# (an SPDX ``LicenseRef-`` id, a ported CC license, the Public Domain Mark) is not recognised:
# such licenses are written ``other`` with ``license_name`` and ``license_link``.
HUB_LICENSES = frozenset({
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m",
    "bigscience-bloom-rail-1.0", "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd",
    "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0",
    "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0",
    "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0",
    "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0",
    "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0",
    "etalab-2.0", "eupl-1.1", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1",
    "lgpl-3.0", "isc", "lppl-1.3c", "ms-pl", "mpl-2.0", "odc-by", "odbl", "openrail++", "osl-3.0",
    "postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr",
    "deepfloyd-if-license", "llama2", "gemma", "unknown", "other"
})
# What a row's columns mean, for the card. The card lists the shard's own columns
# (``row_columns``), so a column added to the shards is listed even before it has words here.
COLUMN_WORDS = {
    "audio": "16 kHz mono FLAC, as cut: not re-encoded",
    "text": "normalised: the training label",
    "text_raw": "the transcript's words as written, before normalisation",
    "audio_file": "the recording's file inside its item",
    "start_s": "where the clip starts in that recording, in seconds, padding included",
    "end_s": "where it ends there",
    "score": "alignment confidence",
    "cer": "character error rate of what the aligning model heard in the clip against `text`",
    "language": "the recording's language",
    "words": "word timings, in seconds of the recording",
    "audio_hash": "MD5 of the decoded samples",
}
MAX_LICENSE_NAME = 96  # several unlisted licenses are named together up to this length


def model_entry(model_id: str, record: dict | None = None) -> dict:
    """A model as the card states it, from the record the align stage wrote into the clip
    manifests (weights sha256 and license). A local path keeps its file name only, so no
    absolute path of the machine that aligned leaks into the release."""
    name, _, checksum = model_id.partition("@")
    local = "/" in name or "\\" in name
    if local:
        name = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    record = record or {}
    license_ = record.get("weights_license") or "unknown"
    note = record.get("note") or ("a local checkpoint: state its license here by hand"
                                  if local and license_ == "unknown" else "")
    return {"model_id": f"{name}@{checksum}" if checksum else name, "name": name,
            "checksum": record.get("sha256") or checksum or None, "license": license_,
            "note": note}


def _yaml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _size_category(n: int) -> str:
    edges = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
             (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")]
    return next((c for edge, c in edges if n < edge), "10M<n<100M")


def data_files(meta: dict) -> dict[str, dict[str, str]]:
    """Config → split → the ``data_files`` pattern that matches that config's shards only."""
    return {name: {split: f"data/{name}/{split}-*.parquet" for split in c["splits"]}
            for name, c in meta["configs"].items() if c["rows"]}


def hub_license(spdx: str) -> str | None:
    """The Hub's id for an SPDX id (``CC-BY-4.0`` → ``cc-by-4.0``), None where the Hub's list
    has none (``CC-BY-3.0-US``, ``LicenseRef-…``, ``CC-PDM-1.0``, ``CC-BY-SA-2.5``)."""
    return spdx.lower() if spdx.lower() in HUB_LICENSES - {"other", "unknown", "cc"} else None


def license_fields(spdx_ids: list[str], items: list[dict]) -> dict[str, list[str] | str]:
    """The card's ``license`` (a list: the Hub accepts one), plus ``license_name`` and
    ``license_link`` when some ids are not on the Hub's list: one such license is named by
    its id and linked to its deed (the URL its items record, when they agree on one); several
    are named together and linked to ``ATTRIBUTION.md``, which gives each item's."""
    ids = sorted(set(spdx_ids))
    listed = sorted({h for s in ids if (h := hub_license(s))})
    unlisted = [s for s in ids if not hub_license(s)]
    if not unlisted:
        return {"license": listed}
    slugs = [re.sub(r"[^a-z0-9.]+", "-", s.lower().removeprefix("licenseref-")).strip("-")
             for s in unlisted]
    name = "-and-".join(slugs)
    if len(name) > MAX_LICENSE_NAME:
        name = f"{len(unlisted)}-licenses-see-attribution"
    urls = {it.get("license_url") for it in items if it.get("license") in unlisted}
    link = urls.pop() if len(unlisted) == 1 and len(urls) == 1 and None not in urls \
        else "ATTRIBUTION.md"
    return {"license": [*listed, "other"], "license_name": name, "license_link": link}


def yaml_header(meta: dict, items: list[dict] | None = None) -> str:
    spdx = [lic for c in meta["configs"].values() for s in c["splits"].values()
            for lic in s["licenses"]]
    lic = license_fields(spdx, items or [])
    files = data_files(meta)
    lines = ["---", f"pretty_name: {_yaml_str(meta['name'] + ' ' + meta['version'])}",
             "language:", *[f"- {lang}" for lang in meta["languages"] or ["en"]],
             "license:", *[f"- {x}" for x in lic["license"]],
             *[f"{k}: {_yaml_str(lic[k])}" for k in ("license_name", "license_link") if k in lic],
             "task_categories:", "- automatic-speech-recognition",
             "size_categories:", f"- {_size_category(meta['totals']['clips'])}",
             "configs:"]
    for i, (name, splits) in enumerate(files.items()):
        lines.append(f"- config_name: {name}")
        if i == 0:
            lines.append("  default: true")
        lines.append("  data_files:")
        for split, pattern in splits.items():
            lines += [f"  - split: {split}", f"    path: {pattern}"]
    lines.append("---")
    return "\n".join(lines) + "\n"


def sample_rule(spec: SubsetSpec) -> str:
    """How a sample subset is drawn (``plan.sample``), in words for the card."""
    caps = ([f"{spec.fraction:.0%} of the hours"] if spec.fraction is not None else []) + \
        ([f"{spec.max_hours:g} hours"] if spec.max_hours is not None else []) + \
        ([f"{spec.max_clips} clips"] if spec.max_clips is not None else [])
    return ("whole items (never single clips) in the order of a salted SHA-256 of their ids, "
            f"as many as stay within {' and '.join(caps)} (at least one item), so an item "
            "keeps its place from one release to the next unless items ranked before it grow "
            "or arrive")


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def _license_words(spdx: str, family: str | None) -> str:
    if spdx in PUBLIC_DOMAIN:
        return PUBLIC_DOMAIN[spdx]
    return FAMILY_WORDS.get(family or "", family or "unknown")


def row_columns() -> str:
    """The shards' columns, in their order, each with what it means where that needs saying."""
    # Imported here: build imports this module, and owns the shard layout (``shard_table``).
    from manifests.release.build import SHARD_COLUMNS

    return ", ".join(f"`{c}` ({COLUMN_WORDS[c]})" if c in COLUMN_WORDS else f"`{c}`"
                     for c in ["id", "audio", *SHARD_COLUMNS])


def readme(meta: dict, config: ReleaseConfig, items: list[dict], changes: dict,
           excluded_words: dict[str, str]) -> str:
    """The data card: HF YAML header, then the datasheet (what, how made, what it is not)."""
    splits = list(config.splits)
    t = meta["totals"]
    out = [yaml_header(meta, items), f"# {meta['name']} {meta['version']}", "",
           f"English speech with transcripts, cut from permissively licensed recordings on the "
           f"web and aligned with CTC segmentation: {t['clips']} clips, {t['hours']} hours from "
           f"{t['items']} source items. Built by speechcrawl {meta['code_version']} from its "
           "manifests alone; `release.json` has every number below, `SHA256SUMS` every file.",
           "", "## Configs", ""]
    rows = []
    for name, c in meta["configs"].items():
        spec = config.subsets[name]
        what = " + ".join(CONFIG_WORDS.get(tier, tier) for tier in spec.tiers)
        if spec.sample:
            what = f"a fixed sample of {what}: {sample_rule(spec)}"
        lic = ", ".join(FAMILY_WORDS[f] for f in spec.families)
        per = [f"{c['splits'][s]['rows']} / {c['splits'][s]['hours']} h" if s in c["splits"]
               else "—" for s in splits]
        rows.append([f"`{name}`", what, lic, *per])
    out += _table(["config", "what", "licenses", *[f"{s} (clips / hours)" for s in splits]], rows)
    empty = [n for n, c in meta["configs"].items() if not c["rows"]]
    if empty:
        out += ["", "Empty in this release, so absent from the header: "
                + ", ".join(f"`{n}`" for n in empty) + "."]
    files = data_files(meta)
    if files:
        name, pats = next(iter(files.items()))
        out += ["", "Each config loads alone; its data files are only its own directory:", "",
                "```python", "from datasets import load_dataset", "",
                f"ds = load_dataset(\"parquet\", data_files={json.dumps(pats)})", "```", "",
                "Rows: " + row_columns() + "."]
    out += ["", "## Licenses", "",
            "Every row carries its own license. Public-domain material keeps its own label — "
            "it is not relabelled CC BY. Share-alike (CC BY-SA) material is only in configs "
            "whose name ends in `_sa`, which must be distributed under CC BY-SA. CC BY and "
            "CC BY-SA material needs attribution: `ATTRIBUTION.md` / `ATTRIBUTION.csv` list "
            "title, author, source and license (TASL) for every item used. The header above "
            "names licenses by the Hugging Face Hub's identifiers; those the Hub does not list "
            "(ported CC licenses, the Public Domain Mark, U.S. government works) are `other` "
            "there, named in `license_name`.", ""]
    by_license: dict[str, list] = {}
    for it in items:
        e = by_license.setdefault(it["license"], [it["license_family"], 0, 0, 0])
        e[1] += 1
        e[2] += it["clips"]
        e[3] += it["ms"]
    out += _table(["license", "what it is", "items", "clips", "hours"],
                  [[f"`{lic}`", _license_words(lic, e[0]), e[1], e[2], round(e[3] / 3.6e6, 4)]
                   for lic, e in sorted(by_license.items())])
    out += ["", "## Sources", ""]
    sources: dict[str, list] = {}
    for it in items:
        e = sources.setdefault(it["source"], [0, 0])
        e[0] += 1
        e[1] += it["ms"]
    out += _table(["source", "items", "hours"],
                  [[s, e[0], round(e[1] / 3.6e6, 4)] for s, e in sorted(sources.items())])
    out += ["", "## How it was made", "",
            "1. **Crawl.** Spiders found audio that comes with transcripts; a license gate kept "
            "only public domain (CC0, Public Domain Mark, U.S. government works), CC BY and "
            "CC BY-SA, recording the license as found and where; downloads were verified "
            "against their checksums, and a recording stored under two items is kept once.",
            "2. **Align.** Each recording was decoded to 16 kHz mono, its transcript cleaned "
            "and normalised, and each utterance placed in the audio with CTC segmentation on "
            "the acoustic model's emissions. Each clip got metrics (alignment confidence, CER "
            "against what the model heard, CER at its edges, speaking rate, language, silence, "
            "machine-caption flag) and a tier: `clean`, `other` or `rejected`.",
            "3. **Release.** This release was planned from the manifests alone (no "
            "re-alignment): clips were excluded for the reasons below, duplicates resolved, "
            "items assigned to splits, and rows written in a fixed order. The filter settings "
            "the align stage recorded are in `release.json` (`filter_config`).", "",
            "### Excluded", ""]
    out += _table(["reason", "clips"], [[excluded_words[k], v] for k, v in
                                        meta["excluded"].items() if v])
    d = meta["duplicates"]
    out += ["", f"Duplicates: {d['audio']} clips dropped for identical audio, {d['text']} for a "
            f"text identical to another item's (texts under {config.dedup_text_min_chars} "
            f"characters exempt); recordings the crawl found under two items and stored once: "
            f"{d['downloads']}. All listed in `dedup.json`.", "", "## Splits", "",
            "Items, never clips, are assigned to splits, by a salted SHA-256 of the item's "
            "creator (a proxy for its speaker: one creator's items stay together) or, where no "
            "creator names anyone, of the item id. Shares: "
            + ", ".join(f"{s} {share:.0%}" for s, share in config.shares()) + ". Splits are "
            "frozen: an item keeps the split it had in the previous release "
            "(`splits.json` holds every assignment ever made).", "", "## Model", ""]
    for m in meta["models"]:
        out.append(f"- `{m['model_id']}` — weights license **{m['license']}**"
                   + (f": {m['note']}." if m["note"] else "."))
    out += ["", "## Known limitations", "",
            "- Transcripts are normalised to the acoustic model's alphabet: casing, "
            "punctuation and digits are gone (numbers are spelled out).",
            "- Creators are a stand-in for speakers: one item may hold several voices, one "
            "voice may appear under several creators, so a speaker can straddle splits.",
            "- Alignments are automatic. `clean` clips matched what the model heard; `other` "
            "clips passed with a doubt (their reasons are not in the rows but in the "
            "manifests); some errors remain in both.",
            "- Languages are identified from the text, not the audio.",
            ]
    missing = meta["filter_config"]["clips_without_record"]
    if missing:
        out.append(f"- For {missing} candidate clips the clip manifests do not record the align "
                   "stage's filter settings; `release.json` has the tiers they produced.")
    if any(m["name"] == "demo" for m in meta["models"]):
        out.append("- Aligned with the `demo` model, which is trained on synthetic speech: "
                   "this release is a demonstration, not a corpus to train on.")
    if any(m["license"] not in ("MIT", "Apache-2.0") for m in meta["models"]):
        out.append("- A model with a restrictive or unknown weights license made the "
                   "alignments (see Model).")
    s = changes["summary"]
    out += ["", "## Changes", "",
            (f"Against {changes['previous']}: {s['items_added']} items added, "
             f"{s['items_removed']} removed, {s['items_changed']} changed; {s['clips_added']} "
             f"clips added, {s['clips_removed']} removed, {s['clips_changed']} changed. "
             "Details in `CHANGES.md` and `changes.json`.") if changes["previous"] else
            "The first release: every item is new (`CHANGES.md`).",
            "", "## Files", "",
            "`data/<config>/<split>-NNNNN-of-NNNNN.parquet` (shards of at most about "
            f"{config.max_shard_bytes // 1_000_000} MB), `release.json` (configuration, "
            "counts per config × split × license, models), `splits.json` (every item's split), "
            "`dedup.json`, `ATTRIBUTION.md` / `ATTRIBUTION.csv`, `CHANGES.md` / `changes.json`, "
            "`SHA256SUMS` (check with `sha256sum -c SHA256SUMS`)."]
    return "\n".join(out) + "\n"


def attribution_csv(items: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["source", "item_id", "title", "author", "source_url", "license", "license_url",
                "configs", "clips", "hours"])
    for it in items:
        w.writerow([it["source"], it["item_id"], it["title"] or "", it["creator"] or "",
                    it["url"] or "", it["license"], it["license_url"] or "",
                    " ".join(it["configs"]), it["clips"], it["hours"]])
    return buf.getvalue()


def attribution_md(meta: dict, items: list[dict]) -> str:
    out = [f"# Attribution — {meta['name']} {meta['version']}", "",
           "This release contains material from the works below: title, author, source and "
           "license (TASL) for each. Public-domain works are listed too, as a courtesy.", ""]
    for it in items:
        title = f"\u201c{it['title']}\u201d" if it["title"] else "Untitled"
        by = f" by {it['creator']}" if it["creator"] else " (author unknown)"
        lic = f"[{it['license']}]({it['license_url']})" if it["license_url"] else it["license"]
        if it["license"] in PUBLIC_DOMAIN:
            lic += f" — {PUBLIC_DOMAIN[it['license']]}"
        out.append(f"- {title}{by}, <{it['url']}>, {lic}. In {', '.join(it['configs'])}: "
                   f"{it['clips']} clips, {it['hours']} h.")
    return "\n".join(out) + "\n"


def changes_md(meta: dict, changes: dict, limit: int = 2000) -> str:
    """CHANGES.md: every item change, and clip changes line by line (the first ``limit`` of
    each kind; ``changes.json`` has them all)."""
    out = [f"# Changes — {meta['name']} {meta['version']}", ""]
    if not changes["previous"]:
        out += ["The first release (no previous release given): every item is new.", ""]
    else:
        out += [f"Against {changes['previous']}.", ""]
    out += _table(["config", "hours before", "hours now", "delta"],
                  [[f"`{c}`", h["previous"], h["current"], f"{h['delta']:+}"]
                   for c, h in changes["hours"].items()])
    for kind in ("added", "removed", "changed"):
        entries = changes["items"][kind]
        out += ["", f"## Items {kind} ({len(entries)})", ""]
        if not entries:
            out.append("None.")
        for e in entries:
            if kind == "changed":
                out.append(f"- `{e['item']}`: {'; '.join(e['what'])}")
            else:
                tail = f" — {e['why']}" if e.get("why") else ""
                out.append(f"- `{e['item']}` ({e['license']}, {e['clips']} clips, "
                           f"{e['hours']} h){tail}")
    if changes["clips"] is not None:
        for kind in ("added", "removed", "changed"):
            entries = changes["clips"][kind]
            out += ["", f"## Clips {kind} ({len(entries)})", ""]
            if not entries:
                out.append("None.")
            for e in entries[:limit]:
                line = f"- `{e['id']}` ({e['item']})"
                if kind == "changed":
                    line += ": " + ", ".join(
                        f"{f} {json.dumps(e['before'].get(f), ensure_ascii=False)} → "
                        f"{json.dumps(e['after'].get(f), ensure_ascii=False)}"
                        if f in e["before"] else f for f in e["what"])
                out.append(line)
            if len(entries) > limit:
                out.append(f"- … and {len(entries) - limit} more (changes.json)")
    return "\n".join(out) + "\n"
