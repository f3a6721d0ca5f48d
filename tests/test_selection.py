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
