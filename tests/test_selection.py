"""Choosing files inside an item and pairing audio with transcripts."""

from __future__ import annotations

import random

from crawler.selection import choose_files, pair_files


def f(name, fmt, source="original", **kw):
    return {"name": name, "format": fmt, "source": source, "size": "1000", "md5": "0" * 32, **kw}


def by_name(choices):
    return {c.name: c for c in choices}


def test_originals_over_derivatives():
    files = [f("talk.wav", "WAVE"), f("talk.mp3", "VBR MP3", "derivative", original="talk.wav"),
             f("talk.ogg", "Ogg Vorbis", "derivative", original="talk.wav")]
    c = by_name(choose_files(files))
    assert c["talk.wav"].skip is None
    assert "derivative" in c["talk.mp3"].skip and "derivative" in c["talk.ogg"].skip


def test_best_derivative_when_the_original_is_unusable():
    files = [f("talk.wav", "WAVE", private="true"),
             f("talk.ogg", "Ogg Vorbis", "derivative", original="talk.wav"),
             f("talk.mp3", "VBR MP3", "derivative", original="talk.wav")]
    c = by_name(choose_files(files))
    assert c["talk.wav"].skip.startswith("private")
    assert c["talk.mp3"].skip is None and c["talk.ogg"].skip is not None


def test_private_empty_and_misnamed_audio_are_skipped_with_reasons():
    files = [f("a.mp3", "VBR MP3", private="true"), f("b.mp3", "VBR MP3", size="0"),
             f("c.pdf", "VBR MP3"), f("d.mp3", "VBR MP3")]
    c = by_name(choose_files(files))
    assert c["a.mp3"].skip.startswith("private")
    assert c["b.mp3"].skip.startswith("empty")
    assert c["c.pdf"].skip.startswith("not audio")
    assert c["d.mp3"].skip is None


def test_transcript_formats_and_asr_flags():
    files = [f("x.srt", "SubRip"), f("x.vtt", "Web Video Text Tracks"), f("x.txt", "Text"),
             f("x.asr.srt", "SubRip", "derivative"), f("y.auto.srt", "SubRip"),
             f("book_djvu.txt", "DjVuTXT"), f("x_meta.xml", "Metadata"),
             f("cc.txt", "Closed Caption Text")]
    c = by_name(choose_files(files))
    assert {n for n, ch in c.items() if ch.role == "transcript"} == {
        "x.srt", "x.vtt", "x.txt", "x.asr.srt", "y.auto.srt", "cc.txt"}
    assert c["x.asr.srt"].asr and c["y.auto.srt"].asr and not c["x.srt"].asr
    assert c["x.vtt"].kind == "vtt" and c["cc.txt"].kind == "txt"


def test_pairing_is_one_to_one_by_name_whatever_the_order():
    names = [("Session 1 - Opening Remarks.mp3", "session1_opening_remarks.srt"),
             ("Session 2 - Public Comment.ogg", "Session_2_Public_Comment.vtt"),
             ("Session 3 - Closing.wav", "session-3-closing.txt"),
             ("Session 10 - Late Addition.mp3", "session_10_late_addition.srt")]
    fmt = {"mp3": "VBR MP3", "ogg": "Ogg Vorbis", "wav": "WAVE", "srt": "SubRip",
           "vtt": "Web Video Text Tracks", "txt": "Text"}
    files = [f(n, fmt[n.rsplit(".", 1)[1]]) for pair in names for n in pair]
    for seed in range(5):
        random.Random(seed).shuffle(files)
        pairs = {p["audio"]: p["transcript"] for p in pair_files(choose_files(files))}
        assert pairs == dict(names)


def test_human_transcripts_win_over_machine_captions():
    files = [f("talk.mp3", "VBR MP3"), f("talk.asr.srt", "SubRip"), f("talk.srt", "SubRip"),
             f("other.mp3", "VBR MP3"), f("other.asr.srt", "SubRip")]
    pairs = {p["audio"]: p for p in pair_files(choose_files(files))}
    assert pairs["talk.mp3"]["transcript"] == "talk.srt" and pairs["talk.mp3"]["reason"] is None
    assert pairs["other.mp3"]["transcript"] == "other.asr.srt"
    assert pairs["other.mp3"]["reason"] == "asr caption"


def test_a_lone_pair_is_paired_whatever_the_names_but_strangers_are_not():
    pairs = pair_files(choose_files([f("recording.mp3", "VBR MP3"), f("notes.txt", "Text")]))
    assert [(p["audio"], p["transcript"]) for p in pairs] == [("recording.mp3", "notes.txt")]
    pairs = pair_files(choose_files([f("alpha.mp3", "VBR MP3"), f("beta.mp3", "VBR MP3"),
                                     f("zulu_notes.txt", "Text"), f("alpha.srt", "SubRip")]))
    assert [(p["audio"], p["transcript"]) for p in pairs] == [("alpha.mp3", "alpha.srt")]


def test_lengths_in_either_notation():
    c = by_name(choose_files([f("a.mp3", "VBR MP3", length="83.21"),
                              f("b.mp3", "VBR MP3", length="01:02:03"),
                              f("c.mp3", "VBR MP3", length="garbage")]))
    assert c["a.mp3"].length_s == 83.21 and c["b.mp3"].length_s == 3723
    assert c["c.mp3"].length_s is None


def test_lengths_are_hints_and_absurd_ones_are_ignored():
    c = by_name(choose_files([
        f("mmss.mp3", "VBR MP3", length="02:03"), f("hms.mp3", "VBR MP3", length="1:00:00.5"),
        f("num.mp3", "VBR MP3", length=61.5), f("huge.mp3", "VBR MP3", length="1e12"),
        f("big.mp3", "VBR MP3", length="999999999"), f("inf.mp3", "VBR MP3", length="inf"),
        f("nan.mp3", "VBR MP3", length=float("nan")), f("neg.mp3", "VBR MP3", length="-5"),
        f("list.mp3", "VBR MP3", length=["12"]), f("clock.mp3", "VBR MP3", length="1:99"),
        f("long.mp3", "VBR MP3", length="1" * 5000), f("bool.mp3", "VBR MP3", length=True)]))
    assert c["mmss.mp3"].length_s == 123 and c["hms.mp3"].length_s == 3600.5
    assert c["num.mp3"].length_s == 61.5
    for name in ("huge", "big", "inf", "nan", "neg", "list", "clock", "long", "bool"):
        assert c[f"{name}.mp3"].length_s is None, name
        assert c[f"{name}.mp3"].skip is None, name  # a bad hint is not a bad file


def test_malformed_file_entries_are_skipped_with_reasons_and_the_rest_goes_on():
    files = [f("good.mp3", "VBR MP3"), f("good.srt", "SubRip"),
             {"name": 12345, "format": "VBR MP3", "size": "10"},
             {"format": "SubRip", "size": "10"},
             {"name": ["x.mp3"], "format": "VBR MP3"},
             f("badsize.mp3", "VBR MP3", size=["10"]), f("negsize.mp3", "VBR MP3", size=-4),
             f("hugesize.mp3", "VBR MP3", size="9" * 40), f("badmd5.srt", "SubRip", md5=12),
             f("shortmd5.srt", "SubRip", md5="abc"), f("good.srt", "SubRip"),
             "not an object", None, 7, f("fmtlist.mp3", ["VBR MP3"])]
    choices = choose_files(files)
    c = by_name(choices)
    assert c["good.mp3"].skip is None and c["good.srt"].skip is None
    skipped = {ch.name: ch.skip for ch in choices if ch.skip}
    assert skipped.pop("#2 (no name)").startswith("malformed file entry: name is a int")
    assert "name is missing" in skipped.pop("#3 (no name)")
    assert "name is a list" in skipped.pop("#4 (no name)")
    for name in ("badsize.mp3", "negsize.mp3", "hugesize.mp3"):
        assert "size" in skipped.pop(name), name
    for name in ("badmd5.srt", "shortmd5.srt"):
        assert "md5" in skipped.pop(name), name
    assert skipped.pop("good.srt #10 (listed twice)").endswith("listed twice")
    for i in (11, 12, 13):
        assert "not an object" in skipped.pop(f"#{i} (no name)")
    assert not skipped
    assert [(p["audio"], p["transcript"]) for p in pair_files(choices)] == \
        [("good.mp3", "good.srt")]


def test_archive_org_metadata_files_are_never_audio_or_transcripts():
    files = [f("talk.mp3", "VBR MP3"), f("talk.srt", "SubRip"),
             f("item_meta.xml", "Metadata", "metadata"), f("item_files.xml", "Metadata",
                                                            "metadata"),
             f("item_meta.txt", "Text", "metadata"), f("item_meta.mp3", "VBR MP3", "metadata"),
             f("item_reviews.srt", "SubRip", "metadata")]
    choices = choose_files(files)
    c = by_name(choices)
    assert "item_meta.xml" not in c and "item_files.xml" not in c
    for name in ("item_meta.txt", "item_meta.mp3", "item_reviews.srt"):
        assert "source: metadata" in c[name].skip, name
    assert [(p["audio"], p["transcript"]) for p in pair_files(choices)] == \
        [("talk.mp3", "talk.srt")]


def test_400_by_400_pairs_correctly_without_quadratic_similarity():
    """Half the names equal once normalised (the dict stage), half only alike (the fuzzy
    stage, in rapidfuzz's C code); shuffled. The time is measured, not asserted."""
    rng = random.Random(3)
    expected = {}
    for i in range(400):
        audio = f"Episode {i:03d} - {rng.choice(['Intro', 'Talk', 'Panel'])} recording.mp3"
        stem = audio.rsplit(".", 1)[0]
        transcript = (stem.replace(" ", "_").lower() + ".srt" if i % 2 else
                      f"ep{i:03d} {stem.split('-')[1].strip()} transcript-v2.vtt")
        expected[audio] = transcript
    files = [f(a, "VBR MP3") for a in expected] + \
        [f(t, "SubRip" if t.endswith(".srt") else "Web Video Text Tracks")
         for t in expected.values()]
    rng.shuffle(files)
    pairs = pair_files(choose_files(files))
    assert {p["audio"]: p["transcript"] for p in pairs} == expected


def test_hostile_long_names_still_pair_and_stay_bounded():
    """5,000-character names (uncapped, 300 × 300 of them took 50 s): equal names pair through
    the dict whatever their length; fuzzy scores look at a bounded prefix."""
    rng = random.Random(5)
    stems = ["".join(rng.choice("abcdefghij") for _ in range(5000)) for _ in range(300)]
    files = [f(f"{s}.mp3", "VBR MP3") for s in stems] + \
        [f(f"{s.upper()}.srt", "SubRip") for s in stems[:150]] + \
        [f(f"{s[:50]}_{i}.srt", "SubRip") for i, s in enumerate(stems[150:])]
    pairs = {p["audio"]: p["transcript"] for p in pair_files(choose_files(files))}
    for s in stems[:150]:
        assert pairs[f"{s}.mp3"] == f"{s.upper()}.srt"
