"""Write the sample archive to disk in the layout fixed by DESIGN.md.

``build`` is deterministic: the same seed and item count give a byte-identical tree, whatever the
number of worker processes. The tree is built under a temporary name and renamed into place, so an
interrupted build never leaves a half-written archive under the final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from crawler.sample_archive import texts, transcripts
from crawler.sample_archive.plan import (
    LICENSE_FORMS,
    TRANSCRIPT_FORMATS,
    ItemPlan,
    RecordingPlan,
    audio_name,
    plan_item,
)
from crawler.sample_archive.synth import ENCODINGS, Voice, compose, encode
from crawler.selection import parse_length

GENERATOR_VERSION = 1
DEFAULT_ITEMS = 40
DEFAULT_SEED = 1234
NOT_AUDIO = (b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n"
             b"<body><h1>Not Found</h1><p>The requested file could not be found.</p></body>"
             b"</html>\n")


class ArchiveExists(Exception):
    """The output directory holds something other than this exact archive."""


def _rng(seed: int, *key) -> random.Random:
    return random.Random(f"{seed}/" + "/".join(map(str, key)))


def _voice(rng: random.Random, language: str) -> Voice:
    if language == "en":
        return Voice.random_english(rng)
    return Voice(language + rng.choice(["", "+m3", "+f2"]), rng.randint(140, 175),
                 rng.randint(35, 65))


def _sentence_stream(rng: random.Random, language: str):
    """Endless sentences in ``language``, never the same one twice in a row."""
    last = None
    while True:
        if language == "en":
            s = texts.english_sentence(rng)
        else:
            s = texts.foreign_sentences(rng, language, 1)[0]
        if s != last:
            yield s
            last = s


def _file_entry(path: Path, *, fmt: str, source: str, mtime: int, **extra) -> dict:
    data = path.read_bytes()
    entry = {
        "name": path.name,
        "source": source,
        "format": fmt,
        "mtime": str(mtime),
        "size": str(len(data)),
        "md5": hashlib.md5(data).hexdigest(),
        "crc32": f"{zlib.crc32(data):08x}",
        "sha1": hashlib.sha1(data).hexdigest(),
    }
    entry.update({k: v for k, v in extra.items() if v is not None})
    return entry


def _write_transcript(rng: random.Random, path: Path, kind: str, sentences: list[dict],
                      speaker: str) -> None:
    base, _, style = kind.partition(":")
    if base == "srt":
        text = transcripts.write_srt(rng, sentences, style)
    elif base == "asr":
        text = transcripts.write_asr_srt(rng, sentences, texts.asr_style)
    elif base == "vtt":
        text = transcripts.write_vtt(rng, sentences, speaker)
    else:
        text = transcripts.write_txt(rng, sentences, speaker)
    path.write_text(text, encoding="utf-8")


def _build_recording(seed: int, item: ItemPlan, rec: RecordingPlan, item_dir: Path,
                     truth_dir: Path, mtime: int) -> list[dict]:
    key = rec.content_key or f"{item.identifier}/{rec.stem}"
    rng = _rng(seed, "audio", key)
    voice = _voice(rng, rec.language)
    recording = compose(rng, _sentence_stream(rng, rec.language), voice,
                        target_s=rec.minutes * 60, noise_dbfs=rec.noise_dbfs,
                        intro_s=rec.intro_s, outro_s=rec.outro_s)

    entries = []
    name = audio_name(rec)
    encode(recording, item_dir / name, rec.encoding, rec.rate, rec.channels)
    if rec.defect == "truncated":
        path = item_dir / name
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * 0.6) + 7])  # +7: never on a frame boundary
    length = f"{recording.duration:.2f}"
    if rec.length_style == "clock":  # "mm:ss", as archive.org states some lengths
        secs = round(recording.duration)
        length = f"{secs // 60:02d}:{secs % 60:02d}"
    fmt = ENCODINGS[rec.encoding][2]
    entry = _file_entry(item_dir / name, fmt=fmt, source="original", mtime=mtime, length=length)
    if rec.defect == "bad_md5":
        entry["md5"] = hashlib.md5(entry["md5"].encode()).hexdigest()
    entries.append(entry)
    audio_names = [name]
    for enc in rec.derivatives:
        dname = audio_name(rec, enc)
        encode(recording, item_dir / dname, enc, 44100 if enc != "ogg" else rec.rate, rec.channels)
        entries.append(_file_entry(item_dir / dname, fmt=ENCODINGS[enc][2], source="derivative",
                                   mtime=mtime + 60, length=length, original=name))
        audio_names.append(dname)

    # The transcript: of this speech, or (the planted mismatch) of other speech timed alike.
    written = recording.sentences
    if rec.defect == "mismatched_transcript":
        other = _rng(seed, "mismatch", key)
        written = [{**s, "text": texts.english_sentence(other)} for s in written]
    trng = _rng(seed, "transcript", key)
    speaker = item.metadata.get("creator", "Speaker").split()[-1]
    for tname, kind in rec.transcripts:
        _write_transcript(trng, item_dir / tname, kind, written, speaker)
        entries.append(_file_entry(item_dir / tname, fmt=TRANSCRIPT_FORMATS[kind.split(":")[0]],
                                   source="derivative" if kind == "asr" else "original",
                                   mtime=mtime + 120, original=name if kind == "asr" else None))

    unspoken = []
    if rec.intro_s:
        unspoken.append([0.0, round(rec.intro_s, 4)])
    if rec.outro_s:
        unspoken.append([round(recording.duration - rec.outro_s, 4),
                         round(recording.duration, 4)])
    for aname in audio_names:
        truth = {
            "audio": aname,
            "item_id": item.identifier,
            "language": rec.language,
            "voice": {"name": voice.name, "speed": voice.speed, "pitch": voice.pitch},
            "duration": round(recording.duration, 4),
            "encoding": rec.encoding if aname == name else "derivative",
            "noise_dbfs": None if rec.noise_dbfs is None else round(rec.noise_dbfs, 1),
            "transcripts": [{"name": t, "kind": k} for t, k in rec.transcripts],
            "transcript_matches": rec.defect != "mismatched_transcript",
            "defect": rec.defect,
            "unspoken": unspoken,
            "sentences": recording.sentences,
        }
        _write_json(truth_dir / f"{aname}.json", truth)
    return entries


def _build_extra(seed: int, item: ItemPlan, extra: dict, item_dir: Path,
                 mtime: int) -> list[dict]:
    path = item_dir / extra["name"]
    entries = []
    if extra.get("transcript"):
        rng = _rng(seed, "extra-transcript", item.identifier, extra["name"])
        tpath = item_dir / extra["transcript"]
        tpath.write_text(" ".join(texts.english_sentences(rng, 4)) + "\n", encoding="utf-8")
        entries.append(_file_entry(tpath, fmt="Text", source="original", mtime=mtime))
    if extra["kind"] == "metadata_text":  # archive.org's own file, in a transcript's clothes
        rng = _rng(seed, "extra", item.identifier, extra["name"])
        path.write_text(" ".join(texts.english_sentences(rng, 3)) + "\n", encoding="utf-8")
        return [_file_entry(path, fmt="Text", source="metadata", mtime=mtime)]
    if extra["kind"] == "empty":
        path.write_bytes(b"")
    elif extra["kind"] == "not_audio":
        path.write_bytes(NOT_AUDIO)
    else:
        rng = _rng(seed, "extra", item.identifier, extra["name"])
        voice = Voice.random_english(rng)
        encode(compose(rng, texts.english_sentences(rng, 3), voice), path, "vbr_mp3", 22050, 1)
    entries.append(_file_entry(path, fmt="VBR MP3", source="original", mtime=mtime,
                               private="true" if extra["kind"] == "private" else None))
    return entries


def _meta_xml(metadata: dict) -> str:
    lines = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "<metadata>"]
    for key, value in metadata.items():
        for v in value if isinstance(value, list) else [value]:
            lines.append(f"  <{key}>{escape(str(v))}</{key}>")
    return "\n".join(lines + ["</metadata>", ""])


def _files_xml(names: list[str]) -> str:
    lines = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "<files>"]
    lines += [f"  <file name={quoteattr(n)}/>" for n in sorted(names)]
    return "\n".join(lines + ["</files>", ""])


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def build_item(seed: int, index: int, root: str) -> dict:
    """Write one item (files, ``_meta.json``, truth); return its defects and license facts."""
    item = plan_item(seed, index)
    item_dir = Path(root) / "items" / item.identifier
    truth_dir = Path(root) / "truth" / item.identifier
    item_dir.mkdir(parents=True)
    truth_dir.mkdir(parents=True)
    mtime = 1_500_000_000 + index * 86_400
    files = []
    for rec in item.recordings:
        files += _build_recording(seed, item, rec, item_dir, truth_dir, mtime)
    for extra in item.extra_files:
        files += _build_extra(seed, item, extra, item_dir, mtime)
    # archive.org's own files, listed with source "metadata" as the real service lists them.
    meta_xml = item_dir / f"{item.identifier}_meta.xml"
    meta_xml.write_text(_meta_xml(item.metadata), encoding="utf-8")
    files.append(_file_entry(meta_xml, fmt="Metadata", source="metadata", mtime=mtime + 180))
    files_xml = item_dir / f"{item.identifier}_files.xml"
    files_xml.write_text(_files_xml([f["name"] for f in files] + [files_xml.name]),
                         encoding="utf-8")
    files.append(_file_entry(files_xml, fmt="Metadata", source="metadata", mtime=mtime + 180))
    files.sort(key=lambda f: f["name"])
    files += item.raw_files  # malformed on purpose: after the sort, which they would break
    defects = [dict(d) for d in item.defects]
    for d in defects:
        if d["expect"].get("unnamed"):  # named by its position, as the crawler records it
            pos = next(i for i, f in enumerate(files) if not isinstance(f.get("name"), str))
            d["file"] = f"#{pos} (no name)"
    hours = sum(parse_length(f.get("length")) or 0.0 for f in files
                if f.get("source") == "original") / 3600
    _write_json(item_dir / "_meta.json", {"metadata": item.metadata, "files": files,
                                          **item.top_level})

    raw, spdx, family, decision, reason = LICENSE_FORMS[item.license_key]
    return {
        "item_id": item.identifier,
        "license": {"form": item.license_key, "raw": raw, "spdx": spdx, "family": family,
                    "decision": decision, "reason": reason},
        "defects": [{"item_id": item.identifier, **d} for d in defects],
        "hours": hours,
    }


def build(out: Path, items: int = DEFAULT_ITEMS, seed: int = DEFAULT_SEED,
          workers: int | None = None, log=None, only: list[int] | None = None) -> Path:
    """Build the archive into ``out``; return ``out``. Does nothing if it is already built.

    ``only`` builds just those item indices (each exactly as in a full archive), so a test can
    reach the plants at high indices without building every item before them."""
    out = Path(out)
    log = log or sys.stderr
    manifest = out / "defects.json"
    indices = sorted(set(only)) if only else list(range(items))
    params = {"seed": seed, "items": items, "generator_version": GENERATOR_VERSION}
    if only:
        params = {"seed": seed, "only": indices, "generator_version": GENERATOR_VERSION}
    if out.exists() and any(out.iterdir()):
        try:
            built = json.loads(manifest.read_text())["build"]
        except (OSError, ValueError, KeyError):
            raise ArchiveExists(f"{out} is not empty and is not a sample archive") from None
        if built == params:
            print(f"sample archive already built at {out}", file=log)
            return out
        raise ArchiveExists(f"{out} holds a sample archive built with {built}; "
                            "choose another directory or remove it")

    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    workers = workers or min(os.cpu_count() or 1, 8)
    results = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(build_item, seed, i, str(partial)) for i in indices]
        total_hours = 0.0
        for n, fut in enumerate(futures, 1):
            result = fut.result()
            results.append(result)
            total_hours += result["hours"]
            print(f"[{n}/{len(indices)}] {result['item_id']}  ({total_hours:.2f} h of audio "
                  f"so far)",
                  file=log)
    _write_json(partial / "defects.json", {
        "build": params,
        "hours": round(sum(r["hours"] for r in results), 4),
        "defects": [d for r in results for d in r["defects"]],
        "licenses": {r["item_id"]: r["license"] for r in results},
    })
    if out.exists():
        out.rmdir()  # empty, checked above
    partial.rename(out)
    return out

