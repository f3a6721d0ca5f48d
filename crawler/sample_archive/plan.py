"""What the sample archive contains: items, their licenses, recordings, transcripts and defects.

The plan is a pure function of (seed, item index), so a bigger archive is a superset of a smaller
one with the same seed: items 0–5 carry one of every license family and the most important planted
defects, so ``--items 6`` is enough for unit tests, and later items add the rest of the license
forms seen on archive.org and plain items in every encoding and transcript style.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from crawler.sample_archive.synth import ENCODINGS
from crawler.sample_archive.texts import FIRST_NAMES, SURNAMES, TOPICS

# key → (licenseurl as uploaded, expected SPDX id, family, decision, rejection reason keyword)
LICENSE_FORMS: dict[str, tuple] = {
    "cc0": ("http://creativecommons.org/publicdomain/zero/1.0/", "CC0-1.0", "public-domain",
            "accepted", None),
    "by4_noslash": ("https://creativecommons.org/licenses/by/4.0", "CC-BY-4.0", "by", "accepted",
                    None),
    "bysa3_list_deed": (["http://creativecommons.org/licenses/by-sa/3.0/deed.en_GB"],
                        "CC-BY-SA-3.0", "by-sa", "accepted", None),
    "nc_freetext": ("Attribution-NonCommercial-ShareAlike 3.0 Generic", "CC-BY-NC-SA-3.0", None,
                    "rejected", "non-commercial"),
    "usgov": ("https://www.usa.gov/government-works", "LicenseRef-US-Government-Work",
              "public-domain", "accepted", None),
    "by3_us": ("http://creativecommons.org/licenses/by/3.0/us/", "CC-BY-3.0-US", "by", "accepted",
               None),
    "pdm": ("http://creativecommons.org/publicdomain/mark/1.0/", "CC-PDM-1.0", "public-domain",
            "accepted", None),
    "nd": ("http://creativecommons.org/licenses/by-nd/2.5/", "CC-BY-ND-2.5", None, "rejected",
           "no-derivatives"),
    "missing": (None, None, None, "rejected", "missing"),
    "nc4": ("https://creativecommons.org/licenses/by-nc/4.0/", "CC-BY-NC-4.0", None, "rejected",
            "non-commercial"),
    "conflict": (["https://creativecommons.org/licenses/by/4.0/",
                  "https://creativecommons.org/licenses/by-nc/4.0/"], None, None, "rejected",
                 "conflicting"),
    "by4_freetext": ("Attribution 4.0 International", "CC-BY-4.0", "by", "accepted", None),
    "bysa4": ("https://creativecommons.org/licenses/by-sa/4.0/", "CC-BY-SA-4.0", "by-sa",
              "accepted", None),
    "cc0_deed": ("https://creativecommons.org/publicdomain/zero/1.0/deed.en", "CC0-1.0",
                 "public-domain", "accepted", None),
    "by2": ("http://creativecommons.org/licenses/by/2.0/", "CC-BY-2.0", "by", "accepted", None),
    "by3_deed": ("http://creativecommons.org/licenses/by/3.0/deed.en", "CC-BY-3.0", "by",
                 "accepted", None),
    "by25_noscheme": ("creativecommons.org/licenses/by/2.5/", "CC-BY-2.5", "by", "accepted", None),
    # A port with no SPDX id of its own.
    "bysa25_es": ("https://creativecommons.org/licenses/by-sa/2.5/es/",
                  "LicenseRef-CC-BY-SA-2.5-ES", "by-sa", "accepted", None),
    "bysa4_legalcode": ("https://creativecommons.org/licenses/by-sa/4.0/legalcode",
                        "CC-BY-SA-4.0", "by-sa", "accepted", None),
    "ncsa3": ("http://creativecommons.org/licenses/by-nc-sa/3.0/", "CC-BY-NC-SA-3.0", None,
              "rejected", "non-commercial"),
    # 4.0 has no ports: "nc" where a port would be is no port, and says non-commercial.
    "by4_nc_port": ("https://creativecommons.org/licenses/by/4.0/nc/", None, None, "rejected",
                    "non-commercial"),
    # CC's retired public-domain dedication, without the slash (93 captioned items on
    # archive.org in The People's Speech's counts; 5,355 with it).
    "pd_dedication_noslash": ("http://creativecommons.org/licenses/publicdomain",
                              "LicenseRef-CC-PD-Dedication", "public-domain", "accepted", None),
    # Never a CC deed (CC0 is 1.0 only), but what it names is unambiguous (228 items).
    "cc0_30": ("https://creativecommons.org/licenses/cc0/3.0/", "CC0-1.0", "public-domain",
               "accepted", None),
    # Two public-domain statements agree; the U.S.-government status names it.
    "pdm_usgov": (["http://creativecommons.org/publicdomain/mark/1.0/",
                   "https://www.usa.gov/government-works"], "LicenseRef-US-Government-Work",
                  "public-domain", "accepted", None),
    "cc0_not_pd": (["http://creativecommons.org/publicdomain/zero/1.0/",
                    "This recording is not in the public domain."], "CC0-1.0", None, "rejected",
                   "conflicting"),
    "cc_by_nc_text": ("CC BY-NC", None, None, "rejected", "non-commercial"),
    # A CC path under a host that is not CC's.
    "foreign_host": ("https://creativecommons.org.example.net/licenses/by/4.0/", None, None,
                     "rejected", "unparseable"),
}
# Forms plain items draw from: only accepted ones, so every rejection is a deliberate plant.
PLAIN_FORMS = ["cc0", "by4_noslash", "bysa4", "pdm", "by3_us", "usgov", "by2", "by3_deed",
               "cc0_deed", "bysa25_es", "by4_freetext", "by25_noscheme", "bysa4_legalcode"]

TRANSCRIPT_KINDS = ["srt:accurate", "srt:grouped", "srt:coarse", "srt:shifted", "vtt", "txt"]
TRANSCRIPT_WEIGHTS = [30, 10, 15, 15, 18, 12]
TRANSCRIPT_FORMATS = {"srt": "SubRip", "asr": "SubRip", "vtt": "Web Video Text Tracks",
                      "txt": "Text"}


@dataclass
class RecordingPlan:
    stem: str  # file name without extension
    encoding: str  # key of synth.ENCODINGS
    rate: int
    channels: int
    minutes: float
    transcripts: list[tuple[str, str]]  # (file name, kind) kind ∈ TRANSCRIPT_KINDS or "asr"
    language: str = "en"
    noise_dbfs: float | None = None
    intro_s: float = 0.0
    outro_s: float = 0.0
    defect: str | None = None  # truncated | bad_md5 | mismatched_transcript | other_language
    derivatives: list[str] = field(default_factory=list)  # encodings derived from the original
    content_key: str = ""  # recordings with one key are byte-identical (the duplicate plant)
    length_style: str = "seconds"  # how the metadata states its length: seconds | clock (mm:ss)


@dataclass
class ItemPlan:
    index: int
    identifier: str
    license_key: str
    metadata: dict
    recordings: list[RecordingPlan]
    extra_files: list[dict] = field(default_factory=list)  # {name, kind: private|empty|not_audio}
    defects: list[dict] = field(default_factory=list)
    # archive.org behaviours (indices 24-29): keys beside "metadata" in the metadata answer
    # ({"is_dark": True}, {"files": None}), and file entries listed verbatim, malformed on purpose.
    top_level: dict = field(default_factory=dict)
    raw_files: list[dict] = field(default_factory=list)


def audio_name(rec: RecordingPlan, encoding: str | None = None) -> str:
    return f"{rec.stem}.{ENCODINGS[encoding or rec.encoding][1]}"


def _rng(seed: int, *key) -> random.Random:
    return random.Random(f"{seed}/" + "/".join(map(str, key)))


def _title(rng: random.Random) -> str:
    return rng.choice([
        f"Oral history: {rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)} on {rng.choice(TOPICS)}",
        f"Town hall meeting, {rng.choice(['spring', 'summer', 'autumn', 'winter'])} session",
        f"Community radio hour {rng.randint(1, 99)}",
        f"Lecture: {rng.choice(TOPICS).capitalize()}",
        f"Reading of local history, part {rng.randint(1, 12)}",
        f"Library podcast episode {rng.randint(1, 200)}",
    ])


def _slug(text: str) -> str:
    out = "".join(c.lower() if c.isalnum() else "-" for c in text)
    words, slug = [p for p in out.split("-") if p], ""
    for w in words:
        if len(slug) + len(w) + 1 > 40:
            break
        slug = f"{slug}-{w}" if slug else w
    return slug


def _recording(rng: random.Random, stem: str, *, minutes: tuple[float, float],
               **kw) -> RecordingPlan:
    kind = rng.choices(TRANSCRIPT_KINDS, TRANSCRIPT_WEIGHTS)[0]
    ext = kind.split(":")[0]
    defaults = dict(
        encoding=rng.choices(["vbr_mp3", "cbr_mp3", "ogg", "wav"], [45, 25, 18, 12])[0],
        rate=rng.choice([22050, 44100, 48000]),
        channels=rng.choice([1, 1, 2]),
        minutes=round(rng.uniform(*minutes), 2),
        transcripts=[(f"{stem}.{ext}", kind)],
        noise_dbfs=rng.uniform(-48, -38) if rng.random() < 0.3 else None,
    )
    defaults.update(kw)
    return RecordingPlan(stem=stem, **defaults)


def _plain_minutes(rng: random.Random) -> tuple[float, float]:
    r = rng.random()
    return (1.0, 2.0) if r < 0.6 else (2.0, 4.0) if r < 0.9 else (5.0, 10.0)


def plan_item(seed: int, index: int) -> ItemPlan:
    """The plan for item ``index``: a pure function of seed and index."""
    rng = _rng(seed, "item", index)
    title = _title(rng)
    identifier = f"{_slug(title)}-{index:04d}"
    metadata = {
        "identifier": identifier,
        "mediatype": rng.choice(["audio", "audio", "movies"]),
        "collection": ["opensource_audio", "community_media"] if rng.random() < 0.5
        else "opensource_audio",
        "title": title,
        "creator": f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}",
        "date": f"{rng.randint(1995, 2023)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "description": "Recorded for the "
                       + rng.choice(["community archive", "local radio", "library"])
                       + f" series. {rng.choice(TOPICS).capitalize()}.",
        "language": "eng",
        "subject": ["oral history", rng.choice(["community", "history", "education", "radio"])],
        "publicdate": f"20{rng.randint(10, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
                      f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
        "uploader": f"uploader{rng.randint(1, 30)}@example.org",
    }
    make = CORE_ITEMS[index] if index < len(CORE_ITEMS) else \
        ARCHIVE_ORG_PLANTS.get(index, _plain_item)
    item = make(rng, seed, index, identifier, metadata)
    raw = LICENSE_FORMS[item.license_key][0]
    if raw is not None:
        item.metadata["licenseurl"] = raw
    if any(kind.split(":")[0] in ("srt", "vtt", "asr")
           for r in item.recordings for _, kind in r.transcripts):
        item.metadata.setdefault("closed_captioning", "yes")
    _, _, _, decision, reason = LICENSE_FORMS[item.license_key]
    if decision == "rejected":
        item.defects.append({"kind": f"license_{item.license_key}", "file": None,
                             "expect": {"stage": "crawl", "item": "rejected", "reason": reason},
                             "description": f"license {raw!r}"})
    return item


def _multi_file(rng, seed, index, identifier, metadata) -> ItemPlan:
    minutes = (1.0, 1.3)
    recs = [
        _recording(rng, "Session 1 - Opening Remarks", minutes=minutes, encoding="vbr_mp3",
                   transcripts=[("session1_opening_remarks.srt", "srt:accurate")]),
        _recording(rng, "Session 2 - Public Comment", minutes=minutes, encoding="ogg",
                   transcripts=[("Session_2_Public_Comment.vtt", "vtt")]),
        _recording(rng, "Session 3 - Closing", minutes=minutes, encoding="wav", rate=44100,
                   transcripts=[("session-3-closing.txt", "txt")], derivatives=["vbr_mp3"]),
    ]
    extras = [
        {"name": "Session 4 - Board Only.mp3", "kind": "private"},
        {"name": "Session 5 - Cancelled.mp3", "kind": "empty"},
        {"name": "Session 6 - Agenda.mp3", "kind": "not_audio",
         "transcript": "session6_agenda.txt"},
    ]
    pairs = {audio_name(r): r.transcripts[0][0] for r in recs}
    defects = [
        {"kind": "multi_file_pairing", "file": None, "expect": {"stage": "crawl", "pairs": pairs},
         "description": "three recordings and three transcripts whose names differ in case and "
                        "punctuation; each must be paired with its own"},
        {"kind": "private_file", "file": extras[0]["name"],
         "expect": {"stage": "crawl", "file": "skipped", "reason": "private"},
         "description": "marked private in the metadata; the server answers 403"},
        {"kind": "zero_size_file", "file": extras[1]["name"],
         "expect": {"stage": "crawl", "file": "skipped", "reason": "empty"},
         "description": "listed with size 0"},
        {"kind": "not_audio", "file": extras[2]["name"],
         "expect": {"stage": "crawl", "file": "skipped", "reason": "not audio"},
         "description": "labelled VBR MP3, named .mp3 and paired with a transcript, "
                        "but the bytes are an HTML page"},
    ]
    return ItemPlan(index, identifier, "cc0", metadata, recs, extras, defects)


def _intro_outro(rng, seed, index, identifier, metadata) -> ItemPlan:
    rec = _recording(rng, "broadcast", minutes=(1.0, 1.5), encoding="cbr_mp3", rate=44100,
                     channels=2, intro_s=round(rng.uniform(20, 30), 1),
                     outro_s=round(rng.uniform(15, 25), 1),
                     transcripts=[("broadcast.srt", "srt:accurate")], content_key="dup-source")
    defects = [{"kind": "intro_outro", "file": "broadcast.mp3",
                "expect": {"stage": "align", "no_clip_overlaps_unspoken": True},
                "description": "long unspoken jingle before and after the speech, "
                               "absent from the transcript"}]
    return ItemPlan(index, identifier, "by4_noslash", metadata, [rec], [], defects)


def _asr_and_broken(rng, seed, index, identifier, metadata) -> ItemPlan:
    recs = [
        _recording(rng, "interview", minutes=(1.0, 1.4), encoding="vbr_mp3",
                   transcripts=[("interview.asr.srt", "asr")]),
        _recording(rng, "interview_part2", minutes=(1.0, 1.4), encoding="vbr_mp3",
                   transcripts=[("interview_part2.vtt", "vtt")], defect="bad_md5"),
        _recording(rng, "interview_part3", minutes=(1.0, 1.5), encoding="cbr_mp3",
                   transcripts=[("interview_part3.txt", "txt")], defect="truncated"),
    ]
    defects = [
        {"kind": "asr_caption", "file": "interview.asr.srt",
         "expect": {"stage": "crawl", "flag": "asr_caption", "release": "excluded"},
         "description": "the only transcript is a speech recogniser's caption"},
        {"kind": "bad_md5", "file": "interview_part2.mp3",
         "expect": {"stage": "crawl", "file": "corrupt", "reason": "md5"},
         "description": "the md5 in the metadata does not match the served bytes"},
        {"kind": "truncated_audio", "file": "interview_part3.mp3",
         "expect": {"stage": "align", "recording": "failed", "reason": "decode"},
         "description": "MP3 cut off mid-frame at about 60 % of its stated length; "
                        "size and md5 match the damaged file"},
    ]
    return ItemPlan(index, identifier, "bysa3_list_deed", metadata, recs, [], defects)


def _rejected_nc(rng, seed, index, identifier, metadata) -> ItemPlan:
    rec = _recording(rng, "talk", minutes=(1.0, 1.5), transcripts=[("talk.srt", "srt:accurate")])
    return ItemPlan(index, identifier, "nc_freetext", metadata, [rec], [], [])


def _mismatched(rng, seed, index, identifier, metadata) -> ItemPlan:
    rec = _recording(rng, "address", minutes=(1.0, 1.5), encoding="vbr_mp3",
                     transcripts=[("address.srt", "srt:accurate")],
                     defect="mismatched_transcript")
    defects = [{"kind": "mismatched_transcript", "file": "address.srt",
                "expect": {"stage": "align", "clean_clips": 0},
                "description": "the transcript is of other speech, timed like the audio"}]
    metadata["creator"] = "United States. National Park Service"
    return ItemPlan(index, identifier, "usgov", metadata, [rec], [], defects)


def _duplicate_and_foreign(rng, seed, index, identifier, metadata) -> ItemPlan:
    source = plan_item(seed, 1)
    dup = source.recordings[0]
    # Uploaded after the original: the copy is the later upload, whichever finishes first.
    metadata["publicdate"] = f"2025{source.metadata['publicdate'][4:]}"
    recs = [
        RecordingPlan(**{**dup.__dict__, "stem": "radio_broadcast_copy",
                         "transcripts": [("radio_broadcast_copy.srt", "srt:accurate")]}),
        _recording(rng, "gespraech", minutes=(1.0, 1.3), encoding="vbr_mp3", language="de",
                   transcripts=[("gespraech.srt", "srt:accurate")], defect="other_language"),
    ]
    defects = [
        {"kind": "duplicate_recording", "file": "radio_broadcast_copy.mp3",
         "expect": {"stage": "crawl", "file": "duplicate",
                    "duplicate_of": f"{source.identifier}/broadcast.mp3"},
         "description": "byte-identical to a recording under another identifier"},
        {"kind": "other_language", "file": "gespraech.srt",
         "expect": {"stage": "align", "clean_clips": 0, "reason": "language"},
         "description": "German speech with a German transcript in an item that claims English"},
    ]
    return ItemPlan(index, identifier, "by3_us", metadata, recs, [], defects)


# Items planted at fixed positions after the core, for license forms and query behaviour.
LICENSE_PLANTS = {6: "pdm", 7: "nd", 8: "missing", 9: "nc4", 10: "conflict", 11: "by4_freetext",
                  12: "bysa4", 13: "ncsa3",
                  # 22 stays plain: its draw is the archive's only bysa4_legalcode.
                  16: "by4_nc_port", 17: "pd_dedication_noslash", 18: "cc0_30", 19: "pdm_usgov",
                  20: "cc0_not_pd", 21: "cc_by_nc_text", 23: "foreign_host"}


def _plain_item(rng, seed, index, identifier, metadata) -> ItemPlan:
    key = LICENSE_PLANTS.get(index) or rng.choice(PLAIN_FORMS)
    stem = _slug(metadata["title"]).replace("-", "_")
    rec = _recording(rng, stem, minutes=_plain_minutes(rng))
    if rng.random() < 0.15:
        rec.encoding, rec.derivatives = "flac", ["vbr_mp3", "ogg"]
    item = ItemPlan(index, identifier, key, metadata, [rec], [], [])
    if index == 6:
        del metadata["creator"]  # attribution must notice
        item.defects.append({"kind": "missing_creator", "file": None,
                             "expect": {"stage": "audit", "finding": "attribution"},
                             "description": "no creator in the metadata"})
    if index == 14:
        metadata["access-restricted-item"] = "true"
        item.defects.append({"kind": "access_restricted", "file": None,
                             "expect": {"stage": "crawl", "discovered_by_default_query": False},
                             "description": "access-restricted; downloads answer 403"})
    if index == 15:
        rec.transcripts = []
        metadata.pop("closed_captioning", None)
        item.defects.append({"kind": "no_transcript", "file": None,
                             "expect": {"stage": "crawl", "discovered_by_default_query": False},
                             "description": "audio without any transcript"})
    return item


CORE_ITEMS = [_multi_file, _intro_outro, _asr_and_broken, _rejected_nc, _mismatched,
              _duplicate_and_foreign]


# -- archive.org as it really is (indices 24-29): short items, cheap to build -------------------

def _short(rng, stem: str, kind: str = "srt:accurate", **kw) -> RecordingPlan:
    ext = kind.split(":")[0]
    return _recording(rng, stem, minutes=(0.12, 0.2), encoding="vbr_mp3",
                      transcripts=[(f"{stem}.{ext}", kind)], **kw)


def _crawl_defect(kind: str, file: str | None, expect: dict, description: str) -> dict:
    return {"kind": kind, "file": file, "expect": {"stage": "crawl", **expect},
            "description": description}


def _dark(rng, seed, index, identifier, metadata) -> ItemPlan:
    item = ItemPlan(index, identifier, "cc0", metadata, [_short(rng, "statement")],
                    top_level={"is_dark": True})
    item.defects.append(_crawl_defect(
        "dark_item", None, {"item": "rejected", "reason": "dark"},
        "withdrawn (is_dark) after the search index saw it: metadata still answers, with "
        "is_dark at its top level; downloads answer 403"))
    return item


def _restricted(rng, seed, index, identifier, metadata) -> ItemPlan:
    metadata["access-restricted-item"] = "true"
    item = ItemPlan(index, identifier, "by4_noslash", metadata, [_short(rng, "lecture")])
    item.defects.append(_crawl_defect(
        "access_restricted_item", None, {"item": "rejected", "reason": "access-restricted"},
        "access-restricted (lending library) yet found by a query that does not exclude it; "
        "downloads answer 403"))
    return item


def _clock_lengths(rng, seed, index, identifier, metadata) -> ItemPlan:
    rec = _short(rng, "reading", length_style="clock")
    item = ItemPlan(index, identifier, "bysa4", metadata, [rec])
    item.defects.append(_crawl_defect(
        "length_mm_ss", audio_name(rec), {"length": "clock"},
        "length stated as mm:ss, as archive.org does for some files"))
    return item


def _metadata_source_trap(rng, seed, index, identifier, metadata) -> ItemPlan:
    rec = _short(rng, "remarks")
    trap = {"name": "remarks.txt", "kind": "metadata_text"}
    item = ItemPlan(index, identifier, "pdm", metadata, [rec], [trap])
    item.defects.append(_crawl_defect(
        "metadata_source_file", trap["name"], {"file": "skipped", "reason": "source: metadata",
                                              "pair": {"remarks.mp3": "remarks.srt"}},
        "a source: metadata file in a transcript format, named like the audio: never a "
        "transcript, never paired"))
    return item


def _malformed_entries(rng, seed, index, identifier, metadata) -> ItemPlan:
    rec = _short(rng, "panel")
    raw = [{"name": "panel_part2.mp3", "source": "original", "format": "VBR MP3",
            "size": "12 kB", "md5": "0" * 32},
           {"name": "panel_notes.srt", "source": "original", "format": "SubRip",
            "size": "100", "md5": 12345},
           {"name": 20240101, "source": "original", "format": "VBR MP3", "size": "10"}]
    item = ItemPlan(index, identifier, "by3_us", metadata, [rec], raw_files=raw)
    for entry, why in ((raw[0], "size"), (raw[1], "md5")):
        item.defects.append(_crawl_defect(
            f"malformed_file_{why}", entry["name"],
            {"file": "skipped", "reason": "malformed file entry",
             "pair": {"panel.mp3": "panel.srt"}},
            f"a file entry whose {why} has the wrong shape; the item's good files go on"))
    item.defects.append(_crawl_defect(
        "malformed_file_name", None, {"file": "skipped", "reason": "name is a int",
                                      "unnamed": True},
        "a file entry whose name is a number: recorded as skipped under its position"))
    return item


def _files_null(rng, seed, index, identifier, metadata) -> ItemPlan:
    item = ItemPlan(index, identifier, "cc0", metadata, [_short(rng, "broadcast")],
                    top_level={"files": None})
    item.defects.append(_crawl_defect(
        "files_null", None, {"item": "rejected", "reason": "files is null"},
        "the metadata answer has \"files\": null"))
    return item


ARCHIVE_ORG_PLANTS = {24: _dark, 25: _restricted, 26: _clock_lengths, 27: _metadata_source_trap,
                      28: _malformed_entries, 29: _files_null}
