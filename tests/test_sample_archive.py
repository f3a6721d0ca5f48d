"""The sample archive on disk: determinism, layout, ground truth, and every planted defect."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import srt
from helpers import decode_16k, md5, probe, rms

from crawler.sample_archive.build import ArchiveExists, build
from crawler.sample_archive.plan import LICENSE_FORMS


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def metas(archive: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text())
            for p in sorted((archive / "items").glob("*/_meta.json"))}


def truths(archive: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((archive / "truth").rglob("*.json"))]


def entry(meta: dict, name: str) -> dict:
    return next(f for f in meta["files"] if f["name"] == name)


# -- determinism ----------------------------------------------------------------------------

def test_same_seed_gives_byte_identical_tree_whatever_the_workers(archive, tmp_path):
    again = build(tmp_path / "again", items=6, seed=1234, workers=1)
    assert tree_digest(again) == tree_digest(archive)


def test_another_seed_gives_another_tree(archive, tmp_path):
    other = build(tmp_path / "other", items=6, seed=99)
    a, b = tree_digest(archive), tree_digest(other)
    assert a != b
    audio = [k for k in b if k.endswith(".mp3")]
    assert audio and not set(audio) & set(a)  # other identifiers, other audio


def test_a_bigger_archive_extends_a_smaller_one(archive, tmp_path):
    small = build(tmp_path / "two", items=2, seed=1234)
    small_tree = {k: v for k, v in tree_digest(small).items() if k != "defects.json"}
    full_tree = tree_digest(archive)
    assert small_tree and all(full_tree[k] == v for k, v in small_tree.items())


def test_building_again_into_the_same_directory_does_nothing(archive, capsys):
    before = tree_digest(archive)
    assert build(archive, items=6, seed=1234) == archive
    assert "already built" in capsys.readouterr().err
    assert tree_digest(archive) == before


def test_refuses_to_overwrite_a_different_archive(archive, tmp_path):
    with pytest.raises(ArchiveExists):
        build(archive, items=7, seed=1234)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ArchiveExists):
        build(tmp_path, items=2)
    assert (tmp_path / "notes.txt").read_text() == "mine"


# -- layout and metadata --------------------------------------------------------------------

def test_layout_matches_design(archive):
    assert {p.name for p in archive.iterdir()} == {"items", "truth", "defects.json"}
    for identifier, meta in metas(archive).items():
        assert meta["metadata"]["identifier"] == identifier
        assert set(meta) == {"metadata", "files"}
        on_disk = {p.name for p in (archive / "items" / identifier).iterdir()} - {"_meta.json"}
        assert on_disk == {f["name"] for f in meta["files"]}


def test_metadata_values_are_strings_like_the_real_service(archive):
    for meta in metas(archive).values():
        for value in meta["metadata"].values():
            assert isinstance(value, str) or all(isinstance(v, str) for v in value)
        for f in meta["files"]:
            assert all(isinstance(v, str) for v in f.values()), f


def test_sizes_and_checksums_match_except_where_planted(archive, defects):
    bad = {(d["item_id"], d["file"]) for d in defects["defects"] if d["kind"] == "bad_md5"}
    checked = 0
    for identifier, meta in metas(archive).items():
        for f in meta["files"]:
            path = archive / "items" / identifier / f["name"]
            assert int(f["size"]) == path.stat().st_size
            assert (f["md5"] == md5(path)) != ((identifier, f["name"]) in bad)
            assert f["sha1"] == hashlib.sha1(path.read_bytes()).hexdigest()
            checked += 1
    assert checked > 20 and bad


def test_audio_is_varied_in_format_rate_and_channels(archive):
    formats, rates, channels, lengths = set(), set(), set(), []
    for identifier, meta in metas(archive).items():
        for f in meta["files"]:
            if "length" not in f or f.get("private") or f["size"] == "0":
                continue
            formats.add(f["format"])
            stream = probe(archive / "items" / identifier / f["name"])["streams"][0]
            rates.add(int(stream["sample_rate"]))
            channels.add(stream["channels"])
            if f["source"] == "original":
                lengths.append(float(f["length"]))
    assert {"VBR MP3", "64Kbps MP3", "Ogg Vorbis", "WAVE"} <= formats
    assert len(rates) >= 2 and channels == {1, 2}
    assert min(lengths) >= 60 and max(lengths) <= 600


def test_small_archive_has_every_license_family_and_a_rejection(defects):
    lic = defects["licenses"]
    assert {v["family"] for v in lic.values() if v["decision"] == "accepted"} == {
        "public-domain", "by", "by-sa"}
    assert any(v["decision"] == "rejected" for v in lic.values())


def test_small_archive_has_the_important_defects(defects):
    kinds = {d["kind"] for d in defects["defects"]}
    assert {"asr_caption", "mismatched_transcript", "other_language", "truncated_audio",
            "bad_md5", "private_file", "zero_size_file", "duplicate_recording",
            "multi_file_pairing", "intro_outro", "not_audio"} <= kinds


def test_license_strings_are_recorded_as_uploaded(archive, defects):
    for identifier, meta in metas(archive).items():
        expected = defects["licenses"][identifier]
        assert meta["metadata"].get("licenseurl") == expected["raw"]
        assert LICENSE_FORMS[expected["form"]][0] == expected["raw"]


# -- ground truth -----------------------------------------------------------------------------

def test_truth_sentences_are_ordered_and_inside_the_recording(archive):
    for t in truths(archive):
        times = [(s["start"], s["end"]) for s in t["sentences"]]
        assert times and all(a < b for a, b in times)
        assert all(b1 < a2 for (_, b1), (a2, _) in zip(times, times[1:], strict=False))
        assert times[-1][1] <= t["duration"]


def test_truth_onsets_match_the_served_audio(archive):
    """Onsets/offsets are those of the decoded file, whatever the codec's delay."""
    errors = []
    for t in truths(archive):
        if t["defect"] or t["noise_dbfs"] is not None or t["unspoken"]:
            continue
        x = np.abs(decode_16k(archive / "items" / t["item_id"] / t["audio"]))
        for s in t["sentences"]:
            for edge, pick in ((s["start"], 0), (s["end"], -1)):
                a = int((edge - 0.15) * 16000)
                loud = np.flatnonzero(x[a: a + int(0.3 * 16000)] > 0.008)
                if loud.size:
                    errors.append((a + loud[pick]) / 16000 - edge)
    errors = np.abs(np.array(errors))
    assert errors.size > 30
    assert np.median(errors) < 0.005
    assert np.mean(errors < 0.02) > 0.9


def test_pauses_are_quieter_than_speech(archive):
    for t in truths(archive):
        if t["defect"] == "truncated":
            continue
        x = decode_16k(archive / "items" / t["item_id"] / t["audio"])
        speech = [rms(x[int(s["start"] * 16000): int(s["end"] * 16000)]) for s in t["sentences"]]
        gaps = [rms(x[int((a["end"] + 0.05) * 16000): int((b["start"] - 0.05) * 16000)])
                for a, b in zip(t["sentences"], t["sentences"][1:], strict=False)
                if b["start"] - a["end"] > 0.3]
        assert np.median(gaps) < 0.25 * np.median(speech), t["audio"]


# -- every planted defect is really defective ------------------------------------------------

def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _check_multi_file_pairing(archive, meta, d):
    names = {f["name"] for f in meta["files"]}
    for audio, transcript in d["expect"]["pairs"].items():
        assert audio in names and transcript in names
        assert audio.lower() != transcript.lower().rsplit(".", 1)[0]  # not trivially equal
        truth = json.loads((archive / "truth" / d["item_id"] / f"{audio}.json").read_text())
        assert transcript in [t["name"] for t in truth["transcripts"]]


def _check_private_file(archive, meta, d):
    assert entry(meta, d["file"])["private"] == "true"


def _check_zero_size_file(archive, meta, d):
    assert entry(meta, d["file"])["size"] == "0"
    assert (archive / "items" / d["item_id"] / d["file"]).stat().st_size == 0


def _check_not_audio(archive, meta, d):
    assert entry(meta, d["file"])["format"].endswith("MP3")
    path = archive / "items" / d["item_id"] / d["file"]
    result = subprocess.run(["ffprobe", "-v", "error", str(path)], capture_output=True)
    assert result.returncode != 0


def _check_intro_outro(archive, meta, d):
    truth = json.loads((archive / "truth" / d["item_id"] / f"{d['file']}.json").read_text())
    (i0, i1), (o0, o1) = truth["unspoken"]
    assert i1 >= 15 and o1 - o0 >= 15
    x = decode_16k(archive / "items" / d["item_id"] / d["file"])
    assert rms(x[: int(i1 * 16000)]) > 0.02 and rms(x[int(o0 * 16000):]) > 0.02  # not silence
    assert truth["sentences"][0]["start"] > i1 and truth["sentences"][-1]["end"] < o0
    srt_name = truth["transcripts"][0]["name"]
    cues = list(srt.parse((archive / "items" / d["item_id"] / srt_name).read_text()))
    assert cues[0].start.total_seconds() >= i1 and cues[-1].end.total_seconds() <= o0


def _check_asr_caption(archive, meta, d):
    assert d["file"].endswith(".asr.srt")
    text = " ".join(c.content for c in srt.parse(
        (archive / "items" / d["item_id"] / d["file"]).read_text()))
    assert text == text.lower() and not re.search(r"[.,;:!?\"]", text)
    audio = entry(meta, d["file"])["original"]
    truth = json.loads((archive / "truth" / d["item_id"] / f"{audio}.json").read_text())
    spoken = _words(" ".join(s["text"] for s in truth["sentences"]))
    assert abs(len(_words(text)) - len(spoken)) > 0 or _words(text) != spoken


def _check_bad_md5(archive, meta, d):
    path = archive / "items" / d["item_id"] / d["file"]
    assert entry(meta, d["file"])["md5"] != md5(path)
    assert int(entry(meta, d["file"])["size"]) == path.stat().st_size


def _check_truncated_audio(archive, meta, d):
    path = archive / "items" / d["item_id"] / d["file"]
    stated = float(entry(meta, d["file"])["length"])
    result = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null",
                             "-"], capture_output=True, text=True)
    decoded = decode_16k(path).size / 16000
    assert result.returncode != 0 or result.stderr.strip() or decoded < 0.9 * stated
    assert decoded < 0.9 * stated


def _check_mismatched_transcript(archive, meta, d):
    audio = d["file"].rsplit(".", 1)[0] + ".mp3"
    truth = json.loads((archive / "truth" / d["item_id"] / f"{audio}.json").read_text())
    assert truth["transcript_matches"] is False
    cues = [" ".join(_words(c.content)) for c in srt.parse(
        (archive / "items" / d["item_id"] / d["file"]).read_text())]
    spoken = {" ".join(_words(s["text"])) for s in truth["sentences"]}
    assert cues and not spoken & set(cues)


def _check_other_language(archive, meta, d):
    audio = d["file"].rsplit(".", 1)[0] + ".mp3"
    truth = json.loads((archive / "truth" / d["item_id"] / f"{audio}.json").read_text())
    assert truth["language"] == "de" and truth["voice"]["name"].startswith("de")
    text = (archive / "items" / d["item_id"] / d["file"]).read_text()
    assert re.search(r"\b(der|die|das|und|im|am)\b", text)
    assert meta["metadata"]["language"] == "eng"  # the metadata claims English


def _check_duplicate_recording(archive, meta, d):
    other_id, other_name = d["expect"]["duplicate_of"].split("/", 1)
    assert other_id != d["item_id"]
    assert md5(archive / "items" / d["item_id"] / d["file"]) == \
        md5(archive / "items" / other_id / other_name)


def _check_license(archive, meta, d):
    assert d["expect"]["item"] == "rejected" and d["expect"]["reason"]


def _check_item_flag(archive, meta, d):
    assert d["expect"]["stage"] in {"crawl", "audit"}


CHECKS = {
    "multi_file_pairing": _check_multi_file_pairing,
    "private_file": _check_private_file,
    "zero_size_file": _check_zero_size_file,
    "not_audio": _check_not_audio,
    "intro_outro": _check_intro_outro,
    "asr_caption": _check_asr_caption,
    "bad_md5": _check_bad_md5,
    "truncated_audio": _check_truncated_audio,
    "mismatched_transcript": _check_mismatched_transcript,
    "other_language": _check_other_language,
    "duplicate_recording": _check_duplicate_recording,
    "missing_creator": lambda a, m, d: "creator" not in m["metadata"],
    "access_restricted": lambda a, m, d: m["metadata"]["access-restricted-item"] == "true",
    "no_transcript": lambda a, m, d: not any(
        f["format"] in ("SubRip", "Web Video Text Tracks", "Text") for f in m["files"]),
    # archive.org as it really is (indices 24-29)
    "dark_item": lambda a, m, d: m["is_dark"] is True and bool(m["files"]),
    "access_restricted_item": lambda a, m, d: m["metadata"]["access-restricted-item"] == "true",
    "length_mm_ss": lambda a, m, d: re.fullmatch(r"\d\d:[0-5]\d", entry(m, d["file"])["length"])
    is not None,
    "metadata_source_file": lambda a, m, d: entry(m, d["file"])["source"] == "metadata" and
    entry(m, d["file"])["format"] == "Text",
    "malformed_file_size": lambda a, m, d: not entry(m, d["file"])["size"].isdigit(),
    "malformed_file_md5": lambda a, m, d: not isinstance(entry(m, d["file"])["md5"], str),
    "malformed_file_name": lambda a, m, d: any(not isinstance(f.get("name"), str)
                                               for f in m["files"]),
    "files_null": lambda a, m, d: m["files"] is None,
}


def _check(archive, d):
    meta = json.loads((archive / "items" / d["item_id"] / "_meta.json").read_text())
    if d["kind"].startswith("license_"):
        return _check_license(archive, meta, d)
    result = CHECKS[d["kind"]](archive, meta, d)  # a KeyError here: a defect nobody checks
    assert result is None or result is True, d


def test_every_planted_defect_is_really_defective(archive, defects):
    assert defects["defects"]
    for d in defects["defects"]:
        _check(archive, d)


def test_a_correct_transcript_does_match_its_audio(archive):
    """The control for the mismatch check above: accurate SRTs repeat the spoken sentences."""
    t = next(t for t in truths(archive)
             if not t["defect"] and t["transcripts"] and t["transcripts"][0]["kind"] ==
             "srt:accurate" and t["language"] == "en")
    cues = {" ".join(_words(c.content)) for c in srt.parse(
        (archive / "items" / t["item_id"] / t["transcripts"][0]["name"]).read_text())}
    spoken = [" ".join(_words(s["text"])) for s in t["sentences"]]
    assert np.mean([any(s in c for c in cues) for s in spoken]) > 0.8


@pytest.mark.slow
def test_default_archive_size_and_license_forms(tmp_path):
    root = build(tmp_path / "default")
    facts = json.loads((root / "defects.json").read_text())
    assert len(facts["licenses"]) == 40
    assert 1.0 <= facts["hours"] <= 2.0
    assert {v["form"] for v in facts["licenses"].values()} == set(LICENSE_FORMS)
    for d in facts["defects"]:
        _check(root, d)


def test_archive_org_plants_build_alone_and_are_really_defective(archive, tmp_path):
    """``build(only=…)`` makes exactly those items, each byte-identical to its copy in a full
    archive; the plants at 24-29 are what their defects say."""
    one = build(tmp_path / "one", only=[2], workers=1)
    item = next(p.name for p in (archive / "items").iterdir() if p.name.endswith("-0002"))
    assert tree_digest(one / "items") == {k: v for k, v in tree_digest(archive / "items").items()
                                          if k.startswith(item + "/")}
    plants = build(tmp_path / "plants", only=list(range(24, 30)), workers=2)
    facts = json.loads((plants / "defects.json").read_text())
    assert facts["build"]["only"] == list(range(24, 30)) and len(facts["licenses"]) == 6
    kinds = {d["kind"] for d in facts["defects"]}
    assert {"dark_item", "access_restricted_item", "length_mm_ss", "metadata_source_file",
            "malformed_file_size", "malformed_file_md5", "malformed_file_name",
            "files_null"} <= kinds
    for d in facts["defects"]:
        _check(plants, d)


def test_archive_org_own_files_are_listed_with_source_metadata(archive):
    for identifier, meta in metas(archive).items():
        own = {f["name"]: f for f in meta["files"] if f["source"] == "metadata"}
        assert set(own) == {f"{identifier}_meta.xml", f"{identifier}_files.xml"}
        assert all(f["format"] == "Metadata" for f in own.values())
