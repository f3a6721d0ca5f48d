"""Transcript parsing: what is speech and what is not, whatever the file's encoding."""

from __future__ import annotations

import json
import re

import pytest

from align.transcripts import clean, cue_spans, decode, parse, read_transcript, sentences


@pytest.mark.parametrize("raw, spoken", [
    ("<i>Hello</i> there", "Hello there"),
    ("<v Narrator>It began in spring.</v>", "It began in spring."),
    ("{\\an8}Top line", "Top line"),
    ("[MUSIC PLAYING] We begin.", "We begin."),
    ("(applause) Thank you. (laughter)", "Thank you."),
    ("♪ la la la ♪ Good evening.", "Good evening."),
    ("NARRATOR: The river rose.", "The river rose."),
    ("JOHN SMITH: We met.", "We met."),
    ("Mary Jones: Yes.", "Yes."),
    (">> Good morning. >> Morning.", "Good morning. Morning."),
    ("- Did we?\n- We did.", "Did we? We did."),
    ("The U.S. said: no.", "The U.S. said: no."),  # not a speaker label
    ("Dr. Smith's report, page 3.", "Dr. Smith's report, page 3."),
])
def test_clean(raw, spoken):
    assert clean(raw) == spoken


@pytest.mark.parametrize("data", [
    "Café “déjà vu” — naïve".encode("utf-8-sig"),
    "Café “déjà vu” — naïve".encode("utf-16"),
    "Café “déjà vu” — naïve".encode("cp1252"),
    "Café “déjà vu” — naïve".encode().decode("latin-1").encode("utf-8"),  # mojibake
])
def test_decode_any_encoding(data):
    assert decode(data) in ("Café “déjà vu” — naïve", 'Café "déjà vu" — naïve')


def test_srt_and_vtt_keep_millisecond_times():
    srt_text = "1\n00:00:01,250 --> 00:00:03,500\n<i>One.</i>\n\n2\n00:00:04,000 --> " \
               "00:00:05,125\n[music]\n\n3\n00:00:05,200 --> 00:00:07,000\nTwo.\n"
    t = parse(srt_text, "srt")
    assert [(c.start, c.end, c.text) for c in t.cues] == [(1.25, 3.5, "One."),
                                                          (5.2, 7.0, "Two.")]
    vtt_text = "WEBVTT\n\n00:00:00.897 --> 00:00:05.276\n<v Bob>Hi there.</v>\n"
    assert [(c.start, c.end, c.text) for c in parse(vtt_text, "vtt").cues] == [
        (0.897, 5.276, "Hi there.")]


def test_sample_archive_transcripts_hold_exactly_the_spoken_sentences(archive):
    checked = 0
    for truth_path in sorted((archive / "truth").rglob("*.json")):
        truth = json.loads(truth_path.read_text())
        if not truth["transcript_matches"] or not truth["transcripts"]:
            continue
        t = truth["transcripts"][0]
        if t["kind"] == "asr":
            continue
        transcript = read_transcript(archive / "items" / truth["item_id"] / t["name"])
        spoken = " ".join(s["text"] for s in truth["sentences"])
        assert transcript.text == spoken, t["name"]
        assert not re.search(r"[\[\]<>♪]|\(applause\)|NARRATOR", transcript.text)
        assert transcript.timed == (t["kind"] != "txt")
        checked += 1
    assert checked >= 5


def test_sentences_respect_abbreviations():
    assert sentences("Dr. Smith arrived at 3 Elm St. shortly after 8. The U.S. census "
                     "said so! \"Really?\" she asked.") == [
        "Dr. Smith arrived at 3 Elm St. shortly after 8.", "The U.S. census said so!",
        "\"Really?\" she asked."]


def test_cue_spans_cover_the_cues_an_utterance_touches():
    t = parse("1\n00:00:01,000 --> 00:00:03,000\nHello there. How are\n\n"
              "2\n00:00:03,500 --> 00:00:06,000\n[music] you today? Fine.\n", "srt")
    parts = sentences(t.text)
    assert parts == ["Hello there.", "How are you today?", "Fine."]
    assert cue_spans(t, parts) == [(1.0, 3.0), (1.0, 6.0), (3.5, 6.0)]
    assert cue_spans(parse("Hello there. Fine.", "txt"), ["Hello there.", "Fine."]) == [None] * 2
